"""Judge what the sandbox collected, in the grader's own process.

Only two things decide points: the master's plan (which checks each graded cell runs, and
its points) and the validated ``.npz`` data the runner copied out of the sandbox. The data
are plain arrays (``np.load(allow_pickle=False)``), so nothing the student's code did to its
own interpreter (monkeypatched numpy or checks, objects with a lying ``__eq__``, rewritten
reports) crosses the boundary: a check passes only when the arrays hold the right values for
the inputs the grader's seed chose. The inputs are rebuilt here from that seed, never from
the seed written in the data.

A test cell earns its points when every check it calls (public and hidden) passes. Where an
exercise has parts judged on their own (``judge(..., part=...)``: make_criterion beside
make_optimizer, a network's layers beside its forward), the cell earns its points in
proportion to the parts that pass every check: the smallest share over its checks. A check without data earns nothing; its reason
comes from the runner's cell results ("cell data_normalize raised NameError: ...", "the
kernel died in cell 16 (data_normalize_answer): ..."). Data a judge cannot digest (crafted
by hand, say) fails with "malformed data"; the grader never crashes on it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .plan import GradedCell, LessonPlan

MESSAGE_CHARS = 4000


class GraderError(Exception):
    """The grader itself is broken (hidden judges missing, ...): not the student's fault."""


@dataclass
class CheckVerdict:
    check_id: str
    passed: bool
    message: str = ""            # the teaching message (what was expected, what was found)
    reason: str = ""             # why no points, short: "wrong answer", "not implemented", ...
    fraction: Optional[float] = None   # share of the points earned (None: 1 if passed, else 0)
    failed_parts: List[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return float(self.fraction) if self.fraction is not None else (1.0 if self.passed else 0.0)

    def as_dict(self) -> dict:
        d = {"id": self.check_id, "passed": self.passed, "message": self.message, "reason": self.reason}
        if self.fraction is not None:
            d["fraction"], d["failed_parts"] = self.fraction, list(self.failed_parts)
        return d


@dataclass
class CellVerdict:
    grade_id: str
    kind: str                    # "test" | "manual"
    max_points: float
    points: Optional[float]      # None: graded by hand (or not graded: grader error)
    status: str                  # passed | failed | manual | missing | invalid | grader_error
    message: str = ""
    reason: str = ""
    checks: List[CheckVerdict] = field(default_factory=list)
    answer: Optional[str] = None  # manual cells: the student's text
    cell_index: Optional[int] = None   # in the graded notebook
    run: Optional[int] = None    # which run (1 = the first) the verdict comes from

    def as_dict(self) -> dict:
        d = {"grade_id": self.grade_id, "kind": self.kind, "points": self.points, "max_points": self.max_points,
             "status": self.status, "message": self.message, "reason": self.reason,
             "checks": [c.as_dict() for c in self.checks]}
        if self.kind == "manual":
            d["answer"] = self.answer
        if self.cell_index is not None:
            d["cell_index"] = self.cell_index
        if self.run is not None:
            d["run"] = self.run
        return d


def _short(text, n: int = MESSAGE_CHARS) -> str:
    text = str(text)
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)          # ANSI colours
    text = "".join(ch for ch in text if ch in "\n\t" or ch >= " ")
    return text if len(text) <= n else text[: n - 1] + "…"


# ------------------------------------------------------------------------------------------
def judge_check(check_id: str, npz_path, seed: int) -> CheckVerdict:
    """Judge one collected file with the inputs of ``seed``; never raises for bad data."""
    from coursekit import checks

    try:
        data = checks.from_npz(npz_path)
    except Exception as err:  # the runner validated it; be safe anyway
        return CheckVerdict(check_id, False, "", f"malformed data: {type(err).__name__}")
    status = data.get("__status__")
    if status not in ("ok", "not_implemented", "error"):
        return CheckVerdict(check_id, False, "", "malformed data: no valid status")
    for key in list(data):   # student-made text (the whole run's, or a part's): keep the judges' regexes fast
        if key.endswith(("__error__", "__where__", "__doing__")):
            data[key] = str(data[key])[:2000]
    data["__seed__"] = int(seed)      # the grader's inputs, whatever the file says
    data["__check__"] = check_id
    try:
        chk = checks.get(check_id)
        if chk.hidden:
            checks.load_hidden(chk)
    except checks.CheckFailed as err:
        raise GraderError(f"cannot judge {check_id}: {str(err).splitlines()[0]}") from None
    fraction, failed_parts = None, []
    try:
        said = checks.verdict(check_id, data)
        message = said.message
        if said.parts and message is not None and said.fraction > 0:
            fraction, failed_parts = said.fraction, [p for p in said.failed if p]
    except checks.CheckFailed as failure:
        message = str(failure)
    except Exception as err:  # crafted data the judges were not written for
        return CheckVerdict(check_id, False, "", f"malformed data ({type(err).__name__} while judging)")
    if message is None:
        return CheckVerdict(check_id, True)
    if status == "not_implemented":
        reason = "not implemented"
    elif status == "error":
        reason = "your code raised " + _short(str(data.get("__error__", "an error")).splitlines()[0]
                                               if str(data.get("__error__", "")).strip() else "an error", 300)
    elif message.startswith("the check could not make sense"):
        reason = "malformed data"
    else:
        reason = "wrong answer" + (" (grader's extra checks)" if check_id.endswith(checks.HIDDEN_SUFFIX) else "")
    if fraction is not None:
        reason += f" in {' and '.join(failed_parts)} (partial credit)"
    return CheckVerdict(check_id, False, _short(message), reason, fraction, failed_parts)


# ------------------------------------------------------------------------------------------
@dataclass
class RunInfo:
    """One sandbox run of the prepared notebook, as the judge needs it."""

    number: int                                 # 1, 2, ...
    report: object                              # autograder.runner.RunReport
    positions: Dict[str, int]                   # grade_id -> cell index
    cell_names: Dict[int, str]                  # index -> "cell 16 (data_normalize_answer)"
    neutralized: Dict[int, str] = field(default_factory=dict)   # index -> why it was not run again

    def cells(self) -> Dict[int, object]:
        return {c.index: c for c in self.report.cells}

    def state_lost_at(self) -> List[int]:
        """Cells after which the kernel's state was gone (it died, or was killed after a timeout)."""
        out = []
        for c in self.report.cells:
            if c.status == "kernel_died" or (c.status == "timeout" and (
                    "kernel was killed" in (c.reason or "") or c.ename == "NotebookTimeout")):
                out.append(c.index)
        return out


def choose_run(runs: List[RunInfo], index: int) -> RunInfo:
    """The first run in which nothing before cell ``index`` lost the kernel's state and the cell ran."""
    for run in runs:
        cell = run.cells().get(index)
        if any(i < index for i in run.state_lost_at()) or (cell is not None and cell.status == "skipped"):
            continue
        return run
    return runs[-1]


def missing_reason(run: RunInfo, index: Optional[int], grade_id: str, check_id: str) -> str:
    """Why ``check_id`` of cell ``grade_id`` has no data in ``run``, from the runner's cell results."""
    report = run.report
    if report.status in ("missing", "invalid_notebook"):
        return report.reason
    cells = run.cells()
    cell = cells.get(index) if index is not None else None
    name = f"cell {grade_id}"
    if cell is None:
        return f"{name} was not run ({report.reason})" if report.reason else f"{name} was not run"
    why = _short(cell.reason or cell.ename or "", 400)
    if cell.status == "error":
        text = f"{name} raised {_short(cell.ename or 'an error', 100)}" + (
            f": {_short(cell.evalue, 300)}" if cell.evalue else "")
    elif cell.status == "kernel_died":
        text = f"the kernel died in {name}: {why}"
    elif cell.status == "timeout":
        text = f"{name} timed out: {why}"
    elif cell.status == "skipped":
        text = f"{name} was not run: {why}"
    else:
        text = f"{name} ran but collected nothing for {check_id} (was check() replaced or skipped?)"
    earlier = [c for c in report.cells if c.index < (index or 0) and c.status != "ok"]
    if earlier and cell.status != "kernel_died":
        e = earlier[-1]
        text += f"; earlier, {run.cell_names.get(e.index, f'cell {e.index}')} {e.status}: {_short(e.reason or e.ename or '', 200)}"
    if run.neutralized:
        skipped = ", ".join(f"{run.cell_names.get(i, f'cell {i}')} ({w})" for i, w in sorted(run.neutralized.items()))
        text += f" [graded in a second run that skipped {skipped}]"
    return text


def judge_cells(plan: LessonPlan, runs: List[RunInfo], seed: int) -> List[CellVerdict]:
    """Verdicts for every graded cell of ``plan`` from the runs of one submission."""
    verdicts: List[CellVerdict] = []
    for cell in plan.cells:
        if cell.kind == "manual":
            verdicts.append(CellVerdict(cell.grade_id, "manual", cell.points, None, "manual",
                                        reason="graded by hand", cell_index=runs[0].positions.get(cell.grade_id)))
            continue
        verdicts.append(_judge_test_cell(cell, runs, seed))
    return verdicts


def _judge_test_cell(cell: GradedCell, runs: List[RunInfo], seed: int) -> CellVerdict:
    index = runs[0].positions.get(cell.grade_id)
    run = choose_run(runs, index) if index is not None else runs[0]
    results: List[CheckVerdict] = []
    for cid in cell.check_ids:
        path = run.report.collected.get(cid)
        if path is None:
            why = missing_reason(run, index, cell.grade_id, cid)
            rejected = [w for name, w in run.report.rejected.items() if name == f"{cid}.npz"]
            if rejected:
                why = f"the collected data was refused: {rejected[0]}"
            results.append(CheckVerdict(cid, False, "", _short(why, 1000)))
        else:
            results.append(judge_check(cid, path, seed))
    failed = [r for r in results if not r.passed]
    share = min((r.share for r in results), default=0.0)
    v = CellVerdict(cell.grade_id, "test", cell.points, round(float(cell.points) * share, 4),
                    "failed" if failed else "passed", cell_index=index, run=run.number, checks=results)
    if failed:
        v.message, v.reason = failed[0].message, failed[0].reason
    return v
