#!/usr/bin/env bash
# Every OpenCL implementation CI has, each seen alone (OCL_ICD_VENDORS pointing at a folder that
# holds only its .icd file), running both kernel families:
#   PoCL (CPU device, fp64)         check --kernels all, gradcheck in double
#   Mesa rusticl on llvmpipe (no fp64, like many laptop GPUs)
#                                   check --kernels all, gradcheck in float, the OpenCL test
#                                   suite (the double-precision tests skip, saying why), one
#                                   short training run per family
#   Oclgrind (a simulated GPU that reports out-of-bounds accesses, data races, uninitialized
#   values and API misuse)          check --small --kernels all, as itself and as a small device
#                                   (64-item work-groups, 16 KiB of local memory): optimised with
#                                   --data-races --check-api, and unoptimised with --uninitialized
#                                   too (the checker crashes on the optimiser's vector shuffles:
#                                   docs/PORTABILITY.md); any report fails
# Needs a release build with tests (`swift build -c release --build-tests`), the data, and the
# packages `make packages` installs. Prints one summary line per run and the time each took.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/deriv8-gpu}
vendors=$(mktemp -d)
trap 'rm -rf "$vendors"' EXIT
mkdir -p "$vendors/pocl" "$vendors/rusticl" "$vendors/oclgrind"
cp /etc/OpenCL/vendors/pocl.icd "$vendors/pocl/"
cp /etc/OpenCL/vendors/rusticl.icd "$vendors/rusticl/"
# Oclgrind installs no .icd file of its own; its ICD library is this one.
echo /usr/lib/oclgrind/liboclgrind-rt-icd.so > "$vendors/oclgrind/oclgrind.icd"

failed=()
# step NAME COMMAND...: runs the command, shows its last lines, records a failure.
step() {
  local name=$1; shift
  local start=$SECONDS log
  log=$(mktemp)
  if "$@" > "$log" 2>&1; then status=pass; else status=FAIL; failed+=("$name"); fi
  grep -E ' skipped: ' "$log" | sed 's/^/    /' || true   # a skipped test says so, with its reason
  tail -n 4 "$log" | sed 's/^/    /'
  echo "$status: $name ($((SECONDS - start)) s)"
  rm -f "$log"
}

# Oclgrind's reports all start with one of these.
REPORTS='^(Invalid (read|write)|Uninitialized value|Read-write data race|Write-write data race|Work-group divergence|Work-item divergence|Barrier divergence|Oclgrind - OpenCL runtime error)'
# oclgrind_check OPTIONS...: check --small --kernels all under Oclgrind; fails on any report.
oclgrind_check() {
  local log
  log=$(mktemp)
  OCL_ICD_VENDORS="$vendors/oclgrind" oclgrind "$@" --check-api \
    "$BIN" check --backend opencl --kernels all --small > "$log" 2>&1 || { cat "$log"; rm -f "$log"; return 1; }
  local reports
  reports=$(grep -cE "$REPORTS" "$log" || true)
  grep -E "passed|checking" "$log"
  echo "Oclgrind reports: $reports"
  if [ "$reports" != 0 ]; then grep -E -A6 "$REPORTS" "$log" | head -40; fi
  rm -f "$log"
  [ "$reports" = 0 ]
}

export OCL_ICD_VENDORS
OCL_ICD_VENDORS="$vendors/pocl"
step "PoCL: check --kernels all" "$BIN" check --backend opencl --kernels all
step "PoCL: gradcheck (double)" "$BIN" gradcheck --backend opencl

OCL_ICD_VENDORS="$vendors/rusticl"
export RUSTICL_ENABLE=llvmpipe
step "Mesa rusticl: check --kernels all" "$BIN" check --backend opencl --kernels all
step "Mesa rusticl: gradcheck (float: no fp64)" "$BIN" gradcheck --backend opencl
for family in gpu cpu; do
  step "Mesa rusticl: 2 epochs, $family kernels" "$BIN" train --backend opencl --kernels $family --epochs 2 \
    --train-limit 10000 --test-limit 2000 --results "$vendors/results"
done
step "Mesa rusticl: OpenCL test suite" swift test -c release --skip-build --filter OpenCLTests
unset RUSTICL_ENABLE

SMALL_DEVICE="--max-wgsize 64 --local-mem-size 16384"
step "Oclgrind: check --small --kernels all, races" oclgrind_check --data-races
step "Oclgrind as a small device: races" oclgrind_check $SMALL_DEVICE --data-races
export DERIV8_OPENCL_OPTIONS=-cl-opt-disable
step "Oclgrind, unoptimised: uninitialized values and races" oclgrind_check --uninitialized --data-races
step "Oclgrind as a small device, unoptimised: uninitialized values and races" oclgrind_check $SMALL_DEVICE --uninitialized --data-races
unset DERIV8_OPENCL_OPTIONS

if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "every OpenCL implementation passed"
