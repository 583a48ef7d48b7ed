# effplan developer entry points. `make lab` and `make test` are the README's quick start:
# both create .venv from nothing, install torch (pinned here, and only here) and then effplan.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The tested torch release. Installed before the package so that pip takes the local CPU build
# instead of resolving an open range to the newest CUDA build.
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.effplan-installed
PYTEST_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: setup lab test report app clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev,report,ray,slurm,actuals,slim]"
	touch $@

# PORT=8899 make lab / make app PORT=9000: the port to serve on (lab: 8888, app: 8866)
lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(if $(PORT),--ServerApp.port=$(PORT) --ServerApp.port_retries=0,)

# the layer contract (.importlinter: layers, no torch in planning, widgets only in ui) first
test: setup
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest $(PYTEST_ARGS)

report: setup
	$(BIN)/python -m effplan.report --params reports.yaml --out reports

# Voila serves the dashboard notebook as an app (no code shown). It has no --allow-root flag:
# unlike JupyterLab it does not refuse to run as root. VOILA_IP=0.0.0.0 to serve other machines.
# The "effplan" template (effplan/jupyter/voila/templates/effplan) is Voila's lab template
# without its Font Awesome style sheets from a CDN: the app makes no request off the machine.
VOILA_IP ?= 127.0.0.1
app: setup
	JUPYTER_PATH=$(CURDIR)/effplan/jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH} \
	$(BIN)/voila notebooks/04_quarterly_what_if.ipynb --template=effplan --no-browser --Voila.ip=$(VOILA_IP) \
		$(if $(PORT),--Voila.port=$(PORT) --Voila.port_retries=0,)

clean:
	rm -rf $(VENV) reports build dist *.egg-info
