"""The command line's look, in one place: the two consoles, the error exit, progress bars.

Every command group (``store``, ``artifacts``, ``pipeline``, ``bench``, ``train``,
``recommend``) prints results on :data:`out` (stdout) and messages on :data:`err`
(stderr), and exits through :func:`fail` on bad usage, so every command looks and exits
the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NoReturn

from rich.console import Console

out = Console(highlight=False)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out.width = 200  # results piped to a file: do not truncate table columns (COLUMNS still decides)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # messages are not wrapped mid-path

#: ``callback(step, done, total)``: progress of a long operation (ingest, build).
ProgressFn = Callable[[str, int, int], None]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad usage or configuration).

    ``message`` is plain text: brackets in it (a ``--set`` value such as ``[10, 20]``, an id) are printed
    as written, not read as rich markup."""
    import typer
    from rich.markup import escape

    err.print(f"[red]error:[/] {escape(str(message))}")
    raise typer.Exit(code)


def split_list(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (comma-separated command-line lists)."""
    return [v.strip() for v in value.split(",") if v.strip()]


def progress_bar(console: Console | None = None, *, disable: bool = False, transient: bool = True, info: bool = True):
    """A rich progress bar with the package's columns: description, bar, n/total, elapsed, info."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if info:
        columns.append(TextColumn("{task.fields[info]}"))
    return Progress(*columns, console=console or err, disable=disable, transient=transient)


class StepProgress:
    """Progress of a multi-step operation: a rich bar (``progress=True``), a
    :data:`ProgressFn` callback, or nothing (``False``)."""

    def __init__(self, progress: bool | ProgressFn, description: str = "working"):
        self.callback: ProgressFn | None = progress if callable(progress) else None
        self.enabled = progress is True
        self.description = description
        self._bar = None
        self._task = None

    def __enter__(self) -> StepProgress:
        if self.enabled:
            self._bar = progress_bar(info=False)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=1)
        return self

    def update(self, step: str, done: int, total: int) -> None:
        if self.callback is not None:
            self.callback(step, done, total)
        if self._bar is not None:
            self._bar.update(self._task, description=step, completed=done, total=max(total, 1))

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
