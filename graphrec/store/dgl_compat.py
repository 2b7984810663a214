"""Import DGL beside a recent torch.

DGL 2.1.0 (the newest Linux wheel) imports its ``dgl.graphbolt`` package eagerly, and that
package needs a C++ library built only for torch <= 2.2.1 (and ``torchdata.datapipes``).
Graphs, message passing, samplers and METIS do not use it, so :func:`import_dgl`
registers a stand-in module for ``dgl.graphbolt`` before ``import dgl``; touching any of
its names raises an error that says why.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

_EXTRA_HINT = "install the optional extra: pip install 'graphrec[dgl]' (dgl==2.1.0, packaging, pandas)"


class _GraphboltStub(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"dgl.graphbolt.{name} is unavailable: DGL's graphbolt library is built only for "
            "torch <= 2.2.1; graphrec registers a stand-in so the rest of DGL works"
        )


def dgl_available() -> bool:
    return importlib.util.find_spec("dgl") is not None


def import_dgl() -> types.ModuleType:
    """Return the ``dgl`` module, importing it with the graphbolt stand-in if needed.

    Raises:
        ImportError: DGL is not installed (the message names the ``graphrec[dgl]`` extra),
            or it fails to import for another reason.
    """
    if "dgl" in sys.modules and hasattr(sys.modules["dgl"], "heterograph"):
        return sys.modules["dgl"]
    if not dgl_available():
        raise ImportError(f"DGL is not installed; {_EXTRA_HINT}")
    if "dgl.graphbolt" not in sys.modules:
        stub = _GraphboltStub("dgl.graphbolt", "stand-in registered by graphrec.store.dgl_compat")
        stub.__spec__ = importlib.machinery.ModuleSpec("dgl.graphbolt", None)
        stub.__path__ = []
        sys.modules["dgl.graphbolt"] = stub
    try:
        import dgl
    except Exception as exc:  # broken install, incompatible binary
        sys.modules.pop("dgl", None)
        raise ImportError(f"DGL is installed but failed to import ({exc}); {_EXTRA_HINT}") from exc
    return dgl
