"""The registry of checks: what a check is, how lessons register theirs, how they are found.

A lesson's public checks register themselves when their module, ``coursekit.checks.<id>_checks``
(``lessons_src/<id>/<id>_checks.py`` or the package ``lessons_src/<id>/<id>_checks/``), is imported;
hidden judges are attached by the grading package through an entry point (``load_hidden``).
"""
from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Sequence

HIDDEN_SUFFIX = "_hidden"
CHECKS_SUFFIX = "_checks"                # lessons_src/<id>/<id>_checks.py: the lesson's public checks
PACKAGE = "coursekit.checks"
_COURSEKIT_DIR = Path(__file__).resolve().parents[1]


def lesson_dirs() -> List[Path]:
    """The lessons' folders of the course checkout this package sits in, ``lessons_src/<id>/``
    (none where the package is installed on its own, as in the student environment)."""
    root = _COURSEKIT_DIR.parent / "lessons_src"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name[:2].isdigit())


def public_check_sources(lessons_src: Path) -> List[Path]:
    """What of ``lessons_src`` ships with coursekit: each lesson's public checks, the module
    ``<id>/<id>_checks.py`` or the package ``<id>/<id>_checks/`` (one file per exercise).

    The one rule for the sandbox's mounts, the student environment and the grader's course
    fingerprint; the folders' other files (solutions, hidden judges, tests) never ship.
    """
    out: List[Path] = []
    for folder in sorted(Path(lessons_src).glob("[0-9]*")):
        for candidate in (folder / f"{folder.name}{CHECKS_SUFFIX}.py", folder / f"{folder.name}{CHECKS_SUFFIX}"):
            if candidate.is_file() or (candidate / "__init__.py").is_file():
                out.append(candidate)
    return out


def source_files(path: Path) -> List[Path]:
    """The .py files of one entry of ``public_check_sources`` (itself, or its package's files)."""
    path = Path(path)
    return [path] if path.is_file() else sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


@contextlib.contextmanager
def quiet():
    """No warnings, and anything written to stderr goes to stdout (stderr zeroes a cell in nbgrader)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(sys.stdout):
            yield


Judge = Callable[[dict, dict], None]

class CheckFailed(AssertionError):
    """A check's verdict: not right yet. The message teaches; Jupyter shows only the message."""

    def _render_traceback_(self):  # IPython calls this instead of printing a traceback
        lines = str(self).splitlines() or [""]
        return [f"\x1b[0;31mCheckFailed\x1b[0m: {lines[0]}"] + lines[1:]


@dataclass
class Check:
    """One registered check (see the module docstring)."""

    id: str
    module: str                      # "01_data": the lesson whose <id>_checks / <id>_judges define it
    collect: Callable[..., dict]
    inputs: Callable[[int], dict]
    seed: int = 0
    title: str = ""
    hints: List[tuple] = field(default_factory=list)   # (regex on an error text, hint)
    judges: List[Judge] = field(default_factory=list)
    hidden_judges: List[Judge] = field(default_factory=list)

    @property
    def hidden(self) -> bool:
        return self.id.endswith(HIDDEN_SUFFIX)

    @property
    def cell(self) -> str:
        """The grade_id of the test cell that runs this check."""
        return self.id[: -len(HIDDEN_SUFFIX)] if self.hidden else self.id


REGISTRY: Dict[str, Check] = {}
_loaded_public = False
_loaded_hidden: Dict[str, bool] = {}


# --- registering checks -------------------------------------------------------------

def _module_of(fn) -> str:
    """The lesson id of the ``<id>_checks`` module that defines ``fn``."""
    for name in fn.__module__.split("."):          # coursekit.checks.<id>_checks[.exercise]
        if name.endswith(CHECKS_SUFFIX) and name[:2].isdigit():
            return name[: -len(CHECKS_SUFFIX)]
    return fn.__module__.rsplit(".", 1)[-1]


def register(check_id: str, *, inputs: Callable[[int], dict], seed: int = 0, title: str = "",
             hints: Sequence[tuple] = ()):
    """Decorator: register ``collect(inputs, *objects) -> dict`` as the collector of ``check_id``.

    inputs: ``inputs(seed) -> dict`` of what the student's code is run on.
    seed: the default seed (``$COURSE_SEED`` overrides it).
    title: what the check verifies, printed when it passes.
    hints: (regex, hint) pairs: when the student's code raises and the error text
        matches regex, the hint is added to the message.
    """
    def deco(collect):
        REGISTRY[check_id] = Check(check_id, _module_of(collect), collect, inputs, seed, title, list(hints))
        return collect
    return deco


def part_of(fn: Judge) -> str:
    """The part of the exercise judge ``fn`` judges on its own ("" for the whole exercise)."""
    return getattr(fn, "part", "")


def judge(*check_ids: str, part: str = ""):
    """Decorator: add ``fn(inputs, found)`` as a public judge of each of ``check_ids`` (in order).

    part: names a part of the exercise that is right or wrong on its own, e.g. "make_criterion"
        beside "make_optimizer". A failing part does not stop the judges of the other parts, the
        student hears of every failing part at once, and the grader gives the cell its points in
        proportion to the parts that pass (see ``running.verdict``). Without ``part`` the judge
        is about the whole exercise: its failure ends the judging, and the cell earns nothing.
    """
    def deco(fn):
        fn.part = part
        for cid in check_ids:
            REGISTRY[cid].judges.append(fn)
        return fn
    return deco


def hidden_judge(*check_ids: str, part: str = ""):
    """Decorator for ``autograder.hidden``: add ``fn(inputs, found)`` as a hidden judge of ``check_ids``
    (``part`` as for ``judge``: a part's hidden judge counts for that part only)."""
    def deco(fn):
        fn.part = part
        for cid in check_ids:
            if not cid.endswith(HIDDEN_SUFFIX):
                raise ValueError(f"hidden judges belong to hidden checks (id ending in {HIDDEN_SUFFIX!r}), not {cid!r}")
            REGISTRY[cid].hidden_judges.append(fn)
        return fn
    return deco


def lesson_checks(lesson_id: str):
    """The module of lesson ``lesson_id``'s public checks (importing it registers them)."""
    return importlib.import_module(f"{PACKAGE}.{lesson_id}{CHECKS_SUFFIX}")


def load_public() -> None:
    """Import every lesson's ``<id>_checks`` module (they register their checks)."""
    global _loaded_public
    if not _loaded_public:
        for info in sorted(pkgutil.iter_modules(importlib.import_module(PACKAGE).__path__), key=lambda m: m.name):
            if info.name.endswith(CHECKS_SUFFIX):
                importlib.import_module(f"{PACKAGE}.{info.name}")
        _loaded_public = True


def get(check_id: str) -> Check:
    """The registered check ``check_id``; CheckFailed if there is none."""
    if check_id not in REGISTRY:
        with quiet():
            load_public()
    if check_id not in REGISTRY:
        raise CheckFailed(f"there is no check called {check_id!r}: is coursekit up to date with the lessons? "
                          f"(run `git pull` and `pip install -e .` in the course folder)")
    return REGISTRY[check_id]


HIDDEN_JUDGES_GROUP = "coursekit.hidden_judges"   # entry points: fn(module) attaches that module's hidden judges


def load_hidden(chk: Check) -> None:
    """Attach the hidden judges of ``chk``'s module, through whatever package registered them.

    coursekit names no grader: a grading package declares an entry point in the group
    ``coursekit.hidden_judges`` (the course's autograder does), and each one is called with the
    check's lesson id ("01_data"). Raises CheckFailed (a clear message) where none is
    installed, as in the student environment.
    """
    if _loaded_hidden.get(chk.module):
        return
    from importlib.metadata import entry_points

    attached, reason = False, "no package that judges them is installed"
    for ep in entry_points(group=HIDDEN_JUDGES_GROUP):
        try:
            ep.load()(chk.module)
            attached = True
        except ImportError as err:
            reason = f"{ep.value}: {err}"
    if not attached:
        raise CheckFailed(
            f"{chk.id} is a hidden check: it is judged by the course's autograder, which is not "
            f"available here ({reason}). It runs when your notebook is graded; nothing to do for you.")
    _loaded_hidden[chk.module] = True
