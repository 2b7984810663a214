"""Datasets: one data root (``$GRAPHREC_DATA`` or the user cache), read locally or downloaded."""

from graphrec.data.catalog import DATASETS, available_datasets, load_node_dataset
from graphrec.data.movielens import MovieLens100k, load_movielens_100k
from graphrec.data.planetoid import label_rate_split, load_planetoid
from graphrec.data.ppi import InductiveDataset, load_ppi
from graphrec.data.root import DatasetNotAvailableError, cache_dir, data_root

__all__ = [
    "DATASETS",
    "DatasetNotAvailableError",
    "InductiveDataset",
    "MovieLens100k",
    "available_datasets",
    "cache_dir",
    "data_root",
    "label_rate_split",
    "load_movielens_100k",
    "load_node_dataset",
    "load_planetoid",
    "load_ppi",
]
