#!/usr/bin/env bash
# Build the real node's container runtime (containerd, containerd-shim-runc-v2, ctr of the
# containerd module pinned in go.mod next to this script) into a cache directory keyed by the hash
# of go.mod/go.sum/this script, so an unchanged module is never rebuilt. Prints the bin directory
# on the last line of stdout; testbed/node.py runs them (runc and the CNI plugins stay Debian's).
#
# Its own module and its own script, like ../promtool: containerd's dependencies never move the
# versions of the Kubernetes tools in ../go.mod, and ../build.sh's cache key stays as it is.
# testbed/tools.py holds a lock on this file while it runs it (pytest-xdist workers: one builds).
# A cold build takes about a minute on 2 cores; progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
key="$(cat go.mod go.sum build.sh | sha256sum | cut -c1-16)"
bin="${ALEMBIC_OPERATOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alembic-operator/tools}/containerd-$key/bin"
names=(containerd containerd-shim-runc-v2 ctr)
complete=1
for n in "${names[@]}"; do [ -x "$bin/$n" ] || complete=0; done
if [ "$complete" = 0 ]; then
  version="$(go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)"
  echo "[tools] building containerd $version ..." >&2
  mkdir -p "$bin"
  go mod download
  for n in "${names[@]}"; do
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$version" \
      -o "$bin/$n.tmp" "github.com/containerd/containerd/v2/cmd/$n"
    mv "$bin/$n.tmp" "$bin/$n"
  done
fi
echo "$bin"
