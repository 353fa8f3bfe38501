# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install into it;
# the install is skipped when pyproject.toml and the constraints have not changed since the last one.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

install: $(STAMP)

PIP := $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt

$(STAMP): pyproject.toml requirements/constraints.txt requirements/lmms-eval.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[test]'
	# lmms-eval is an optional extra, installed for the plugin's tests without its CUDA-torch requirements
	$(PIP) --no-deps lmms-eval
	$(PIP) -r requirements/lmms-eval.txt
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vlm3r demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
