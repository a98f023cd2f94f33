"""``python -m autograder gradebook GRADES_DIR --course COURSE_DIR``: the trusted grades in nbgrader.

Puts the grades of ``python -m autograder grade`` into an nbgrader course folder, so that the
written answers can be graded by hand in formgrader and nbgrader's own ``generate_feedback``
and ``export`` work on the result. Nothing a student wrote is executed here.

``import_to_gradebook(grades_dir, course_dir)`` builds (or updates) the course folder::

    COURSE_DIR/nbgrader_config.py               the instructor's nbgrader settings: written once, where missing;
                                                it loads the next file
    COURSE_DIR/autograder_config.py             ours, rewritten by every import: the two settings below
    COURSE_DIR/.autograder_imported.json        what was imported: the next import skips what did not change
    COURSE_DIR/gradebook.db                     nbgrader's gradebook
    COURSE_DIR/source/<lesson>/                 the master notebooks (solutions/), generate_assignment
    COURSE_DIR/submitted/<student>/<lesson>/    the notebook each result was graded from (sha256 checked)
    COURSE_DIR/autograded/<student>/<lesson>/   written by nbgrader's autograde

and runs nbgrader's ``autograde`` for every graded notebook with ``Execute`` replaced by
``InjectVerdicts`` in ``Autograde.autograde_preprocessors``. nbgrader still sanitizes the
submission as usual (outputs cleared, locked cells and points restored from the gradebook,
deleted test cells put back), then ``InjectVerdicts`` gives every autograded test cell the
output of OUR verdict, read from ``GRADES_DIR/results/<student>/<lesson>.json``:

* passed: a stdout stream ``✔ passed`` (nbgrader: full points);
* failed: an ``error`` output, ename = the reason (``wrong answer``, ``not implemented``, ...),
  evalue = the check's teaching message (nbgrader: 0 points);
* partly passed (an exercise whose independent parts pass in part): an ``execute_result``
  holding the points (nbgrader's partial credit).

nbgrader's ``SaveAutoGrades`` then records exactly our scores; written answers (markdown
solution cells) are left for grading by hand, as nbgrader does (an untouched answer gets 0
automatically). Other code cells get no outputs: the sandboxed run's outputs are not kept
(only the feedback HTML shows them). After each notebook the gradebook is read back and
compared with the result, cell by cell.

The config (``autograder_config.py``, loaded by the course's ``nbgrader_config.py``) keeps this replacement, so
``nbgrader autograde`` (or formgrader's autograde button) in that folder injects the verdicts
too, and never runs student code.
"""
from __future__ import annotations

import functools
import hashlib
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from traitlets import Unicode

from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.preprocessors import NbGraderPreprocessor

from . import late, ownership, report

PROG = "python -m autograder gradebook"
PASSED = "\u2714 passed"


class GradebookError(Exception):
    """The grades cannot be imported (a usage error: no results, no master notebook, ...)."""


class Skip(Exception):
    """This notebook is not imported, for a reason that is not an error."""


# ------------------------------------------------------------------------------------------
# The preprocessor
# ------------------------------------------------------------------------------------------
class InjectVerdicts(NbGraderPreprocessor):
    """In place of nbgrader's ``Execute``: test-cell outputs from the trusted grader's verdicts.

    Executes nothing. Raises (nbgrader then reports the notebook as failed) when there is no
    usable result for the student and lesson, when the result was graded from another
    notebook than the one in ``submitted/``, or when its graded cells are not the gradebook's.
    """

    results_dir = Unicode("", help="The grade command's --out folder (its results/<student>/<lesson>.json)."
                          ).tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        student, lesson, notebook = info["student"], info["assignment"], info["notebook"]
        if not self.results_dir:
            raise ValueError("InjectVerdicts.results_dir is not set (the grade command's --out folder)")
        path = report.result_path(Path(self.results_dir), student, lesson)
        result = report.load_result(path)
        if result is None:
            raise ValueError(f"no result {path}: grade this notebook with `python -m autograder grade` first")
        if result.get("status") not in IMPORTED_STATUSES:
            raise ValueError(f"{path}: status {result.get('status')!r}, not graded ({result.get('reason', '')[:200]})")
        if notebook != lesson:
            raise ValueError(f"{notebook}.ipynb: the grader grades one notebook per lesson, {lesson}.ipynb")
        self._check_submission(result, student, lesson, notebook)
        verdicts = {c["grade_id"]: c for c in result["cells"]}
        seen = set()
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            gid = meta.get("grade_id")
            if not meta.get("grade") or not isinstance(gid, str):
                continue
            v = verdicts.get(gid)
            if v is None:
                raise ValueError(f"{path} has no verdict for graded cell {gid}: grade again (--force)")
            if abs(float(v["max_points"]) - float(meta.get("points", 0))) > 1e-9:
                raise ValueError(f"{gid} is worth {meta.get('points')} points in the gradebook but "
                                 f"{v['max_points']} in {path}: grade again (--force) with this master")
            seen.add(gid)
            if cell.cell_type == "code" and v.get("kind") == "test":
                cell.outputs = verdict_outputs(v)
                cell.execution_count = None
        missing = [gid for gid, v in verdicts.items() if v.get("kind") == "test" and gid not in seen]
        if missing:
            raise ValueError(f"graded cells {', '.join(missing)} of {path} are not graded cells of the gradebook's "
                             f"{lesson}: the master changed since grading; grade again (--force)")
        return nb, resources

    def _check_submission(self, result: dict, student: str, lesson: str, notebook: str) -> None:
        from nbgrader.coursedir import CourseDirectory

        coursedir = CourseDirectory(config=self.config)
        submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, lesson)) / f"{notebook}.ipynb"
        if result.get("status") == "graded" and result.get("sha256") and sha256_of(submitted) != result["sha256"]:
            raise ValueError(f"{submitted} is not the notebook that was graded (sha256 differs): "
                             f"grade it with `python -m autograder grade` first")


class PrepareAsGraded(NbGraderPreprocessor):
    """First of the sanitize steps: the notebook becomes the one the grader ran (``importable``).

    nbgrader's own checks refuse what a student can do to a notebook and the grader grades
    anyway: a deleted or moved test cell ("Inconsistent checksums"), a repeated or made-up
    graded cell, a cell without ``execution_count``. In memory (the submitted file is left as it
    is), the student's cells are kept with the master's locked cells put back, as ``plan.prepare``
    does for the sandboxed run, so the gradebook holds the grader's verdicts for every notebook.
    """

    results_dir = Unicode("", help="The grade command's --out folder (its results/<student>/<lesson>.json)."
                          ).tag(config=True)

    def preprocess(self, nb, resources):
        import json

        import nbformat
        from nbgrader.coursedir import CourseDirectory

        from . import plan as plans

        info = resources["nbgrader"]
        student, lesson = info["student"], info["assignment"]
        result = report.load_result(report.result_path(Path(self.results_dir), student, lesson)) or {}
        coursedir = CourseDirectory(config=self.config)
        plan = plans.load_plan(lesson, Path(coursedir.root) / coursedir.source_directory, validate_checks=False)
        prepared = importable(plan, result, json.loads(json.dumps(nb)))     # a plain copy of the student's
        return nbformat.from_dict(prepared), resources


class CoursePenalty(LateSubmissionPlugin):
    """nbgrader's late-penalty plugin with the grade command's late policy (``late.py``: zero or
    points per started hour, capped, after a grace period), read from ``GRADES_DIR/grades.json``.
    nbgrader gives it the seconds late after the due date and the student's extension, which the
    import put into the gradebook; set in the course config only while that policy takes points."""

    grades_dir = Unicode("", help="The grade command's --out folder (its grades.json holds the late policy)."
                         ).tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        policy = late.recorded(Path(self.grades_dir))[0]
        return policy.penalty(float(total_seconds_late or 0), float(score or 0))


# Imported: graded notebooks, and as zero-point submissions whose feedback gives the reason,
# missing and unreadable ones (so formgrader's statistics count them, as grades.csv does).
IMPORTED_STATUSES = ("graded", "missing", "invalid_notebook", "refused")


def importable(plan, r: dict, student_nb: dict) -> dict:
    """The notebook nbgrader imports for the result ``r``: the one the grader ran (``plan.prepare``:
    the student's cells, with the master's locked cells put back where they were deleted, edited
    or repeated), so that nbgrader's own checks never refuse what the grader graded (a deleted or
    duplicated test cell, a missing execution_count); its solution cells carry the master's
    nbgrader metadata. ``student_nb``: the graded notebook, or for a missing or unreadable one the
    released lesson, unanswered."""
    import copy

    from . import plan as plans

    prepared = plans.prepare(plan, student_nb).notebook
    master = {plans.nbgrader_meta(c).get("grade_id"): plans.nbgrader_meta(c)
              for c in _master_cells(plan.master)}
    for cell in prepared["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if isinstance(gid, str) and gid in master:
            cell["metadata"]["nbgrader"] = copy.deepcopy(master[gid])
    return prepared


def _master_cells(master: Path) -> list:
    """The master's cells (read once per file version: every notebook of a lesson needs them)."""
    import copy

    st = Path(master).stat()
    return copy.deepcopy(_read_cells(str(master), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=16)
def _read_cells(path: str, mtime_ns: int, size: int) -> list:
    import json

    return json.loads(Path(path).read_text()).get("cells", [])


def sha256_of(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def verdict_outputs(v: dict) -> list:
    """The outputs that make nbgrader's ``determine_grade`` give a test cell our points."""
    from nbformat.v4 import new_output

    points, max_points = float(v.get("points") or 0), float(v["max_points"])
    if v.get("status") == "passed" and points >= max_points:
        return [new_output("stream", name="stdout", text=PASSED + "\n")]
    message = report.scrub(str(v.get("message") or ""))
    reason = report.scrub(str(v.get("reason") or v.get("status") or "failed"))
    if points > 0:   # partial credit: nbgrader reads a number from an execute_result
        text = f"\u2718 {reason}" + (f"\n{message}" if message else "") + "\n"
        return [new_output("stream", name="stdout", text=text),
                new_output("execute_result", data={"text/plain": f"{points:g}"}, execution_count=None)]
    return [new_output("error", ename=reason[:200], evalue=message[:4000],
                       traceback=[f"\u2718 {v['grade_id']}: 0 / {max_points:g} points ({reason[:500]})",
                                  *message[:4000].splitlines()])]


# ------------------------------------------------------------------------------------------
# The course folder
# ------------------------------------------------------------------------------------------
def autograde_preprocessors() -> list:
    """nbgrader's ``Autograde.autograde_preprocessors`` with ``Execute`` replaced by ``InjectVerdicts``."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    default = list(Autograde.class_traits()["autograde_preprocessors"].default())
    if Execute not in default:
        raise RuntimeError(f"nbgrader's Autograde.autograde_preprocessors has no Execute: {default}")
    return [InjectVerdicts if p is Execute else p for p in default]


def sanitize_preprocessors() -> list:
    """nbgrader's ``Autograde.sanitize_preprocessors`` with ``PrepareAsGraded`` first."""
    from nbgrader.converters import Autograde

    return [PrepareAsGraded] + list(Autograde.class_traits()["sanitize_preprocessors"].default())


def course_config(course_dir: Path, results_dir: Path):
    """The course's nbgrader config for the folder ``course_dir``, verdicts from ``results_dir``."""
    from autograder.release import nbgrader_config

    root = Path(course_dir).resolve()
    settings = {
        "CourseDirectory.root": str(root), "CourseDirectory.source_directory": "source",
        "CourseDirectory.release_directory": "release",
        "CourseDirectory.db_url": f"sqlite:///{root / 'gradebook.db'}",
        "Autograde.autograde_preprocessors": autograde_preprocessors(),
        "Autograde.sanitize_preprocessors": sanitize_preprocessors(),
        "InjectVerdicts.results_dir": str(Path(results_dir).resolve()),
        "PrepareAsGraded.results_dir": str(Path(results_dir).resolve())}
    if late.recorded(Path(results_dir))[0].active:     # the grade command's late policy takes points
        settings.update({"AssignLatePenalties.plugin_class": CoursePenalty,
                         "CoursePenalty.grades_dir": str(Path(results_dir).resolve())})
    return nbgrader_config(**settings)


OUR_CONFIG = "autograder_config.py"       # ours, rewritten by every import
COURSE_CONFIG = "nbgrader_config.py"      # the instructor's: written only where missing
OUR_CONFIG_TEMPLATE = '''\
# Written by `python -m autograder gradebook` at every import: do not edit (your own settings
# go in nbgrader_config.py, which loads this file). nbgrader's autograde does NOT execute the
# notebooks here: InjectVerdicts (in place of Execute) sets each test cell's output from the
# grade command's verdict in the folder below. Needs the course's Python environment.
import sys
sys.path.insert(0, {repo!r})
from autograder.grading.gradebook import course_config

c = get_config()  # noqa: F821
c.merge(course_config({root!r}, {results!r}))
'''
LOAD_OURS = f"load_subconfig({OUR_CONFIG!r})  # the trusted grader's settings (python -m autograder gradebook)\n"
COURSE_CONFIG_TEMPLATE = f'''\
# This course's nbgrader settings: yours. `python -m autograder gradebook` wrote this file once
# and never rewrites it; your settings (a late-submission penalty, say) stay across imports.
c = get_config()  # noqa: F821
{LOAD_OURS}
# for example:
# c.LateSubmissionPlugin.penalty_method = "zero"
'''
OLD_TEMPLATE_HEAD = "# Written by `python -m autograder gradebook`: the trusted grader's grades in nbgrader."


def write_course_config(course_dir: Path, results_dir: Path) -> Path:
    """Write our settings to ``autograder_config.py`` and make sure the course's own
    ``nbgrader_config.py`` loads them: written where missing (or where it is the whole-file config
    an earlier version of this command wrote), else left as it is, with the one line that loads
    ours appended if it lacks it. Returns the course config's path."""
    from autograder.release import REPO

    course_dir = Path(course_dir)
    ours = OUR_CONFIG_TEMPLATE.format(repo=str(REPO), root=str(course_dir.resolve()),
                                      results=str(Path(results_dir).resolve()))
    report.write_bytes_atomic(course_dir / OUR_CONFIG, ours.encode())
    path = course_dir / COURSE_CONFIG
    text = path.read_text() if path.is_file() else ""
    if not text or text.startswith(OLD_TEMPLATE_HEAD):
        report.write_bytes_atomic(path, COURSE_CONFIG_TEMPLATE.encode())
    elif OUR_CONFIG not in text:
        report.write_bytes_atomic(path, (text.rstrip("\n") + "\n\n" + LOAD_OURS).encode())
    return path


def load_course_config(course_dir: Path, results_dir: Path):
    """The configuration nbgrader gets in ``course_dir``: the course's own ``nbgrader_config.py``
    (the instructor's settings, and ours through it), with ours merged last where they must hold."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(COURSE_CONFIG, path=str(Path(course_dir))).load_config()
    config.merge(course_config(course_dir, results_dir))
    return config


# What was imported, so that the next import re-imports only what changed: "<student>/<lesson>"
# -> a fingerprint of the graded notebook, its verdicts and its master.
IMPORTED = ".autograder_imported.json"


def fingerprint(r: dict, master: Path) -> str:
    """What the gradebook holds of one result: the graded notebook, every cell's verdict, the master."""
    import json

    cells = [(c.get("grade_id"), c.get("points"), c.get("max_points"), c.get("status"), c.get("message"),
              c.get("answer")) for c in r.get("cells", [])]
    text = json.dumps([r.get("sha256"), cells, sha256_of(master)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _imported_before(course_dir: Path) -> Dict[str, str]:
    import json

    try:
        data = json.loads((course_dir / IMPORTED).read_text())
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _still_in_gradebook(Gradebook, db_url: str, course_dir: Path, student: str, lesson: str) -> bool:
    from nbgrader.api import MissingEntry

    if not (course_dir / "autograded" / student / lesson / f"{lesson}.ipynb").is_file():
        return False
    try:
        with Gradebook(db_url) as gb:
            gb.find_submission_notebook(lesson, lesson, student)
        return True
    except MissingEntry:
        return False


def _results(grades_dir: Path, lessons: Optional[Iterable[str]]) -> List[dict]:
    """The grade command's results (``class_report.load_results``), by student then lesson."""
    from .class_report import load_results

    try:
        found = load_results(grades_dir)
    except ValueError as err:
        raise GradebookError(str(err)) from None
    wanted = set(lessons or ())
    out = sorted((r for r in found if not wanted or r["lesson"] in wanted), key=lambda r: (r["student"], r["lesson"]))
    missing = wanted - {r["lesson"] for r in out}
    if missing:
        raise GradebookError(f"no results for lesson {', '.join(sorted(missing))} in {Path(grades_dir) / 'results'}")
    return out


def import_to_gradebook(grades_dir, course_dir, *, lessons=None, submissions=None, solutions=None,
                        roster=None, log=print) -> dict:
    """Import the grades in ``grades_dir`` into the nbgrader course folder ``course_dir``.

    submissions: the SUBMISSIONS_DIR the grades were made from (default: ``course_dir``, i.e.
        nbgrader's ``submitted/`` there); solutions: the master notebooks (default: the course's);
        roster: a roster.csv (``roster.py``): the students' names, emails and LMS ids go into the
        gradebook (formgrader and ``nbgrader export`` show them).

    Returns ``{"imported": [(student, lesson, seconds)], "unchanged": [(student, lesson)],
    "skipped": [(student, lesson, why)], "errors": [(student, lesson, why)], "seconds": total}``.
    A notebook whose graded file, verdicts and master are those of the last import is not
    imported again ("unchanged"): nbgrader's autograde would flag its written answers for review
    again and drop their resolved state. Only notebooks with status
    ``graded`` are imported; missing and invalid ones are skipped (nbgrader counts a missing
    submission as 0, as grades.csv does); a notebook that cannot be imported is an error.
    """
    from autograder.grade import _fast_gradebook
    from autograder.release import SOLUTIONS, quiet_nbgrader

    t0 = time.perf_counter()
    grades_dir, course_dir = Path(grades_dir).resolve(), Path(course_dir).resolve()
    submissions = Path(submissions).resolve() if submissions else course_dir
    solutions = Path(solutions).resolve() if solutions else SOLUTIONS
    results = _results(grades_dir, lessons)
    for lesson in sorted({r["lesson"] for r in results}):
        if not (solutions / lesson / f"{lesson}.ipynb").is_file():
            raise GradebookError(f"no master notebook {solutions / lesson / (lesson + '.ipynb')}")
    quiet_nbgrader()
    _fast_gradebook()
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

    course_dir.mkdir(parents=True, exist_ok=True)
    write_course_config(course_dir, grades_dir)
    api = NbGraderAPI(config=load_course_config(course_dir, grades_dir))
    summary: Dict[str, list] = {"imported": [], "unchanged": [], "skipped": [], "errors": []}
    before = _imported_before(course_dir)
    record = dict(before)
    policy, _, times = late.recorded(grades_dir)
    if roster is not None:
        _add_roster(Gradebook, api.coursedir.db_url, roster, log)
    for lesson in sorted({r["lesson"] for r in results}):
        shutil.copytree(solutions / lesson, course_dir / "source" / lesson, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        out = api.generate_assignment(lesson)
        if not out["success"]:
            raise GradebookError(f"nbgrader generate_assignment {lesson} failed:\n{out.get('log', '')[-3000:]}")
    for r in results:
        student, lesson = r["student"], r["lesson"]
        key, mark = f"{student}/{lesson}", fingerprint(r, solutions / lesson / f"{lesson}.ipynb")
        if before.get(key) == mark and _still_in_gradebook(Gradebook, api.coursedir.db_url, course_dir, student,
                                                          lesson):
            summary["unchanged"].append((student, lesson))
            log(f"{student} {lesson}: unchanged since the last import (its hand grades and comments stay)")
            _late(Gradebook, api.coursedir.db_url, policy, student, lesson, times.get((student, lesson)), log)
            continue
        try:
            seconds = _import_one(api, Gradebook, r, submissions, course_dir, times.get((student, lesson)))
        except Skip as why:
            summary["skipped"].append((student, lesson, str(why)))
            log(f"{student} {lesson}: skipped ({why})")
            continue
        except GradebookError as err:
            summary["errors"].append((student, lesson, str(err)))
            log(f"{student} {lesson}: NOT imported: {err}")
            record.pop(key, None)
            continue
        record[key] = mark
        report.write_json_atomic(course_dir / IMPORTED, record)
        summary["imported"].append((student, lesson, seconds))
        if r.get("status") != "graded":       # (no submission time: never late)
            log(f"{student} {lesson}: imported as a zero-point submission ({str(r.get('reason') or r['status'])[:200]})")
            continue
        manual = [c for c in r["cells"] if c.get("kind") == "manual"]
        todo = [c["grade_id"] for c in manual if c.get("answer")]
        blank = len(manual) - len(todo)
        log(f"{student} {lesson}: {float(r.get('points') or 0):g} / {float(r.get('max_points') or 0):g} "
            f"autograded points imported in {seconds:.2f} s"
            + (f"; to grade by hand: {', '.join(todo) or 'none'}" if manual else "")
            + (f" ({blank} unanswered: 0 points by nbgrader)" if blank else ""))
        _late(Gradebook, api.coursedir.db_url, policy, student, lesson, times.get((student, lesson)), log)
    summary["seconds"] = time.perf_counter() - t0
    return summary


def _late(Gradebook, db_url: str, policy, student: str, lesson: str, submitted_at, log) -> None:
    """The due date, extension, submission time and late penalty of one imported notebook (at every
    import, so an extension granted later, or a changed policy, reaches the gradebook without
    importing the notebook again)."""
    with Gradebook(db_url) as gb:
        penalty = late.in_gradebook(policy, gb, student, lesson, submitted_at)
        seconds = gb.find_submission(lesson, student).total_seconds_late if policy.due else 0
    if penalty:
        log(f"{student} {lesson}: {late.show_delay(seconds)} late: late penalty {late.points(penalty)} ({policy.rule()})")


def _add_roster(Gradebook, db_url: str, roster: Path, log) -> None:
    from .roster import RosterError, read_roster

    try:
        people = read_roster(roster)
    except RosterError as err:
        raise GradebookError(str(err)) from None
    with Gradebook(db_url) as gb:
        for p in people.values():
            gb.update_or_create_student(p.id, first_name=p.first_name or None, last_name=p.last_name or None,
                                        email=p.email or None, lms_user_id=p.lms_id or None)
    log(f"roster: {len(people)} students' names, emails and LMS ids in the gradebook")


def _import_one(api, Gradebook, r: dict, submissions: Path, course_dir: Path, submitted_at=None) -> float:
    student, lesson = r["student"], r["lesson"]
    if r.get("status") not in IMPORTED_STATUSES:
        raise GradebookError(f"status {r.get('status')}: {str(r.get('reason', ''))[:300]} (grade it again first)")
    target = course_dir / "submitted" / student / lesson / f"{lesson}.ipynb"
    if r["status"] == "graded":
        source = submissions / str(r.get("submission", ""))
        if not r.get("submission") or not source.is_file() or source.is_symlink():
            raise GradebookError(f"cannot find the graded notebook {source}; pass --submissions SUBMISSIONS_DIR "
                                 f"(the folder given to the grade command)")
        if sha256_of(source) != r.get("sha256"):
            raise GradebookError(f"{source} changed since it was graded (sha256 differs): grade again first")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not (target.exists() and target.samefile(source)):
            shutil.copyfile(source, target)
        _copy_secret(source.parent, target.parent)
    elif submissions == course_dir:
        raise Skip(f"{r['status']}: {str(r.get('reason') or '')[:200]}; the notebooks are collected into this course "
                   f"folder, so no zero-point stand-in can take its place there (0 points in grades.csv)")
    else:                                          # missing or unreadable: the lesson, unanswered, worth 0
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(course_dir / "release" / lesson / f"{lesson}.ipynb", target)
    stamp = target.parent / "timestamp.txt"
    when = submitted_at or r.get("submitted_at")
    if when and submissions != course_dir:       # (collected here: it is nbgrader's own timestamp.txt)
        if not stamp.is_file() or stamp.read_text().strip() != str(when):
            stamp.write_text(str(when) + "\n")
    start = time.perf_counter()
    out = api.autograde(lesson, student, force=True, create=True)
    seconds = time.perf_counter() - start
    if not out["success"]:
        lines = [ln for ln in (out.get("log") or "").splitlines() if "ERROR" in ln or "Error" in ln]
        raise GradebookError("nbgrader autograde failed: " + (" | ".join(lines[-3:]) or str(out.get("error"))[-500:]))
    # Read the gradebook back: it must hold exactly our scores.
    with Gradebook(api.coursedir.db_url) as gb:
        grades = {g.cell.name: g for g in gb.find_submission_notebook(lesson, lesson, student).grades}
        for c in r["cells"]:
            g = grades.get(c["grade_id"])
            if c.get("kind") != "test":
                continue
            if g is None or g.auto_score is None or abs(float(g.auto_score) - float(c.get("points") or 0)) > 1e-9:
                raise GradebookError(f"the gradebook has {None if g is None else g.auto_score} for "
                                     f"{c['grade_id']}, the grader {c.get('points')}")
    return seconds


SECRET = "submission_secret.txt"    # nbgrader's submit writes it; release_feedback names the feedback by it


def _copy_secret(source: Path, target: Path) -> None:
    """nbgrader's ``submission_secret.txt`` of a submission from the exchange, kept beside the
    notebook in ``submitted/`` as ``nbgrader collect`` keeps it (``release_feedback`` needs it).
    A link or anything but a short regular file is not copied."""
    src = source / SECRET
    if src.resolve() == (target / SECRET).resolve() or not src.is_file() or src.is_symlink() or src.stat().st_size > 1024:
        return
    report.write_bytes_atomic(target / SECRET, src.read_bytes())


# ------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------
def run(args) -> int:
    """0: everything graded was imported; 1: some notebook could not be; 2: usage error."""
    if not Path(args.grades_dir).is_dir():
        print(f"{PROG}: error: {args.grades_dir} is not a folder", file=sys.stderr)
        return 2
    if args.submissions is not None and not Path(args.submissions).is_dir():
        print(f"{PROG}: error: --submissions {args.submissions} is not a folder", file=sys.stderr)
        return 2
    try:
        s = import_to_gradebook(args.grades_dir, args.course, lessons=args.lesson_ids,
                                submissions=args.submissions, solutions=args.solutions, roster=args.roster)
    except GradebookError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    n = len(s["imported"])
    per = sum(t for *_, t in s["imported"]) / n if n else 0.0
    course = Path(args.course).resolve()
    ownership.give_to_owner(course)      # run as root in the instructor's folder: theirs, for formgrader
    print(f"imported {n} notebook(s) ({per:.2f} s each), {len(s['unchanged'])} unchanged since the last import, "
          f"skipped {len(s['skipped'])}, {len(s['errors'])} error(s) in {s['seconds']:.1f} s into {course}")
    if n:
        print(f"next: cd {course} && jupyter lab   (Formgrader: grade the written answers), then\n"
              f"      python -m autograder feedback {args.grades_dir} --course {course}   (one page per student),\n"
              f"      nbgrader release_feedback LESSON   (through nbgrader's exchange, if your class uses one)")
    return 1 if s["errors"] else 0
