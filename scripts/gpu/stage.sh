#!/usr/bin/env bash
# Stages everything the lent GPU machine needs into .gpu/ (git-ignored): a release binary linked
# statically against the Swift runtime, the OpenCL ICD loader, MNIST and the PyTorch and numpy peers.
# The machine has no Swift and no network (see ../shared/GPU.md); nothing is built there.
# Then, with the device tool:  run  command="bash scripts/gpu/run.sh"  carry=[".gpu"]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --static-swift-stdlib --product deriv8-gpu
mkdir -p .gpu/icd
# Stripped and gzipped: the device tool carries at most 64 MiB, and the static binary (Foundation's
# tables included) is about 60 MB stripped, 23 MB gzipped. run.sh unpacks it there.
rm -f .gpu/deriv8-gpu .gpu/deriv8-gpu.gz
strip -o .gpu/deriv8-gpu .build/release/deriv8-gpu
cp -L /usr/lib/x86_64-linux-gnu/libOpenCL.so.1 .gpu/
rm -rf .gpu/mnist && cp -r datasets/mnist .gpu/mnist
cp "${TORCH_PEER:-../shared/gpu/torch_mlp.py}" "${NUMPY_PEER:-../shared/peers/peer_numpy.py}" .gpu/
echo /usr/lib/libnvidia-opencl.so.1 > .gpu/icd/nvidia.icd
ldd .gpu/deriv8-gpu
gzip -9 .gpu/deriv8-gpu
du -sh .gpu
