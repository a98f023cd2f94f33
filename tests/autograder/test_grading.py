"""``python -m autograder grade``: a class of lesson-1 submissions, graded end to end.

The class (built here from lesson 1's released notebook and the master's solutions) has one
student per case: correct, untouched, partly wrong, invalid JSON, no notebook, ``os._exit`` in
an exercise cell, an infinite loop, a lying ``__eq__``/``__class__`` object (plus 200 MB of output
and ``sys.exit``), a monkeypatched
``check`` that forges data, and tampered test cells and points. One run of the command grades
them all (``--jobs 2``); each test reads its student's result. Fast unit tests cover discovery,
the plan, the judge on forged data, atomic writes and usage errors without a sandbox.
"""
from __future__ import annotations

import csv
import html as htmllib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from autograder import sandbox
from autograder.grading import cli, discover, judge, plan, report
from autograder.grading import engine
from autograder.grading.worker import grade_task, item_seed, lesson_limits
from submission_kit import (CHEAT, LESSON, LIAR, MASTER, RELEASED, TESTS, TO_TENSORS_ALONE, _index, _load,
                            _src, data_dir, grade_cmd, partly_wrong, put, solution, solution_lines, solved,
                            write_master, add_channel_cells, REPO)

_why: list = []
needs_bwrap = pytest.mark.skipif(not sandbox.bwrap_available(why=_why), reason=f"bwrap unavailable: {_why}")


def build_class(root: Path) -> dict:
    """Every case of the module docstring; returns {student: expected autograded points}."""
    put(root, "correct", solved())
    put(root, "untouched", _load(RELEASED))
    put(root, "partly", partly_wrong())
    put(root, "badjson", '{"cells": [ {"cell_type": "code", ')
    (root / "ghost").mkdir()                                   # a student folder without the notebook
    put(root, "exiter", solved(data_normalize_answer=solution("data_normalize_answer")
                               + "import os\nos._exit(3)\n"))
    looper = solved(data_normalize_answer="def normalize(images):\n    while True:\n        pass\n",
                    data_to_tensors_answer=TO_TENSORS_ALONE)
    looper["cells"] = [c for c in looper["cells"] if "show_pixel_histogram(sample" not in _src(c)]
    put(root, "looper", looper)
    liar = solved(data_normalize_answer=LIAR)          # ... who also floods the output and calls sys.exit
    liar["cells"].insert(_index(liar, "data_add_channel") + 1, {
        "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "id": "noise",
        "source": "import sys, warnings\nwarnings.warn('noise')\nprint('x' * (200 << 20))\nsys.exit('bye')"})
    put(root, "liar", liar)
    cheater = _load(RELEASED)
    cheater["cells"].insert(_index(cheater, "data_setup") + 1,
                            {"cell_type": "code", "metadata": {}, "source": CHEAT, "outputs": [],
                             "execution_count": None, "id": "cheat"})
    put(root, "cheater", cheater)
    tamper = partly_wrong()
    cells = tamper["cells"]
    cells[_index(tamper, "data_normalize")]["source"] = 'print("\u2714 data_normalize passed")'
    cells[_index(tamper, "data_normalize")]["metadata"]["nbgrader"]["points"] = 100
    cells[_index(tamper, "data_make_loader")]["metadata"]["nbgrader"]["grade_id"] = "data_make_loader_x"
    cells[_index(tamper, "data_make_loader_x")]["source"] = "pass"
    cells[_index(tamper, "data_add_channel_answer")]["metadata"]["nbgrader"].update(grade=True, points=10)
    del cells[_index(tamper, "data_add_channel")]
    cells.append({"cell_type": "code", "id": "bonus", "execution_count": None, "outputs": [], "source": "print(1)",
                  "metadata": {"nbgrader": {"grade": True, "grade_id": "data_bonus", "points": 50, "locked": True,
                                            "schema_version": 3, "solution": False}}})
    put(root, "tamper", tamper)
    return {"correct": 12, "untouched": 0, "partly": 5, "badjson": 0, "ghost": 0, "exiter": 6, "looper": 9,
            "liar": 6, "cheater": 0, "tamper": 5}


# ------------------------------------------------------------------------------------------
# The class, graded once
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not sandbox.bwrap_available():
        pytest.skip(f"bwrap unavailable: {_why}")
    if not (Path(data_dir()) / "MNIST" / "raw").is_dir():
        pytest.skip("real MNIST missing; run `make data`")
    base = tmp_path_factory.mktemp("class")
    root, out = base / "submissions", base / "out"
    expected = build_class(root)
    # time factor 0.25: a cell may run 15 s, the notebook 45 s (the loop costs 15 s + 5 s grace)
    proc = grade_cmd(root, "--out", out, "--jobs", 2, "--time-factor", 0.25, "--data-dir", data_dir())
    results = {p.parent.name: json.loads(p.read_text()) for p in (out / "results").glob(f"*/{LESSON}.json")}
    return {"root": root, "out": out, "proc": proc, "expected": expected, "results": results}


def cells_of(result) -> dict:
    return {c["grade_id"]: c for c in result["cells"]}


def failed(result) -> set:
    return {c["grade_id"] for c in result["cells"] if c["status"] != "passed"}


def text_of_html(path: Path) -> str:
    page = path.read_text()
    page = re.sub(r"<style.*?</style>", "", page, flags=re.S)
    return htmllib.unescape(re.sub(r"<[^>]+>", "", page))




@pytest.mark.slow
@pytest.mark.real_data
class TestClass:
    def test_grading_worked_exit_0_and_every_student_graded(self, graded):
        proc = graded["proc"]
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert set(graded["results"]) == set(graded["expected"])
        assert "Traceback" not in proc.stderr
        for student in graded["expected"]:
            assert re.search(rf"^{student}\s", proc.stdout, re.M), proc.stdout   # the summary table
        assert "10 graded, 0 unchanged, 0 grader error(s)" in proc.stdout

    def test_points_of_every_student_no_unearned_point(self, graded):
        got = {s: r["points"] for s, r in graded["results"].items()}
        assert got == graded["expected"], {s: (r["points"], r["reason"]) for s, r in graded["results"].items()}

    def test_correct_submission_gets_course_yml_points(self, graded):
        from coursekit import config

        r = graded["results"]["correct"]
        assert r["points"] == r["max_points"] == config.load().lesson(LESSON).points
        assert all(c["status"] == "passed" and c["points"] == c["max_points"] for c in r["cells"])
        assert r["isolated"] is True and r["status"] == "graded"

    def test_untouched_lesson_zero_not_implemented(self, graded):
        r = graded["results"]["untouched"]
        assert r["points"] == 0 and r["max_points"] == 12
        for c in r["cells"]:
            assert c["status"] == "failed" and c["reason"] == "not implemented", c
            assert "not implemented yet" in c["message"]

    def test_partly_wrong_exactly_the_expected_checks_fail(self, graded):
        r = graded["results"]["partly"]
        assert failed(r) == {"data_normalize", "data_make_loader"}
        cells = cells_of(r)
        assert "divides by 256" in cells["data_normalize"]["message"]
        assert "did not shuffle" in cells["data_make_loader"]["message"]
        assert cells["data_normalize"]["reason"].startswith("wrong answer")

    def test_invalid_json_and_missing_notebook_have_reasons(self, graded):
        bad, ghost = graded["results"]["badjson"], graded["results"]["ghost"]
        assert bad["status"] == "invalid_notebook" and "not valid JSON" in bad["reason"]
        assert all(c["points"] == 0 and "not valid JSON" in c["reason"] for c in bad["cells"])
        assert ghost["status"] == "missing" and "no notebook submitted" in ghost["reason"]
        assert all(c["points"] == 0 and c["status"] == "missing" for c in ghost["cells"])
        assert (graded["out"] / "feedback" / "ghost" / f"{LESSON}.html").is_file()

    def test_os_exit_costs_that_cell_and_later_cells_are_still_graded(self, graded):
        r = graded["results"]["exiter"]
        cells = cells_of(r)
        assert failed(r) == {"data_normalize", "data_to_tensors"}      # to_tensors calls normalize
        assert cells["data_make_loader"]["status"] == "passed" and cells["data_make_loader"]["run"] == 2
        assert "exited with status 3" in cells["data_normalize"]["reason"], cells["data_normalize"]
        assert len(r["runs"]) == 2 and r["runs"][1]["skipped_cells"]

    def test_infinite_loop_times_out_with_a_reason(self, graded):
        r = graded["results"]["looper"]
        assert failed(r) == {"data_normalize"}
        assert "timed out" in cells_of(r)["data_normalize"]["reason"], cells_of(r)["data_normalize"]

    def test_lying_object_earns_nothing_and_output_floods_or_sys_exit_cost_nothing(self, graded):
        r = graded["results"]["liar"]
        assert failed(r) == {"data_normalize", "data_to_tensors"}     # add_channel and make_loader still pass
        assert "output truncated" in r["reason"] or "SystemExit" in r["reason"], r["reason"]

    def test_monkeypatched_check_and_numpy_earn_nothing(self, graded):
        r = graded["results"]["cheater"]
        assert r["points"] == 0 and failed(r) == set(TESTS)
        assert all(c["reason"] != "" for c in r["cells"])

    def test_tampered_test_cells_and_points_change_nothing(self, graded):
        t, p = graded["results"]["tamper"], graded["results"]["partly"]
        assert [(c["grade_id"], c["points"], c["max_points"], c["status"], c["reason"]) for c in t["cells"]] == \
               [(c["grade_id"], c["points"], c["max_points"], c["status"], c["reason"]) for c in p["cells"]]
        assert t["max_points"] == 12
        notes = " ".join(t["notes"])
        assert "data_add_channel was missing" in notes and "data_normalize was edited" in notes

    def test_grades_csv_rows_and_columns(self, graded):
        rows = list(csv.DictReader((graded["out"] / "grades.csv").open()))
        assert list(rows[0]) == report.CSV_COLUMNS
        assert len(rows) == len(graded["expected"]) * len(TESTS)
        by = {(r["student"], r["grade_id"]): r for r in rows}
        assert by[("partly", "data_normalize")]["points"] == "0" and by[("partly", "data_add_channel")]["points"] == "2"
        assert "divides by 256" in by[("partly", "data_normalize")]["message"]
        data = json.loads((graded["out"] / "grades.json").read_text())
        assert data["totals"]["correct"][LESSON] == 12 and len(data["results"]) == len(graded["expected"])

    def test_feedback_shows_messages_not_hidden_tests_nor_solutions(self, graded):
        fb = graded["out"] / "feedback"
        not_written = ["data_normalize_answer", "data_to_tensors_answer", "data_make_loader_answer"]
        for student in ("untouched", "partly", "cheater", "tamper"):
            # (partly and tamper wrote add_channel exactly as the solution does: their own code)
            lines = solution_lines(*not_written) if student in ("partly", "tamper") else solution_lines()
            assert lines
            text = text_of_html(fb / student / f"{LESSON}.html")
            assert "BEGIN HIDDEN TESTS" not in text and "_hidden" not in text, student
            leaked = [line for line in lines if line in text]
            assert not leaked, f"{student}'s feedback shows solution code: {leaked}"
        partly = text_of_html(fb / "partly" / f"{LESSON}.html")
        assert "divides by 256" in partly and "did not shuffle" in partly
        assert "5 / 12" in partly
        untouched = text_of_html(fb / "untouched" / f"{LESSON}.html")
        assert "not implemented yet" in untouched

    def test_rerun_skips_work_and_gives_identical_grades(self, graded):
        out = graded["out"]
        before = (out / "grades.csv").read_bytes()
        stamps = {p: p.stat().st_mtime_ns for p in (out / "results").rglob("*.json")}
        proc = grade_cmd(graded["root"], "--out", out, "--jobs", 2, "--time-factor", 0.25, "--data-dir", data_dir())
        assert proc.returncode == 0, proc.stderr
        assert "0 graded, 10 unchanged" in proc.stdout, proc.stdout
        assert (out / "grades.csv").read_bytes() == before
        assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
        # A new submission of one student is graded again; nothing else is.
        put(graded["root"], "badjson", "not json either")
        proc = grade_cmd(graded["root"], "--out", out, "--time-factor", 0.25, "--data-dir", data_dir())
        assert proc.returncode == 0 and "1 graded, 9 unchanged" in proc.stdout, proc.stdout
        assert (out / "grades.csv").read_bytes() != before   # the reason changed
        assert {p: p.stat().st_mtime_ns for p in stamps if "badjson" not in str(p)} == \
               {p: s for p, s in stamps.items() if "badjson" not in str(p)}

    def test_regrading_from_scratch_is_repeatable(self, graded, tmp_path):
        """Same secret, fresh output folder: the same rows (the inputs are drawn from the secret)."""
        secret = int((graded["out"] / ".grading_seed").read_text())
        root = tmp_path / "again"
        for student in ("partly", "exiter"):
            put(root, student, (graded["root"] / student / f"{LESSON}.ipynb").read_text())
        proc = grade_cmd(root, "--out", tmp_path / "out", "--jobs", 2, "--seed", secret, "--time-factor", 0.25,
                         "--data-dir", data_dir())
        assert proc.returncode == 0, proc.stderr
        again = list(csv.reader((tmp_path / "out" / "grades.csv").open()))
        first = [r for r in csv.reader((graded["out"] / "grades.csv").open()) if r[0] in ("partly", "exiter")]
        assert again[1:] == first


# ------------------------------------------------------------------------------------------
# Manual (hand-graded) cells, with a tiny master of its own
# ------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.real_data
@needs_bwrap
def test_written_answers_are_left_for_hand_grading(tmp_path):
    from autograder.authoring import nbgrader_meta as meta

    solutions = tmp_path / "solutions"
    write_master(solutions, "99_reflect", add_channel_cells("reflect") + [
        ("markdown", "A model answer that must never be shown.", meta("reflect_ethics", grade=True, solution=True, points=5)),
    ])
    nb = _load(solutions / "99_reflect" / "99_reflect.ipynb")
    nb["cells"][_index(nb, "reflect_answer")]["source"] = "def add_channel(images):\n    return images[:, None]\n"
    nb["cells"][_index(nb, "reflect_ethics")]["source"] = "Bias in the data becomes bias in the model."
    put(tmp_path / "subs", "dana", nb, "99_reflect.ipynb")
    proc = grade_cmd(tmp_path / "subs", "--out", tmp_path / "out", "--solutions", solutions, "--time-factor", 0.25,
                     "--data-dir", data_dir())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads((tmp_path / "out" / "results" / "dana" / "99_reflect.json").read_text())
    cells = cells_of(r)
    assert cells["data_add_channel"]["points"] == 2 and r["points"] == 2 and r["manual_max_points"] == 5
    manual = cells["reflect_ethics"]
    assert manual["status"] == "manual" and manual["points"] is None and manual["max_points"] == 5
    assert manual["answer"] == "Bias in the data becomes bias in the model."
    rows = {row["grade_id"]: row for row in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert rows["reflect_ethics"]["status"] == "manual" and rows["reflect_ethics"]["points"] == ""
    page = text_of_html(tmp_path / "out" / "feedback" / "dana" / "99_reflect.html")
    assert "Bias in the data" in page and "graded by hand" in page and "model answer" not in page


# ------------------------------------------------------------------------------------------
# Fast: no sandbox
# ------------------------------------------------------------------------------------------
def test_discover_flat_submitted_and_exchange_layouts(tmp_path):
    lessons = ["01_data", "02_conv"]
    flat = tmp_path / "flat"
    put(flat, "alice", "{}")
    put(flat, "bob", "{}", "02_conv.ipynb")
    (flat / "carol").mkdir()
    (flat / ".ipynb_checkpoints").mkdir()
    (flat / "bad name").mkdir()
    subs, warnings = discover.discover(flat, lessons)
    assert [(s.student, s.lesson, s.path.exists()) for s in subs] == [
        ("alice", "01_data", True), ("alice", "02_conv", False), ("bob", "01_data", False),
        ("bob", "02_conv", True), ("carol", "01_data", False), ("carol", "02_conv", False)]
    assert any("bad name" in w for w in warnings)

    course = tmp_path / "course"
    nb = course / "submitted" / "alice" / "01_data"
    nb.mkdir(parents=True)
    (nb / "01_data.ipynb").write_text("{}")
    (nb / "timestamp.txt").write_text("2024-05-01 10:00:00.000000 UTC")
    other = course / "submitted" / "bob" / "01_data"
    other.mkdir(parents=True)
    (other / "my copy.ipynb").write_text("{}")
    for root in (course, course / "submitted"):
        subs, _ = discover.discover(root, lessons)
        assert [(s.student, s.layout, s.path.name) for s in subs] == [
            ("alice", "submitted", "01_data.ipynb"), ("bob", "submitted", "my copy.ipynb")]
        assert subs[0].submitted_at.startswith("2024-05-01") and "only notebook" in subs[1].note

    inbound = tmp_path / "exchange" / "inbound"
    for name in ("alice+01_data+2024-05-01 10:00:00.000000 UTC+abc",
                 "alice+01_data+2024-05-02 10:00:00.000000 UTC+def",
                 "bob+01_data+2024-05-01 09:00:00.000000 UTC"):
        (inbound / name).mkdir(parents=True)
        (inbound / name / "01_data.ipynb").write_text("{}")
    subs, _ = discover.discover(tmp_path / "exchange", lessons)
    assert [(s.student, s.layout) for s in subs] == [("alice", "exchange"), ("bob", "exchange")]
    assert "2024-05-02" in str(subs[0].path)                              # the latest one
    with pytest.raises(discover.DiscoveryError):
        discover.discover(flat, lessons, only=["09_nope"])


def test_an_exchange_submission_made_in_another_users_name_is_not_graded(tmp_path):
    """On a hub, `nbgrader submit --student daemon` by the user bin makes a folder daemon+... that
    bin owns: skipped with a warning naming bin; daemon's own (older) folder is graded. A folder
    root owns (a restore) is trusted. (Users of every Debian system; chown needs root.)"""
    import pwd

    if os.geteuid() != 0:
        pytest.skip("needs root to give folders to other users")
    inbound = tmp_path / "exchange" / "inbound"
    own = inbound / "daemon+01_data+2024-05-01 10:00:00.000000 UTC+abc"
    forged = inbound / "daemon+01_data+2024-05-02 10:00:00.000000 UTC+def"
    restored = inbound / "sys+01_data+2024-05-02 10:00:00.000000 UTC+ghi"
    for folder, owner in ((own, "daemon"), (forged, "bin"), (restored, "root")):
        folder.mkdir(parents=True)
        (folder / "01_data.ipynb").write_text("{}")
        os.chown(folder, pwd.getpwnam(owner).pw_uid, -1)
    subs, warnings = discover.discover(tmp_path / "exchange", ["01_data"])
    assert [(s.student, s.path.parent.name) for s in subs] == [("daemon", own.name), ("sys", restored.name)]
    assert warnings == [f"skipped {forged.name}: it claims to be daemon's but belongs to the Unix user bin "
                        f"(nbgrader submit --student): not graded, daemon's own latest submission is"]


def test_plan_comes_from_the_master_and_prepare_restores_locked_cells():
    p = plan.load_plan(LESSON)
    assert [(c.grade_id, c.points, c.check_ids) for c in p.cells] == [
        (g, pts, [g, g + "_hidden"]) for g, pts in zip(TESTS, (2, 3, 3, 4))]
    nb = partly_wrong()
    nb["cells"][_index(nb, "data_normalize")]["metadata"]["nbgrader"]["points"] = 100
    nb["cells"][_index(nb, "data_normalize")]["source"] = "print('passed')"
    del nb["cells"][_index(nb, "data_to_tensors")]
    del nb["cells"][_index(nb, "data_setup")]
    prep = plan.prepare(p, nb)
    cells = prep.notebook["cells"]
    for gid in TESTS:
        src = cells[prep.positions[gid]]["source"]
        assert f'check("{gid}_hidden"' in src and cells[prep.positions[gid]]["metadata"]["nbgrader"]["points"] != 100
    assert prep.positions["data_to_tensors"] == prep.positions["data_to_tensors_answer"] + 1
    assert prep.positions["data_setup"] < prep.positions["data_add_channel_answer"]
    assert "BEGIN SOLUTION" not in json.dumps(prep.notebook)
    assert plan.released_source(_src(_load(MASTER)["cells"][_index(_load(MASTER), "data_normalize")])) == \
        _src(_load(RELEASED)["cells"][_index(_load(RELEASED), "data_normalize")])


def _npz(tmp_path, name, data):
    from coursekit import checks

    return checks.save(data, tmp_path / f"{name}.npz")


def test_judge_uses_the_graders_seed_and_survives_forged_data(tmp_path):
    from coursekit import checks

    add_channel = lambda images: images[:, None]   # noqa: E731
    # Right answers for the public default seed (0), claimed in the file: judged with the grader's seed.
    right_for_0 = checks.collect("data_add_channel", add_channel, seed=0)
    assert judge.judge_check("data_add_channel", _npz(tmp_path, "a", right_for_0), seed=0).passed
    v = judge.judge_check("data_add_channel", _npz(tmp_path, "b", right_for_0), seed=987654)
    assert not v.passed and v.reason == "wrong answer"
    right = checks.collect("data_add_channel_hidden", add_channel, seed=987654)
    assert judge.judge_check("data_add_channel_hidden", _npz(tmp_path, "c", right), seed=987654).passed
    for forged in ({"__status__": "ok"}, {"__status__": "ok", "out.kind": "ndarray", "out.shape": np.array([1])},
                   {"__status__": "whatever"}, {"out.value": np.zeros(3)}):
        v = judge.judge_check("data_normalize_hidden", _npz(tmp_path, "d", forged), seed=5)
        assert not v.passed and ("malformed" in v.reason or "wrong" in v.reason), v
    (tmp_path / "e.npz").write_bytes(b"PK not a zip")
    assert judge.judge_check("data_normalize", tmp_path / "e.npz", seed=5).reason.startswith("malformed data")


def test_a_cell_earns_the_share_of_its_parts_that_pass_on_the_graders_inputs(tmp_path):
    """Lesson 3's Net with a right forward and a wrong fc2 (84 -> 80): fc_net's __init__ part fails,
    its forward part passes, public and hidden: half of the cell's 5 points. Both parts wrong: 0."""
    from types import SimpleNamespace

    import torch.nn.functional as F
    from torch import nn
    from coursekit import checks

    class WrongFc2(nn.Module):
        def __init__(self, fc2=80, relu=True):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, fc2), nn.Linear(fc2, 10)
            self.relu = relu

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv2(F.max_pool2d(F.relu(self.conv1(x)), 2))), 2).flatten(1)
            x = F.relu(self.fc1(x)) if self.relu else self.fc1(x)
            return self.fc3(F.relu(self.fc2(x)))

    class Both(WrongFc2):
        def __init__(self):
            super().__init__(relu=False)

    cell = plan.GradedCell("fc_net", "test", 5.0, ["fc_net", "fc_net_hidden"])
    seed = 4242
    for net, points in ((WrongFc2, 2.5), (Both, 0.0)):
        paths = {cid: _npz(tmp_path, f"{net.__name__}-{cid}", checks.collect(cid, net, seed=seed))
                 for cid in cell.check_ids}
        report = SimpleNamespace(collected=paths, cells=[], status="ok", reason="", rejected={})
        v = judge._judge_test_cell(cell, [judge.RunInfo(1, report, {"fc_net": 3}, {})], seed)
        assert v.points == points and v.status == "failed", v
        assert "fc2.weight should have shape (84, 120)" in v.message
        if points:
            assert v.reason == "wrong answer in __init__ (partial credit)"
            assert v.checks[0].as_dict()["failed_parts"] == ["__init__"]
        else:
            assert "2. forward: the ReLU after fc1 is missing" in v.message


def test_result_files_are_never_half_written(tmp_path, monkeypatch):
    target = tmp_path / "results" / "alice" / "01_data.json"
    report.write_json_atomic(target, {"status": "graded", "cells": [], "points": 1})
    good = target.read_bytes()
    with pytest.raises(ValueError):
        report.write_json_atomic(target, {"status": "graded", "cells": [], "points": float("nan")})
    real_replace = os.replace

    def crash(src, dst):
        raise KeyboardInterrupt   # interrupted between writing and renaming

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        report.write_json_atomic(target, {"status": "graded", "cells": [], "points": 2})
    monkeypatch.setattr(os, "replace", real_replace)
    assert target.read_bytes() == good
    assert sorted(p.name for p in target.parent.iterdir()) == ["01_data.json"]   # no temporary left
    target.write_text('{"status": "graded", "cel')                             # truncated by hand
    assert report.load_result(target) is None                                  # graded again, no crash


def test_grader_error_in_one_item_is_recorded_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))   # grade_task sets it (for its worker process): undone after
    item = {"student": "alice", "lesson": LESSON, "path": str(tmp_path / "x.ipynb"), "notebook": b"{}",
            "solutions": str(tmp_path / "no-solutions"), "seed": 1, "seed_id": "s", "grader_version": "v",
            "data_dir": str(tmp_path)}
    r = grade_task(item)["result"]
    assert r["status"] == "grader_error" and "grader error" in r["reason"] and r["points"] is None


def test_feedback_html_is_sanitized():
    nb = {"cells": [{"cell_type": "markdown", "metadata": {},
                     "source": "# Mine\n<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3))"},
                    {"cell_type": "code", "metadata": {}, "execution_count": None, "source": "1",
                     "outputs": report.safe_outputs([
                         {"output_type": "display_data", "data": {"text/html": "<script>alert(4)</script>",
                                                                  "image/png": '"><script>alert(5)</script>',
                                                                  "text/plain": "check(\"data_x_hidden\", f)"}},
                         {"output_type": "stream", "name": "stdout", "text": "### BEGIN HIDDEN TESTS"}])}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    page = report.render_html(nb, "t")
    body = page[page.index("<body"):]
    assert "<script" not in body and "onerror=" not in body and "href=\"javascript" not in body
    assert "<h1" in body and "alert(1)" in body                  # markdown still renders; the script is text
    assert "_hidden" not in body and "HIDDEN TESTS" not in body


def test_a_feedback_page_fetches_nothing_and_its_math_renders_offline(tmp_path):
    """Lesson 2's text as a feedback page: no script, stylesheet or image from the internet (the lab
    template loaded require.js and MathJax from a CDN), and its formulas as MathML, which Chromium
    draws with no network; an injected MathML link cannot run script."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from browser_kit import chromium

    import nbformat

    nb = nbformat.read(REPO / "lessons" / "02_conv" / "02_conv.ipynb", as_version=4)
    nb["cells"].insert(0, {"cell_type": "markdown", "metadata": {},
                           "source": '$x$ <math><mi href="javascript:alert(1)" onclick="alert(2)">y</mi></math>'})
    page = report.render_html(nb, "Feedback: 02_conv - alice")
    fetched = re.findall(r'(?:src|href)=["\'](https?://[^"\']+)|url\(["\']?(https?://[^)"\']+)', page)
    assert fetched == [], fetched
    body = page[page.index("<body"):]
    assert body.count("<math") >= 3 and "javascript:" not in body and "onclick" not in body
    assert "\\frac" not in body and "\\sum" not in body                 # no TeX left for a MathJax to typeset
    (tmp_path / "page.html").write_text(page)
    with chromium() as browser:
        browser.get((tmp_path / "page.html").as_uri())
        sizes = browser.execute_script(
            "return [...document.querySelectorAll('math[display=block]')].map(m => m.getBoundingClientRect().height)")
        browser.execute_script("document.querySelectorAll('math[display=block]')[1].scrollIntoView()")
        browser.save_screenshot(str(tmp_path / "math.png"))
    assert len(sizes) >= 2 and min(sizes) > 20, sizes                  # a fraction is taller than a line of text


def fake_grade(item):
    """A stand-in for grade_task, run in the engine's workers: 'boom' kills its worker process
    every time; 'once' kills it the first time only (a marker file remembers)."""
    marker = Path(item["path"]).with_suffix(".tried")
    if item["student"] == "boom" or (item["student"] == "once" and not marker.exists()):
        marker.touch()
        os._exit(9)
    result = {"student": item["student"], "lesson": item["lesson"], "status": "graded", "points": 1, "cells": [],
              "notebook_bytes": len(item["notebook"] or b"")}
    return {"result": result, "feedback": "<p>fine</p>"}


def test_a_worker_that_dies_costs_only_its_own_item_and_is_retried_a_bounded_number_of_times(tmp_path):
    root = tmp_path / "subs"
    for s in ("amy", "boom", "cy", "dee", "once"):
        put(root, s, "{}")
    items = [{"student": s, "lesson": LESSON, "path": str(root / s / f"{LESSON}.ipynb"), "seed_id": "s",
              "grader_version": "v"} for s in ("amy", "boom", "cy", "dee", "once")]
    counts = engine.grade(engine.LocalEngine(2, fn=fake_grade), items, tmp_path / "out", root)
    got = {s: json.loads(report.result_path(tmp_path / "out", s, LESSON).read_text()) for s, *_ in
           [(i["student"],) for i in items]}
    assert got["boom"]["status"] == "grader_error" and "worker process died" in got["boom"]["reason"]
    assert "killed by SIGKILL" not in got["boom"]["reason"] and "exit status 9" in got["boom"]["reason"]
    assert f"graded {engine.MAX_TRIES} times" in got["boom"]["reason"]
    assert all(got[s]["status"] == "graded" and got[s]["notebook_bytes"] == 2 for s in ("amy", "cy", "dee", "once"))
    assert counts == {"graded": 4, "retried": (engine.MAX_TRIES - 1) + 1, "errors": 1}   # boom, then once
    assert (tmp_path / "out" / "feedback" / "amy" / f"{LESSON}.html").read_text() == "<p>fine</p>"


def test_seed_file_is_created_once_and_reused(tmp_path):
    a = cli._secret(tmp_path, None)
    assert cli._secret(tmp_path, None) == a and (tmp_path / ".grading_seed").stat().st_mode & 0o777 == 0o600
    assert cli._secret(tmp_path, 7) == 7
    assert item_seed(a, "alice", LESSON) == item_seed(a, "alice", LESSON) != item_seed(a, "bob", LESSON)


def test_limits_follow_the_budget():
    lim = lesson_limits(15)
    assert (lim.cell_cpu_seconds, lim.notebook_cpu_seconds, lim.threads, lim.memory_bytes) == (60, 180, 1, 4 << 30)
    assert lim.wall_seconds == 4 * 180                      # wall time: only a backstop
    assert lesson_limits(15, 0.25).cell_cpu_seconds == 15


def test_usage_errors_exit_2_with_one_line(tmp_path):
    put(tmp_path / "subs", "alice", "{}")
    for args in ([tmp_path / "nope", "--out", tmp_path / "o"],
                 [tmp_path / "subs", "--out", tmp_path / "o", "--lesson", "09_nope"],
                 [tmp_path / "subs", "--out", tmp_path / "o", "--jobs", "0"],
                 [tmp_path / "subs", "--out", tmp_path / "o", "--solutions", tmp_path / "none"],
                 [tmp_path / "empty", "--out", tmp_path / "o"]):
        (tmp_path / "empty").mkdir(exist_ok=True)
        proc = grade_cmd(*args, timeout=120)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("python -m autograder grade: error:"), proc.stderr


def test_hidden_test_regions_hold_only_calls_of_checks_the_student_already_has():
    """What a student could print of a hidden test region (it runs in the sandbox, so its source is
    there) is a check() call of an id already in the student's coursekit: the judges stay outside."""
    from coursekit import checks

    checks.load_public()
    call = re.compile(r'check\("([a-z0-9_]+_hidden)"(, [A-Za-z_][A-Za-z0-9_., ()\[\]]*)?\)')
    seen = 0
    for master in sorted((REPO / "solutions").glob("*/*.ipynb")):
        for cell in _load(master)["cells"]:
            for region in plan.HIDDEN_REGION.findall(_src(cell)):
                for line in region.splitlines()[1:-1]:
                    if not line.strip() or line.strip().startswith("#"):
                        continue
                    m = call.fullmatch(line.strip())
                    assert m and m.group(1) in checks.REGISTRY, (master.name, line)
                    seen += 1
    assert seen >= 10
