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

# The main job: the perf suite over every pattern and transport on loopback, fabric beside raw
# libzmq, then the journal beside raw LMDB in a temporary directory it removes, then Majordomo
# beside a raw DEALER/ROUTER echo; short enough for
# a first look (full runs: build/ci/perf/fabric-perf suite, ... journal, ... majordomo).
run: build
	$(BUILD)/perf/fabric-perf suite --quick --json $(BUILD)/perf-results.json \
	  --csv $(BUILD)/perf-results.csv --html $(BUILD)/perf-results.html
	$(BUILD)/perf/fabric-perf journal --quick --json $(BUILD)/perf-journal.json \
	  --html $(BUILD)/perf-journal.html
	$(BUILD)/perf/fabric-perf majordomo --quick --json $(BUILD)/perf-majordomo.json \
	  --html $(BUILD)/perf-majordomo.html
	@echo "results: $(BUILD)/perf-results.{json,csv,html}, $(BUILD)/perf-journal.{json,html}" \
	  "and $(BUILD)/perf-majordomo.{json,html}"

test: build
	ctest --preset $(PRESET) -j $(JOBS)

clean:
	rm -rf build
