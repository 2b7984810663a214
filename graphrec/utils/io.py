"""Atomic file writes: write to a temporary file in the same folder, fsync, rename.

A reader never sees a half-written file, and a crash at any instant leaves either the
old file or the new one in place. Also here: the one lock of the package
(:func:`exclusive_lock`) and :func:`load_plain_pickle`, the only way graphrec reads a pickle.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def default_mode(kind: str = "file") -> int:
    """Permissions a plain ``open()`` (``kind="file"``: 0o666) or ``mkdir()`` (``"dir"``: 0o777)
    would give a new entry, less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if kind == "dir" else 0o666) & ~mask


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory entry so a rename inside it survives a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; on success it replaces ``path``."""
    if "w" not in mode:
        raise ValueError(f"atomic_open is for writing, got mode {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, default_mode())  # mkstemp creates 0600; the result is an ordinary file
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


class LockHeld(RuntimeError):
    """Another process holds an :func:`exclusive_lock`; ``holder`` is what it recorded."""

    def __init__(self, path: Path, holder: dict[str, Any]):
        super().__init__(f"{path} is locked by {holder or 'another process'}")
        self.path, self.holder = path, holder

    def who(self) -> str:
        """`` (pid P on HOST, since T)``, or an empty string when the holder recorded nothing."""
        h = self.holder
        return f" (pid {h.get('pid')} on {h.get('host')}, since {h.get('since')})" if h else ""


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, *, wait: float = 0.0, **note: Any) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path``, or raise :class:`LockHeld`.

    Waits up to ``wait`` seconds for another holder to let go (0: do not wait). While held,
    the file records the holder (pid, host, start time and ``note``) for the error message
    of the next process that tries; the kernel releases the lock when the holder dies, so a
    crash never leaves a stale lock behind. This is the one lock of the package: the store
    writer, the artifact registry and the nightly pipeline all take it.
    """
    import datetime as dt
    import fcntl
    import socket
    import time

    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                holder: dict[str, Any] = {}
                with contextlib.suppress(OSError, ValueError):
                    holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
                raise LockHeld(path, holder) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **note}  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info, default=str).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class _PlainUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global: only built-in containers and scalars load."""

    def __init__(self, fh: IO[bytes], source: str):
        super().__init__(fh)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        # Every class, function and callable of a pickle is reached through here (GLOBAL,
        # STACK_GLOBAL, and the REDUCE/NEWOBJ/BUILD that need one); refusing them all leaves
        # nothing that runs code.
        raise pickle.UnpicklingError(
            f"{self.source}: refused to load the global {module}.{name}; only plain data "
            "(dict, list, tuple, set, str, bytes, int, float, bool, None) is read from a pickle"
        )


def load_plain_pickle(path: str | os.PathLike) -> Any:
    """The object in the pickle file ``path``, read with an unpickler that refuses every global.

    A pickle can name any importable callable and have it called while loading; this reader
    refuses that (``find_class`` raises for every ``module.name``), so only the built-in
    containers and scalars that the pickle opcodes build themselves can come back: ``dict``,
    ``list``, ``tuple``, ``set``, ``frozenset``, ``str``, ``bytes``, ``int``, ``float``,
    ``bool`` and ``None``. The caller still checks that the structure is the one it expects.

    Raises:
        pickle.UnpicklingError: the pickle names a global (the message gives ``module.name``
            and ``path``), uses persistent ids, or is damaged.
        OSError: the file cannot be read.
    """
    with open(path, "rb") as fh:
        try:
            return _PlainUnpickler(fh, str(path)).load()
        except pickle.UnpicklingError as exc:
            if str(path) in str(exc):
                raise
            raise pickle.UnpicklingError(f"{path}: {exc}") from exc
        except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
            msg = f"{path}: not a readable pickle ({type(exc).__name__}: {exc})"
            raise pickle.UnpicklingError(msg) from exc
