# coreloss: `make demo` runs the main job on the embedded default set, `make test` runs the tests.
# Both create .venv and install everything on a fresh machine (apt packages via scripts/install_system_deps.sh).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg

.PHONY: demo test install clean-demo

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel setuptools
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test,dft]"
	$(BIN)/python -m pip install -q --no-deps zeose
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	bash scripts/demo.sh

clean-demo:
	rm -rf demo_out
