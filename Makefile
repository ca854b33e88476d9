# rtmpedge.balancer — every entry point. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
STAGE := scripts/stage.sh
SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help setup test test-quick lint sanity unit integration molecule images \
        lab lab-down lab-scale lab-status bench release clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install the pinned Python requirements into .venv and link the collection
	@scripts/setup-venv.sh

test: setup ## Every test: lint, sanity, unit, package, integration, molecule (what CI runs)
	@scripts/run-stages.sh lint sanity unit package integration molecule

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

lab: ## Run the whole system on a local docker lab (not implemented yet: issue 7)
	@scripts/not-yet.sh lab "issue 7 (make lab)"

lab-down: ## Remove the lab (not implemented yet: issue 7)
	@scripts/not-yet.sh lab-down "issue 7 (make lab)"

lab-scale: ## Add media servers to the lab, N=5 (not implemented yet: issue 7)
	@scripts/not-yet.sh lab-scale "issue 7 (make lab)"

lab-status: ## The balancers' view of the fleet (not implemented yet: issue 7)
	@scripts/not-yet.sh lab-status "issue 7 (make lab)"

bench: ## Benchmarks into docs/benchmarks.md (not implemented yet: issue 8)
	@scripts/not-yet.sh bench "issue 8 (make bench)"

release: ## Build the collection tarball, install it into a clean path, syntax-check site from it
	@$(STAGE) package scripts/package.sh

clean: ## Remove build output (keeps .venv and images)
	rm -rf build tests/output .collections *.tar.gz
