"""The command line's error exit (graphrec.utils.console.fail)."""

from __future__ import annotations

import pytest
import typer

from graphrec.utils import console


def test_fail_prints_brackets_as_written(capsys, monkeypatch):
    from rich.console import Console

    monkeypatch.setattr(console, "err", Console(stderr=True, highlight=False, soft_wrap=True, force_terminal=False))
    with pytest.raises(typer.Exit) as exc:
        console.fail("unknown config key 'eval.metrics' (from --set eval.metrics=[recall]); user '[red]x'")
    assert exc.value.exit_code == 2
    assert "(from --set eval.metrics=[recall]); user '[red]x'" in capsys.readouterr().err
