#!/usr/bin/env python3
"""The scaling table of docs/PERFORMANCE.md: seconds per epoch at several hidden widths for the
CPU backend and the OpenCL backend on PoCL, against the numpy peer and PyTorch on the CPU.

Every runner does the same work per timed epoch (60,000 training examples in batches of 500, then
10,000 evaluated) and each figure is the median over epochs after the first (bench: a warm-up
epoch, then --epochs; the peers: their own median without the first). The runners are
interleaved in rounds, each width and runner once per round, so that the machine's drift hits all
of them alike; the table gives the median over rounds, the range, and each one's ratio to numpy.

    python3 scripts/scaling.py --rounds 3
    python3 scripts/scaling.py --widths 1024 --rounds 1 --runners numpy,cpu   # a quick look

The learning rate is 0.01 for everyone: the reference's 0.1 diverges from 2048 wide on, and
bench stops a diverged run. PyTorch's peer has no rate flag and keeps 0.1 (NaNs cost the same
arithmetic). Needs a release build, MNIST in datasets/mnist, the peers in ../shared, PoCL's ICD
(scripts/opencl-implementations.sh makes one), and torch for the PyTorch column (pip install
torch==2.13.0+cpu); a runner that is missing is left out and says so.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def last_json(text):
    """The last line of `text` that parses as a JSON object."""
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("no JSON line in the output")


def runners(args):
    """name -> (function of the hidden widths giving (command, environment), JSON key of the median)."""
    bench = lambda backend, env: (lambda hidden: (
        [args.binary, "bench", "--backend", backend, "--data", args.data, "--hidden", hidden,
         "--epochs", str(args.epochs - 1), "--learning-rate", str(args.lr), "--json"], env),
        "seconds_per_epoch_median")
    pocl = dict(os.environ, OCL_ICD_VENDORS=args.pocl_icd)
    return {
        "numpy": (lambda hidden: ([sys.executable, os.path.join(args.peers, "peers", "peer_numpy.py"), "--data", args.data,
                                   "--epochs", str(args.epochs), "--hidden", hidden, "--lr", str(args.lr), "--quiet"], None),
                  "sec_per_epoch_median"),
        "pytorch": (lambda hidden: ([sys.executable, os.path.join(args.peers, "gpu", "torch_mlp.py"), "--data", args.data,
                                     "--epochs", str(args.epochs), "--hidden", hidden, "--device", "cpu"], None),
                    "seconds_per_epoch_median"),
        "cpu": bench("cpu", None),
        "pocl": bench("opencl", pocl),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="32,256,1024,2048", help="hidden widths W (the network is 784-W-W-10)")
    parser.add_argument("--runners", default="numpy,pytorch,cpu,pocl")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run, the first untimed")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/deriv8-gpu"))
    parser.add_argument("--data", default=os.path.join(ROOT, "datasets/mnist"))
    parser.add_argument("--peers", default=os.path.join(ROOT, "../shared"), help="folder with peers/ and gpu/")
    parser.add_argument("--pocl-icd", default="/tmp/icd/pocl", help="a folder holding just PoCL's .icd file")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first is not timed)")
    widths = [int(w) for w in args.widths.split(",")]
    table = runners(args)
    names = [n for n in args.runners.split(",") if n in table]
    if "pytorch" in names and subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode != 0:
        print("note: no torch here, the pytorch column is left out", file=sys.stderr)
        names.remove("pytorch")
    seconds = {(w, n): [] for w in widths for n in names}
    resident = {}
    for r in range(args.rounds):
        for w in widths:
            hidden = f"{w},{w}"
            for n in names:
                make, key = table[n]
                command, env = make(hidden)
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                try:
                    result = last_json(done.stdout)
                    value = result[key]
                except (ValueError, KeyError):
                    print(f"round {r + 1} {n} {hidden}: failed (exit {done.returncode}): "
                          f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}", file=sys.stderr)
                    continue
                seconds[(w, n)].append(value)
                if "peak_resident_mb" in result:
                    resident[(w, n)] = max(resident.get((w, n), 0), result["peak_resident_mb"])
                print(f"round {r + 1}  {hidden:>10}  {n:>8}  {value:.4f} s", file=sys.stderr, flush=True)
    print(f"| hidden | " + " | ".join(names) + " | " + " | ".join(f"{n} / numpy" for n in names if n != "numpy") + " |")
    print("|---" * (1 + len(names) + len([n for n in names if n != "numpy"])) + "|")
    for w in widths:
        cells = []
        for n in names:
            s = seconds[(w, n)]
            cell = "failed" if not s else f"{statistics.median(s):.3f} s" + (f" ({min(s):.3f}-{max(s):.3f})" if len(s) > 1 else "")
            if (w, n) in resident:
                cell += f", {resident[(w, n)]:.0f} MB"
            cells.append(cell)
        base = seconds.get((w, "numpy")) or []
        ratios = []
        for n in names:
            if n == "numpy":
                continue
            s = seconds[(w, n)]
            ratios.append(f"{statistics.median(s) / statistics.median(base):.2f}x" if s and base else "")
        print(f"| {w},{w} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    main()
