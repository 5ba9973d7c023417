#!/usr/bin/env python
"""How much of genesis's MLP training step is spent outside its native kernels.

    python benchmarks/profile_step.py [--steps 200] [--rounds 5] [--threads 1] [--cprofile]

The step is benchmarks/training.py's: the MLP 784-256-256-10 (ReLU) with SGD
momentum 0.9, a fixed random batch of 128, zero_grad + forward + cross-entropy +
backward + optimizer step.  genesis itself is not modified.

Method: every function of the extension module genesis._C (matmul, binary, unary,
reduce, softmax, cross_entropy, sgd_update, ...) is replaced by a wrapper that
adds perf_counter_ns() around the call to a per-kernel accumulator (unary, binary
and reduce are split by op: `binary:add`).  This sees every kernel call because
genesis looks the functions up on the module at call time (`_C.matmul(...)` in
genesis/backend/cpu.py); the tool also searches genesis's loaded modules for
functions of _C bound to other names at import (`from ._C import matmul`, in
dicts, as default arguments), patches those it can and reports any it cannot.

Rounds alternate (order rotating) an instrumented sample and a plain sample of
--steps/--rounds steps each, with the garbage collector paused during samples as
in run.py; figures are medians over rounds.  Only genesis is imported.  The
wrapper's own cost is measured on a wrapped no-op builtin: the part that falls
inside the timed interval (a clock read) is subtracted from every kernel call,
the whole cost from the instrumented step.  "Step time" is that corrected
instrumented step and "inside kernels" the corrected kernel time of the same
steps (it includes pybind11's argument conversion); "outside kernels" is the
rest: Python in autograd, dispatch, module and optimizer code, and output
allocation (np.empty).  The plain (uninstrumented) step is printed as a check of
the correction: on an idle machine the two agree within a few per cent.
Target: under 20 % of the step outside kernels.  --cprofile adds the top Python
functions by own time (tottime) over the same number of plain steps.
"""
import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import LoadMeter, find_genesis, no_gc  # noqa: E402  (no torch: genesis runs alone)
import training  # noqa: E402

find_genesis()

import genesis  # noqa: E402
from genesis import _C  # noqa: E402

TARGET_OUTSIDE = 0.20
MODEL = "MLP 784-256-256-10, SGD momentum"
# Kernels whose first argument is an op code: accounted per op.
_OP_CODES = {"unary": _C.UNARY_OPS, "binary": _C.BINARY_OPS, "reduce": _C.REDUCE_OPS}


# ---------------------------------------------------------------- instrumentation
def _timed(fn, stats, name):
    """fn wrapped to add (calls, ns) to stats[name]."""
    ns = time.perf_counter_ns
    stat = stats.setdefault(name, [0, 0])

    def wrapper(*args, **kwargs):
        t0 = ns()
        r = fn(*args, **kwargs)
        stat[1] += ns() - t0
        stat[0] += 1
        return r
    return wrapper


def _timed_by_op(fn, stats, name):
    """fn wrapped to add (calls, ns) to stats[(name, op code)]: its first argument."""
    ns = time.perf_counter_ns

    def wrapper(op, *args, **kwargs):
        t0 = ns()
        r = fn(op, *args, **kwargs)
        t1 = ns()
        stat = stats.get((name, op))
        if stat is None:
            stat = stats[(name, op)] = [0, 0]
        stat[1] += t1 - t0
        stat[0] += 1
        return r
    return wrapper


def _kernels():
    """{name: function} of every callable of genesis._C but its classes."""
    return {n: f for n, f in vars(_C).items()
            if not n.startswith("_") and callable(f) and not isinstance(f, type)}


class KernelTimer:
    """Wraps the functions of genesis._C (and any copies of them bound elsewhere in
    genesis) in timing wrappers while installed."""

    def __init__(self):
        self.stats = {}
        self.kernels = _kernels()
        self.wrappers = {n: (_timed_by_op if n in _OP_CODES else _timed)(f, self.stats, n)
                         for n, f in self.kernels.items()}
        self._undo = []
        self.bound_elsewhere = []   # "module.name" patched besides genesis._C
        self.unpatchable = []       # references the wrappers cannot reach

    def _set(self, container, key, value, is_dict):
        old = container[key] if is_dict else getattr(container, key)
        self._undo.append((container, key, old, is_dict))
        if is_dict:
            container[key] = value
        else:
            setattr(container, key, value)

    def install(self):
        by_id = {id(f): n for n, f in self.kernels.items()}
        self.bound_elsewhere, self.unpatchable = [], []  # found afresh at every install
        for n in self.kernels:
            self._set(_C, n, self.wrappers[n], False)
        for modname, mod in list(sys.modules.items()):
            if mod is _C or not isinstance(mod, types.ModuleType) or not (
                    modname == "genesis" or modname.startswith("genesis.")):
                continue
            for attr, v in list(vars(mod).items()):
                if id(v) in by_id:  # e.g. `from ._C import matmul`
                    self._set(mod, attr, self.wrappers[by_id[id(v)]], False)
                    self.bound_elsewhere.append(f"{modname}.{attr}")
                elif isinstance(v, dict):
                    for k, x in list(v.items()):
                        if id(x) in by_id:
                            self._set(v, k, self.wrappers[by_id[id(x)]], True)
                            self.bound_elsewhere.append(f"{modname}.{attr}[{k!r}]")
                elif isinstance(v, (list, tuple)) and any(id(x) in by_id for x in v):
                    self.unpatchable.append(f"{modname}.{attr}")
                elif isinstance(v, types.FunctionType):
                    defaults = (v.__defaults__ or ()) + tuple((v.__kwdefaults__ or {}).values())
                    if any(id(x) in by_id for x in defaults):
                        self.unpatchable.append(f"{modname}.{attr} (default argument)")
        return self

    def uninstall(self):
        for container, key, old, is_dict in reversed(self._undo):
            if is_dict:
                container[key] = old
            else:
                setattr(container, key, old)
        self._undo = []

    def reset(self):
        for stat in self.stats.values():
            stat[0] = stat[1] = 0

    def totals(self):
        """(calls, ns) summed over all kernels."""
        return (sum(s[0] for s in self.stats.values()), sum(s[1] for s in self.stats.values()))


def _label(key):
    if isinstance(key, tuple):
        name, op = key
        names = {v: k for k, v in _OP_CODES[name].items()}
        return f"{name}:{names.get(op, op)}"
    return key


def wrapper_cost(n=100_000, repeats=5):
    """(ns per call added by a wrapper in total, ns of it inside the timed interval), for
    each wrapper kind, measured on the no-op builtin abs(0) (medians of `repeats`)."""
    perf = time.perf_counter_ns
    out = {}
    for kind, make in (("plain", _timed), ("by op", _timed_by_op)):
        stats = {}
        total, inside = [], []
        with no_gc():
            for _ in range(repeats):
                stats.clear()
                wrapped = make(abs, stats, "noop")
                t0 = perf()
                for _ in range(n):
                    abs(0)
                t1 = perf()
                for _ in range(n):
                    wrapped(0)
                t2 = perf()
                for _ in range(n):
                    pass
                t3 = perf()
                bare_call = (t1 - t0 - (t3 - t2)) / n  # abs(0) itself, loop excluded
                measured = sum(s[1] for s in stats.values()) / n
                total.append((t2 - t1 - (t1 - t0)) / n)
                inside.append(max(0.0, measured - bare_call))
        out[kind] = (statistics.median(total), statistics.median(inside))
    return out


# ---------------------------------------------------------------- measurement
def build_step():
    """A no-argument training step of the MLP on a fixed random batch (training.py's)."""
    build_model, shape, make_opt = training.MODELS[MODEL]
    rng = np.random.default_rng(5)
    x = genesis.from_numpy(rng.random(shape, dtype=np.float32))
    y = genesis.from_numpy(rng.integers(0, 10, training.BATCH).astype(np.int64))
    genesis.manual_seed(0)
    model = build_model(genesis.nn)
    step = training.make_step(genesis, model, make_opt(genesis.optim, model.parameters()))
    return lambda: step(x, y)


def _sample(step, n):
    """Seconds per step over n back-to-back steps, gc paused (as run.py's samples)."""
    gc.collect()
    with no_gc():
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        return (time.perf_counter() - t0) / n


def profile(step, steps, rounds, timer):
    """Interleaved plain and instrumented samples; per-round figures and kernel stats."""
    rounds = max(1, min(rounds, steps))
    per = max(1, steps // rounds)
    for _ in range(5):  # first steps allocate optimizer state and warm caches
        step()
    timer.install()
    try:
        step()
    finally:
        timer.uninstall()
    timer.reset()
    plain, instrumented, kernel_ns, calls = [], [], [], []
    totals = {}
    for r in range(rounds):
        for mode in (("plain", "instr") if r % 2 == 0 else ("instr", "plain")):
            if mode == "plain":
                plain.append(_sample(step, per))
                continue
            timer.reset()
            timer.install()
            try:
                instrumented.append(_sample(step, per))
            finally:
                timer.uninstall()
            c, t = timer.totals()
            calls.append(c / per)
            kernel_ns.append(t / per)
            for k, (kc, kt) in timer.stats.items():
                acc = totals.setdefault(k, [0, 0])
                acc[0] += kc
                acc[1] += kt
    return {"plain": plain, "instrumented": instrumented, "kernel_ns": kernel_ns,
            "calls": calls, "per_sample": per, "rounds": rounds, "kernels": totals}


def summarize(raw, cost, by_op_calls_share):
    """Medians over rounds, corrected for the wrapper cost, in seconds per step.

    The step and kernel times come from the same (instrumented) steps, so that load
    changing between samples cannot skew their difference; the plain step checks
    that subtracting the wrapper cost recovers the uninstrumented time."""
    # Wrapper cost per call, weighted by how many calls went through each wrapper kind.
    total_ns = (1 - by_op_calls_share) * cost["plain"][0] + by_op_calls_share * cost["by op"][0]
    inside_ns = (1 - by_op_calls_share) * cost["plain"][1] + by_op_calls_share * cost["by op"][1]
    steps = [t - c * total_ns * 1e-9 for t, c in zip(raw["instrumented"], raw["calls"])]
    kernels = [max(0.0, (k - c * inside_ns) * 1e-9) for k, c in zip(raw["kernel_ns"], raw["calls"])]
    step, kernel = statistics.median(steps), statistics.median(kernels)
    plain = statistics.median(raw["plain"])
    return {"step_s": step, "kernel_s": kernel, "outside_s": step - kernel,
            "outside_fraction": (step - kernel) / step,
            "calls_per_step": statistics.median(raw["calls"]), "plain_step_s": plain,
            "plain_vs_step": plain / step - 1,
            "wrapper_total_ns": total_ns, "wrapper_inside_ns": inside_ns,
            "spread": (max(steps) - min(steps)) / step}


def breakdown(raw, cost, step_s):
    """Rows (label, calls per step, µs per step, µs per call, share of step), by time."""
    steps = raw["per_sample"] * len(raw["instrumented"])
    rows = []
    for key, (c, t) in raw["kernels"].items():
        if not c:
            continue
        inside = cost["by op" if isinstance(key, tuple) else "plain"][1]
        us = max(0.0, t - c * inside) / steps / 1e3
        rows.append((_label(key), c / steps, us, us / (c / steps), us * 1e-6 / step_s))
    return sorted(rows, key=lambda r: -r[2])


def cprofile_top(step, steps, top):
    """pstats text of the top functions by tottime over `steps` plain steps."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(top)
    return s.getvalue()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200,
                   help="instrumented steps in all (and as many plain ones) (200)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    p.add_argument("--threads", type=int, default=1, help="genesis threads (1)")
    p.add_argument("--cprofile", action="store_true",
                   help="also print the top Python functions by tottime")
    p.add_argument("--top", type=int, default=25, help="functions listed by --cprofile (25)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results here")
    args = p.parse_args(argv)

    genesis.set_num_threads(args.threads)
    step = build_step()
    timer = KernelTimer()
    cost = wrapper_cost()
    meter = LoadMeter().start()
    raw = profile(step, args.steps, args.rounds, timer)
    load = meter.stop()
    top = cprofile_top(step, args.steps, args.top) if args.cprofile else None

    by_op = sum(c for k, (c, _) in raw["kernels"].items() if isinstance(k, tuple))
    all_calls = sum(c for c, _ in raw["kernels"].values()) or 1
    s = summarize(raw, cost, by_op / all_calls)
    rows = breakdown(raw, cost, s["step_s"])
    ms = 1e3
    print(f"genesis {genesis.__version__}, {MODEL}, batch {training.BATCH}, "
          f"{genesis.get_num_threads()} thread(s): {raw['rounds']} interleaved rounds of "
          f"{raw['per_sample']} instrumented + {raw['per_sample']} plain steps (medians)")
    print(f"patched {len(timer.kernels)} functions of genesis._C (looked up at call time); "
          f"bound elsewhere at import: {', '.join(timer.bound_elsewhere) or 'none'}"
          + (f"; NOT reachable (their calls are missed): {', '.join(timer.unpatchable)}"
             if timer.unpatchable else ""))
    print(f"wrapper cost per call, measured on a wrapped no-op builtin: "
          f"{s['wrapper_total_ns']:.0f} ns, of which {s['wrapper_inside_ns']:.0f} ns inside the "
          "timed interval (subtracted below)")
    print()
    verdict = "met" if s["outside_fraction"] < TARGET_OUTSIDE else "NOT met"
    print(f"  step time (wrapper cost removed)  {s['step_s'] * ms:8.3f} ms  "
          f"(spread over rounds {s['spread']:.0%})")
    print(f"  inside genesis._C kernels         {s['kernel_s'] * ms:8.3f} ms  "
          f"{1 - s['outside_fraction']:6.1%}")
    print(f"  outside kernels (Python)          {s['outside_s'] * ms:8.3f} ms  "
          f"{s['outside_fraction']:6.1%}  (target < {TARGET_OUTSIDE:.0%}: {verdict})")
    print(f"  _C calls per step                 {s['calls_per_step']:8.0f}     "
          f"({s['outside_s'] * 1e6 / max(s['calls_per_step'], 1):.1f} µs of Python per call)")
    print(f"  plain step (no wrappers), check   {s['plain_step_s'] * ms:8.3f} ms  "
          f"({s['plain_vs_step']:+.0%} vs the step above)")
    if abs(s["plain_vs_step"]) > 0.1:
        print("  note: the plain and the corrected instrumented step differ by more than 10 %: "
              "the machine is noisy; more --steps and --rounds, or an idle machine, help")
    busy = "unknown" if load is None else f"{load:.2f}"
    print(f"  other processes kept {busy} cores busy")
    print()
    print("| kernel | calls/step | µs/step | µs/call | % of step |")
    print("|---|---:|---:|---:|---:|")
    for label, c, us, per_call, share in rows:
        print(f"| {label} | {c:.0f} | {us:.1f} | {per_call:.1f} | {share:.1%} |")
    if top is not None:
        print()
        print(f"cProfile, {args.steps} plain steps, top {args.top} by tottime:")
        print(top.rstrip())
    if args.json:
        from run import machine_info  # imports torch: only now, after the measurements
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info(sys.argv if argv is None else [p.prog] + argv),
                       "settings": vars(args), "background_load": load, "summary": s,
                       "wrapper_cost_ns": cost,
                       "samples": {k: raw[k] for k in ("plain", "instrumented", "kernel_ns",
                                                       "calls")},
                       "kernels": [dict(zip(("kernel", "calls_per_step", "us_per_step",
                                             "us_per_call", "share"), r)) for r in rows]},
                      f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
