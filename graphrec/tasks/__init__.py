"""Training: one :class:`Trainer` (the loop), one optimizer factory, and a small task per problem.

* :mod:`graphrec.tasks.trainer` — :class:`Trainer`, :class:`Task`, :class:`FitResult`;
* :mod:`graphrec.tasks.optim` — Adam / AdamW / RiemannianAdam, weight-decay scopes, per-row lr;
* :mod:`graphrec.tasks.node` — node classification (:class:`NodeTask`);
* :mod:`graphrec.tasks.link` — recommendation (:class:`LinkTask`);
* :mod:`graphrec.tasks.ads` — ad targeting (:class:`AdsTask`), its model folder and queries (:class:`AdTargeting`);
* :mod:`graphrec.tasks.run` — :func:`train` and :func:`evaluate`: any task from a config.

Names are imported on first use.
"""

from graphrec.utils.lazy import lazy_exports

_EXPORTS = {
    "FitResult": ".trainer",
    "Task": ".trainer",
    "Trainer": ".trainer",
    "build_optimizer": ".optim",
    "RowLRScale": ".optim",
    "NodeTask": ".node",
    "build_backbone": ".node",
    "fit_node": ".node",
    "LinkTask": ".link",
    "build_rec_model": ".link",
    "fit_link": ".link",
    **dict.fromkeys(["AdLog", "AdsData", "AdsTask", "AdTargeting", "AdTargetingModel", "ads_for_user", "audience",
                     "build_ads_model", "evaluate_ads", "export_ads_model", "fit_ads", "load_ad_log"], ".ads"),
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
