# The two quick-start commands (see README.md) and the benchmark.
.PHONY: demo test deps build lint

SAMPLE := media/bbb-720p25-5s.mp4
LADDER := target/release/ladder

deps:
	@scripts/deps.sh

build: deps
	cargo build --release --locked

## Runs ladder on the bundled sample with the default preset.
demo: build
	$(LADDER) probe $(SAMPLE)
	$(LADDER) plan $(SAMPLE)

## Runs every test (unit, integration on synthesised media, preset fixtures).
test: deps
	cargo test --locked

lint: deps
	cargo fmt --check
	cargo clippy --locked --all-targets -- -D warnings
