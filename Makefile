# Two commands do everything: `make train` and `make test`. Both create the
# virtual environment in .venv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup data train test benchmark clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -q "torch==2.13.0" -e ".[dev]"
	touch $(STAMP)

data: setup            ## fetch and verify MNIST into the data cache
	$(PY) -m coursekit fetch

train: setup           ## fetch the data, train the reference model, print test accuracy, write plots
	$(PY) -m coursekit fetch
	$(PY) -m mnist_cnn train --out runs/latest

test: setup            ## fetch the data, then run the whole test suite
	$(PY) -m coursekit fetch
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory hub-proxy; \
	else echo "note: no npm, so no JupyterHub proxy: the hub tests are skipped (apt-get install nodejs npm)"; fi
	$(PY) -m pytest

benchmark: setup       ## print training speed figures on this machine
	$(PY) benchmarks/train.py

clean:
	rm -rf $(VENV) runs dist .pytest_cache

.PHONY: student
student: setup         ## write dist/student/: the lessons and the support package, nothing of the instructor's
	$(PY) -m autograder student

.PHONY: hub-proxy hub
hub-proxy: $(VENV)/hub-proxy/node_modules/.bin/configurable-http-proxy   ## JupyterHub's proxy (npm), pinned by its lock file

$(VENV)/hub-proxy/node_modules/.bin/configurable-http-proxy: autograder/hub/proxy/package-lock.json | setup
	mkdir -p $(VENV)/hub-proxy
	cp autograder/hub/proxy/package.json autograder/hub/proxy/package-lock.json $(VENV)/hub-proxy/
	cd $(VENV)/hub-proxy && npm ci --no-audit --no-fund --loglevel=error

hub: setup hub-proxy data  ## as root: the course's JupyterHub on 127.0.0.1:8000 with two students (docs/hub.md)
	$(PY) -m autograder hub --users 2

.PHONY: lessons
lessons: setup         ## build solutions/ from lessons_src/<id>/<id>.py and regenerate the student notebooks in lessons/ (nbgrader)
	$(PY) -m autograder release
