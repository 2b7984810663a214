"""Exceptions raised by the graph store. All derive from :class:`StoreError`."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for graph-store errors."""


class StoreNotFoundError(StoreError):
    """The folder holds no committed store (no ``CURRENT`` pointer)."""


class StoreExistsError(StoreError):
    """``init`` was asked to create a store where one already exists."""


class StoreLockedError(StoreError):
    """Another process holds the store's writer lock."""


class SchemaError(StoreError):
    """A log schema is invalid, or does not match the store."""


class VersionNotFoundError(StoreError):
    """The requested version was never committed."""


class CorruptStoreError(StoreError):
    """A committed file is missing or does not match its checksum."""


class SourceError(StoreError):
    """An input source could not be resolved (no such file, unsupported format)."""
