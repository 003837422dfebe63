# Two commands do all setup: `make demo` and `make test`. Both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The JupyterLab extension: built into workbench/labextension and linked into the venv's share/jupyter.
EXT := extension
EXT_STAMP := $(VENV)/.labextension
EXT_SOURCES := $(wildcard $(EXT)/src/*.ts $(EXT)/style/*) $(EXT)/package.json $(EXT)/tsconfig.json \
	$(EXT)/webpack.config.js
LABEXTENSIONS := $(VENV)/share/jupyter/labextensions

.PHONY: install demo test test-fast test-extension lab bench clean browser

install: $(STAMP) $(EXT_STAMP)

# The browser tests drive Debian's headless Chromium: installed here when missing and possible (root with
# apt-get); otherwise make stops at once with the command to run.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "The browser tests need Chromium at $(CHROMIUM). Run: sudo apt-get install -y chromium" >&2; exit 1; \
		fi; \
	fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

$(EXT)/node_modules/.package-lock.json: $(EXT)/package-lock.json $(EXT)/package.json
	cd $(EXT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(EXT_STAMP): $(STAMP) $(EXT)/node_modules/.package-lock.json $(EXT_SOURCES)
	cd $(EXT) && PATH="$(CURDIR)/$(BIN):$$PATH" npm run --silent build:prod
	mkdir -p $(LABEXTENSIONS)
	if [ -d $(LABEXTENSIONS)/workbench-jupyterlab ] && [ ! -L $(LABEXTENSIONS)/workbench-jupyterlab ]; then \
		rm -rf $(LABEXTENSIONS)/workbench-jupyterlab; fi
	ln -sfn "$(CURDIR)/workbench/labextension" $(LABEXTENSIONS)/workbench-jupyterlab
	touch $(EXT_STAMP)

demo: install
	$(BIN)/python notebooks/run.py notebooks/quickstart.ipynb

test: install browser
	cd $(EXT) && npm run --silent lint:check && npx --no-install jest --silent
	$(BIN)/python -m pytest --doctest-modules workbench
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbval-lax notebooks -p no:cacheprovider

# The quick loop: every test that starts no kernel, no browser and nothing slow (Ray, servers,
# training, many subprocesses); markers in pyproject.toml.
test-fast: install
	$(BIN)/python -m pytest -m "not kernel and not browser and not slow" tests

lab: install
	$(BIN)/jupyter lab notebooks

test-extension: install browser
	cd $(EXT) && npm run --silent lint:check && npx --no-install jest
	$(BIN)/python -m pytest tests/extension

bench: install
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV)
