#!/usr/bin/env bash
# Make the local base image `localhost/bookworm-python:base` when no registry is
# reachable: Debian bookworm (debootstrap --variant=minbase) + python3 (3.11) +
# python3-venv + ca-certificates, committed with buildah from scratch (vfs storage).
# It stands in for `python:3.11-slim-bookworm`; see image/README.md for the differences.
# Cached: the root filesystem under $CACHE/images/base-rootfs-<key>/ and the image in
# buildah's storage are made once; later runs print "cached" and return at once.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${ALEMBIC_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alembic-operator}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates
BASE_TAG=${LOCAL_BASE_IMAGE:-localhost/bookworm-python:base}
BUILDAH=(buildah --storage-driver vfs)
log() { echo "[image-base] $*"; }

for tool in debootstrap buildah; do
  command -v "$tool" >/dev/null || { echo "[image-base] $tool is missing: run 'make image-deps' (bash image/install-deps.sh) as root" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "[image-base] debootstrap and vfs builds need root" >&2; exit 1; }

key=$(printf '%s\n' "$SUITE" "$PACKAGES" "$MIRROR" "$(sha256sum "$HERE/base.sh" | cut -c1-64)" | sha256sum | cut -c1-16)
rootfs=$CACHE/images/base-rootfs-$key
if [ "$("${BUILDAH[@]}" inspect --type image --format '{{index .ImageAnnotations "dev.alembic-operator.base-key"}}' "$BASE_TAG" 2>/dev/null || true)" = "$key" ]; then
  log "$BASE_TAG is cached (key $key)"
  exit 0
fi

if [ ! -e "$rootfs/.complete" ]; then
  rm -rf "$rootfs" "$rootfs.tmp"
  mkdir -p "$(dirname "$rootfs")"
  log "debootstrap --variant=minbase --include=$PACKAGES $SUITE $MIRROR"
  t0=$(date +%s%N)
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs.tmp" "$MIRROR" > "$CACHE/images/debootstrap-$key.log" 2>&1 \
    || { tail -20 "$CACHE/images/debootstrap-$key.log" >&2; exit 1; }
  # What python:3.11-slim-bookworm (debian:bookworm-slim) has and minbase lacks or should
  # not carry: dpkg path excludes for docs/man/locales (and those files gone),
  # deb822 sources with updates and security, no apt caches, no host files.
  cat > "$rootfs.tmp/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
# as in debian:bookworm-slim
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
DPKG
  find "$rootfs.tmp/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$rootfs.tmp/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs.tmp"/usr/share/man/* "$rootfs.tmp"/usr/share/groff/* "$rootfs.tmp"/usr/share/info/* \
         "$rootfs.tmp"/usr/share/lintian/* "$rootfs.tmp"/usr/share/locale/*
  rm -f "$rootfs.tmp/etc/apt/sources.list"
  cat > "$rootfs.tmp/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  rm -rf "$rootfs.tmp"/var/cache/apt/archives/*.deb "$rootfs.tmp"/var/cache/apt/*.bin \
         "$rootfs.tmp"/var/lib/apt/lists/* "$rootfs.tmp"/var/log/* "$rootfs.tmp"/tmp/* "$rootfs.tmp"/root/.cache
  : > "$rootfs.tmp/etc/resolv.conf"
  echo localhost > "$rootfs.tmp/etc/hostname"
  touch "$rootfs.tmp/.complete"
  mv "$rootfs.tmp" "$rootfs"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  log "debootstrap took $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s"
else
  log "root filesystem cached: $rootfs"
fi

log "committing $rootfs as $BASE_TAG"
ctr=$("${BUILDAH[@]}" from --pull-never scratch)
trap '"${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$("${BUILDAH[@]}" mount "$ctr")
tar -C "$rootfs" --exclude=./.complete -cf - . | tar -C "$mnt" -xpf - --numeric-owner
"${BUILDAH[@]}" umount "$ctr" >/dev/null
"${BUILDAH[@]}" config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 \
  --cmd python3 \
  --os linux --arch amd64 \
  --annotation dev.alembic-operator.base-key="$key" \
  --label org.opencontainers.image.title="bookworm-python" \
  --label org.opencontainers.image.description="Debian bookworm minbase + python3 (3.11), made by image/base.sh with debootstrap" \
  --label org.opencontainers.image.base.name="debootstrap:$SUITE" \
  "$ctr"
"${BUILDAH[@]}" commit --quiet --rm "$ctr" "$BASE_TAG" >/dev/null
trap - EXIT
for old in "$CACHE"/images/base-rootfs-*; do  # earlier keys of this script
  [ "$old" = "$rootfs" ] || rm -rf "$old" "$CACHE/images/debootstrap-${old##*base-rootfs-}.log"
done
log "made $BASE_TAG (key $key): $(du -sm "$rootfs" | cut -f1) MB unpacked"
