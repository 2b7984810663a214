import numpy as np
import pytest

from graphrec.utils import memory
from graphrec.utils.memory import PeakRSS


def _touch(mib: int) -> np.ndarray:
    a = np.ones(mib * 2**20 // 8)  # every page written, so it is resident
    return a


@pytest.mark.parametrize("method", ["hwm", "sampled"])
def test_peak_rss_sees_a_block_s_allocation_and_not_an_earlier_one(monkeypatch, method):
    if method == "sampled":
        monkeypatch.setattr(memory, "_reset_hwm", lambda: False)
    elif not memory._reset_hwm():
        pytest.skip("the kernel's high-water mark cannot be reset here")
    big = _touch(400)  # before the block: must not count
    del big
    with PeakRSS(interval=0.005) as small:
        _touch(20)
    with PeakRSS(interval=0.005) as peak:
        a = _touch(200)
        if method == "sampled":
            import time

            time.sleep(0.05)  # let the sampler see it
        del a
    assert small.method == peak.method == method
    assert peak.bytes - small.bytes > 150 * 2**20  # the 200 MiB block shows, the earlier 400 MiB does not
    assert small.gib < peak.gib
