"""What a task trains on: named datasets in one catalog, interaction views of a store, splits.

Files are read from one data root (``$GRAPHREC_DATA`` or the user cache) and downloaded
into the cache when missing and the network allows.
"""

from graphrec.data.catalog import (
    DATASETS,
    DatasetInfo,
    available_datasets,
    get_dataset,
    load_dataset,
    load_node_dataset,
    rec_dataset_names,
)
from graphrec.data.interactions import Interactions, RecData, dataset_store, load_interactions
from graphrec.data.planetoid import label_rate_split, load_planetoid
from graphrec.data.ppi import InductiveDataset, load_ppi
from graphrec.data.root import DatasetNotAvailableError, cache_dir, data_root
from graphrec.data.splits import EdgeSplit, leave_one_out, random_split, time_split

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetNotAvailableError",
    "EdgeSplit",
    "InductiveDataset",
    "Interactions",
    "RecData",
    "available_datasets",
    "cache_dir",
    "data_root",
    "dataset_store",
    "get_dataset",
    "label_rate_split",
    "leave_one_out",
    "load_dataset",
    "load_interactions",
    "load_node_dataset",
    "load_planetoid",
    "load_ppi",
    "random_split",
    "rec_dataset_names",
    "time_split",
]
