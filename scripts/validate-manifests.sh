#!/usr/bin/env bash
# Validates every Kubernetes manifest ladder ships (jobs/) or makes (`ladder dispatch
# --dry-run`, plain, sharded and with the example configs, plain-quota and Kueue mode)
# against the official OpenAPI schema of the oldest Kubernetes ladder supports, strictly:
# unknown fields fail. Kueue's objects (jobs/kueue) have no schema here: tests/kueue.rs
# parses them into types written from Kueue's v1beta1 API, rejecting unknown fields. The
# example overlays are also rendered and validated when a kubectl with kustomize is present.
# kubernetes-validate is installed once into a venv under the cargo target folder.
set -euo pipefail
cd "$(dirname "$0")/.."

k8s_version="${K8S_VERSION:-1.33}"
target="${CARGO_TARGET_DIR:-target}"
venv="$target/ci-venv"
validator_version="1.37.0"

if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$validator_version"; then
  echo "installing kubernetes-validate $validator_version into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$validator_version"
fi

out="$target/manifests"
rm -rf "$out"
mkdir -p "$out"
cargo build --locked --quiet
ladder="$target/debug/ladder"
example=(s3://acme-recordings/rooms/standup/2026-11-25.mp4 --out s3://acme-vod/rooms/standup/2026-11-25
         --tenant acme --preset small --dry-run)
env -u LADDER_CONFIG "$ladder" dispatch "${example[@]}" --config jobs/overlays/example/ladder.toml > "$out/job-example.yaml"
env -u LADDER_CONFIG "$ladder" dispatch "${example[@]}" --config jobs/overlays/example/ladder.toml --shards 4 > "$out/job-sharded.yaml"
env -u LADDER_CONFIG "$ladder" dispatch "${example[@]}" > "$out/job-defaults.yaml"
env -u LADDER_CONFIG "$ladder" dispatch "${example[@]}" --config jobs/overlays/example-kueue/ladder.toml > "$out/job-kueue.yaml"
env -u LADDER_CONFIG "$ladder" dispatch "${example[@]}" --config jobs/overlays/example-kueue/ladder.toml --shards 4 > "$out/job-kueue-sharded.yaml"

for overlay in example example-kueue; do
  if command -v kubectl >/dev/null 2>&1 && kubectl kustomize "jobs/overlays/$overlay" > "$out/$overlay-rendered.all" 2>/dev/null; then
    # Kueue's own objects are checked by tests/kueue.rs; keep the Kubernetes ones.
    python3 -c 'import sys; docs = sys.stdin.read().split("\n---\n"); print("\n---\n".join(d for d in docs if "apiVersion: kueue.x-k8s.io/" not in d))' \
      < "$out/$overlay-rendered.all" > "$out/$overlay-rendered.yaml"
    echo "rendered jobs/overlays/$overlay with kubectl kustomize" >&2
  else
    echo "no kubectl with kustomize here: validating jobs/overlays/$overlay file by file only" >&2
  fi
done

# jobs/observability holds custom resources (VictoriaMetrics and Prometheus operators),
# which the Kubernetes schema does not know: tests/observability.rs runs their rules.
mapfile -t files < <(find jobs -name '*.yaml' ! -name kustomization.yaml ! -path 'jobs/observability/*' ! -path 'jobs/kueue/*' | sort; ls "$out"/*.yaml)
"$venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "${files[@]}"
echo "validated ${#files[@]} manifests against the strict OpenAPI schema of Kubernetes $k8s_version"
