"""Smoke tests of benchmarks/memory.py and benchmarks/profile_step.py: each runs with
tiny settings in a subprocess and must print its rows with positive figures.  The
PyTorch comparison of memory.py is skipped when torch is not installed."""
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

import genesis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# where the genesis under test lives (installed, or this checkout built in place)
GENESIS_PATH = os.path.dirname(os.path.dirname(os.path.abspath(genesis.__file__)))
HAS_TORCH = importlib.util.find_spec("torch") is not None
MEMORY_ROWS = ("RSS after import", "baseline: import + data + model",
               "peak during training (VmHWM)", "increase during training",
               "lifetime peak (ru_maxrss)")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the tools read /proc")


def _run(tool, *args):
    env = dict(os.environ, PYTHONPATH=GENESIS_PATH)
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", tool), *args],
                       capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def _table(out):
    """{first cell: [other cells]} of the markdown table rows in out."""
    rows = {}
    for line in out.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def memory_run(tmp_path_factory):
    """One run of memory.py with its default frameworks (torch too when installed):
    (stdout, table rows, JSON)."""
    path = tmp_path_factory.mktemp("memory") / "memory.json"
    out = _run("memory.py", "--steps", "3", "--samples", "512", "--rounds", "1",
               "--json", str(path))
    return out, _table(out), json.loads(path.read_text())


def test_memory_reports_genesis(memory_run):
    out, rows, data = memory_run
    assert rows["MiB"][0] == "genesis"
    for label in MEMORY_ROWS:
        assert float(rows[label][0]) > 0, (label, out)
    g = data["results"]["genesis"]
    assert g["peak"] >= g["baseline"] > g["after_import"] > 0
    assert g["increase"] == g["peak"] - g["baseline"]
    if not HAS_TORCH:  # genesis alone, said so
        assert rows["MiB"] == ["genesis"] and "torch is not installed" in out


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_memory_compares_with_torch(memory_run):
    out, rows, data = memory_run
    assert rows["MiB"] == ["genesis", "torch", "genesis/torch"]
    for label in MEMORY_ROWS:
        g, t, ratio = rows[label]
        assert float(g) > 0 and float(t) > 0 and float(ratio.rstrip("x")) > 0, (label, out)
    assert re.search(r"genesis/torch: peak \d+\.\d+x, increase \d+\.\d+x", out)
    assert data["genesis_vs_torch"]["peak"] > 0


def test_profile_step():
    out = _run("profile_step.py", "--steps", "3", "--rounds", "1", "--cprofile", "--top", "5")
    figures = {}
    for label in ("step time (wrapper cost removed)", "inside genesis._C kernels",
                  "outside kernels (Python)", "_C calls per step",
                  "plain step (no wrappers), check"):
        # "outside" may come out negative from 3 steps on a loaded machine: sign allowed.
        m = re.search(re.escape(label) + r"\s+(-?\d+(?:\.\d+)?) ", out)
        assert m, (label, out)
        figures[label] = float(m.group(1))
    for label in ("step time (wrapper cost removed)", "inside genesis._C kernels",
                  "plain step (no wrappers), check"):
        assert figures[label] > 0, (label, out)
    assert figures["_C calls per step"] >= 8  # 3 forward and 5 backward matmuls at least
    assert re.search(r"wrapper cost per call.*: \d+ ns, of which \d+ ns", out)
    rows = _table(out)
    assert rows["kernel"] == ["calls/step", "µs/step", "µs/call", "% of step"]
    assert float(rows["matmul"][0]) == 8 and float(rows["matmul"][1]) > 0
    assert "sgd_update" in rows
    assert "tottime" in out  # the --cprofile listing
