"""Exceptions raised by the artifact registry. All derive from :class:`ArtifactError`."""

from __future__ import annotations


class ArtifactError(Exception):
    """Base class for artifact-registry errors."""


class ArtifactNotFoundError(ArtifactError):
    """A version, the production version, or the registry itself does not exist."""


class ArtifactLockedError(ArtifactError):
    """Another process held the registry's writer lock for longer than the wait allowed."""


class CorruptArtifactError(ArtifactError):
    """A manifest or the production pointer cannot be read."""
