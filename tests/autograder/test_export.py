"""``python -m autograder export``: final grades in Canvas' and Moodle's gradebook-import CSV, and
the roster they match students by. (With hand grades and late penalties from nbgrader's gradebook:
tests/autograder/test_gradebook.py.)"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.grading import report
from autograder.grading.roster import RosterError, read_roster

REPO = Path(__file__).resolve().parents[2]
ROSTER = ("id,first_name,last_name,email,lms_id\n"
          "alice,Alice,Liddell,alice@uni.edu,4711\n"
          "carol,Carol,\"O'Neil, Jr.\",carol@uni.edu,4713\n"      # a comma in a name: quoted
          "bob,Bob,Smith,bob@uni.edu,4712\n")


def _results(grades: Path) -> None:
    for student, lesson, points, top, manual in (("alice", "01_data", 12, 12, 0), ("bob", "01_data", 5, 12, 0),
                                                 ("alice", "06_ethics", 7.5, 9, 10), ("dave", "01_data", 9, 12, 0)):
        report.write_json_atomic(grades / "results" / student / f"{lesson}.json", {
            "student": student, "lesson": lesson, "status": "graded", "points": points, "max_points": top,
            "manual_max_points": manual, "cells": []})


def _run(*args):
    return subprocess.run([sys.executable, "-m", "autograder", "export", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_canvas_csv_follows_the_gradebook_import_format(tmp_path):
    """Canvas' Gradebook import: Student ("Last, First"), ID (Canvas user ID), SIS User ID, SIS Login ID,
    Section, then one column per assignment; a "Points Possible" row second; every roster student
    (0 without a notebook, as grades.csv counts a missing one), in the roster's order."""
    _results(tmp_path)
    (tmp_path / "roster.csv").write_text(ROSTER)
    proc = _run(tmp_path, "--format", "canvas", "--roster", tmp_path / "roster.csv")
    assert proc.returncode == 0, proc.stderr
    assert "not on the roster (exported with the grader's id only): dave" in proc.stdout
    assert "written answers are not included" in proc.stdout          # no --course: autograded only
    rows = list(csv.reader((tmp_path / "canvas.csv").read_text().splitlines()))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert [c.split(":")[0] for c in rows[0][5:]] == ["01_data", "06_ethics"]
    assert rows[1] == ["Points Possible", "", "", "", "", "12", "19"]
    assert rows[2:] == [["Liddell, Alice", "4711", "alice", "alice@uni.edu", "", "12", "7.5"],
                        ["O'Neil, Jr., Carol", "4713", "carol", "carol@uni.edu", "", "0", "0"],
                        ["Smith, Bob", "4712", "bob", "bob@uni.edu", "", "5", "0"],
                        ["dave", "", "dave", "", "", "9", "0"]]


def test_moodle_csv_has_an_identifier_column_and_a_column_per_grade_item(tmp_path):
    _results(tmp_path)
    (tmp_path / "roster.csv").write_text(ROSTER)
    proc = _run(tmp_path, "--format", "moodle", "--roster", tmp_path / "roster.csv", "--out", tmp_path / "m.csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "m.csv").read_text().splitlines()))
    assert list(rows[0])[:4] == ["ID number", "Email address", "First name", "Last name"]
    first = {k.split(":")[0]: v for k, v in rows[0].items()}
    assert (first["ID number"], first["Email address"], first["01_data"], first["06_ethics"]) == \
        ("4711", "alice@uni.edu", "12", "7.5")
    assert [r["ID number"] for r in rows] == ["4711", "4713", "4712", "dave"]


@pytest.mark.parametrize("text, says", [
    ("name,email\nalice,a@x\n", "must name the columns, among them id"),
    ("id,first_name\nalice,A\nalice,B\n", "the id 'alice' is there twice"),
    ("id,first_name\n,A\n", "line 2: no id"),
])
def test_a_roster_that_cannot_be_used_is_one_line_exit_2(tmp_path, text, says):
    _results(tmp_path)
    (tmp_path / "roster.csv").write_text(text)
    with pytest.raises(RosterError, match=says.replace("(", r"\(")):
        read_roster(tmp_path / "roster.csv")
    proc = _run(tmp_path, "--format", "canvas", "--roster", tmp_path / "roster.csv")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and says in proc.stderr


def test_a_spreadsheets_roster_with_a_bom_and_extra_columns_reads(tmp_path):
    (tmp_path / "r.csv").write_text("\ufeffid,last_name,first_name,section\nalice,Liddell,Alice,A\n")
    assert read_roster(tmp_path / "r.csv")["alice"].sortable_name == "Liddell, Alice"
