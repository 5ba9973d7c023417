"""Helpers of the benchmark scripts that import no framework (genesis, torch): safe in
processes that must hold only one framework (memory.py's children) or only genesis
(profile_step.py)."""
import gc
import importlib.util
import os
import sys
import time
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_genesis():
    """Make `import genesis` work: an installed genesis (or one on PYTHONPATH) is used as is;
    otherwise the one of this checkout, built in place by .ci/build-inplace."""
    if importlib.util.find_spec("genesis") is None and ROOT not in sys.path:
        sys.path.insert(0, ROOT)


@contextmanager
def no_gc():
    """Pause the garbage collector (timed samples must not include its pauses)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _cpu_busy_seconds():
    """(busy CPU seconds of the whole machine, of this process and its children) so far."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        hz = os.sysconf("SC_CLK_TCK")
        busy = (sum(v[:8]) - v[3] - v[4]) / hz  # all but idle and iowait
    except (OSError, ValueError, IndexError):
        return None
    t = os.times()
    # Waited-for children (benchmark subprocesses, git) are this run's work, not load.
    return busy, t.user + t.system + t.children_user + t.children_system


class LoadMeter:
    """Average number of cores kept busy by other processes between start() and stop()."""

    def start(self):
        self.t0, self.c0 = time.perf_counter(), _cpu_busy_seconds()
        return self

    def stop(self):
        c1 = _cpu_busy_seconds()
        wall = time.perf_counter() - self.t0
        if self.c0 is None or c1 is None or wall <= 0:
            return None
        return max(0.0, ((c1[0] - self.c0[0]) - (c1[1] - self.c0[1])) / wall)


def wait_idle(max_wait, threshold=0.25):
    """Background load over a 1 s window; waits (up to max_wait s) for it to drop."""
    deadline = time.perf_counter() + max_wait
    while True:
        m = LoadMeter().start()
        time.sleep(1.0)
        load = m.stop()
        if load is None or load < threshold or time.perf_counter() >= deadline:
            return load
        print(f"  waiting for an idle machine: other processes use {load:.2f} cores",
              flush=True)
        time.sleep(4.0)
