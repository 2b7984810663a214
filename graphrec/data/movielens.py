"""MovieLens-100k (GroupLens): where its files are. They are parsed once, by the store's adapter
(:func:`graphrec.store.movielens_100k_sources`), and read as a dataset through the catalog."""

from __future__ import annotations

from graphrec.data.root import (
    NETWORK_ERRORS,
    cache_dir,
    data_root,
    download_and_unzip,
    missing_error,
)

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML100K_FILES = ("u.data", "u.item", "u.user", "u.genre")


def movielens_100k_dir(root=None):
    """Folder with the ml-100k files, downloading them when missing and the network allows."""
    root = root or data_root()
    folder = root / "movielens" / "ml-100k"
    missing = [folder / f for f in ML100K_FILES if not (folder / f).exists()]
    if not missing:
        return folder
    target = cache_dir() / "movielens"  # downloads land in the cache, never in the data root
    if (target / "ml-100k" / "u.data").exists():
        return target / "ml-100k"
    try:
        download_and_unzip(ML100K_URL, target)
    except NETWORK_ERRORS as exc:
        raise missing_error("MovieLens-100k", missing, ML100K_URL, str(exc)) from exc
    return target / "ml-100k"


