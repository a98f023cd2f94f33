"""``python -m autograder export GRADES_DIR --format canvas|moodle|gradescope``: final grades for an
LMS, or a Gradescope autograder package (``gradescope.py``; ``--lesson ID``).

A final grade is, per student and lesson, the autograded points of the grade command
(``GRADES_DIR/results/``) plus, with ``--course COURSE_DIR`` (the nbgrader course folder that
``python -m autograder gradebook`` filled), the points given by hand there, minus the late
penalty: the grade command's late policy (``late.py``) on nbgrader's score (hand grades included)
where that policy takes points, else nbgrader's own ``late_submission_penalty``. Without
``--course`` the autograded points minus the grade command's late penalty are exported (the
command says the written answers are missing).

Students come from ``--roster roster.csv`` (``roster.py``), in its order; a roster student
without a notebook gets 0 (as ``grades.csv`` counts a missing notebook), and a student graded but
not on the roster is exported with the grader's id only, named in a warning.

- ``canvas``: Canvas' Gradebook import CSV: the columns ``Student`` ("Last, First"), ``ID`` (the
  Canvas user ID: the roster's ``lms_id``), ``SIS User ID`` (the roster's ``id``), ``SIS Login ID``
  (its email), ``Section``, then one column per lesson; the second row, ``Points Possible``,
  gives each lesson's maximum. A lesson column without a Canvas assignment ID in its name makes
  Canvas create that assignment on import.
- ``moodle``: Moodle's grade import CSV: ``ID number`` (``lms_id``), ``Email address``,
  ``First name``, ``Last name``, then one column per lesson; on import, map ``ID number`` or
  ``Email address`` to the user and each lesson column to its grade item.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import class_report, late, report
from .roster import Person, RosterError, read_roster

PROG = "python -m autograder export"
FORMATS = ("canvas", "moodle", "gradescope")


def final_grades(grades_dir: Path, course_dir: Optional[Path] = None) -> Tuple[Dict[Tuple[str, str], float],
                                                                              Dict[str, float], List[str]]:
    """({(student, lesson): final points}, {lesson: points possible}, notes)."""
    results = class_report.load_results(grades_dir)
    policy, assessed, _ = late.recorded(grades_dir)
    grades = {(r["student"], r["lesson"]): float(r.get("points") or 0)
              - float(assessed.get((r["student"], r["lesson"]), {}).get("penalty") or 0) for r in results}
    possible: Dict[str, float] = {}
    for r in results:
        top = float(r.get("max_points") or 0) + float(r.get("manual_max_points") or 0)
        possible[r["lesson"]] = max(possible.get(r["lesson"], 0.0), top)
    notes = []
    if course_dir is None:
        if any(r.get("manual_max_points") for r in results):
            notes.append("written answers are not included (graded by hand: pass --course COURSE_DIR, the "
                         "folder of `python -m autograder gradebook`)")
        return grades, possible, notes
    from nbgrader.api import Gradebook, MissingEntry

    db = Path(course_dir) / "gradebook.db"
    if not db.is_file():
        raise ValueError(f"{db} does not exist: import the grades first (python -m autograder gradebook)")
    with Gradebook(f"sqlite:///{db.resolve()}") as gb:
        for student, lesson in list(grades):
            try:
                sub = gb.find_submission(lesson, student)
            except MissingEntry:
                continue                               # not imported: the autograded points
            grades[(student, lesson)] = max(0.0, float(sub.score or 0) - late.final_penalty(policy, gb, student, lesson))
    return grades, possible, notes


def _people(grades: Dict[Tuple[str, str], float], roster: Optional[Dict[str, Person]]) -> Tuple[List[Person], List[str]]:
    graded = sorted({s for s, _ in grades})
    if roster is None:
        return [Person(s) for s in graded], []
    extra = [s for s in graded if s not in roster]
    return list(roster.values()) + [Person(s) for s in extra], extra


def _number(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def canvas_csv(grades, possible, people: List[Person], titles: Dict[str, str]) -> str:
    lessons = sorted(possible)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] + [titles.get(le, le) for le in lessons])
    w.writerow(["Points Possible", "", "", "", ""] + [_number(possible[le]) for le in lessons])
    for p in people:
        w.writerow([p.sortable_name, p.lms_id, p.id, p.email, ""]
                   + [_number(grades.get((p.id, le), 0.0)) for le in lessons])
    return out.getvalue()


def moodle_csv(grades, possible, people: List[Person], titles: Dict[str, str]) -> str:
    lessons = sorted(possible)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["ID number", "Email address", "First name", "Last name"] + [titles.get(le, le) for le in lessons])
    for p in people:
        w.writerow([p.lms_id or p.id, p.email, p.first_name, p.last_name]
                   + [_number(grades.get((p.id, le), 0.0)) for le in lessons])
    return out.getvalue()


def lesson_titles() -> Dict[str, str]:
    """lesson id -> "01_data: <its title in course.yml>" (the column names in the LMS)."""
    try:
        from coursekit import config

        return {le.id: f"{le.id}: {le.title}" for le in config.load().lessons}
    except Exception:  # no course.yml (grades of another course): the ids
        return {}


def export(grades_dir: Path, fmt: str, *, roster: Optional[Path] = None, course: Optional[Path] = None,
           out: Optional[Path] = None) -> Tuple[Path, List[str]]:
    """Write the export; returns (its path, warnings)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    grades, possible, notes = final_grades(grades_dir, course)
    people, extra = _people(grades, read_roster(roster) if roster else None)
    if extra:
        notes.append(f"graded but not on the roster (exported with the grader's id only): {', '.join(extra)}")
    if roster is None:
        notes.append("no --roster: the LMS cannot match students by the grader's ids alone")
    text = (canvas_csv if fmt == "canvas" else moodle_csv)(grades, possible, people, lesson_titles())
    path = Path(out) if out else Path(grades_dir) / f"{fmt}.csv"
    report.write_bytes_atomic(path, text.encode("utf-8"))
    return path, notes


def gradescope_package(grades_dir: Path, lessons: Optional[List[str]], out: Optional[Path],
                       unsandboxed: bool) -> Tuple[Path, List[str]]:
    """The Gradescope autograder zip (``gradescope.py``), its check inputs drawn from the course
    secret in ``grades_dir`` (created there if the class was not graded here)."""
    from . import gradescope
    from .cli import _secret
    from .plan import lesson_ids

    known = lesson_ids(None)
    lessons = list(lessons or known)
    unknown = [le for le in lessons if le not in known]
    if unknown:
        raise ValueError(f"unknown lesson {', '.join(unknown)}: use one of {', '.join(known)}")
    Path(grades_dir).mkdir(parents=True, exist_ok=True)
    seed = _secret(Path(grades_dir), None)
    name = f"gradescope_{lessons[0]}.zip" if len(lessons) == 1 else "gradescope_autograder.zip"
    path = gradescope.build(Path(out) if out else Path(grades_dir) / name, lessons, seed, unsandboxed=unsandboxed)
    notes = [f"grades {', '.join(lessons)}; upload it as the assignment's autograder (Ubuntu 24.04 base image); "
             f"the zip holds the solutions and hidden judges: keep it private"]
    if unsandboxed:
        notes.append("--unsandboxed: where bwrap cannot run on Gradescope, student code runs without the grader's isolation")
    return path, notes


def add_arguments(parser) -> None:
    parser.add_argument("grades_dir", type=Path, metavar="GRADES_DIR", help="the --out folder of the grade command")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="canvas, moodle: the LMS's gradebook import CSV; gradescope: an autograder package (zip)")
    parser.add_argument("--lesson", action="append", dest="lesson_ids", metavar="ID",
                        help="gradescope: the lesson(s) the package grades (repeatable; default: all)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="gradescope: grade even where bwrap cannot run there (student code is then NOT isolated)")
    parser.add_argument("--roster", type=Path, help="roster.csv: id, first_name, last_name, email, lms_id")
    parser.add_argument("--course", type=Path, metavar="COURSE_DIR",
                        help="the nbgrader course folder of `python -m autograder gradebook`: adds hand grades, "
                             "subtracts late penalties")
    parser.add_argument("--out", type=Path, help="the file to write (default: GRADES_DIR/<format>.csv, "
                                                 "GRADES_DIR/gradescope_<lesson>.zip)")


def run(args) -> int:
    """0: written; 2: usage error (one line)."""
    try:
        if args.format == "gradescope":
            path, notes = gradescope_package(args.grades_dir, args.lesson_ids, args.out, args.unsandboxed)
        else:
            path, notes = export(args.grades_dir, args.format, roster=args.roster, course=args.course, out=args.out)
    except (ValueError, RosterError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {path}")
    return 0
