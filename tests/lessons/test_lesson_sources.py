"""The lessons' sources, ``lessons_src/<id>/<id>.py``: each builds its committed master, no lesson
holds a copy of an earlier lesson's answer, and JupyterLab's server opens a source as a notebook."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

from autograder import authoring
from lesson_harness import REPO
from coursekit import config

LESSON_IDS = [lesson.id for lesson in config.load().lessons]


def test_each_source_builds_its_committed_master(lesson_id):   # lesson_id: every lesson (conftest.py)
    built = nbformat.writes(authoring.build(lesson_id)) + "\n"
    committed = (REPO / "solutions" / lesson_id / f"{lesson_id}.ipynb").read_text()
    assert built == committed, f"run `make lessons`: solutions/{lesson_id} is not what lessons_src/{lesson_id} builds"


def test_one_folder_and_one_name_per_lesson():
    folders = sorted(p.name for p in (REPO / "lessons_src").iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    assert folders == sorted(LESSON_IDS)
    assert not (REPO / "solutions" / "_src").exists()


def _solution_lines(lesson_id):
    """The lines inside the solution regions of a lesson's exercises (the answers)."""
    out = []
    for cell in authoring.read_source(authoring.source_path(lesson_id)).cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == "### BEGIN SOLUTION":
                inside = True
            elif line.strip() == "### END SOLUTION":
                inside = False
            elif inside and len(line.strip()) > 25:
                out.append(line.strip())
    return out


# Lesson 3's Net keeps the original project's flat layer names (conv1 ... fc3), so its exercise
# skeleton restates lesson 2's two layer lines (marked "# lesson 2") around the student's part.
SKELETON = {"03_fc": {"self.conv1 = nn.Conv2d(1, 6, kernel_size=5)", "self.conv2 = nn.Conv2d(6, 16, kernel_size=5)"}}


def test_no_source_holds_a_copy_of_an_earlier_answer():
    """Later lessons get earlier answers through given_from, never as text typed in again."""
    for i, lesson_id in enumerate(LESSON_IDS):
        answers = set(_solution_lines(lesson_id))
        for later in LESSON_IDS[i + 1:]:
            text = authoring.source_path(later).read_text()
            copied = sorted(line for line in answers if line in text and line not in SKELETON.get(later, ()))
            assert not copied, f"lessons_src/{later} copies {lesson_id}'s answer: {copied[0]!r}; use given_from"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_jupyterlab_opens_a_source_as_a_notebook(tmp_path):
    """What "Open With > Notebook" asks the server for: the source, as a notebook, with nbgrader's metadata."""
    port, token = _free_port(), "t0ken"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
                               "--ip=127.0.0.1", f"--IdentityProvider.token={token}", "--allow-root",
                               f"--ServerApp.root_dir={REPO}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/api/contents/lessons_src/01_data/01_data.py?type=notebook&token={token}"
        deadline, body = time.monotonic() + 120, None
        while body is None and time.monotonic() < deadline and server.poll() is None:
            try:
                body = json.loads(urllib.request.urlopen(url, timeout=10).read())
            except OSError:
                time.sleep(0.5)
        assert body is not None, f"the server did not answer: {server.stderr.read(2000) if server.poll() is not None else ''}"
        assert body["type"] == "notebook"
        cells = body["content"]["cells"]
        ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in cells]
        assert "data_normalize_answer" in ids and "data_normalize" in ids
        answer = cells[ids.index("data_normalize_answer")]
        assert "### BEGIN SOLUTION" in answer["source"] and answer["metadata"]["nbgrader"]["solution"] is True
        assert len(cells) == len(authoring.build("01_data").cells)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
