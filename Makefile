# Operator and developer entry points. Everything runs from the project's own .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FP := $(BIN)/fp
ENV ?= local_parity
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# checkov pins boto3/botocore/packaging far below the project's pins (pip cannot install both),
# so the scanner gets its own virtualenv; stacks/checkov_scan.py calls its binary.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_VERSION := 3.3.30

.PHONY: help setup browser drills checkov-venv lint handles-lint synth test test-fast demo bench dev-min-up dev-min-run dev-min-down clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup: $(BIN)/python browser ## create .venv and install the project with its pinned dependencies
	$(BIN)/pip install --quiet -e ".[dev]"

# The HTML run report is tested in a real headless Chromium (tests/runtime/obs/test_report_html.py):
# Debian's package, installed only when no chromium is on PATH and only where apt-get and root exist.
browser: ## headless Chromium for the HTML report test (Debian's package; needs root and apt-get)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo "chromium: $$(command -v chromium || command -v chromium-browser)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "chromium is missing and this machine has no apt-get: install Chromium yourself (the HTML report test is skipped outside CI)"; \
	elif [ "$$(id -u)" != "0" ]; then \
		echo "chromium is missing: run 'sudo apt-get install -y chromium' (make setup does it only as root; the HTML report test is skipped outside CI)"; \
	else \
		(apt-get install -y --no-install-recommends chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)) >/dev/null \
			&& echo "chromium installed: $$(command -v chromium)"; \
	fi

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

checkov-venv: $(CHECKOV) ## the checkov scanner in its own venv (its pins conflict with the project's)

synth: ## synthesise every stack into cdktn.out/ (Terraform JSON)
	$(FP) stacks synth

lint: ## ruff + mypy
	$(BIN)/ruff check runtime controller stacks tests benchmarks
	$(BIN)/mypy

handles-lint: ## registry schema, required keys, literal resource names, synthesised names
	$(FP) handles lint

test: lint handles-lint $(CHECKOV) ## lint, handles lint and the whole test suite (what CI runs)
	$(BIN)/pytest -q

test-fast: $(CHECKOV) ## the test suite without the slow end-to-end runs
	$(BIN)/pytest -q -m "not slow"

demo: ## up (P(-1), P0), the whole spine P1..P11 at Gate-200 to Spine Green, down (P12), validate and print the evidence bundle
	$(BIN)/python -m controller.demo --env $(ENV)

drills: ## the full-size failure drills (make test runs them scaled down): RTDL, decision-lane and case plane kill drills over 20k events, RTDL outage drill (Postgres and bus down 10 s each), degrade drill
	FP_DRILL_RTDL_KILLS=20 FP_DRILL_RTDL_GATE=5000 $(BIN)/pytest -q -s tests/e2e/test_rtdl_kill_drill.py
	FP_DRILL_RTDL_OUTAGE_GATE=5000 FP_DRILL_OUTAGE_S=10 $(BIN)/pytest -q -s --timeout 1800 tests/e2e/test_rtdl_outage_drill.py
	FP_DRILL_DECISION_KILLS=10 FP_DRILL_DECISION_GATE=5000 $(BIN)/pytest -q -s tests/e2e/test_decision_kill_drill.py
	FP_DRILL_DEGRADE_GATE=5000 $(BIN)/pytest -q -s tests/e2e/test_decision_degrade_drill.py
	FP_DRILL_CASE_KILLS=20 FP_DRILL_CASE_GATE=5000 $(BIN)/pytest -q -s tests/e2e/test_case_kill_drill.py

bench: ## benchmarks (not part of make test)
	$(BIN)/python -m benchmarks

dev-min-up: ## P0: bring the substrate up and prove it (ENV=local_parity|dev_min)
	$(FP) dev-min-up --env $(ENV)

dev-min-run: ## P1..P11 on the active run
	$(FP) dev-min-run --env $(ENV)

dev-min-down: ## P12: tear down and prove it
	$(FP) dev-min-down --env $(ENV)

clean: ## remove caches (keeps runs/ and .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache cdktn.out
