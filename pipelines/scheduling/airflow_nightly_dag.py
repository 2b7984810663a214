"""Example Airflow DAG: the graphrec nightly pipeline once a day, for the day before.

Copy this file into Airflow's DAG folder on a worker that has graphrec installed (the
command runs ``$GRAPHREC_HOME/.venv/bin/graphrec``; nothing here imports graphrec), and
adjust the constants below. Reference: docs/scheduling.md.

* Schedule: a data-interval timetable at 02:30 UTC, so the run that starts on day D+1
  has ``{{ ds }}`` = D, the day whose logs it ingests. (Airflow 3 reads a plain cron
  string as a trigger timetable whose ``ds`` is the day of the run itself.)
* Exit codes of ``graphrec pipeline run``: 0 published (or already done) -> success;
  3 gated (candidate not published, production unchanged) -> skipped; 1 failed and
  4 locked -> failure, retried (a retry resumes at the failed stage); 2 bad usage or
  configuration -> failure.
* Catch-up: ``catchup=True`` with one active run at a time and ``depends_on_past`` runs
  missed nights oldest first; a night that has already finished does nothing.

Without Airflow installed the module defines nothing, so tools that import or lint it
(ruff, a test that compiles it) need no Airflow.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex

GRAPHREC_HOME = os.environ.get("GRAPHREC_HOME", "/srv/graphrec")  # checkout with .venv/
CONFIG = "pipelines/nightly.yaml"
#: Handed to the command on top of the worker's environment (data root, registry, ...).
ENV = {"GRAPHREC_DATA": os.environ.get("GRAPHREC_DATA", "/srv/graphrec/data")}
#: First night to schedule (UTC): with catchup=True every night since then runs once.
START = (2025, 1, 1)
EXIT_GATED = 3

COMMAND = f"{shlex.quote(GRAPHREC_HOME)}/.venv/bin/graphrec pipeline run {CONFIG} --date {{{{ ds }}}} --quiet"

try:
    import pendulum

    try:  # Airflow 3
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.sdk import DAG
    except ImportError:  # Airflow 2
        from airflow import DAG
        from airflow.operators.bash import BashOperator
    from airflow.timetables.interval import CronDataIntervalTimetable
except ImportError:  # no Airflow: nothing to define
    DAG = None

if DAG is not None:
    with DAG(
        dag_id="graphrec_nightly",
        description="graphrec nightly retraining for the day before",
        schedule=CronDataIntervalTimetable("30 2 * * *", timezone=pendulum.timezone("UTC")),
        start_date=pendulum.datetime(*START, tz="UTC"),
        catchup=True,
        max_active_runs=1,
        default_args={
            "owner": "graphrec",
            # nights in date order; a skipped (gated) night counts as done
            "depends_on_past": True,
            "retries": 3,
            "retry_delay": dt.timedelta(minutes=15),
            "execution_timeout": dt.timedelta(hours=6),
        },
        tags=["graphrec"],
    ) as dag:
        BashOperator(
            task_id="pipeline_run",
            bash_command=COMMAND,
            cwd=GRAPHREC_HOME,
            env=ENV,
            append_env=True,
            skip_on_exit_code=EXIT_GATED,
        )
