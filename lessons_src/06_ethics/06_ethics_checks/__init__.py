"""Lesson 6 (06_ethics): the public checks of per_class_accuracy, shift and thicken.

Each check: ``*_inputs(seed)`` builds small synthetic inputs (no data files needed), a
collector runs the student's function on them and records plain data, and the judges
below explain what is wrong. The hidden checks (``*_hidden``) reuse these collectors on
other inputs; their judges are in ``lessons_src/06_ethics/06_ethics_judges.py``.

The judges compute the expected values their own way (padding and cropping in NumPy)
and, when a result is wrong, compare it with the results of the usual mistakes
(precision instead of accuracy, wrap-around, swapped axes, averaging instead of a
maximum...) to name the likely one.

One file per exercise: ``per_class`` (a), ``shift`` (b), ``thicken`` (c). Importing this package
registers them all.
"""
from __future__ import annotations

from . import per_class, shift, thicken

__all__ = ["per_class", "shift", "thicken"]   # importing the exercises registers their checks
