#!/usr/bin/env bash
# make demo: the steps that exist so far, through the same Makefile targets a user runs against
# AWS, on the local test bed (moto and a Kubernetes API stand-in on loopback); no AWS account,
# nothing leaves this machine.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bin=${BIN:-target/debug}
work=$(mktemp -d)
state=$work/state.json
cluster=${CLUSTER:-eks-fargate}
region=${REGION:-us-east-2}
started=$(date +%s)

"$bin/eks-testbed" serve > "$work/env.sh" &
testbed=$!
cleanup() { kill "$testbed" 2>/dev/null || true; wait "$testbed" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 600); do grep -q NO_PROXY "$work/env.sh" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/env.sh"
unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION
vars=(STATE="$state" CLUSTER="$cluster" REGION="$region" KUBECONFIG_FILE="$EKS_FA_KUBECONFIG")

say() { printf '\n== %s\n' "$*"; }
step() { say "make $1"; make --no-print-directory "$1" "${vars[@]}"; }

say "test bed: moto at $AWS_ENDPOINT_URL; a cluster $cluster made there through the AWS API"
"$bin/eks-testbed" seed-cluster --name "$cluster" --region "$region"

step oidc-create
step irsa-create
step sg-create
say "state document"
cat "$state"

say "again: every step finds nothing to change"
for target in oidc-create irsa-create sg-create; do
  make --no-print-directory "$target" "${vars[@]}" 2>&1 | grep -E 'up to date|already|nothing to change' || true
done

say "inventory before teardown"
"$bin/eks-testbed" inventory --region "$region"

step sg-delete
step irsa-delete
step oidc-delete

say "inventory after teardown (only what the test bed made for the cluster is left)"
left=$("$bin/eks-testbed" inventory --region "$region")
echo "$left"
if printf '%s' "$left" | grep -q '"stacks":\[\]' \
  && printf '%s' "$left" | grep -q '"roles":\[\]' \
  && printf '%s' "$left" | grep -q '"oidcProviders":\[\]'; then
  say "done in $(( $(date +%s) - started ))s: created, re-run without change, deleted; no stack, role or OIDC provider left"
else
  echo "demo: something is left: $left" >&2
  exit 1
fi
