"""Byte-level BPE tokenizer for the history-as-text input of LMRec (Shin et al., ACL 2023, §3).

LMRec tokenises behaviour texts with byte-level BPE (the GPT-2 scheme: Radford et al. 2019;
Sennrich et al. 2016). :class:`BPETokenizer` trains one with the Hugging Face ``tokenizers``
library on the item texts of a dataset. Any string encodes (every byte is in the base
alphabet) and decodes back exactly. Token 0 is ``<pad>`` and token 1 is ``</s>``, the end of a
history (``BehaviourSequences.text_view``'s ``eos``), so id 0 can be the model's padding index.
The whole tokenizer is one JSON string (:meth:`BPETokenizer.to_json`), which fits in a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD = "<pad>"
EOS = "</s>"
SPECIAL_TOKENS = (PAD, EOS)


class BPETokenizer:
    """A byte-level BPE tokenizer with ``<pad>`` = 0 and ``</s>`` = 1.

    Build one with :meth:`train` or :meth:`from_json`.

    Raises:
        ValueError: the wrapped tokenizer does not map ``<pad>`` to 0 and ``</s>`` to 1.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        pad, eos = tokenizer.token_to_id(PAD), tokenizer.token_to_id(EOS)
        if pad != 0 or eos != 1:
            raise ValueError(f"BPETokenizer: expected {PAD!r} = 0 and {EOS!r} = 1, got {pad} and {eos}")
        self.pad_id = 0
        self.eos_id = 1

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 4000, min_frequency: int = 2) -> BPETokenizer:
        """Train on ``texts`` (e.g. item texts and event-type names).

        Args:
            vocab_size: the largest vocabulary (the 256 byte symbols and the two special tokens
                included); fewer tokens when the texts hold fewer merges.
            min_frequency: a pair seen fewer times is not merged.

        Raises:
            ValueError: ``vocab_size`` below 258 (256 bytes + 2 special tokens).
        """
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
            raise ValueError(f"BPETokenizer.train: vocab_size {vocab_size} is below the "
                             f"{len(alphabet) + len(SPECIAL_TOKENS)} byte and special tokens")  # fmt: skip
        tok = Tokenizer(models.BPE())
        # add_prefix_space=False keeps decode(encode(s)) == s for every string.
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=list(SPECIAL_TOKENS), initial_alphabet=alphabet,
                                      show_progress=False)  # fmt: skip
        tok.train_from_iterator((t for t in texts if t), trainer=trainer)
        return cls(tok)

    @classmethod
    def from_json(cls, text: str) -> BPETokenizer:
        """The tokenizer saved by :meth:`to_json`."""
        return cls(Tokenizer.from_str(text))

    def to_json(self) -> str:
        """The whole tokenizer (model, merges, special tokens) as one JSON string."""
        return self.tokenizer.to_str()

    @property
    def vocab_size(self) -> int:
        """Number of token ids (0..vocab_size - 1)."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; a literal ``</s>`` becomes the single EOS id."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of every text (parallel in the Rust library)."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of ``ids`` (exact inverse of :meth:`encode`, ``</s>`` included unless skipped)."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def __repr__(self) -> str:
        return f"BPETokenizer({self.vocab_size} tokens)"
