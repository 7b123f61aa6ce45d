#!/usr/bin/env bash
# Build the krew archive dist/kubectl-alembic-<version>.tar.gz (the launcher and LICENSE),
# byte for byte the same on every machine (fixed mtime, owner, order; gzip without a name
# or time), and print its SHA-256 — the one plugins/alembic.yaml pins. tests/plugin checks both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
version="$(sed -n 's/^  version: //p' "$here/alembic.yaml")"
out="${1:-$repo/dist}"
mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$here/kubectl-alembic" "$stage/kubectl-alembic"
install -m 0644 "$repo/LICENSE" "$stage/LICENSE"
archive="$out/kubectl-alembic-$version.tar.gz"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=ustar \
    -C "$stage" -cf - kubectl-alembic LICENSE | gzip -9 -n > "$archive"
sha256sum "$archive"
