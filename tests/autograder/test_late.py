"""Late work (``autograder/grading/late.py``): due dates, the penalty policy, extensions.

The policy's rules and errors are tested on their own; then a small class in nbgrader's
``submitted/`` layout (one notebook on time, one 2 h 31 min late, one late within an extension,
one without a timestamp) is graded with ``--late FILE``, and the penalty is followed through
grades.csv, a re-run with a new extension, the gradebook (nbgrader's own autograde included),
the Canvas export and the feedback document.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.grading import late, report

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from submission_kit import REPO, data_dir, grade_cmd, skip_unless_gradable, solved  # noqa: E402

LESSONS = ["01_data", "04_training"]
SAME = ("--time-factor", 0.5, "--data-dir", data_dir())          # a re-run with these grades nothing again
UTC = dt.datetime


def policy(**raw) -> late.LatePolicy:
    return late.from_mapping({"due": {"01_data": "2026-12-08 23:00:00 UTC"}, **raw}, LESSONS)


# ------------------------------------------------------------------------------------------
# The rules
# ------------------------------------------------------------------------------------------
def test_per_hour_takes_points_per_started_hour_capped_and_never_more_than_earned():
    p = policy(policy="per_hour", points_per_hour=1.5, max_penalty=4)
    assert p.penalty(1, 12) == 1.5                      # one second late: a started hour
    assert p.penalty(3600, 12) == 1.5 and p.penalty(3601, 12) == 3.0
    assert p.penalty(10 * 3600, 12) == 4.0              # the cap
    assert p.penalty(10 * 3600, 2.5) == 2.5             # never more than the points earned
    assert p.penalty(0, 12) == 0.0
    uncapped = policy(policy="per_hour", points_per_hour=1)
    assert uncapped.penalty(30 * 3600, 12) == 12.0


def test_zero_takes_everything_and_none_takes_nothing_but_still_reports():
    assert policy(policy="zero").penalty(60, 9) == 9.0
    none = policy()
    assert none.penalty(99 * 3600, 9) == 0.0 and not none.active
    a = none.assess("bob", "01_data", "2026-12-09 01:31:00 UTC", 9)
    assert a.late and a.penalty == 0 and "2 h 31 min after the due date 2026-12-08 23:00 UTC" in a.message
    result = {"student": "bob", "lesson": "01_data", "status": "graded", "points": 9, "max_points": 12, "cells": [],
              "submitted_at": "2026-12-09 01:31:00 UTC"}
    table = report.summary_table([result], LESSONS, late=none)
    assert "9/12 late" in table and "no penalty: the late policy is none" in table


def test_the_grace_period_forgives_and_extensions_move_the_due_date():
    p = policy(policy="per_hour", points_per_hour=1, grace_minutes=10,
               extensions={"carol": {"01_data": 48}, "dan": {"all": "2026-12-10 12:00 UTC"}})
    within = p.assess("bob", "01_data", "2026-12-08 23:09:00 UTC", 12)
    assert (within.late, within.penalty) == (False, 0) and "within the grace period" in within.message
    after = p.assess("bob", "01_data", "2026-12-08 23:11:00 UTC", 12)
    assert (after.penalty, after.seconds_late) == (1.0, 660)          # counted from the due date
    assert p.due_for("carol", "01_data") == UTC(2026, 12, 10, 23, 0)
    assert p.due_for("dan", "01_data") == UTC(2026, 12, 10, 12, 0)
    assert p.assess("carol", "01_data", "2026-12-10 22:00:00 UTC", 12).penalty == 0
    assert p.due_for("bob", "04_training") is None                    # no due date: never late
    assert p.assess("bob", "04_training", "2030-01-01 00:00:00 UTC", 12).penalty == 0


def test_delays_and_points_read_as_a_person_writes_them():
    assert [late.show_delay(s) for s in (5, 60, 2 * 3600 + 31 * 60 + 5, 27 * 3600)] == \
        ["under 1 min", "1 min", "2 h 31 min", "1 d 3 h"]
    assert [late.points(x) for x in (1, 3, 1.5)] == ["1 point", "3 points", "1.5 points"]


def test_times_are_read_as_nbgrader_reads_them():
    assert late.parse_time("2026-12-09 01:30:00.123456 UTC", "t") == UTC(2026, 12, 9, 1, 30, 0, 123456)
    assert late.parse_time("2026-12-09 02:30:00 Europe/Berlin", "t") == UTC(2026, 12, 9, 1, 30)
    assert late.parse_time("2026-12-09T01:30:00-01:00", "t") == UTC(2026, 12, 9, 2, 30)
    assert late.parse_time(UTC(2026, 12, 9, 1, 30, tzinfo=dt.timezone.utc), "t") == UTC(2026, 12, 9, 1, 30)
    from nbgrader.utils import parse_utc

    for stamp in ("2026-12-09 01:30:00.123456 UTC", "2026-12-09 02:30:00 Europe/Berlin", "2026-12-09 01:30:00 -0200"):
        assert late.parse_time(stamp, "t") == parse_utc(stamp).replace(tzinfo=None)


def test_every_layout_that_carries_a_time_gives_it(tmp_path):
    """nbgrader's submitted/ (timestamp.txt), a plain folder with a timestamp.txt, and an exchange
    folder's name all give the grade command the submission time the penalty is worked out from."""
    from autograder.grading.discover import discover

    stamp = "2026-12-09 01:31:00.000000 UTC"
    layouts = {"submitted": tmp_path / "course" / "submitted" / "bob" / "01_data",
               "flat": tmp_path / "flat" / "bob",
               "exchange": tmp_path / "exchange" / "inbound" / f"bob+01_data+{stamp}+x7f3"}
    for folder in layouts.values():
        folder.mkdir(parents=True)
        (folder / "01_data.ipynb").write_text("{}")
    for name in ("submitted", "flat"):
        (layouts[name] / "timestamp.txt").write_text(stamp + "\n")
    p = policy(policy="per_hour", points_per_hour=1)
    for name, root in (("submitted", tmp_path / "course"), ("flat", tmp_path / "flat"),
                       ("exchange", tmp_path / "exchange")):
        subs, _ = discover(root, ["01_data"])
        assert [(s.student, s.layout) for s in subs] == [("bob", name)]
        assert p.assess("bob", "01_data", subs[0].submitted_at, 12).penalty == 3, name


@pytest.mark.parametrize("raw, expected", [
    ({"polcy": "zero"}, "unknown key 'late.polcy' (did you mean 'policy'?)"),
    ({"policy": "half"}, "'late.policy' must be one of none, zero, per_hour"),
    ({"policy": "per_hour"}, "'late.points_per_hour' must be set above 0"),
    ({"due": {"01_dta": "2026-12-08 23:00 UTC"}}, "unknown key 'late.due.01_dta' (did you mean '01_data'?)"),
    ({"due": {"01_data": "next friday"}}, "late.due.01_data: cannot read the time 'next friday'"),
    ({"max_penalty": -1}, "'late.max_penalty' must be a number of 0 or more or null"),
    ({"extensions": {"bob": 48}}, "'late.extensions.bob' must map lesson ids (or all) to hours"),
])
def test_a_wrong_policy_is_one_line_that_names_the_key(raw, expected):
    with pytest.raises(late.LateError) as err:
        late.from_mapping(raw, LESSONS)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_the_class_files_show_the_penalty_per_notebook(tmp_path):
    """A late notebook gets a late_penalty row of negative points in grades.csv, its total in
    grades.json is after the penalty, and the policy and assessment are in grades.json."""
    p = policy(policy="per_hour", points_per_hour=1, max_penalty=5)
    cell = {"grade_id": "data_normalize", "points": 3, "max_points": 3, "status": "passed", "kind": "test"}
    results = [{"student": s, "lesson": "01_data", "status": "graded", "points": 12, "max_points": 12,
                "cells": [cell], "submitted_at": when}
               for s, when in (("alice", "2026-12-08 22:00:00 UTC"), ("bob", "2026-12-09 01:31:00 UTC"),
                               ("dave", None))]
    report.write_class_files(tmp_path, results, LESSONS, late=p)
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    penalties = [r for r in rows if r["grade_id"] == "late_penalty"]
    assert [(r["student"], r["points"], r["max_points"], r["status"]) for r in penalties] == [("bob", "-3", "0", "late")]
    assert "2 h 31 min after the due date" in penalties[0]["message"] and "-3 points" in penalties[0]["message"]
    data = json.loads((tmp_path / "grades.json").read_text())
    assert data["totals"] == {"alice": {"01_data": 12.0}, "bob": {"01_data": 9.0}, "dave": {"01_data": 12.0}}
    assert data["late"]["notebooks"]["bob/01_data"]["penalty"] == 3.0 and data["late"]["without_time"] == 1
    assert late.from_json(data["late"]["policy"]) == p
    table = report.summary_table(results, LESSONS, late=p)
    assert "9/12 late" in table and "1 point per started hour late, at most 5" in table


# ------------------------------------------------------------------------------------------
# Through grading, the gradebook, the export and the feedback
# ------------------------------------------------------------------------------------------
def _submit(course: Path, student: str, when) -> None:
    folder = course / "submitted" / student / "01_data"
    folder.mkdir(parents=True)
    (folder / "01_data.ipynb").write_text(json.dumps(solved()))
    if when:
        (folder / "timestamp.txt").write_text(when + "\n")       # nbgrader's format


def _penalties(out: Path) -> dict:
    return {r["student"]: float(r["points"]) for r in csv.DictReader((out / "grades.csv").open())
            if r["grade_id"] == "late_penalty" and r["status"] == "late"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    skip_unless_gradable()
    base = tmp_path_factory.mktemp("late")
    course, out = base / "course", base / "grades"
    _submit(course, "alice", "2026-12-08 22:59:59.000000 UTC")          # on time
    _submit(course, "bob", "2026-12-09 01:31:00.000000 UTC")            # 2 h 31 min late
    _submit(course, "carol", "2026-12-10 05:00:00.000000 UTC")          # late, within her extension
    _submit(course, "dave", None)                                       # no timestamp
    rules = base / "late.yml"
    rules.write_text("late:\n  policy: per_hour\n  points_per_hour: 1\n  max_penalty: 5\n"
                     "  due: {01_data: 2026-12-08 23:00 UTC}\n  extensions: {carol: {01_data: 48}}\n")
    proc = grade_cmd(course, "--out", out, "--jobs", 2, *SAME, "--late", rules)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"course": course, "out": out, "rules": rules, "proc": proc}


@pytest.mark.slow
@pytest.mark.real_data
class TestLateWork:
    def test_the_grade_command_takes_points_per_started_hour_late(self, graded):
        assert _penalties(graded["out"]) == {"bob": -3.0}
        assert "9/12 late" in graded["proc"].stdout
        assert "1 notebook(s) carry no submission time" in graded["proc"].stderr and "dave" in graded["proc"].stderr

    def test_a_new_extension_applies_at_the_next_run_without_grading_again(self, graded):
        rules = graded["rules"]
        rules.write_text(rules.read_text().replace("{carol: {01_data: 48}}", "{carol: {01_data: 48}, bob: {01_data: 3}}"))
        try:
            proc = grade_cmd(graded["course"], "--out", graded["out"], *SAME, "--late", rules)
            assert proc.returncode == 0, proc.stderr
            assert "0 graded, 4 unchanged" in proc.stdout and _penalties(graded["out"]) == {}
        finally:
            rules.write_text(rules.read_text().replace(", bob: {01_data: 3}", ""))
            proc = grade_cmd(graded["course"], "--out", graded["out"], *SAME, "--late", rules)
        assert proc.returncode == 0 and _penalties(graded["out"]) == {"bob": -3.0}

    def test_a_broken_late_file_is_one_line(self, graded, tmp_path):
        bad = tmp_path / "late.yml"
        bad.write_text("late:\n  policy: per_hour\n  points_per_hour: 1\n  due: {01_data: tomorrow}\n")
        proc = grade_cmd(graded["course"], "--out", graded["out"], "--late", bad)
        assert proc.returncode == 2
        assert proc.stderr.strip().count("\n") == 0 and "late.yml: due.01_data: cannot read the time 'tomorrow'" in proc.stderr

    def test_the_gradebook_holds_the_same_penalty_and_keeps_it_across_imports_and_nbgrader_autograde(self, graded):
        from nbgrader.api import Gradebook

        from autograder.grading import gradebook

        course, out = graded["course"], graded["out"]
        lines = []
        gradebook.import_to_gradebook(out, course, log=lines.append)
        assert any("bob 01_data: 2 h 31 min late: late penalty 3 points" in ln for ln in lines), lines
        db = f"sqlite:///{course / 'gradebook.db'}"

        def state():
            with Gradebook(db) as gb:
                return {s: (gb.find_submission_notebook("01_data", "01_data", s).late_submission_penalty,
                            gb.find_submission("01_data", s).extension)
                        for s in ("alice", "bob", "carol", "dave")}

        expected = {"alice": (None, None), "bob": (3.0, None), "carol": (None, dt.timedelta(hours=48)),
                    "dave": (None, None)}
        assert state() == expected
        with Gradebook(db) as gb:
            assert gb.find_assignment("01_data").duedate == UTC(2026, 12, 8, 23, 0)
        # nbgrader's own autograde in the course folder (formgrader's button) keeps our penalty
        from nbgrader.apps import NbGraderAPI

        api = NbGraderAPI(config=gradebook.load_course_config(course, out))
        assert api.autograde("01_data", "bob", force=True, create=True)["success"]
        assert state() == expected
        # a second import (nothing changed) does not reset it either
        summary = gradebook.import_to_gradebook(out, course, log=lambda *_: None)
        assert len(summary["unchanged"]) == 4 and state() == expected

    def test_formgrader_lists_every_notebook_with_its_time_and_score_in_a_real_browser(self, graded):
        """(After the import above.) What the instructor sees: formgrader's Manage Submissions page
        of lesson 1, served by JupyterLab from the course folder, lists each student with the
        submission time and the autograded score of grades.csv. (nbgrader's page shows no late
        penalty; nbgrader export and the feedback carry it.)"""
        from browser_kit import chromium, jupyter_lab

        course = graded["course"]
        with jupyter_lab(sys.executable, course) as lab, chromium(1200, 700) as browser:
            from selenium.webdriver.support.ui import WebDriverWait     # (chromium() skips where selenium is missing)

            browser.get(lab.url("tree"))                  # the token login: formgrader's API needs the cookie
            browser.get(lab.url("formgrader/manage_submissions/01_data"))
            WebDriverWait(browser, 120).until(lambda b: "dave" in b.find_element("tag name", "tbody").text)
            rows = {r.split()[2]: r for r in browser.find_element("tag name", "tbody").text.splitlines()}
            browser.save_screenshot(str(course.parent / "formgrader.png"))
        assert set(rows) == {"alice", "bob", "carol", "dave"}
        assert "2026-12-09 01:31:00 UTC graded 12 / 12" in rows["bob"]
        assert "2026-12-08 22:59:59 UTC graded 12 / 12" in rows["alice"]
        assert "graded 12 / 12" in rows["dave"] and "2026" not in rows["dave"]

    def test_the_export_and_the_feedback_subtract_it_and_a_new_policy_reaches_them_without_reimport(self, graded):
        from autograder.grading import export, gradebook

        course, out, rules = graded["course"], graded["out"], graded["rules"]

        def canvas() -> dict:
            path, _ = export.export(out, "canvas", course=course, out=course.parent / "canvas.csv")
            rows = list(csv.DictReader(path.read_text().splitlines()))[1:]
            return {r["SIS User ID"] or r["Student"]: float(next(v for k, v in r.items() if k.startswith("01_data")))
                    for r in rows}

        assert canvas() == {"alice": 12.0, "bob": 9.0, "carol": 12.0, "dave": 12.0}
        rules.write_text(rules.read_text().replace("policy: per_hour", "policy: zero"))
        proc = grade_cmd(course, "--out", out, *SAME, "--late", rules)
        assert proc.returncode == 0 and _penalties(out) == {"bob": -12.0}
        summary = gradebook.import_to_gradebook(out, course, log=lambda *_: None)
        assert summary["imported"] == [] and canvas()["bob"] == 0.0
        proc = subprocess.run([sys.executable, "-m", "autograder", "feedback", str(out), "--course", str(course)],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        bob = (course / "feedback" / "bob" / "01_data" / "01_data.html").read_text()
        assert ("Late penalty: &minus;12 points (submitted 2 h 31 min after the due date; "
                "a late notebook earns 0 points)") in bob and "Total: 0 / 12" in bob
        alice = (course / "feedback" / "alice" / "01_data" / "01_data.html").read_text()
        assert "Late penalty" not in alice and "Total: 12 / 12" in alice
