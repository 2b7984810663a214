"""Lazy re-exports: a package lists its public names and the modules that define them, and a
name's module is imported on first use (so ``graphrec --help`` and ``import graphrec`` do not
load torch)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package``: ``exports`` maps a public name to the module
    that defines it (absolute, or relative to ``package`` when it starts with a dot)."""
    namespace = import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module if not module.startswith(".") else package + module), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    return sorted(exports), __getattr__
