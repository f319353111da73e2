# Two commands do everything on a fresh Debian machine (see README "Quick start").
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 7860
ARGS ?=

.PHONY: run test setup lint bench

setup:
	@scripts/setup.sh

run: setup
	$(PY) app.py --host $(HOST) --port $(PORT) $(ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 $(PY) -m pytest $(ARGS)

bench: setup
	$(PY) bench/engine.py
