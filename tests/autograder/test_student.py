"""``make student`` (``autograder/student.py``): the student environment holds nothing of the
instructor's, its leak check catches what would, and it works on its own in a fresh virtual
environment: the support package installs with its own dependencies, JupyterLab has no nbgrader
tools (looked at in headless Chromium), and a lesson's self-check runs in the lessons' kernel."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from autograder import student
from browser_kit import chromium, instructor_tools, jupyter_lab, texts, wait_for
from submission_kit import LESSON, data_dir, solution_lines, solved

try:
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:   # browser_kit.chromium() skips the browser checks with how to install it
    WebDriverWait = None


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    return student.build(tmp_path_factory.mktemp("dist") / "student", log=lambda *a: None)


def test_the_student_environment_holds_the_lessons_and_the_support_package_only(dist):
    top = sorted(p.name for p in dist.iterdir())
    assert top == ["README.md", "course.yml", "lessons", "support"]
    assert sorted(p.name for p in (dist / "lessons").iterdir()) == \
        ["01_data", "02_conv", "03_fc", "04_training", "05_evaluation", "06_ethics"]
    assert sorted(p.name for p in (dist / "support").iterdir()) == ["coursekit", "jupyter", "pyproject.toml"]
    names = {part for p in dist.rglob("*") for part in p.relative_to(dist).parts}
    assert not names & {"solutions", "lessons_src", "autograder", "mnist_cnn", "hidden", "nbgrader_config.py"}
    project = tomllib.loads((dist / "support" / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    assert not [d for d in project["dependencies"] if "nbgrader" in d or "jupyterhub" in d]
    # A course's hub adds only nbgrader's student parts and the hub's server (autograder/hub).
    assert list(project["optional-dependencies"]) == ["hub"]
    hub = project["optional-dependencies"]["hub"]
    assert sorted(d.split("==")[0] for d in hub) == ["jupyterhub", "nbgrader"]
    course = tomllib.loads((student.REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(hub) <= set(course), "the hub's users run the instructor's nbgrader and jupyterhub versions"
    assert student.leaks(dist) == []


def test_no_answer_or_hidden_check_text_is_in_it(dist):
    """Grep the tree: lesson 1's answers (outside the later lessons, which give them as code), the hidden
    test cells' calls, the hidden judges' names."""
    files = [p for p in dist.rglob("*") if p.is_file()]
    text = "\n".join(p.read_text(errors="replace") for p in files)
    early = [p for p in files if p.relative_to(dist).parts[:2] not in
             {("lessons", later) for later in ("02_conv", "03_fc", "04_training", "05_evaluation", "06_ethics")}]
    squashed = "".join("\n".join(p.read_text(errors="replace") for p in early).split())
    for line in solution_lines():                           # lesson 1's answers: in lesson 1, coursekit, README...
        assert "".join(line.split()) not in squashed, line
    assert 'check("data_add_channel_hidden"' not in text     # no hidden test cell
    assert "def add_channel_matches_reference(" not in text  # a hidden judge of lesson 1
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text


@pytest.mark.parametrize("plant, where, expected", [
    ("return images.astype(np.float32) / 255\n", "support/coursekit/plots/digits.py", "01_data's answer"),
    ('check("data_normalize_hidden", normalize)\n', "README.md", "the hidden"),
    ("def add_channel_matches_reference(inputs, found):\n", "support/coursekit/idx.py", "the hidden"),
    ("from mnist_cnn.model import Net\n", "support/coursekit/data.py", "the hidden 'frommnist_cnn'"),
    (None, "solutions/01_data/01_data.ipynb", "an instructor folder"),
    (None, "support/autograder/__init__.py", "an instructor folder"),
])
def test_the_leak_check_catches_instructor_material(dist, tmp_path, plant, where, expected):
    copy = tmp_path / "student"
    shutil.copytree(dist, copy)
    target = copy / where
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text((target.read_text() if target.exists() else "") + (plant or "x = 1\n"))
    found = student.leaks(copy)
    assert any(line.startswith(where) and expected in line for line in found), found


def test_a_lesson_may_show_earlier_answers_but_not_its_own(dist, tmp_path):
    """Lesson 4 gives lesson 1's pipeline as code (allowed); lesson 1 holding it is a leak."""
    assert "dataset=TensorDataset(x,y)" in "".join((dist / "lessons/04_training/04_training.ipynb").read_text().split())
    copy = tmp_path / "student"
    shutil.copytree(dist, copy)
    nb_path = copy / "lessons" / LESSON / f"{LESSON}.ipynb"
    nb_path.write_text(json.dumps(solved()))
    assert any(f"lessons/{LESSON}" in line and "01_data's answer" in line for line in student.leaks(copy))


def test_a_build_that_would_leak_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(student, "leaks", lambda root: ["README.md: holds 01_data's answer 'x'"])
    with pytest.raises(student.StudentBuildError, match="would leak: README.md"):
        student.build(tmp_path / "student", log=lambda *a: None)
    assert not (tmp_path / "student").exists()


def test_one_lesson_at_a_time(tmp_path):
    out = student.build(tmp_path / "student", ["01_data", "02_conv"], log=lambda *a: None)
    assert sorted(p.name for p in (out / "lessons").iterdir()) == ["01_data", "02_conv"]
    assert "lessons/03_fc" not in (out / "README.md").read_text()
    with pytest.raises(student.StudentBuildError, match="unknown lesson '07_x'"):
        student.build(tmp_path / "other", ["07_x"])


def _run(args, cwd, env=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.real_data
def test_installed_in_a_fresh_virtual_environment(dist, tmp_path):
    """The README's first command, then what a student does: no reference, no autograder, no
    nbgrader in JupyterLab, and the self-check of lesson 1 run in the lessons' kernel."""
    here = tmp_path / "student"
    shutil.copytree(dist, here)
    venv = here / ".venv"
    base = getattr(sys, "_base_executable", sys.executable)
    assert _run([base, "-m", "venv", str(venv)], here).returncode == 0
    py = str(venv / "bin" / "python")
    pip = _run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "./support"], here, timeout=1500)
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MNIST_CNN_COURSE")}
    env.update(MNIST_DATA_DIR=data_dir(), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"), JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"))

    fetch = _run([py, "-m", "coursekit", "fetch"], here, env)
    assert fetch.returncode == 0 and "MNIST is ready" in fetch.stdout, fetch.stderr
    for module in ("mnist_cnn", "autograder", "nbgrader"):
        probe = _run([py, "-c", f"import {module}"], here, env)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, module
    lab = _run([py, "-m", "jupyter", "labextension", "list"], here, env)
    server = _run([py, "-m", "jupyter", "server", "extension", "list"], here, env)
    assert lab.returncode == 0 and "jupyterlab" in (lab.stdout + lab.stderr).lower()
    assert "nbgrader" not in (lab.stdout + lab.stderr + server.stdout + server.stderr).lower()

    nb = here / "lessons" / LESSON / f"{LESSON}.ipynb"
    untouched = _run([py, "-m", "coursekit.selfcheck", LESSON], here, env)
    assert untouched.returncode != 0 and "not implemented yet" in untouched.stdout, untouched.stdout[-3000:]
    nb.write_text(json.dumps(solved()))
    done = _run([py, "-m", "coursekit.selfcheck", LESSON], here, env)
    assert done.returncode == 0 and "4 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]

    # The README's second command, looked at in a real browser: the lesson open, no instructor tool.
    with jupyter_lab(py, here, env) as lab, chromium() as browser:
        seen, shot = _open_lesson(browser, lab, here)
        page = browser.find_element("css selector", "body").text
    assert seen == [], f"the student JupyterLab shows {', '.join(seen)} (screenshot: {shot})"
    assert "notified about official Jupyter news" not in page, f"the news pop-up is shown (screenshot: {shot})"


def _open_lesson(browser, lab, root: Path):
    """Open lesson 1 in the lab; (the instructor tools it shows, the screenshot's path)."""
    browser.get(lab.url(f"lab/tree/lessons/{LESSON}/{LESSON}.ipynb"))
    wait_for(browser, ".jp-Notebook .jp-Cell")
    wait_for(browser, ".jp-NotebookPanel-toolbar .jp-Toolbar-item")
    WebDriverWait(browser, 120).until(lambda b: "Lesson 1" in b.find_element("css selector", ".jp-Notebook").text)
    WebDriverWait(browser, 120).until(lambda b: "File" in texts(b, ".lm-MenuBar-itemLabel"))
    time.sleep(2)   # extensions add their menus and panels once the app has started
    shot = root.parent / f"{root.name}-lab.png"
    browser.save_screenshot(str(shot))
    return instructor_tools(browser), shot


@pytest.mark.slow
def test_the_browser_check_sees_the_instructor_tools_where_they_are(tmp_path):
    """The control of the check above: the course's own JupyterLab (nbgrader installed) shows them."""
    here = tmp_path / "course"
    shutil.copytree(student.REPO / "lessons" / LESSON, here / "lessons" / LESSON)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config")}
    with jupyter_lab(sys.executable, here, env) as lab, chromium() as browser:
        seen, shot = _open_lesson(browser, lab, here)
        page = browser.find_element("css selector", "body").text
    assert any("Nbgrader" in s for s in seen) and any("Validate" in s for s in seen), (seen, shot)
    assert "notified about official Jupyter news" in page, shot   # JupyterLab's default, which students are spared
