"""``graphrec recommend``: top-k unseen items for a user from an exported model folder or registry."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from graphrec.utils.console import fail, out

app = typer.Typer(no_args_is_help=True)


@app.command("recommend")
def recommend_cmd(
    model: Annotated[str, typer.Option("--model", help="model folder (graphrec train CONFIG, graphrec bench rec --export), or an artifact registry (serves its production version)")],
    user: Annotated[str, typer.Option("--user", help="external user id, as in the store's logs")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="number of items")] = 10,
    fallback: Annotated[str, typer.Option(help="for an unknown user: error, or popular (most interacted items)")] = "error",
    include_seen: Annotated[bool, typer.Option("--include-seen", help="do not exclude items the user has seen")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Recommend K items the user has not seen yet (faiss inner-product search)."""
    from graphrec.artifacts.errors import ArtifactError
    from graphrec.serving.recommend import UnknownUserError, load_recommender

    if fallback not in ("error", "popular"):
        fail(f"--fallback must be 'error' or 'popular', got {fallback!r}")
    try:
        rec = load_recommender(model)
        recs = rec.recommend(user, k, exclude_seen=not include_seen, fallback=fallback)  # type: ignore[arg-type]
    except (UnknownUserError, ArtifactError) as exc:
        fail(str(exc), 1)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if not recs:
        fail(f"user {user} has seen every one of the {rec.num_items} {rec.target}s: nothing unseen is left "
             "to recommend (--include-seen ranks them all)", 1)  # fmt: skip
    if as_json:
        typer.echo(json.dumps([{"item": r.item, "score": r.score, "rank": r.rank, "source": r.source, "label": r.label}
                               for r in recs]))  # fmt: skip
        return
    short = f" (only {len(recs)} unseen left)" if len(recs) < k and not include_seen else ""
    table = Table(title=f"user {user}: top {len(recs)} {rec.target}s{short}"
                  + (" (popular fallback)" if recs and recs[0].source == "popular" else ""))  # fmt: skip
    labelled = any(r.label for r in recs)
    for col in ("rank", rec.target, *(["title"] if labelled else []), "score"):
        table.add_column(col, justify="left" if col == "title" else "right")
    for r in recs:
        table.add_row(str(r.rank), str(r.item), *([r.label or ""] if labelled else []), f"{r.score:.4f}")
    out.print(table)
