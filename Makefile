# Two commands do all the set-up: `make run` (the job on the embedded demo cloud) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/.dagster
DB      = $(or $(BACKUPS_DB),data/backups.duckdb)
REPORTS = $(or $(BACKUPS_REPORTS_DIR),reports)

.PHONY: install run test test-slow dev sql bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# A short log that ends with the outcome or its cause; RUN_ARGS=-v shows Dagster's full log.
run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	@PYTHONWARNINGS=ignore $(BIN)/python -m pipeline.run $(RUN_ARGS)

# Every test but those marked slow (CLI runs, the wheel, the UI, killed processes), which CI adds.
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The UI, the daemon (schedule, run queue, pools) and the code location, on loopback only.
DEV_PORT ?= 3000
dev: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DEV_PORT)

# A read-only SQL shell on the warehouse; one query and exit: make sql Q="SELECT count(*) FROM backups".
sql: $(STAMP)
	$(BIN)/python -m pipeline.warehouse.shell --db "$(DB)" $(if $(Q),--command "$$Q")

# Fleet-scale benchmarks (about 45 minutes on 2 cores), each figure beside its bound; the tables land in
# BENCHMARKS.md. A part only: make bench BENCH_ARGS="job --runs 1" (fetch, load, reports, job, latency, clouds).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	$(BIN)/python -m bench --profile --write BENCHMARKS.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .dagster .pytest_cache .hypothesis .tmp-bench
