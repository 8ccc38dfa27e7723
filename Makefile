# eks-fargate-alb: one target per step, each driving one binary on the state file.
# Variables as the seed had them; override on the command line: make sg-create CLUSTER=prod REGION=eu-west-1

CLUSTER      ?= eks-fargate
REGION       ?= us-east-2
STATE        ?= state.json
ALLOWED_CIDR ?= 0.0.0.0/0
# Cargo profile of the binaries: dev (shares target/ with the tests) or release.
PROFILE      ?= dev

CARGO   ?= cargo
BIN     := target/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))
# Targets run the steps on a state file that may carry an earlier failure: make stops at the
# first failure itself, so a re-run resumes (see README, "The state document").
STEP     = --state $(STATE) --region $(REGION) --resume

.PHONY: help build venv test lint fmt demo sg-create sg-delete sg-template

help:
	@echo "make demo         the sg-stack step against a local AWS emulator (no account needed)"
	@echo "make test         the whole test suite (makes the Python venv first)"
	@echo "make sg-create    create/update the ALB security group stack of CLUSTER in REGION"
	@echo "make sg-delete    delete it"
	@echo "make sg-template  print the CloudFormation template"
	@echo "variables: CLUSTER=$(CLUSTER) REGION=$(REGION) STATE=$(STATE) ALLOWED_CIDR='$(ALLOWED_CIDR)' PROFILE=$(PROFILE)"

build:
	$(CARGO) build --profile $(PROFILE) --bins

venv:
	tools/setup-venv.sh

test: venv
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --all-targets -- -D warnings

demo: build venv
	tools/demo.sh

sg-create: build
	$(BIN)/eks-sg-stack $(STEP) create --cluster $(CLUSTER) $(foreach c,$(ALLOWED_CIDR),--allowed-cidr $(c))

sg-delete: build
	$(BIN)/eks-sg-stack $(STEP) delete --cluster $(CLUSTER)

sg-template: build
	@$(BIN)/eks-sg-stack template $(foreach c,$(ALLOWED_CIDR),--allowed-cidr $(c))
