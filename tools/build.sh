#!/usr/bin/env bash
# Builds the test tools (kube-apiserver, etcd, CoreDNS, Helm, promtool) from the Go module proxy into a cache
# directory. Idempotent: a tool whose binary already reports the pinned version is not rebuilt.
# Release-binary downloads are unreachable here, so everything is compiled from module sources.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
TOOLS_DIR=${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/node-dns/tools}
mkdir -p "$TOOLS_DIR"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One build at a time per cache directory: a second `make tools` waits instead of racing.
exec 9>"$TOOLS_DIR/.build.lock"
flock 9

have() { # have BINARY VERSION ARGS... : the cached binary prints VERSION (as a whole word)
  local bin=$TOOLS_DIR/$1 want=${2#v} out; shift 2
  [ -x "$bin" ] || return 1
  # Capture first: `bin | grep -q` fails at random under pipefail when grep exits before bin
  # has written everything (SIGPIPE).
  out=$("$bin" "$@" 2>&1) || return 1
  [[ $out =~ (^|[^0-9.])${want//./\\.}([^0-9.]|$) ]]
}

install_bin() { # install_bin BUILT NAME : atomic rename, so a running test never sees half a file
  chmod +x "$1"
  mv -f "$1" "$TOOLS_DIR/$2"
}

check() { # check BINARY VERSION ARGS... : fail loudly if the build did not give VERSION
  if ! have "$@"; then echo "tools: $1 does not report version $2" >&2; exit 1; fi
  echo "tools: $1 $2 ok"
}

build_etcd() {
  have etcd "$ETCD_VERSION" --version && { echo "tools: etcd $ETCD_VERSION cached"; return; }
  local d=$work/etcd; mkdir -p "$d"; cd "$d"
  go mod init nodedns.local/etcd >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod tidy
  go build -o "$work/etcd.bin" \
    -ldflags "-X go.etcd.io/etcd/api/v3/version.Version=${ETCD_VERSION#v}" .
  install_bin "$work/etcd.bin" etcd
  check etcd "$ETCD_VERSION" --version
}

build_apiserver() {
  have kube-apiserver "$KUBERNETES_VERSION" --version && { echo "tools: kube-apiserver $KUBERNETES_VERSION cached"; return; }
  local d=$work/apiserver; mkdir -p "$d"; cd "$d"
  go mod init nodedns.local/apiserver >/dev/null 2>&1
  local gomod staging=v0${KUBERNETES_VERSION#v1}
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  # Every staging module k8s.io/kubernetes replaces with a local path gets pinned to its release.
  grep -E '^\s*k8s.io/[^ ]+ => ./staging' "$gomod" | awk '{print $1}' | while read -r m; do
    go mod edit -replace "$m=$m@$staging"
  done
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION"
  local major minor pkg=k8s.io/component-base/version
  IFS=. read -r major minor _ <<<"${KUBERNETES_VERSION#v}"
  go build -o "$work/kube-apiserver.bin" \
    -ldflags "-X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor" \
    k8s.io/kubernetes/cmd/kube-apiserver
  install_bin "$work/kube-apiserver.bin" kube-apiserver
  check kube-apiserver "$KUBERNETES_VERSION" --version
}

build_coredns() {
  have coredns "$COREDNS_VERSION" -version && { echo "tools: coredns $COREDNS_VERSION cached"; return; }
  GOBIN=$work/bin go install "github.com/coredns/coredns@$COREDNS_VERSION"
  install_bin "$work/bin/coredns" coredns
  check coredns "$COREDNS_VERSION" -version
}

build_helm() {
  have helm "$HELM_VERSION" version --short && { echo "tools: helm $HELM_VERSION cached"; return; }
  GOBIN=$work/bin go install \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  install_bin "$work/bin/helm" helm
  check helm "$HELM_VERSION" version --short
}

build_promtool() {
  have promtool "$PROMETHEUS_VERSION" --version && { echo "tools: promtool $PROMETHEUS_VERSION cached"; return; }
  # Prometheus 3.x.y is published to the module proxy as v0.3xx.y (3.16.0 -> v0.316.0).
  local major minor patch module
  IFS=. read -r major minor patch <<< "${PROMETHEUS_VERSION#v}"
  module=v0.${major}$(printf %02d "$minor").${patch}
  GOBIN=$work/bin go install \
    -ldflags "-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v}" \
    "github.com/prometheus/prometheus/cmd/promtool@$module"
  install_bin "$work/bin/promtool" promtool
  check promtool "$PROMETHEUS_VERSION" --version
}

targets=${*:-etcd apiserver coredns helm promtool}
for t in $targets; do (build_"$t"); done
echo "tools: all in $TOOLS_DIR"
