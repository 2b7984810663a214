"""The one configuration machinery: a strict base model, layered YAML, ``--set`` overrides.

A configuration is resolved from layers, later wins::

    schema defaults -> preset YAML (graphrec/config/presets/<task>/<model>.yaml)
      -> the preset's section for the dataset -> a user YAML file -> --set key=value

:class:`Layers` keeps every layer with its source (a file path, ``--set train.lr=0.1``),
so a validation error names the key *and* where it came from. Every key is validated
before any work starts; an unknown key is an error, never silently ignored.
"""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class Strict(BaseModel):
    """Base of every configuration model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class TaskConfig(Strict):
    """Base of a task's config: a ``model`` mapping (``name`` plus the backbone's parameters,
    validated by the model registry) and the task's sections."""

    model: dict[str, Any]

    @property
    def model_name(self) -> str:
        return self.model["name"]

    @property
    def model_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "name"}


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names the key and its source."""


def deep_merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``, recursively for nested mappings (copies; inputs untouched)."""
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_yaml_mapping(path: str | Path, what: str = "config file") -> dict:
    """The top-level mapping of a YAML file; a missing file, bad YAML or a non-mapping is a
    :class:`ConfigError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no {what} at {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely meant (a different case, or a close spelling), or None."""
    choices = list(choices)
    same = [c for c in choices if c.lower() == word.lower()]
    if same:
        return same[0]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """``"; did you mean 'x'?"`` when a choice is near ``word``, else an empty string."""
    near = nearest(word, choices)
    return f"; did you mean {prefix + near!r}?" if near else ""


def parse_override(item: str, sections: Iterable[str]) -> tuple[list[str], Any]:
    """``"model.hidden=32"`` -> ``(["model", "hidden"], 32)``; the value is parsed as YAML.

    Raises:
        ConfigError: no ``=``, or the key does not start with one of ``sections``.
    """
    sections = list(sections)
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path or path[0] not in sections:
        hint = did_you_mean(path[0], sections, "") if path else ""
        raise ConfigError(f"unknown config key {key.strip()!r}{hint} (keys start with one of {sorted(sections)})")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse the value of {key!r}: {exc}") from None
    return path, value


def _set_path(raw: dict, path: Sequence[str], value: Any, key: str) -> None:
    node = raw
    for p in path[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"unknown config key {key!r}: {p!r} is not a section")
    node[path[-1]] = value


def apply_overrides(raw: dict, overrides: Iterable[str], sections: Iterable[str]) -> dict:
    """``section.key=value`` overrides applied to a copy of the mapping ``raw``."""
    out = copy.deepcopy(raw)
    sections = list(sections)
    for item in overrides:
        path, value = parse_override(item, sections)
        _set_path(out, path, value, ".".join(path))
    return out


class Layers:
    """Configuration layers with their sources, merged in order (later wins).

    >>> layers = Layers().add("defaults", {"train": {"lr": 0.01}}).add_overrides(["train.lr=0.1"], ["train"])
    >>> layers.merged()["train"]["lr"], layers.source_of(["train", "lr"])
    (0.1, '--set train.lr=0.1')
    """

    def __init__(self) -> None:
        self.layers: list[tuple[str, dict]] = []

    def add(self, source: str, mapping: dict | None) -> Layers:
        if mapping:
            if not isinstance(mapping, dict):
                raise ConfigError(f"{source}: expected a mapping, got {type(mapping).__name__}")
            self.layers.append((source, copy.deepcopy(mapping)))
        return self

    def add_file(self, path: str | Path | None, what: str = "config file") -> Layers:
        if path is not None:
            self.add(str(path), read_yaml_mapping(path, what))
        return self

    def add_overrides(self, overrides: Iterable[str] | None, sections: Iterable[str]) -> Layers:
        sections = list(sections)
        for item in overrides or []:
            path, value = parse_override(item, sections)
            raw: dict = {}
            _set_path(raw, path, value, ".".join(path))
            self.layers.append((f"--set {item.strip()}", raw))
        return self

    def merged(self) -> dict:
        out: dict = {}
        for _, mapping in self.layers:
            out = deep_merge(out, mapping)
        return out

    def source_of(self, path: Sequence[Any]) -> str | None:
        """The last layer that set ``path`` (or the longest prefix of it that a layer set)."""
        for n in range(len(path), 0, -1):
            for source, mapping in reversed(self.layers):
                node: Any = mapping
                for p in path[:n]:
                    if not isinstance(node, dict) or p not in node:
                        break
                    node = node[p]
                else:
                    return source
        return None


def _fields_at(schema: type[BaseModel] | None, loc: Sequence[Any]) -> list[str]:
    """The field names of the (nested) model at ``loc`` inside ``schema``."""
    model = schema
    for part in loc:
        field = model.model_fields.get(str(part)) if model is not None else None
        if field is None:
            return []
        ann = field.annotation
        candidates = [ann, *typing.get_args(ann)]
        model = next((a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return list(model.model_fields) if model is not None else []


def validation_message(exc: ValidationError, layers: Layers | None = None, prefix: Sequence[str] = (),
                       schema: type[BaseModel] | None = None) -> str:  # fmt: skip
    """A pydantic error as one line naming each bad key (``unknown config key 'train.lrr'``),
    with, given the ``schema``, the nearest valid key, and, with ``layers``, the file or
    ``--set`` it came from."""
    errs = []
    for e in exc.errors():
        loc = [*prefix, *(str(p) for p in e["loc"])]
        key = ".".join(loc)
        source = layers.source_of(loc) if layers is not None and loc else None
        where = f" (from {source})" if source else ""
        if e["type"] == "extra_forbidden":
            prefix = ".".join(loc[:-1]) + "." if len(loc) > 1 else ""
            hint = did_you_mean(str(e["loc"][-1]), _fields_at(schema, e["loc"][:-1]), prefix)
            errs.append(f"unknown config key {key!r}{where}{hint}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            errs.append(f"{key}: {msg}{where}" if key else msg)
    return "; ".join(errs)


def validate(schema: type[BaseModel], raw: dict, layers: Layers | None = None, where: str | None = None,
             prefix: Sequence[str] = ()) -> Any:  # fmt: skip
    """``schema(**raw)``, with a :class:`ConfigError` that names each bad key and its source.

    ``prefix`` is the location of ``raw`` inside the layered mapping (``("model",)`` when
    validating a model's parameters)."""
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        msg = validation_message(exc, layers, prefix, schema)
        raise ConfigError(f"{where}: {msg}" if where else msg) from None
