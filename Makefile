# The README's two commands: `make demo` (the main job) and `make test` (the default suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
OUT    ?= report

.PHONY: demo test test-all bench lint clean

$(VENV)/.stamp-base: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e ".[test,dev]"
	touch $@ $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(PY) -m sciml report --out $(OUT) --force

# Notebooks run under nbmake at smoke size beside the unit tests.
test: $(VENV)/.stamp-test
	SCIML_SMOKE=1 $(PY) -m pytest -n 2 --dist loadfile --nbmake tests notebooks

test-all: $(VENV)/.stamp-test
	SCIML_SMOKE=1 $(PY) -m pytest -n 2 --dist loadfile --nbmake -m "not gpu" tests notebooks

bench: $(VENV)/.stamp-test
	$(PY) benchmarks/bench_krylov.py

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check sciml tests benchmarks
	$(VENV)/bin/ruff format --check sciml tests benchmarks

clean:
	rm -rf $(VENV) $(OUT)
