"""The artifact registry: immutable model versions, an atomic production pointer, rollback.

Layout of a registry folder::

    PRODUCTION          JSON: the production version, how it got there, the rollback chain
    history.jsonl       append-only log of promotions and rollbacks, one JSON object a line
    .lock               fcntl lock file of the single writer
    versions/000001/    one complete version: the files it was published with + manifest.json
    staging/<name>.<token>/   folders being built (ArtifactRegistry.staging_dir); never read
    .trash/             versions and staging folders being deleted (renamed here first)

A version is built in a staging folder, described by ``manifest.json`` (sha256 and size of
every file, the caller's metadata), then moved to ``versions/NNNNNN`` with one
``os.rename``: a version folder exists complete or not at all. ``PRODUCTION`` is replaced
atomically (temporary file, fsync, rename, fsync of the folder), so it always names either
the old or the new production version. It also carries the chain of earlier production
versions, so the pointer and the rollback target change together in that one rename;
``history.jsonl`` is the audit trail of the same events, completed from ``PRODUCTION`` by
the next writer if a crash came between the two.

A crash at any instant leaves the registry readable: leftovers in ``staging/`` and
``.trash/`` are ignored by readers and removed by the next :meth:`ArtifactRegistry.prune`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graphrec.artifacts.errors import (
    ArtifactError,
    ArtifactLockedError,
    ArtifactNotFoundError,
    CorruptArtifactError,
)
from graphrec.utils.faults import fault_point
from graphrec.utils.io import LockHeld, atomic_write_json, exclusive_lock, fsync_dir

FORMAT = "graphrec-artifact/1"
MANIFEST = "manifest.json"
PRODUCTION = "PRODUCTION"
HISTORY = "history.jsonl"
LOCK = ".lock"
VERSIONS = "versions"
STAGING = "staging"
TRASH = ".trash"

#: Environment variable naming a publish/promote step at which the writer kills itself (crash tests).
FAULT_ENV = "GRAPHREC_ARTIFACTS_FAULT"
FAULT_POINTS = ("after_manifest", "after_move", "after_pointer")

#: Earlier production versions remembered in ``PRODUCTION`` for rollback.
CHAIN_LIMIT = 100

_VERSION_NAME = re.compile(r"^\d{6,}$")
_STAGING_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def version_name(version: int) -> str:
    """Folder name of a version under ``versions/``: six digits, zero-padded."""
    return f"{version:06d}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class FileRecord(BaseModel):
    """Checksum and size of one file of a version."""

    model_config = ConfigDict(frozen=True)

    sha256: str  # hex digest of the file's bytes
    bytes: int


class Manifest(BaseModel):
    """``manifest.json`` of a version: what was published, when, and every file's checksum."""

    # a NaN metric in meta is written as NaN (Python's json reads it), not silently as null
    model_config = ConfigDict(ser_json_inf_nan="constants")

    format: Literal["graphrec-artifact/1"] = FORMAT
    version: int
    created_at: dt.datetime
    meta: dict[str, Any] = Field(default_factory=dict)
    files: dict[str, FileRecord]


class ProductionPointer(BaseModel):
    """Contents of ``PRODUCTION``: the production version and how it got there."""

    version: int
    previous: int | None = None
    action: Literal["promote", "rollback"] = "promote"
    reason: str = ""
    time: dt.datetime
    #: Earlier production versions, most recent first; rollback walks this list.
    chain: list[int] = Field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The ``history.jsonl`` line of this change."""
        return self.model_dump(mode="json", exclude={"chain"})


@dataclass(frozen=True)
class ArtifactVersion:
    """One published version: its folder, metadata and file checksums."""

    version: int
    path: Path
    created_at: dt.datetime
    meta: dict[str, Any]
    files: dict[str, FileRecord]
    is_production: bool = False

    @property
    def bytes(self) -> int:
        """Total size of the version's files (manifest excluded)."""
        return sum(f.bytes for f in self.files.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (what ``graphrec artifacts list --json`` prints)."""
        return {
            "version": self.version,
            "path": str(self.path),
            "created_at": self.created_at.isoformat(),
            "meta": self.meta,
            "files": {k: v.model_dump() for k, v in self.files.items()},
            "bytes": self.bytes,
            "is_production": self.is_production,
        }


def is_registry(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like an artifact registry root (has ``versions/`` or ``PRODUCTION``)."""
    p = Path(path)
    return (p / VERSIONS).is_dir() or (p / PRODUCTION).is_file()


def production_dir(root: str | os.PathLike) -> Path:
    """The folder of the production version of the registry at ``root``.

    Reads only ``PRODUCTION`` (no manifest, no checksums), so it is cheap enough to call on
    every request and a promotion or rollback is seen on the next call.

    Raises:
        ArtifactNotFoundError: no production version, or its folder is gone.
    """
    p = Path(root)
    ptr = _read_pointer(p)
    if ptr is None:
        raise ArtifactNotFoundError(
            f"the artifact registry at {p} has no production version; "
            "promote one with `graphrec artifacts promote VERSION`"
        )
    folder = p / VERSIONS / version_name(ptr.version)
    if not folder.is_dir():
        raise ArtifactNotFoundError(
            f"{p / PRODUCTION} names version {ptr.version}, but {folder} does not exist"
        )
    return folder


def _read_pointer(root: Path) -> ProductionPointer | None:
    path = root / PRODUCTION
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return ProductionPointer.model_validate_json(raw)
    except ValidationError as exc:
        raise CorruptArtifactError(f"{path} is not a valid production pointer: {exc}") from None


class ArtifactRegistry:
    """A versioned model registry in one folder (see the module docstring for the layout).

    Readers never lock: versions are immutable and ``PRODUCTION`` is replaced atomically,
    so a long-lived object sees every change. Writers (:meth:`publish`, :meth:`promote`,
    :meth:`rollback`, :meth:`prune`) hold an exclusive fcntl lock on ``.lock``; a writer that
    finds it held waits up to ``lock_timeout`` seconds, then raises
    :class:`ArtifactLockedError`. :meth:`lock` is re-entrant in one thread, so a caller can
    make check-then-publish atomic::

        with reg.lock():
            if not reg.find(run_id=run_id):
                reg.publish(staging, {"run_id": run_id})

    ``keep`` is how many versions :meth:`publish` leaves after pruning (``None``: never
    prune); ``stale_after`` is the age in seconds after which an untouched staging folder
    is considered abandoned.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        keep: int | None = 10,
        lock_timeout: float = 10.0,
        stale_after: float = 24 * 3600.0,
    ):
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be at least 1 (or None to never prune), got {keep}")
        self.root = Path(root)
        self.keep = keep
        self.lock_timeout = lock_timeout
        self.stale_after = stale_after
        self._lock_owner: int | None = None
        self._lock_depth = 0

    def __repr__(self) -> str:
        return f"ArtifactRegistry({str(self.root)!r})"

    @property
    def versions_dir(self) -> Path:
        return self.root / VERSIONS

    # ------------------------------------------------------------------------------ reading
    def version_numbers(self) -> list[int]:
        """Numbers of the versions on disk, ascending (no manifest is read)."""
        try:
            entries = list(os.scandir(self.versions_dir))
        except FileNotFoundError:
            return []
        return sorted(int(e.name) for e in entries if _VERSION_NAME.match(e.name) and e.is_dir())

    def versions(self) -> list[ArtifactVersion]:
        """Every version with a readable manifest, ascending (:meth:`verify` reports the others)."""
        prod = self._production_number()
        out = []
        for n in self.version_numbers():
            with contextlib.suppress(ArtifactNotFoundError, CorruptArtifactError):
                out.append(self._load(n, prod))
        return out

    def get(self, version: int) -> ArtifactVersion:
        """The version numbered ``version``; :class:`ArtifactNotFoundError` names those that exist."""
        return self._load(version, self._production_number())

    @property
    def production(self) -> ArtifactVersion | None:
        """The production version, or ``None`` before the first promotion."""
        ptr = _read_pointer(self.root)
        if ptr is None:
            return None
        if not (self.versions_dir / version_name(ptr.version)).is_dir():
            raise ArtifactNotFoundError(
                f"{self.root / PRODUCTION} names version {ptr.version}, which does not exist in "
                f"{self.versions_dir}; {self._existing_phrase()}"
            )
        return self._load(ptr.version, ptr.version)

    @property
    def rollback_target(self) -> ArtifactVersion | None:
        """The version :meth:`rollback` would make production now, or ``None``."""
        ptr = _read_pointer(self.root)
        if ptr is None:
            return None
        target = self._rollback_index(ptr)
        return None if target is None else self._load(ptr.chain[target], ptr.version)

    def find(self, **meta_equal: Any) -> list[ArtifactVersion]:
        """Versions whose metadata has every given key with an equal value, ascending."""
        return [
            v
            for v in self.versions()
            if all(k in v.meta and v.meta[k] == x for k, x in meta_equal.items())
        ]

    def history(self) -> list[dict[str, Any]]:
        """Promotions and rollbacks, oldest first: ``time, version, previous, action, reason``.

        A torn last line (a writer killed mid-append) is ignored; an unreadable line before
        the last raises :class:`CorruptArtifactError`.
        """
        path = self.root / HISTORY
        try:
            lines = path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        while lines and not lines[-1].strip(b"\x00 \t\r"):
            lines.pop()
        out = []
        for i, line in enumerate(lines):
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                if i == len(lines) - 1:
                    break  # torn by a crash mid-append; the next writer truncates it
                raise CorruptArtifactError(
                    f"{path}, line {i + 1} is not a JSON object: {exc}"
                ) from None
            out.append(rec)
        return out

    def verify(self, version: int | None = None) -> list[str]:
        """Problems found: files missing, extra or changed against the manifest checksums.

        ``version=None`` checks every version and the production pointer. An empty list
        means intact.
        """
        if version is not None:
            if version not in self.version_numbers():
                raise self._not_found(version)
            return self._verify_one(version)
        problems: list[str] = []
        for n in self.version_numbers():
            problems += self._verify_one(n)
        try:
            ptr = _read_pointer(self.root)
        except CorruptArtifactError as exc:
            problems.append(str(exc))
        else:
            if ptr is not None and not (self.versions_dir / version_name(ptr.version)).is_dir():
                problems.append(f"{PRODUCTION} names version {ptr.version}, which does not exist")
        return problems

    # ------------------------------------------------------------------------------ writing
    def staging_dir(self, name: str) -> Path:
        """A fresh, empty folder ``staging/<name>.<token>`` to build a version in.

        It lies on the registry's filesystem, so :meth:`publish` can move it with a rename.
        """
        if not _STAGING_NAME.match(name):
            raise ValueError(
                f"staging name {name!r} must be 1-100 characters of letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        parent = self.root / STAGING
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            path = parent / f"{name}.{secrets.token_hex(4)}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            fsync_dir(parent)
            return path

    def publish(
        self,
        staging_dir: str | os.PathLike,
        meta: dict[str, Any] | None = None,
        *,
        promote: bool = True,
        reason: str = "",
    ) -> ArtifactVersion:
        """Publish the files in ``staging_dir`` as the next version and return it.

        Every file's sha256 and size go into ``manifest.json`` (with ``meta``, which must be
        JSON-serialisable), the folder is moved to ``versions/NNNNNN`` with one rename, and
        with ``promote=True`` production is pointed at it. Then versions beyond ``keep`` are
        pruned. ``staging_dir`` must be on the registry's filesystem (create it with
        :meth:`staging_dir`); it is gone afterwards. ``manifest.json`` is a reserved name.
        """
        src = Path(staging_dir)
        if not src.is_dir() or src.is_symlink():
            raise ArtifactError(f"staging folder {src} does not exist (or is not a folder)")
        src = src.resolve()
        root = self.root.resolve() if self.root.exists() else self.root.absolute()
        if src == root or root.is_relative_to(src) or src.is_relative_to(root / VERSIONS):
            raise ArtifactError(
                f"{src} cannot be published: it is the registry, holds it, or is a published version"
            )
        meta = dict(meta or {})
        if bad := [k for k in meta if not isinstance(k, str)]:
            raise ArtifactError(f"meta keys must be strings, got {bad!r}")
        try:
            json.dumps(meta, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"meta must be JSON-serialisable: {exc}") from None
        files = _describe(src)  # checksums and fsync outside the lock: the slow part
        if not files:
            raise ArtifactError(f"staging folder {src} holds no files")
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        if os.stat(src).st_dev != os.stat(self.versions_dir).st_dev:
            raise ArtifactError(
                f"staging folder {src} is on another filesystem than the registry {self.root}; "
                "create it with ArtifactRegistry.staging_dir(name) so it can be moved with a rename"
            )
        with self.lock():
            self._repair_history()
            number = self._next_version()
            manifest = Manifest(version=number, created_at=_now(), meta=meta, files=files)
            atomic_write_json(src / MANIFEST, manifest.model_dump(mode="json"))
            fault_point(FAULT_ENV, "after_manifest")
            dest = self.versions_dir / version_name(number)
            try:
                os.rename(src, dest)
            except FileNotFoundError:
                raise ArtifactError(
                    f"staging folder {src} disappeared before it could be moved to {dest}"
                ) from None
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    raise ArtifactError(
                        f"cannot move {src} to {dest}: not on the same filesystem"
                    ) from None
                raise
            fsync_dir(self.versions_dir)
            fsync_dir(src.parent)
            fault_point(FAULT_ENV, "after_move")
            if promote:
                self._set_production(number, "promote", reason)
            if self.keep is not None:
                self._prune(self.keep)
            return self.get(number)

    def promote(self, version: int, reason: str = "") -> ArtifactVersion:
        """Make ``version`` production (atomic); recorded in the history.

        Promoting the current production version changes nothing.
        """
        with self._writer():
            self._repair_history()
            if version not in self.version_numbers():
                raise self._not_found(version)
            ptr = _read_pointer(self.root)
            if ptr is None or ptr.version != version:
                self._set_production(version, "promote", reason)
            return self.get(version)

    def rollback(self, reason: str = "") -> ArtifactVersion:
        """Make the version that was production before the current one production again.

        Walks back through earlier production versions, skipping those that were pruned;
        a second rollback goes one step further back. Raises :class:`ArtifactError` when
        there is nothing to go back to.
        """
        with self._writer():
            self._repair_history()
            ptr = _read_pointer(self.root)
            if ptr is None:
                raise ArtifactNotFoundError(
                    f"the registry at {self.root} has no production version to roll back from"
                )
            i = self._rollback_index(ptr)
            if i is None:
                earlier = ", ".join(map(str, ptr.chain))
                if earlier:
                    why = f"the earlier production versions ({earlier}) no longer exist"
                else:
                    why = f"version {ptr.version} is the first production version"
                raise ArtifactError(f"nothing to roll back to in {self.root}: {why}")
            self._set_production(ptr.chain[i], "rollback", reason, chain=ptr.chain[i + 1 :])
            return self.get(ptr.chain[i])

    def prune(self, keep: int) -> list[int]:
        """Delete the oldest versions beyond the ``keep`` newest; return their numbers.

        The production version and the rollback target are never deleted (they are kept on
        top of ``keep``). Abandoned staging folders (a crashed publish, or untouched for
        ``stale_after`` seconds) and leftovers of earlier deletions are removed too.
        """
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        with self._writer():
            return self._prune(keep)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the writer lock (``.lock``, ``fcntl.flock``); re-entrant within one thread."""
        me = threading.get_ident()
        if self._lock_owner == me:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(exclusive_lock(self.root / LOCK, wait=self.lock_timeout, argv=sys.argv[:4]))
            except LockHeld as exc:
                raise ArtifactLockedError(
                    f"the artifact registry at {self.root} is being written by another process"
                    f"{exc.who()}; waited {self.lock_timeout:g} s: retry when it has finished"
                ) from None
            self._lock_owner, self._lock_depth = me, 1
            try:
                yield
            finally:
                self._lock_owner, self._lock_depth = None, 0

    # ------------------------------------------------------------------------------ internals
    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """The writer lock of an existing registry (promote, rollback and prune create none)."""
        if not self.root.is_dir():
            raise ArtifactNotFoundError(f"no artifact registry at {self.root}")
        with self.lock():
            yield

    def _production_number(self) -> int | None:
        try:
            ptr = _read_pointer(self.root)
        except CorruptArtifactError:
            return None
        return None if ptr is None else ptr.version

    def _existing_phrase(self) -> str:
        numbers = self.version_numbers()
        return f"versions: {', '.join(map(str, numbers))}" if numbers else "it has no versions"

    def _not_found(self, version: int) -> ArtifactNotFoundError:
        return ArtifactNotFoundError(
            f"version {version} does not exist in the registry at {self.root}; {self._existing_phrase()}"
        )

    def _load(self, version: int, production: int | None) -> ArtifactVersion:
        path = self.versions_dir / version_name(version)
        try:
            raw = (path / MANIFEST).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            if path.is_dir():
                raise CorruptArtifactError(f"{path} has no {MANIFEST}") from None
            raise self._not_found(version) from None
        try:
            m = Manifest.model_validate_json(raw)
        except ValidationError as exc:
            raise CorruptArtifactError(
                f"{path / MANIFEST} is not a valid manifest: {exc}"
            ) from None
        if m.version != version:
            raise CorruptArtifactError(
                f"{path / MANIFEST} describes version {m.version}, not {version}"
            )
        return ArtifactVersion(version, path, m.created_at, m.meta, m.files, version == production)

    def _rollback_index(self, ptr: ProductionPointer) -> int | None:
        existing = set(self.version_numbers())
        for i, v in enumerate(ptr.chain):
            if v != ptr.version and v in existing:
                return i
        return None

    def _verify_one(self, version: int) -> list[str]:
        label = f"version {version}"
        try:
            av = self._load(version, None)
        except ArtifactError as exc:
            return [f"{label}: {exc}"]
        problems = []
        for rel, rec in sorted(av.files.items()):
            p = av.path / rel
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                problems.append(f"{label}: manifest names a path outside the version: {rel}")
            elif not p.is_file():
                problems.append(f"{label}: missing file {rel}")
            elif p.stat().st_size != rec.bytes:
                problems.append(
                    f"{label}: changed file {rel} ({p.stat().st_size} bytes, manifest says {rec.bytes})"
                )
            elif (digest := _sha256(p)) != rec.sha256:
                problems.append(
                    f"{label}: changed file {rel} (sha256 {digest[:12]}…, manifest says {rec.sha256[:12]}…)"
                )
        for p in sorted(av.path.rglob("*")):
            rel = p.relative_to(av.path).as_posix()
            if rel != MANIFEST and rel not in av.files and not p.is_dir():
                problems.append(f"{label}: extra file {rel}")
        return problems

    def _next_version(self) -> int:
        seen = set(self.version_numbers())
        ptr = _read_pointer(self.root)
        if ptr is not None:
            seen |= {ptr.version, *ptr.chain}
        for rec in self.history():
            for key in ("version", "previous"):
                if isinstance(rec.get(key), int):
                    seen.add(rec[key])
        return max(seen, default=0) + 1

    def _set_production(
        self,
        version: int,
        action: Literal["promote", "rollback"],
        reason: str,
        chain: list[int] | None = None,
    ) -> None:
        cur = _read_pointer(self.root)
        if chain is None:
            chain = [] if cur is None else [cur.version, *cur.chain]
        ptr = ProductionPointer(
            version=version,
            previous=None if cur is None else cur.version,
            action=action,
            reason=reason,
            time=_now(),
            chain=chain[:CHAIN_LIMIT],
        )
        atomic_write_json(self.root / PRODUCTION, ptr.model_dump(mode="json"))
        fault_point(FAULT_ENV, "after_pointer")
        self._append_history(ptr.record())

    def _repair_history(self) -> None:
        """Append the change ``PRODUCTION`` records if a crash kept it out of the history."""
        ptr = _read_pointer(self.root)
        if ptr is None:
            return
        rec = ptr.record()
        last = (self.history() or [None])[-1]
        if last is None or (last.get("version"), last.get("time")) != (rec["version"], rec["time"]):
            self._append_history(rec)

    def _append_history(self, record: dict[str, Any]) -> None:
        path = self.root / HISTORY
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        created = not path.exists()
        with open(path, "ab+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size:
                fh.seek(0)
                data = fh.read()
                if not data.endswith(b"\n"):
                    # a torn line from a crashed append: drop it so the new line stays whole
                    fh.truncate(data.rfind(b"\n") + 1)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if created:
            fsync_dir(self.root)

    def _prune(self, keep: int) -> list[int]:
        numbers = self.version_numbers()
        ptr = _read_pointer(self.root)
        protected = set()
        if ptr is not None:
            protected.add(ptr.version)
            i = self._rollback_index(ptr)
            if i is not None:
                protected.add(ptr.chain[i])
        doomed = [n for n in numbers[: max(len(numbers) - keep, 0)] if n not in protected]
        for n in doomed:
            self._discard(self.versions_dir / version_name(n))
        self._clean_staging()
        trash = self.root / TRASH
        if trash.is_dir():
            for p in trash.iterdir():
                _remove(p)
        for p in self.root.glob(".*.tmp"):  # an atomic write cut short
            _remove(p)
        return doomed

    def _discard(self, path: Path) -> None:
        """Delete a folder by renaming it into ``.trash/`` first, so no half-deleted version is ever visible."""
        trash = self.root / TRASH
        trash.mkdir(exist_ok=True)
        dest = trash / f"{path.name}.{secrets.token_hex(4)}"
        os.rename(path, dest)
        fsync_dir(path.parent)
        _remove(dest)

    def _clean_staging(self) -> None:
        staging = self.root / STAGING
        if not staging.is_dir():
            return
        cutoff = time.time() - self.stale_after
        for p in staging.iterdir():
            if not p.is_dir() or p.is_symlink():
                _remove(p)
            elif _is_crashed_publish(p) or _newest_mtime(p) < cutoff:
                self._discard(p)


def _is_crashed_publish(path: Path) -> bool:
    """A staging folder holding a registry manifest: publish writes it and moves the folder
    within one hold of the lock, so when the lock is free again the publish died."""
    try:
        return json.loads((path / MANIFEST).read_bytes()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    return newest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _describe(src: Path) -> dict[str, FileRecord]:
    """sha256 and size of every file under ``src``, each fsynced so the version is durable
    before any pointer names it."""
    files: dict[str, FileRecord] = {}
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        dirnames.sort()
        for d in dirnames:
            if (here / d).is_symlink():
                raise ArtifactError(
                    f"{here / d} is a symbolic link; a version holds plain files only"
                )
        for name in sorted(filenames):
            p = here / name
            rel = p.relative_to(src).as_posix()
            if rel.startswith(f".{MANIFEST}.") and rel.endswith(".tmp"):
                p.unlink()  # a manifest write cut short by a crash; not part of the version
                continue
            if rel == MANIFEST:
                if not _is_crashed_publish(src):
                    raise ArtifactError(
                        f"{p}: {MANIFEST} is reserved for the registry's manifest; rename the file"
                    )
                continue  # left by an interrupted publish of this folder; rewritten
            if p.is_symlink() or not p.is_file():
                raise ArtifactError(f"{p} is not a plain file; a version holds plain files only")
            with open(p, "rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
                os.fsync(fh.fileno())
                files[rel] = FileRecord(sha256=digest, bytes=os.fstat(fh.fileno()).st_size)
        fsync_dir(here)
    return files
