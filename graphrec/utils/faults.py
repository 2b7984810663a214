"""Crash-test hooks: a process kills itself at a named point when an environment variable names it.

The store (``GRAPHREC_STORE_FAULT``), the artifact registry (``GRAPHREC_ARTIFACTS_FAULT``)
and the nightly pipeline (``GRAPHREC_PIPELINE_FAULT``) each read their own variable, so a
test can crash one writer at one step and check that nothing committed is lost.
"""

from __future__ import annotations

import os
import signal


def fault_point(env: str, name: str) -> None:
    """``SIGKILL`` this process when ``$env`` equals ``name`` (no cleanup, as in a power loss)."""
    if os.environ.get(env) == name:
        os.kill(os.getpid(), signal.SIGKILL)
