#!/usr/bin/env bash
# Build promtool (the Prometheus module pinned in go.mod next to this script) into a cache directory
# keyed by the hash of go.mod/go.sum/this script, so an unchanged module is never rebuilt. Prints the
# binary's path on the last line of stdout. tests/helm/test_alerts.py runs it (`promtool test rules`).
#
# Its own module and its own script: Prometheus's dependencies never move the versions of the
# Kubernetes tools in ../go.mod, and adding it leaves ../build.sh's cache key (every other tool) as is.
# A cold build takes several minutes on 2 cores; progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
key="$(cat go.mod go.sum build.sh | sha256sum | cut -c1-16)"
out="${ALEMBIC_OPERATOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alembic-operator/tools}/promtool-$key/promtool"
exec 9<"$here/build.sh"  # one build at a time (pytest-xdist workers): the others wait and find it built
flock 9
if [ ! -x "$out" ]; then
  version="$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"  # v0.316.0 is Prometheus 3.16.0
  echo "[tools] building promtool $version ..." >&2
  mkdir -p "$(dirname "$out")"
  go mod download
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=$version" \
    -o "$out.tmp" github.com/prometheus/prometheus/cmd/promtool
  mv "$out.tmp" "$out"
fi
echo "$out"
