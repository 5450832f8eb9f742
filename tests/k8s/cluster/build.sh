#!/usr/bin/env bash
# build.sh - build (once per version) the binaries of the project's Kubernetes test cluster
# into a cache directory outside the repository, and print that bin directory.
#
#   tests/k8s/cluster/build.sh          build what is missing, print the bin dir
#
# What it builds, with the Go toolchain and the Go module proxy only:
#   kube-apiserver kube-controller-manager kube-scheduler kubelet   from k8s.io/kubernetes (./go.mod)
#   cri-dockerd                                                      from github.com/Mirantis/cri-dockerd (./cri-dockerd/go.mod)
#   k8s-pause                                                        the pod sandbox program (./pause)
#   k8s-dockerapi                                                    the engine API proxy cri-dockerd talks to (./dockerapi)
#
# Cache: ${CLIPPER_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clipper-k8s}/<key>/bin, where <key>
# is the Kubernetes version plus a hash of ./go.mod and ./go.sum, so a rerun with nothing changed
# is instant; the small tools beside them are rebuilt when their own sources change. Builds run
# under `nice`; Go's build cache (GOCACHE) and module cache (GOMODCACHE) make rebuilds cheaper.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$HERE/go.mod")
CACHE_ROOT=${CLIPPER_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clipper-k8s}
KEY=$K8S_VERSION-$(cat "$HERE/go.mod" "$HERE/go.sum" | sha256sum | cut -c1-10)
BIN=$CACHE_ROOT/$KEY/bin
log() { printf '[k8s-build] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "ERROR: go not found (Go >= 1.24 is needed)"; exit 1; }
export GOFLAGS="-trimpath -mod=readonly" CGO_ENABLED=${CGO_ENABLED:-0}
LDFLAGS="-s -w"
mkdir -p "$BIN"

build() {  # build DIR OUT PKG...
    local dir=$1 out=$2 t0=$SECONDS
    shift 2
    log "go build $* (in $dir)"
    (cd "$dir" && nice -n 10 go build -ldflags="$LDFLAGS" -o "$out" "$@")
    log "built in $((SECONDS - t0))s"
}

missing=()
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
    [ -x "$BIN/$cmd" ] || missing+=("k8s.io/kubernetes/cmd/$cmd")
done
if [ "${#missing[@]}" -gt 0 ]; then
    tmp=$(mktemp -d "$BIN/.build.XXXXXX")
    build "$HERE" "$tmp/" "${missing[@]}"
    mv "$tmp"/* "$BIN/" && rmdir "$tmp"
fi
# The small tools: rebuilt when their sources change (a stamp file holds their hash).
tool() {  # tool NAME DIR PKG [FILES...]
    local name=$1 dir=$2 pkg=$3 stamp
    shift 3
    stamp=$(cat "$@" | sha256sum | cut -c1-16)
    if [ ! -x "$BIN/$name" ] || [ "$(cat "$BIN/$name.stamp" 2>/dev/null)" != "$stamp" ]; then
        build "$dir" "$BIN/$name.tmp" "$pkg"
        mv "$BIN/$name.tmp" "$BIN/$name"
        echo "$stamp" >"$BIN/$name.stamp"
    fi
}
tool cri-dockerd "$HERE/cri-dockerd" github.com/Mirantis/cri-dockerd "$HERE/cri-dockerd/go.mod" "$HERE/cri-dockerd/go.sum"
tool k8s-pause "$HERE/pause" . "$HERE/pause/go.mod" "$HERE/pause/main.go"
tool k8s-dockerapi "$HERE/dockerapi" . "$HERE/dockerapi/go.mod" "$HERE/dockerapi/main.go"
echo "$BIN"
