#!/usr/bin/env python
"""Peak resident memory (RSS) while training the MNIST MLP: genesis vs PyTorch.

    python benchmarks/memory.py [--steps 300] [--optimizer adam] [--rounds 1] [--json PATH]

The model is genesis.examples.mnist's `--model mlp`: 784-256-256-10 with ReLU,
batch 128, Adam (lr 1e-3; `--optimizer sgd` for SGD momentum 0.9), built by each
framework from its own `nn`/`optim` (benchmarks/training.py).  Each framework
runs in its own fresh subprocess, so neither's libraries, allocator caches or
peak leak into the other's figures.  The child:

  1. imports its framework (only that one: genesis never loads torch or the reverse)
     and reads VmRSS from /proc/self/status ("after import");
  2. makes synthetic MNIST-shaped data in memory, 60000 x 784 float32 images and
     int64 labels like the real training set (~180 MiB, identical in both children,
     so it is counted equally), builds the model and optimizer and reads VmRSS
     again ("baseline");
  3. resets the kernel's peak-RSS counter (VmHWM, via /proc/self/clear_refs) to the
     baseline, trains --steps steps on consecutive batches (slices of the data:
     no copies) and reads VmHWM ("peak during training") and
     getrusage(RUSAGE_SELF).ru_maxrss ("lifetime peak": import and data included;
     it cannot be reset).

"increase" is peak minus baseline: what training itself adds (gradients, optimizer
state, activations kept for backward, allocator caches).  The table gives
genesis/torch ratios for the peak and the increase; the target is a peak at most
1.5x PyTorch's.  Without torch installed, genesis is reported alone.  With
--rounds > 1 every child is run that often (alternating the order) and each
figure is the median.  Memory figures do not depend on machine load; the load of
other processes is printed anyway, as by the other benchmarks.
"""
import argparse
import importlib
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # training.py and common.py next to this file
    sys.path.insert(0, HERE)
import training  # noqa: E402  (numpy only: safe to import in the children)
from common import LoadMeter, find_genesis  # noqa: E402

find_genesis()

FRAMEWORKS = ("genesis", "torch")
MIB = 1024 * 1024
TARGET_PEAK_RATIO = 1.5
# Rows of the report: (key in a child's result, label).
ROWS = (("after_import", "RSS after import"),
        ("baseline", "baseline: import + data + model"),
        ("peak", "peak during training (VmHWM)"),
        ("increase", "increase during training"),
        ("lifetime_peak", "lifetime peak (ru_maxrss)"))


# ---------------------------------------------------------------- child process
def _status_kib(*keys):
    """{key: value in KiB} of /proc/self/status (e.g. VmRSS, VmHWM)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


def _reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(fw, args):
    """Train in this (fresh) process and return its measurements, in bytes."""
    try:
        lib = importlib.import_module(fw)
    except ImportError as e:  # installed but broken counts as not installed
        return {"framework": fw, "unavailable": f"{type(e).__name__}: {e}"}
    lib.set_num_threads(args.threads)
    after_import = _status_kib("VmRSS")["VmRSS"]

    rng = np.random.default_rng(0)
    # Generated straight as float32: a float64 temporary would raise the lifetime peak.
    images = rng.standard_normal((args.samples, 784), dtype=np.float32)
    labels = rng.integers(0, 10, args.samples, dtype=np.int64)
    lib.manual_seed(0)
    model = training.mlp(lib.nn)
    opt = training.OPTIMIZERS[args.optimizer](lib.optim, model.parameters())
    step = training.make_step(lib, model, opt)
    baseline = _status_kib("VmRSS")["VmRSS"]

    reset = _reset_peak()
    batches = max(1, args.samples // training.BATCH)
    t0 = time.perf_counter()
    for i in range(args.steps):
        lo = (i % batches) * training.BATCH
        hi = lo + training.BATCH
        loss = step(lib.from_numpy(images[lo:hi]), lib.from_numpy(labels[lo:hi]))
        last_loss = loss.item()  # as the example's loop does every step
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM")["VmHWM"]
    # ru_maxrss is in KiB on Linux.
    lifetime = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kib = 1024
    return {"framework": fw, "version": lib.__version__, "threads": lib.get_num_threads(),
            "after_import": after_import * kib, "baseline": baseline * kib,
            "peak": peak * kib, "increase": (peak - baseline) * kib,
            "lifetime_peak": lifetime * kib, "peak_reset": reset,
            "data_bytes": images.nbytes + labels.nbytes,
            "train_seconds": seconds, "final_loss": last_loss}


# ---------------------------------------------------------------- parent process
def run_child(fw, args):
    """One fresh subprocess for `fw`; returns its result dict (raises on failure)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", fw,
           "--steps", str(args.steps), "--optimizer", args.optimizer,
           "--threads", str(args.threads), "--samples", str(args.samples)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{fw} child failed ({p.returncode}):\n{p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def summarize(runs):
    """Median over rounds of every numeric figure of one framework's runs."""
    out = dict(runs[0])
    for key in ("after_import", "baseline", "peak", "increase", "lifetime_peak",
                "train_seconds"):
        out[key] = statistics.median(r[key] for r in runs)
    out["peak_reset"] = all(r["peak_reset"] for r in runs)
    return out


def render(res):
    """The report: a markdown table of MiB per framework and genesis/torch ratios."""
    fws = [fw for fw in FRAMEWORKS if fw in res]
    both = len(fws) == 2
    head = "| MiB | " + " | ".join(fws) + (" | genesis/torch |" if both else " |")
    lines = [head, "|---|" + "---:|" * (len(fws) + both)]
    for key, label in ROWS:
        cells = [f"{res[fw][key] / MIB:.1f}" for fw in fws]
        if both:
            t = res["torch"][key]
            cells.append(f"{res['genesis'][key] / t:.2f}x" if t > 0 else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300, help="training steps per child (300)")
    p.add_argument("--optimizer", choices=sorted(training.OPTIMIZERS), default="adam",
                   help="adam (lr 1e-3, as genesis.examples.mnist --model mlp) or sgd "
                        "(lr 0.01, momentum 0.9)")
    p.add_argument("--threads", type=int, default=1, help="threads per framework (1)")
    p.add_argument("--samples", type=int, default=60000,
                   help="rows of synthetic data held in memory (60000, as MNIST's training set)")
    # Repeated children agree within about 1 MiB, hence a single round by default.
    p.add_argument("--rounds", type=int, default=1,
                   help="fresh children per framework; figures are medians (1)")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help="comma-separated subset of genesis,torch")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results here")
    p.add_argument("--child", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0

    fws = [fw.strip() for fw in args.frameworks.split(",") if fw.strip()]
    if set(fws) - set(FRAMEWORKS):
        p.error(f"--frameworks: choose from {','.join(FRAMEWORKS)}")
    missing = [fw for fw in fws if importlib.util.find_spec(fw) is None]
    fws = [fw for fw in fws if fw not in missing]
    if "genesis" not in fws:
        sys.exit("genesis is not importable")
    opt = {"adam": "Adam", "sgd": "SGD momentum"}[args.optimizer]
    print(f"Peak RSS, MNIST MLP 784-256-256-10 ({opt}), batch {training.BATCH}, "
          f"{args.steps} steps, {args.threads} thread(s), {args.rounds} fresh process(es) "
          "per framework")
    for fw in missing:
        print(f"note: {fw} is not installed: reporting genesis alone")

    meter = LoadMeter().start()
    runs = {fw: [] for fw in fws}
    for r in range(args.rounds):
        for fw in (fws if r % 2 == 0 else fws[::-1]):
            if fw not in runs:
                continue
            result = run_child(fw, args)
            if "unavailable" in result:
                if fw == "genesis":
                    sys.exit(f"genesis failed to import: {result['unavailable']}")
                print(f"note: {fw} failed to import ({result['unavailable']}): "
                      "reporting genesis alone")
                del runs[fw]
                continue
            runs[fw].append(result)
    load = meter.stop()
    fws = [fw for fw in fws if fw in runs]
    res = {fw: summarize(runs[fw]) for fw in fws}

    data = res["genesis"]["data_bytes"]
    print(f"data: {args.samples} x 784 float32 images + int64 labels = {data / MIB:.1f} MiB, "
          "held in memory by every child: counted in every row but 'after import' and "
          "'increase'")
    print(", ".join(f"{fw} {res[fw]['version']}: {args.steps} steps in "
                    f"{res[fw]['train_seconds']:.1f} s, final loss {res[fw]['final_loss']:.3f}"
                    for fw in fws))
    if not all(res[fw]["peak_reset"] for fw in fws):
        print("note: /proc/self/clear_refs not writable: 'peak during training' is the "
              "lifetime peak")
    print()
    print(render(res))
    print()
    ratios = {}
    if "torch" in res:
        ratios = {k: res["genesis"][k] / res["torch"][k] if res["torch"][k] > 0 else None
                  for k in ("peak", "increase")}
        ok = ratios["peak"] <= TARGET_PEAK_RATIO
        inc = "-" if ratios["increase"] is None else f"{ratios['increase']:.2f}x"
        print(f"genesis/torch: peak {ratios['peak']:.2f}x, increase {inc} "
              f"(target: peak at most {TARGET_PEAK_RATIO}x: {'met' if ok else 'NOT met'})")
    busy = "unknown" if load is None else f"{load:.2f}"
    print(f"other processes kept {busy} cores busy (memory figures do not depend on it)")

    if args.json:
        from run import machine_info  # imports torch: only now, after the children
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info(sys.argv if argv is None else [p.prog] + argv),
                       "settings": {k: getattr(args, k) for k in
                                    ("steps", "optimizer", "threads", "samples", "rounds")},
                       "background_load": load, "results": res, "runs": runs,
                       "genesis_vs_torch": ratios}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
