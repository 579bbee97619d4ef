# The two quick-start commands (see README.md) and the benchmark.
.PHONY: demo test deps build lint bench validate-manifests jobs-example fuzz

SAMPLE := media/bbb-720p25-5s.mp4
LADDER := target/release/ladder
PYTHON ?= python3
## Extra options for scripts/bench.py, e.g. make bench BENCH_ARGS="--runs 1 --json target/bench/results.json";
## the slow checks: BENCH_ARGS="--duration-scaling --pinned-shards"
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

## Benchmarks `ladder run` against the equivalent single-process ffmpeg command and the lower
## bound (each stage alone, single-threaded), then prints the targets of issue 6 (not a test).
bench: build
	$(PYTHON) scripts/bench.py $(BENCH_ARGS)

## Runs the fuzz target (probe, remux, plan, the first second of a chunk) for FUZZ_SECONDS
## (default 60); installs cargo-fuzz on first use. See fuzz/README.md.
fuzz: deps
	scripts/fuzz.sh

## Validates jobs/ and the Jobs `ladder dispatch --dry-run` prints against the Kubernetes
## OpenAPI schema (strict, 1.33); installs kubernetes-validate into a venv on first use.
validate-manifests: deps
	scripts/validate-manifests.sh

## Regenerates jobs/overlays/example/job.yaml (tests/jobs.rs checks it is current).
jobs-example:
	@{ sed -n '/^#/p;/^[^#]/q' jobs/overlays/example/job.yaml; \
	  cargo run --locked --quiet -- dispatch s3://acme-recordings/rooms/standup/2026-11-25.mp4 \
	    --out s3://acme-vod/rooms/standup/2026-11-25 --tenant acme --preset small \
	    --config jobs/overlays/example/ladder.toml --dry-run; } > jobs/overlays/example/job.yaml.new
	mv jobs/overlays/example/job.yaml.new jobs/overlays/example/job.yaml
