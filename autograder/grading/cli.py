"""``python -m autograder grade SUBMISSIONS_DIR --out DIR``: grade a class.

    python -m autograder grade SUBMISSIONS_DIR --out DIR [--lesson ID ...] [--jobs N | --scheduler ADDR]
                               [--seed N] [--force] [--time-factor F] [--data-dir DIR] [--solutions DIR]
                               [--scratch DIR] [--late FILE] [--no-progress] [--unsandboxed]
                               [--worker-wait SECONDS]

Finds the submissions (``autograder.grading.discover``), makes one work item per student and
lesson, grades the items on an engine (``engine.LocalEngine``: ``--jobs`` worker processes
here; ``dask_engine.DaskEngine``: the workers of the Dask cluster at ``--scheduler``) with a
progress bar, writing each result as it arrives (``engine.grade``), then rebuilds
``grades.csv`` and ``grades.json`` from the per-item results and prints a students × lessons table.
Late notebooks lose points by the late policy (``late.py``: course.yml's ``late:`` or ``--late FILE``),
computed from the submission times at every run (a late_penalty row in grades.csv).

Exit status: 0 when grading worked (whatever the students scored), 1 when an item could not
be graded (a grader error: see its reason), a student folder was skipped, or the Dask
scheduler went away or kept no worker for ``--worker-wait`` seconds, 2 for a usage error (one line on stderr), 130 (SIGINT) or 143 (SIGTERM)
when interrupted (what was finished is kept; the same command resumes).
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import secrets
import sys
import time
import zipfile
from pathlib import Path
from typing import List, Optional

from . import late, ownership, report, submissions
from .discover import DiscoveryError, discover
from .plan import PlanError, lesson_ids, load_plan
from .worker import RESULT_FORMAT, error_result, item_seed, lesson_limits

PROG = "python -m autograder grade"
SEED_FILE = ".grading_seed"


class UsageError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The class-grading options, added to the ``grade`` subcommand of ``python -m autograder``."""
    g = parser.add_argument_group("grading a class (SUBMISSIONS_DIR --out DIR)")
    g.add_argument("--out", type=Path, help="output folder: grades.csv, grades.json, feedback/, results/")
    g.add_argument("--lesson", action="append", dest="lesson_ids", metavar="ID",
                   help="grade this lesson (repeatable; default: every lesson some student submitted)")
    g.add_argument("--jobs", "-j", type=int, default=None,
                   help="worker processes on this machine (default 1; one per core at most)")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="grade on the workers of this Dask distributed cluster instead (see docs/grading.md)")
    g.add_argument("--worker-wait", type=float, default=None, metavar="SECONDS",
                   help="with --scheduler: stop (resumable) when no worker has been connected this long (default 60)")
    g.add_argument("--seed", type=int, help="the secret the check inputs are drawn from "
                   "(default: <out>/.grading_seed, created on the first run)")
    g.add_argument("--force", action="store_true", help="grade again items that already have a result")
    g.add_argument("--time-factor", type=float, default=1.0,
                   help="scale every time limit (default 1: a cell 4×, a notebook 10× course.yml's budget_s + 30 s)")
    g.add_argument("--data-dir", type=Path, help="MNIST root (default: as `python -m coursekit fetch` finds it)")
    g.add_argument("--solutions", type=Path, help="master notebooks (default: the course's solutions/)")
    g.add_argument("--scratch", type=Path, help="where sandboxes get their scratch folders (default: $TMPDIR)")
    g.add_argument("--late", type=Path, metavar="FILE",
                   help="due dates and the late penalty (YAML: the keys of course.yml's late:, which is the default)")
    g.add_argument("--roster", type=Path, metavar="CSV",
                   help="with a Canvas or Moodle zip: match its files to students by the roster's lms_id (and name)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--unsandboxed", action="store_true",
                   help="grade even if bwrap does not work (student code is then NOT isolated)")


def wants_class_grading(args) -> bool:
    paths = getattr(args, "notebooks", None) or []
    return args.out is not None or (len(paths) == 1 and Path(paths[0]).is_dir())


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    """Entry point from ``autograder.__main__``; returns the exit status."""
    try:
        return _run(args)
    except UsageError as err:
        return _fail(str(err))
    except OSError as err:   # the output folder is not writable, the disk is full, ...
        print(f"{PROG}: grader error: {err}", file=sys.stderr)
        return 1
    finally:   # run as root into the instructor's folder (a hub): the grades are theirs
        out = Path(os.path.abspath(args.out)) if getattr(args, "out", None) else None
        if out is not None and out.parent.is_dir():
            ownership.give_to_owner(out, owner_of=out.parent)


# ------------------------------------------------------------------------------------------
def _secret(out: Path, seed: Optional[int]) -> int:
    if seed is not None:
        return int(seed)
    path = out / SEED_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            raise UsageError(f"{path} is unreadable; restore it (or pass --seed) to grade with the same inputs") from None
    value = secrets.randbits(62)
    with os.fdopen(fd, "w") as f:
        f.write(f"{value}\n")
    return value


def _fingerprint(lesson_plan, extra: str) -> str:
    """The grader version of one lesson: what can change its grades.

    The grading code (autograder/grading, the runner, driver and sandbox), coursekit's check
    framework and the lesson's own check and hidden-judge modules, the master notebook, and
    course.yml's settings (its other lessons and the late policy excluded: penalties are worked out
    at every run). Anything else changed: use --force.
    """
    import yaml
    from coursekit import checks

    from ..runner import DRIVER_FILES
    from .version import REPO

    h = hashlib.sha256(f"format {RESULT_FORMAT}\n{lesson_plan.digest}\n{extra}\n".encode())
    modules = sorted({checks.get(cid).module for c in lesson_plan.cells for cid in c.check_ids})
    files = [*sorted((REPO / "autograder" / "grading").glob("*.py")),
             *(REPO / "autograder" / name for name in ("runner.py", "launch.py", "scratch.py", "submission_file.py",
                                                          "run_report.py", "sandbox.py", "sandbox_limits.py", "sandbox_uids.py",
                                                          "zygote.py", "zygote_process.py", *DRIVER_FILES)),
             *sorted((REPO / "coursekit" / "checks").glob("*.py")),
             *(f for entry in checks.public_check_sources(REPO / "lessons_src") if entry.parent.name in modules
               for f in checks.source_files(entry)),
             *(REPO / "lessons_src" / m / f"{m}_judges.py" for m in modules)]
    for f in files:
        if f.is_file():
            h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes() + b"\0")
    try:
        course = yaml.safe_load((REPO / "course.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        course = {}
    if isinstance(course, dict):
        mine = [x for x in course.get("lessons") or [] if isinstance(x, dict) and x.get("id") == lesson_plan.lesson]
        settings = {k: v for k, v in course.items() if k not in ("lessons", "data", "late")}
        h.update(json.dumps([settings, mine], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _lock(out: Path):
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise UsageError(f"another grading run is using {out}") from None
    return fd


def _unpack_lms_zip(path: Path, args) -> Path:
    """A Canvas or Moodle download, unpacked into ``<out>/submissions/<zip name>/`` (lms_zip);
    prints a line for each file it does not grade. Returns that folder."""
    from . import lms_zip, roster

    people = None
    if args.roster is not None:
        try:
            people = roster.read_roster(args.roster)
        except roster.RosterError as err:
            raise UsageError(str(err)) from None
    dest = Path(args.out).resolve() / "submissions" / path.stem
    try:
        lines = lms_zip.unpack(path, dest, lesson_ids(Path(args.solutions) if args.solutions else None),
                               only=args.lesson_ids or (), roster=people)
    except (lms_zip.IntakeError, PlanError) as err:
        raise UsageError(str(err)) from None
    for line in lines:
        print(line)
    return dest


def _run(args) -> int:
    paths = list(getattr(args, "notebooks", None) or [])
    if args.out is None:
        raise UsageError("--out DIR is required to grade a folder of submissions")
    if len(paths) != 1:
        raise UsageError(f"give one SUBMISSIONS_DIR, not {len(paths)} paths")
    if Path(paths[0]).is_file() and zipfile.is_zipfile(paths[0]):
        paths[0] = _unpack_lms_zip(Path(paths[0]), args)
    elif not Path(paths[0]).is_dir():
        raise UsageError(f"{paths[0]} is not a folder (SUBMISSIONS_DIR: <student>/<lesson>.ipynb, ...) "
                         f"nor a Canvas or Moodle submissions zip")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.jobs is not None and args.scheduler:
        raise UsageError("--jobs is for grading on this machine; with --scheduler the cluster's workers grade")
    if args.worker_wait is not None and not args.scheduler:
        raise UsageError("--worker-wait is for grading on a Dask cluster (--scheduler)")
    if args.worker_wait is not None and not args.worker_wait > 0:
        raise UsageError("--worker-wait must be a positive number of seconds")
    args.jobs = args.jobs or 1
    if not args.time_factor > 0:
        raise UsageError("--time-factor must be positive")
    root = Path(paths[0]).resolve()
    out = Path(args.out).resolve()
    solutions = Path(args.solutions).resolve() if args.solutions else None
    if args.scratch is not None and not Path(args.scratch).is_dir():
        raise UsageError(f"--scratch {args.scratch} is not a folder")
    if solutions is not None and not solutions.is_dir():
        raise UsageError(f"--solutions {solutions} is not a folder")
    try:
        known = lesson_ids(solutions)
        subs, warnings = discover(root, known, only=args.lesson_ids, exclude=[out])
        plans = {lesson: load_plan(lesson, solutions, validate_checks="ids") for lesson in sorted({s.lesson for s in subs})}
        args.late_policy = late.load(args.late, known)
    except (DiscoveryError, PlanError, late.LateError) as err:
        raise UsageError(str(err)) from None
    for lesson, p in plans.items():
        total = p.autograded_max + p.manual_max
        if p.declared_points is not None and abs(total - p.declared_points) > 1e-9:
            warnings.append(f"{lesson}: the master's graded cells total {total:g} points, course.yml says "
                            f"{p.declared_points:g} (grades follow the master)")
    if not subs:
        raise UsageError(f"no submissions found in {root} (expected <student>/<lesson>.ipynb, "
                         f"submitted/<student>/<lesson>/<lesson>.ipynb or an nbgrader inbound/ folder)")
    data_dir = None if args.scheduler else _data_dir(args.data_dir)
    allow_unsandboxed = bool(args.unsandboxed)
    if not allow_unsandboxed and not args.scheduler:
        from autograder import sandbox

        why: List[str] = []
        if not sandbox.bwrap_available(why=why):
            raise UsageError(f"bwrap does not work here ({'; '.join(why)[:200]}); install bubblewrap, "
                             f"or pass --unsandboxed to grade without isolation")
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    try:
        return _grade_all(args, root, out, solutions, subs, warnings, plans, data_dir, allow_unsandboxed)
    finally:
        os.close(lock)


def _data_dir(given: Optional[Path]) -> Optional[str]:
    from coursekit.fetch import resolve_root

    root = Path(given).expanduser().resolve() if given else resolve_root()
    if not (root / "MNIST" / "raw").is_dir():
        raise UsageError(f"MNIST is not in {root}/MNIST/raw: run `python -m coursekit fetch` or pass --data-dir")
    return str(root)


def make_items(args, root: Path, out: Path, solutions: Optional[Path], subs, plans, data_dir: str,
               allow_unsandboxed: bool) -> List[dict]:
    secret = _secret(out, args.seed)
    seed_id = hashlib.sha256(f"grading seed {secret}".encode()).hexdigest()[:12]
    versions = {lesson: _fingerprint(plan, f"time_factor={args.time_factor} unsandboxed={allow_unsandboxed}")
                for lesson, plan in plans.items()}
    items = []
    for s in subs:
        limits = lesson_limits(plans[s.lesson].budget_s, args.time_factor)
        items.append({
            "student": s.student, "lesson": s.lesson, "path": str(s.path), "display_path": s.display(root),
            "layout": s.layout, "submitted_at": s.submitted_at, "notes": [s.note] if s.note else [],
            "sha256": submissions.fingerprint(root, s.path), "seed": item_seed(secret, s.student, s.lesson),
            "seed_id": seed_id, "grader_version": versions[s.lesson],
            "solutions": str(solutions or plans[s.lesson].master.parent.parent),
            "data_dir": data_dir, "time_factor": args.time_factor, "scratch": str(args.scratch) if args.scratch else None,
            "allow_unsandboxed": allow_unsandboxed,
            # a worker stuck longer than both runs' backstops plus judging is stopped (local engine)
            "max_seconds": 2 * limits.wall_seconds + 600})
    return items


def _is_done(item: dict, out: Path) -> bool:
    r = report.load_result(report.result_path(out, item["student"], item["lesson"]))
    return (r is not None and r.get("status") != "grader_error"
            and all(r.get(k) == item[k] for k in ("sha256", "seed_id", "grader_version"))
            and report.feedback_path(out, item["student"], item["lesson"]).is_file())


def _grade_all(args, root, out, solutions, subs, warnings, plans, data_dir, allow_unsandboxed) -> int:
    from .engine import Interrupted, SchedulerLost, grade, on_signals

    items = make_items(args, root, out, solutions, subs, plans, data_dir, allow_unsandboxed)
    todo = [it for it in items if args.force or not _is_done(it, out)]
    cached = len(items) - len(todo)
    students = len({it["student"] for it in items})
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    t0 = time.monotonic()
    interrupted = lost = None
    undo = on_signals()
    engine = None
    try:
        if todo:
            engine = _engine(args, solutions, allow_unsandboxed)
        where = engine.describe() if engine else "nothing to send"
        print(f"grading {len(items)} notebooks ({students} students × {len(plans)} lessons) from {root} "
              f"on {where}" + (f"; {cached} already graded (use --force to grade them again)" if cached else ""),
              flush=True)
        if todo:
            grade(engine, todo, out, root, progress=not args.no_progress and sys.stderr.isatty())
    except Interrupted as sig:
        interrupted = sig.signum
    except SchedulerLost as err:
        lost = str(err)
    finally:
        if engine is not None:
            try:
                engine.close(now=interrupted is not None or lost is not None)
            except Interrupted as sig:
                interrupted = interrupted or sig.signum
        undo()
    if interrupted:
        print("\ninterrupted: the notebooks graded so far are kept; run the same command to finish", file=sys.stderr)
    if lost:
        print(f"{PROG}: {lost}; the notebooks graded so far are kept: run the same command again to finish",
              file=sys.stderr)
    results = []
    for it in items:
        r = report.load_result(report.result_path(out, it["student"], it["lesson"]))
        if r is None:
            if interrupted or lost:
                continue
            r = error_result(it, "grader error: no result was written for this notebook")
        r["submitted_at"] = it["submitted_at"]        # this run's: a resubmission of the same bytes is later
        results.append(r)
    lessons_order = [lesson for lesson in lesson_ids(solutions) if lesson in plans]
    policy = getattr(args, "late_policy", None) or late.NO_POLICY
    unknown = [r for r in results if policy.due_for(r["student"], r["lesson"]) and not r.get("submitted_at")
               and r.get("status") == "graded"]
    if unknown:
        warnings = [*warnings, f"{len(unknown)} notebook(s) carry no submission time (no timestamp.txt): "
                               f"not checked for lateness, e.g. {unknown[0]['student']} {unknown[0]['lesson']}"]
        print(f"warning: {warnings[-1]}", file=sys.stderr)
    report.write_class_files(out, results, lessons_order, warnings=warnings, late=policy)
    print(report.summary_table(results, lessons_order, late=policy))
    errors = [r for r in results if r.get("status") == "grader_error"]
    for r in errors:
        print(f"{r['student']} {r['lesson']}: {r.get('reason', '')}", file=sys.stderr)
    done = len(todo) - sum(1 for it in todo if report.load_result(report.result_path(out, it["student"], it["lesson"]))
                           is None)
    print(f"{done} graded, {cached} unchanged, {len(errors)} grader error(s) in "
          f"{time.monotonic() - t0:.1f} s; wrote {out / 'grades.csv'}, {out / 'grades.json'}, {out / 'feedback'}/")
    if interrupted:
        return 128 + interrupted
    skipped = [w for w in warnings if w.startswith("skipped")]
    return 1 if errors or skipped or lost else 0


def _engine(args, solutions, allow_unsandboxed):
    if args.scheduler:
        from .dask_engine import WORKER_WAIT_SECONDS, DaskEngine, DaskUnusable

        try:
            return DaskEngine(args.scheduler, solutions=solutions, allow_unsandboxed=allow_unsandboxed,
                              worker_wait=args.worker_wait or WORKER_WAIT_SECONDS,
                              warn=lambda text: print(f"warning: {text}", file=sys.stderr))
        except DaskUnusable as err:
            raise UsageError(str(err)) from None
    from .engine import LocalEngine

    return LocalEngine(args.jobs)
