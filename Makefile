# Thin wrapper over the CMake presets: install deps, build, run, test.
PRESET ?= ci
JOBS   ?= $(shell nproc)
BUILD  := build/$(PRESET)

.PHONY: all deps configure build run test fuzz clean

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake --preset $(PRESET)

build: configure
	cmake --build --preset $(PRESET) -j $(JOBS)

# The main job: the perf suite over every pattern and transport on loopback, fabric beside raw
# libzmq, then the journal beside raw LMDB in a temporary directory it removes, then Majordomo
# beside a raw DEALER/ROUTER echo, then reliable channels between two processes beside raw LMDB,
# then streams (fan-out beside raw PUB/SUB, catch-up by replay beside raw LMDB), then the work
# queue beside a raw PUSH/PULL pipeline, then Titanic beside Majordomo and raw LMDB, then Freelance
# beside raw ROUTER-to-ROUTER round trips; short enough
# for a first look (full runs:
# build/ci/perf/fabric-perf suite, ... journal, ... stream, ... queue, ... titanic). Each
# family writes its JSON; the last step merges them into one summary on the screen and one
# page, $(BUILD)/perf-report.html.
run: build
	$(BUILD)/perf/fabric-perf suite --quick --json $(BUILD)/perf-results.json \
	  --csv $(BUILD)/perf-results.csv
	$(BUILD)/perf/fabric-perf journal --quick --json $(BUILD)/perf-journal.json
	$(BUILD)/perf/fabric-perf majordomo --quick --json $(BUILD)/perf-majordomo.json
	$(BUILD)/perf/fabric-perf reliable --quick --json $(BUILD)/perf-reliable.json
	$(BUILD)/perf/fabric-perf stream --quick --json $(BUILD)/perf-stream.json
	$(BUILD)/perf/fabric-perf queue --quick --json $(BUILD)/perf-queue.json
	$(BUILD)/perf/fabric-perf titanic --quick --json $(BUILD)/perf-titanic.json
	$(BUILD)/perf/fabric-perf freelance --quick --json $(BUILD)/perf-freelance.json
	$(BUILD)/perf/fabric-perf pair --quick --json $(BUILD)/perf-pair.json
	@echo
	@echo "results: $(BUILD)/perf-results.{json,csv}, $(BUILD)/perf-journal.json," \
	  "$(BUILD)/perf-majordomo.json, $(BUILD)/perf-reliable.json, $(BUILD)/perf-stream.json" \
	  "$(BUILD)/perf-queue.json, $(BUILD)/perf-titanic.json, $(BUILD)/perf-freelance.json" \
	  "and $(BUILD)/perf-pair.json"
	@echo
	@$(BUILD)/perf/fabric-perf report $(BUILD)/perf-results.json $(BUILD)/perf-journal.json \
	  $(BUILD)/perf-majordomo.json $(BUILD)/perf-reliable.json $(BUILD)/perf-stream.json \
	  $(BUILD)/perf-queue.json $(BUILD)/perf-titanic.json $(BUILD)/perf-freelance.json \
	  $(BUILD)/perf-pair.json --html $(BUILD)/perf-report.html

test: build
	ctest --preset $(PRESET) -j $(JOBS)

# The long fuzzing tier (tests/fuzz/README.md): every libFuzzer target for an hour each;
# FUZZ_ARGS passes options, e.g. make fuzz FUZZ_ARGS="-t 600 -j 2 mdp_broker".
fuzz: configure
	bash scripts/fuzz-long.sh -b $(BUILD) $(FUZZ_ARGS)

clean:
	rm -rf build
