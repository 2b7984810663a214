"""The scheduling examples in pipelines/scheduling/: they parse, and run the documented command."""

import configparser
import datetime as dt
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

FOLDER = Path(__file__).resolve().parents[1] / "pipelines" / "scheduling"
COMMAND = "graphrec pipeline run pipelines/nightly.yaml --date"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, comment_prefixes=("#", ";")
    )
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((FOLDER / name).read_text())
    return parser


def _yesterday() -> str:
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def _gnu_date() -> bool:
    proc = subprocess.run(["date", "-u", "-d", "yesterday", "+%F"], capture_output=True, text=True)
    return proc.returncode == 0


def _echoed(command: str) -> str:
    """What ``command`` runs, as /bin/sh expands it, with the graphrec binary replaced by echo."""
    command, found = re.subn(r"\S*\.venv/bin/graphrec", "echo graphrec", command)
    assert found == 1, (
        f"no graphrec binary to replace in {command!r}"
    )  # never run the real pipeline
    before = _yesterday()
    out = subprocess.run(
        ["/bin/sh", "-c", command], capture_output=True, text=True, check=True
    ).stdout
    if _yesterday() != before:  # ran across midnight UTC
        pytest.skip("the date changed while the command ran")
    return out.strip()


def test_systemd_service_runs_the_pipeline_for_yesterday():
    unit = _unit("graphrec-nightly.service")
    service = unit["Service"]
    assert service["Type"] == "oneshot"
    assert service["WorkingDirectory"].startswith("/") and service["EnvironmentFile"].startswith(
        "/"
    )
    assert "3" in service["SuccessExitStatus"].split()  # gated is not a failure
    assert service["Restart"] == "on-failure" and "2" in service["RestartPreventExitStatus"].split()
    exec_start = service["ExecStart"]
    assert exec_start.startswith("/bin/sh -c '") and exec_start.endswith("'")
    assert COMMAND in exec_start
    # systemd turns %% into % and $$ into $ before the shell sees the command
    assert "$$(date -u -d yesterday +%%F)" in exec_start
    if not _gnu_date():
        pytest.skip("needs GNU date")
    shell = exec_start[len("/bin/sh -c '") : -1].replace("%%", "%").replace("$$", "$")
    assert shell.startswith("exec ")
    assert _echoed(shell[len("exec ") :]) == f"{COMMAND} {_yesterday()} --quiet"


def test_systemd_timer_fires_daily_at_0230_and_catches_up():
    timer = _unit("graphrec-nightly.timer")
    assert timer["Timer"]["OnCalendar"] == "*-*-* 02:30:00 UTC"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Timer"]["Unit"] == "graphrec-nightly.service"
    assert timer["Install"]["WantedBy"] == "timers.target"
    if shutil.which("systemd-analyze"):
        proc = subprocess.run(
            ["systemd-analyze", "calendar", timer["Timer"]["OnCalendar"]],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr


def test_crontab_line():
    lines = [
        line
        for line in (FOLDER / "crontab.example").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 1
    fields = lines[0].split(maxsplit=5)
    assert fields[:5] == ["30", "2", "*", "*", "*"]
    command = fields[5]
    assert COMMAND in command and ">> " in command and command.endswith("2>&1")
    assert re.search(r"(?<!\\)%", command) is None, "cron needs every % escaped as \\%"
    if not _gnu_date():
        pytest.skip("needs GNU date")
    # the part cron hands to the shell after unescaping, without the cd / env / log redirection
    run = command.replace("\\%", "%").split(" && ")[-1].split(" >> ")[0]
    assert _echoed(run) == f"{COMMAND} {_yesterday()} --quiet"


def test_airflow_dag_compiles_and_imports_without_airflow():
    path = FOLDER / "airflow_nightly_dag.py"
    source = path.read_text()
    compile(source, str(path), "exec")
    assert "skip_on_exit_code=EXIT_GATED" in source and "EXIT_GATED = 3" in source
    namespace = runpy.run_path(str(path))
    assert namespace["COMMAND"].endswith(f"{COMMAND} {{{{ ds }}}} --quiet")
    try:
        import airflow  # noqa: F401
    except ImportError:
        assert namespace["DAG"] is None  # nothing defined, nothing raised
