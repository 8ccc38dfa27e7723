# eks-fargate-alb: one target per step, each driving one binary on the state file.
# Variables as the seed had them; override on the command line: make sg-create CLUSTER=prod REGION=eu-west-1

CLUSTER      ?= eks-fargate
REGION       ?= us-east-2
STATE        ?= state.json
ALLOWED_CIDR ?= 0.0.0.0/0
# Pod ports the ALB may reach (the Services' target ports; the 2048 app serves on 80).
TARGET_PORTS ?= 80
# Bring your own network instead of the VPC stack (all three, subnets comma separated).
VPC_ID          ?=
PRIVATE_SUBNETS ?=
PUBLIC_SUBNETS  ?=
# Who may reach the cluster's public API endpoint (comma separated; empty: the state's, else 0.0.0.0/0).
PUBLIC_ACCESS_CIDRS ?=
# IAM roles or users that may also reach the cluster and tear it down (space separated ARNs).
ADMINS ?=
# EKS support policy of a new cluster: STANDARD or EXTENDED (empty: the state's, else STANDARD).
SUPPORT_TYPE ?=
# FARGATE_NAMESPACES, the namespaces the Fargate profile selects, is in make/steps.mk
# (eks-cluster's default list).
# The service account irsa makes a role for: the AWS Load Balancer Controller's.
SA_NAMESPACE ?= kube-system
SA_NAME      ?= aws-load-balancer-controller
SA_POLICY    ?= policies/aws-load-balancer-controller.json
# A kubeconfig for the Kubernetes part instead of the cluster's endpoint and an EKS token.
KUBECONFIG_FILE ?=
# Where eks-patch renders the manifests.
OUT          ?= patched
# curl's --connect-to for eks-deploy's HTTP check (HOST:PORT:ADDR:PORT2), e.g. for private DNS.
CONNECT_TO   ?=
# Cargo profile of the binaries: dev (shares target/ with the tests) or release.
PROFILE      ?= dev

CARGO   ?= cargo
# What step targets depend on; `make install BUILD=` runs already-built binaries (the e2e tests).
BUILD   ?= build
BIN     := target/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
# Targets run the steps on a state file that may carry an earlier failure: make stops at the
# first failure itself, so a re-run resumes (see README, "The state document").
STEP     = --state $(STATE) --region $(REGION) --resume
KUBE     = $(if $(KUBECONFIG_FILE),--kubeconfig $(KUBECONFIG_FILE))

.PHONY: help build venv node k8s kubectl test-build test test-all soak lint demo depcheck leftovers install clean gen

help:
	@echo "make demo         the existing steps against the local test bed (no account needed)"
	@echo "make test         the fast tests: unit tests (in-process fakes) and one end-to-end pipe (minutes)"
	@echo "make test-all     every test: also each binary against the test bed, the validators, the kill sweeps (what CI runs)"
	@echo "make soak         the fault runs with SOAK_SEEDS=$(SOAK_SEEDS) and the kill sweeps (longer)"
	@echo "make depcheck     preflight: binaries, identity, IAM permissions, room for a VPC and an EIP (changes nothing)"
	@echo "make install      every step against AWS: cluster, OIDC, IRSA, security group, manifests, deploy"
	@echo "make clean        the teardown, in the exact reverse order, then the leftovers check"
	@echo "make leftovers    list what is still tagged for CLUSTER in REGION (exit 1 if anything is)"
	$(STEP_HELP)
	@echo "make gen          rewrite what is generated from the step registry (cargo xtask gen)"
	@echo "variables: CLUSTER=$(CLUSTER) REGION=$(REGION) STATE=$(STATE) ALLOWED_CIDR='$(ALLOWED_CIDR)'"
	@echo "           SA_NAMESPACE=$(SA_NAMESPACE) SA_NAME=$(SA_NAME) SA_POLICY=$(SA_POLICY) KUBECONFIG_FILE=$(KUBECONFIG_FILE) PROFILE=$(PROFILE)"

build:
	$(CARGO) build --profile $(PROFILE) --bins

venv:
	tools/setup-venv.sh

node:
	tools/setup-node.sh

# The test bed's Kubernetes control plane (kube-apiserver, kube-controller-manager, etcd), built
# from their Go modules once per machine into target/k8s (needs Go; never needed by install).
k8s:
	testbed/k8s/build.sh >/dev/null

# The real kubectl for the tests that run it (tools/kubectl/kubectl).
kubectl:
	tools/setup-kubectl.sh

# The binaries the tests run (the end-to-end tests run every step binary from target/), built
# with the tests' features: `--examples` makes cargo resolve features with the dev-dependencies
# (aws-smithy-mocks and tower-test turn on test features of shared crates), as `cargo test
# --workspace` does, so the tests that follow reuse this build instead of building every crate
# a second time. (`make build` builds the binaries users run, without them.)
test-build:
	$(CARGO) build --workspace --bins --examples

# The fast tier: every unit test (in-process fakes for AWS and Kubernetes, no test bed), then
# the one end-to-end test that runs the whole pipe (install as a shell pipe, HTTP 200, teardown)
# on the test bed.
FAST_PIPE ?= install_as_a_pipe_answers_200_and_teardown_leaves_nothing
test: venv k8s kubectl test-build
	$(CARGO) test --workspace --lib --bins
	$(CARGO) test --workspace --test pipeline -- --exact $(FAST_PIPE)

# Every test (CI runs this): the unit tests, each binary against the test bed, the validators,
# the end-to-end tests, and the kill sweeps and fault runs with one seed.
test-all: venv node k8s kubectl test-build
	$(CARGO) test --workspace

# The longer fault runs: the whole pipeline at 10% and 30% faults with several seeds, and the
# kill sweeps (make test-all runs each with one seed).
SOAK_SEEDS ?= 1,2,3,4,5
soak: venv node k8s test-build
	EKS_FA_FAULT_SEEDS=$(SOAK_SEEDS) $(CARGO) test -p eks-fa-e2e --test faults --test kill_sweep -- --nocapture

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings

demo: build venv k8s
	tools/demo.sh

# The whole pipeline against AWS, and its teardown; each prints the total time as the seed's
# time.sh did, and fails (exit 1) when a step fails or, for clean, when anything is left. A
# failed step leaves the state file with what was made: `make clean` removes it.
install:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory $(STEP_INSTALL_TARGETS) || exit 1; \
	s=$$(( $$(date +%s) - start )); echo "install took $$((s/3600))h:$$((s%3600/60))m:$$((s%60))s"

clean:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory $(STEP_TEARDOWN_TARGETS) || exit 1; \
	$(BIN)/eks-preflight leftovers --region $(REGION) --cluster $(CLUSTER) || exit 1; \
	s=$$(( $$(date +%s) - start )); echo "clean took $$((s/3600))h:$$((s%3600/60))m:$$((s%60))s"

depcheck: $(BUILD)
	$(BIN)/eks-preflight --region $(REGION) --cluster $(CLUSTER)

# After clean: everything still tagged for CLUSTER in REGION (exit 1 if anything is).
leftovers: $(BUILD)
	$(BIN)/eks-preflight leftovers --region $(REGION) --cluster $(CLUSTER)

# The step targets (cluster-create ... delete-deployment, kubeconfig, irsa-list, sg-template),
# STEP_INSTALL_TARGETS, STEP_TEARDOWN_TARGETS and STEP_HELP: generated from the step registry.
include make/steps.mk

# Rewrites make/steps.mk, ci/*.yml and the generated blocks of the docs and main.rs files
# (`cargo xtask check` names the stale ones; `make test` fails on them).
gen:
	$(CARGO) xtask gen
