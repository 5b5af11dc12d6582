#!/usr/bin/env python3
"""Checks that a deriv8-gpu checkpoint is ordinary safetensors that other tools can use.

Loads the file with Python's `safetensors.numpy.load_file`, runs the network's forward pass in
numpy (float32, the same layout: w [out, in], applied as x @ w.T + b, ReLU hidden layers) on the
test set, and compares the test accuracy with what `deriv8-gpu eval --json` prints for the same
file. Exits 1 when they differ.

    python3 scripts/check_checkpoint.py --model model.safetensors [--data datasets/mnist]
                                        [--binary .build/release/deriv8-gpu]
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="datasets/mnist")
    ap.add_argument("--binary", default=".build/release/deriv8-gpu")
    a = ap.parse_args()

    tensors = load_file(a.model)
    layers = sum(1 for name in tensors if name.startswith("w"))
    x = read_idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")).reshape(10000, -1).astype(np.float32) / np.float32(255)
    y = read_idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz"))
    for layer in range(1, layers + 1):
        w, b = tensors[f"w{layer}"], tensors[f"b{layer}"]
        assert w.dtype == np.float32 and b.dtype == np.float32 and w.ndim == 2 and b.shape == (w.shape[0],), (w.shape, b.shape)
        x = x @ w.T + b
        if layer < layers:
            x = np.maximum(x, 0)
    numpy_accuracy = float((x.argmax(axis=1) == y).mean())

    out = subprocess.run([a.binary, "eval", "--model", a.model, "--data", a.data, "--backend", "cpu", "--json"],
                         check=True, capture_output=True, text=True).stdout
    swift_accuracy = json.loads(out)["accuracy"]
    same = abs(numpy_accuracy - swift_accuracy) < 1e-12
    print(f"safetensors + numpy: {numpy_accuracy:.4f}   deriv8-gpu eval: {swift_accuracy:.4f}   "
          f"{'same' if same else 'DIFFERENT'} ({', '.join(f'{k} {tuple(v.shape)}' for k, v in tensors.items() if k[0] in 'wb')})")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
