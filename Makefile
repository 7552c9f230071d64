# Two commands on a fresh machine: `make demo` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
PY := $(VENV)/bin/python
UV := .tools/bin/uv
# Local runs read .runtime/env; Flyte's local cache stays off (its entries point into /tmp).
RUN := set -a; [ -f .runtime/env ] && . .runtime/env; set +a; export FLYTE_LOCAL_CACHE_ENABLED=false SPARK_LOCAL_IP=127.0.0.1 PYTHONWARNINGS=ignore::DeprecationWarning;

.PHONY: setup up down status demo test lint bench adult simulate mlflow-ui feast-ui monitor promote rollback image register package lineage report clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# The project's packages (income, tasks, ...) are importable from anywhere in the venv, as
# PYTHONPATH=/app does in the image: the `feast` CLI imports feature_repo/, which reads income.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python $(PYTHON)
	$(PY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "income_ml.pth").write_text("$(CURDIR)\n")'
	touch $@

setup: $(VENV)/.synced ## Create the virtualenv from the lock and find (or provision) Java.
	@$(PY) -m income.platform.java >/dev/null

up: setup ## Start Valkey in the background; write .runtime/env.
	@$(PY) -m income.platform.valkey_server up

down: ## Stop the local services.
	@[ -x $(PY) ] && $(PY) -m income.platform.valkey_server down || true

status:
	@$(PY) -m income.platform.valkey_server status

demo: up ## The whole system on synthetic data: features -> training -> batch scoring -> a live prediction -> monitoring.
	@$(RUN) $(VENV)/bin/pyflyte run workflows/feature_pipeline.py feature_pipeline
	@$(RUN) $(VENV)/bin/pyflyte run workflows/training_pipeline.py training_pipeline
	@$(RUN) $(VENV)/bin/pyflyte run workflows/batch_scoring.py batch_scoring
	@$(RUN) $(PY) -m serving.demo
	@$(RUN) $(VENV)/bin/pyflyte run workflows/monitoring.py monitoring
	@$(RUN) $(PY) -m income.summary
	@$(RUN) $(PY) -m income.overview

.PHONY: serve
serve: up ## The online service: POST /predict, GET /health on 127.0.0.1:8000 (INCOME_SERVE_HOST / INCOME_SERVE_PORT), a worker per core.
	@$(RUN) INCOME_SERVE_WORKERS=$${INCOME_SERVE_WORKERS:-$$(nproc)} $(PY) -m serving

test: setup ## Run the test suite (starts its own Valkey; real Spark, Feast, MLflow).
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: up ## Every benchmark at its README size (long: ~75 min; run `make demo` first).
	@$(RUN) $(PY) -m benchmarks.feature_generation --records 1000000 --records 10000000
	@$(RUN) $(PY) -m benchmarks.materialization --users 1000000
	@$(RUN) $(PY) -m benchmarks.training_set --labels 1000000
	@$(RUN) $(PY) -m benchmarks.training_fanout --trials 16
	@$(RUN) $(PY) -m benchmarks.batch_scoring --rows 1000000 --repeat 3
	@$(RUN) $(PY) -m benchmarks.batch_scoring_workflow --users 1000000 --repeat 3
	@$(RUN) $(PY) -m benchmarks.serving --rate 100 --rate 200 --rate 400 --rate 800 --seconds 60
	@$(RUN) $(PY) -m benchmarks.serving --rate 100 --rate 200 --rate 400 --rate 800 --seconds 60 --target feast_serve --feast-workers 2

ADULT_CSV ?= ../shared/data/adult/adult_train.csv
# The real data gets a larger search than the demo's 16 trials (README: Model quality).
ADULT_TRIALS ?= 48
ADULT := $(CURDIR)/.runtime/adult
adult: up ## Features and training (48 trials) on the real UCI Adult CSV, kept apart in .runtime/adult/ and Valkey db 1.
	@$(RUN) export INCOME_RUNTIME=$(ADULT) INCOME_OFFLINE_STORE=$(ADULT)/offline_store VALKEY_DB=1 \
		FEAST_REGISTRY_PATH=$(ADULT)/feast/registry.sqlite MLFLOW_TRACKING_URI=sqlite:///$(ADULT)/mlflow/mlflow.db \
		MLFLOW_ARTIFACTS_DESTINATION=$(ADULT)/mlflow/artifacts; \
	$(PY) -m income.data.adult $(ADULT_CSV) $(ADULT)/adult_batch.parquet && \
	$(VENV)/bin/pyflyte run workflows/feature_pipeline.py feature_pipeline --batch_file $(ADULT)/adult_batch.parquet && \
	$(VENV)/bin/pyflyte run workflows/training_pipeline.py training_pipeline --cfg '{"search": {"n_trials": $(ADULT_TRIALS)}}' && \
	$(PY) -m income.summary

DAYS ?= 90
simulate: up ## DAYS of operation on the synthetic world, drift included: .runtime/reports/timeline.html (its own runtime: .runtime/simulation, Valkey db 2).
	@$(RUN) $(PY) -m workflows.simulate --days $(DAYS)

mlflow-ui: setup ## The MLflow UI on the local tracking store (http://127.0.0.1:5000).
	@$(RUN) $(VENV)/bin/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/.runtime/mlflow/mlflow.db}" \
		--default-artifact-root "$${MLFLOW_ARTIFACTS_DESTINATION:-$(CURDIR)/.runtime/mlflow/artifacts}" \
		--host 127.0.0.1 --port $${MLFLOW_PORT:-5000}

feast-ui: up ## Feast's UI on the registry (http://127.0.0.1:8888); run the feature pipeline first.
	@$(RUN) cd feature_repo && ../$(VENV)/bin/feast ui --host 127.0.0.1 --port $${FEAST_UI_PORT:-8888}

monitor: up ## Drain the prediction log, join outcomes, live metrics and the experiment: .runtime/offline_store/reports/live-metrics.html
	@$(RUN) $(VENV)/bin/pyflyte run workflows/monitoring.py monitoring

# The green button: only when the live experiment says so; FORCE=1 REASON="..." overrides it.
promote: setup ## Promote the challenger to champion (the live analysis must recommend it).
	@$(RUN) $(PY) -m income.monitoring.buttons promote $(if $(FORCE),--force "$(or $(REASON),$(error FORCE=1 needs REASON="why"))")

rollback: setup ## The red button: the previous champion, with the feature service it was trained on.
	@$(RUN) $(PY) -m income.monitoring.buttons rollback

# Flyte cluster or sandbox (README, "Flyte beyond the laptop"). PROFILE: deploy/<name>.env
PROFILE ?= deploy/sandbox.env
IMAGE ?= localhost:30000/income-ml:$(shell git rev-parse --short HEAD)
FLYTE_PROJECT ?= flytesnacks
FLYTE_DOMAIN ?= development

image: ## Build and push the task image (needs a Docker engine).
	docker build -t $(IMAGE) . && docker push $(IMAGE)

# --copy none: the tasks run the code baked into the image of this commit (Dockerfile), on the
# Spark driver and on every executor alike. Fast registration would ship the code to the driver
# only: executors would unpickle functions against the image's older code.
# The profile's Spark sizes (INCOME_SPARK_*) are read while registering: they are part of each
# Spark task's definition (the operator sizes the pods from them); every line also goes to the
# tasks' environment (--env).
SPARK_SIZES = $(shell sed -n 's/^\(INCOME_SPARK_[A-Z0-9_]*=.*\)/\1/p' $(PROFILE))
register: setup ## Register workflows and launch plans with the profile's settings.
	env $(SPARK_SIZES) $(VENV)/bin/pyflyte register workflows --copy none --project $(FLYTE_PROJECT) --domain $(FLYTE_DOMAIN) \
		--image $(IMAGE) --version $(shell git rev-parse --short HEAD) --activate-launchplans \
		$(shell sed -n 's/^\([A-Z_][A-Z0-9_]*\)=\(.*\)/--env \1=\2/p' $(PROFILE))

package: setup ## What `register` would send, as a file (checked offline by tests/test_deployment.py).
	env $(SPARK_SIZES) $(VENV)/bin/pyflyte --pkgs workflows package --image $(IMAGE) --output .runtime/flyte-package.tgz --force

lineage: setup ## Which raw data and which features produced the current champion? (text, and an HTML graph)
	@$(RUN) $(PY) -m income.platform.lineage champion

report: setup ## The overview page: .runtime/offline_store/reports/index.html (pipelines, models, drift, every report).
	@$(RUN) $(PY) -m income.overview

clean: down
	rm -rf .runtime
