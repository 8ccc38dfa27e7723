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
# Namespaces the Fargate profile selects: the cluster's own and the app's (manifests/README.md);
# eks-cluster's default is the same list.
FARGATE_NAMESPACES ?= default kube-system game-2048
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

.PHONY: help build venv node k8s kubectl test soak lint demo depcheck leftovers install clean cluster-create cluster-delete kubeconfig oidc-create oidc-delete irsa-create irsa-delete irsa-list sg-create sg-delete sg-template patch deploy delete-deployment

help:
	@echo "make demo         the existing steps against the local test bed (no account needed)"
	@echo "make test         the whole test suite (makes the Python venv first)"
	@echo "make soak         the fault runs with SOAK_SEEDS=$(SOAK_SEEDS) and the kill sweeps (longer)"
	@echo "make depcheck     preflight: binaries, identity, IAM permissions, room for a VPC and an EIP (changes nothing)"
	@echo "make install      every step against AWS: cluster, OIDC, IRSA, security group, manifests, deploy"
	@echo "make clean        the teardown, in the exact reverse order, then the leftovers check"
	@echo "make leftovers    list what is still tagged for CLUSTER in REGION (exit 1 if anything is)"
	@echo "make cluster-create  VPC stack, IAM roles, the EKS cluster, Fargate profile, CoreDNS on Fargate (cluster-delete)"
	@echo "make kubeconfig   merge the cluster into ~/.kube/config (kubectl then works, no aws CLI needed)"
	@echo "make oidc-create  the IAM OIDC provider of CLUSTER's issuer (oidc-delete removes it)"
	@echo "make irsa-create  the IAM role of SA_NAMESPACE/SA_NAME (irsa-delete, irsa-list)"
	@echo "make patch        render the controller and 2048 manifests into OUT"
	@echo "make deploy       apply them, wait for the ALB and HTTP 200 (delete-deployment removes them)"
	@echo "make sg-create    create/update the ALB security group stack of CLUSTER in REGION"
	@echo "make sg-delete    delete it"
	@echo "make sg-template  print the CloudFormation template"
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

test: venv node k8s kubectl
	$(CARGO) build --bins
	$(CARGO) test --workspace

# The longer fault runs: the whole pipeline at 10% and 30% faults with several seeds, and the
# kill sweeps (make test runs each with one seed).
SOAK_SEEDS ?= 1,2,3,4,5
soak: venv node k8s
	$(CARGO) build --bins
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
	$(MAKE) --no-print-directory cluster-create oidc-create irsa-create sg-create patch deploy || exit 1; \
	s=$$(( $$(date +%s) - start )); echo "install took $$((s/3600))h:$$((s%3600/60))m:$$((s%60))s"

clean:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory delete-deployment sg-delete irsa-delete oidc-delete cluster-delete || exit 1; \
	$(BIN)/eks-preflight leftovers --region $(REGION) --cluster $(CLUSTER) || exit 1; \
	s=$$(( $$(date +%s) - start )); echo "clean took $$((s/3600))h:$$((s%3600/60))m:$$((s%60))s"

depcheck: $(BUILD)
	$(BIN)/eks-preflight --region $(REGION) --cluster $(CLUSTER)

# After clean: everything still tagged for CLUSTER in REGION (exit 1 if anything is).
leftovers: $(BUILD)
	$(BIN)/eks-preflight leftovers --region $(REGION) --cluster $(CLUSTER)

cluster-create: $(BUILD)
	$(BIN)/eks-cluster $(STEP) create --cluster $(CLUSTER) $(foreach n,$(FARGATE_NAMESPACES),--namespace $(n)) $(KUBE) \
	  $(if $(VPC_ID),--vpc-id $(VPC_ID) --private-subnets $(PRIVATE_SUBNETS) $(if $(PUBLIC_SUBNETS),--public-subnets $(PUBLIC_SUBNETS))) \
	  $(if $(PUBLIC_ACCESS_CIDRS),--public-access-cidrs $(PUBLIC_ACCESS_CIDRS)) $(if $(SUPPORT_TYPE),--support-type $(SUPPORT_TYPE)) \
	  $(foreach a,$(ADMINS),--admin $(a))

cluster-delete: $(BUILD)
	$(BIN)/eks-cluster $(STEP) delete --cluster $(CLUSTER)

kubeconfig: $(BUILD)
	$(BIN)/eks-cluster --state $(STATE) --region $(REGION) kubeconfig --cluster $(CLUSTER)

oidc-create: $(BUILD)
	$(BIN)/eks-oidc $(STEP) ensure --cluster $(CLUSTER)

oidc-delete: $(BUILD)
	$(BIN)/eks-oidc $(STEP) delete --cluster $(CLUSTER)

irsa-create: $(BUILD)
	$(BIN)/irsa $(STEP) ensure --cluster $(CLUSTER) --namespace $(SA_NAMESPACE) --sa-name $(SA_NAME) --policy-document $(SA_POLICY) $(KUBE)

irsa-delete: $(BUILD)
	$(BIN)/irsa $(STEP) delete --cluster $(CLUSTER) --namespace $(SA_NAMESPACE) --sa-name $(SA_NAME) $(KUBE)

irsa-list: $(BUILD)
	@$(BIN)/irsa --state $(STATE) --region $(REGION) list --cluster $(CLUSTER)

sg-create: $(BUILD)
	$(BIN)/eks-sg-stack $(STEP) create --cluster $(CLUSTER) $(foreach c,$(ALLOWED_CIDR),--allowed-cidr $(c)) $(foreach p,$(TARGET_PORTS),--target-port $(p))

sg-delete: $(BUILD)
	$(BIN)/eks-sg-stack $(STEP) delete --cluster $(CLUSTER)

patch: $(BUILD)
	$(BIN)/eks-patch $(STEP) --out $(OUT)

deploy: $(BUILD)
	$(BIN)/eks-deploy $(STEP) apply --cluster $(CLUSTER) $(KUBE) $(if $(CONNECT_TO),--connect-to $(CONNECT_TO))

delete-deployment: $(BUILD)
	$(BIN)/eks-deploy $(STEP) delete --cluster $(CLUSTER) $(KUBE)

sg-template: $(BUILD)
	@$(BIN)/eks-sg-stack template $(foreach c,$(ALLOWED_CIDR),--allowed-cidr $(c)) $(foreach p,$(TARGET_PORTS),--target-port $(p))
