"""Where datasets live: one data root, plus a writable cache for read-only roots."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from rich.console import Console

ENV_DATA = "GRAPHREC_DATA"
ENV_CACHE = "GRAPHREC_CACHE"

_console = Console(stderr=True)


class DatasetNotAvailableError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable from here."""


def cache_dir() -> Path:
    """Writable cache: ``$GRAPHREC_CACHE``, else ``$XDG_CACHE_HOME/graphrec``, else ``~/.cache/graphrec``."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graphrec"


def data_root() -> Path:
    """The data root: ``$GRAPHREC_DATA`` when set, else the user cache dir."""
    env = os.environ.get(ENV_DATA)
    return Path(env).expanduser() if env else cache_dir()


def writable_copy(src: Path, rel: str, derived: tuple[str, ...] = ("processed",)) -> Path:
    """Mirror the folder ``src`` into the cache and return the mirror.

    Used when the data root is read-only but a loader must write next to the raw files
    (PyG writes ``processed/`` beside ``raw/``). The mirror is keyed by ``src``'s absolute
    path, so two data roots never share one (nor what a loader derived from either); a file
    is copied again when its size or modification time changed, and then the folders
    ``derived`` beside the mirror (PyG's ``processed/``) are removed, so they are rebuilt
    from the new files instead of being served stale.
    """
    import hashlib

    key = hashlib.sha1(str(Path(src).resolve()).encode()).hexdigest()[:12]
    dst = cache_dir() / "mirrors" / key / rel
    changed = False
    for f in src.rglob("*"):
        if f.is_dir():
            continue
        target = dst / f.relative_to(src)
        st = f.stat()
        if target.exists() and target.stat().st_size == st.st_size and int(target.stat().st_mtime) == int(st.st_mtime):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(f, tmp)
        os.utime(tmp, (st.st_atime, st.st_mtime))
        os.replace(tmp, target)
        changed = True
    if changed:
        for name in derived:
            shutil.rmtree(dst.parent / name, ignore_errors=True)
    return dst


def missing_error(dataset: str, missing: list[Path], url: str, reason: str) -> DatasetNotAvailableError:
    shown = ", ".join(str(p) for p in missing[:4]) + (" ..." if len(missing) > 4 else "")
    return DatasetNotAvailableError(
        f"{dataset} is not available: missing {shown}. Downloading from {url} failed ({reason}). "
        f"Put the files there, or point ${ENV_DATA} at a folder that has them "
        f"(current data root: {data_root()})."
    )


class ChecksumError(OSError):
    """A download's SHA-256 differs from the pinned one (an ``OSError``, so callers that turn a
    failed download into :func:`missing_error` treat it like a network failure)."""


def download(url: str, dest: Path, sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically, with a message on stderr.

    The bytes go to a temporary sibling first; with ``sha256`` given, its digest is checked
    before the rename, so ``dest`` only ever holds a complete, verified file.

    Raises:
        ChecksumError: the download's SHA-256 is not ``sha256`` (nothing is left behind).
        urllib.error.URLError, OSError: the network or the disk failed.
    """
    import hashlib

    dest.parent.mkdir(parents=True, exist_ok=True)
    _console.print(f"[cyan]Downloading[/] {url} -> {dest}")
    # One temporary file per process: concurrent downloads never mix.
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as fh:
            for block in iter(lambda: resp.read(1 << 20), b""):
                h.update(block)
                fh.write(block)
        if sha256 is not None and h.hexdigest() != sha256:
            raise ChecksumError(f"the download's sha256 is {h.hexdigest()}, expected {sha256}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def download_and_unzip(url: str, folder: Path) -> None:
    archive = download(url, folder / Path(url).name)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(folder)
    archive.unlink()


NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, OSError)
