"""Fixtures of the lesson tests (tests/lessons/)."""
import os

import pytest

from coursekit import config


def _lessons_with_notebooks():
    from lesson_harness import master

    return [lesson.id for lesson in config.load().lessons if master(lesson.id).is_file()]


def pytest_generate_tests(metafunc):
    """``lesson_id``: every lesson in course.yml that has a master notebook in solutions/."""
    if "lesson_id" in metafunc.fixturenames:
        metafunc.parametrize("lesson_id", _lessons_with_notebooks())


@pytest.fixture(scope="session")
def notebook_env():
    """The environment notebooks run in: the real MNIST verified in the data cache."""
    from coursekit.fetch import DataError, fetch, resolve_root

    try:
        fetch(log=lambda message: None)
    except DataError as err:
        pytest.fail(f"real MNIST unavailable ({err}); run `make data` first", pytrace=False)
    return dict(os.environ, MNIST_DATA_DIR=str(resolve_root()))
