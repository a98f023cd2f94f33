"""The Gradescope autograder package (``python -m autograder export ... --format gradescope``).

The zip is checked against Gradescope's autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): ``setup.sh`` and an executable
``run_autograder`` at its root, ``results/results.json`` in the documented format. Then it is run
as Gradescope runs it, in a local copy of the ``/autograder`` layout: the zip unpacked into
``source/``, ``run_autograder`` copied beside it, a virtual environment in ``venv/`` with the
packaged course installed from ``source/course`` (setup.sh's last steps; its downloads, apt and
the PyTorch wheel, are what this machine cannot do offline), the student's upload in ``submission/``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from autograder.grading import gradescope

sys.path.insert(0, str(Path(__file__).resolve().parent))
from submission_kit import REPO, data_dir, partly_wrong, skip_unless_gradable  # noqa: E402

# results.json, as the specification documents it
TOP_KEYS = {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility", "extra_data",
            "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
             "visibility", "extra_data"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}


def check_results_json(data: dict) -> None:
    """Fail unless ``data`` is a results.json Gradescope accepts."""
    assert isinstance(data, dict) and set(data) <= TOP_KEYS, set(data) - TOP_KEYS
    tests = data.get("tests", [])
    assert isinstance(tests, list)
    assert "score" in data or (tests and all("score" in t for t in tests)), "a score, overall or on every test"
    for key in ("score", "execution_time"):
        if key in data:
            assert isinstance(data[key], (int, float)) and not isinstance(data[key], bool)
    for key in ("visibility", "stdout_visibility"):
        assert data.get(key, "visible") in gradescope.VISIBILITIES
    assert data.get("output_format", "text") in FORMATS and isinstance(data.get("output", ""), str)
    for t in tests:
        assert set(t) <= TEST_KEYS, set(t) - TEST_KEYS
        assert t.get("status", "passed") in ("passed", "failed")
        assert t.get("visibility", "visible") in gradescope.VISIBILITIES
        assert t.get("output_format", "text") in FORMATS
        for key in ("score", "max_score"):
            if key in t:
                assert isinstance(t[key], (int, float)) and not isinstance(t[key], bool)
        assert isinstance(t.get("name", ""), str) and isinstance(t.get("number", ""), str)


def test_the_checker_refuses_what_gradescope_refuses():
    good = {"score": 1.0, "tests": [{"name": "a", "score": 1.0, "max_score": 1.0, "status": "passed"}]}
    check_results_json(good)
    for bad in ({"points": 1}, {"tests": [{"name": "a"}]}, {"score": "1"}, {"score": 1, "visibility": "public"},
                {"score": 1, "tests": [{"score": 1, "status": "ok"}]}, {"score": 1, "tests": [{"score": 1, "msg": ""}]}):
        with pytest.raises(AssertionError):
            check_results_json(bad)


def test_results_json_has_a_test_per_graded_cell_and_names_the_written_answers():
    r = {"student": "submission", "lesson": "06_ethics", "status": "graded", "points": 2.5, "max_points": 5,
         "cells": [{"grade_id": "a", "kind": "test", "points": 2.5, "max_points": 5, "status": "failed",
                    "reason": "wrong answer in forward (partial credit)", "message": "the ReLU after fc1 is missing"},
                   {"grade_id": "essay", "kind": "manual", "points": 0, "max_points": 4, "status": "manual"}]}
    missing = {"student": "submission", "lesson": "01_data", "status": "missing", "points": 0, "max_points": 12,
               "reason": "no notebook submitted (expected submission/01_data.ipynb)", "cells": []}
    data = gradescope.results_json([r, missing], [], 3.2)
    check_results_json(data)
    assert data["score"] == 2.5 and [t["name"] for t in data["tests"]] == ["06_ethics: a", "01_data: the notebook"]
    assert "the ReLU after fc1 is missing" in data["tests"][0]["output"] and data["tests"][0]["status"] == "failed"
    assert "Graded by hand (not in this score): 06_ethics essay (4 points)" in data["output"]


def test_the_package_follows_the_specification(tmp_path):
    path = gradescope.build(tmp_path / "ag.zip", ["01_data"], 1234)
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        mode = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
        setup = z.read("setup.sh").decode()
        meta = json.loads(z.read("package.json"))
    assert {"setup.sh", "run_autograder", "package.json", "course/pyproject.toml", "course/course.yml",
            "course/solutions/01_data/01_data.ipynb", "course/autograder/grading/gradescope.py"} <= names
    assert mode["run_autograder"] & 0o111 and mode["setup.sh"] & 0o111
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "bubblewrap" in setup and "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup
    assert meta == {"format": 1, "lessons": ["01_data"], "seed": 1234, "unsandboxed": False}
    for script in ("setup.sh", "run_autograder"):
        with zipfile.ZipFile(path) as z:
            (tmp_path / script).write_bytes(z.read(script))
        assert subprocess.run(["bash", "-n", str(tmp_path / script)]).returncode == 0


def test_the_export_command_writes_it_with_the_course_secret(tmp_path):
    grades = tmp_path / "grades"
    grades.mkdir()
    (grades / ".grading_seed").write_text("987654321\n")
    proc = subprocess.run([sys.executable, "-m", "autograder", "export", str(grades), "--format", "gradescope",
                           "--lesson", "01_data"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(grades / "gradescope_01_data.zip") as z:
        assert json.loads(z.read("package.json"))["seed"] == 987654321
    bad = subprocess.run([sys.executable, "-m", "autograder", "export", str(grades), "--format", "gradescope",
                          "--lesson", "01_dta"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown lesson 01_dta" in bad.stderr and bad.stderr.count("\n") == 1


# ------------------------------------------------------------------------------------------
# Run in a local /autograder
# ------------------------------------------------------------------------------------------
def _venv_with_course(root: Path) -> Path:
    """root/venv: a fresh virtual environment holding this one's packages (hard links: no
    download) and the packaged course installed from root/source/course, as setup.sh does."""
    venv = root / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True)
    here = Path(sysconfig.get_paths()["purelib"])
    there = venv / here.relative_to(sys.prefix)
    shutil.rmtree(there)
    if subprocess.run(["cp", "-al", str(here), str(there)], capture_output=True).returncode != 0:
        pytest.skip("cannot hard-link this environment's packages (another file system)")
    for extra in ("share", "etc"):                                 # nbconvert's templates, Jupyter's config
        if (Path(sys.prefix) / extra).is_dir():
            subprocess.run(["cp", "-al", str(Path(sys.prefix) / extra), str(venv / extra)], check=True)
    for p in list(there.glob("__editable__*mnist_cnn_course*")) + list(there.glob("mnist_cnn_course-*.dist-info")):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                           "--no-build-isolation", "-e", str(root / "source" / "course")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return venv


@pytest.fixture(scope="module")
def autograder_root(tmp_path_factory):
    skip_unless_gradable()
    root = tmp_path_factory.mktemp("gs") / "autograder"
    package = gradescope.build(root.parent / "autograder.zip", ["01_data"], 4242)
    with zipfile.ZipFile(package) as z:                        # as Gradescope unpacks it
        for info in z.infolist():
            z.extract(info, root / "source")
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    _venv_with_course(root)
    return root


def run_autograder(root: Path, files: dict, **env) -> dict:
    """One submission: ``files`` (name -> notebook dict, bytes, or a Path to link to) in
    root/submission, Gradescope's metadata beside it; returns results.json."""
    for d in ("submission", "results"):
        shutil.rmtree(root / d, ignore_errors=True)
        (root / d).mkdir()
    for name, content in files.items():
        target = root / "submission" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            target.symlink_to(content)
        else:
            target.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    (root / "submission_metadata.json").write_text(json.dumps({
        "id": 1, "created_at": "2026-12-08T14:22:32.365935-07:00", "submission_method": "upload",
        "users": [{"email": "alice@uni.edu", "id": 7, "name": "Alice"}], "previous_submissions": [],
        "assignment": {"title": "01_data", "total_points": 12.0, "due_date": "2026-12-08T23:59:00.000000-07:00"}}))
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_DATA": data_dir(), **env}
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    check_results_json(data)
    return data


@pytest.mark.slow
@pytest.mark.real_data
class TestInAutograderLayout:
    def test_a_submission_gets_a_test_per_cell_with_the_teaching_message(self, autograder_root):
        data = run_autograder(autograder_root, {"work/my lesson 1.ipynb": partly_wrong()})
        by = {t["name"]: t for t in data["tests"]}
        assert set(by) == {"01_data: data_add_channel", "01_data: data_normalize", "01_data: data_to_tensors",
                           "01_data: data_make_loader"}
        assert by["01_data: data_add_channel"]["status"] == "passed"
        wrong = [t for t in data["tests"] if t["status"] == "failed"]
        assert wrong and all(t["score"] == 0 and len(t["output"]) > 40 for t in wrong)
        assert data["score"] == sum(t["score"] for t in data["tests"]) and 0 < data["score"] < 12
        assert "graded my lesson 1.ipynb (the only notebook uploaded)" in data["output"]
        assert "_hidden" not in json.dumps(data) and "BEGIN HIDDEN" not in json.dumps(data)

    def test_a_link_to_the_packaged_solution_is_refused(self, autograder_root):
        master = autograder_root / "source" / "course" / "solutions" / "01_data" / "01_data.ipynb"
        data = run_autograder(autograder_root, {"01_data.ipynb": master})
        assert data["score"] == 0 and "symbolic link" in data["output"]

    def test_an_empty_upload_says_what_to_upload(self, autograder_root):
        data = run_autograder(autograder_root, {"notes.txt": b"hello"})
        assert data["score"] == 0 and "No notebook to grade: upload 01_data.ipynb" in data["output"]

    def test_without_a_sandbox_nothing_is_graded_unless_the_package_allows_it(self, autograder_root):
        """Where bwrap cannot run (AUTOGRADER_BWRAP=0 pretends so), a student's code is not run:
        0 points and a reason; a package built with --unsandboxed grades it, without isolation."""
        data = run_autograder(autograder_root, {"01_data.ipynb": partly_wrong()}, AUTOGRADER_BWRAP="0")
        assert data["score"] == 0 and data["tests"] == []
        assert "could not be graded: the grader cannot isolate student code on this machine" in data["output"]
        meta_path = autograder_root / "source" / "package.json"
        meta = json.loads(meta_path.read_text())
        meta_path.write_text(json.dumps({**meta, "unsandboxed": True}))
        try:
            data = run_autograder(autograder_root, {"01_data.ipynb": partly_wrong()}, AUTOGRADER_BWRAP="0")
        finally:
            meta_path.write_text(json.dumps(meta))
        assert 0 < data["score"] < 12 and len(data["tests"]) == 4
