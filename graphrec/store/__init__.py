"""Graph store: interaction logs to versioned user-item-ad graphs.

>>> from graphrec.store import GraphStore, LogSchema, ingest, build
>>> report = ingest("store/", ["logs/*.parquet"], schema=LogSchema())   # doctest: +SKIP
>>> data = build("store/", window=("2024-01-01", "2024-02-01"))         # doctest: +SKIP
"""

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
from graphrec.store.ingest import QUARANTINE_SCHEMA, IngestReport, ingest
from graphrec.store.manifest import FileEntry, FileStats, IdMapEntry, IngestStats, Manifest
from graphrec.store.schema import LogSchema, NodeAttributes
from graphrec.store.store import GraphStore
from graphrec.store.validate import REASONS

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
    "ingest",
]
