"""Wall time of the listing commands, each a fresh process (interpreter start and imports included).

    python -m benchmarks.cli_latency --repeats 5

``graphrec datasets``, ``graphrec models`` and ``graphrec config gesm`` answer without
importing torch; ``graphrec recommend`` on an exported model is timed beside them when
``--model`` and ``--user`` are given.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = [["datasets"], ["models"], ["config", "gesm"], ["config", "lightgcn"], ["--help"]]


def wall(args: list[str], exe: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([exe, *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", help="an exported model folder, to time `graphrec recommend` too")
    ap.add_argument("--user", help="a user of --model")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    exe = shutil.which("graphrec") or str(__import__("pathlib").Path(sys.executable).with_name("graphrec"))
    commands = list(COMMANDS)
    if args.model and args.user:
        commands.append(["recommend", "--model", args.model, "--user", args.user, "-k", "10"])
    wall(["--help"], exe)  # warm the file cache once
    rows = []
    for cmd in commands:
        times = [wall(cmd, exe) for _ in range(args.repeats)]
        rows.append({"command": "graphrec " + " ".join(cmd), "median_s": statistics.median(times), "max_s": max(times)})
        print(f"{rows[-1]['command']:<60} median {rows[-1]['median_s']:.2f} s, max {rows[-1]['max_s']:.2f} s")
    load = __import__("os").getloadavg()[0]
    print(f"(load average {load:.2f} during the run)")
    if args.json:
        from graphrec.utils.io import atomic_write_json

        atomic_write_json(args.json, {"rows": rows, "load_1min": load})


if __name__ == "__main__":
    main()
