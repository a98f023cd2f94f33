"""Lesson 1 (01_data): the public checks of add_channel, normalize, to_tensors, make_loader.

Each check: ``*_inputs(seed)`` builds small synthetic inputs (no data files needed),
a collector runs the student's function on them and records plain data, and the
judges below explain what is wrong. The hidden checks (``*_hidden``) reuse these
collectors on other inputs; their judges are in ``lessons_src/01_data/01_data_judges.py``.

One file per exercise: ``add_channel`` (a), ``normalize`` (b), ``to_tensors`` (c), ``make_loader`` (d);
``common`` holds the synthetic digits they share. Importing this package registers them all.
"""
from __future__ import annotations

from . import add_channel, make_loader, normalize, to_tensors
from .to_tensors import from_own_pipeline

__all__ = ["add_channel", "make_loader", "normalize", "to_tensors", "from_own_pipeline"]   # importing registers the checks
