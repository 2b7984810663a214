"""Nightly retraining: one command per night, replays over history, run records.

>>> from graphrec.pipeline import load_pipeline_config, run_night
>>> cfg = load_pipeline_config("pipelines/nightly.yaml")          # doctest: +SKIP
>>> run_night(cfg, "1998-03-15").status                            # doctest: +SKIP
'published'

Names are imported on first use, so ``graphrec --help`` does not load torch.
"""

from graphrec.utils.lazy import lazy_exports

_EXPORTS = {
    "PipelineConfig": ".config",
    "load_pipeline_config": ".config",
    "ReplayResult": ".replay",
    "replay": ".replay",
    "FAULT_ENV": ".runner",
    "NightResult": ".runner",
    "run_night": ".runner",
    "EXIT_CODES": ".state",
    "EXIT_LOCKED": ".state",
    "STAGES": ".state",
    "PipelineError": ".state",
    "PipelineLockedError": ".state",
    "RunState": ".state",
    "read_log": ".state",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
