"""``python -m graphrec``: the command line, also the entry point ``torchrun -m graphrec train CONFIG`` runs on each rank."""

import os
import sys
import traceback

from graphrec.cli import app


def main() -> None:
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        app(prog_name="graphrec")
        return
    # A rank of a distributed run ends without the interpreter's finalisation: gloo's C++ worker threads can still
    # hold objects whose destruction needs the interpreter, and then abort the process (SIGABRT, "terminate called
    # without an active exception") after the work is done; the command has already left the process group and
    # written its results (pytorch/pytorch#179291 describes the teardown).
    code = 0
    try:
        app(prog_name="graphrec")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported as Python would, then the same hard exit
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
