"""Hidden judges: ``autograder.hidden.lessonN`` attaches judges to the hidden checks
(ids ending in ``_hidden``) that ``coursekit.checks.lessonN`` registers.

They compare the collected data with the reference solution ``mnist_cnn``. The autograder
registers them itself: ``attach`` is its entry point in the group ``coursekit.hidden_judges``
(pyproject.toml), which ``coursekit.checks.load_hidden`` calls only when a hidden check is
judged (while grading, or in the instructor's self-check of a master notebook). coursekit,
which ships to students, never names this package.
"""
from __future__ import annotations

import importlib
import re

_MODULE = re.compile(r"^lesson[0-9]+$")


def attach(module: str) -> None:
    """Import ``autograder.hidden.<module>`` (e.g. "lesson1"): its judges attach to the registry."""
    if not _MODULE.match(module):
        raise ImportError(f"no hidden judges for check module {module!r}")
    importlib.import_module(f"{__name__}.{module}")
