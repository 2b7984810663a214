import os

import pytest

from graphrec.utils.io import atomic_open, atomic_write_json, atomic_write_text


def test_atomic_write_replaces_content_with_ordinary_permissions(tmp_path):
    p = tmp_path / "sub" / "f.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [f.name for f in p.parent.iterdir()] == ["f.txt"]  # no temp file left behind


def test_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "f.json"
    atomic_write_json(p, {"a": 1})
    with pytest.raises(RuntimeError), atomic_open(p, "w") as fh:
        fh.write("partial")
        raise RuntimeError("crash mid-write")
    assert p.read_text().strip().startswith("{") and '"a": 1' in p.read_text()
    assert [f.name for f in tmp_path.iterdir()] == ["f.json"]
