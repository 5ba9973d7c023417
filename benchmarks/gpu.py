#!/usr/bin/env python
"""GPU benchmark: genesis on device "cuda" against PyTorch CUDA, in one process.

    python benchmarks/gpu.py [--rounds 7] [--min-time 0.1]

Cases
  gemm       n x n @ n x n float32, n in 512..4096           (GFLOP/s: 2 n^3 flops)
  add, exp   elementwise on 16M float32 elements               (GB/s: 3 resp. 2 x 4 bytes/elem)
  mlp_sgd_step   MLP 784-256-256-10, SGD momentum, batch 128  (ms per step)
  cnn_adam_step  LeNet-like CNN (conv 20@5x5, pool, conv 50@5x5, pool, 500, 10), Adam,
                 batch 128                                     (ms per step)
A training step is zero_grad + forward + cross-entropy + backward + optimizer step, as
in benchmarks/training.py.  Timing is interleaved as in benchmarks/run.py: every round times
genesis and torch once each (the order alternates) and the table shows the median over
rounds.  The device is synchronized before and after every sample (each sample repeats
the call enough times to last --min-time seconds), so a sample covers the kernels'
execution and not just their launch.

It needs a real GPU: CuPy with a visible device for genesis and a CUDA build of
PyTorch; otherwise it exits with a message saying what is missing.  It refuses the CPU
emulator (GENESIS_CUDA_EMULATE=1) except with --emulated-smoke, which runs one tiny
round of the genesis side only, so that the script itself can be tested without a GPU.
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import find_genesis  # noqa: E402  (benchmarks/common.py)
from training import lenet, mlp  # noqa: E402  (benchmarks/training.py: the same models)

find_genesis()

GEMM_SIZES = (512, 1024, 2048, 4096)
ELEMENTS = 16 * 2 ** 20
BATCH = 128
# --emulated-smoke sizes: the emulator runs every CUDA thread on the CPU
SMOKE = dict(gemm=(64,), elements=4096, batch=2)


def _no_gpu_reason(smoke):
    """None when the benchmark can run, else what is missing."""
    emulate = os.environ.get("GENESIS_CUDA_EMULATE", "") not in ("", "0")
    if smoke:
        return None if emulate else "--emulated-smoke runs with GENESIS_CUDA_EMULATE=1 only"
    if emulate:
        return ("GENESIS_CUDA_EMULATE is set, which runs the kernels in the CPU emulator; "
                "unset it (only --emulated-smoke runs emulated)")
    try:
        from genesis.backend.cuda import _device  # noqa: F401  (raises saying why not)
    except RuntimeError as e:
        return str(e)
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (pip install torch, a CUDA build)"
    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} has no usable CUDA device"
    return None


# ---------------------------------------------------------------- frameworks
class Framework:
    """How one framework makes device tensors, models and optimizers, and syncs."""

    def __init__(self, name):
        self.name = name
        if name == "genesis":
            import genesis as lib
        else:
            import torch as lib
        self.lib, self.sync = lib, lib.cuda.synchronize

    def tensor(self, a):
        if self.name == "genesis":
            return self.lib.tensor(a, device="cuda")
        return self.lib.from_numpy(a).cuda()


# ---------------------------------------------------------------- cases
class Case:
    """name, unit, amount of work per call (for rates; None: report ms per call) and
    make(framework) -> the function to time."""

    def __init__(self, name, unit, work, make):
        self.name, self.unit, self.work, self.make = name, unit, work, make


def gemm_case(n):
    def make(fw):
        rng = np.random.default_rng(0)
        a, b = (fw.tensor(rng.random((n, n), dtype=np.float32)) for _ in range(2))
        return lambda: a @ b
    return Case(f"gemm {n}x{n}", "GFLOP/s", 2 * n ** 3 / 1e9, make)


def elementwise_case(op, n):
    def make(fw):
        rng = np.random.default_rng(1)
        a, b = (fw.tensor(rng.random(n, dtype=np.float32)) for _ in range(2))
        return (lambda: a + b) if op == "add" else (lambda: fw.lib.exp(a))
    return Case(f"{op} {n} float32", "GB/s", (3 if op == "add" else 2) * 4 * n / 1e9, make)


def training_case(name, build_model, shape, make_opt, batch):
    def make(fw):
        rng = np.random.default_rng(2)
        x = fw.tensor(rng.random((batch,) + shape, dtype=np.float32))
        target = fw.tensor(rng.integers(0, 10, batch).astype(np.int64))
        fw.lib.manual_seed(0)
        model = build_model(fw.lib.nn).to("cuda")
        opt = make_opt(fw.lib.optim, model.parameters())
        cross_entropy = fw.lib.nn.functional.cross_entropy

        def step():
            opt.zero_grad()
            loss = cross_entropy(model(x), target)
            loss.backward()
            opt.step()
            return loss
        return step
    return Case(name, "ms", None, make)


def make_cases(smoke):
    sizes = SMOKE if smoke else dict(gemm=GEMM_SIZES, elements=ELEMENTS, batch=BATCH)
    batch = sizes["batch"]
    return ([gemm_case(n) for n in sizes["gemm"]]
            + [elementwise_case(op, sizes["elements"]) for op in ("add", "exp")]
            + [training_case("mlp_sgd_step", mlp, (784,),
                             lambda optim, p: optim.SGD(p, lr=0.01, momentum=0.9), batch),
               training_case("cnn_adam_step", lenet, (1, 28, 28),
                             lambda optim, p: optim.Adam(p, lr=1e-3), batch)])


# ---------------------------------------------------------------- timing
def _sample(fn, calls, sync):
    """Seconds per call over `calls` calls, the device synchronized around them."""
    sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return (time.perf_counter() - t0) / calls


def _calls_per_sample(fn, sync, min_time):
    calls = 1
    while True:
        t = _sample(fn, calls, sync) * calls
        if t >= min_time / 10 or calls >= 10 ** 6:
            return max(1, math.ceil(calls * min_time / max(t, 1e-9)))
        calls *= 10


def measure(case, frameworks, rounds, min_time):
    """{framework: median seconds per call, or the error that stopped it}."""
    fns, calls, samples, out = {}, {}, {}, {}
    for fw in frameworks:
        try:
            fns[fw.name] = case.make(fw)
            fns[fw.name]()  # warm up: compile kernels, allocate
            calls[fw.name] = _calls_per_sample(fns[fw.name], fw.sync, min_time) \
                if min_time else 1
            samples[fw.name] = []
        except Exception as e:  # noqa: BLE001 - report the case as failed, keep going
            out[fw.name] = f"error: {str(e).splitlines()[0][:70]}"
    running = [fw for fw in frameworks if fw.name in fns and fw.name not in out]
    for r in range(rounds):
        for fw in (running if r % 2 == 0 else running[::-1]):
            samples[fw.name].append(_sample(fns[fw.name], calls[fw.name], fw.sync))
    for fw in running:
        out[fw.name] = statistics.median(samples[fw.name])
    return out


def _fmt(case, value):
    if isinstance(value, str):
        return value
    return f"{value * 1e3:.3f}" if case.work is None else f"{case.work / value:.1f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.1, help="seconds per sample")
    ap.add_argument("--emulated-smoke", action="store_true",
                    help="one tiny round of the genesis side on the CPU emulator")
    args = ap.parse_args(argv)
    reason = _no_gpu_reason(args.emulated_smoke)
    if reason is not None:
        sys.exit(f"benchmarks/gpu.py needs a real GPU: {reason}")
    names = ("genesis",) if args.emulated_smoke else ("genesis", "torch")
    frameworks = [Framework(n) for n in names]
    rounds, min_time = (1, 0.0) if args.emulated_smoke else (args.rounds, args.min_time)
    print("| case | unit | " + " | ".join(names) + (" | genesis vs torch |" if len(names) > 1
                                                     else " |"))
    print("|---|---|" + "---:|" * (len(names) + (len(names) > 1)))
    for case in make_cases(args.emulated_smoke):
        res = measure(case, frameworks, rounds, min_time)
        cells = [_fmt(case, res[n]) for n in names]
        if len(names) > 1:
            g, t = res["genesis"], res["torch"]
            cells.append(f"{t / g:.2f}x" if not isinstance(g, str) and not isinstance(t, str)
                         else "-")
        print(f"| {case.name} | {case.unit} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
