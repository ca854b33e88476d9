# rtmpedge.balancer — every entry point. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
STAGE := scripts/stage.sh
SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help setup test test-quick lint sanity unit integration molecule images \
        lab lab-down lab-scale lab-status bench release awx-check clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install the pinned Python requirements into .venv and link the collection
	@scripts/setup-venv.sh

test: setup ## Every test: lint, sanity, unit, package beside integration, molecule, lab (what CI runs)
	@scripts/run-stages.sh --beside "lint sanity unit package" integration molecule lab

test-quick: setup ## lint, sanity, unit and package; no containers
	@scripts/run-stages.sh lint sanity unit package

lint: setup ## yamllint, ansible-lint (production profile), ruff
	@$(STAGE) lint scripts/lint.sh

sanity: setup ## ansible-test sanity on a copy laid out as ansible_collections/rtmpedge/balancer
	@$(STAGE) sanity scripts/sanity.sh

unit: setup ## pytest tests/unit
	@$(STAGE) unit scripts/unit.sh

integration: setup ## pytest tests/integration: inventory plugin vs dnsmasq, moto, HTTP, Docker
	@$(STAGE) integration scripts/integration.sh

molecule: setup ## every molecule scenario (starts docker and builds images when needed)
	@$(STAGE) molecule scripts/molecule.sh $(SCENARIOS)

images: ## Rebuild the local container images (Debian bases and test peers)
	@scripts/images.sh --force all

CLOUD ?=
lab: setup ## The whole system on a local docker lab: 2 balancers, 3 media servers, a publisher (docs/lab.md); CLOUD=aws: an elastic fleet on a local AWS (docs/scaling.md)
	@CLOUD=$(CLOUD) $(VENV)/bin/python scripts/lab.py up

lab-down: setup ## Remove the lab's containers and networks
	@$(VENV)/bin/python scripts/lab.py down

N ?= 5
lab-scale: setup ## Scale the lab's media servers to N (default 5); the reconcile job follows without a reload
	@$(VENV)/bin/python scripts/lab.py scale $(N)

lab-status: setup ## Each balancer's view of the fleet: state, sessions, weight per server
	@$(VENV)/bin/python scripts/lab.py status

bench: setup ## Benchmarks on the lab into docs/benchmarks.md and bench/results.json (BENCH_QUICK=1: ~5 min, into build/bench/)
	@scripts/bench.sh

release: setup ## CHANGELOG.rst, tarball, install into a clean path, syntax-check, ansible-doc, EE context (build/release)
	@$(STAGE) package scripts/package.sh

awx-check: setup ## Build the execution environment and run the project as AWX does: inventory update, site.yml, drain (docs/awx.md)
	@$(STAGE) awx scripts/awx-check.sh

clean: ## Remove build output (keeps .venv and images)
	rm -rf build tests/output .collections *.tar.gz
