"""The package's import layering, checked by import-linter (contracts in pyproject.toml).

import-linter has no stable Python API for running a check (``importlinter.api`` only reads
configuration), so it runs in a subprocess through its console-script entry point; that also
keeps its logging setup, ``sys.path`` changes and any warnings out of the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = REPO / "pyproject.toml"

# The body of the `lint-imports` console script (importlinter.cli:lint_imports_command).
_LINT_IMPORTS = (
    "import sys; from importlinter.cli import lint_imports_command; "
    "sys.exit(lint_imports_command())"
)


def lint_imports(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on ``config`` from ``cwd``; stdout and stderr together in ``.stdout``."""
    return subprocess.run(
        [sys.executable, "-c", _LINT_IMPORTS, str(config), "--no-cache", "--no-logo"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "1000"},  # no wrapping of long lines by rich
        timeout=120,
    )


def test_graphrec_import_contracts_are_kept():
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    assert contracts, "no import-linter contracts in pyproject.toml"

    res = lint_imports(PYPROJECT, cwd=REPO)

    assert res.returncode == 0, f"import-linter contracts broken:\n{res.stdout}"
    for contract in contracts:  # each one was actually checked, not silently skipped
        assert f"{contract['name']} KEPT" in res.stdout, res.stdout


@pytest.mark.parametrize("upward", [False, True], ids=["downward-only", "upward-import"])
def test_import_linter_detects_an_upward_import(tmp_path, upward):
    """A throwaway two-layer package: the check passes until the lower layer imports upward,
    so the test above is known to fail on a violation."""
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "high.py").write_text("from toy import low\n")
    (pkg / "low.py").write_text("import toy.high\n" if upward else "VALUE = 1\n")
    config = tmp_path / ".importlinter"
    config.write_text(
        "[importlinter]\n"
        "root_package = toy\n"
        "\n"
        "[importlinter:contract:toy-layers]\n"
        "name = toy layers\n"
        "type = layers\n"
        "containers = toy\n"
        "layers =\n"
        "    high\n"
        "    low\n"
    )

    res = lint_imports(config, cwd=tmp_path)

    if upward:
        assert res.returncode == 1, res.stdout
        assert "toy layers BROKEN" in res.stdout, res.stdout
        assert "toy.low -> toy.high (l.1)" in res.stdout, res.stdout
    else:
        assert res.returncode == 0, res.stdout
        assert "toy layers KEPT" in res.stdout, res.stdout
