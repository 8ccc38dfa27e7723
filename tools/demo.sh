#!/usr/bin/env bash
# make demo: the whole pipeline through `make install` and `make clean`, the same targets and
# binaries a user runs against AWS, on the local test bed: moto for AWS, the real Kubernetes control plane
# and simulators of the cluster and of the AWS Load Balancer Controller, all on loopback. No AWS
# account, nothing leaves this machine.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bin=${BIN:-target/debug}
work=$(mktemp -d)
state=$work/state.json
cluster=${CLUSTER:-eks-fargate}
region=${REGION:-us-east-2}
started=$(date +%s)

"$bin/eks-testbed" serve --region "$region" > "$work/env.sh" &
testbed=$!
cleanup() { kill "$testbed" 2>/dev/null || true; wait "$testbed" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 600); do grep -q NO_PROXY "$work/env.sh" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/env.sh"
unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION

say() { printf '\n== %s\n' "$*"; }

# moto's EKS makes no cluster security group and its CloudFormation cannot delete a VPC stack's
# gateways (see DESIGN-NOTES.md), so the demo brings its own network, as a user may.
say "test bed: moto at $AWS_ENDPOINT_URL; a network for cluster $cluster, made through the AWS API"
network=$("$bin/eks-testbed" seed-network --cluster "$cluster" --region "$region")
echo "$network"
# shellcheck disable=SC2206
vars=(STATE="$state" CLUSTER="$cluster" REGION="$region" KUBECONFIG_FILE="$EKS_FA_KUBECONFIG"
      OUT="$work/patched" CONNECT_TO="::$EKS_FA_ALB_ADDR" $network)

say "make install"
make --no-print-directory install "${vars[@]}"
say "state document"
cat "$state"
url=$(sed -n 's/.*"url": "\(.*\)".*/\1/p' "$state")
say "the app at $url (through the simulated ALB at $EKS_FA_ALB_ADDR)"
host=${url#http://}; host=${host%/}
printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" \
  | timeout 5 bash -c "exec 3<>/dev/tcp/${EKS_FA_ALB_ADDR%:*}/${EKS_FA_ALB_ADDR#*:}; cat >&3; head -1 <&3"

say "make install again: every step finds nothing to change"
make --no-print-directory install "${vars[@]}" 2>&1 \
  | grep -E 'up to date|already|nothing to change|nothing changed|adopt|install took' || true

say "inventory before teardown"
"$bin/eks-testbed" inventory --region "$region"

say "make clean"
make --no-print-directory clean "${vars[@]}"

say "inventory after teardown (the brought network is left, as it should be)"
left=$("$bin/eks-testbed" inventory --region "$region")
echo "$left"
if printf '%s' "$left" | grep -q '"stacks":\[\]' \
  && printf '%s' "$left" | grep -q '"roles":\[\]' \
  && printf '%s' "$left" | grep -q '"oidcProviders":\[\]' \
  && ! printf '%s' "$left" | grep -q 'alb-securitygroup'; then
  say "done in $(( $(date +%s) - started ))s: installed, answered HTTP 200, re-run without change, torn down; no stack, role, OIDC provider or ALB security group left"
else
  echo "demo: something is left: $left" >&2
  exit 1
fi
