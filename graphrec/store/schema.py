"""The log schema: what one event row looks like, and the side tables of node attributes.

A schema is a pydantic model stored as YAML (or JSON). Its :meth:`LogSchema.hash` is a
SHA-256 of the canonical JSON form and is written into every manifest, so a version
always names the exact schema its rows were validated against.

One event per row:

=============  =========  ========  ==================================================
column         required   type      meaning
=============  =========  ========  ==================================================
timestamp      yes        time      epoch number (``timestamp_unit``), ISO-8601 string,
                                    or a date/datetime column; stored as UTC
user_id        yes        id        external user id (``id_type``)
target_type    yes        string    one of ``target_types`` (``item``, ``ad``, ...)
target_id      yes        id        external id of the target, unique per target type
event_type     yes        string    one of ``event_types`` (``view``, ``click``, ...)
value          no         float     e.g. a rating or a price
weight         no         float     a per-event weight, multiplied into edge weights
<context>      no         declared  columns declared under ``context``
=============  =========  ========  ==================================================
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from graphrec.store.errors import SchemaError

SCHEMA_FORMAT = "graphrec.log-schema/1"

#: Columns of the event log that every schema has.
REQUIRED_COLUMNS: tuple[str, ...] = ("timestamp", "user_id", "target_type", "target_id", "event_type")
OPTIONAL_COLUMNS: tuple[str, ...] = ("value", "weight")
CORE_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

#: The node type of the acting side of every event.
USER = "user"

ContextType = Literal["string", "int", "float", "bool"]
AttributeKind = Literal["numeric", "categorical", "text"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED = set(CORE_COLUMNS) | {"user", "target", "day", "id"}


def _check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not a valid name: use lower-case letters, digits and '_', "
            "starting with a letter"
        )
    return name


class NodeAttributes(BaseModel):
    """The side table of one node type (user, item, ad, ...).

    ``id_column`` holds the node's external id; every other declared column is a feature:
    ``numeric`` (stored as float), ``categorical`` (stored as string, turned into an
    index or a one-hot block at build time) or ``text`` (kept verbatim for encoders).
    """

    model_config = ConfigDict(extra="forbid")

    id_column: str = "id"
    columns: dict[str, AttributeKind] = Field(default_factory=dict)

    @field_validator("columns")
    @classmethod
    def _names(cls, value: dict[str, AttributeKind]) -> dict[str, AttributeKind]:
        for name in value:
            _check_name(name, "attribute column")
            if name == "id":
                raise ValueError("attribute column may not be called 'id' (reserved for the node id)")
        return value


class LogSchema(BaseModel):
    """Versioned description of an interaction log and its attribute side tables."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["graphrec.log-schema/1"] = SCHEMA_FORMAT
    name: str = "events"
    #: Revision of this schema, bumped by its owner on every change.
    version: int = Field(default=1, ge=1)
    #: Type of external ids (``user_id``, ``target_id`` and side-table ids).
    id_type: Literal["string", "int"] = "string"
    #: Unit of numeric (epoch) timestamps.
    timestamp_unit: Literal["s", "ms", "us", "ns"] = "s"
    #: Time zone of timestamps that carry none; everything is stored in UTC.
    timezone: str = "UTC"
    #: Events outside [min_timestamp, max_timestamp) are quarantined as ``bad_timestamp``.
    min_timestamp: dt.datetime = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    max_timestamp: dt.datetime = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    target_types: list[str] = Field(default_factory=lambda: ["item", "ad"])
    event_types: list[str] = Field(
        default_factory=lambda: [
            "view", "click", "add_to_cart", "purchase", "rating", "impression", "conversion",
        ]
    )
    #: Optional context columns of the event log and their types.
    context: dict[str, ContextType] = Field(default_factory=dict)
    #: Side tables, keyed by node type (``user`` or one of ``target_types``).
    attributes: dict[str, NodeAttributes] = Field(default_factory=dict)
    #: What to do with rows of a file that has columns the schema does not declare:
    #: ``quarantine`` them (nothing is silently dropped) or ``ignore`` the extra columns.
    extra_columns: Literal["quarantine", "ignore"] = "quarantine"

    # ------------------------------------------------------------------ validation
    @field_validator("target_types", "event_types")
    @classmethod
    def _types(cls, value: list[str], info) -> list[str]:
        if not value:
            raise ValueError(f"{info.field_name} must not be empty")
        if len(set(value)) != len(value):
            raise ValueError(f"{info.field_name} has duplicates: {value}")
        for name in value:
            _check_name(name, info.field_name[:-1].replace("_", " "))
        return value

    @field_validator("target_types")
    @classmethod
    def _no_user_target(cls, value: list[str]) -> list[str]:
        if USER in value:
            raise ValueError("'user' is the acting node type and cannot be a target type")
        return value

    @field_validator("context")
    @classmethod
    def _context(cls, value: dict[str, ContextType]) -> dict[str, ContextType]:
        for name in value:
            _check_name(name, "context column")
            if name in _RESERVED:
                raise ValueError(f"context column {name!r} clashes with a reserved column name")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("min_timestamp", "max_timestamp")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _consistent(self) -> LogSchema:
        for node_type in self.attributes:
            if node_type not in self.node_types:
                raise ValueError(
                    f"attributes declared for unknown node type {node_type!r}; "
                    f"node types are {self.node_types}"
                )
        if self.min_timestamp >= self.max_timestamp:
            raise ValueError("min_timestamp must be before max_timestamp")
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def node_types(self) -> list[str]:
        """``user`` followed by the target types."""
        return [USER, *self.target_types]

    @property
    def event_columns(self) -> list[str]:
        """All columns of the event log, in order: core columns then context columns."""
        return [*CORE_COLUMNS, *self.context]

    def hash(self) -> str:
        """``sha256:<hex>`` of the canonical JSON form; stored in every manifest."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    # ------------------------------------------------------------------ (de)serialisation
    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "<dict>") -> LogSchema:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SchemaError(f"invalid log schema in {source}:\n{exc}") from exc

    @classmethod
    def from_text(cls, text: str, *, source: str = "<text>") -> LogSchema:
        try:
            data = yaml.safe_load(text)  # JSON is valid YAML
        except yaml.YAMLError as exc:
            raise SchemaError(f"cannot parse log schema {source}: {exc}") from exc
        if not isinstance(data, dict):
            raise SchemaError(f"log schema {source} must be a mapping, got {type(data).__name__}")
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path) -> LogSchema:
        """Read a schema from a ``.yaml``/``.yml``/``.json`` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SchemaError(f"cannot read log schema {path}: {exc}") from exc
        return cls.from_text(text, source=str(path))

    def save(self, path: str | Path) -> None:
        """Write the schema atomically, as JSON if the name ends in ``.json`` else YAML."""
        from graphrec.utils.io import atomic_write_text

        path = Path(path)
        atomic_write_text(path, self.to_json() if path.suffix == ".json" else self.to_yaml())
