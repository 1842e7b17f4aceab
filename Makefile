# kiln's front door. `make demo` and `make test` install what is missing, build, and run.
#   KILN_VENV   virtual environment holding torch==2.11.0 (default .venv)
#   BUILD       build directory (default build)
KILN_VENV ?= $(CURDIR)/.venv
BUILD ?= build
JOBS ?= $(shell nproc)
export KILN_VENV
CMAKE_FLAGS ?=

.PHONY: deps configure build test demo bench clean

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_PREFIX_PATH="$$($(KILN_VENV)/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	  $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j 1

# The main job: a real training run on Fashion-MNIST from Debian's dataset-fashion-mnist.
demo: build
	$(BUILD)/kiln train --preset fashion-mnist-demo --data /usr/share/datasets --device cpu --out runs/demo

bench: deps
	$(MAKE) build CMAKE_FLAGS="-DKILN_BUILD_BENCH=ON"
	$(BUILD)/bench/kiln_bench

clean:
	rm -rf $(BUILD)
