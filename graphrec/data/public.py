"""Public recommendation datasets with a published split or order: their files, where they
come from, and how they enter the store.

Every file is pinned: a ``raw.githubusercontent.com`` URL at a fixed commit and the file's
SHA-256 (the same table as ``shared/data/README.md``, sections 4-7). A file is read from the
data root (``$GRAPHREC_DATA``) when all of a dataset's files are there, else from the cache,
where a missing file is downloaded (checked against its SHA-256, then renamed into place).
Offline, a missing file raises :class:`~graphrec.data.root.DatasetNotAvailableError` naming
the file and ``GRAPHREC_DATA``.

A dataset is parsed once, by its store adapter (:mod:`graphrec.store.adapters`, which
encodes the published split or the sequence order as time), checked against the expected
statistics of its catalog entry, and ingested into a store in the cache
(:func:`graphrec.data.interactions.dataset_store`).

Terms: these are research datasets (SNAP Gowalla, GroupLens MovieLens, McAuley-lab Amazon
reviews, the Yelp dataset); keep them out of anything published or shipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphrec.data.root import (
    NETWORK_ERRORS,
    DatasetNotAvailableError,
    cache_dir,
    data_root,
    download,
    missing_error,
)


@dataclass(frozen=True)
class RemoteFile:
    """One pinned file of a dataset: its path under the data root, its URL and SHA-256."""

    path: str
    url: str
    sha256: str


def _github(
    repo: str, commit: str, folder: str, local: str, files: Mapping[str, str]
) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(f"{local}/{name}", f"https://raw.githubusercontent.com/{repo}/{commit}/{folder}/{name}", sha)
                 for name, sha in files.items())  # fmt: skip


GOWALLA_FILES = _github(
    "gusye1234/LightGCN-PyTorch", "947ca2b3b1d2d3545b114145710cb06c4e57b3d2", "data/gowalla", "recsys/gowalla-lightgcn",
    {"s_adj_mat.npz": "6ab3ab7aa1278da3717054c60258d88d2d2d78914fa62db2b13da9321e397cab",
     "test.txt": "099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3"},
)  # fmt: skip
ML1M_FILES = _github(
    "reczoo/RecZoo", "5c82e48ded7439d54bcd837f490c3fc58c4742d4", "data/ml-1m", "recsys/ml-1m-reczoo",
    {"train.txt": "f088986b22f14f17136f9c4ef6f1269201f83dfb9ce259f1fd4ed46d72a92599",
     "test.txt": "7ca364f7f9321417b521745833b12719a2feb13253bccece2c04d5afe9fc3e15"},
)  # fmt: skip
AMAZON_CD_FILES = _github(
    "marlin-codes/HICF", "efe02422bef1a1a663d1cba6a1bdc23b015f3649", "data/Amazon-CD", "recsys/amazon-cd-hgcf",
    {"train.pkl": "fdd3250d51e1dfe1713d8749b842aa343a0c42d39dce7bc4ca21c76fbdbe6e8b",
     "test.pkl": "8511b464bc7319d0abddf502cc0a75880557b1e9c9004de062070b61fdc5e34e",
     "user_item_list.pkl": "f1df1cde578b1b3f77134333c99e9a274965618efec02d529cc9b491f4e03772"},
)  # fmt: skip
_S3REC_SHA = {
    "Beauty": "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
    "Sports_and_Outdoors": "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2",
    "Toys_and_Games": "176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f",
    "Yelp": "724b219106b81dd2349027da997334ddb6da9fe2f152ad6e0d97a93170f7caed",
}
#: Catalog name -> file stem of the S3-Rec sequence files (``sequences/s3rec/<stem>.txt``).
SEQUENCE_FILES = {
    "beauty": "Beauty",
    "sports": "Sports_and_Outdoors",
    "toys": "Toys_and_Games",
    "yelp": "Yelp",
}


def sequence_files(name: str) -> tuple[RemoteFile, ...]:
    stem = SEQUENCE_FILES[name]
    return _github("salesforce/ICLRec", "2890e6c3ff6a22c6699fc19cb863b66786c1cde4", "data", "sequences/s3rec",
                   {f"{stem}.txt": _S3REC_SHA[stem]})  # fmt: skip


# ---------------------------------------------------------------------------- files
def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def locate(dataset: str, files: tuple[RemoteFile, ...]) -> Path:
    """The folder that holds every file of ``dataset`` (same layout as the data root).

    The data root when it has them all (never written to); else the cache, where a file is
    copied from the data root if only some are there, or downloaded (SHA-256 checked before
    it is renamed into place).

    Raises:
        DatasetNotAvailableError: a file is missing and its download failed; the message
            names the missing files and ``GRAPHREC_DATA``.
    """
    root, cache = data_root(), cache_dir()
    if all((root / f.path).is_file() for f in files):
        return root
    todo = [f for f in files if not (cache / f.path).is_file()]
    for k, f in enumerate(todo):
        dest = cache / f.path
        if (root / f.path).is_file():  # a partial data root: keep the dataset in one folder
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            shutil.copyfile(root / f.path, tmp)
            os.replace(tmp, dest)
            continue
        try:
            download(f.url, dest, sha256=f.sha256)
        except NETWORK_ERRORS as exc:
            missing = [root / g.path for g in todo[k:] if not (root / g.path).is_file()]
            raise missing_error(dataset, missing, f.url, str(exc)) from exc
    return cache


def verify(dataset: str, folder: Path, files: tuple[RemoteFile, ...]) -> None:
    """Check every file of ``dataset`` under ``folder`` against its pinned SHA-256.

    Raises:
        DatasetNotAvailableError: a file differs (the message names it and both hashes).
    """
    for f in files:
        got = sha256_of(folder / f.path)
        if got != f.sha256:
            raise DatasetNotAvailableError(
                f"{dataset}: {folder / f.path} is not the published file (sha256 {got}, expected {f.sha256}, "
                f"from {f.url}). Replace it, or point $GRAPHREC_DATA at a folder with the published files."
            )


# ---------------------------------------------------------------------------- ingest
def source_counts(sources: list[Any]) -> dict[str, int]:
    """``users``, ``items``, ``interactions`` and (published splits) ``train`` / ``test`` of adapter sources."""
    import polars as pl

    from graphrec.store.adapters import TEST_TIME

    ev = pl.concat([frame for _, frame in sources])
    test = int((ev["timestamp"] >= TEST_TIME).sum())
    return {"users": ev["user_id"].n_unique(), "items": ev["target_id"].n_unique(), "interactions": ev.height,
            "train": ev.height - test, "test": test}  # fmt: skip


def check_counts(dataset: str, sources: list[Any], expected: Mapping[str, int]) -> None:
    """Raise ``ValueError`` when the parsed files do not have the catalog's statistics."""
    got = source_counts(sources)
    wrong = {k: (got[k], v) for k, v in expected.items() if got.get(k) != v}
    if wrong:
        raise ValueError(f"{dataset}: the files parse to " + ", ".join(f"{k} {g:,} (expected {e:,})"
                                                                       for k, (g, e) in wrong.items()))  # fmt: skip


def public_path(name: str, files: tuple[RemoteFile, ...]) -> Path:
    """What the store adapter of the dataset ``name`` reads: the folder of a published split,
    or the sequence file. Located (or downloaded) by :func:`locate`, checked by :func:`verify`.

    Raises:
        DatasetNotAvailableError: a file is missing and its download failed, or differs from
            the published file (the message names it and ``GRAPHREC_DATA``).
    """
    folder = locate(name, files)
    verify(name, folder, files)
    path = folder / files[0].path
    return path if name in SEQUENCE_FILES else path.parent


def ingest_public(
    name: str, store_root: Path, files: tuple[RemoteFile, ...], expected: Mapping[str, int]
) -> Any:
    """Locate (or download), verify, parse, check and ingest the dataset ``name`` into a new store."""
    from graphrec.store.adapters import ADAPTERS
    from graphrec.store.ingest import ingest

    if name not in ADAPTERS:  # pragma: no cover - the catalog only passes adapter names
        raise ValueError(f"no adapter for {name!r}")
    path = public_path(name, files)
    where = path.parent if name in SEQUENCE_FILES else path
    sources, _ = ADAPTERS[name].sources(path)
    check_counts(name, sources, expected)
    return ingest(store_root, sources, schema=ADAPTERS[name].schema(), message=f"{name} from {where}", echo=False)
