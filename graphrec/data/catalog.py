"""The datasets graphrec knows by name (node classification and recommendation), and where each is found.

>>> from graphrec.data import load_dataset
>>> cora = load_dataset("Cora")          # torch_geometric Data with the public split   # doctest: +SKIP
>>> ml = load_dataset("ml-100k")          # Interactions, through a cached graph store  # doctest: +SKIP
>>> gw = load_dataset("gowalla")          # LightGCN's split; data.split: auto -> published  # doctest: +SKIP

Each recommendation dataset has its own split protocol (``DatasetInfo.split``), which
``data.split: auto`` follows: ``published`` (the train/test files of Gowalla, MovieLens-1M
and Amazon-CD, validation carved from train by ``data.valid_ratio``), ``loo`` (the four
sequence datasets, leave-one-out as in S3-Rec / ICLRec) or ``random`` (MovieLens-100k's
per-user 8:1:1, as RecBole).

Ad-targeting datasets (task :data:`ADS`: users, ads, ``impression`` / ``click`` events, items
where the log has them) are stores too (:func:`~graphrec.data.interactions.dataset_store`):
``ads-synth``, the synthetic hierarchical ad log of :func:`graphrec.store.synth_ads.synth_ads`
(``seed=0``, generated into the cache, no download; its ground truth:
:func:`~graphrec.data.interactions.dataset_truth`); ``ml-100k-ads``, MovieLens-100k as a user-ad
proxy; ``criteo`` and ``avazu``, CTR samples of 100-1,000 rows for format tests, too small to
benchmark. ``DatasetInfo.ad_hierarchy`` names the ad side-table columns of the hierarchy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from graphrec.data.movielens import ML100K_FILES, movielens_100k_dir
from graphrec.data.planetoid import load_planetoid, planetoid_raw_files
from graphrec.data.ppi import PPI_RAW_FILES, load_ppi
from graphrec.data.public import (
    AMAZON_CD_FILES,
    GOWALLA_FILES,
    ML1M_FILES,
    SEQUENCE_FILES,
    RemoteFile,
    ingest_public,
    public_path,
    sequence_files,
)
from graphrec.data.root import ENV_DATA, DatasetNotAvailableError, cache_dir, data_root

NODE = "node classification"
REC = "recommendation"
ADS = "ad targeting"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str  # NODE, NODE + " (inductive, multi-label)", REC or ADS
    files: tuple[str, ...]  # relative to the data root
    summary: str
    ingest: Callable[[Path], Any] | None = None  # recommendation datasets: write the dataset into a new store
    aliases: tuple[str, ...] = ()  # other accepted names (case-insensitive)
    #: Expected statistics: users, items and train/test pairs (published splits) or interactions.
    stats: Mapping[str, int] = field(default_factory=dict)
    #: The dataset's own split protocol, what ``data.split: auto`` resolves to: random, published or loo.
    split: str = "random"
    protocol: str = ""  # the split protocol in words (``graphrec datasets``, docs)
    #: Pinned URL and SHA-256 of each file (a missing file is downloaded into the cache).
    remote: tuple[RemoteFile, ...] = ()
    #: Ad-targeting datasets: the columns of the ad side table that form the ad hierarchy, top level first.
    ad_hierarchy: tuple[str, ...] = ()

    def protocol_info(self) -> dict[str, Any]:
        """What :class:`~graphrec.data.interactions.Interactions` records as ``info["protocol"]``."""
        out: dict[str, Any] = {"split": self.split}
        if self.split == "published":
            from graphrec.store.adapters import TEST_TIME

            # the adapter's test instant: pairs at or after it are the test set
            out["test_start"] = TEST_TIME
        return out


def _ingest_ml100k(root: Path) -> None:
    from graphrec.store import ingest_movielens_100k

    ingest_movielens_100k(root, movielens_100k_dir(), echo=False)


def _ingest_ml100k_ads(root: Path) -> None:
    from graphrec.store.adapters import ADAPTERS

    ADAPTERS["ml-100k-ads"].ingest(root, movielens_100k_dir(), echo=False)


#: The CTR samples (task ADS): catalog name -> file under the data root. Not downloadable (the
#: Criteo terms forbid redistribution; Avazu's are Kaggle's): the files must be there.
CTR_FILES = {
    "criteo": "ctr/criteo_dac_head1000/train.txt",
    "avazu": "ctr/deepctr_samples/avazu_sample.txt",
}


def ctr_path(name: str) -> Path:
    """The local file of the CTR sample ``name`` (``criteo``, ``avazu``), from the data root or the cache.

    Raises:
        DatasetNotAvailableError: the file is in neither (the message names it and ``GRAPHREC_DATA``).
    """
    rel = CTR_FILES[name]
    for base in (data_root(), cache_dir()):
        if (base / rel).is_file():
            return base / rel
    raise DatasetNotAvailableError(f"{name} is not available: missing {data_root() / rel}. It cannot be downloaded; "
                                   f"put the file there, or point ${ENV_DATA} at a folder that has it "
                                   f"(current data root: {data_root()}).")  # fmt: skip


def _ingest_ctr(name: str, root: Path) -> None:
    from graphrec.store.adapters import ADAPTERS

    ADAPTERS[name].ingest(root, ctr_path(name), echo=False)


def ads_synth_dir() -> Path:
    """The log folder of ``ads-synth`` (``synth_ads(seed=0)`` with its defaults) in the cache,
    written on first use: events, side tables, ``schema.yaml`` and ``truth.npz``."""
    import os
    import shutil

    from graphrec.store.synth_ads import GENERATOR_VERSION, TRUTH_FILE, synth_ads

    folder = cache_dir() / "synthetic" / f"ads-synth-v{GENERATOR_VERSION}"
    if (folder / TRUTH_FILE).is_file():
        return folder
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    synth_ads(tmp, seed=0)  # the truth is written last: a folder with it is complete
    try:
        os.rename(tmp, folder)
    except OSError:  # another process finished first (or left a partial folder without the truth)
        if not (folder / TRUTH_FILE).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            os.rename(tmp, folder)
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _ingest_ads_synth(root: Path) -> None:
    from graphrec.store.synth_ads import ingest_synth_ads

    ingest_synth_ads(root, ads_synth_dir(), echo=False, message="ads-synth: synth_ads(seed=0)")


def _planetoid(name: str, summary: str) -> DatasetInfo:
    root = data_root()
    return DatasetInfo(name, NODE, tuple(str(p.relative_to(root)) for p in planetoid_raw_files(name, root)), summary)


_PUBLISHED = ("published train/test (no validation in the files: data.valid_ratio of each user's training "
              "pairs, at random, become validation)")  # fmt: skip
_LOO = "leave-one-out per user (last item test, second to last validation), as S3-Rec / ICLRec"


def _public(name: str, remote: tuple[RemoteFile, ...], summary: str, stats: dict[str, int], split: str,
            aliases: tuple[str, ...] = ()) -> DatasetInfo:  # fmt: skip
    return DatasetInfo(name, REC, tuple(f.path for f in remote), summary,
                       partial(_ingest_public, name, remote, stats), aliases=aliases, stats=stats, split=split,
                       protocol=_PUBLISHED if split == "published" else _LOO, remote=remote)  # fmt: skip


def _ingest_public(name: str, remote: tuple[RemoteFile, ...], stats: dict, root: Path) -> None:
    ingest_public(name, root, remote, stats)


def _sequences(name: str, summary: str, users: int, items: int, interactions: int,
               aliases: tuple[str, ...] = ()) -> DatasetInfo:  # fmt: skip
    return _public(name, sequence_files(name), summary + ", S3-Rec / ICLRec sequences",
                   {"users": users, "items": items, "interactions": interactions}, "loo", aliases)  # fmt: skip


def _catalog() -> dict[str, DatasetInfo]:
    infos = [
        _planetoid("Cora", "2,708 papers, 5,429 citations, 7 classes; Planetoid public split"),
        _planetoid("CiteSeer", "3,327 papers, 4,732 citations, 6 classes; Planetoid public split"),
        _planetoid("PubMed", "19,717 papers, 44,338 citations, 3 classes; Planetoid public split"),
        DatasetInfo("PPI", NODE + " (inductive, multi-label)", tuple(f"ppi/raw/{f}" for f in PPI_RAW_FILES),
                    "24 protein graphs (20/2/2), 121 labels"),  # fmt: skip
        DatasetInfo("ml-100k", REC, tuple(f"movielens/ml-100k/{f}" for f in ML100K_FILES),
                    "MovieLens-100k (GroupLens): 943 users, 1,682 items, 100k ratings as implicit feedback",
                    _ingest_ml100k, aliases=("movielens-100k", "ml100k"),
                    stats={"users": 943, "items": 1682, "interactions": 100_000}, split="random",
                    protocol="per-user random 8:1:1 (data.ratios), as RecBole"),  # fmt: skip
        _public("gowalla", GOWALLA_FILES, "Gowalla check-ins (SNAP), LightGCN's split",
                {"users": 29_858, "items": 40_981, "train": 810_128, "test": 217_242}, "published",
                ("gowalla-lightgcn",)),  # fmt: skip
        _public("ml-1m", ML1M_FILES, "MovieLens-1M (GroupLens), RecZoo / LCFN split, implicit",
                {"users": 6_022, "items": 3_043, "train": 796_244, "test": 99_455}, "published",
                ("movielens-1m", "ml1m", "ml-1m-reczoo")),  # fmt: skip
        _public("amazon-cd", AMAZON_CD_FILES, "Amazon CDs & Vinyl reviews (McAuley lab), HGCF's split",
                {"users": 22_947, "items": 18_395, "train": 328_779, "test": 93_522}, "published",
                ("amazon-cd-hgcf",)),  # fmt: skip
        _sequences("beauty", "Amazon Beauty reviews", 22_363, 12_101, 198_502),
        _sequences("sports", "Amazon Sports & Outdoors reviews", 35_598, 18_357, 296_337,
                   ("sports_and_outdoors",)),  # fmt: skip
        _sequences("toys", "Amazon Toys & Games reviews", 19_412, 11_924, 167_597, ("toys_and_games",)),  # fmt: skip
        _sequences("yelp", "Yelp 2019 reviews", 30_431, 20_033, 316_354),
        DatasetInfo("ads-synth", ADS, (), "Synthetic ad log with a known advertiser > campaign > creative tree and a "
                    "known CTR per (user, ad) pair, plus item events (generated, no files)", _ingest_ads_synth,
                    aliases=("synth-ads", "ads_synth"), stats={"users": 3000, "items": 600, "ads": 96},
                    protocol="per-user random 8:1:1 of the click pairs (data.ratios)",
                    ad_hierarchy=("advertiser", "campaign")),
        DatasetInfo("ml-100k-ads", ADS, tuple(f"movielens/ml-100k/{f}" for f in ML100K_FILES),
                    "Proxy: MovieLens-100k movies as ads, each rating an impression, ratings >= 4 clicks; the "
                    "first genre as the top ad level", _ingest_ml100k_ads, aliases=("movielens-100k-ads",),
                    stats={"users": 943, "ads": 1682, "impressions": 100_000, "clicks": 55_375},
                    protocol="per-user random 8:1:1 of the click pairs (data.ratios)", ad_hierarchy=("genre",)),
        DatasetInfo("criteo", ADS, (CTR_FILES["criteo"],), "Criteo display ads, first 1,000 rows of the Kaggle "
                    "train.txt: a format test, too small to benchmark (no user or ad ids: one per row)",
                    partial(_ingest_ctr, "criteo"), aliases=("criteo-sample",),
                    stats={"users": 1000, "ads": 1000, "impressions": 1000, "clicks": 205}),
        DatasetInfo("avazu", ADS, (CTR_FILES["avazu"],), "Avazu mobile ads, 100 rows (DeepCTR's sample): a format "
                    "test, too small to benchmark (device as user, C14 as ad)", partial(_ingest_ctr, "avazu"),
                    aliases=("avazu-sample",), stats={"users": 98, "ads": 39, "impressions": 100, "clicks": 20}),
    ]
    assert set(SEQUENCE_FILES) <= {i.name for i in infos}
    return {i.name: i for i in infos}


#: Every named dataset (the files are relative to the data root when this module was imported).
DATASETS: dict[str, DatasetInfo] = _catalog()


def is_dataset(name: str) -> bool:
    return any(name.lower() in (i.name.lower(), *i.aliases) for i in DATASETS.values())


def get_dataset(name: str) -> DatasetInfo:
    """The catalog entry of ``name`` (case-insensitive).

    Raises:
        ValueError: ``name`` is not in the catalog (the message lists it).
    """
    for info in DATASETS.values():
        if name.lower() in (info.name.lower(), *info.aliases):
            return info
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def rec_dataset_names() -> list[str]:
    return [n for n, i in DATASETS.items() if i.task == REC]


def ad_dataset_names() -> list[str]:
    return [n for n, i in DATASETS.items() if i.task == ADS]


def available_datasets() -> list[dict]:
    """One row per known dataset: where its files are (data root, cache) or what is missing,
    its expected statistics (``stats``) and its split protocol (``split``, ``protocol``)."""
    rows = []
    for info in _catalog().values():  # the data root may have changed since import
        where, missing = None, list(info.files)
        for base in (data_root(), cache_dir()):
            miss = [f for f in info.files if not (base / f).exists()]
            if not miss:
                where, missing = base, []
                break
            if len(miss) < len(missing):
                missing = miss
        rows.append({"name": info.name, "task": info.task, "summary": info.summary,
                     "status": "local" if where else "missing", "path": str(where) if where else None,
                     "missing": missing, "aliases": list(info.aliases), "stats": dict(info.stats),
                     "split": info.split if info.task in (REC, ADS) else None, "protocol": info.protocol or None})  # fmt: skip
    return rows


def adapter_path(name: str) -> Path:
    """What the store adapter of the recommendation or ad dataset ``name`` reads (its ``--source``
    / ``source.kind`` input): the ml-100k folder (``ml-100k``, ``ml-100k-ads``), the folder of a
    published split, an S3-Rec sequence file, or a CTR sample file. From the data root when it
    has the files, else from the cache, where a missing file is downloaded when the network
    allows (the CTR samples cannot be downloaded).

    Raises:
        ValueError: ``name`` is not a recommendation or ad dataset of the catalog, or is
            ``ads-synth`` (generated, not read: :func:`ads_synth_dir` is its log folder).
        DatasetNotAvailableError: a file is missing and cannot be downloaded (the message
            names it and ``GRAPHREC_DATA``), or is not the published file.
    """
    info = get_dataset(name)
    if info.task not in (REC, ADS):
        raise ValueError(f"{info.name!r} is a {info.task} dataset; recommendation and ad datasets: "
                         f"{', '.join(rec_dataset_names() + ad_dataset_names())}")  # fmt: skip
    if info.name in ("ml-100k", "ml-100k-ads"):
        return Path(movielens_100k_dir())
    if info.name in CTR_FILES:
        return ctr_path(info.name)
    if info.name == "ads-synth":
        raise ValueError("ads-synth is generated, not read by an adapter: dataset_store('ads-synth') holds it, "
                         "`graphrec store synth-ads` writes such a log")  # fmt: skip
    return public_path(info.name, info.remote)


def load_node_dataset(name: str):
    """A node-classification dataset by name: a ``Data`` (transductive, Planetoid public
    split) or an :class:`~graphrec.data.ppi.InductiveDataset` (PPI)."""
    info = get_dataset(name)
    if not info.task.startswith(NODE):
        raise ValueError(f"{info.name!r} is a {info.task} dataset, not a node-classification one; "
                         f"node datasets: {', '.join(n for n, i in DATASETS.items() if i.task.startswith(NODE))}")  # fmt: skip
    if info.name == "PPI":
        return load_ppi()
    return load_planetoid(info.name)


def load_dataset(name: str, cfg=None):
    """Any named dataset: node classification -> ``Data`` / ``InductiveDataset``;
    recommendation -> :class:`~graphrec.data.interactions.Interactions` (``cfg``: a
    :class:`~graphrec.config.RecDataConfig` choosing the target, event types, window, k-core);
    ad targeting -> the same, by default the ``click`` pairs on ``ad`` (the store, with
    impressions and item events: :func:`~graphrec.data.interactions.dataset_store`).

    Raises:
        ValueError: unknown name.
        DatasetNotAvailableError: the files are missing and cannot be downloaded (the message
            names the files and ``GRAPHREC_DATA``).
    """
    info = get_dataset(name)
    if info.task == REC:
        from graphrec.data.interactions import load_interactions

        return load_interactions(info.name, cfg)
    if info.task == ADS:
        from graphrec.config.rec import RecDataConfig
        from graphrec.data.interactions import load_interactions

        return load_interactions(info.name, cfg or RecDataConfig(target="ad", event_types=["click"]))
    return load_node_dataset(info.name)
