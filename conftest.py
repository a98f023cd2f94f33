"""Shared fixtures of tests/ and of the lessons' own tests (lessons_src/<id>/test_<id>.py).
The real MNIST is fetched by `make test` before pytest runs."""
import sys
from pathlib import Path

import pytest
import torch

from coursekit.fetch import DataError, load_mnist

# The lesson tests' harness (accepts, rejects, notebook_functions), for tests in any folder.
sys.path.insert(0, str(Path(__file__).resolve().parent / "tests" / "lessons"))
# A real JupyterLab in headless Chromium (browser_kit), for tests in any folder.
sys.path.append(str(Path(__file__).resolve().parent / "tests"))   # last: tests/autograder is no package


@pytest.fixture(scope="session")
def mnist_train():
    """The real training split: images (60000, 28, 28) uint8, labels (60000,) int64."""
    return _load("train")


@pytest.fixture(scope="session")
def mnist_test():
    """The real test split: images (10000, 28, 28) uint8, labels (10000,) int64."""
    return _load("test")


def _load(split):
    try:
        return load_mnist(split, log=lambda message: None)
    except DataError as err:
        pytest.fail(f"real MNIST unavailable ({err}); run `make data` first", pytrace=False)


@pytest.fixture(autouse=True)
def _one_thread_per_test():
    """Tests run on 2 shared cores: keep torch to one thread so timings do not thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
