#!/usr/bin/env bash
# Builds the test bed's Kubernetes control plane from its Go modules (issue 17): kube-apiserver
# and kube-controller-manager of k8s.io/kubernetes, and an etcd server over
# go.etcd.io/etcd/server/v3/embed (./etcd), pinned by this folder's go.mod and go.sum.
#
# The binaries are kept in a folder keyed by the pinned versions, the Go toolchain and a hash of
# go.mod, go.sum and our Go sources (default: target/k8s/<key>/ of the workspace; EKS_FA_K8S_CACHE overrides the
# parent folder), so only the first build on a machine pays. Prints the folder on stdout.
# Needs Go and the Go module proxy: a test-bed dependency only, never of `make install`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../.." && pwd)
# The version go.mod requires of module $1 (in a require block or on a `require` line).
required() { awk -v m="$1" '{ for (i = 1; i < NF; i++) if ($i == m) { print $(i + 1); exit } }' "$here/go.mod"; }
kubernetes=$(required k8s.io/kubernetes)
etcd=$(required go.etcd.io/etcd/server/v3)
command -v go >/dev/null || { echo "k8s/build.sh: Go is needed to build the test bed's control plane (https://go.dev/dl, or your package manager)" >&2; exit 1; }
toolchain=$(go env GOVERSION)
sum=$(cat "$here/go.mod" "$here/go.sum" "$here"/etcd/*.go | sha256sum | cut -c1-12)
out=${EKS_FA_K8S_CACHE:-$workspace/target/k8s}/$kubernetes-etcd$etcd-$toolchain-$sum
if [ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/etcd" ]; then
  echo "$out"
  exit 0
fi
minor=$(echo "$kubernetes" | cut -d. -f2)
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kubernetes \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
-X k8s.io/component-base/version.gitTreeState=clean"
echo "k8s/build.sh: building kube-apiserver, kube-controller-manager ($kubernetes) and etcd ($etcd) into $out (the first time takes a while)" >&2
mkdir -p "$out.partial"
(cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$out.partial/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager ./etcd)
rm -rf "$out"
mv "$out.partial" "$out"
echo "$out"
