# thinkchain: `make run` starts the app on the embedded model, `make test` runs every test.
# Both work on a fresh machine: they create .venv, install what is missing, fetch the model.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# llama.cpp is built from source.  A -march=native build enables AMX on CPUs that have it,
# and AMX kernels crash in sandboxed VMs that do not grant AMX state; these flags build
# portable AVX2 kernels (plus runtime weight repacking) instead.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

.PHONY: run demo test test-fast lint bench install dev node-clients open-webui model system-deps sandbox-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -e '.[all]'

dev: $(BIN)/python node-clients
	$(BIN)/pip install -e '.[dev]'

# The Node clients the proxy is tested with (tests/proxy/js), from the npm registry, as locked.
JS_CLIENTS := tests/proxy/js
node-clients: $(JS_CLIENTS)/node_modules/.package-lock.json
$(JS_CLIENTS)/node_modules/.package-lock.json: $(JS_CLIENTS)/package.json $(JS_CLIENTS)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: make system-deps installs Node.js and npm"; exit 1; }
	npm ci --prefix $(JS_CLIENTS) --no-audit --no-fund

model: install
	$(BIN)/thinkchain models pull default
	$(BIN)/thinkchain models pull small

# bubblewrap, the code sandbox's isolation (docs/sandbox.md): code steps, on by default for the
# embedded model, run only where it is installed; skipped when present.
sandbox-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q bubblewrap; \
		else sudo apt-get update -q && sudo apt-get install -y -q bubblewrap; fi; }

# Debian packages the browser tests need (Chromium, and a CJK font so Chinese renders as
# glyphs, not boxes), the code sandbox's bubblewrap (docs/sandbox.md) and Node.js with npm (the
# proxy's Node client tests); skipped when present.
SYSTEM_PACKAGES := chromium fonts-noto-cjk bubblewrap nodejs npm
system-deps:
	@{ command -v chromium && dpkg -s fonts-noto-cjk && command -v bwrap && command -v npm; } >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q $(SYSTEM_PACKAGES); \
		else sudo apt-get update -q && sudo apt-get install -y -q $(SYSTEM_PACKAGES); fi; }

# The web page on the embedded default model: http://127.0.0.1:8501 (PORT=... to change).
PORT ?= 8501
run: install sandbox-deps
	$(BIN)/thinkchain models pull default
	$(BIN)/thinkchain ui --port $(PORT)

demo: install
	$(BIN)/thinkchain ask --demo "How many letters r are in the word strawberry?"

# Open WebUI for the proxy's browser test (tests/proxy/test_open_webui.py), in a virtualenv of
# its own: it pins its own FastAPI, openai and more, which must not change the project's.
# torch 2.13.0 first: pip takes that CPU build from this machine's disk (/opt/wheels) rather
# than a CUDA build of several GB. About 3.5 minutes and 2.9 GB, once.
OWUI_VENV ?= .owui-venv
open-webui: $(OWUI_VENV)/bin/open-webui
$(OWUI_VENV)/bin/open-webui:
	$(PYTHON) -m venv $(OWUI_VENV)
	$(OWUI_VENV)/bin/pip install --upgrade pip
	$(OWUI_VENV)/bin/pip install torch==2.13.0 open-webui==0.12.4

test: system-deps dev model open-webui
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=25

test-fast: dev
	$(BIN)/python -m pytest -q -m "not e2e and not browser"

lint: dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: dev model
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache $(JS_CLIENTS)/node_modules $(OWUI_VENV)
