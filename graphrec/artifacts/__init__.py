"""Model registry: publish versioned model folders, point production at one, roll back.

The command line is :mod:`graphrec.artifacts.cli` (``graphrec artifacts``).
"""

from graphrec.artifacts.errors import (
    ArtifactError,
    ArtifactLockedError,
    ArtifactNotFoundError,
    CorruptArtifactError,
)
from graphrec.artifacts.registry import (
    FAULT_ENV,
    FAULT_POINTS,
    FORMAT,
    ArtifactRegistry,
    ArtifactVersion,
    FileRecord,
    Manifest,
    ProductionPointer,
    is_registry,
    production_dir,
)

__all__ = [
    "FAULT_ENV",
    "FAULT_POINTS",
    "FORMAT",
    "ArtifactError",
    "ArtifactLockedError",
    "ArtifactNotFoundError",
    "ArtifactRegistry",
    "ArtifactVersion",
    "CorruptArtifactError",
    "FileRecord",
    "Manifest",
    "ProductionPointer",
    "is_registry",
    "production_dir",
]
