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


def download(url: str, dest: Path) -> Path:
    """Download ``url`` to ``dest`` atomically, with a message on stderr."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    _console.print(f"[cyan]Downloading[/] {url} -> {dest}")
    tmp = dest.with_name(f".{dest.name}.part")
    with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as fh:
        shutil.copyfileobj(resp, fh)
    os.replace(tmp, dest)
    return dest


def download_and_unzip(url: str, folder: Path) -> None:
    archive = download(url, folder / Path(url).name)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(folder)
    archive.unlink()


NETWORK_ERRORS = (urllib.error.URLError, TimeoutError, ConnectionError, OSError)
