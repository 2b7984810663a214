"""Peak resident memory (RSS) of this process over a block of code.

``resource.getrusage`` reports the peak since the process started, so a benchmark that
runs several models in one process could only report a running maximum. On Linux the
kernel's high-water mark (``VmHWM`` in ``/proc/self/status``) can be reset by writing
``5`` to ``/proc/self/clear_refs``; :class:`PeakRSS` does that on entry and reads the mark
on exit, which is exact and costs nothing while the block runs. Where that file is not
writable (other systems, some containers), a thread samples the RSS through psutil
every ``interval`` seconds instead, which can miss a spike shorter than the interval.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _hwm_bytes() -> int | None:
    try:
        m = re.search(r"^VmHWM:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(m.group(1)) * 1024 if m else None


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _hwm_bytes() is not None


class PeakRSS:
    """``with PeakRSS() as peak: ...`` then ``peak.bytes`` (``peak.gib`` in GiB): the largest
    resident set of this process while the block ran.

    ``method`` says how it was measured: ``"hwm"`` (the kernel's high-water mark, exact) or
    ``"sampled"`` (psutil every ``interval`` seconds).
    """

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.bytes = 0
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRSS:
        if _reset_hwm():
            self.method = "hwm"
            return self
        import psutil

        proc = psutil.Process()
        self.method = "sampled"
        self.bytes = proc.memory_info().rss

        def sample() -> None:
            while not self._stop.wait(self.interval):
                self.bytes = max(self.bytes, proc.memory_info().rss)

        self._thread = threading.Thread(target=sample, name="graphrec-peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.method == "hwm":
            self.bytes = _hwm_bytes() or 0
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        import psutil

        self.bytes = max(self.bytes, psutil.Process().memory_info().rss)

    @property
    def gib(self) -> float:
        return self.bytes / 2**30
