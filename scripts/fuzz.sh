#!/usr/bin/env bash
# Runs the fuzz target fuzz/fuzz_targets/probe_decode.rs for a bounded time (FUZZ_SECONDS,
# default 60) from seeds made with the ffmpeg CLI (fuzz/seeds.sh); fails on any crash, panic,
# hang (an input over 30 s) or memory blow-up, leaving the input in fuzz/artifacts/.
#
# Only stable Rust is available, so no sanitizer (`--sanitizer none` needs no -Z flag):
# libFuzzer's coverage instrumentation and crash handling work without one, and ladder's
# memory bugs would be in libav, which is not instrumented either way. A debug build
# (`--dev`): overflow checks and debug assertions on, and it builds in a fraction of a
# release build's time (every dependency, AWS SDK included, is built instrumented).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
version=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$version"; then
  echo "installing cargo-fuzz $version" >&2
  cargo install cargo-fuzz --locked --version "$version"
fi

# libfuzzer-sys compiles libFuzzer (C++) with `c++`; scripts/deps.sh installs clang.
if ! command -v "${CXX:-c++}" >/dev/null 2>&1; then
  export CXX=clang++
fi

fuzz/seeds.sh fuzz/seeds/probe_decode 2>/dev/null
mkdir -p fuzz/corpus/probe_decode
cd fuzz
options=(--dev --sanitizer none)
started=$(date +%s)
cargo fuzz build "${options[@]}" probe_decode
echo "fuzz build: $(( $(date +%s) - started )) s" >&2
cargo fuzz run "${options[@]}" probe_decode corpus/probe_decode seeds/probe_decode -- \
  -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1
