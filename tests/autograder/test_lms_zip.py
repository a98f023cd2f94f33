"""Grading an LMS's submissions download directly (``autograder/grading/lms_zip.py``): a Canvas
"Download Submissions" zip and a Moodle "Download all submissions" zip, built here in each LMS's
naming, grade to the same points as the same notebooks in the plain layout; every file that is
not graded gets a line saying why; a zip that is neither is a one-line usage error."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from autograder.grading import lms_zip
from submission_kit import LESSON, WRONG_NORMALIZE, grade_cmd, put, skip_unless_gradable, solved, totals

LESSONS = ["01_data", "02_conv"]
ROSTER = "id,first_name,last_name,email,lms_id\nada,Alice,Liddell,ada@example.edu,12345\n" \
         "bob,Alan,Turing,bob@example.edu,23456\ncarol,Carol,Shaw,carol@example.edu,34567\n"


def _zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data if isinstance(data, (bytes, str)) else json.dumps(data))
    return path


def _roster(tmp_path: Path) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER)
    return path


GOOD, WRONG = solved(), solved(data_normalize_answer=WRONG_NORMALIZE)
CANVAS = {
    "liddellalice_12345_900001_01_data.ipynb": GOOD,
    "liddellalice_12345_900001_notes.pdf": b"%PDF-1.4",
    "turingalan_23456_900002_01_data.ipynb": GOOD,              # an earlier upload ...
    "turingalan_LATE_23456_900003_01_data-1.ipynb": WRONG,      # ... and the later one, late: graded
    "shawcarol_34567_900004_Lesson1_final.ipynb": GOOD,         # any name: the zip is one lesson
    "hopperg_99999_900005_01_data.ipynb": GOOD,                 # not in the roster
}
MOODLE = {
    "Alice Liddell_501_assignsubmission_file/01_data.ipynb": GOOD,          # "download in folders"
    "Alan Turing_502_assignsubmission_file_01_data.ipynb": WRONG,           # flat
    "Carol Shaw_34567_assignsubmission_file_/my lesson.ipynb": GOOD,        # matched by lms_id
    "Grace Hopper_503_assignsubmission_file_01_data.ipynb": GOOD,           # not in the roster
    "__MACOSX/._Alan Turing_502_assignsubmission_file_01_data.ipynb": b"junk",
}


def test_canvas_names_are_read_with_late_and_resubmitted_files(tmp_path):
    from autograder.grading.roster import read_roster

    z = _zip(tmp_path / "submissions.zip", CANVAS)
    assert lms_zip.kind(z) == "canvas"
    entries, lines, _ = lms_zip.read(z, LESSONS, only=[LESSON], roster=read_roster(_roster(tmp_path)))
    got = {(e.student, e.member) for e in entries}
    assert got == {("ada", "liddellalice_12345_900001_01_data.ipynb"),
                   ("bob", "turingalan_LATE_23456_900003_01_data-1.ipynb"),
                   ("carol", "shawcarol_34567_900004_Lesson1_final.ipynb")}
    assert [e.late for e in entries if e.student == "bob"] == [True]
    text = "\n".join(lines)
    assert "notes.pdf: not graded (not a notebook)" in text
    assert "turingalan_23456_900002_01_data.ipynb: not graded (bob has a later 01_data" in text
    assert "hopperg_99999_900005_01_data.ipynb: not graded (matches no one in the roster: no lms_id 99999" in text
    # Without --lesson, a file whose name is no lesson is not guessed at.
    _, lines, _ = lms_zip.read(z, LESSONS, roster=read_roster(_roster(tmp_path)))
    assert any("Lesson1_final.ipynb names no lesson: pass --lesson ID" in line for line in lines)


def test_moodle_names_are_read_flat_and_in_folders(tmp_path):
    from autograder.grading.roster import read_roster

    z = _zip(tmp_path / "moodle.zip", MOODLE)
    assert lms_zip.kind(z) == "moodle"
    entries, lines, _ = lms_zip.read(z, LESSONS, only=[LESSON], roster=read_roster(_roster(tmp_path)))
    assert {e.student for e in entries} == {"ada", "bob", "carol"}
    assert any("Grace Hopper_503" in line and "no student called Grace Hopper" in line for line in lines), lines
    # Without a roster the names are the ids.
    entries, _, _ = lms_zip.read(z, LESSONS, only=[LESSON])
    assert {e.student for e in entries} == {"alice-liddell", "alan-turing", "carol-shaw", "grace-hopper"}


def test_a_zip_that_is_no_lms_download_is_refused(tmp_path):
    z = _zip(tmp_path / "other.zip", {"ada/01_data.ipynb": GOOD, "../../etc/x_1_2_01_data.ipynb": GOOD})
    assert lms_zip.kind(z) is None
    with pytest.raises(lms_zip.IntakeError, match="not a Canvas or Moodle submissions download"):
        lms_zip.read(z, LESSONS)


@pytest.fixture(scope="module")
def plain_totals(tmp_path_factory):
    skip_unless_gradable()
    root = tmp_path_factory.mktemp("plain")
    for student, nb in (("ada", GOOD), ("bob", WRONG), ("carol", GOOD)):
        put(root / "subs", student, nb)
    done = grade_cmd(str(root / "subs"), "--out", str(root / "out"), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    points = totals(root / "out")
    assert points["ada"] == points["carol"] > points["bob"], points
    return points


@pytest.mark.real_data
@pytest.mark.parametrize("lms, members", [("canvas", CANVAS), ("moodle", MOODLE)])
def test_an_lms_download_grades_as_the_plain_layout(tmp_path, plain_totals, lms, members):
    z = _zip(tmp_path / f"{lms}.zip", members)
    out = tmp_path / "out"
    done = grade_cmd(str(z), "--out", str(out), "--roster", str(_roster(tmp_path)), "--lesson", LESSON, "--no-progress")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert totals(out) == plain_totals
    assert "matches no one in the roster" in done.stdout
    assert (out / "submissions" / lms / "bob" / f"{LESSON}.ipynb").is_file()


def test_a_foreign_zip_is_a_one_line_usage_error(tmp_path):
    z = _zip(tmp_path / "other.zip", {"ada/01_data.ipynb": GOOD})
    done = grade_cmd(str(z), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "not a Canvas or Moodle submissions download" in done.stderr
