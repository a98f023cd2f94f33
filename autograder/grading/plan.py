"""What a lesson grades, read from its MASTER notebook (never from a student's copy).

``load_plan(lesson_id)`` reads ``solutions/<id>/<id>.ipynb`` and returns a ``LessonPlan``:

- the graded cells, in order: autograded test cells (their ``grade_id``, points and the check
  ids their full source calls, hidden checks included) and cells graded by hand (written
  answers: nbgrader ``grade`` + ``solution``);
- the locked cells (given code and test cells), which ``prepare`` copies into the student's
  notebook in place of whatever the student left there, like nbgrader's ``overwrite_cells``.

``prepare(plan, student_notebook)`` builds the notebook that actually runs in the sandbox:
the student's cells, with every locked cell replaced by the master's (restored after the
preceding master cell when the student deleted it), nbgrader metadata the master does not
know stripped, outputs cleared. Solution regions are never copied (a locked cell's
``### BEGIN SOLUTION`` region, if an author ever wrote one, becomes the stub); hidden test
regions are copied, because the sandbox must call the hidden checks to collect their data.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([A-Za-z0-9_]+)["']""")
HIDDEN_REGION = re.compile(r"[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S)
SOLUTION_REGION = re.compile(r"([ \t]*)### BEGIN SOLUTION.*?### END SOLUTION[ \t]*", re.S)
MARK_SCHEME = re.compile(r"[ \t]*=== BEGIN MARK SCHEME ===.*?=== END MARK SCHEME ===[ \t]*\n?", re.S)
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
DEFAULT_BUDGET_S = 60.0          # a lesson that course.yml does not list


class PlanError(Exception):
    """A master notebook that cannot be graded (missing, malformed, checks unknown)."""


@dataclass
class GradedCell:
    grade_id: str
    kind: str                    # "test" (autograded from collected data) | "manual" (by hand)
    points: float
    check_ids: List[str] = field(default_factory=list)   # test cells: in the order they are called
    cell_type: str = "code"


@dataclass
class LessonPlan:
    lesson: str
    master: Path
    cells: List[GradedCell]                      # graded cells, in notebook order
    locked: Dict[str, dict]                      # grade_id -> master cell (given and test cells)
    order: List[str]                             # every grade_id of the master, in order
    solution_ids: List[str]                      # exercise and answer cells (the student's own)
    budget_s: float
    declared_points: Optional[float]             # course.yml's points (None: not listed)
    metadata: dict
    digest: str                                  # sha256 of the master notebook's bytes
    cell_meta: Dict[str, dict] = field(default_factory=dict)   # grade_id -> the master cell's nbgrader metadata
    cell_types: Dict[str, str] = field(default_factory=dict)   # grade_id -> the master cell's type

    @property
    def autograded_max(self) -> float:
        return sum(c.points for c in self.cells if c.kind == "test")

    @property
    def manual_max(self) -> float:
        return sum(c.points for c in self.cells if c.kind == "manual")

    def cell(self, grade_id: str) -> GradedCell:
        return next(c for c in self.cells if c.grade_id == grade_id)


def source_of(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else (src if isinstance(src, str) else "")


def nbgrader_meta(cell: dict) -> dict:
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def strip_solutions(source: str) -> str:
    """Solution regions -> nbgrader's stub (what the released lesson shows)."""
    return SOLUTION_REGION.sub(lambda m: "\n".join(m.group(1) + line for line in CODE_STUB.splitlines()), source)


def released_source(source: str) -> str:
    """What a student may see of a master cell: no hidden tests, no solution, no mark scheme."""
    return MARK_SCHEME.sub("", HIDDEN_REGION.sub("", strip_solutions(source))).rstrip("\n")


# ------------------------------------------------------------------------------------------
def course_lessons() -> Dict[str, object]:
    """course.yml's lessons by id (order kept)."""
    from coursekit import config

    return {lesson.id: lesson for lesson in config.load().lessons}


def default_solutions_dir() -> Path:
    from .version import REPO       # not autograder.release: it imports nbgrader (seconds)

    return REPO / "solutions"


def lesson_ids(solutions_dir: Optional[Path] = None) -> List[str]:
    """Lessons with a master notebook ``<solutions>/<id>/<id>.ipynb``: course.yml's order first."""
    root = Path(solutions_dir or default_solutions_dir())
    known = list(course_lessons())
    have = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / f"{p.name}.ipynb").is_file()) \
        if root.is_dir() else []
    return [i for i in known if i in have] + [i for i in have if i not in known]


def load_plan(lesson_id: str, solutions_dir: Optional[Path] = None, *, validate_checks: bool | str = True) -> LessonPlan:
    """The grading plan of ``lesson_id`` from its master notebook; PlanError if unusable.

    validate_checks: True: every check exists and its hidden judges load; "ids": every check
    exists (no judge imported); False: not checked (the workers, which judge anyway)."""
    root = Path(solutions_dir or default_solutions_dir())
    master = root / lesson_id / f"{lesson_id}.ipynb"
    try:
        raw = master.read_bytes()
        nb = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise PlanError(f"no master notebook {master}") from None
    except (OSError, ValueError) as err:
        raise PlanError(f"cannot read the master notebook {master}: {err}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise PlanError(f"{master} is not a notebook")
    cells: List[GradedCell] = []
    locked: Dict[str, dict] = {}
    order: List[str] = []
    solution_ids: List[str] = []
    cell_meta: Dict[str, dict] = {}
    cell_types: Dict[str, str] = {}
    for i, cell in enumerate(nb["cells"]):
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if not meta or not isinstance(gid, str):
            continue
        if gid in order:
            raise PlanError(f"{master}: grade_id {gid!r} is used twice")
        order.append(gid)
        ctype = cell.get("cell_type", "code")
        cell_meta[gid], cell_types[gid] = meta, ctype
        if meta.get("solution"):
            solution_ids.append(gid)
        if meta.get("grade"):
            try:
                points = float(meta.get("points", 0))
            except (TypeError, ValueError):
                raise PlanError(f"{master}: cell {gid} has points {meta.get('points')!r}") from None
            if ctype == "code" and not meta.get("solution"):
                ids = CHECK_CALL.findall(source_of(cell))
                if not ids:
                    raise PlanError(f"{master}: graded cell {gid} calls no check(); the grader judges only checks")
                cells.append(GradedCell(gid, "test", points, list(dict.fromkeys(ids)), ctype))
            else:
                cells.append(GradedCell(gid, "manual", points, [], ctype))
        if meta.get("locked") and not meta.get("solution"):
            locked[gid] = cell
    lessons = course_lessons()
    info = lessons.get(lesson_id)
    plan = LessonPlan(
        lesson=lesson_id, master=master, cells=cells, locked=locked, order=order, solution_ids=solution_ids,
        budget_s=float(getattr(info, "budget_s", DEFAULT_BUDGET_S)),
        declared_points=float(info.points) if info is not None else None,
        metadata={k: nb.get("metadata", {}).get(k) for k in ("kernelspec", "language_info")
                  if isinstance(nb.get("metadata"), dict) and k in nb["metadata"]},
        digest=hashlib.sha256(raw).hexdigest(), cell_meta=cell_meta, cell_types=cell_types)
    if not cells:
        raise PlanError(f"{master}: no graded cells")
    if validate_checks:
        _validate_checks(plan, hidden=validate_checks != "ids")
    return plan


def _validate_checks(plan: LessonPlan, *, hidden: bool = True) -> None:
    """Every check the master calls exists; with ``hidden``, its hidden judges load too (they
    import the reference, torch: seconds; the grade command leaves that to its workers)."""
    from coursekit import checks

    for cell in plan.cells:
        for cid in cell.check_ids:
            try:
                chk = checks.get(cid)
                if chk.hidden and hidden:
                    checks.load_hidden(chk)
            except checks.CheckFailed as err:
                raise PlanError(f"{plan.master}: cell {cell.grade_id}: {str(err).splitlines()[0]}") from None


# ------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    notebook: dict                       # what runs in the sandbox
    positions: Dict[str, int]            # grade_id -> index in notebook["cells"]
    notes: List[str]                     # what was restored or ignored, for the report
    answers: Dict[str, Optional[str]]    # manual grade_id -> the student's answer text (None: no cell)
    origin: List[str]                    # per prepared cell: "student" | "master"


def _clean_student_cell(cell: dict, keep_meta: Optional[dict]) -> dict:
    ctype = cell.get("cell_type")
    out = {"cell_type": ctype, "metadata": {}, "source": source_of(cell)}
    if keep_meta is not None:
        out["metadata"]["nbgrader"] = copy.deepcopy(keep_meta)
    if ctype == "code":
        out["outputs"], out["execution_count"] = [], None
    elif ctype == "markdown" and isinstance(cell.get("attachments"), dict):
        out["attachments"] = cell["attachments"]
    return out


def _master_cell(plan: LessonPlan, gid: str) -> dict:
    m = plan.locked[gid]
    ctype = m.get("cell_type", "code")
    out = {"cell_type": ctype, "metadata": {"nbgrader": copy.deepcopy(nbgrader_meta(m))},
           "source": strip_solutions(source_of(m))}
    if ctype == "code":
        out["outputs"], out["execution_count"] = [], None
    return out


def _graded_id(plan: LessonPlan, cell: dict, released: Dict[str, str]) -> tuple:
    """(the grade_id of a student's cell or None, whether it was recognized without nbgrader's
    metadata). A tool that strips that metadata (nbstripout, some editors) leaves nbformat's
    cell id, which nbgrader sets to the grade_id; a locked cell is also known by its unchanged
    source. Only a cell with no nbgrader metadata at all is recognized so."""
    meta = nbgrader_meta(cell)
    gid = meta.get("grade_id")
    if meta:
        return (gid if isinstance(gid, str) else None), False
    cid = cell.get("id") if isinstance(cell, dict) else None
    if isinstance(cid, str) and cid in plan.cell_meta and plan.cell_types.get(cid) == cell.get("cell_type"):
        return cid, True
    text = source_of(cell).strip()
    if text and cell.get("cell_type") == "code":
        for gid, src in released.items():
            if src == text:
                return gid, True
    return None, False


def prepare(plan: LessonPlan, student_nb: dict) -> Prepared:
    """The notebook to run: the student's cells with the master's locked cells put back."""
    cells: List[dict] = []
    origin: List[str] = []
    placed: Dict[str, int] = {}
    notes: List[str] = []
    answers: Dict[str, Optional[str]] = {c.grade_id: None for c in plan.cells if c.kind == "manual"}
    solution_ids = set(plan.solution_ids)
    released = {gid: released_source(source_of(m)).strip() for gid, m in plan.locked.items()}
    recognized = 0
    for cell in student_nb.get("cells", []):
        gid, stripped = _graded_id(plan, cell, released)
        recognized += stripped
        if gid in plan.locked and gid not in placed:
            master_cell = _master_cell(plan, gid)
            if source_of(cell).strip() != released_source(source_of(plan.locked[gid])).strip():
                notes.append(f"cell {gid} was edited; the original was restored")
            placed[gid] = len(cells)
            cells.append(master_cell)
            origin.append("master")
            continue
        keep = gid in solution_ids and gid not in placed
        if gid is not None and not keep:
            notes.append(f"a cell with grade_id {gid!r} was graded as ordinary code "
                         f"({'a duplicate' if gid in placed else 'not a graded cell of this lesson'})")
        if keep:
            placed[gid] = len(cells)
            if gid in answers:
                text = source_of(cell)
                answers[gid] = "" if text.strip() in ("", TEXT_STUB) else text[:20000]
        meta = (nbgrader_meta(cell) or plan.cell_meta.get(gid, {})) if keep else None
        cells.append(_clean_student_cell(cell, keep_meta=meta))
        origin.append("student")
    if recognized:
        notes.append(f"{recognized} cell(s) had lost their nbgrader metadata; they were recognized by "
                     "their cell ids or their unchanged code")
    # Locked cells the student deleted (or changed the grade_id of): after the nearest master
    # cell before them that is present, else at the top.
    for pos, gid in enumerate(plan.order):
        if gid not in plan.locked or gid in placed:
            continue
        at = 0
        for prev in reversed(plan.order[:pos]):
            if prev in placed:
                at = placed[prev] + 1
                break
        cells.insert(at, _master_cell(plan, gid))
        origin.insert(at, "master")
        for k, v in placed.items():
            if v >= at:
                placed[k] = v + 1
        placed[gid] = at
        notes.append(f"cell {gid} was missing; it was restored")
    for i, cell in enumerate(cells):
        cell["id"] = f"graded-{i:03d}"
    nb = {"cells": cells, "metadata": copy.deepcopy(plan.metadata) or {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}
    positions = {gid: idx for gid, idx in placed.items()}
    return Prepared(nb, positions, notes, answers, origin)


def neutralized(nb: dict, indices: List[int], why: Dict[int, str]) -> dict:
    """A copy of ``nb`` whose cells ``indices`` do nothing (used to re-run after a cell killed the kernel)."""
    out = copy.deepcopy(nb)
    for i in indices:
        out["cells"][i]["source"] = f"# [grader] not run again: in the first run {why.get(i, 'this cell killed the kernel')}\n"
    return out
