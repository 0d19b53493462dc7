# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install, resolve the weights, serve the Gradio demo
#   make test   - create .venv, install, run the whole test suite (slow tier where its inputs exist)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench browser clean-venv

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) app.py

test: $(STAMP) browser
	$(PY) -m pytest

# Debian's Chromium for the browser tests (they skip with the reason where it cannot be installed).
browser:
	command -v chromium >/dev/null || (apt-get install -y -q chromium >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) || \
		echo "chromium could not be installed: browser tests will skip"

bench: $(STAMP)
	$(PY) benchmarks/bench_vgg.py

clean-venv:
	rm -rf $(VENV)
