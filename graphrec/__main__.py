"""``python -m graphrec``: the command line, also the entry point ``torchrun -m graphrec train CONFIG`` runs on each rank."""

from graphrec.cli import app

if __name__ == "__main__":
    app(prog_name="graphrec")
