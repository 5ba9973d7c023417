#!/usr/bin/env python
"""LSTM training step: genesis vs PyTorch, one process, interleaved.

The model is the sentiment example's shape: Embedding(1000, 64) -> LSTM(64, 128)
-> Linear(128, 2) on the last hidden state, a batch of 64 sequences of T = 32
tokens, cross-entropy and Adam.  One step is zero_grad + forward + backward +
optimizer step.  Each framework takes one timed sample per round in turn (the
order rotates), the figure is the median over rounds; run once per thread count.

    python benchmarks/rnn.py [--threads 1,2] [--rounds 9] [--bidirectional]

The background load of other processes during the run is printed: on a shared
machine the ratio is only meaningful next to it.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import LoadMeter, measure, set_threads  # noqa: E402  (benchmarks/run.py)

import genesis  # noqa: E402
import torch  # noqa: E402

VOCAB, EMBED, HIDDEN, STEPS, BATCH, CLASSES = 1000, 64, 128, 32, 64, 2


def make_step(lib, bidirectional):
    """One training step of the benchmark model built from `lib` (genesis or torch)."""
    nn = lib.nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, EMBED)
            self.lstm = nn.LSTM(EMBED, HIDDEN, bidirectional=bidirectional)
            self.head = nn.Linear(HIDDEN * (2 if bidirectional else 1), CLASSES)

        def forward(self, tokens):
            _, (h_n, _) = self.lstm(self.embed(tokens))
            last = h_n[-1] if not bidirectional else lib.cat([h_n[-2], h_n[-1]], 1)
            return self.head(last)

    lib.manual_seed(0)
    model = Model()
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    tokens = lib.from_numpy(rng.integers(0, VOCAB, (STEPS, BATCH)).astype(np.int64))
    labels = lib.from_numpy(rng.integers(0, CLASSES, BATCH).astype(np.int64))
    cross_entropy = nn.functional.cross_entropy

    def step():
        opt.zero_grad()
        loss = cross_entropy(model(tokens), labels)
        loss.backward()
        opt.step()
        return loss
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--min-time", type=float, default=0.5, help="seconds per timed sample")
    p.add_argument("--bidirectional", action="store_true")
    args = p.parse_args(argv)
    what = "bidirectional " if args.bidirectional else ""
    print(f"{what}LSTM training step: embedding {VOCAB}x{EMBED}, hidden {HIDDEN}, T={STEPS}, "
          f"batch {BATCH}, Adam; median of {args.rounds} interleaved rounds")
    for threads in (int(t) for t in args.threads.split(",")):
        with set_threads(threads):
            fns = {"genesis": make_step(genesis, args.bidirectional),
                   "torch": make_step(torch, args.bidirectional)}
            meter = LoadMeter().start()
            res = measure(fns, None, args.rounds, args.min_time)
            load = meter.stop()
        for fw, d in res.items():
            if "error" in d:
                sys.exit(f"{fw} failed: {d['exception']}")
        g, t = res["genesis"]["seconds"], res["torch"]["seconds"]
        busy = "unknown" if load is None else f"{load:.2f}"
        print(f"  {threads} thread(s): genesis {g * 1e3:7.2f} ms, torch {t * 1e3:7.2f} ms, "
              f"genesis/torch {g / t:.2f}x (spread {res['genesis']['spread']:.0%} / "
              f"{res['torch']['spread']:.0%}; other processes kept {busy} cores busy)")


if __name__ == "__main__":
    main()
