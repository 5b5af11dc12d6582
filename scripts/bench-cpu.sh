#!/usr/bin/env bash
# Interleaved CPU-machine benchmark: the numpy peer, the CPU backend and OpenCL (PoCL), three
# rounds each, so machine noise hits all of them alike. Needs a release build and the data
# (`make build datasets`); the numpy peer is ../shared/peers/peer_numpy.py (or PEER=path).
# BEFORE=path/to/an/older/deriv8-gpu adds that binary's runs to every round, next to this
# build's ("before" and "after" of a change). Prints one JSON line per run; compare medians of
# the same round.
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${PEER:-../shared/peers/peer_numpy.py}
EPOCHS=${EPOCHS:-6}
ROUNDS=${ROUNDS:-3}
BIN=.build/release/deriv8-gpu
BEFORE=${BEFORE:-}
AFTER=${BEFORE:+after}   # this build's label: "after" only when there is a before
for round in $(seq "$ROUNDS"); do
  python3 "$PEER" --data datasets/mnist --epochs "$EPOCHS" --quiet | tail -1 | sed "s/^/round $round numpy /"
  for backend in cpu opencl; do
    if [ -n "$BEFORE" ]; then
      "$BEFORE" bench --backend $backend --epochs "$EPOCHS" --json | sed "s/^/round $round $backend before /"
    fi
    "$BIN" bench --backend $backend --epochs "$EPOCHS" --json | sed "s/^/round $round $backend $AFTER /"
  done
done
