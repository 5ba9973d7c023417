#!/usr/bin/env python
"""Transformer encoder block training step: genesis vs PyTorch, one process, interleaved.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/transformer.py

One step is zero_grad + forward of nn.TransformerEncoderLayer(d_model 128, 4 heads,
feed-forward 512, dropout 0.1, batch_first) on a (32, 64, 128) batch + MSE loss +
backward + Adam step, once without a mask and once with a causal mask.  Both
frameworks build the layer from their own `nn` with the same weights.  Samples
alternate between the frameworks (the order rotates every round); the figure is the
median over rounds, for 1 and 2 threads.  The background load (cores kept busy by
other processes) is measured during each case and printed with it: on a shared
machine it inflates both columns.
Options: --rounds N (default 9), --min-time SECONDS per sample (default 0.5),
--threads 1,2.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (benchmarks/run.py: timing, thread control, load meter)

D_MODEL, HEADS, FF, SEQ, BATCH = 128, 4, 512, 64, 32


def make_step(lib, causal):
    """One training step of an encoder layer in framework `lib` (genesis or torch)."""
    lib.manual_seed(0)
    layer = lib.nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=0.1, batch_first=True)
    rng = np.random.default_rng(0)
    # identical weights in both frameworks
    state = {k: lib.from_numpy(rng.standard_normal(tuple(v.shape)).astype(np.float32) * 0.05)
             for k, v in layer.state_dict().items()}
    layer.load_state_dict(state)
    x = lib.from_numpy(rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32))
    target = lib.from_numpy(rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32))
    mask = lib.nn.Transformer.generate_square_subsequent_mask(SEQ) if causal else None
    opt = lib.optim.Adam(layer.parameters(), lr=1e-4)
    mse = lib.nn.functional.mse_loss

    def step():
        opt.zero_grad()
        loss = mse(layer(x, src_mask=mask, is_causal=causal), target)
        loss.backward()
        opt.step()
        return loss
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--threads", default="1,2")
    args = p.parse_args(argv)
    if run.genesis is None or run.torch is None:
        sys.exit("benchmarks/transformer.py needs genesis and torch")
    libs = {"genesis": run.genesis, "torch": run.torch}
    print(f"TransformerEncoderLayer({D_MODEL}, {HEADS}, {FF}) training step, batch {BATCH}, "
          f"sequence {SEQ}, Adam; median of {args.rounds} interleaved rounds")
    print(f"{'case':<24}{'threads':>8}{'genesis ms':>12}{'torch ms':>10}{'ratio':>8}"
          f"{'load':>7}")
    results = []
    for threads in (int(t) for t in args.threads.split(",")):
        for causal in (False, True):
            with run.set_threads(threads):
                fns = {fw: make_step(lib, causal) for fw, lib in libs.items()}
                meter = run.LoadMeter().start()
                res = run.measure(fns, None, args.rounds, args.min_time)
                load = meter.stop()
            for fw, d in res.items():
                if "error" in d:
                    sys.exit(f"{fw} failed: {d['exception']}")
            g, t = res["genesis"]["seconds"] * 1e3, res["torch"]["seconds"] * 1e3
            name = "causal mask" if causal else "no mask"
            print(f"{name:<24}{threads:>8}{g:>12.2f}{t:>10.2f}{g / t:>8.2f}"
                  f"{load if load is not None else float('nan'):>7.2f}")
            results.append({"case": name, "threads": threads, "genesis_ms": g, "torch_ms": t,
                            "ratio": g / t, "load": load})
    print("ratio = genesis time / torch time (below 1: genesis is faster); load = cores "
          "kept busy by other processes during the case")
    return results


if __name__ == "__main__":
    main()
