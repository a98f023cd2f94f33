"""``python -m autograder gradebook``: the trusted grades in nbgrader's gradebook, no code run.

A small class (lesson 1: solved, partly wrong, tampered, and one whose exercise cell writes a
marker file and calls ``os._exit``; lesson 6: the master's answers, one written answer only)
is graded once with the grade command, then imported. The gradebook must hold exactly the
per-cell points of grades.csv, the written answers must wait for a human, nothing of the
students' must have run during the import, and ``nbgrader export`` must give the same totals.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.grading import gradebook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from submission_kit import (REPO, _index, _load, _src, data_dir, grade_cmd, skip_unless_gradable,  # noqa: E402
                          partly_wrong, put, solution, solved)

ETHICS = "06_ethics"
MANUAL = ["ethics_who_fails", "ethics_one_number", "ethics_faces_privacy", "ethics_faces_bias"]


def ethics(answers: dict) -> dict:
    """Lesson 6 released, with these solution cells (grade_id -> text; True: the master's)."""
    master = _load(REPO / "solutions" / ETHICS / f"{ETHICS}.ipynb")
    nb = _load(REPO / "lessons" / ETHICS / f"{ETHICS}.ipynb")
    for gid, text in answers.items():
        if text is True:
            text = "\n".join(ln for ln in _src(master["cells"][_index(master, gid)]).splitlines() if "### " not in ln)
        nb["cells"][_index(nb, gid)]["source"] = text
    return nb


def rearranged() -> dict:
    """What nbgrader's own checks refuse and the grader grades: a test cell deleted, another moved
    above its exercise, a third repeated, a cell without execution_count."""
    import copy

    nb = solved()
    del nb["cells"][_index(nb, "data_add_channel")]
    moved = nb["cells"].pop(_index(nb, "data_make_loader"))
    nb["cells"].insert(_index(nb, "data_make_loader_answer"), moved)
    nb["cells"].append(copy.deepcopy(nb["cells"][_index(nb, "data_normalize")]))
    nb["cells"][_index(nb, "data_to_tensors")].pop("execution_count", None)
    return nb


def tampered() -> dict:
    nb = partly_wrong()
    nb["cells"][_index(nb, "data_normalize")]["source"] = 'print("\u2714 data_normalize passed")'
    nb["cells"][_index(nb, "data_normalize")]["metadata"]["nbgrader"]["points"] = 100
    nb["cells"].append({"cell_type": "code", "id": "bonus", "execution_count": None, "outputs": [],
                        "source": "print(1)", "metadata": {"nbgrader": {
                            "grade": True, "grade_id": "data_bonus", "points": 50, "locked": True,
                            "schema_version": 3, "solution": False}}})
    return nb


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    skip_unless_gradable()
    base = tmp_path_factory.mktemp("gb")
    root, out, course = base / "submissions", base / "grades", base / "course"
    marker = base / "STUDENT_CODE_RAN"
    put(root, "alice", solved())
    put(root, "alice", ethics({**{g: True for g in ("ethics_per_class_answer", "ethics_shift_answer",
                                                      "ethics_thicken_answer")}, **{g: True for g in MANUAL}}),
        f"{ETHICS}.ipynb")
    put(root, "bob", partly_wrong())
    put(root, "bob", ethics({"ethics_who_fails": "Thin, slanted 7s: the model confuses them with 1s."}),
        f"{ETHICS}.ipynb")
    put(root, "eve", solved(data_normalize_answer=solution("data_normalize_answer")
                            + f"open({str(marker)!r}, 'w').write('ran')\nimport os\nos._exit(3)\n"))
    put(root, "trudy", tampered())
    put(root, "mallory", rearranged())
    put(root, "oscar", "{ not a notebook")
    proc = grade_cmd(root, "--out", out, "--jobs", 2, "--time-factor", 0.5, "--data-dir", data_dir())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    marker_after_grading = marker.exists()

    # Importing must not execute anything: make every way nbgrader could run a kernel fail.
    import nbclient
    from nbgrader.preprocessors import Execute

    def refuse(*a, **k):
        raise AssertionError("a notebook was executed during the import")

    saved = (Execute.preprocess, nbclient.NotebookClient.execute)
    Execute.preprocess = nbclient.NotebookClient.execute = refuse
    try:
        lines = []
        summary = gradebook.import_to_gradebook(out, course, submissions=root, log=lines.append)
    finally:
        Execute.preprocess, nbclient.NotebookClient.execute = saved
    return {"root": root, "out": out, "course": course, "summary": summary, "lines": lines,
            "marker": marker, "marker_after_grading": marker_after_grading}


def _flagged(gb) -> set:
    """(student, grade_id) of every answer nbgrader shows as needing a hand grade."""
    return {(st, g.cell.name) for st in ("alice", "bob", "eve", "trudy", "mallory", "oscar")
            for le in ("01_data", ETHICS)
            for nb in [_submission(gb, le, st)] if nb is not None for g in nb.grades if g.needs_manual_grade}


def _submission(gb, lesson_id, student):
    from nbgrader.api import MissingEntry

    try:
        return gb.find_submission_notebook(lesson_id, lesson_id, student)
    except MissingEntry:
        return None


def csv_points(out: Path) -> dict:
    with open(out / "grades.csv", newline="") as f:
        return {(r["student"], r["lesson"], r["grade_id"]): r for r in csv.DictReader(f)}


@pytest.mark.slow
@pytest.mark.real_data
class TestImport:
    def test_everything_imported_nothing_ran(self, imported):
        s = imported["summary"]
        assert s["errors"] == [], s["errors"]
        assert {(st, le) for st, le, _ in s["imported"]} == {
            (st, le) for st in ("alice", "bob", "eve", "trudy", "mallory", "oscar") for le in ("01_data", ETHICS)}
        assert s["skipped"] == []        # missing and unreadable notebooks: zero-point submissions
        assert not imported["marker"].exists() and not imported["marker_after_grading"]

    def test_gradebook_scores_equal_grades_csv_exactly(self, imported):
        from nbgrader.api import Gradebook

        rows = csv_points(imported["out"])
        course = imported["course"]
        seen = 0
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            for student, lesson_id, _ in imported["summary"]["imported"]:
                nb = gb.find_submission_notebook(lesson_id, lesson_id, student)
                grades = {g.cell.name: g for g in nb.grades}
                want = {gid: r for (st, le, gid), r in rows.items() if (st, le) == (student, lesson_id)}
                assert set(grades) == set(want)
                for gid, row in want.items():
                    g = grades[gid]
                    assert float(g.max_score) == float(row["max_points"])
                    if row["status"] == "manual":
                        assert g.cell.cell_type == "markdown"
                        answered = row["reason"] == "graded by hand"
                        # nbgrader: an untouched answer scores 0 by itself, an answer waits for a human
                        assert g.needs_manual_grade is answered, (student, gid)
                        assert g.auto_score == (None if answered else 0)
                    else:
                        assert g.auto_score == float(row["points"]), (student, gid, row)
                        assert not g.needs_manual_grade
                        seen += 1
        assert seen == 6 * 4 + 2 * 3 + 4 * (3 + 4)   # lesson 1, lesson 6 graded, lesson 6 missing (tests + answers)
        assert rows[("trudy", "01_data", "data_normalize")]["points"] == "0"
        assert rows[("mallory", "01_data", "data_add_channel")]["points"] == "2"       # deleted, put back
        assert rows[("mallory", "01_data", "data_make_loader")]["points"] == "0"       # moved above its exercise

    def test_a_missing_or_unreadable_notebook_is_a_zero_point_submission_that_says_why(self, imported):
        """Counted by formgrader (its class statistics agree with grades.csv), with the reason under each test."""
        course = imported["course"]
        nb = _load(course / "autograded" / "oscar" / "01_data" / "01_data.ipynb")
        [err] = nb["cells"][_index(nb, "data_normalize")]["outputs"]
        assert err["ename"].startswith("invalid notebook: the notebook is not valid JSON")
        nb = _load(course / "autograded" / "eve" / ETHICS / f"{ETHICS}.ipynb")
        [err] = nb["cells"][_index(nb, "ethics_shift")]["outputs"]
        assert err["ename"].startswith("no notebook submitted")
        assert (imported["root"] / "oscar" / "01_data.ipynb").read_text() == "{ not a notebook"   # left as it was

    def test_failed_cells_carry_the_teaching_message_not_hidden_tests(self, imported):
        nb = _load(imported["course"] / "autograded" / "bob" / "01_data" / "01_data.ipynb")
        cell = nb["cells"][_index(nb, "data_normalize")]
        [err] = cell["outputs"]
        assert err["output_type"] == "error" and err["ename"] == "wrong answer"
        assert "divides by 256" in err["evalue"] and "_hidden" not in json.dumps(err)
        [ok] = nb["cells"][_index(nb, "data_add_channel")]["outputs"]
        assert (ok["output_type"], ok["name"], _src({"source": ok["text"]})) == ("stream", "stdout", "\u2714 passed\n")
        answer = nb["cells"][_index(nb, "data_normalize_answer")]
        assert answer["outputs"] == []        # nothing executed: no outputs but the verdicts

    def test_nbgrader_export_has_the_same_totals(self, imported):
        course = imported["course"]
        proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export"], cwd=course,
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep
                                   + os.environ.get("PATH", "")})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with open(course / "grades.csv", newline="") as f:
            exported = {(r["student_id"], r["assignment"]): float(r["score"]) for r in csv.DictReader(f)}
        totals = json.loads((imported["out"] / "grades.json").read_text())["totals"]
        for student, lessons in totals.items():
            for lesson_id, points in lessons.items():
                assert exported[(student, lesson_id)] == float(points or 0), (student, lesson_id)

    def test_autograde_in_the_course_folder_injects_too(self, imported):
        """The written nbgrader_config.py keeps Execute out: nbgrader's own autograde is safe there."""
        course = imported["course"]
        assert "load_subconfig('autograder_config.py')" in (course / "nbgrader_config.py").read_text()
        assert "course_config" in (course / "autograder_config.py").read_text()
        from traitlets.config.loader import PyFileConfigLoader

        config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
        names = [p.__name__ for p in config.Autograde.autograde_preprocessors]
        assert "InjectVerdicts" in names and "Execute" not in names
        assert config.InjectVerdicts.results_dir == str(imported["out"].resolve())


    def test_a_resubmission_reimports_that_notebook_only_and_hand_grades_and_settings_stay(self, imported):
        """(Runs last: it changes the class.) The instructor grades a written answer by hand and sets
        a late penalty in nbgrader_config.py; bob resubmits lesson 1 and is graded again. The next
        import re-imports bob's lesson 1 only: no unchanged cell is flagged for review again, the
        hand grade and its comment stay, the instructor's setting stays and is used."""
        from nbgrader.api import Gradebook

        course, out, root = imported["course"], imported["out"], imported["root"]
        db = f"sqlite:///{course / 'gradebook.db'}"
        with Gradebook(db) as gb:
            grade = gb.find_grade("ethics_who_fails", ETHICS, ETHICS, "alice")
            grade.manual_score, grade.needs_manual_grade = 1.5, False
            gb.find_comment("ethics_who_fails", ETHICS, ETHICS, "alice").manual_comment = "Clear and concrete."
            gb.db.commit()
            flagged_before = _flagged(gb)
        config = course / "nbgrader_config.py"
        config.write_text(config.read_text() + 'c.LateSubmissionPlugin.penalty_method = "zero"\n')
        put(root, "bob", solved())
        proc = grade_cmd(root, "--out", out, "--jobs", 2, "--time-factor", 0.5, "--data-dir", data_dir())
        assert proc.returncode == 0, proc.stdout + proc.stderr
        lines = []
        summary = gradebook.import_to_gradebook(out, course, submissions=root, log=lines.append)
        assert [(st, le) for st, le, _ in summary["imported"]] == [("bob", "01_data")], lines
        assert sorted(summary["unchanged"]) == sorted(
            (st, le) for st in ("alice", "bob", "eve", "trudy", "mallory", "oscar") for le in ("01_data", ETHICS)
            if (st, le) != ("bob", "01_data"))
        with Gradebook(db) as gb:
            grade = gb.find_grade("ethics_who_fails", ETHICS, ETHICS, "alice")
            assert (grade.manual_score, grade.needs_manual_grade) == (1.5, False)
            assert gb.find_comment("ethics_who_fails", ETHICS, ETHICS, "alice").manual_comment == "Clear and concrete."
            assert _flagged(gb) == flagged_before                       # nothing flagged for review again
            assert ("alice", "ethics_who_fails") not in flagged_before and ("bob", "ethics_who_fails") in flagged_before
            bob = {g.cell.name: g.auto_score for g in gb.find_submission_notebook("01_data", "01_data", "bob").grades}
        rows = csv_points(out)
        assert bob == {gid: float(r["points"]) for (st, le, gid), r in rows.items() if (st, le) == ("bob", "01_data")}
        assert bob["data_normalize"] == 3.0                              # the resubmission's grade
        assert 'penalty_method = "zero"' in config.read_text()
        loaded = gradebook.load_course_config(course, out)
        assert loaded.LateSubmissionPlugin.penalty_method == "zero"
        assert "InjectVerdicts" in [p.__name__ for p in loaded.Autograde.autograde_preprocessors]


    def test_the_roster_names_the_students_and_the_export_adds_hand_grades_minus_late_penalties(self, imported):
        """(After the resubmission round, which marked alice's ethics_who_fails 1.5 by hand.) With a
        roster, formgrader shows names, not "None, None"; the Canvas export of the course gives
        nbgrader's score (autograded + by hand) minus its late penalty."""
        from nbgrader.api import Gradebook

        from autograder.grading import export

        course, out = imported["course"], imported["out"]
        roster = course.parent / "roster.csv"
        roster.write_text("id,first_name,last_name,email,lms_id\nalice,Alice,Liddell,alice@uni.edu,4711\n"
                          "bob,Bob,Smith,bob@uni.edu,4712\n")
        lines = []
        gradebook.import_to_gradebook(out, course, submissions=imported["root"], roster=roster, log=lines.append)
        db = f"sqlite:///{course / 'gradebook.db'}"
        with Gradebook(db) as gb:
            alice = gb.find_student("alice")
            assert (alice.first_name, alice.last_name, alice.email, alice.lms_user_id) == \
                ("Alice", "Liddell", "alice@uni.edu", "4711")
            gb.find_submission_notebook("01_data", "01_data", "bob").late_submission_penalty = 2.0
            gb.db.commit()
        path, _ = export.export(out, "canvas", roster=roster, course=course, out=course.parent / "canvas.csv")
        rows = {r["SIS User ID"]: r for r in csv.DictReader(path.read_text().splitlines())}
        ethics = next(k for k in rows["alice"] if k.startswith(ETHICS))
        totals = json.loads((out / "grades.json").read_text())["totals"]
        assert float(rows["alice"][ethics]) == float(totals["alice"][ETHICS]) + 1.5      # + the hand grade
        assert float(rows["bob"][next(k for k in rows["bob"] if k.startswith("01_data"))]) == \
            float(totals["bob"]["01_data"]) - 2.0                                         # - the late penalty


    def test_one_feedback_document_per_student_with_the_hand_grades_in_nbgraders_layout(self, imported):
        """(After the hand grade, its comment and bob's late penalty of the tests above.) The grade
        command's page, with the written answers' points and comments, the late penalty and the
        total at its top, in COURSE_DIR/feedback/<student>/<lesson>/<lesson>.html."""
        proc = subprocess.run([sys.executable, "-m", "autograder", "feedback", str(imported["out"]),
                               "--course", str(imported["course"])], cwd=REPO, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        folder = imported["course"] / "feedback"
        alice = (folder / "alice" / ETHICS / f"{ETHICS}.html").read_text()
        hand = alice[alice.index('<section id="graded-by-hand"'):alice.index("</section>")]
        assert "<code>ethics_who_fails</code></td><td>1.5 / 2</td><td>Clear and concrete.</td>" in hand
        assert "not graded yet" in hand and "Total: 10.5 / 19" in hand            # 9 autograded + 1.5
        assert "_hidden" not in alice and not re.search(r'src="https?://', alice)     # (links to papers are fine)
        bob = (folder / "bob" / "01_data" / "01_data.html").read_text()
        assert "Late penalty: &minus;2 points" in bob and "Total: 10 / 12" in bob
        assert "data_normalize" in bob                                  # the verdicts of the run are there


def test_verdict_outputs_give_nbgrader_our_points():
    """Unit test (no sandbox): nbgrader's determine_grade on InjectVerdicts' outputs."""
    import nbformat
    from nbgrader.utils import determine_grade

    def grade(v):
        cell = nbformat.v4.new_code_cell("check('x')", metadata={"nbgrader": {
            "grade": True, "solution": False, "grade_id": "t", "points": 3, "locked": True}})
        cell.outputs = gradebook.verdict_outputs({"grade_id": "t", "max_points": 3, **v})
        return determine_grade(cell)[0]

    assert grade({"status": "passed", "points": 3}) == 3
    assert grade({"status": "failed", "points": 0, "reason": "wrong answer", "message": "x"}) == 0
    assert grade({"status": "failed", "points": None, "reason": "cell raised NameError"}) == 0
    assert grade({"status": "failed", "points": 1.5, "reason": "partly"}) == 1.5


def test_autograde_preprocessors_replace_execute_only():
    from nbgrader.converters import Autograde

    default = list(Autograde.class_traits()["autograde_preprocessors"].default())
    mine = gradebook.autograde_preprocessors()
    assert [p.__name__ for p in mine] == [("InjectVerdicts" if p.__name__ == "Execute" else p.__name__)
                                          for p in default]


def test_a_missing_notebook_in_the_collect_layout_is_skipped_with_why(tmp_path):
    """Where nbgrader collect put the notebooks in the course folder itself, no stand-in may take a
    missing notebook's place there (the next grading would grade it): skipped, saying why."""
    r = {"student": "dave", "lesson": "01_data", "status": "missing", "reason": "no notebook submitted"}
    with pytest.raises(gradebook.Skip, match="no notebook submitted.*collected into this course folder"):
        gradebook._import_one(None, None, r, tmp_path, tmp_path)
    assert not (tmp_path / "submitted").exists()
