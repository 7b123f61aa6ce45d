#!/usr/bin/env bash
# Build helm-docs (github.com/norwoodj/helm-docs, MIT; the version pinned in go.mod next to this
# script) into a cache directory keyed by the hash of go.mod/go.sum/this script, so an unchanged
# module is never rebuilt. Prints the binary's path on the last line of stdout. `make chart-docs`
# writes the charts' README.md with it; tests/helm/test_chart_readme.py checks they do not drift.
#
# Its own module and its own script, like ../promtool: its dependencies never move the versions of
# the Kubernetes tools in ../go.mod, and ../build.sh's cache key stays as it is.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
key="$(cat go.mod go.sum build.sh | sha256sum | cut -c1-16)"
out="${ALEMBIC_OPERATOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alembic-operator/tools}/helm-docs-$key/helm-docs"
exec 9<"$here/build.sh"  # one build at a time (pytest-xdist workers): the others wait and find it built
flock 9
if [ ! -x "$out" ]; then
  version="$(go list -m -f '{{.Version}}' github.com/norwoodj/helm-docs)"
  echo "[tools] building helm-docs $version ..." >&2
  mkdir -p "$(dirname "$out")"
  go mod download
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" \
    -o "$out.tmp" github.com/norwoodj/helm-docs/cmd/helm-docs
  mv "$out.tmp" "$out"
fi
echo "$out"
