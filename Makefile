# skysort: everyday commands. `make help` lists them; docs/operations.md explains them.
# Run from the project root with the virtual environment active (. .venv/bin/activate).

HOST ?= 127.0.0.1
PORT ?= 4200
API := http://$(HOST):$(PORT)/api

# Offline: no analytics, no telemetry (Prefect, DVC).
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1

# Names come from params.yaml's `schedule` section, the one source (read only when used).
SCHEDULE = $(shell python -c "from skysort.config import load_params; s = load_params().schedule; print(s.deployment, s.work_pool)")
DEPLOYMENT = $(word 1,$(SCHEDULE))
POOL = $(word 2,$(SCHEDULE))
# Commands that talk to the server started by `make server`.
WITH_API = PREFECT_API_URL=$(API)

.DEFAULT_GOAL := help
.PHONY: help install test quick lint docs docs-build run repro server deploy check-deploy worker trigger serve trigger-serve

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## create .venv and install skysort with its dev extras
	python3.11 -m venv .venv && .venv/bin/pip install -e ".[dev]"

test: ## run the full test suite (starts its own Prefect server)
	env -u PREFECT_API_URL python -m pytest -q

quick: ## the quick tier for the edit-test loop: no training, servers or clusters
	env -u PREFECT_API_URL python -m pytest -q -m "not slow"

lint: ## ruff check and ruff format --check (what .ci/run checks too)
	ruff check .
	ruff format --check .

docs: ## serve the documentation site at http://127.0.0.1:8000, rebuilt on every edit
	mkdocs serve

docs-build: ## build the documentation site into site/ as .ci/run does (broken links fail)
	mkdocs build --strict --site-dir site

run: ## run the whole pipeline once, recorded on the server of `make server`
	$(WITH_API) skysort run

repro: ## dvc repro (each stale stage a flow run on the server of `make server`)
	$(WITH_API) dvc repro

server: ## start a Prefect server on 127.0.0.1:4200 (UI at http://127.0.0.1:4200); keep it running
	PREFECT_UI_API_URL=$(API) prefect server start --host $(HOST) --port $(PORT)

deploy: ## write prefect.yaml from params.yaml, create the process work pool, register the deployment
	$(WITH_API) skysort deploy

check-deploy: ## fail if prefect.yaml disagrees with params.yaml
	skysort deploy --check

worker: ## start a process worker that runs the deployment's flow runs; keep it running
	$(WITH_API) prefect worker start --pool $(POOL) --type process

trigger: ## run the deployment now (needs `make worker`) and watch it to the end
	$(WITH_API) prefect deployment run skysort-pipeline/$(DEPLOYMENT) --watch

serve: ## serve the pipeline on its cron schedule from this terminal (no pool, no worker)
	$(WITH_API) skysort serve

trigger-serve: ## run the served deployment now (needs `make serve`) and watch it
	$(WITH_API) prefect deployment run skysort-pipeline/$(DEPLOYMENT)-serve --watch
