# Two entry points: `make demo` (the main job) and `make test`. Each builds the project-local
# virtual environment first when it is missing or older than requirements.lock / pyproject.toml.
# The environment is exactly requirements.lock (the whole resolved tree, torch and torchaudio
# included), installed with uv, which pip brings into the venv at a pinned version.
# `make lock` refreshes the lock after a dependency changes in pyproject.toml.
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed

.PHONY: demo test venv lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q "uv==$(UV_VERSION)"
	$(UV) pip sync -q --python $(VENV)/bin/python requirements.lock
	$(UV) pip install -q --python $(VENV)/bin/python --no-deps -e .
	$(VENV)/bin/python -m bench.envcheck
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/layerbench run

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

lock:
	test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/python -m pip install -q "uv==$(UV_VERSION)"; }
	$(UV) pip compile -q --universal --python-version 3.10 --extra synth --extra dev \
	    pyproject.toml -o requirements.lock
	@echo "requirements.lock refreshed; run 'make test' to install and test it"

clean:
	rm -rf $(VENV) runs data
