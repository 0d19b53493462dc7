# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install, resolve the weights, serve the Gradio demo
#   make test   - create .venv, install, run the whole test suite (slow tier where its inputs exist)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean-venv

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) app.py

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_vgg.py

clean-venv:
	rm -rf $(VENV)
