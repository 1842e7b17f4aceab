# kiln's front door. `make demo` and `make test` install what is missing, build, and run.
#   KILN_VENV   virtual environment holding torch==2.11.0 (default .venv)
#   BUILD       build directory (default build)
#   TEST_JOBS   tests run at once by make test (default: the cores, at most one per 3 GiB available)
#   TEST_THREADS  LibTorch threads each test runs with (default 1: tests in parallel, not threads;
#               the tests that compare thread counts set their own)
KILN_VENV ?= $(CURDIR)/.venv
BUILD ?= build
JOBS ?= $(shell nproc)
TEST_JOBS ?= $(shell n=$$(nproc); m=$$(awk '/MemAvailable/ {print int($$2 / 3145728)}' /proc/meminfo); j=$$(( n < m ? n : m )); echo $$(( j < 1 ? 1 : j )))
TEST_THREADS ?= 1
export KILN_VENV
CMAKE_FLAGS ?=

.PHONY: deps configure build test test-full demo bench fuzz sanitize clean

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_PREFIX_PATH="$$($(KILN_VENV)/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	  $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# `make test`: every test but those labelled "full" (CI runs this); `make test-full`: all of them.
test: build
	$(BUILD)/kiln env
	cd $(BUILD) && OMP_NUM_THREADS=$(TEST_THREADS) ctest --output-on-failure -j $(TEST_JOBS) -LE full
	@bash scripts/skipped-tests.sh $(BUILD)

test-full: build
	$(BUILD)/kiln env
	cd $(BUILD) && OMP_NUM_THREADS=$(TEST_THREADS) ctest --output-on-failure -j $(TEST_JOBS)
	@bash scripts/skipped-tests.sh $(BUILD)

# The main job: a real training run on Fashion-MNIST from Debian's dataset-fashion-mnist.
demo: build
	$(BUILD)/kiln train --preset fashion-mnist-demo --data /usr/share/datasets --device cpu --out runs/demo

bench: deps
	$(MAKE) build CMAKE_FLAGS="-DKILN_BUILD_BENCH=ON"
	$(BUILD)/bench/kiln_bench

# Reliability (docs/reliability.md): one clang build with ASan + UBSan and libFuzzer coverage;
# `make fuzz` runs every fuzz target FUZZ_SECONDS; `make sanitize` runs the sanitized test subset.
FUZZ_SECONDS ?= 120
FUZZ_BUILD ?= build-fuzz
# ONNX export is left out of this build (it parses no input), so CI also compiles kiln without it.
$(FUZZ_BUILD)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_FUZZ=ON -DKILN_WASM=OFF \
	  -DKILN_WITH_FETCH=OFF -DKILN_WITH_ONNX=OFF -DCMAKE_PREFIX_PATH="$$($(KILN_VENV)/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')"

fuzz: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_BUILD)/fuzz-out

sanitize: deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash scripts/sanitize-tests.sh $(FUZZ_BUILD)

clean:
	rm -rf $(BUILD)
