"""Helpers of the artifact-registry tests: staging folders with known contents."""

from __future__ import annotations

import hashlib
from pathlib import Path

from graphrec.artifacts import ArtifactRegistry


def contents(tag: str) -> dict[str, bytes]:
    """Distinct file contents for a version tagged ``tag`` (an export folder + extras)."""
    seed = hashlib.sha256(tag.encode()).digest()
    return {
        "card.json": b'{"format": "test", "tag": "' + tag.encode() + b'"}\n',
        "model.pt": seed * 64,
        "embeddings/user.parquet": seed[::-1] * 32,
        "embeddings/item.parquet": (seed + b"item") * 16,
        "metrics.json": b'{"ndcg@10": 0.25}\n',
        "MODEL_CARD.md": f"# model {tag}\n".encode(),
    }


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return folder


def stage(reg: ArtifactRegistry, tag: str) -> tuple[Path, dict[str, bytes]]:
    """A staging folder of ``reg`` filled with :func:`contents` of ``tag``."""
    files = contents(tag)
    return write_files(reg.staging_dir(tag), files), files


def publish(reg: ArtifactRegistry, tag: str, *, promote: bool = True, **meta):
    folder, _ = stage(reg, tag)
    return reg.publish(folder, {"run_id": tag, **meta}, promote=promote)


def read_tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` except the manifest, by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }
