"""``graphrec train CONFIG``: train any task from a run config and write its model; ``graphrec encode``: train a
user encoder and write its embeddings into the store as node features; ``graphrec ads`` and
``graphrec audience``: the two queries of an ad-targeting model folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from graphrec.utils.console import err, fail, out

app = typer.Typer(no_args_is_help=True)


def metrics_table(fit) -> Table:
    """Validation and test metrics of a fit, the selection metric first (the loss-selected tasks' -loss left out)."""
    table = Table()
    for col in ("metric", "valid", "test"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    selected = "loss" if fit.metric == "neg_loss" else fit.metric
    for name in sorted(set(fit.valid) | set(fit.test), key=lambda k: (k != selected, k.partition("@")[0] == "loss",
                                                                      k.partition("@")[0], int(k.partition("@")[2] or 0))):  # fmt: skip
        if name in ("users", "neg_loss"):
            continue
        cell = lambda d, k=name: f"{d[k]:.4f}" if k in d else ""  # noqa: E731
        table.add_row(name, cell(fit.valid), cell(fit.test))
    return table


@app.command("train")
def train_cmd(
    config: Annotated[str, typer.Argument(help="run config YAML (task, dataset, model, train, ...; e.g. examples/lightgcn-ml100k.yaml)")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a key, e.g. train.lr=0.01 or seed=1")] = None,
    out_dir: Annotated[str | None, typer.Option("--out", help="where the model goes (default: the config's out)")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N (train.device)")] = None,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run of the same config from its checkpoint")] = True,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    ray_workers: Annotated[int | None, typer.Option("--ray-workers", min=1, help=(
        "launch on N Ray Train workers (the graphrec\\[ray] extra; the cluster in $RAY_ADDRESS or a local one) "
        "instead of this process"))] = None,
) -> None:
    """Train a model on a dataset or on your own graph store; a recommendation model is written
    as a folder that `graphrec recommend --model DIR` serves, an ad-targeting one (task: ads) a
    folder that `graphrec ads` and `graphrec audience` serve.

    Data-parallel on N processes (gloo on CPU, NCCL on GPUs): `torchrun --nproc-per-node N -m graphrec train CONFIG`
    (several machines: add --nnodes and a rendezvous; see docs/distributed.md). Rank 0 prints and writes."""
    from graphrec.config import ConfigError
    from graphrec.data import DatasetNotAvailableError
    from graphrec.store import StoreError
    from graphrec.tasks.run import train
    from graphrec.tasks.trainer import NonFiniteError
    from graphrec.utils import distributed as du

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    overrides = list(set_ or []) + ([f"train.device={device}"] if device else [])

    def resume_hint() -> str:
        from graphrec.tasks.run import checkpoint_path, load_run_config

        ckpt = checkpoint_path(load_run_config(config, overrides)[0], out_dir)
        return (f"the last finished epoch is in {ckpt}: rerun the same command to resume" if ckpt and ckpt.is_file()
                else "no epoch had finished, so there is nothing to resume")  # fmt: skip

    if ray_workers is not None:
        from graphrec.tasks.run import train_on_ray

        try:
            metrics = train_on_ray(config, overrides, workers=ray_workers, out=out_dir, resume=resume)
        except (ConfigError, ValueError, TypeError, DatasetNotAvailableError, StoreError) as exc:
            fail(str(exc))
        except RuntimeError as exc:
            fail(str(exc), 1)
        if as_json:
            typer.echo(json.dumps(metrics))
            return
        err.print(f"{ray_workers} Ray workers: selected epoch {metrics['best_epoch']} of {metrics['epochs']}, "
                  f"{metrics['s_per_epoch']:.2f} s per epoch, {metrics['seconds']:.1f} s in all")  # fmt: skip
        from types import SimpleNamespace

        out.print(metrics_table(SimpleNamespace(metric="", valid=metrics["valid"], test=metrics["test"])))
        if metrics.get("out"):
            err.print(f"wrote {metrics['out']}")
        return
    import signal

    ranks = du.env_world_size()
    first = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 alone reports errors every rank shares
    previous = signal.getsignal(signal.SIGTERM)
    if ranks > 1:
        def stopped_by_launcher(signum, frame):  # torchrun stops every rank when one fails or it is stopped itself
            signal.signal(signal.SIGTERM, previous)  # once: a second SIGTERM ends the process
            raise du.RankFailure(f"rank {os.environ.get('RANK', '?')}: the launcher stopped this rank (another rank "
                                 "failed, or the job was stopped; the launcher's summary says which)")  # fmt: skip

        signal.signal(signal.SIGTERM, stopped_by_launcher)
    try:
        res = train(config, overrides, out=out_dir, progress=not quiet, resume=resume)
    except (ConfigError, ValueError, TypeError, DatasetNotAvailableError, StoreError) as exc:
        # 2: the config, the data or an option is wrong; nothing was trained (the same on every rank)
        if first:
            fail(str(exc))
        raise typer.Exit(2) from None
    except NonFiniteError as exc:
        fail(str(exc), 1)  # train.nan_guard stopped a diverging run: its message says where and what to lower
    except du.RankFailure as exc:
        fail(f"{exc}; {resume_hint()}", 1)  # another rank died or hung
    except KeyboardInterrupt:
        fail(f"interrupted; {resume_hint()}", 130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    fit = res.fit
    main = du.is_main()
    du.shutdown()
    if not main:  # every rank holds the same metrics; rank 0 reports them
        return
    if as_json:
        typer.echo(json.dumps({"valid": fit.valid, "test": fit.test, "best_epoch": fit.best_epoch, "epochs": fit.epochs,
                               "s_per_epoch": fit.s_per_epoch, "seconds": fit.seconds, "stopped_by": fit.stopped_by,
                               "out": str(res.out) if res.out else None}))  # fmt: skip
        return
    err.print(f"{res.config.model_name} on {res.spec.dataset} (seed {res.spec.seed}): selected epoch "
              f"{fit.best_epoch} of {fit.epochs}, {fit.s_per_epoch:.2f} s per epoch, {fit.seconds:.1f} s in all"
              + {"time_budget": " (stopped by train.time_budget)", "patience": " (stopped early: train.patience)"}.get(
                  fit.stopped_by or "", ""))  # fmt: skip
    out.print(metrics_table(fit))
    if res.spec.task == "encode" and res.data.tables:
        err.print(f"wrote {', '.join(res.data.tables)} into the store (version {res.data.store_version})", markup=False)
    if res.out is not None:
        serve = {"rec": f"; serve it with: graphrec recommend --model {res.out} --user USER",
                 "ads": f"; query it with: graphrec ads --model {res.out} --user USER, or graphrec audience --model "
                        f"{res.out} --ad AD"}.get(res.spec.task, "")  # fmt: skip
        err.print(f"wrote {res.out}{serve}")


@app.command("encode")
def encode_cmd(
    config: Annotated[str | None, typer.Argument(help="run config YAML with task: encode (dataset, model, train, data, "
                                                      "features); or give --dataset and --objective")] = None,
    dataset: Annotated[str | None, typer.Option(help="a dataset of graphrec datasets (ml-100k, beauty, ...) or a "
                                                     "graph-store folder")] = None,
    objective: Annotated[str | None, typer.Option(help="sasrec, clue, shopperbert or lmrec (model.name)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a key, e.g. model.dim=128 or seed=1")] = None,
    out_dir: Annotated[str | None, typer.Option("--out", help="where the encoder folder goes (warm starts read it)")] = None,
    init_from: Annotated[str | None, typer.Option("--init-from", help="an encoder folder to warm-start from")] = None,
    write: Annotated[bool | None, typer.Option("--write/--no-write", help="write the embeddings into the store as "
                                               "feature tables (default: the config's features.write)")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N (train.device)")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Train a transformer user encoder on behaviour sequences and write its user (and item) embeddings into the
    store as versioned feature tables (user/<name>); a recommendation or ad config attaches them with
    data.features: [user/<name>] and train.inputs: features or both."""
    from graphrec.config import ConfigError
    from graphrec.data import DatasetNotAvailableError
    from graphrec.store import StoreError
    from graphrec.tasks.encode import encode
    from graphrec.tasks.run import load_run_config
    from graphrec.tasks.trainer import NonFiniteError
    from graphrec.utils import distributed as du

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if config is None and (dataset is None or objective is None):
        fail("give a run config, or both --dataset and --objective (e.g. --dataset ml-100k --objective sasrec)")
    # --dataset / --objective are layered as overrides, so config errors still name the file they come from.
    overrides = ["task=encode"] + ([f"dataset={dataset}"] if dataset is not None else []) + \
        ([f"model.name={objective}"] if objective is not None else []) + list(set_ or []) + \
        ([f"train.device={device}"] if device else [])  # fmt: skip
    try:
        if config is not None:
            from graphrec.config import read_yaml_mapping

            task = read_yaml_mapping(config, "run config").get("task", "encode")
            if task != "encode":
                fail(f"{config} is a task: {task} config; graphrec encode takes task: encode (or use graphrec train)")
        spec, cfg = load_run_config(config if config is not None else {}, overrides)
        dest = out_dir or spec.out
        if dest is not None and Path(dest).exists() and not Path(dest).is_dir():
            fail(f"--out {dest} is a file; the encoder folder needs a folder (new or existing)")
        du.init_from_env()  # under torchrun: data-parallel over the ranks, rank 0 writes
        res = encode(spec.dataset, cfg, seed=spec.seed, out=dest, write=write, init_from=init_from,
                     progress=not quiet)  # fmt: skip
    except (ConfigError, ValueError, TypeError, DatasetNotAvailableError, StoreError) as exc:
        fail(str(exc))
    except (NonFiniteError, du.RankFailure) as exc:
        fail(str(exc), 1)
    fit = res.fit
    main = du.is_main()
    du.shutdown()
    if not main:  # every rank holds the same metrics; rank 0 reports them
        return
    if as_json:
        typer.echo(json.dumps({"valid": fit.valid, "test": fit.test, "best_epoch": fit.best_epoch, "epochs": fit.epochs,
                               "s_per_epoch": fit.s_per_epoch, "seconds": fit.seconds, "tokens_per_s": res.tokens_per_s,
                               "users": int(res.users.shape[0]), "dim": int(res.users.shape[1]),
                               "tables": res.tables, "store_version": res.store_version,
                               "out": str(res.out) if res.out else None}))  # fmt: skip
        return
    err.print(f"{cfg.model_name} encoder on {spec.dataset} (seed {spec.seed}): selected epoch {fit.best_epoch} of "
              f"{fit.epochs}, {fit.s_per_epoch:.2f} s per epoch ({res.tokens_per_s / 1000:.1f}k tokens/s), "
              f"{fit.seconds:.1f} s in all")  # fmt: skip
    out.print(metrics_table(fit))
    if res.tables:
        err.print(f"wrote {', '.join(res.tables)} ({res.users.shape[0]:,} users x {res.users.shape[1]}) into the store "
                  f"(version {res.store_version}); use them with --set data.features=[{','.join(res.tables)}] "
                  "--set train.inputs=both", markup=False, highlight=False)  # fmt: skip
    elif write is not False and cfg.features.write:
        err.print(f"{spec.dataset} has no graph store (a sequence file): no feature table written")
    if res.warm_start is not None:
        err.print(f"warm start from {init_from}: {res.warm_start['tensors']} tensors copied, {res.warm_start['items']:,} of "
                  f"{res.sequences.num_items:,} item rows matched by external id")  # fmt: skip
    if res.out is not None:
        err.print(f"wrote the encoder to {res.out} (warm-start a later run with --init-from {res.out})")


ModelOpt = Annotated[str, typer.Option("--model", help="ad-targeting model folder (graphrec train with task: ads, or "
                                                        "graphrec bench ads --export), or an artifact registry")]
K = Annotated[int, typer.Option("-k", "--k", min=1, help="number of results")]
IncludeSeen = Annotated[bool, typer.Option("--include-seen", help="also rank pairs that were positive in training")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]


def _targeting(model: str, query, what: str, key: str, as_json: bool, title: str) -> None:
    from graphrec.artifacts.errors import ArtifactError
    from graphrec.tasks.ads import AdTargeting, UnknownIdError

    try:
        results = query(AdTargeting(model))
    except (UnknownIdError, ArtifactError) as exc:
        fail(str(exc), 1)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps([{key: r.id, "score": r.score, "probability": r.probability, "rank": r.rank}
                               for r in results]))  # fmt: skip
        return
    if not results:
        fail(f"nothing left to rank: every {what} was positive in training (--include-seen ranks them all)", 1)
    table = Table(title=title)
    for col in ("rank", key, "score", "p(click)"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(str(r.rank), str(r.id), f"{r.score:.4f}", f"{r.probability:.4f}")
    out.print(table)


@app.command("ads")
def ads_cmd(
    model: ModelOpt,
    user: Annotated[str, typer.Option("--user", help="external user id, as in the store's logs")],
    k: K = 10,
    include_seen: IncludeSeen = False,
    as_json: AsJson = False,
) -> None:
    """The K ads a user most likely clicks (ads the user clicked in training excluded), with the
    calibrated click probability."""
    _targeting(model, lambda t: t.ads_for_user(user, k, exclude_seen=not include_seen), "ad", "ad", as_json,
               f"user {user}: top {k} ads")  # fmt: skip


@app.command("audience")
def audience_cmd(
    model: ModelOpt,
    ad: Annotated[str, typer.Option("--ad", help="external ad id, as in the store's logs")],
    k: K = 10,
    include_seen: IncludeSeen = False,
    as_json: AsJson = False,
) -> None:
    """The audience of an ad: the K users most likely to click it (users who clicked it in training
    excluded), with the calibrated click probability."""
    _targeting(model, lambda t: t.audience(ad, k, exclude_seen=not include_seen), "user", "user", as_json,
               f"ad {ad}: top {k} users")  # fmt: skip
