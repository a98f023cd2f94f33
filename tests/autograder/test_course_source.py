"""The grader takes the course from one place, and never turns its own mistake into students' zeros.

* A second checkout graded with the first one's virtual environment (whose editable install
  points at the first): the sandbox, the zygote and a cold driver all use the checkout the
  grade command runs from, so a correct notebook gets full marks (warm and cold).
* Where the sandbox still cannot find a check that the master calls, the notebook is a grader
  error naming the missing check and both folders (exit 1), never a 0; the zygote refuses to
  serve a course other than the one the sandbox mounts; the driver's word on its course comes
  before any student code, so a student cannot forge it.
* A notebook whose nbgrader metadata was stripped (nbstripout, some editors) is graded as the
  intact one: its cells are recognized by their cell ids, or locked cells by their unchanged code.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import runner, zygote
from autograder.grading import plan as plans
from autograder.grading.worker import grade_task
from submission_kit import (LESSON, REPO, WRONG_NORMALIZE, copy_course, data_dir, put, skip_unless_gradable,
                            solved)

FORGED = '{"course": "/nowhere", "checks": []}'
FORGER = ("import os as _os\n"
          f"print('[grader] course {FORGED}')\n"
          f"_os.write(1, b'[grader] course {FORGED}\\n')\n")


def stripped(nb: dict, *, ids: bool = True) -> dict:
    """``nb`` as a tool that drops nbgrader's metadata leaves it (and its cell ids, ``ids=False``)."""
    out = copy.deepcopy(nb)
    for cell in out["cells"]:
        cell["metadata"].pop("nbgrader", None)
        if not ids:
            cell.pop("id", None)
    return out


def forging(nb: dict) -> dict:
    """A correct notebook whose first code cell prints the driver's course line, saying it knows no check."""
    out = copy.deepcopy(nb)
    first = next(c for c in out["cells"] if c["cell_type"] == "code")
    first["source"] = FORGER + "".join(first["source"])
    return out


def grade_from(checkout: Path, subs: Path, out: Path, **env) -> subprocess.CompletedProcess:
    """``python -m autograder grade`` run inside ``checkout`` with REPO's virtual environment."""
    return subprocess.run([sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), "--seed", "7",
                           "--data-dir", data_dir(), "--jobs", "2", "--no-progress"],
                          cwd=checkout, capture_output=True, text=True, timeout=900, env={**os.environ, **env})


def points(out: Path) -> dict:
    results = json.loads((out / "grades.json").read_text())["results"]
    return {r["student"]: (r["status"], r["points"], sorted(c["grade_id"] for c in r["cells"]
                                                          if c["kind"] == "test" and c["status"] != "passed"))
            for r in results}


@pytest.fixture(scope="module")
def second(tmp_path_factory):
    skip_unless_gradable()
    tmp = tmp_path_factory.mktemp("second")
    checkout = copy_course(tmp / "course2")
    subs = tmp / "subs"
    put(subs, "alice", solved())
    put(subs, "bob", stripped(solved()))
    put(subs, "carol", stripped(solved(), ids=False))
    put(subs, "dave", stripped(solved(data_normalize_answer=WRONG_NORMALIZE)))
    put(subs, "eve", forging(solved()))
    proc = grade_from(checkout, subs, tmp / "out")
    return checkout, subs, tmp, proc


@pytest.mark.slow
@pytest.mark.real_data
class TestSecondCheckout:
    def test_the_second_checkout_grades_with_its_own_course(self, second):
        _, _, tmp, proc = second
        assert proc.returncode == 0, proc.stdout + proc.stderr
        got = points(tmp / "out")
        assert got["alice"] == ("graded", 12.0, [])

    def test_stripped_metadata_is_graded_as_the_intact_notebook(self, second):
        _, _, tmp, proc = second
        got = points(tmp / "out")
        assert got["bob"] == ("graded", 12.0, []), got["bob"]          # by the cell ids
        assert got["carol"] == ("graded", 12.0, []), got["carol"]      # locked cells by their code
        assert got["dave"] == ("graded", 9.0, ["data_normalize"])      # a real mistake still costs its points
        notes = json.loads((tmp / "out" / "results" / "bob" / f"{LESSON}.json").read_text())["notes"]
        assert any("lost their nbgrader metadata" in n for n in notes), notes

    def test_a_student_cannot_forge_the_drivers_course_line(self, second):
        _, _, tmp, _ = second
        assert points(tmp / "out")["eve"] == ("graded", 12.0, [])

    def test_a_cold_start_takes_the_same_course(self, second, tmp_path):
        checkout, _, _, _ = second
        subs = tmp_path / "subs"
        put(subs, "alice", solved())
        proc = grade_from(checkout, subs, tmp_path / "out", AUTOGRADER_ZYGOTE="0")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert points(tmp_path / "out")["alice"] == ("graded", 12.0, [])


@pytest.mark.slow
@pytest.mark.real_data
def test_a_sandbox_without_the_masters_checks_is_a_grader_error_not_a_zero(tmp_path, monkeypatch):
    """The sandbox sees no lesson checks (as when it mounted another checkout's): grader error, named."""
    skip_unless_gradable()
    monkeypatch.setenv("MNIST_DATA_DIR", data_dir())     # grade_task sets it for its process: undone after
    monkeypatch.setattr(runner, "_course_files", lambda: [])
    item = {"student": "alice", "lesson": LESSON, "path": str(tmp_path / "x.ipynb"),
            "notebook": json.dumps(solved()).encode(), "seed": 1, "seed_id": "s", "grader_version": "v",
            "data_dir": data_dir(), "scratch": str(tmp_path)}
    r = grade_task(item)["result"]
    assert r["status"] == "grader_error" and r["points"] is None, r["reason"]
    assert "has no check 'data_add_channel'" in r["reason"] and str(REPO) in r["reason"], r["reason"]


@pytest.mark.slow
def test_a_zygote_that_imports_another_course_refuses_to_serve(tmp_path):
    """Told to take the course from a folder without one, the zygote imports the venv's: refused by name."""
    z = zygote.Zygote(course=tmp_path)
    try:
        with pytest.raises(zygote.ZygoteError) as err:
            z.wait_ready()
        assert str(REPO) in str(err.value) and str(tmp_path) in str(err.value)
        with pytest.raises(zygote.ZygoteError):       # and keeps refusing, at once
            z.wait_ready(timeout=1)
    finally:
        z.close()
    assert runner._warm_zygote(z, runner.Limits(), {}) is None       # the runner starts cold instead


def test_only_a_well_formed_first_line_is_the_drivers_word():
    line = '[grader] course {"course": "/c", "checks": ["a"]}'
    assert runner.course_said(line + "\nmore") == {"course": "/c", "checks": ["a"]}
    assert runner.course_said("student output\n" + line) is None          # not first: not the driver's
    assert runner.course_said('[grader] course {"course": ') is None       # cut short
    assert runner.course_said("") is None


def test_prepare_places_restored_cells_by_id_or_code_where_metadata_was_stripped():
    plan = plans.load_plan(LESSON, validate_checks=False)
    intact = plans.prepare(plan, solved())
    for nb in (stripped(solved()), stripped(solved(), ids=False)):
        got = plans.prepare(plan, nb)
        assert [c["source"] for c in got.notebook["cells"]] == [c["source"] for c in intact.notebook["cells"]]
        locked = {g: i for g, i in intact.positions.items() if g in plan.locked}
        assert {g: got.positions[g] for g in locked} == locked
    # a cell that still has nbgrader metadata is never taken for another by its id
    nb = solved()
    answer = next(c for c in nb["cells"] if c.get("id") == "data_normalize_answer")
    answer["id"] = "data_add_channel"
    got = plans.prepare(plan, nb)
    assert got.positions == intact.positions
