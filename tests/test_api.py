"""The library face: ``import graphrec`` and the README's examples."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import graphrec

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves_and_documents_itself():
    assert graphrec.__all__ == sorted(graphrec.__all__)
    for name in graphrec.__all__:
        obj = getattr(graphrec, name)
        assert (obj.__doc__ or "").strip(), f"graphrec.{name} has no docstring"
        assert name in graphrec.__doc__, f"graphrec.{name} is missing from help(graphrec)"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        graphrec.nope  # noqa: B018


def test_help_lists_the_api_and_import_is_cheap():
    code = "import sys, graphrec; print('torch' in sys.modules); help(graphrec); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PAGER": "cat", "PATH": "/usr/bin:/bin"}).stdout  # fmt: skip
    for name in ("load_dataset", "train(config", "evaluate(model", "Trainer", "Recommender", "GraphStore"):
        assert name in out
    lines = out.strip().splitlines()
    assert lines[0] == lines[-1] == "False"  # neither the import nor help() loads torch


def _readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"## {heading}\n\n```python\n(.*?)```", text, re.S)
    assert match, f"README has no python block under '## {heading}'"
    return match.group(1)


def test_readme_library_example_runs(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = subprocess.run([sys.executable, "-c", _readme_block("As a library")], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    gesm_acc = float(lines[0].split()[0])
    assert 0.7 < gesm_acc <= 1.0 and "Recommendation(item=" in lines[1]
    assert (tmp_path / "runs" / "quick-lightgcn" / "card.json").is_file()


def test_old_import_paths_of_the_readme_still_work():
    from graphrec.bench import build_backbone
    from graphrec.config import ExperimentConfig, resolve_config
    from graphrec.tasks.node import build_backbone as new
    from graphrec.tasks.node_classification import fit, seed_everything

    assert build_backbone is new and ExperimentConfig.__name__ == "NodeConfig"
    assert callable(fit) and callable(seed_everything) and callable(resolve_config)


def test_the_readme_lists_every_doc():
    readme = (ROOT / "README.md").read_text()
    missing = [p.name for p in (ROOT / "docs").glob("*.md") if f"docs/{p.name}" not in readme]
    assert not missing, f"docs not linked from the README: {missing}"
