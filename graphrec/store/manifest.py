"""Manifests: the immutable description of one committed version of a store."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_FORMAT = "graphrec.store-manifest/1"


class FileEntry(BaseModel):
    """A data file of the store, relative to the store root."""

    model_config = ConfigDict(extra="forbid")

    path: str
    rows: int
    bytes: int
    checksum: str  # "sha256:<hex>" of the file's bytes
    #: Version that wrote the file.
    version: int


class IdMapEntry(BaseModel):
    """The external-id -> contiguous-int map of one node type: an append-only list of chunks.

    Chunk ``k`` holds ids ``[sum(rows of chunks < k), ... + rows)``.
    """

    model_config = ConfigDict(extra="forbid")

    size: int = 0
    files: list[FileEntry] = Field(default_factory=list)


class FileStats(BaseModel):
    """What one ingest did with one input file."""

    model_config = ConfigDict(extra="forbid")

    source: str
    format: str
    table: str  # "events" or "attributes:<node type>"
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    status: Literal["ok", "empty", "unreadable", "rejected"] = "ok"
    note: str | None = None


class IngestStats(BaseModel):
    """Counts of one ingest. Invariant: ``read == accepted + quarantined + duplicates``."""

    model_config = ConfigDict(extra="forbid")

    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    invariant_ok: bool = True
    reasons: dict[str, int] = Field(default_factory=dict)
    files: list[FileStats] = Field(default_factory=list)
    message: str = ""
    started_at: dt.datetime | None = None
    duration_s: float = 0.0

    def summary(self) -> str:
        mark = "ok" if self.invariant_ok else "VIOLATED"
        return (
            f"read {self.read:,} = accepted {self.accepted:,} + quarantined {self.quarantined:,}"
            f" + duplicates {self.duplicates:,}  [{mark}]"
        )


class Counts(BaseModel):
    """Totals of a version (cumulative over all ingests up to it)."""

    model_config = ConfigDict(extra="forbid")

    events: int = 0
    quarantined: int = 0
    duplicates: int = 0
    read: int = 0
    days: int = 0
    by_event: dict[str, int] = Field(default_factory=dict)  # "<target_type>/<event_type>" -> rows
    first_day: str | None = None
    last_day: str | None = None


class FeatureEntry(BaseModel):
    """A feature table: one float32 vector per node of one node type, keyed ``"<node type>/<name>"``.

    The file (parquet) holds ``id`` (int64, the node type's contiguous ids, sorted, unique)
    and ``x`` (fixed-size list of ``dim`` float32). Nodes without a row have no features
    (e.g. users added by ingests after ``data_version``).
    """

    model_config = ConfigDict(extra="forbid")

    file: FileEntry
    node_type: str
    name: str
    dim: int
    rows: int
    #: What computed the vectors, e.g. ``{"objective": "sasrec", "params": {...}}``.
    encoder: dict[str, Any] = Field(default_factory=dict)
    #: The store version the encoder read (its ids index that version's id map).
    data_version: int
    created_at: dt.datetime
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.node_type}/{self.name}"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["graphrec.store-manifest/1"] = MANIFEST_FORMAT
    version: int
    parent: int | None
    created_at: dt.datetime
    schema_hash: str
    schema_path: str
    ingest: IngestStats | None = None
    counts: Counts = Field(default_factory=Counts)
    #: Event partitions: UTC day ("YYYY-MM-DD") -> files, oldest first.
    partitions: dict[str, list[FileEntry]] = Field(default_factory=dict)
    id_maps: dict[str, IdMapEntry] = Field(default_factory=dict)
    #: Node attributes: node type -> one file holding the full current table.
    attributes: dict[str, FileEntry] = Field(default_factory=dict)
    #: Quarantine files, one per ingest that rejected something.
    quarantine: list[FileEntry] = Field(default_factory=list)
    #: Feature tables: ``"<node type>/<name>"`` -> table; carried unchanged into later versions.
    features: dict[str, FeatureEntry] = Field(default_factory=dict)

    def files(self) -> list[FileEntry]:
        """Every data file this version references."""
        out = [f for files in self.partitions.values() for f in files]
        out += [f for m in self.id_maps.values() for f in m.files]
        out += list(self.attributes.values())
        out += list(self.quarantine)
        out += [e.file for e in self.features.values()]
        return out
