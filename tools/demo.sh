#!/usr/bin/env bash
# make demo: the steps that exist so far, through the same Makefile targets a user runs against
# AWS, on the local test bed (moto on loopback); no AWS account, nothing leaves this machine.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bin=${BIN:-target/debug}
work=$(mktemp -d)
state=$work/state.json
cluster=${CLUSTER:-eks-fargate}
region=${REGION:-us-east-2}

"$bin/eks-testbed" serve > "$work/env.sh" &
testbed=$!
cleanup() { kill "$testbed" 2>/dev/null || true; wait "$testbed" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 600); do [ -s "$work/env.sh" ] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/env.sh"
unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION

say() { printf '\n== %s\n' "$*"; }
say "test bed: moto at $AWS_ENDPOINT_URL; a cluster $cluster made through the AWS API (EKS there reports no VPC or security group)"
"$bin/eks-testbed" seed-cluster --name "$cluster" --region "$region"

say "make sg-create: the ALB security group stack"
make --no-print-directory sg-create STATE="$state" CLUSTER="$cluster" REGION="$region"
say "state document"
cat "$state"

say "make sg-create again: nothing changes"
make --no-print-directory sg-create STATE="$state" CLUSTER="$cluster" REGION="$region"

say "inventory before teardown"
"$bin/eks-testbed" inventory --region "$region"

say "make sg-delete"
make --no-print-directory sg-delete STATE="$state" CLUSTER="$cluster" REGION="$region"

say "inventory after teardown (only the cluster's own security group is left)"
"$bin/eks-testbed" inventory --region "$region"
left=$("$bin/eks-testbed" inventory --region "$region")
if printf '%s' "$left" | grep -q '"stacks":\[\]'; then
  say "done: created, re-run without change, deleted; no stack left"
else
  echo "demo: a stack is left: $left" >&2
  exit 1
fi
