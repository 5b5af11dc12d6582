#!/usr/bin/env bash
# Interleaved CPU-machine benchmark: the numpy peer, the CPU backend and OpenCL (PoCL), three
# rounds each, so machine noise hits all of them alike. Needs a release build and the data
# (`make build datasets`); the numpy peer is ../shared/peers/peer_numpy.py (or PEER=path).
# Prints one JSON line per run; compare medians of the same round.
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${PEER:-../shared/peers/peer_numpy.py}
EPOCHS=${EPOCHS:-6}
BIN=.build/release/deriv8-gpu
for round in 1 2 3; do
  python3 "$PEER" --data datasets/mnist --epochs "$EPOCHS" --quiet | tail -1 | sed "s/^/round $round numpy  /"
  "$BIN" bench --backend cpu --epochs "$EPOCHS" --json | sed "s/^/round $round cpu    /"
  "$BIN" bench --backend opencl --epochs "$EPOCHS" --json | sed "s/^/round $round opencl /"
done
