"""The ``graphrec`` command line: a mount-board.

Each package's commands live in its own ``cli.py`` and are mounted here; this module adds
only the three catalogue commands (``datasets``, ``models``, ``config``). Heavy imports
happen inside the commands, so ``graphrec --help`` does not load torch.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from graphrec.artifacts.cli import artifacts_app
from graphrec.bench.cli import bench_app, plot_app
from graphrec.pipeline.cli import pipeline_app, run_app
from graphrec.serving.cli import app as serving_app
from graphrec.store.cli import store_app
from graphrec.tasks.cli import app as train_app
from graphrec.utils.console import fail, out

app = typer.Typer(no_args_is_help=True, help="graphrec: graph-centric recommender platform.", add_completion=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _version(value: bool) -> None:
    if value:
        from graphrec import __version__

        out.print(f"graphrec {__version__}")
        raise typer.Exit()


def _dataset_path(name: str):
    """A catalog dataset's adapter input under the data root (``graphrec store ingest --source
    NAME`` without a path): the store may not import ``graphrec.data``, this layer may."""
    from graphrec.data import adapter_path

    return adapter_path(name)


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """graphrec: graph-centric recommender platform."""
    ctx.ensure_object(dict).setdefault("dataset_path", _dataset_path)
app.add_typer(run_app)  # graphrec run: the flagship flow (make run)
app.add_typer(train_app)  # graphrec train CONFIG
app.add_typer(serving_app)  # graphrec recommend
app.add_typer(store_app, name="store", help="Interaction logs to versioned user-item-ad graphs.")
app.add_typer(pipeline_app, name="pipeline", help="Nightly retraining: ingest, train, evaluate, gate, publish; replays.")
app.add_typer(artifacts_app, name="artifacts", help="Model registry: versions, production pointer, rollback.")
app.add_typer(bench_app, name="bench", help="Benchmarks on public datasets.")
app.add_typer(plot_app, name="plot", help="Figures from benchmark runs.")


@app.command("datasets")
def datasets_cmd(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """List the known datasets and whether their files are available locally."""
    from graphrec.data import available_datasets, cache_dir, data_root

    rows = available_datasets()
    if as_json:
        out.print_json(json.dumps(rows))
        return
    # One line per dataset in a 100-column terminal; paths, aliases, descriptions and the protocol are in --json.
    table = Table(title=f"data root: {data_root()}  (cache: {cache_dir()})", caption_justify="left")
    for col in ("name", "task", "status", "users", "items", "pairs", "test", "split"):
        table.add_column(col, justify="right" if col in ("users", "items", "pairs", "test") else "left", no_wrap=True)
    missing = []
    for r in rows:
        st = r["stats"]
        n = lambda key, st=st: f"{st[key]:,}" if key in st else ""  # noqa: E731
        pairs = f"{st['train'] + st['test']:,}" if "test" in st else n("interactions")
        color = "green" if r["status"] == "local" else "yellow"
        if r["status"] != "local":
            missing.append(f"{r['name']} ({len(r['missing'])} file(s), e.g. {r['missing'][0]})")
        table.add_row(r["name"], r["task"].split(" (")[0], f"[{color}]{r['status']}[/]", n("users"), n("items"), pairs,
                      n("test"), r["split"] or "")  # fmt: skip
    table.caption = ("split: the dataset's own protocol (data.split: auto); pairs: user-item interactions, test: the published test pairs; graphrec datasets --json has paths, "
                     "aliases, sources and the protocols in words" + (f"\nmissing: {'; '.join(missing)}" if missing else ""))  # fmt: skip
    out.print(table)


@app.command("models")
def models_cmd() -> None:
    """List the registered backbones and what each can do."""
    from graphrec.models.index import INDEX

    table = Table(title="registered models (graphrec config NAME [--task rec] shows the settings)",
                  caption="graphrec bench rec also has rows that are not backbones: pop (most popular), pyg_lightgcn "
                          "(PyG's LightGCN), ease (EASE, closed form) and ials (implicit ALS); see its --help")  # fmt: skip
    for col in ("name", "tasks", "K steps", "learns ID embeddings", "description"):
        table.add_column(col)
    for name, info in sorted(INDEX.items()):
        other = "node" if info.task == "rec" else "rec"
        tasks = f"{info.task} (tuned), {other}" if info.learns_inputs else info.task
        table.add_row(name, tasks, "yes" if info.supports_steps else "", "yes" if info.learns_inputs else "", info.summary)
    out.print(table)


@app.command("config")
def config_cmd(
    model: Annotated[str, typer.Argument(help="a registered model (graphrec models), or an encoder objective (sasrec, "
                                              "clue, shopperbert, lmrec: the config of graphrec encode)")],
    task: Annotated[str | None, typer.Option(help="node (node classification), rec (recommendation), ads (ad "
                                                  "targeting) or encode (user encoders); default: the task the model's "
                                                  "settings are tuned for (graphrec models)")] = None,
    dataset: Annotated[str | None, typer.Option(help="a dataset of graphrec datasets: adds the preset's section for it")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a key, e.g. train.lr=0.01")] = None,
    config: Annotated[str | None, typer.Option(help="YAML file layered over the preset")] = None,
) -> None:
    """Print the resolved configuration of MODEL for --task (on --dataset) as YAML."""
    import yaml

    from graphrec.config import ConfigError, resolve_ads_config, resolve_config, resolve_rec_config
    from graphrec.config.encoder import OBJECTIVES, resolve_encoder_config
    from graphrec.data.catalog import DATASETS, is_dataset
    from graphrec.models.index import UnknownModelError, model_info

    resolvers = {"node": resolve_config, "rec": resolve_rec_config, "ads": resolve_ads_config,
                 "encode": resolve_encoder_config}  # fmt: skip
    header = ""
    if task is None and model.lower() in OBJECTIVES:
        task = "encode"  # a user-encoder objective (graphrec encode), not a backbone
    if task is None:
        try:
            task = model_info(model).task
        except UnknownModelError as exc:
            fail(str(exc))
        header = f"# {task} config of {model} (--task {'node' if task == 'rec' else 'rec'} for the other)\n"
    if task not in resolvers:
        fail(f"--task must be node, rec, ads or encode, got {task!r}")
    if dataset is not None and not is_dataset(dataset):
        fail(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    try:
        cfg = resolvers[task](model, dataset, list(set_ or []), config)
    except ConfigError as exc:
        fail(str(exc))
    out.print(header + yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), end="")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
