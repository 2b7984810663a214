# Two entry points that work on a fresh clone with only python3 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A pinned torch keeps pip on the CPU wheel; an unpinned one resolves to a multi-GB CUDA build.
TORCH  := torch==2.13.0
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)),)
export GRAPHREC_DATA ?= $(SHARED_DATA)
endif

.PHONY: install run test test-all lint bench clean

$(BIN)/graphrec: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e '.[dev,text,dist,ray]'
	touch $@

install: $(BIN)/graphrec

# The flagship flow (graphrec run): two weeks of MovieLens-100k nights through the nightly
# pipeline (ingest, warm-started training, evaluation, gate, publish). Rerunning skips finished nights.
RUN_FROM ?= 1998-03-25
RUN_TO   ?= 1998-04-07
run: install
	$(BIN)/graphrec run --from $(RUN_FROM) --to $(RUN_TO)

test: install
	$(BIN)/ruff check graphrec tests benchmarks
	$(BIN)/python -m pytest -q -m "not slow"

test-all: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check graphrec tests benchmarks pipelines
	$(BIN)/lint-imports --no-logo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
