"""What every benchmark writes: the environment of the run, results as JSON, and reading them back."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from graphrec.utils.io import atomic_write_json


def environment() -> dict[str, Any]:
    """torch version and threads, Python, CPU and load: what a reader needs to compare times."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_1min": load,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write_results(path: str | Path, rows: list[dict[str, Any]], command: str | None = None) -> None:
    """Write result rows as JSON (atomically), each with the environment and the command that made it."""
    env = environment()
    atomic_write_json(path, [dict(r) | {"environment": env, "command": command} for r in rows])


def load_results(path: str | Path) -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text())
