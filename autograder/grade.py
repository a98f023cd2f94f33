"""Autograde notebooks with nbgrader, in a scratch course folder.

``autograde({(student, lesson): notebook_path, ...})`` builds a throwaway nbgrader
course: ``source/`` = the master notebooks in ``solutions/``, a fresh gradebook,
``generate_assignment`` for each lesson, the notebooks as ``submitted/<student>/<lesson>/``,
then ``autograde`` (nbgrader restores the test and given cells from the master, hidden
tests included, and runs the notebook top to bottom). Returns the scores per graded
cell and the seconds each notebook took. Used by the tests and ``python -m autograder grade``.
"""
from __future__ import annotations

import functools
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from autograder.release import SOLUTIONS, nbgrader_config, quiet_nbgrader


@dataclass
class GradeResult:
    student: str
    lesson: str
    score: float = 0.0                      # autograded points earned
    max_score: float = 0.0                  # autograded points available
    cells: Dict[str, Tuple[float, float]] = field(default_factory=dict)   # grade_id -> (score, max), autograded cells
    manual: List[str] = field(default_factory=list)                       # grade_ids left for a human
    seconds: float = 0.0                    # nbgrader autograde wall time for this notebook
    log: str = ""
    feedback: Optional[Path] = None

    def summary(self) -> str:
        cells = ", ".join(f"{gid} {s:g}/{m:g}" for gid, (s, m) in self.cells.items())
        manual = f"; graded by hand: {', '.join(self.manual)}" if self.manual else ""
        return (f"{self.student} {self.lesson}: {self.score:g} / {self.max_score:g} autograded points "
                f"in {self.seconds:.1f} s ({cells}{manual})")


def _fast_gradebook() -> None:
    """nbgrader runs `alembic heads` (a subprocess, ~1 s) every time it opens the gradebook; once is enough."""
    import nbgrader.api

    if not hasattr(nbgrader.api.get_alembic_version, "cache_info"):
        nbgrader.api.get_alembic_version = functools.lru_cache(maxsize=None)(nbgrader.api.get_alembic_version)


def autograde(submissions: Dict[Tuple[str, str], Path], *, feedback_dir: Optional[Path] = None,
              workdir: Optional[Path] = None, timeout: Optional[int] = None) -> List[GradeResult]:
    """Autograde ``{(student_id, lesson_id): notebook}``; results in the order given.

    feedback_dir: also write nbgrader's HTML feedback (hidden tests cleared) to
        ``<feedback_dir>/<student>/<lesson>/<lesson>.html``.
    workdir: keep the scratch course there (default: a temporary folder, removed).
    timeout: seconds per cell (default: nbgrader_config.py's).
    """
    quiet_nbgrader()
    _fast_gradebook()
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="autograde-")
        workdir = Path(tmp.name)
    root = Path(workdir).resolve()
    try:
        overrides = {"CourseDirectory.root": str(root), "CourseDirectory.source_directory": "source",
                     "CourseDirectory.release_directory": "release",
                     "CourseDirectory.db_url": f"sqlite:///{root / 'gradebook.db'}"}
        if timeout:
            overrides["Execute.timeout"] = timeout
        api = NbGraderAPI(config=nbgrader_config(**overrides))
        lessons = sorted({lesson for _, lesson in submissions})
        for lesson in lessons:
            src = SOLUTIONS / lesson
            if not (src / f"{lesson}.ipynb").is_file():
                raise FileNotFoundError(f"no master notebook solutions/{lesson}/{lesson}.ipynb")
            shutil.copytree(src, root / "source" / lesson, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            result = api.generate_assignment(lesson)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment {lesson} failed:\n{result.get('log', '')}")
        results = []
        for (student, lesson), notebook in submissions.items():
            target = root / "submitted" / student / lesson / f"{lesson}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(notebook, target)
            start = time.perf_counter()
            out = api.autograde(lesson, student, force=True, create=True)
            res = GradeResult(student, lesson, seconds=time.perf_counter() - start, log=out.get("log", ""))
            if not out["success"]:
                raise RuntimeError(f"nbgrader autograde {lesson} for {student} failed:\n{out.get('log', '')}")
            with Gradebook(api.coursedir.db_url) as gb:
                nb = gb.find_submission_notebook(lesson, lesson, student)
                for grade in nb.grades:
                    # written answers are graded by hand, even where nbgrader scored an
                    # unchanged (blank) answer 0 automatically
                    if grade.cell.cell_type == "markdown":
                        res.manual.append(grade.cell.name)
                    elif grade.auto_score is not None:
                        res.cells[grade.cell.name] = (float(grade.auto_score), float(grade.max_score))
                    else:
                        res.manual.append(grade.cell.name)
            res.score = sum(s for s, _ in res.cells.values())
            res.max_score = sum(m for _, m in res.cells.values())
            if feedback_dir is not None:
                fb = api.generate_feedback(lesson, student, force=True)
                if not fb["success"]:
                    raise RuntimeError(f"nbgrader generate_feedback {lesson} for {student} failed:\n{fb.get('log', '')}")
                html = root / "feedback" / student / lesson / f"{lesson}.html"
                dest = Path(feedback_dir) / student / lesson / html.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(html, dest)
                res.feedback = dest
            results.append(res)
        return results
    finally:
        if tmp is not None:
            tmp.cleanup()
