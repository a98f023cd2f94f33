"""Submissions for the grader's tests, built from lesson 1's released notebook and the master.

``solved()`` is a correct submission (the master's solution code in every exercise cell, as a
student who solved it would write it), ``partly_wrong()`` one with realistic bugs, ``lesson()``
any mix; ``put()`` writes one into a class folder; ``grade_cmd()`` runs the grade command.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LESSON = "01_data"
MASTER = REPO / "solutions" / LESSON / f"{LESSON}.ipynb"
RELEASED = REPO / "lessons" / LESSON / f"{LESSON}.ipynb"
EXERCISES = ["data_add_channel_answer", "data_normalize_answer", "data_to_tensors_answer", "data_make_loader_answer"]
TESTS = ["data_add_channel", "data_normalize", "data_to_tensors", "data_make_loader"]

WRONG_NORMALIZE = "def normalize(images):\n    return images.astype(np.float32) / 256\n"
NO_SHUFFLE = ("def make_loader(x, y, batch_size=4, shuffle=True):\n"
              "    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)\n")
TO_TENSORS_ALONE = ("def to_tensors(images, labels):\n"
                    "    x = torch.from_numpy(images[:, None].astype(np.float32) / 255)\n"
                    "    return x, torch.from_numpy(labels).long()\n")
LIAR = '''
class Liar:
    """Equal to everything, claims to be an ndarray, of the right shape and dtype."""
    shape = (4, 1, 28, 28)
    dtype = np.dtype("float32")
    ndim = 4
    @property
    def __class__(self):
        return np.ndarray
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __array__(self, dtype=None, copy=None):
        return np.zeros(self.shape, np.float32)
    def copy(self):
        return self
    def __getattr__(self, name):
        return lambda *a, **k: self

def normalize(images):
    return Liar()
'''
CHEAT = r'''
import os as _os
import numpy as _np
import coursekit.checks as _C

def _forge(check_id, *objects):
    """Say 'ok' with plausible data for every check, without calling the student's code."""
    data = {"__status__": "ok", "__check__": check_id, "__seed__": 0,
            "out.kind": "ndarray", "out.shape": _np.array([5, 1, 28, 28]), "out.dtype": "uint8",
            "out.value": _np.zeros((5, 1, 28, 28), _np.uint8)}
    _C.save(data, _os.path.join(_os.environ.get("COURSE_COLLECT_DIR", "."), check_id + ".npz"))
    print(f"\u2714 {check_id} passed")

_C.check = _forge
check = _forge
_C.judge_data = lambda *a, **k: None
_np.allclose = lambda *a, **k: True
_np.array_equal = lambda *a, **k: True
get_ipython().showtraceback = lambda *a, **k: None
'''


# ------------------------------------------------------------------------------------------
# Building submissions from lesson 1
# ------------------------------------------------------------------------------------------
def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _index(nb: dict, grade_id: str) -> int:
    for i, cell in enumerate(nb["cells"]):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)


def solution(grade_id: str) -> str:
    """The master's exercise cell as a student who solved it would write it (no markers)."""
    src = _src(_load(MASTER)["cells"][_index(_load(MASTER), grade_id)])
    return "\n".join(line for line in src.splitlines() if "### " not in line) + "\n"


def solution_lines(*exercises) -> list:
    """The non-trivial lines of the master's solution regions (of ``exercises``, default all)."""
    master = _load(MASTER)
    out = []
    for gid in exercises or EXERCISES:
        src = _src(master["cells"][_index(master, gid)])
        region = src.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
        out += [line.strip() for line in region.splitlines() if len(line.strip()) > 12]
    return out


def lesson(**answers) -> dict:
    """The released lesson with these exercise cells (grade_id -> code; True: the solution)."""
    nb = _load(RELEASED)
    for gid, code in answers.items():
        nb["cells"][_index(nb, gid)]["source"] = solution(gid) if code is True else code
    return nb


def solved(**overrides) -> dict:
    return lesson(**{gid: overrides.get(gid, True) for gid in EXERCISES})


def partly_wrong() -> dict:
    return solved(data_normalize_answer=WRONG_NORMALIZE, data_to_tensors_answer=TO_TENSORS_ALONE,
                  data_make_loader_answer=NO_SHUFFLE)


def put(root: Path, student: str, nb, name: str = f"{LESSON}.ipynb") -> Path:
    (root / student).mkdir(parents=True, exist_ok=True)
    path = root / student / name
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb))
    return path


def copy_course(dest: Path) -> Path:
    """A second checkout of the course at ``dest``: what grading reads of it (packages, lessons'
    sources, masters, course.yml), without the virtual environment, which stays REPO's."""
    import shutil

    for part in ("autograder", "coursekit", "mnist_cnn", "lessons_src", "solutions"):
        shutil.copytree(REPO / part, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "course.yml", dest / "course.yml")
    return dest


def grade_cmd(*args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def totals(out: Path) -> dict:
    """Each student's points in ``out/grades.csv`` (one row per check: their sum)."""
    import csv

    with open(Path(out) / "grades.csv") as f:
        found: dict = {}
        for r in csv.DictReader(f):
            found[r["student"]] = found.get(r["student"], 0.0) + float(r["points"] or 0)
    return found


def data_dir() -> str:
    from coursekit.fetch import resolve_root

    return str(resolve_root())


def skip_unless_gradable() -> None:
    """Skip the test where the grade command cannot run for real: no working bwrap, or no MNIST."""
    import pytest

    from autograder import sandbox

    if not sandbox.bwrap_available():
        pytest.skip("bwrap unavailable")
    if not (Path(data_dir()) / "MNIST" / "raw").is_dir():
        pytest.skip(f"real MNIST missing in {data_dir()}; run `make data`")


def write_master(solutions: Path, lesson_id: str, cells) -> Path:
    """A made-up lesson, authored as instructors do: a percent-format source under ``<solutions>/../lessons_src``,
    built into ``<solutions>/<id>/<id>.ipynb``. cells: (cell_type, source, metadata) triples."""
    from autograder import authoring

    root = Path(solutions).parent / "lessons_src"
    src = authoring.source_path(lesson_id, root)
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(authoring.source_text(cells))
    return authoring.write(authoring.build(lesson_id, root), Path(solutions) / lesson_id / f"{lesson_id}.ipynb")


def add_channel_cells(prefix: str) -> list:
    """A made-up lesson's cells: a setup, an add_channel exercise and lesson 1's graded add_channel check (2 points)."""
    from autograder.authoring import nbgrader_meta as meta

    return [
        ("code", "import numpy as np\nfrom coursekit.checks import check", meta(f"{prefix}_setup", locked=True)),
        ("code", "def add_channel(images):\n    ### BEGIN SOLUTION\n    return images[:, None]\n    ### END SOLUTION",
         meta(f"{prefix}_answer", solution=True)),
        ("code", 'check("data_add_channel", add_channel)\n### BEGIN HIDDEN TESTS\n'
                 'check("data_add_channel_hidden", add_channel)\n### END HIDDEN TESTS',
         meta("data_add_channel", grade=True, locked=True, points=2)),
    ]
