#!/usr/bin/env bash
# Build the images with buildah (chroot isolation, vfs storage; no Docker engine) and
# export each one for runc: `image/build.sh [operator|example-app|all]` (default all).
#
#   operator     image/Dockerfile              -> alembic-operator:dev (base + client + controller,
#                                                  PostgreSQL client tools)
#   example-app  examples/app-image/Dockerfile -> example-app:dev (base + client + the app's
#                                                  libraries and migrations; same base image)
#
# Each build is keyed on a hash of its Dockerfile, the files it copies and its base
# image; an unchanged image is not rebuilt. The locks (image/requirements*.txt) are
# regenerated first when pyproject.toml's dependencies changed (image/lock.sh --check).
# Per key the cache holds
#   $CACHE/images/<name>-<key>/oci/            OCI image layout (tag "dev")
#   $CACHE/images/<name>-<key>/bundle/rootfs/  unpacked root filesystem (umoci unpack)
#   $CACHE/images/<name>-<key>/image-config.json  the image config (Entrypoint, Cmd, Env, ...)
#   $CACHE/images/<name>-<key>/meta.json       ref, image id, sizes, build seconds
#   $CACHE/images/<name>-current -> <name>-<key>  (what testbed/containers.py runs)
#
# Buildah's vfs storage only grows (every layer is a full copy of the root filesystem), so
# after the builds only the current build of each name stays in it, then every dangling
# image goes (`buildah rmi --prune`); each build's build stage is tagged <name>-build:<key>
# so its layer cache (the pinned dependencies) survives the prune.
#
# Environment:
#   BASE_IMAGE   base of image/Dockerfile. Unset: python:3.11-slim-bookworm if a registry
#                answers, else the local debootstrap base (image/base.sh). IMAGE_BASE=local
#                forces the local one, IMAGE_BASE=public the public one.
#   ALEMBIC_OPERATOR_CACHE   cache root (default ~/.cache/alembic-operator)
#   IMAGE_REBUILD=1          ignore the cache
#   IMAGE_LAYERS=false       no per-instruction layer cache (buildah --layers=false)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${ALEMBIC_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alembic-operator}
IMAGES=$CACHE/images
PUBLIC_BASE=python:3.11-slim-bookworm
LOCAL_BASE=${LOCAL_BASE_IMAGE:-localhost/bookworm-python:base}
BUILDAH=(buildah --storage-driver vfs)
TAG=dev
log() { echo "[image] $*"; }
die() { echo "[image] $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%01d' $(( $1 / 1000 )) $(( ($1 % 1000) / 100 )); }

[ "$(id -u)" = 0 ] || die "buildah with vfs storage and runc bundles need root here"
for tool in buildah umoci; do
  command -v "$tool" >/dev/null || die "$tool is missing: run 'make image-deps' (bash image/install-deps.sh) as root"
done
STORAGE=${CONTAINERS_STORAGE:-/var/lib/containers}
mkdir -p "$IMAGES" "$STORAGE"
# One build at a time per cache (parallel test sessions share tags and staging dirs) and
# per storage, whatever the cache (a prune must never run beside another build's layers).
exec 8>"$IMAGES/.build.lock"
flock 8
exec 9>"$STORAGE/.alembic-operator-build.lock"
flock 9

# Files of the build context, relative to the repo root (git's view when possible, so
# __pycache__, *.egg-info and other ignored files never change the key or the image).
context_files() {
  if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -co --exclude-standard -- "$@" | while read -r f; do [ -f "$f" ] && echo "$f"; done | LC_ALL=C sort -u)
  else
    (cd "$ROOT" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' 2>/dev/null | LC_ALL=C sort -u)
  fi
}

# hash_key <extra text> <files...>: 16 hex chars over the names, modes and contents.
hash_key() {
  local extra=$1; shift
  { printf '%s\n' "$extra"
    (cd "$ROOT" && for f in "$@"; do printf '%s %s %s\n' "$f" "$(stat -c %a "$f")" "$(sha256sum < "$f" | cut -c1-64)"; done)
  } | sha256sum | cut -c1-16
}

stage_context() {  # stage_context <dir> <files...>
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  (cd "$ROOT" && printf '%s\0' "$@" | xargs -0 cp --parents -p -t "$dir")
}

resolve_base() {
  if [ -n "${BASE_IMAGE:-}" ]; then
    [ -n "$(image_id "$BASE_IMAGE")" ] || "${BUILDAH[@]}" pull -q "$BASE_IMAGE" >/dev/null
    echo "$BASE_IMAGE"; return
  fi
  case "${IMAGE_BASE:-auto}" in
    local) ;;
    public) echo "$PUBLIC_BASE"; return ;;
    auto)
      if "${BUILDAH[@]}" inspect --type image "$PUBLIC_BASE" >/dev/null 2>&1 \
         || timeout 120 "${BUILDAH[@]}" pull -q "docker.io/library/$PUBLIC_BASE" >/dev/null 2>&1; then
        echo "$PUBLIC_BASE"; return
      fi
      echo "[image] no registry reachable for $PUBLIC_BASE: using the local debootstrap base $LOCAL_BASE" >&2 ;;
    *) die "IMAGE_BASE must be auto, local or public" ;;
  esac
  bash "$HERE/base.sh" >&2
  echo "$LOCAL_BASE"
}

image_id() { "${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true; }

# export_image <name> <key> <build_ms>: OCI layout + runc bundle + metadata, then the
# <name>-current link. Atomic: a half-written directory never looks complete.
export_image() {
  local name=$1 key=$2 build_ms=$3 out=$IMAGES/$1-$2 tmp
  tmp=$out.tmp.$$
  rm -rf "$tmp"; mkdir -p "$tmp"
  local t0; t0=$(now_ms)
  "${BUILDAH[@]}" push --quiet "localhost/$name:$key" "oci:$tmp/oci:$TAG" >/dev/null
  umoci unpack --image "$tmp/oci:$TAG" "$tmp/bundle" >/dev/null
  rm -f "$tmp"/bundle/sha256_*.mtree
  "${BUILDAH[@]}" inspect --type image "localhost/$name:$key" \
    | python3 -c 'import json,sys; json.dump(json.load(sys.stdin)["OCIv1"]["config"], sys.stdout, indent=1)' > "$tmp/image-config.json"
  local id compressed unpacked
  id=$(image_id "localhost/$name:$key")
  compressed=$(python3 - "$tmp/oci" <<'PY'
import json, sys, os
root = sys.argv[1]
def blob(d): return os.path.join(root, "blobs", *d.split(":", 1))
index = json.load(open(os.path.join(root, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
print(sum(layer["size"] for layer in manifest["layers"]))
PY
)
  unpacked=$(du -sb "$tmp/bundle/rootfs" | cut -f1)
  cat > "$tmp/meta.json" <<JSON
{"name": "$name", "ref": "localhost/$name:$TAG", "key": "$key", "image_id": "$id",
 "compressed_bytes": $compressed, "unpacked_bytes": $unpacked, "build_seconds": $(secs "$build_ms"),
 "export_seconds": $(secs $(( $(now_ms) - t0 ))), "built_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}
JSON
  touch "$tmp/.complete"
  rm -rf "$out"; mv "$tmp" "$out"
  ln -sfn "$(basename "$out")" "$IMAGES/$name-current"
  # Keep this build and the one before it; older exports of this image go.
  local keep_prev; keep_prev=$(ls -1dt "$IMAGES/$name"-[0-9a-f]*[0-9a-f] 2>/dev/null | grep -v "^$out\$" | head -1 || true)
  for d in "$IMAGES/$name"-[0-9a-f]*[0-9a-f]; do
    if [ -d "$d" ] && [ "$d" != "$out" ] && [ "$d" != "$keep_prev" ]; then
      rm -rf "$d"
      "${BUILDAH[@]}" rmi "localhost/$name:${d##*-}" >/dev/null 2>&1 || true
    fi
  done
  return 0
}

report() {  # report <name> <key> <cached|built>
  python3 - "$IMAGES/$1-$2/meta.json" "$3" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
mb = lambda b: b / 1e6
print(f"[image] {m['ref']} ({sys.argv[2]}, key {m['key']}): {mb(m['compressed_bytes']):.0f} MB compressed layers, "
      f"{mb(m['unpacked_bytes']):.0f} MB unpacked; build {m['build_seconds']} s, export {m['export_seconds']} s")
PY
}

# A TLS-intercepting proxy (a CA the host trusts but a stock CA store does not): RUN
# steps see the host's CA bundle in place of the base's /etc/ssl/certs/ca-certificates.crt
# (a build-time bind mount over an existing file: nothing is committed into a layer; the
# Dockerfile points pip at that file). IMAGE_BUILD_CA=none turns it off.
build_ca_args() {
  local ca=${IMAGE_BUILD_CA:-${PIP_CERT:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}}}
  [ -n "$ca" ] && [ "$ca" != none ] && [ -f "$ca" ] || return 0
  local dir=$IMAGES/.build-ca; mkdir -p "$dir"
  cp "$ca" "$dir/ca-certificates.crt"
  echo "-v=$dir/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro"
}

# tag_build_stage <name> <key>: name the build stage's last layer <name>-build:<key>, which
# keeps its chain (the pinned dependencies) from the prune. Its id is the last "--> <id>"
# the build log shows before the final stage's "[n/n] STEP 1/"; without one, nothing is tagged
# (the next build then installs the dependencies again).
tag_build_stage() {
  local name=$1 key=$2 id
  id=$(awk '/^--> [0-9a-f]+$/ { id = $2 }
            /^\[[0-9]+\/[0-9]+\] STEP 1\// { split(substr($1, 2), n, "[]/]"); if (n[1] == n[2]) { print id; exit } }' \
         "$IMAGES/$name-build.log")
  if [ -n "$id" ]; then
    "${BUILDAH[@]}" tag "$id" "localhost/$name-build:$key"
  else
    log "$name: no build stage found in the build log; its layers are not kept"
  fi
}

# build_image <name> <dockerfile> <key> <context files...> -- <buildah bud args...>
build_image() {
  local name=$1 dockerfile=$2 key=$3; shift 3
  local files=() ; while [ "$1" != "--" ]; do files+=("$1"); shift; done; shift
  local out=$IMAGES/$name-$key
  if [ -z "${IMAGE_REBUILD:-}" ] && [ -e "$out/.complete" ]; then
    if [ -z "$(image_id "localhost/$name:$key")" ]; then
      log "$name: restoring localhost/$name:$key into buildah storage from $out/oci"
      local id; id=$("${BUILDAH[@]}" pull -q "oci:$out/oci:$TAG")
      "${BUILDAH[@]}" tag "$id" "localhost/$name:$key"
    fi
    "${BUILDAH[@]}" tag "localhost/$name:$key" "localhost/$name:$TAG"
    ln -sfn "$(basename "$out")" "$IMAGES/$name-current"
    report "$name" "$key" cached
    return 0
  fi
  local ctx=$IMAGES/.context-$name
  stage_context "$ctx" "${files[@]}"
  log "$name: buildah bud -f $dockerfile (key $key)"
  local t0 build_ms ca_args; t0=$(now_ms)
  mapfile -t ca_args < <(build_ca_args)
  "${BUILDAH[@]}" bud --isolation chroot --layers="${IMAGE_LAYERS:-true}" "${ca_args[@]}" \
      -f "$ROOT/$dockerfile" -t "localhost/$name:$key" -t "localhost/$name:$TAG" "$@" "$ctx" \
      > "$IMAGES/$name-build.log" 2>&1 \
    || { tail -40 "$IMAGES/$name-build.log" >&2; die "$name: build failed (full log: $IMAGES/$name-build.log)"; }
  build_ms=$(( $(now_ms) - t0 ))
  tag_build_stage "$name" "$key"
  rm -rf "$ctx"
  export_image "$name" "$key" "$build_ms"
  report "$name" "$key" built
}

# The base image and its id, resolved once per run.
BASE=; BASE_ID=
base_image() {
  [ -n "$BASE" ] && return 0
  BASE=$(resolve_base)
  BASE_ID=$(image_id "$BASE"); [ -n "$BASE_ID" ] || die "base image $BASE is not in buildah storage"
}

relock_if_stale() {
  bash "$HERE/lock.sh" --check >/dev/null && return 0
  log "pyproject.toml's dependencies changed since image/requirements*.txt were locked: running image/lock.sh"
  bash "$HERE/lock.sh"
}

# build_from_base <name> <dockerfile> <key text> <context paths...> [-- <build args...>]:
# both images build FROM the same base.
build_from_base() {
  local name=$1 dockerfile=$2 extra=$3; shift 3
  local paths=() files key
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do paths+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  base_image
  mapfile -t files < <(context_files "$dockerfile" "${paths[@]}")
  key=$(hash_key "base=$BASE@$BASE_ID $extra" "${files[@]}")
  build_image "$name" "$dockerfile" "$key" "${files[@]}" -- --build-arg BASE_IMAGE="$BASE" "$@"
}

build_operator() {
  local revision; revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
  build_from_base alembic-operator image/Dockerfile "revision=$revision" \
    image/requirements.txt image/requirements-pgtools.txt pyproject.toml operator -- --build-arg REVISION="$revision"
}

build_example_app() {
  build_from_base example-app examples/app-image/Dockerfile "" \
    examples/app-image/requirements.txt image/requirements-client.txt pyproject.toml operator alembic \
    tests/projects/async_template tests/projects/generic_template
}

# prune_storage <names...>: drop every image of these names but the current build (and its
# build stage), then every dangling image. The previous build's export stays on disk
# (build_image restores it from there if it becomes current again).
prune_storage() {
  local before name ref current
  before=$(du -sh "$STORAGE" 2>/dev/null | cut -f1)
  for name in "$@"; do
    current=$(readlink "$IMAGES/$name-current" 2>/dev/null || true); current=${current##*-}
    for ref in $("${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}}' 2>/dev/null \
                 | grep -E "^localhost/$name(-build)?:" || true); do
      case "${ref##*:}" in "$TAG"|"$current") continue ;; esac
      "${BUILDAH[@]}" rmi "$ref" >/dev/null 2>&1 || true
    done
  done
  "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
  log "storage $STORAGE: $before before the prune, $(du -sh "$STORAGE" 2>/dev/null | cut -f1) after"
}

what=${1:-all}
t_all=$(now_ms)
relock_if_stale
case "$what" in
  operator) build_operator; prune_storage alembic-operator ;;
  example-app) build_example_app; prune_storage example-app ;;
  all) build_operator; build_example_app; prune_storage alembic-operator example-app ;;
  *) die "usage: $0 [operator|example-app|all]" ;;
esac
log "done in $(secs $(( $(now_ms) - t_all ))) s; bundles under $IMAGES/<name>-current/bundle/rootfs"
