"""Hidden judges: each lesson's ``lessons_src/<id>/<id>_judges.py`` attaches judges to the
hidden checks (ids ending in ``_hidden``) that its ``<id>_checks.py`` registers.

They compare the collected data with the reference solution ``mnist_cnn``. This package's
path includes the lesson folders, so a lesson's judges are the module
``autograder.hidden.<id>_judges``. The autograder registers them itself: ``attach`` is its
entry point in the group ``coursekit.hidden_judges`` (pyproject.toml), which
``coursekit.checks.load_hidden`` calls only when a hidden check is judged (while grading, or
in the instructor's self-check of a master notebook). coursekit, which ships to students,
never names this package.
"""
from __future__ import annotations

import importlib
import re

from coursekit.checks import lesson_dirs

JUDGES_SUFFIX = "_judges"
_LESSON = re.compile(r"^[0-9]{2}_[a-z0-9_]+$")

__path__ += [str(d) for d in lesson_dirs() if str(d) not in __path__]  # noqa: F821 (a package's own)


def attach(lesson_id: str) -> None:
    """Import lesson ``lesson_id``'s ``<id>_judges`` module: its judges attach to the registry."""
    if not _LESSON.match(lesson_id):
        raise ImportError(f"no hidden judges for {lesson_id!r}: not a lesson id")
    importlib.import_module(f"{__name__}.{lesson_id}{JUDGES_SUFFIX}")
