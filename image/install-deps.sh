#!/usr/bin/env bash
# Debian packages that building and running the images needs (no Docker engine):
#   debootstrap  - makes the local bookworm base root filesystem when no registry is reachable
#   buildah      - `buildah bud --isolation chroot --storage-driver vfs` builds image/Dockerfile
#   runc         - runs containers from the unpacked images (testbed/containers.py)
#   umoci        - unpacks an OCI image layout into a runtime bundle root filesystem
# (skopeo and fuse-overlayfs are not needed: buildah pushes to oci: itself, and vfs needs no fuse.)
# Idempotent; prints what it does. Must run as root when something is missing.
set -euo pipefail
declare -A cmd_of=([debootstrap]=debootstrap [buildah]=buildah [runc]=runc [umoci]=umoci)
need=()
for pkg in debootstrap buildah runc umoci; do
  if command -v "${cmd_of[$pkg]}" >/dev/null 2>&1; then
    echo "[image-deps] $pkg: present ($(command -v "${cmd_of[$pkg]}"))"
  else
    need+=("$pkg")
  fi
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "[image-deps] missing Debian packages: ${need[*]} (run as root: apt-get install --no-install-recommends ${need[*]})" >&2
    exit 1
  fi
  echo "[image-deps] apt-get update"
  apt-get update -qq
  echo "[image-deps] apt-get install --no-install-recommends ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# buildah needs a policy.json and registries.conf; containers-common ships them, but be explicit.
if [ ! -e /etc/containers/policy.json ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[image-deps] writing /etc/containers/policy.json (insecureAcceptAnything, as containers-common does)"
    mkdir -p /etc/containers
    printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' > /etc/containers/policy.json
  else
    echo "[image-deps] /etc/containers/policy.json missing (install containers-common as root)" >&2
    exit 1
  fi
fi
for c in debootstrap buildah runc umoci; do
  printf '[image-deps] %-11s %s\n' "$c" "$( { "$c" --version 2>/dev/null || true; } | head -1)"
done
echo "[image-deps] ok"
