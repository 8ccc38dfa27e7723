#!/usr/bin/env bash
# make demo: the steps that exist so far, through the same Makefile targets a user runs against
# AWS, on the local test bed (moto, a Kubernetes API stand-in and simulators of the cluster and of
# the AWS Load Balancer Controller, all on loopback); no AWS account, nothing leaves this machine.
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
vars=(STATE="$state" CLUSTER="$cluster" REGION="$region" KUBECONFIG_FILE="$EKS_FA_KUBECONFIG"
      OUT="$work/patched" CONNECT_TO="::$EKS_FA_ALB_ADDR")

say() { printf '\n== %s\n' "$*"; }
step() { say "make $1"; make --no-print-directory "$1" "${vars[@]}"; }

say "test bed: moto at $AWS_ENDPOINT_URL; a cluster $cluster made there through the AWS API"
"$bin/eks-testbed" seed-cluster --name "$cluster" --region "$region"

for target in oidc-create irsa-create sg-create patch deploy; do step "$target"; done
say "state document"
cat "$state"
url=$(sed -n 's/.*"url": "\(.*\)".*/\1/p' "$state")
say "the app at $url (through the simulated ALB at $EKS_FA_ALB_ADDR)"
host=${url#http://}; host=${host%/}
printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" \
  | timeout 5 bash -c "exec 3<>/dev/tcp/${EKS_FA_ALB_ADDR%:*}/${EKS_FA_ALB_ADDR#*:}; cat >&3; head -1 <&3"

say "again: every step finds nothing to change"
for target in oidc-create irsa-create sg-create deploy; do
  make --no-print-directory "$target" "${vars[@]}" 2>&1 | grep -E 'up to date|already|nothing to change|nothing changed' || true
done

say "inventory before teardown"
"$bin/eks-testbed" inventory --region "$region"

for target in delete-deployment sg-delete irsa-delete oidc-delete; do step "$target"; done

say "inventory after teardown (only what the test bed made for the cluster is left)"
left=$("$bin/eks-testbed" inventory --region "$region")
echo "$left"
if printf '%s' "$left" | grep -q '"stacks":\[\]' \
  && printf '%s' "$left" | grep -q '"roles":\[\]' \
  && printf '%s' "$left" | grep -q '"oidcProviders":\[\]'; then
  say "done in $(( $(date +%s) - started ))s: installed, answered HTTP 200, re-run without change, torn down; no stack, role or OIDC provider left"
else
  echo "demo: something is left: $left" >&2
  exit 1
fi
