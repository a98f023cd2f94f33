"""Write a lesson's master notebook (nbgrader source format) from a Python script.

``solutions/_src/NN_name.py`` defines ``build() -> Lesson``; ``python -m autograder
release`` runs it and writes ``solutions/NN_name/NN_name.ipynb`` (the notebook nbgrader
reads), then generates the student version in ``lessons/``. The cell kinds::

    lesson.markdown(text)                      # prose (dedented)
    lesson.code(source)                        # an ordinary code cell the student may edit
    lesson.given(grade_id, source)             # read-only code (nbgrader locks it and restores it when grading)
    lesson.exercise(grade_id, source)          # the student's code: a ### BEGIN/END SOLUTION region,
                                               #   replaced by `raise NotImplementedError()` in lessons/
    lesson.test(grade_id, points, "fn", ...)   # a graded test cell: check("grade_id", fn, ...) and, in a
                                               #   hidden region, check("grade_id_hidden", fn, ...)
    lesson.answer(grade_id, points, model)     # a written answer, graded by hand; `model` is the model
                                               #   answer, replaced by "YOUR ANSWER HERE" in lessons/

The output is deterministic (stable cell ids and metadata), so a test can rebuild it
and compare.
"""
from __future__ import annotations

import importlib.util
import re
import textwrap
from pathlib import Path
from typing import List, Optional

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
HIDDEN_SUFFIX = "_hidden"
_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def _clean(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _nbgrader(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False,
              points: Optional[float] = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


class Lesson:
    """A lesson notebook under construction; see the module docstring."""

    def __init__(self, lesson_id: str):
        self.lesson_id = lesson_id
        self.cells: List[nbformat.NotebookNode] = []
        self._ids: set = set()

    def _grade_id(self, grade_id: str) -> str:
        if not _ID.match(grade_id) or len(grade_id) > 60:
            raise ValueError(f"grade_id {grade_id!r}: use lower-case letters, digits and _")
        if grade_id in self._ids:
            raise ValueError(f"grade_id {grade_id!r} used twice")
        self._ids.add(grade_id)
        return grade_id

    def _cell_id(self) -> str:
        return f"cell-{len(self.cells):02d}"

    def markdown(self, text: str) -> "Lesson":
        self.cells.append(new_markdown_cell(_clean(text), id=self._cell_id()))
        return self

    def code(self, source: str) -> "Lesson":
        self.cells.append(new_code_cell(_clean(source), id=self._cell_id()))
        return self

    def given(self, grade_id: str, source: str) -> "Lesson":
        gid = self._grade_id(grade_id)
        self.cells.append(new_code_cell(_clean(source), id=gid, metadata=_nbgrader(gid, locked=True)))
        return self

    def exercise(self, grade_id: str, source: str) -> "Lesson":
        gid = self._grade_id(grade_id)
        src = _clean(source)
        if "### BEGIN SOLUTION" not in src or "### END SOLUTION" not in src:
            raise ValueError(f"exercise {grade_id!r} needs a ### BEGIN SOLUTION / ### END SOLUTION region")
        self.cells.append(new_code_cell(src, id=gid, metadata=_nbgrader(gid, solution=True)))
        return self

    def test(self, grade_id: str, points: float, *objects: str, hidden: bool = True,
             comment: str = "") -> "Lesson":
        """A graded test cell that only calls check(): the public check ``grade_id`` and,
        if ``hidden``, the hidden check ``grade_id + "_hidden"`` on the same objects."""
        gid = self._grade_id(grade_id)
        args = "".join(f", {o}" for o in objects)
        lines = [f"# {comment}"] if comment else []
        lines.append(f'check("{gid}"{args})')
        if hidden:
            lines += ["### BEGIN HIDDEN TESTS", f'check("{gid}{HIDDEN_SUFFIX}"{args})', "### END HIDDEN TESTS"]
        self.cells.append(new_code_cell("\n".join(lines), id=gid,
                                        metadata=_nbgrader(gid, grade=True, locked=True, points=points)))
        return self

    def answer(self, grade_id: str, points: float, model_answer: str) -> "Lesson":
        """A written answer (markdown), graded by hand; the model answer is cleared in lessons/."""
        gid = self._grade_id(grade_id)
        self.cells.append(new_markdown_cell(_clean(model_answer), id=gid,
                                            metadata=_nbgrader(gid, grade=True, solution=True, points=points)))
        return self

    def notebook(self) -> nbformat.NotebookNode:
        nb = new_notebook(cells=self.cells, metadata={"kernelspec": dict(KERNELSPEC),
                                                      "language_info": {"name": "python"}})
        nbformat.validate(nb)
        return nb

    def write(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = nbformat.writes(self.notebook()) + "\n"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        return path


def load_script(script: Path):
    """Import ``solutions/_src/NN_name.py`` as a module (its name starts with a digit)."""
    spec = importlib.util.spec_from_file_location(f"lesson_src_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(script: Path) -> Lesson:
    """Run the script's ``build()``; check that the lesson id matches the file name."""
    lesson = load_script(script).build()
    if lesson.lesson_id != script.stem:
        raise ValueError(f"{script}: build() returned lesson {lesson.lesson_id!r}, expected {script.stem!r}")
    return lesson
