"""Self-check: run a lesson notebook and see each graded check as its own pytest test.

From the course folder::

    python -m coursekit.selfcheck 01_data                      # lessons/01_data/01_data.ipynb
    python -m coursekit.selfcheck path/to/my_notebook.ipynb
    python -m pytest -p coursekit.selfcheck lessons/01_data/01_data.ipynb   # the same, as plain pytest

The notebook is executed top to bottom in a fresh kernel in *collect mode*
(``$COURSE_COLLECT_DIR``): each ``check(...)`` call saves what it collected instead of
judging. Then every check id found in the notebook's graded cells becomes one test,
judged here with the public judges (and the hidden ones, for a master notebook that
has hidden checks, when the autograder is installed). A failing test's message is the
check's feedback. An exercise that still raises NotImplementedError fails its checks
with "not implemented yet"; nothing is skipped.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from coursekit import checks

CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([A-Za-z0-9_]+)["']""")
DEFAULT_TIMEOUT = 600  # seconds per cell


@dataclass
class GradedCell:
    grade_id: str
    points: float
    index: int
    check_ids: List[str]


@dataclass
class Run:
    """One execution of a notebook in collect mode."""

    path: Path
    cells: List[GradedCell]
    data: Dict[str, dict] = field(default_factory=dict)        # check id -> collected data
    errors: List[dict] = field(default_factory=list)           # {index, grade_id, ename, evalue}
    seconds: float = 0.0
    failure: str = ""                                          # the execution itself broke (kernel died, timeout)
    notebook: Optional[object] = None                          # the executed notebook (nbformat), outputs in it

    @property
    def check_ids(self) -> List[str]:
        return [cid for cell in self.cells for cid in cell.check_ids]

    def error_before(self, index: int) -> Optional[dict]:
        """The error in cell ``index`` if it has one, else the last error above it."""
        mine = [e for e in self.errors if e["index"] == index]
        above = [e for e in self.errors if e["index"] < index]
        return (mine or above or [None])[-1]


def graded_cells(nb) -> List[GradedCell]:
    """The notebook's graded code cells and the check ids each one calls (in order)."""
    out = []
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            out.append(GradedCell(meta.get("grade_id", f"cell {i}"), float(meta.get("points", 0)), i,
                                  CHECK_CALL.findall(cell.source)))
    return out


def execute(path, *, env: Optional[dict] = None, timeout: int = DEFAULT_TIMEOUT, collect_dir=None) -> Run:
    """Execute the notebook at ``path`` in collect mode; return what each check collected.

    env: the kernel's environment (default: this process's), ``$COURSE_COLLECT_DIR`` added.
    The notebook file is not modified; the kernel runs in the notebook's folder.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    run = Run(path, graded_cells(nb))
    with tempfile.TemporaryDirectory(prefix="selfcheck-") as tmp:
        folder = Path(collect_dir or tmp)
        kernel_env = dict(os.environ if env is None else env)
        kernel_env[checks.COLLECT_DIR_ENV] = str(folder)
        kernel_env.setdefault("PYTHONUNBUFFERED", "1")
        client = NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        log = Path(tmp) / "kernel.log"
        start = time.perf_counter()
        with open(log, "wb") as kernel_log:
            try:
                client.execute(env=kernel_env, stdout=kernel_log, stderr=subprocess.STDOUT)
            except CellTimeoutError as err:
                run.failure = f"a cell ran longer than {timeout} s and was stopped ({str(err).splitlines()[0]})"
            except DeadKernelError as err:
                run.failure = f"the notebook's kernel died ({err}); it may have run out of memory"
            except Exception as err:  # anything else that stops the execution
                run.failure = f"the notebook could not be run: {type(err).__name__}: {err}"
        run.seconds = time.perf_counter() - start
        run.notebook = nb
        if run.failure:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            if tail:
                run.failure += "\nkernel log:\n  " + "\n  ".join(tail)
        graded = {c.index: c.grade_id for c in run.cells}
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                if out.get("output_type") == "error":
                    run.errors.append({"index": i, "grade_id": graded.get(i), "ename": out.get("ename", ""),
                                       "evalue": out.get("evalue", "")})
        for f in folder.glob("*.npz"):
            run.data[f.stem] = checks.from_npz(f)
    return run


def verdict(run: Run, check_id: str) -> Optional[str]:
    """None if check ``check_id`` passed in ``run``, else the message a student should see."""
    if check_id not in run.data:
        cell = next((c for c in run.cells if check_id in c.check_ids), None)
        if run.failure:
            return f"no result for {check_id}: {run.failure}"
        err = run.error_before(cell.index) if cell else None
        why = f": the notebook stopped with {err['ename']}: {err['evalue']} (in cell {err['index'] + 1})" if err else ""
        return (f"no result for {check_id}: its test cell did not get as far as calling check(){why}. "
                f"Run the notebook from the top in Jupyter to see where it goes wrong.")
    try:
        return checks.judge_data(check_id, run.data[check_id])
    except checks.CheckFailed as failure:
        return str(failure)


# --- the pytest plugin ---------------------------------------------------------------

try:
    import pytest
except ImportError:  # the plugin part needs pytest; execute() and verdict() do not
    pytest = None


class SelfCheckFailure(Exception):
    """A check failed; its message is the whole report."""


if pytest is not None:

    class LessonNotebook(pytest.File):
        """A notebook file: one test per check id in its graded cells."""

        _run: Optional[Run] = None

        def collect(self):
            import nbformat

            nb = nbformat.read(self.path, as_version=4)
            for cell in graded_cells(nb):
                for check_id in cell.check_ids:
                    yield CheckItem.from_parent(self, name=check_id, cell=cell)

        def execution(self) -> Run:
            if self._run is None:
                self._run = execute(self.path)
            return self._run

    class CheckItem(pytest.Item):
        def __init__(self, *, cell: GradedCell, **kwargs):
            super().__init__(**kwargs)
            self.cell = cell

        def runtest(self):
            message = verdict(self.parent.execution(), self.name)
            if message is not None:
                raise SelfCheckFailure(message)

        def repr_failure(self, excinfo, style=None):
            if isinstance(excinfo.value, SelfCheckFailure):
                points = f"{self.cell.points:g} point{'s' if self.cell.points != 1 else ''}"
                return f"{excinfo.value}\n[{self.name}: graded cell {self.cell.grade_id}, {points}]"
            return super().repr_failure(excinfo)

        def reportinfo(self):
            return self.path, None, f"{self.name} ({self.cell.points:g} points)"

    def pytest_collect_file(file_path, parent):
        if file_path.suffix == ".ipynb" and ".ipynb_checkpoints" not in file_path.parts:
            return LessonNotebook.from_parent(parent, path=file_path)
        return None


# --- python -m coursekit.selfcheck ---------------------------------------------------

def find_notebook(name: str) -> Path:
    """A notebook path, or a lesson id looked up as lessons/<id>/<id>.ipynb (here or in the course folder)."""
    p = Path(name)
    if p.suffix == ".ipynb":
        if not p.is_file():
            raise SystemExit(f"no notebook {p}")
        return p
    for candidate in (Path.cwd() / "lessons" / name / f"{name}.ipynb",
                      Path(__file__).resolve().parents[1] / "lessons" / name / f"{name}.ipynb",
                      Path.cwd() / name / f"{name}.ipynb"):         # fetched on a hub: ~/<id>/<id>.ipynb
        if candidate.is_file():
            return candidate
    raise SystemExit(f"no lesson {name!r}: expected lessons/{name}/{name}.ipynb (run this from the course folder), "
                     f"or {name}/{name}.ipynb (a lesson fetched on the course's hub, from your home folder)")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    paths, extra = [], []
    for a in argv:
        (extra if a.startswith("-") else paths).append(a)
    notebooks = [str(find_notebook(p)) for p in paths]
    return int(pytest.main(notebooks + ["-p", "coursekit.selfcheck", "-p", "no:cacheprovider", "-v",
                                        "--no-header", "-rf", "-o", "addopts=", "-o", "console_output_style=classic"]
                           + extra))


if __name__ == "__main__":
    sys.exit(main())
