#!/usr/bin/env python
"""Op sweep: genesis against PyTorch on the everyday ops that benchmarks/run.py leaves out
(reductions along a dim, activations, layout changes, indexing, normalization, losses).

    python benchmarks/ops.py [--threads 1,2] [--rounds 9] [--markdown PATH] [NAME ...]

Inputs are float32, mostly 2048 x 2048 (16 MB: past the L2, inside the L3), shared by
both frameworks (torch.from_numpy / genesis.from_numpy).  Each round calls genesis and
torch once each, in alternating order; the table shows each one's median time and the
median over rounds of the per-round ratio (torch time / genesis time, > 1: genesis is
faster), the figure to trust on a shared machine.  NAME filters cases by substring.
"""
import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import find_genesis, no_gc  # noqa: E402  (benchmarks/common.py)

find_genesis()
import genesis  # noqa: E402
from genesis import _C  # noqa: E402

rng = np.random.default_rng(0)
A = rng.standard_normal((2048, 2048), dtype=np.float32)
B = rng.standard_normal((2048, 2048), dtype=np.float32)
POS = np.abs(A) + 0.1
IDX = rng.integers(0, 2048, (2048, 64))
X4 = rng.standard_normal((64, 32, 32, 32), dtype=np.float32)

# name -> (fn(lib, F, *inputs), inputs); lib is genesis or torch, F its functional module
CASES = {
    "sum(dim=1)": (lambda L, F, a: a.sum(dim=1), (A,)),
    "sum(dim=0)": (lambda L, F, a: a.sum(dim=0), (A,)),
    "mean(dim=1)": (lambda L, F, a: a.mean(dim=1), (A,)),
    "var(dim=1)": (lambda L, F, a: a.var(dim=1), (A,)),
    "max()": (lambda L, F, a: a.max(), (A,)),
    "max(dim=1) values+indices": (lambda L, F, a: a.max(dim=1), (A,)),
    "argmax()": (lambda L, F, a: a.argmax(), (A,)),
    "argmax(dim=1)": (lambda L, F, a: a.argmax(dim=1), (A,)),
    "amax(dim=0)": (lambda L, F, a: a.amax(dim=0), (A,)),
    "cumsum(dim=1)": (lambda L, F, a: a.cumsum(dim=1), (A,)),
    "cumsum(dim=0)": (lambda L, F, a: a.cumsum(dim=0), (A,)),
    "softmax(dim=0)": (lambda L, F, a: F.softmax(a, dim=0), (A,)),
    "log_softmax(dim=1)": (lambda L, F, a: F.log_softmax(a, dim=1), (A,)),
    "relu": (lambda L, F, a: F.relu(a), (A,)),
    "sigmoid": (lambda L, F, a: L.sigmoid(a), (A,)),
    "tanh": (lambda L, F, a: L.tanh(a), (A,)),
    "gelu": (lambda L, F, a: F.gelu(a), (A,)),
    "silu": (lambda L, F, a: F.silu(a), (A,)),
    "log": (lambda L, F, a: L.log(a), (POS,)),
    "sqrt": (lambda L, F, a: L.sqrt(a), (POS,)),
    "erf": (lambda L, F, a: L.erf(a), (A,)),
    "where(a > 0, a, b)": (lambda L, F, a, b: L.where(a > 0, a, b), (A, B)),
    "a.t().contiguous()": (lambda L, F, a: a.t().contiguous(), (A,)),
    "permute(0, 2, 3, 1).contiguous()": (lambda L, F, x: x.permute(0, 2, 3, 1).contiguous(),
                                         (X4,)),
    "cat(dim=1)": (lambda L, F, a, b: L.cat([a, b], 1), (A, B)),
    "gather(dim=1), 2048 x 64 indices": (lambda L, F, a, i: L.gather(a, 1, i), (A, IDX)),
    "topk(10, dim=1)": (lambda L, F, a: L.topk(a, 10, dim=1), (A,)),
    "sort(dim=1)": (lambda L, F, a: L.sort(a, dim=1), (A,)),
    "layer_norm": (lambda L, F, a: F.layer_norm(a, (2048,)), (A,)),
    "batch_norm (training), 64x32x32x32": (
        lambda L, F, x: F.batch_norm(x, None, None, training=True), (X4,)),
    "max_pool2d(2), 64x32x32x32": (lambda L, F, x: F.max_pool2d(x, 2), (X4,)),
    "mse_loss": (lambda L, F, a, b: F.mse_loss(a, b), (A, B)),
}


def wrap(lib, arrays):
    return [lib.from_numpy(a) for a in arrays]


def measure(fn, inputs, rounds):
    """(median genesis seconds, median torch seconds, median per-round torch/genesis)."""
    import genesis.nn.functional as GF
    import torch.nn.functional as TF
    calls = {"genesis": (lambda g=wrap(genesis, inputs): fn(genesis, GF, *g)),
             "torch": (lambda t=wrap(torch, inputs): fn(torch, TF, *t))}
    for call in calls.values():
        call()  # warm-up: first-touch allocations, lazy initialization
    times = {"genesis": [], "torch": []}
    with no_gc():
        for r in range(rounds):
            for name in (("genesis", "torch") if r % 2 == 0 else ("torch", "genesis")):
                t0 = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - t0)
    ratio = np.median(np.array(times["torch"]) / np.array(times["genesis"]))
    return np.median(times["genesis"]), np.median(times["torch"]), ratio


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--markdown", default=None, help="also write the table to this file")
    p.add_argument("names", nargs="*")
    args = p.parse_args()
    cases = {k: v for k, v in CASES.items() if not args.names or any(n in k for n in args.names)}
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"genesis ISA {_C.best_isa()}, torch {torch.__version__}, numpy {np.__version__}",
             f"Command: python benchmarks/ops.py --threads {args.threads} --rounds {args.rounds}",
             "", "| op | threads | genesis ms | torch ms | torch / genesis |", "|---|---:|---:|---:|---:|"]
    print("\n".join(lines[:2]), flush=True)
    for nt in (int(t) for t in args.threads.split(",")):
        genesis.set_num_threads(nt)
        torch.set_num_threads(nt)
        for name, (fn, inputs) in cases.items():
            tg, tt, ratio = measure(fn, inputs, args.rounds)
            row = f"| {name} | {nt} | {tg * 1e3:.3f} | {tt * 1e3:.3f} | {ratio:.2f}x |"
            lines.append(row)
            print(row, flush=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("# Op sweep: genesis vs PyTorch\n\n"
                    "Generated by `benchmarks/ops.py` (see its docstring). The ratio is the "
                    "median over rounds of torch time / genesis time: above 1, genesis is "
                    "faster.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
