"""graphrec: a graph-centric recommender platform.

Interaction logs become versioned user-item-ad graphs; GNN backbones (GESM, GSM, LightGCN,
XSimGCL, GCN, GAT, ...) train on them through one trainer; trained recommenders are
exported as model folders and served.

The public API (imported on first use, so ``import graphrec`` is cheap):

Data
    load_dataset(name)            a named dataset: Cora, CiteSeer, PubMed, PPI (node
                                  classification) or ml-100k, ml-1m, gowalla, amazon-cd, beauty,
                                  sports, toys, yelp (recommendation Interactions)
    load_interactions(source)     user-target interactions of a named dataset or a store folder
    load_sequences(name)          exact item sequences of beauty, sports, toys, yelp (leave-one-out)
    GraphStore, ingest, build     the versioned graph store: logs -> store -> HeteroData
Configuration
    resolve_config(model, dataset, overrides)       node-classification config (layered, validated)
    resolve_rec_config(model, dataset, overrides)   recommendation config
Training and evaluation
    train(config, overrides)      any task from a run config (YAML or mapping); writes the model;
                                  returns a TrainResult (fit metrics, model, data, folder)
    evaluate(model, data, part)   metrics of a trained model (or model folder) on valid/test
    Trainer, FitResult            the one training loop and its result (metrics, epochs, seconds)
    build_model(name, in, out)    a registered backbone (``graphrec models`` lists them)
    seed_everything(seed)         seed Python, NumPy and torch
Serving
    Recommender(folder)           a loaded model folder: .recommend(user, k)
    recommend(folder, user, k)    top-k unseen items of a user (a folder or an artifact registry)

Each name's ``help()`` gives its arguments, shapes, units and errors. The command line
(``graphrec --help``) exposes the same entry points.
"""

from graphrec.utils.lazy import lazy_exports

__version__ = "0.2.0"

_EXPORTS = {
    "load_dataset": "graphrec.data.catalog",
    "load_interactions": "graphrec.data.interactions",
    "load_sequences": "graphrec.data.sequences",
    "GraphStore": "graphrec.store",
    "ingest": "graphrec.store",
    "build": "graphrec.store",
    "resolve_config": "graphrec.config",
    "resolve_rec_config": "graphrec.config",
    "train": "graphrec.tasks.run",
    "evaluate": "graphrec.tasks.run",
    "TrainResult": "graphrec.tasks.run",
    "Trainer": "graphrec.tasks.trainer",
    "FitResult": "graphrec.tasks.trainer",
    "build_model": "graphrec.models",
    "seed_everything": "graphrec.utils.seed",
    "Recommender": "graphrec.serving",
    "recommend": "graphrec.serving",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
