"""``python -m autograder feedback GRADES_DIR --course COURSE_DIR``: one feedback document per
student and lesson, in nbgrader's feedback layout.

Each document is the grade command's feedback page (``GRADES_DIR/feedback/<student>/<lesson>.html``:
the run's outputs, each verdict with its teaching message, nothing hidden, nothing fetched from
the internet) with, at its top, what was graded by hand in the nbgrader course folder that
``python -m autograder gradebook`` filled: each written answer's points and comment, the late
penalty (and how late), and the total. It goes to ``COURSE_DIR/feedback/<student>/<lesson>/<lesson>.html``,
where nbgrader's ``release_feedback`` (and the students' ``fetch_feedback``) find it.
"""
from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import List, Tuple

from . import class_report, late, ownership, report

PROG = "python -m autograder feedback"


def hand_graded_section(gb, student: str, lesson: str, autograded: float, policy=None) -> str:
    """The HTML block with the hand grades, comments, late penalty and total of one submission
    (``policy``: the grade command's ``late.LatePolicy``; default: nbgrader's penalty)."""
    from nbgrader.api import MissingEntry

    try:
        nb = gb.find_submission_notebook(lesson, lesson, student)
        sub = gb.find_submission(lesson, student)
    except MissingEntry:
        return ""
    comments = {c.cell.name: c for c in nb.comments}
    rows, hand = [], 0.0
    for g in nb.grades:
        if g.cell.cell_type != "markdown":
            continue
        c = comments.get(g.cell.name)
        text = (c.manual_comment or c.auto_comment or "") if c is not None else ""
        if g.needs_manual_grade:
            points = "not graded yet"
        else:
            score = float(g.score or 0)
            hand += score
            points = f"{score:g} / {float(g.max_score):g}"
        rows.append(f"<tr><td><code>{html.escape(g.cell.name)}</code></td><td>{html.escape(points)}</td>"
                    f"<td>{html.escape(text)}</td></tr>")
    policy = policy or late.NO_POLICY
    penalty = late.final_penalty(policy, gb, student, lesson)
    total = max(0.0, autograded + hand - penalty)
    why = ""
    if penalty and sub.total_seconds_late:
        why = f" (submitted {late.show_delay(sub.total_seconds_late)} after the due date" + (
            f"; {html.escape(policy.rule())})" if policy.active else ")")
    lines = [f"<p>Autograded: {autograded:g} points." + (f" Graded by hand: {hand:g} points." if rows else "")
             + (f" Late penalty: &minus;{penalty:g} points{why}." if penalty else "")
             + f" <strong>Total: {total:g} / {float(sub.max_score):g}</strong>.</p>"]
    if rows:
        lines.insert(0, "<table><thead><tr><th>written answer</th><th>points</th><th>comment</th></tr></thead>"
                        "<tbody>" + "".join(rows) + "</tbody></table>")
    return ('<section id="graded-by-hand" style="font-family: system-ui, sans-serif; max-width: 1000px; '
            'margin: 1em auto; padding: 0.5em 1em; border: 1px solid #ccc; border-radius: 4px;">'
            '<style>#graded-by-hand td, #graded-by-hand th { padding: 0.2em 0.8em; text-align: left; }</style>'
            f"<h2>{'Graded by hand' if rows else 'Your grade'}</h2>" + "".join(lines) + "</section>")


def release(grades_dir: Path, course_dir: Path) -> Tuple[List[Path], List[str]]:
    """Write every student's documents; returns (the files written, notes)."""
    from nbgrader.api import Gradebook

    db = Path(course_dir) / "gradebook.db"
    if not db.is_file():
        raise ValueError(f"{db} does not exist: import the grades first (python -m autograder gradebook)")
    written, notes, no_secret = [], [], []
    policy = late.recorded(grades_dir)[0]
    with Gradebook(f"sqlite:///{db.resolve()}") as gb:
        for r in class_report.load_results(grades_dir):
            student, lesson = r["student"], r["lesson"]
            page_path = report.feedback_path(Path(grades_dir), student, lesson)
            if not page_path.is_file():
                notes.append(f"{student} {lesson}: no feedback page in {page_path.parent} (grade it first)")
                continue
            page = page_path.read_text(encoding="utf-8")
            section = hand_graded_section(gb, student, lesson, float(r.get("points") or 0), policy)
            if section:
                at = page.find(">", page.find("<body")) + 1
                page = page[:at] + section + page[at:]
            target = Path(course_dir) / "feedback" / student / lesson / f"{lesson}.html"
            report.write_bytes_atomic(target, page.encode("utf-8"))
            written.append(target)
            if not _for_release(Path(course_dir), student, lesson):
                no_secret.append(f"{student} {lesson}")
    if no_secret and len(no_secret) < len(written):
        notes.append(f"{len(no_secret)} document(s) without nbgrader's submission_secret.txt (not submitted through "
                     f"the exchange), which nbgrader release_feedback cannot hand out: {', '.join(no_secret[:5])}")
    return written, notes


def _for_release(course_dir: Path, student: str, lesson: str) -> bool:
    """Put beside a feedback document what ``nbgrader release_feedback`` reads: the submission's
    ``timestamp.txt`` and ``submission_secret.txt`` (the file it hands out is named by the
    secret's hash, the one the student's ``fetch_feedback`` looks for). False where the
    submission has no secret (it did not come through the exchange)."""
    submitted = course_dir / "submitted" / student / lesson
    feedback = course_dir / "feedback" / student / lesson
    found = True
    for name in ("timestamp.txt", "submission_secret.txt"):
        src = submitted / name
        if src.is_file() and not src.is_symlink():
            report.write_bytes_atomic(feedback / name, src.read_bytes())
        elif name == "submission_secret.txt":
            found = False
    return found


def add_arguments(parser) -> None:
    parser.add_argument("grades_dir", type=Path, metavar="GRADES_DIR", help="the --out folder of the grade command")
    parser.add_argument("--course", type=Path, required=True, metavar="COURSE_DIR",
                        help="the nbgrader course folder of `python -m autograder gradebook`")


def run(args) -> int:
    """0: written; 2: usage error (one line)."""
    try:
        written, notes = release(args.grades_dir, args.course)
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    ownership.give_to_owner(Path(args.course))   # run as root in the instructor's folder: theirs
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {len(written)} feedback document(s) into {Path(args.course) / 'feedback'} "
          f"(nbgrader release_feedback LESSON hands them out)")
    return 0
