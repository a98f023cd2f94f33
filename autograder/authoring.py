"""Build a lesson's master notebook from its source, ``lessons_src/<id>/<id>.py``.

The source is the master notebook in jupytext's percent format: a plain Python file that
JupyterLab opens as a notebook (with jupytext installed) and that diffs well. Each cell
starts with a ``# %%`` line that carries its metadata, nbgrader's as nbgrader writes it::

    # %% [markdown]                                        prose
    # %%                                                   an ordinary code cell
    # %% nbgrader={"grade": false, "grade_id": "x_setup", "locked": true, ...}          given, read-only
    # %% nbgrader={"grade": false, "grade_id": "x_answer", "solution": true, ...}       the student's code,
    #                                                      with a ### BEGIN/END SOLUTION region
    # %% nbgrader={"grade": true, "grade_id": "x_check", "locked": true, "points": 2, ...}  a test cell:
    #                                                      check("x_check", f) and a hidden region
    # %% [markdown] nbgrader={"grade": true, "solution": true, "points": 3, ...}            a written answer

A given cell may take its code from earlier lessons' masters instead of a copy:
``given_from=["03_fc:fc_net_answer"]`` in its header fills it with that cell's solution code
(the region markers removed); its own body may only be comments.

``build(lesson_id)`` returns the master notebook: cell ids are the grade ids (``cell-NN`` for
ungraded cells), the metadata nbgrader's, the output deterministic, so a test rebuilds it and
compares it byte for byte with ``solutions/<id>/<id>.ipynb``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOT = REPO / "lessons_src"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
FORMAT = "py:percent"
SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_REF = re.compile(r"^(?P<lesson>[0-9A-Za-z_]+):(?P<grade_id>[a-z0-9_]+)$")


class AuthoringError(ValueError):
    """A lesson source that cannot become a master notebook; the message names the file and cell."""


def source_path(lesson_id: str, root: Path = SOURCE_ROOT) -> Path:
    """Where lesson ``lesson_id``'s source lives: ``<root>/<id>/<id>.py``."""
    return Path(root) / lesson_id / f"{lesson_id}.py"


def read_source(path: Path) -> nbformat.NotebookNode:
    """The cells of a percent-format source, as jupytext reads them (no ids, no given code yet)."""
    import jupytext

    try:
        return jupytext.read(str(path), fmt=FORMAT)
    except Exception as err:  # jupytext raises many kinds; the author needs the file and the reason
        raise AuthoringError(f"{path}: not a readable percent-format notebook: {err}") from err


def _grade_id(cell) -> Optional[str]:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _strip_markers(source: str) -> str:
    """Solution code without its region markers (the text a given cell shows)."""
    return "\n".join(ln for ln in source.splitlines() if ln.strip() not in SOLUTION_MARKERS).strip("\n")


def _validate(path: Path, index: int, cell, seen: set) -> None:
    """Raise AuthoringError for a cell nbgrader would mishandle (bad or repeated grade id, no region...)."""
    meta = cell.metadata.get("nbgrader")
    if meta is None:
        return
    where = f"{path}: cell {index}"
    gid = meta.get("grade_id")
    if not isinstance(gid, str) or not _ID.match(gid) or len(gid) > 60:
        raise AuthoringError(f"{where}: grade_id {gid!r}: use lower-case letters, digits and _")
    if gid in seen:
        raise AuthoringError(f"{where}: grade_id {gid!r} used twice")
    seen.add(gid)
    if meta.get("grade") and "points" not in meta:
        raise AuthoringError(f"{where} ({gid}): a graded cell needs \"points\" in its nbgrader metadata")
    if meta.get("solution") and cell.cell_type == "code" and not all(m in cell.source for m in SOLUTION_MARKERS):
        raise AuthoringError(f"{where} ({gid}): a solution cell needs a ### BEGIN SOLUTION / ### END SOLUTION region")


class _Resolver:
    """Finds the solution code of ``lesson:grade_id`` in other lessons' sources (read once each)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._cells: Dict[str, Dict[str, object]] = {}
        self._stack: List[str] = []

    def _cells_of(self, lesson_id: str) -> Dict[str, object]:
        if lesson_id not in self._cells:
            path = source_path(lesson_id, self.root)
            if not path.is_file():
                raise AuthoringError(f"given_from names lesson {lesson_id!r}, but {path} does not exist")
            self._cells[lesson_id] = {_grade_id(c): c for c in read_source(path).cells if _grade_id(c)}
        return self._cells[lesson_id]

    def code(self, ref: str) -> str:
        """The code of cell ``lesson:grade_id``: its solution without markers, or its own given code."""
        m = _REF.match(ref if isinstance(ref, str) else "")
        if not m:
            raise AuthoringError(f"given_from entry {ref!r}: write it as \"<lesson id>:<grade_id>\"")
        if ref in self._stack:
            raise AuthoringError(f"given_from loops: {' -> '.join(self._stack + [ref])}")
        cell = self._cells_of(m["lesson"]).get(m["grade_id"])
        if cell is None or cell.cell_type != "code":
            raise AuthoringError(f"given_from entry {ref!r}: lesson {m['lesson']} has no code cell with that grade_id")
        if any(marker in cell.source for marker in HIDDEN_MARKERS):
            raise AuthoringError(f"given_from entry {ref!r} is a test cell; give code, not checks")
        self._stack.append(ref)
        try:
            return self.fill(cell, f"{m['lesson']}:{m['grade_id']}")
        finally:
            self._stack.pop()

    def fill(self, cell, where: str) -> str:
        """A cell's code with any ``given_from`` filled in."""
        refs = cell.metadata.get("given_from")
        if refs is None:
            return _strip_markers(cell.source)
        if not isinstance(refs, list) or not refs:
            raise AuthoringError(f"{where}: given_from must be a list such as [\"03_fc:fc_net_answer\"]")
        own = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if own:
            raise AuthoringError(f"{where}: a cell with given_from gets its code from {', '.join(refs)}; "
                                 f"remove its own code ({own[0].strip()!r})")
        return "\n\n\n".join(self.code(ref) for ref in refs)


def build(lesson_id: str, root: Path = SOURCE_ROOT) -> nbformat.NotebookNode:
    """The master notebook of ``lesson_id`` from ``<root>/<id>/<id>.py`` (validated by nbformat)."""
    path = source_path(lesson_id, root)
    if not path.is_file():
        raise AuthoringError(f"no lesson source {path}")
    resolver, seen, cells = _Resolver(root), set(), []
    for index, cell in enumerate(read_source(path).cells):
        _validate(path, index, cell, seen)
        gid = _grade_id(cell)
        cell_id = gid or f"cell-{index:02d}"
        metadata = dict(cell.metadata)
        if cell.cell_type == "markdown":
            cells.append(new_markdown_cell(cell.source, id=cell_id, metadata=metadata))
        elif cell.cell_type == "code":
            source = resolver.fill(cell, f"{path}: cell {index} ({cell_id})") if "given_from" in metadata else cell.source
            cells.append(new_code_cell(source, id=cell_id, metadata=metadata))
        else:
            raise AuthoringError(f"{path}: cell {index} is a {cell.cell_type} cell; use code or markdown")
    nb = new_notebook(cells=cells, metadata={"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nb


def write(nb: nbformat.NotebookNode, target: Path) -> Path:
    """Write ``nb`` in the one stable form (rewritten only when its bytes change)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = nbformat.writes(nb) + "\n"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target


def nbgrader_meta(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False,
                  points: Optional[float] = None) -> dict:
    """A cell's metadata as nbgrader's Create Assignment toolbar writes it."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def source_text(cells: List[Tuple[str, str, dict]]) -> str:
    """A percent-format source from ``(cell_type, source, metadata)`` triples (for tests and tools)."""
    import jupytext

    nb = new_notebook(metadata={"kernelspec": dict(KERNELSPEC)})
    for kind, source, metadata in cells:
        maker = new_markdown_cell if kind == "markdown" else new_code_cell
        nb.cells.append(maker(source, metadata=metadata))
    return jupytext.writes(nb, fmt=FORMAT)
