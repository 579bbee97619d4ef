#!/usr/bin/env bash
# Installs moto's S3 server, the second S3 implementation the tests run against (see
# tests/common/moto.rs), into a venv: $LADDER_MOTO_VENV, else ~/.cache/ladder/moto-venv.
# Skips the install when the venv already holds these exact packages. crc32c and awscrt are
# what moto computes CRC32C and CRC64NVME with; without them it silently stores a CRC32
# under those names.
set -euo pipefail

venv="${LADDER_MOTO_VENV:-$HOME/.cache/ladder/moto-venv}"
packages=("moto[s3]==5.2.5" "flask==3.1.3" "flask-cors==6.0.5" "crc32c==2.9.post0" "awscrt==0.38.1")
stamp="$venv/.ladder-packages"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${packages[*]}" ]; then
  exit 0
fi
echo "installing moto into $venv" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
echo "${packages[*]}" > "$stamp"
