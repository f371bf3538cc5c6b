# Thin wrapper over the CMake presets: install deps, build, run, test.
PRESET ?= ci
JOBS   ?= $(shell nproc)
BUILD  := build/$(PRESET)

.PHONY: all deps configure build run test clean

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET) -j $(JOBS)

# The main job: the demo of every pattern over loopback.
run: build
	$(BUILD)/examples/fabric-tour

test: build
	ctest --preset $(PRESET) -j $(JOBS)

clean:
	rm -rf build
