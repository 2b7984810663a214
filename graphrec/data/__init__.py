"""What a task trains on: named datasets in one catalog, interaction views of a store, splits,
and the exact item sequences of the sequence datasets.

Files are read from one data root (``$GRAPHREC_DATA`` or the user cache) and downloaded
into the cache when missing and the network allows.
"""

from graphrec.utils.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["DATASETS", "DatasetInfo", "adapter_path", "available_datasets", "get_dataset", "load_dataset",
                     "load_node_dataset", "rec_dataset_names"], ".catalog"),
    **dict.fromkeys(["Interactions", "RecData", "dataset_store", "load_interactions"], ".interactions"),
    **dict.fromkeys(["label_rate_split", "load_planetoid"], ".planetoid"),
    **dict.fromkeys(["InductiveDataset", "load_ppi"], ".ppi"),
    **dict.fromkeys(["DatasetNotAvailableError", "cache_dir", "data_root"], ".root"),
    **dict.fromkeys(["EdgeSplit", "leave_one_out", "published_split", "random_split", "time_split"], ".splits"),
    **dict.fromkeys(["LeaveOneOut", "Sequences", "load_sequences", "read_sequences"], ".sequences"),
}  # fmt: skip

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
