#!/usr/bin/env bash
# Installs what tests/players.rs needs to play the sample's ladder in real players, skipping
# what is there: Debian's chromium (it plays H.264/AAC through MSE) and the pinned npm
# packages of tests/players (hls.js, shaka-player, dashjs, playwright-core, which never downloads
# a browser of its own). Needs Node.js 20 or later with npm, which the machine has (Debian
# bookworm's own nodejs is 18, too old for playwright-core). Needs root (or sudo) only when
# installing chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "installing: chromium" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || true)
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
  echo "Node.js 20 or later with npm is needed for tests/players (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci again only when the lock file changed since the last install.
stamp=tests/players/node_modules/.installed-from-package-lock.json
if ! cmp -s tests/players/package-lock.json "$stamp" 2>/dev/null; then
  echo "installing: npm packages of tests/players" >&2
  npm ci --prefix tests/players --no-audit --no-fund --loglevel=error
  cp tests/players/package-lock.json "$stamp"
fi
