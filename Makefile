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
	$(PY) -m pytest

benchmark: setup       ## print training speed figures on this machine
	$(PY) benchmarks/train.py

clean:
	rm -rf $(VENV) runs dist .pytest_cache

.PHONY: student
student: setup         ## write dist/student/: the lessons and the support package, nothing of the instructor's
	$(PY) -m autograder student

.PHONY: lessons
lessons: setup         ## build solutions/ from lessons_src/<id>/<id>.py and regenerate the student notebooks in lessons/ (nbgrader)
	$(PY) -m autograder release
