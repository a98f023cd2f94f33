"""The lessons' sources, ``lessons_src/<id>/<id>.py``: each builds its committed master, no lesson
holds a copy of an earlier lesson's answer, and JupyterLab's server opens a source as a notebook."""
import json
import re
import os
import sys
import urllib.request

import nbformat
import pytest

from autograder import authoring
from browser_kit import jupyter_lab
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


def _code(nb) -> str:
    """A notebook's code cells as one script; IPython's magics and shell lines left out."""
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    return "\n\n".join("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
                       for src in cells)


def lint(code: str, name: str) -> list[str]:
    """pyflakes' messages on ``code``: undefined names, unused imports, redefinitions."""
    import io

    from pyflakes.api import check as pyflakes_check
    from pyflakes.reporter import Reporter

    out = io.StringIO()
    pyflakes_check(code, name, Reporter(out, out))
    return out.getvalue().splitlines()


def test_each_master_is_clean_python(lesson_id):
    """The master as the student runs it, given cells filled from the earlier lessons: no undefined
    name, unused import or redefinition (a linter cannot see through given_from in the source)."""
    assert lint(_code(authoring.build(lesson_id)), f"solutions/{lesson_id}") == []


def test_the_lint_catches_a_misspelt_name():
    nb = authoring.build("03_fc")
    cell = next(c for c in nb.cells if c.cell_type == "code" and "Net()" in c.source and
                c.metadata.get("nbgrader", {}).get("grade_id") != "fc_net_answer")
    cell.source = cell.source.replace("Net()", "Nett()", 1)
    assert any("undefined name 'Nett'" in m for m in lint(_code(nb), "03_fc"))


@pytest.mark.slow
def test_jupyterlab_opens_a_source_as_a_notebook(tmp_path):
    """What "Open With > Notebook" asks the server for: the source, as a notebook, with nbgrader's metadata."""
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    with jupyter_lab(sys.executable, REPO, env) as lab:
        url = lab.url("api/contents/lessons_src/01_data/01_data.py?type=notebook")
        body = json.loads(urllib.request.urlopen(url, timeout=60).read())
    assert body["type"] == "notebook"
    cells = body["content"]["cells"]
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in cells]
    assert "data_normalize_answer" in ids and "data_normalize" in ids
    answer = cells[ids.index("data_normalize_answer")]
    assert "### BEGIN SOLUTION" in answer["source"] and answer["metadata"]["nbgrader"]["solution"] is True
    assert len(cells) == len(authoring.build("01_data").cells)


# --- long cells show their progress ----------------------------------------------------------
TRAINS = re.compile(r"\b(?:train_epoch|train_briefly)\(")   # what runs for more than a few seconds


def training_cells(nb) -> list[int]:
    """Indices of the code cells that train (call train_epoch or train_briefly) and do not show a
    progress bar: neither the cell wraps its batches in coursekit's ``progress`` nor does the
    function it calls (defined in an earlier cell)."""
    shows = {m.group(1) for c in nb.cells if c.cell_type == "code" and "progress(" in c.source
             for m in re.finditer(r"^def (\w+)\(", c.source, re.M)}
    bare = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or re.search(r"^def (?:train_epoch|train_briefly)\(", cell.source, re.M):
            continue
        calls = {m.group(0)[:-1] for m in TRAINS.finditer(cell.source)}
        if calls and "progress(" not in cell.source and not calls <= shows:
            bare.append(i)
    return bare


def test_every_training_cell_shows_its_progress(lesson_id):
    """A cell that trains runs for seconds to minutes, more on a busy laptop: it shows a bar with the
    time spent and the time left (coursekit.progress), never a promised duration."""
    nb = authoring.build(lesson_id)
    assert training_cells(nb) == [], f"{lesson_id}: cells that train without a progress bar"


def test_a_training_cell_without_a_bar_is_caught():
    nb = authoring.build("04_training")
    i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "progress(small_loader" in c.source)
    nb.cells[i].source = nb.cells[i].source.replace('progress(small_loader, "8,000 images")', "small_loader")
    assert training_cells(nb) == [i]
