#!/usr/bin/env bash
# Build the test-bed binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kubectl, helm, versitygw, kstatus and the node's
# sandbox process pause) from the Go module proxy into a cache directory keyed
# by the hash of go.mod/go.sum/this script, so an unchanged module is never
# rebuilt. Prints the bin directory on the last line of stdout.
#
# A cold build takes tens of minutes on 2 cores; progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
key="$(cat go.mod go.sum build.sh etcd/main.go kstatus/main.go pause/main.go | sha256sum | cut -c1-16)"
cache="${ALEMBIC_OPERATOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alembic-operator/tools}/$key"
bin="$cache/bin"
names=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl helm versitygw kstatus pause)

complete=1
for n in "${names[@]}"; do [ -x "$bin/$n" ] || complete=0; done
if [ "$complete" = 1 ]; then echo "$bin"; exit 0; fi

mkdir -p "$bin"
version_of() { go list -m -f '{{.Version}}' "$1"; }
kube="$(version_of k8s.io/kubernetes)"
helmv="$(version_of helm.sh/helm/v4)"
vgw="$(version_of github.com/versity/versitygw)"
minor="$(echo "$kube" | cut -d. -f2)"
kv=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kv+=" -X $pkg.gitVersion=$kube -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kv+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build() { # name ldflags package
  local name="$1" flags="$2" pkg="$3" t0=$SECONDS
  if [ -x "$bin/$name" ]; then echo "[tools] $name: cached" >&2; return; fi
  echo "[tools] building $name ($pkg) ..." >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $flags" -o "$bin/$name.tmp" "$pkg"
  mv "$bin/$name.tmp" "$bin/$name"
  echo "[tools] $name built in $((SECONDS - t0)) s" >&2
}
echo "[tools] downloading modules ..." >&2
go mod download
build etcd "" ./etcd
build kstatus "" ./kstatus
build pause "" ./pause
build versitygw "-X main.Version=$vgw -X main.Build=module -X main.BuildTime=1970-01-01" github.com/versity/versitygw/cmd/versitygw
build helm "-X helm.sh/helm/v4/internal/version.version=$helmv -X helm.sh/helm/v4/internal/version.gitTreeState=clean" helm.sh/helm/v4/cmd/helm
build kubectl "$kv" k8s.io/kubernetes/cmd/kubectl
build kube-apiserver "$kv" k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager "$kv" k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler "$kv" k8s.io/kubernetes/cmd/kube-scheduler
build kubelet "$kv" k8s.io/kubernetes/cmd/kubelet
echo "[tools] all built in $bin" >&2
echo "$bin"
