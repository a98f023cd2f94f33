"""The graded checks of the lessons, split into *collect* and *judge*.

A check has an id (the ``grade_id`` of the notebook cell that runs it) and:

- ``inputs(seed) -> dict``: the inputs the student's code is run on, chosen by a seed
  (so a grader can choose them);
- a **collector** ``collect(inputs, *student_objects) -> dict``: runs in the student's
  process, calls the student's function/object on those inputs and returns plain data
  (numbers, strings, NumPy arrays: what ``np.savez`` stores without pickling);
- **judges** ``judge(inputs, found) -> None``: pure functions of the inputs and the
  collected data that raise ``CheckFailed(message)``; the message says what was
  expected, what was found and the likely mistake.

Public checks (collector and judges) live in each lesson's folder, as
``lessons_src/<id>/<id>_checks.py`` (module ``coursekit.checks.<id>_checks``: this package's
path includes the lesson folders next to it; the student environment copies the files in);
they need no reference code. A hidden check has an id ending in ``_hidden``; its collector
is registered here too, but its judges live with the grader (the course's are in
``autograder.hidden.lessonN`` and compare with ``mnist_cnn``); the grader registers them
through an entry point, and they are loaded only when a hidden check is judged.

A notebook's test cell only calls ``check("grade_id", student_function, ...)``:

- normally it collects, judges at once, prints one line when all is well and raises
  ``CheckFailed`` (an ``AssertionError``) whose message is all Jupyter shows;
- with ``$COURSE_COLLECT_DIR`` set (collect mode: the self-check runner, a future
  sandboxed grader) it only saves the collected data to ``<dir>/<id>.npz``.

Nothing here writes to stderr (nbgrader gives zero points to a test cell with stderr output).

The parts: ``registry`` (checks and how they are found), ``collected`` (the plain data),
``running`` (collect, judge, ``check``), ``verdicts`` (helpers for judges); the framework's
shared judges are ``modules`` (layers and networks) and ``training`` (spies on a training loop).
"""
from __future__ import annotations

from .collected import describe, from_npz, kind, save, to_npz_bytes
from .registry import (CHECKS_SUFFIX, HIDDEN_JUDGES_GROUP, HIDDEN_SUFFIX, REGISTRY, Check, CheckFailed, Judge,
                       get, hidden_judge, judge, lesson_checks, part_of, lesson_dirs, load_hidden, load_public,
                       public_check_sources, register, source_files)
from .running import (COLLECT_DIR_ENV, HOW_TO_GO_ON, SEED_ENV, Verdict, attempt, check, collect, doing,
                      judge_data, part_ran, relies_on, seed_of, verdict)
from .verdicts import INT_KINDS, KIND_NAMES, Found, close, fail, fmt_shape, where_differs

# The lessons' check modules are this package's modules: coursekit.checks.01_data_checks ...
__path__ += [str(d) for d in lesson_dirs() if str(d) not in __path__]  # noqa: F821 (a package's own)

__all__ = [
    "COLLECT_DIR_ENV", "HOW_TO_GO_ON", "SEED_ENV", "HIDDEN_SUFFIX", "Check", "CheckFailed", "REGISTRY",
    "register", "judge", "hidden_judge", "load_public", "load_hidden", "get", "kind", "describe",
    "to_npz_bytes", "from_npz", "save", "doing", "seed_of", "collect", "judge_data", "check",
    "Found", "fail", "close", "where_differs", "fmt_shape", "INT_KINDS", "KIND_NAMES", "CHECKS_SUFFIX", "HIDDEN_JUDGES_GROUP",
    "Judge", "Verdict", "verdict", "part_of", "attempt", "part_ran", "relies_on", "lesson_checks", "lesson_dirs", "public_check_sources", "source_files",
]
