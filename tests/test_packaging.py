"""The built wheel holds everything read at run time, and trains with the same configs."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # no build isolation: the setuptools of this environment, offline
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", str(ROOT),
                    "-w", str(out)], check=True, capture_output=True, cwd=out)  # fmt: skip
    return next(out.glob("graphrec-*.whl"))


def test_the_wheel_holds_every_file_read_at_run_time(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "graphrec"
    data = {str(p.relative_to(ROOT)) for p in package.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts}  # fmt: skip
    assert data, "no data files found next to the code"
    assert data <= names, f"missing from the wheel: {sorted(data - names)}"
    assert {str(p.relative_to(ROOT)) for p in package.rglob("*.py")} <= names
    assert not [n for n in names if n.startswith(("tests/", "pipelines/", "benchmarks/"))]


def test_a_wheel_install_resolves_the_same_configs(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    code = ("import json, graphrec, graphrec.config as c, graphrec.pipeline.cli as p;"
            "print(json.dumps({'file': graphrec.__file__, 'rec': c.resolve_rec_config('lightgcn').model_dump(mode='json'),"
            "'node': c.resolve_config('gesm', 'PPI').model_dump(mode='json'), 'nightly': open(p.shipped_config()).read()}))")  # fmt: skip
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    installed = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                                          env=env, cwd=tmp_path).stdout)  # fmt: skip
    assert installed["file"].startswith(str(target))
    from graphrec.config import resolve_config, resolve_rec_config

    assert installed["rec"] == resolve_rec_config("lightgcn").model_dump(mode="json")
    assert installed["rec"]["train"]["lr"] == 0.002  # the tuned preset, not the schema's 1e-3
    assert installed["node"] == resolve_config("gesm", "PPI").model_dump(mode="json")
    assert installed["nightly"] == (ROOT / "pipelines" / "nightly.yaml").read_text()
