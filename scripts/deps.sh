#!/usr/bin/env bash
# Installs what building and testing ladder needs on Debian bookworm, skipping what is there:
# the libav development packages (FFmpeg 5.1), clang for bindgen, pkg-config, and the ffmpeg
# CLI the tests use as an independent checker, python3 with venv for the Kubernetes
# schema check (scripts/validate-manifests.sh), and victoria-metrics (with vmalert), which
# tests/observability.rs starts on a loopback port. Needs root (or sudo) only when installing.
set -euo pipefail

packages=(libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev libswscale-dev
          libswresample-dev libavutil-dev clang libclang-dev pkg-config ffmpeg
          python3 python3-venv victoria-metrics)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust 1.95 with rustup (https://rustup.rs), then run this again" >&2
  exit 1
fi
