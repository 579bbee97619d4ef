# The two quick-start commands (see README.md) and the benchmark.
.PHONY: demo test deps build lint bench

SAMPLE := media/bbb-720p25-5s.mp4
LADDER := target/release/ladder
PYTHON ?= python3
## Extra options for scripts/bench.py, e.g. make bench BENCH_ARGS="--runs 1 --json target/bench/results.json"
BENCH_ARGS ?=

deps:
	@scripts/deps.sh

build: deps
	cargo build --release --locked

## Runs ladder on the bundled sample with the default preset.
demo: build
	$(LADDER) run $(SAMPLE) --out target/demo
	@echo "master playlist: target/demo/master.m3u8"

## Runs every test (unit, integration on synthesised media, preset fixtures).
test: deps
	cargo test --locked

lint: deps
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings

## Benchmarks `ladder run` against the equivalent single-process ffmpeg command (not a test).
bench: build
	$(PYTHON) scripts/bench.py $(BENCH_ARGS)
