"""Graph store: interaction logs to versioned user-item-ad graphs.

>>> from graphrec.store import GraphStore, LogSchema, ingest, build
>>> report = ingest("store/", ["logs/*.parquet"], schema=LogSchema())   # doctest: +SKIP
>>> data = build("store/", window=("2024-01-01", "2024-02-01"))         # doctest: +SKIP
"""

from graphrec.store.adapters import (
    ingest_movielens_100k,
    movielens_100k_schema,
    movielens_100k_sources,
)
from graphrec.store.build import build, partition_arrays
from graphrec.store.dgl_compat import import_dgl
from graphrec.store.errors import (
    CorruptStoreError,
    SchemaError,
    SourceError,
    StoreError,
    StoreExistsError,
    StoreLockedError,
    StoreNotFoundError,
    VersionNotFoundError,
)
from graphrec.store.export import to_dgl, to_networkx
from graphrec.store.ingest import IngestReport, ingest
from graphrec.store.manifest import FileEntry, FileStats, IdMapEntry, IngestStats, Manifest
from graphrec.store.schema import LogSchema, NodeAttributes
from graphrec.store.store import GraphStore
from graphrec.store.synth import SynthReport, synth, synth_schema
from graphrec.store.validate import QUARANTINE_SCHEMA, REASONS

__all__ = [
    "QUARANTINE_SCHEMA",
    "REASONS",
    "CorruptStoreError",
    "FileEntry",
    "FileStats",
    "GraphStore",
    "IdMapEntry",
    "IngestReport",
    "IngestStats",
    "LogSchema",
    "Manifest",
    "NodeAttributes",
    "SchemaError",
    "SourceError",
    "StoreError",
    "StoreExistsError",
    "StoreLockedError",
    "StoreNotFoundError",
    "VersionNotFoundError",
    "SynthReport",
    "build",
    "import_dgl",
    "ingest",
    "ingest_movielens_100k",
    "movielens_100k_schema",
    "movielens_100k_sources",
    "partition_arrays",
    "synth",
    "synth_schema",
    "to_dgl",
    "to_networkx",
]
