# The two quick-start commands (see README.md) and the benchmark.
.PHONY: demo test deps moto build lint bench validate-manifests jobs-example fuzz

SAMPLE := media/bbb-720p25-5s.mp4
LADDER := target/release/ladder
PYTHON ?= python3
## Extra options for scripts/bench.py, e.g. make bench BENCH_ARGS="--runs 1 --json target/bench/results.json";
## the slow checks: BENCH_ARGS="--duration-scaling --pinned-shards"; an S3 input read in
## place (start-up, a shard's share, streamed vs fetched): BENCH_ARGS="--streaming"
BENCH_ARGS ?=

deps:
	@scripts/deps.sh

build: deps
	cargo build --release --locked

## Runs ladder on the bundled sample with the default preset.
demo: build
	$(LADDER) run $(SAMPLE) --out target/demo
	@echo "master playlist: target/demo/master.m3u8"

## moto's S3 server, the second S3 implementation of tests/s3_checksums.rs, in a venv.
moto:
	@scripts/moto.sh

## Runs every test (unit, integration on synthesised media, preset fixtures, S3 on s3s-fs
## and moto).
test: deps moto
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

## Regenerates jobs/overlays/{example,example-kueue}/job.yaml (tests/jobs.rs checks they are current).
jobs-example:
	@for overlay in example example-kueue; do \
	  job=jobs/overlays/$$overlay/job.yaml; \
	  { sed -n '/^#/p;/^[^#]/q' $$job; \
	    cargo run --locked --quiet -- dispatch s3://acme-recordings/rooms/standup/2026-11-25.mp4 \
	      --out s3://acme-vod/rooms/standup/2026-11-25 --tenant acme --preset small \
	      --config jobs/overlays/$$overlay/ladder.toml --dry-run; } > $$job.new && mv $$job.new $$job || exit 1; \
	done
