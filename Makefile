# deriv8-gpu: `make setup` once (packages, data, release build), then `make train` or `make test`.
SHELL := /bin/bash
SWIFT ?= swift
SWIFTC ?= swiftc
MNIST_DIR ?=
# A canonical MNIST mirror (the one torchvision uses); the sha256 sums below are the published ones.
MNIST_URL ?= https://ossci-datasets.s3.amazonaws.com/mnist
DATA := datasets/mnist
BIN := .build/release/deriv8-gpu
APT_PACKAGES := zlib1g-dev pkg-config ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd clinfo curl ca-certificates \
                dataset-fashion-mnist mesa-opencl-icd oclgrind

MNIST_FILES := train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz

.PHONY: setup packages datasets build test train gradcheck check-checkpoint check-own-data check-opencl fuzz sanitize clean

setup: packages datasets build

# Debian packages the build and the OpenCL tests need (run as root, or with sudo available).
packages:
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then echo "packages: all present"; else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES); fi

# The four MNIST files, downloaded (or copied from MNIST_DIR) and checked against their sha256.
# A file with a wrong checksum is removed and the target fails.
datasets:
	@mkdir -p $(DATA)
	@for f in $(MNIST_FILES); do \
	  if [ -f $(DATA)/$$f ] && (cd $(DATA) && grep " $$f\$$" ../../scripts/mnist.sha256 | sha256sum -c --status); then \
	    echo "$(DATA)/$$f: present, checksum ok"; continue; fi; \
	  rm -f $(DATA)/$$f; \
	  if [ -n "$(MNIST_DIR)" ]; then cp "$(MNIST_DIR)/$$f" $(DATA)/$$f || exit 1; \
	  else curl -fsSL --retry 3 -o $(DATA)/$$f "$(MNIST_URL)/$$f" || { rm -f $(DATA)/$$f; echo "download of $$f failed; set MNIST_DIR=folder to copy local files"; exit 1; }; fi; \
	  if (cd $(DATA) && grep " $$f\$$" ../../scripts/mnist.sha256 | sha256sum -c --status); then echo "$(DATA)/$$f: checksum ok"; \
	  else rm -f $(DATA)/$$f; echo "$$f: sha256 mismatch, file removed"; exit 1; fi; \
	done

# The commit goes into the binary for --version (Sources/CBuildInfo/commit.h, untracked); the
# file that reads it is touched when it changes, so that the new one is compiled in.
build:
	@commit=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown); \
	if [ -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$$commit-modified"; fi; \
	line="#define DERIV8_COMMIT \"$$commit\""; \
	if [ "$$(cat Sources/CBuildInfo/commit.h 2>/dev/null)" != "$$line" ]; then \
	  echo "$$line" > Sources/CBuildInfo/commit.h; touch Sources/deriv8-gpu/Version.swift; fi
	$(SWIFT) build -c release --product deriv8-gpu

# The whole test suite, optimised (the training tests run real MNIST epochs). The tests that
# interrupt a running binary with SIGINT/SIGTERM run on their own afterwards: while every other
# suite loads the machine, Foundation's Process was seen to report a child's process id that
# did not exist, so the signal never reached the child.
test:
	$(SWIFT) test -c release --skip InterruptionTests
	$(SWIFT) test -c release --skip-build --filter InterruptionTests

# Both kernel families on every OpenCL implementation CI has: PoCL, Mesa rusticl on llvmpipe
# (no fp64) and Oclgrind (reports out-of-bounds accesses, data races and API misuse; also as a
# small device). See scripts/opencl-implementations.sh.
check-opencl:
	$(SWIFT) build -c release --build-tests
	bash scripts/opencl-implementations.sh

train: build
	$(BIN) train

gradcheck: build
	$(BIN) gradcheck

# A checkpoint written by `train --save` loads in Python's safetensors, and a numpy forward pass
# with its arrays gives exactly the accuracy `deriv8-gpu eval` prints (pip installs safetensors).
check-checkpoint: build
	python3 -m pip install -q safetensors numpy
	@tmp=$$(mktemp -d) && $(BIN) train --epochs 2 --backend cpu --save $$tmp/model.safetensors --results $$tmp/results > /dev/null \
	  && python3 scripts/check_checkpoint.py --model $$tmp/model.safetensors --data $(DATA) --binary $(BIN); \
	  status=$$?; rm -rf $$tmp; exit $$status

# The README's "Your own data" example, run as written (the shell block between its
# own-data-example markers) in a scratch folder, with this build's binary first on PATH.
check-own-data: build
	python3 -m pip install -q numpy
	@tmp=$$(mktemp -d) && sed -n '/<!-- own-data-example -->/,/<!-- end own-data-example -->/p' README.md | sed '/^<!--/d;/^```/d' > $$tmp/example.sh \
	  && (cd $$tmp && PATH="$(CURDIR)/.build/release:$$PATH" bash -euo pipefail example.sh); \
	  status=$$?; rm -rf $$tmp; exit $$status

# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of every parser, one fuzzer per file in
# Fuzz/ (see Fuzz/README.md), each run for FUZZ_SECONDS. Deriv8 is built instrumented in
# .build-fuzz; the corpus grows in .build-fuzz/corpus/NAME; an input that crashes is saved in
# .build-fuzz/crashes/ and fails the target. `make fuzz FUZZERS=PGM FUZZ_SECONDS=300` runs one longer.
FUZZ_SECONDS ?= 20
FUZZERS ?= IDX SafeTensors Checkpoint PGM NPZ
FUZZ_FLAGS ?=
FUZZ_DIR := .build-fuzz
FUZZ_OBJECTS_FROM := WorkerPool CPUKernels CPUKernelsAVX2 CPUKernelsAVX512 Kernels GPUTensor Deriv8

fuzz:
	$(SWIFT) build -c release --scratch-path $(FUZZ_DIR) --target Deriv8 -Xswiftc -sanitize=fuzzer,address
	@set -e; bin=$$($(SWIFT) build -c release --scratch-path $(FUZZ_DIR) --show-bin-path); \
	objects=$$(for t in $(FUZZ_OBJECTS_FROM); do while read -r s; do echo "$$bin/$$t.build/$$(basename "$$s").o"; done < "$$bin/$$t.build/sources"; done); \
	for f in $(FUZZERS); do \
	  echo "fuzz: building $(FUZZ_DIR)/fuzz-$$f"; \
	  $(SWIFTC) -O -swift-version 6 -sanitize=fuzzer,address -use-ld=lld -parse-as-library -module-name Fuzz$$f \
	    Fuzz/Common.swift Fuzz/$$f.swift $$objects -I "$$bin/Modules" -I Sources/CZlib -I Sources/COpenCL -I Sources/CPUHints -lz -lOpenCL \
	    -o $(FUZZ_DIR)/fuzz-$$f; \
	done
	@failed=""; mkdir -p $(FUZZ_DIR)/crashes; for f in $(FUZZERS); do \
	  echo "fuzz: running fuzz-$$f for $(FUZZ_SECONDS) s"; mkdir -p $(FUZZ_DIR)/corpus/$$f; \
	  dict=""; if [ -f Fuzz/$$f.dict ]; then dict="-dict=Fuzz/$$f.dict"; fi; \
	  SWIFT_BACKTRACE=enable=no FUZZ_SEED_DIR=$(FUZZ_DIR)/corpus/$$f $(FUZZ_DIR)/fuzz-$$f $(FUZZ_DIR)/corpus/$$f -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=10 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$$f- $$dict $(FUZZ_FLAGS) \
	    || failed="$$failed $$f"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed (inputs in $(FUZZ_DIR)/crashes/)"; exit 1; fi; \
	echo "fuzz: $(FUZZERS): no crash in $(FUZZ_SECONDS) s each"

# The test suite built with AddressSanitizer (its own build folder). Left out: the CLI and fuzz
# suites (they run the plain binary or only parse) and, in CI, the OpenCL suite: with PoCL's
# LLVM in the process, ASan's runtime itself intermittently fails ("failed to deallocate ...
# error code: 22"). `make sanitize SANITIZE_OPENCL=1` includes it (it found and we fixed an
# over-read in small CLBuffer copies that way).
SANITIZE_SKIP := --skip CLITests --skip FuzzTests $(if $(SANITIZE_OPENCL),,--skip OpenCLTests)
sanitize:
	LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp $(SWIFT) test -c release --sanitize=address \
	  --scratch-path .build-asan $(SANITIZE_SKIP)

clean:
	rm -rf .build
