# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install into it;
# the install is skipped when pyproject.toml and the constraints have not changed since the last one.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

install: $(STAMP)

# -qq: errors only (no progress, no notices about the machine's package indexes)
PIP := $(VENV)/bin/python -m pip install -qq --disable-pip-version-check -c requirements/constraints.txt

$(STAMP): pyproject.toml requirements/constraints.txt requirements/lmms-eval.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV) || \
		{ rm -rf $(VENV); echo "could not create $(VENV): install Python's venv module (Debian/Ubuntu: apt install python3-venv)"; exit 1; }
	@echo "installing vlm3r and its pinned requirements into $(VENV) (requirements/constraints.txt)"
	$(PIP) -e '.[test,qa3d,app]'
	$(PIP) -r requirements/lmms-eval.txt
	@echo "installing DeepSpeed (optional extra, for the ZeRO-2 test) with one compiled op, its CPU shared-memory"
	@echo "communication (otherwise compiled at its first run, inside the tests: about 30 s); the rest need CUDA"
	DS_BUILD_OPS=0 DS_BUILD_SHM_COMM=1 $(PIP) --no-build-isolation --no-cache-dir deepspeed  # not a cached wheel built without it
	@echo "installing lmms-eval without its own requirements (they pull a CUDA torch and torchvision); the"
	@echo "ones vlm3r's plugin needs are in requirements/lmms-eval.txt, the rest are deliberately absent"
	$(PIP) --no-deps lmms-eval
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vlm3r demo
	@echo "vlm3r is installed in $(VENV): run $(VENV)/bin/vlm3r, or 'source $(VENV)/bin/activate' first"

test: $(STAMP)
	$(VENV)/bin/ruff check --quiet src tests benchmarks
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || echo "note: no chromium and \
	chromium-driver here, so vlm3r app's browser tests (tests/test_app_browser.py) are skipped; .ci/run installs \
	them (apt-get install chromium chromium-driver)"
	$(VENV)/bin/python -m pytest -q --durations=15

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
