#!/usr/bin/env bash
# `make release`: the release artifacts under dist/ (DIST), from the built images and the charts.
#
#   alembic-operator-image-<v>.oci.tar  the operator image (OCI archive; refs "<v>" and "dev")
#   example-app-image-<v>.oci.tar       the example app image (same refs)
#   alembic-operator-<v>.tgz, alembic-operator-hook-<v>.tgz, example-app-<v>.tgz   `helm package`
#   alembic-operator-<v>.yaml           one-file install: the Namespace, then `helm template` of the
#                                       chart with its defaults (CRD, RBAC, admission policies, Deployment)
#   SHA256SUMS                          `sha256sum -c SHA256SUMS` checks every file above
#
# <v> is the operator chart's appVersion. The images come from image/build.sh's exports
# (~/.cache/alembic-operator/images/<name>-current/oci, built by `make image`); helm from tools/build.sh.
# Archives are written reproducibly (sorted, mtime 0, owner 0), so equal inputs give equal sums.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dist="${DIST:-$root/dist}"
images="${ALEMBIC_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alembic-operator}/images"
helm="$(bash "$root/tools/build.sh" | tail -1)/helm"
version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/alembic-operator/Chart.yaml")"
[ -n "$version" ] || { echo "[release] no appVersion in charts/alembic-operator/Chart.yaml" >&2; exit 1; }
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME="$work/helm/cache" HELM_CONFIG_HOME="$work/helm/config" HELM_DATA_HOME="$work/helm/data"
rm -rf "$dist"; mkdir -p "$dist"

for name in alembic-operator example-app; do
  layout="$images/$name-current/oci"
  [ -f "$layout/index.json" ] || { echo "[release] $layout missing: run \`make image\` first" >&2; exit 1; }
  cp -r "$layout" "$work/$name"
  # One manifest, two refs: the release version (push it as that) and "dev" (the chart's default tag).
  python3 - "$work/$name/index.json" "$version" <<'PY'
import json, sys
path, version = sys.argv[1:]
index = json.load(open(path))
(manifest,) = {json.dumps(m, sort_keys=True) for m in index["manifests"]}
manifest = json.loads(manifest)
refs = []
for ref in (version, "dev"):
    entry = json.loads(json.dumps(manifest))
    entry.setdefault("annotations", {})["org.opencontainers.image.ref.name"] = ref
    refs.append(entry)
index["manifests"] = refs
json.dump(index, open(path, "w"))
PY
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/$name" -cf "$dist/$name-image-$version.oci.tar" .
done

cp -r "$root/charts" "$work/charts"
rm -f "$work"/charts/*/charts/*.tgz
"$helm" dependency build "$work/charts/example-app" >/dev/null
for chart in alembic-operator alembic-operator-hook example-app; do
  "$helm" package "$work/charts/$chart" --destination "$dist" >/dev/null
done

{
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: alembic-operator\n'
  "$helm" template alembic-operator "$root/charts/alembic-operator" --namespace alembic-operator
} > "$dist/alembic-operator-$version.yaml"

(cd "$dist" && sha256sum -- *.oci.tar *.tgz *.yaml > SHA256SUMS)
echo "[release] $dist:" >&2
(cd "$dist" && ls -l) >&2
