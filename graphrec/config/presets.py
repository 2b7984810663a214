"""Presets: the built-in YAML of each model per task, and the resolution of a task config.

``presets/node/<model>.yaml`` holds a backbone's node-classification hyperparameters (from
its paper), ``presets/rec/<model>.yaml`` its recommendation settings, ``presets/ads/<model>.yaml``
its ad-targeting settings. Each may have a
``datasets:`` mapping of per-dataset sections layered over it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from graphrec.config.base import ConfigError, Layers, did_you_mean, validate
from graphrec.models.index import UnknownModelError, model_info

TASKS = ("node", "rec", "ads")


def preset_path(task: str, model: str):
    """The preset file of ``model`` for ``task``."""
    if task not in TASKS:
        raise ValueError(f"unknown preset task {task!r}; choose one of {TASKS}")
    return resources.files("graphrec.config") / "presets" / task / f"{model.lower()}.yaml"


def preset(task: str, model: str) -> dict:
    """The preset mapping of ``model`` for ``task``.

    Raises:
        ConfigError: the preset file is missing (every registered model ships one per task; a
            missing one means an incomplete installation, and silently using the schema's
            defaults would train another model than the one documented).
    """
    path = preset_path(task, model)
    if not path.is_file():
        raise ConfigError(f"the {task} preset of {model!r} is missing ({path}): this graphrec installation is "
                          "incomplete; reinstall it (pip install --force-reinstall graphrec)")  # fmt: skip
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def model_name(model: str) -> str:
    """The registered name of ``model`` (case-insensitive), or a :class:`ConfigError` listing them."""
    try:
        return model_info(model).name
    except UnknownModelError as exc:
        raise ConfigError(str(exc)) from None


def merge_layers(
    schema: type[BaseModel],
    name: str,
    base: dict,
    source: str,
    dataset: str | None,
    overrides: Iterable[str] | None,
    config_file: str | Path | None,
    layers: Iterable[tuple[str, dict]],
    same_name: Callable[[str], bool],
    what: str,
) -> tuple[dict, Layers]:
    """The merged mapping of a task config and its layers (for error sources), not yet validated: ``{model: {name}}``
    -> ``base`` (a preset, from ``source``) -> its ``datasets:`` section for ``dataset`` -> ``layers`` ->
    ``config_file`` -> ``overrides``; ``model.name`` is set to ``name``.

    Raises:
        ConfigError: a section ``schema`` does not have, or a ``model.name`` for which ``same_name`` is false (the
            ``what`` being configured: model, objective).
    """
    base = dict(base)
    per_dataset = base.pop("datasets", {}) or {}
    sections = list(schema.model_fields)
    stack = Layers().add("defaults", {"model": {"name": name}}).add(source, base)
    if dataset is not None:
        for key, section in per_dataset.items():
            if key.lower() == dataset.lower():
                stack.add(f"{source} (datasets: {key})", section)
    for src, mapping in layers:
        stack.add(src, mapping)
    stack.add_file(config_file)
    stack.add_overrides(overrides, sections)
    raw = stack.merged()
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError("; ".join(f"unknown config key {k!r} (from {stack.source_of([k])}){did_you_mean(k, sections)} "
                                    f"(sections are {sections})" for k in unknown))  # fmt: skip
    given = (raw.get("model") or {}).get("name", name)
    if not same_name(str(given)):
        raise ConfigError(f"model.name {given!r} (from {stack.source_of(['model', 'name'])}) "
                          f"differs from the {what} being configured, {name!r}")  # fmt: skip
    raw["model"] = {**raw.get("model", {}), "name": name}
    return raw, stack


def resolve_task_config(
    schema: type[BaseModel],
    task: str,
    model: str,
    dataset: str | None = None,
    overrides: Iterable[str] | None = None,
    config_file: str | Path | None = None,
    layers: Iterable[tuple[str, dict]] = (),
) -> Any:
    """The configuration of ``model`` for ``task`` after every layer, validated against ``schema``.

    Layers, later wins: ``schema``'s defaults -> the model's preset -> its section for
    ``dataset`` -> ``layers`` (extra ``(source, mapping)`` pairs, e.g. a pipeline's) ->
    ``config_file`` -> ``overrides`` (``section.key=value``). ``schema`` has a ``model``
    mapping (``name`` plus the backbone's parameters, validated by the model registry).

    Raises:
        ConfigError: an unknown model, key or value; the message names the key and the
            file or ``--set`` it came from.
    """
    name = model_name(model)
    raw, stack = merge_layers(schema, name, preset(task, name), str(preset_path(task, name)), dataset, overrides,
                              config_file, layers, lambda given: model_name(given) == name, "model")  # fmt: skip
    params = {k: v for k, v in raw["model"].items() if k != "name"}
    validate(model_info(name).params, params, stack, where=f"invalid parameters for model {name!r}", prefix=("model",))
    return validate(schema, raw, stack)
