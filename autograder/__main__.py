"""``python -m autograder``: the instructor's commands.

    python -m autograder release [LESSON ...]     rebuild solutions/ from lessons_src/ and  
                                                  regenerate lessons/ with nbgrader (default: all)
    python -m autograder release --check          exit 1 if solutions/ or lessons/ are out of date
    python -m autograder grade NOTEBOOK ...       autograde notebooks with nbgrader in a scratch
                                                  course; the lesson is the notebook's file name
    python -m autograder grade SUBMISSIONS_DIR --out DIR [--jobs N | --scheduler tcp://HOST:PORT]
                                                  grade a class in sandboxes, here or on a Dask
                                                  cluster: grades.csv, grades.json, feedback HTML
                                                  (docs/grading.md)
    python -m autograder student [--lesson ID ...]  write the student environment (default dist/student/):
                                                  the lessons, the support package, a README; no
                                                  answers, hidden judges or instructor tools
    python -m autograder hub [--users N] [--port P]  set up the course's JupyterHub on this machine
                                                  (users, exchange, course folder) and run it
    python -m autograder gradebook GRADES_DIR --course COURSE_DIR [--submissions DIR] [--lesson ID ...]
                                                  put those grades into an nbgrader course folder
                                                  (formgrader, generate_feedback, export); runs no
                                                  student code
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="regenerate lessons/ from solutions/ with nbgrader")
    rel.add_argument("lessons", nargs="*", help="lesson ids, e.g. 01_data (default: every lesson in course.yml)")
    rel.add_argument("--check", action="store_true", help="only report what is out of date (exit 1 if anything is)")
    grade = sub.add_parser("grade", help="autograde notebooks with nbgrader")
    grade.add_argument("notebooks", nargs="+", type=Path, help="e.g. lessons/01_data/01_data.ipynb")
    grade.add_argument("--student", default="student", help="the student id to grade them under")
    grade.add_argument("--feedback", type=Path, help="also write nbgrader's HTML feedback into this folder")
    from autograder.grading import cli as grading_cli

    grading_cli.add_arguments(grade)
    st = sub.add_parser("student", help="write the student environment (lessons + support package)")
    st.add_argument("--out", type=Path, default=None, help="where to write it (default: dist/student/)")
    st.add_argument("--lesson", action="append", dest="lesson_ids", metavar="ID",
                    help="hand out this lesson (repeatable; default: all; later lessons show earlier answers as given code)")
    gb = sub.add_parser("gradebook", help="import the grades into an nbgrader course folder (formgrader)")
    _gradebook_arguments(gb)
    from autograder.grading import class_report

    rep = sub.add_parser("report", help="the class report: scores, pass rates, the most common failures (HTML)")
    class_report.add_arguments(rep)
    from autograder.grading import export

    exp = sub.add_parser("export", help="final grades (autograded + by hand - late penalties) for Canvas or "
                                           "Moodle, or a Gradescope autograder package")
    export.add_arguments(exp)
    from autograder.grading import feedback_release

    fb = sub.add_parser("feedback", help="one feedback document per student and lesson (verdicts + hand grades), "
                                         "in nbgrader's feedback layout")
    feedback_release.add_arguments(fb)
    from autograder.hub import command as hub_command

    hub = sub.add_parser("hub", help="set up the course's JupyterHub on this machine (users, nbgrader's exchange, "
                                     "the instructor's course folder) and run it (docs/hub.md)")
    hub_command.add_arguments(hub)
    args = parser.parse_args(argv)

    if args.command == "hub":
        return hub_command.run(args)

    if args.command == "feedback":
        return feedback_release.run(args)
    if args.command == "report":
        return class_report.run(args)
    if args.command == "export":
        return export.run(args)

    if args.command == "gradebook":
        from autograder.grading import gradebook      # imports nbgrader (seconds): only here

        return gradebook.run(args)

    if args.command == "student":
        from autograder import student

        try:
            student.build(args.out or student.DEFAULT_OUT, args.lesson_ids)
        except student.StudentBuildError as err:
            print(f"python -m autograder student: {err}", file=sys.stderr)
            return 1
        return 0

    if args.command == "release":
        from autograder import release

        try:
            return _release(release, args)
        except release.ReleaseError as err:
            print(f"python -m autograder release: {err}", file=sys.stderr)
            return 1

    if grading_cli.wants_class_grading(args):
        return grading_cli.run(args)

    from autograder.grade import autograde

    submissions = {(args.student, nb.stem): nb for nb in args.notebooks}
    total = total_max = 0.0
    for result in autograde(submissions, feedback_dir=args.feedback):
        print(result.summary())
        total += result.score
        total_max += result.max_score
    print(f"total: {total:g} / {total_max:g} autograded points")
    return 0


def _gradebook_arguments(parser) -> None:
    parser.add_argument("grades_dir", type=Path, metavar="GRADES_DIR", help="the --out folder of the grade command")
    parser.add_argument("--course", type=Path, required=True, metavar="COURSE_DIR",
                        help="the nbgrader course folder to create or update")
    parser.add_argument("--submissions", type=Path, metavar="DIR",
                        help="the SUBMISSIONS_DIR that was graded (default: COURSE_DIR, i.e. its submitted/)")
    parser.add_argument("--lesson", action="append", dest="lesson_ids", metavar="ID",
                        help="import this lesson only (repeatable; default: every lesson graded)")
    parser.add_argument("--solutions", type=Path, help="master notebooks (default: the course's solutions/)")
    parser.add_argument("--roster", type=Path, help="roster.csv (id, first_name, last_name, email, lms_id): the "
                                                    "students' names in formgrader and the exports")


def _release(release, args) -> int:
    if args.check:
        problems = release.check(args.lessons)
        for line in problems:
            print(line)
        if not problems:
            print("solutions/ and lessons/ are up to date")
        return 1 if problems else 0
    release.release(args.lessons)
    return 0


if __name__ == "__main__":
    sys.exit(main())
