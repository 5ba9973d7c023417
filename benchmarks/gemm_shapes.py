#!/usr/bin/env python
"""GEMM shape sweep: genesis's kernel against PyTorch on the shapes the models use.

    python benchmarks/gemm_shapes.py [--threads 1] [--rounds 11] [SHAPE ...]

Each shape is M x K x N with a layout: "NN" (a and b row-major), "NT" (b stored
transposed, as Linear's X·Wᵀ), "TN" (a stored transposed, as a weight gradient dYᵀ·X).
The kernels are called with preallocated outputs (genesis `_C.matmul`, `torch.matmul(...,
out=)`), so the figures are the GEMMs alone, without Python dispatch or allocation.  Each
round times genesis and torch once (about 20 ms of calls each); the table shows the best
round's GFLOP/s of each and the median over rounds of the per-round ratio, which is the
figure to trust on a shared machine.  SHAPE filters, e.g. `64x128x512`.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import find_genesis  # noqa: E402  (benchmarks/common.py)

find_genesis()
import genesis  # noqa: E402
from genesis import _C  # noqa: E402

SHAPES = [
    # square
    (128, 128, 128, "NN"), (256, 256, 256, "NN"), (512, 512, 512, "NN"),
    (1024, 1024, 1024, "NN"), (2048, 2048, 2048, "NN"),
    # the MNIST MLP's layers (batch 128): forward, input gradient, weight gradient
    (128, 784, 256, "NT"), (784, 128, 256, "TN"), (128, 256, 10, "NT"), (128, 10, 256, "NN"),
    (10, 128, 256, "TN"), (10, 128, 784, "TN"),
    # LSTM (batch 64, hidden 128, T = 32): per step and per sequence
    (64, 128, 512, "NN"), (64, 512, 128, "NN"), (2048, 64, 512, "NT"), (2048, 512, 64, "NN"),
    (512, 2048, 128, "TN"), (512, 2048, 64, "TN"),
    # conv 64 -> 64, 3x3, 32x32 per image: forward and the transposed formulation
    (64, 576, 1024, "NN"), (1024, 576, 64, "NN"),
]


def operands(m, k, n, layout, rng):
    a = rng.random((k, m), dtype=np.float32).T if layout[0] == "T" else \
        rng.random((m, k), dtype=np.float32)
    b = rng.random((n, k), dtype=np.float32).T if layout[1] == "T" else \
        rng.random((k, n), dtype=np.float32)
    return a, b


def timed(f, seconds=0.02):
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        f()
        calls += 1
    return (time.perf_counter() - start) / calls


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("shapes", nargs="*", help="only these MxKxN shapes")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=11)
    args = p.parse_args(argv)
    genesis.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"GEMM shapes, float32, {args.threads} thread(s), {args.rounds} interleaved rounds")
    print("| M x K x N | layout | genesis GFLOP/s | torch GFLOP/s | genesis vs torch |")
    print("|---|---|---:|---:|---:|")
    for m, k, n, layout in SHAPES:
        if args.shapes and f"{m}x{k}x{n}" not in args.shapes:
            continue
        a, b = operands(m, k, n, layout, rng)
        out = np.empty((m, n), np.float32)
        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        runs = {"genesis": lambda: _C.matmul(a, b, out, False),
                "torch": lambda: torch.matmul(ta, tb, out=tout)}
        times = {name: [] for name in runs}
        for f in runs.values():
            f()
        for _ in range(args.rounds):
            for name, f in runs.items():
                times[name].append(timed(f))
        flops = 2 * m * k * n
        g, t = np.array(times["genesis"]), np.array(times["torch"])
        print(f"| {m}x{k}x{n} | {layout} | {flops / g.min() / 1e9:.1f} | "
              f"{flops / t.min() / 1e9:.1f} | {np.median(t / g):.2f}x |")


if __name__ == "__main__":
    main()
