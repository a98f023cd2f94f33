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


# --- a cell that uses the student's functions says when they failed their checks -------------------
CHECK_CALL = re.compile(r'\bcheck\("(\w+)"((?:, *\w+)*)\)')


def cells_without_warning(nb) -> list[tuple[int, list[str]]]:
    """(index, check ids) of the code cells that use a function or class of the lesson's exercises
    without ``relies_on`` of the check that judged it. Run cell by cell, such a cell would carry on
    silently with a wrong function (a float64 tensor of 376 MB, a "logits" chart of probabilities)."""
    import ast

    checked, defined, out = {}, [], []
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        names = {n.id for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Name)}
        if meta.get("solution"):
            defined = [n.name for n in ast.parse(cell.source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        elif meta.get("grade"):
            for m in CHECK_CALL.finditer(cell.source):
                for name in re.findall(r"\w+", m.group(2)):
                    if name in defined and not m.group(1).endswith("_hidden"):
                        checked[name] = m.group(1)
        elif not meta:
            need = sorted({checked[n] for n in names if n in checked})
            relied = set(re.findall(r'"(\w+)"', " ".join(re.findall(r"relies_on\(([^)]*)\)", cell.source))))
            if not set(need) <= relied:
                out.append((i, [c for c in need if c not in relied]))
    return out


def test_every_cell_using_the_students_code_warns_when_it_failed_its_check(lesson_id):
    assert cells_without_warning(authoring.build(lesson_id)) == []


def test_a_cell_using_a_failed_function_without_a_warning_is_caught():
    nb = authoring.build("01_data")
    i = next(i for i, c in enumerate(nb.cells) if c.source.startswith('relies_on("data_to_tensors")'))
    nb.cells[i].source = nb.cells[i].source.split("\n", 1)[1]
    assert cells_without_warning(nb) == [(i, ["data_to_tensors"])]


def test_the_warning_says_what_failed_and_nothing_once_it_passed(capsys, monkeypatch):
    """relies_on: one line per check that failed or has not run; nothing after it passed, and
    nothing in the grader's collect mode."""
    from coursekit.checks import CheckFailed, check, relies_on
    from coursekit.checks import running

    monkeypatch.setattr(running, "_said", {})
    relies_on("data_normalize")
    assert capsys.readouterr().out.startswith("⚠ This cell uses your code checked by data_normalize, but that "
                                              "check has not run")

    def normalize(images):
        return images.astype("float64") / 255                  # float64: 376 MB for the training set

    with pytest.raises(CheckFailed):
        check("data_normalize", normalize)
    capsys.readouterr()
    relies_on("data_normalize")
    out = capsys.readouterr().out
    assert out.startswith("⚠ This cell uses your code checked by data_normalize (normalize), which failed") \
        and out.count("\n") == 1

    check("data_normalize", lambda images: images.astype("float32") / 255)
    capsys.readouterr()
    relies_on("data_normalize")
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(running, "_said", {})
    monkeypatch.setenv("COURSE_COLLECT_DIR", "/nonexistent")
    relies_on("data_normalize")
    assert capsys.readouterr().out == ""
