#!/usr/bin/env bash
# Installs the Node tools the tests use, pinned, into tools/node/ (gitignored): the GitHub
# workflow validator @action-validator/cli, which testbed/tests/ci_lint.rs runs on ci/*.yml.
# Idempotent: does nothing when tools/node/ already holds exactly these packages.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${EKS_FA_NODE_DIR:-$here/tools/node}
# The CLI and the core (WebAssembly) package it names as its peer, at the same version.
packages=(@action-validator/cli@0.6.0 @action-validator/core@0.6.0)
stamp=$dir/.packages
want=${packages[*]}
if [ -x "$dir/node_modules/.bin/action-validator" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "setup-node: 'npm' and 'node' are needed to install the workflow validator; install them (Debian: apt-get install npm)" >&2
  exit 1
fi
echo "setup-node: installing ${packages[*]} into $dir" >&2
mkdir -p "$dir"
# A package.json of its own, so npm installs here and not into a parent folder's project.
[ -f "$dir/package.json" ] || echo '{ "name": "eks-fa-tools", "private": true }' > "$dir/package.json"
npm install --prefix "$dir" --save-exact --no-audit --no-fund --loglevel=error "${packages[@]}"
echo "$want" > "$stamp"
