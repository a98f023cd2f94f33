"""Grade one (student, lesson) item: prepare, run in the sandbox, judge here, render the feedback.

``grade_task(item)`` is what every grading worker runs, a local process or a Dask worker: the
item carries the notebook's bytes (read by the client, see ``submissions``), and the answer
carries the result and the feedback page back; the client writes both (``engine``). It never
raises for the item's faults: any exception of the grader itself becomes a result with status
``grader_error`` for this item only.

Limits (``lesson_limits``): course.yml's ``budget_s`` is what nbgrader may take for the whole
notebook on 2 idle cores. The sandbox runs torch on one thread, workers share the cores, and a
faulty notebook may need fresh kernels, so the grader allows generously, in CPU time (what the
student's code used, the same on an idle and on a busy machine):

* one cell: ``max(30, 4 × budget_s)`` CPU seconds, then it is interrupted (then killed);
* the whole notebook: ``10 × budget_s + 30`` CPU seconds (01_data: 180 s);
* wall-clock time only as a backstop against cells that wait for nothing: 4 × each of those;
* CPU seconds per process (RLIMIT_CPU): the notebook's + 30; memory: 4 GiB per process;
* all the times are scaled by ``--time-factor``.

A cell that killed the kernel (``os._exit``, a segfault, the memory limit, a cell killed after
a timeout) loses the state of every later cell. The grader then runs the notebook again with
that cell replaced by a comment (at most ``MAX_RERUNS`` more runs, within twice the
notebook's time), and judges the cells after it from that run: the rest of the submission is
still graded where it can be.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional

from .judge import CellVerdict, GraderError, RunInfo, judge_cells
from .plan import LessonPlan, load_plan, neutralized, prepare

MAX_RERUNS = 2
WALL_FACTOR = 4.0       # wall-clock backstops: this many times the CPU limits
# Figures are drawn into the executed notebook (so the feedback shows the student's plots);
# the runner's default, Agg, draws nothing. Costs about 0.3 s per figure.
INLINE_PLOTS = "module://matplotlib_inline.backend_inline"
RESULT_FORMAT = 1


def lesson_limits(budget_s: float, time_factor: float = 1.0):
    from autograder.sandbox import GiB, Limits

    notebook = (10.0 * budget_s + 30.0) * time_factor
    cell = min(notebook, max(30.0, 4.0 * budget_s) * time_factor)
    return Limits(notebook_cpu_seconds=notebook, cell_cpu_seconds=cell, wall_factor=WALL_FACTOR,
                  cpu_seconds=int(notebook) + 30, memory_bytes=4 * GiB, threads=1, interrupt_grace_seconds=5.0)


def item_seed(secret: int, student: str, lesson: str) -> int:
    """The inputs' seed of one student and lesson: derived from the course secret, 31 bits."""
    h = hashlib.sha256(f"{secret}:{student}:{lesson}".encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


def init_worker() -> None:
    """Each worker process: one torch thread (the judges run torch; workers share the cores), and
    what every item needs imported and started in the background while the first one runs: the
    zygote (``autograder.zygote``), torch and the judges, nbconvert for the feedback pages."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import sys
    import threading
    import warnings

    warnings.filterwarnings("ignore")
    sys.modules.setdefault("rfc3987_syntax", None)       # see autograder._driver.warm_up
    from autograder import zygote

    zygote.shared(threads=1, mpl_backend=INLINE_PLOTS)
    threading.Thread(target=_preload, name="preload", daemon=True).start()


def _preload() -> None:
    try:
        import torch

        torch.set_num_threads(1)
        from . import judge  # noqa: F401
        from .report import render_html

        render_html({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, "warm-up")
    except Exception:  # noqa: BLE001  (imported again, with its error, where it is needed)
        pass


def _cell_names(nb: dict) -> Dict[int, str]:
    from .plan import nbgrader_meta

    names = {}
    for i, cell in enumerate(nb["cells"]):
        gid = nbgrader_meta(cell).get("grade_id")
        names[i] = f"cell {i}" + (f" ({gid})" if isinstance(gid, str) else "")
    return names


def _base_result(item: dict, plan: LessonPlan) -> dict:
    return {
        "format": RESULT_FORMAT,
        "student": item["student"], "lesson": item["lesson"],
        "submission": item.get("display_path", str(item["path"])), "layout": item.get("layout"),
        "submitted_at": item.get("submitted_at"),
        "sha256": item.get("sha256"), "seed_id": item["seed_id"], "grader_version": item["grader_version"],
        "status": "graded", "reason": "", "notes": list(item.get("notes", [])),
        "points": 0.0, "max_points": plan.autograded_max, "manual_max_points": plan.manual_max,
        "cells": [], "runs": [], "feedback": None, "seconds": 0.0,
        "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _unsubmitted(plan: LessonPlan, status: str, reason: str) -> List[CellVerdict]:
    return [CellVerdict(c.grade_id, c.kind, c.points, 0.0, status, reason=reason) for c in plan.cells]


def grade_task(item: dict, cancel=None) -> dict:
    """Grade one item (see ``cli.make_items`` and ``submissions.attach``): {"result": ..., "feedback": html}.
    cancel: a ``runner.Cancel`` another thread may set: the sandbox is killed, nothing is run
    again, and the item is a grader error saying why (``remote``: a stopped command, a watchdog)."""
    from . import report

    t0 = time.monotonic()
    timings: dict = {}
    first = _PROCESS["items"] == 0
    data_dir = item.get("data_dir") or _local_data_dir()
    os.environ["MNIST_DATA_DIR"] = str(data_dir)   # hidden judges read the same data
    item = dict(item, data_dir=str(data_dir))
    page = None
    try:
        plan = load_plan(item["lesson"], _solutions(item), validate_checks=False)
        result = _grade(item, plan, timings, cancel)
        result["feedback"] = str(report.feedback_path(Path("."), item["student"], item["lesson"]))
        t = time.monotonic()
        page = report.feedback_page(result, plan, result.pop("_feedback_inputs", None))
        timings["feedback"] = round(time.monotonic() - t, 3)
    except BaseException as err:  # noqa: BLE001  (one broken item must not stop the others)
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise
        result = error_result(item, f"grader error: {type(err).__name__}: {err}", traceback.format_exc())
        try:
            plan = load_plan(item["lesson"], _solutions(item), validate_checks=False)
            result["max_points"] = plan.autograded_max
            result["cells"] = [CellVerdict(c.grade_id, c.kind, c.points, None, "grader_error",
                                           reason=result["reason"][:500]).as_dict() for c in plan.cells]
        except Exception:  # noqa: BLE001
            pass
    result["seconds"] = round(time.monotonic() - t0, 2)
    result["timings"] = {**timings, **_worker_timings(), **result.get("timings", {})}
    if first:
        result["timings"]["worker_age_at_first_item"] = round(
            result["timings"].get("worker_age_at_first_item", 0.0) - result["seconds"], 3)
    return {"result": result, "feedback": page}


_PROCESS = {"items": 0}


def _worker_timings() -> dict:
    """For the benchmark's breakdown: how long this worker had been up at its first item, and how
    long its zygote took to import (once per worker)."""
    from autograder import zygote

    _PROCESS["items"] += 1
    out: dict = {}
    if _PROCESS["items"] == 1:
        out["worker_age_at_first_item"] = _process_age()
    for z in list(zygote._shared.values()):
        if z._ready is not None:
            out["zygote_imports"] = z._ready.get("ready", {}).get("seconds")
            out["zygote_slow_imports"] = z._ready.get("ready", {}).get("slow")
    return out


def _process_age() -> float:
    """Seconds since this process started (/proc/self/stat's start time against /proc/uptime)."""
    try:
        with open("/proc/self/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return round(float(f.read().split()[0]) - start, 3)
    except (OSError, ValueError, IndexError):
        return 0.0


def error_result(item: dict, reason: str, trace: str = "") -> dict:
    """The result of an item the grader could not grade (its own fault, not the student's)."""
    out = {"format": RESULT_FORMAT, "student": item["student"], "lesson": item["lesson"],
           "submission": item.get("display_path"), "sha256": item.get("sha256"), "seed_id": item["seed_id"],
           "grader_version": item["grader_version"], "status": "grader_error", "reason": reason[:2000],
           "points": None, "max_points": None, "cells": [], "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if trace:
        out["traceback"] = trace[-6000:]
    return out


def _solutions(item: dict) -> Path:
    from .plan import default_solutions_dir

    return Path(item["solutions"]) if item.get("solutions") else default_solutions_dir()


def _local_data_dir() -> Path:
    """This machine's MNIST (a Dask worker's own), fetched on first use."""
    from coursekit import fetch as data

    root = data.resolve_root()
    if not (root / "MNIST" / "raw").is_dir() or data.check_files(root):
        data.fetch(root, log=lambda *a, **k: None)
    return root


def _grade(item: dict, plan: LessonPlan, timings: dict, cancel=None) -> dict:
    """Grade one submission: read it, run it in the sandbox (again, past cells that killed the
    kernel, while that can change a grade), judge its checks; the result dict of ``grade_task``."""
    from autograder import submission_file

    result = _base_result(item, plan)
    raw = item.get("notebook")
    nb, problem = (None, "") if raw is None else submission_file.parse_notebook(raw)
    if nb is None:
        if raw is None:
            status = item.get("read_status") or "missing"
            reason = item.get("read_reason") or f"no notebook submitted (expected {item.get('display_path')})"
            result.update(status=status, reason=reason)
        else:
            status, reason = "invalid", f"invalid notebook: {problem}"
            result.update(status="invalid_notebook", reason=reason)
        result["cells"] = [v.as_dict() for v in _unsubmitted(plan, status, reason)]
        result["_feedback_inputs"] = None
        return result

    prepared = prepare(plan, nb)
    result["notes"] += prepared.notes
    seed = int(item["seed"])
    sweep_scratch(Path(item.get("scratch") or tempfile.gettempdir()))
    scratch_root = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-{item['student'][:20]}-{item['lesson']}-",
                                         dir=item.get("scratch")))
    try:
        runs, executed = _run_until_judgeable(item, plan, prepared, seed, scratch_root, result, cancel)
        t = time.monotonic()
        verdicts = judge_cells(plan, runs, seed)
        timings["judge"] = round(time.monotonic() - t, 3)
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)
    for v in verdicts:
        if v.kind == "manual":
            v.answer = prepared.answers.get(v.grade_id)
            if v.answer is None:
                v.reason = "graded by hand; the answer cell is missing from the notebook"
            elif not v.answer:
                v.reason = "graded by hand; not answered"
    first = runs[0].report
    result["status"] = "graded"
    result["reason"] = first.reason[:1000] if first.status == "ok" else f"{first.status}: {first.reason[:1000]}"
    result["isolated"] = all(r.report.isolated for r in runs)
    result["cells"] = [v.as_dict() for v in verdicts]
    result["points"] = float(sum(v.points or 0 for v in verdicts if v.kind == "test"))
    result["_feedback_inputs"] = {"prepared": prepared, "executed": executed, "verdicts": verdicts}
    return result


SCRATCH_PREFIX = "grade-"      # + the grading process's pid: grade-<pid>-<student>-<lesson>-<random>/


def sweep_scratch(parent: Path) -> List[str]:
    """Remove the scratch folders in ``parent`` left by grading processes that are gone (a
    SIGKILLed worker never reaches its ``finally``: its folder holds the student's notebook and the
    inputs' seed); the names of those removed. Folders of live processes, of other users and of
    any other name are left alone."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        parts = entry.name.split("-")
        if not (entry.name.startswith(SCRATCH_PREFIX) and len(parts) > 2 and parts[1].isdigit()):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            os.kill(int(parts[1]), 0)
            continue                              # its process lives (perhaps another user's)
        except ProcessLookupError:
            pass
        except (OSError, OverflowError):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.name)
    return removed


def _run_until_judgeable(item: dict, plan: LessonPlan, prepared, seed: int, scratch_root: Path,
                         result: dict, cancel=None) -> tuple:
    """Run the notebook in the sandbox; while a cell killed the kernel (or timed out) and a later
    graded cell failed for it, run again with the cells that did so neutralized, within twice
    the notebook's time. Returns (runs, the first run's executed notebook or None); each run is
    summarised in ``result["runs"]``. GraderError when a run could not happen as it must."""
    from autograder import runner, sandbox

    limits = lesson_limits(plan.budget_s, float(item.get("time_factor", 1.0)))
    ro = sandbox.runtime_paths(packages=("coursekit",), files=runner._course_files())
    use_bwrap = None if item.get("allow_unsandboxed") else True
    runs: List[RunInfo] = []
    names = _cell_names(prepared.notebook)
    executed = None
    nb_to_run = prepared.notebook
    skipped: Dict[int, str] = {}
    budget_end = time.monotonic() + 2 * limits.wall_seconds
    while True:
        number = len(runs) + 1
        remaining = budget_end - time.monotonic()
        run_limits = limits if number == 1 else replace(
            limits, notebook_cpu_seconds=min(limits.notebook_cpu_seconds, remaining / limits.wall_factor))
        nb_file = scratch_root / f"in{number}" / f"{plan.lesson}.ipynb"
        nb_file.parent.mkdir()
        nb_file.write_text(json.dumps(nb_to_run))
        rep = runner.run_notebook(nb_file, scratch_dir=scratch_root / f"run{number}", limits=run_limits,
                                  env_extra={"COURSE_SEED": str(seed), "MPLBACKEND": INLINE_PLOTS},
                                  data_dir=item.get("data_dir"), readonly_paths=ro, use_bwrap=use_bwrap,
                                  cancel=cancel)
        runs.append(RunInfo(number, rep, prepared.positions, names, dict(skipped)))
        if number == 1 and rep.executed_notebook is not None:
            executed = _load_json(rep.executed_notebook)
        result["runs"].append(_run_summary(number, rep, names, skipped))
        if rep.status == "cancelled":
            raise GraderError(cancel.why if cancel is not None else "the run was cancelled")
        if rep.status in ("missing", "invalid_notebook"):
            raise GraderError(f"the graded notebook could not be run: {rep.reason}")
        if not rep.isolated and not item.get("allow_unsandboxed"):
            raise GraderError("the sandbox is not isolated (bwrap unusable)")
        if number == 1:
            _same_checks(plan, rep.course)
        new = {i: c for i, c in runs[-1].cells().items() if i in runs[-1].state_lost_at() and i not in skipped}
        if not new or len(runs) > MAX_RERUNS or not _worth_rerun(plan, runs[-1], min(new), seed):
            return runs, executed
        if budget_end - time.monotonic() < 0.3 * limits.wall_seconds:
            result["notes"].append("a cell killed the kernel; no time was left to grade the later cells again")
            return runs, executed
        for i, c in new.items():
            skipped[i] = f"{c.status.replace('_', ' ')}: {(c.reason or c.ename or '')[:150]}"
        nb_to_run = neutralized(prepared.notebook, sorted(skipped), skipped)


def _same_checks(plan: LessonPlan, course: Optional[dict]) -> None:
    """GraderError when the sandbox's course (what its driver said before any student code ran)
    lacks a check that the master calls: every student would lose those points for the grader's
    fault (a second checkout, a worker whose packages come from elsewhere)."""
    if not course:
        return                                   # said nothing: an old driver, or it died first
    if "error" in course:
        raise GraderError(f"the sandbox cannot import the course's checks: {course['error']}")
    known = set(course.get("checks") or [])
    missing = [cid for cell in plan.cells for cid in cell.check_ids if cid not in known]
    if missing:
        from autograder import sandbox

        raise GraderError(
            f"the sandbox's course at {course.get('course')} has no check {missing[0]!r}"
            + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
            + f" that the master {plan.master} calls; the grader's course is at {sandbox.course_root()}: "
              "grade with the course that the masters come from (its own .venv, or `pip install -e .` there)")


def _run_summary(number: int, rep, names: dict, skipped: Dict[int, str]) -> dict:
    """One run of the notebook, as the result records it (times, statuses, what was skipped)."""
    return {"run": number, "status": rep.status, "reason": rep.reason[:1000],
            "seconds": rep.seconds, "cpu_seconds": rep.cpu_seconds,
            "isolated": rep.isolated, "warm": rep.warm,
            "attempts": rep.attempts, "warnings": rep.warnings[:5], "timings": rep.timings,
            "cells": [{"index": c.index, "seconds": c.seconds, "cpu_seconds": c.cpu_seconds,
                       "status": c.status} for c in rep.cells],
            "rejected": dict(list(rep.rejected.items())[:20]),
            "skipped_cells": {names[i]: w for i, w in skipped.items()}}


def _worth_rerun(plan: LessonPlan, run: RunInfo, first_loss: int, seed: int) -> bool:
    """Whether a graded cell after ``first_loss`` failed (else a second run changes nothing)."""
    from .judge import judge_cells as _judge

    later = [c for c in plan.cells if c.kind == "test" and run.positions.get(c.grade_id, -1) > first_loss]
    if not later:
        return False
    verdicts = {v.grade_id: v for v in _judge(plan, [run], seed)}
    return any(verdicts[c.grade_id].status != "passed" for c in later)


def _load_json(path: Path) -> Optional[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("cells"), list) else None
    except (OSError, ValueError, RecursionError):
        return None
