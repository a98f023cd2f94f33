"""Regenerate the student notebooks: ``solutions/`` -> ``lessons/`` with nbgrader.

Two steps per lesson ``<id>`` (the ids are course.yml's ``lessons``):

1. if the lesson's source ``lessons_src/<id>/<id>.py`` (jupytext percent format) exists,
   build the master notebook ``solutions/<id>/<id>.ipynb`` from it, given cells filled
   from earlier lessons' masters (see ``autograder.authoring``);
2. nbgrader ``generate_assignment`` (its Python API, no database) turns the master
   notebook into ``lessons/<id>/<id>.ipynb``: solution regions become
   ``raise NotImplementedError()``, hidden tests and outputs are removed, test and
   given cells are locked.

The output is deterministic, so ``check()`` regenerates everything into a scratch
folder and compares it byte for byte with what is committed (the CI test).
"""
from __future__ import annotations

import filecmp
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import nbformat

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
LESSONS = REPO / "lessons"
CONFIG_FILE = Path(__file__).resolve().with_name("nbgrader_config.py")
FORBIDDEN_IN_RELEASE = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                        "BEGIN MARK SCHEME", '_hidden"')


class ReleaseError(RuntimeError):
    """nbgrader could not generate a lesson, or a generated lesson leaks what it must not."""


def quiet_nbgrader() -> None:
    """Silence the warnings nbgrader's dependencies print (SQLAlchemy 2.x floods them)."""
    warnings.filterwarnings("ignore", module=r"sqlalchemy.*")
    warnings.filterwarnings("ignore", module=r"nbgrader.*")
    warnings.filterwarnings("ignore", message=r".*(SQLAlchemy|sqlalchemy|declarative_base|relationship).*")
    try:
        from sqlalchemy import exc
        warnings.filterwarnings("ignore", category=exc.SAWarning)
        warnings.filterwarnings("ignore", category=getattr(exc, "MovedIn20Warning", exc.SAWarning))
    except ImportError:
        pass
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    # nbgrader runs the `alembic` executable by name: make sure this environment's bin/ is on PATH.
    bindir = str(Path(os.sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def nbgrader_config(**overrides):
    """The course's nbgrader Config (autograder/nbgrader_config.py), with ``Section.key`` overrides."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(CONFIG_FILE.name, path=str(CONFIG_FILE.parent)).load_config()
    for dotted, value in overrides.items():
        section, key = dotted.split(".", 1)
        setattr(getattr(config, section), key, value)
    return config


def lesson_ids() -> List[str]:
    """The lesson ids in course.yml, in order."""
    from coursekit import config

    return [lesson.id for lesson in config.load().lessons]


def _existing(ids: Optional[Iterable[str]]) -> List[str]:
    """``ids`` (default: course.yml's) that have a source script or a master notebook."""
    known = lesson_ids()
    explicit = bool(ids)
    ids = list(ids) if ids else known
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ReleaseError(f"unknown lesson {', '.join(unknown)}; course.yml lists {', '.join(known)}")
    have = [i for i in ids if _source(i).is_file() or (SOLUTIONS / i / f"{i}.ipynb").is_file()]
    if explicit and len(have) < len(ids):
        missing = [i for i in ids if i not in have]
        raise ReleaseError(f"no lessons_src/{missing[0]}/{missing[0]}.py or solutions/{missing[0]}/{missing[0]}.ipynb")
    return have


def _source(lesson_id: str) -> Path:
    from autograder.authoring import source_path

    return source_path(lesson_id)


def build_solution(lesson_id: str, out_dir: Path = SOLUTIONS) -> Path:
    """Write ``<out_dir>/<id>/<id>.ipynb`` from ``lessons_src/<id>/<id>.py`` (if that source exists)."""
    from autograder import authoring

    target = out_dir / lesson_id / f"{lesson_id}.ipynb"
    if _source(lesson_id).is_file():
        try:
            authoring.write(authoring.build(lesson_id), target)
        except authoring.AuthoringError as err:
            raise ReleaseError(str(err)) from None
    return target


def _write_normalized(path: Path) -> None:
    """Rewrite a generated notebook in the one stable form: no outputs, counts or run metadata."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    for cell in nb.cells:
        for word in FORBIDDEN_IN_RELEASE:
            if word in cell.source:
                raise ReleaseError(f"{path}: cell {cell.get('id')} of the generated lesson still contains {word!r}; "
                                   f"check the region markers in the master notebook")
    text = nbformat.writes(nb) + "\n"
    path.write_text(text)
    path.chmod(0o644)


def generate(lesson_id: str, source_root: Path, release_root: Path) -> Path:
    """nbgrader generate_assignment of ``<source_root>/<id>`` into ``<release_root>/<id>``."""
    quiet_nbgrader()
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    config = nbgrader_config(**{
        "CourseDirectory.root": str(source_root.parent),
        "CourseDirectory.source_directory": source_root.name,
        "CourseDirectory.release_directory": str(release_root),
        "GenerateAssignment.no_database": True,
        "GenerateAssignment.force": True,
        "SaveCells.enabled": False,
    })
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = lesson_id
    with warnings.catch_warnings():
        quiet_nbgrader()
        result = capture_log(GenerateAssignment(coursedir=coursedir, config=config))
    if not result["success"]:
        raise ReleaseError(f"nbgrader generate_assignment {lesson_id} failed:\n{result.get('log', '')}\n{result.get('error', '')}")
    out = release_root / lesson_id
    for notebook in sorted(out.glob("*.ipynb")):
        _write_normalized(notebook)
    return out


def _stage(ids: Sequence[str], scratch: Path) -> tuple:
    """Build the master notebooks and the lessons of ``ids`` under ``scratch``; return (solutions, lessons)."""
    sol, rel = scratch / "solutions", scratch / "lessons"
    for lesson_id in ids:
        src_dir = SOLUTIONS / lesson_id
        if src_dir.is_dir():
            shutil.copytree(src_dir, sol / lesson_id, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        build_solution(lesson_id, sol)
        generate(lesson_id, sol, rel)
    return sol, rel


def _diff_trees(a: Path, b: Path) -> List[str]:
    """Relative paths that differ between two folders (missing on either side, or other bytes)."""
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} if a.is_dir() else set()
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()} if b.is_dir() else set()
    skip = {".ipynb_checkpoints", "__pycache__"}
    out = []
    for rel in sorted(files_a | files_b):
        if skip & set(rel.parts):
            continue
        if rel not in files_a or rel not in files_b or not filecmp.cmp(a / rel, b / rel, shallow=False):
            out.append(str(rel))
    return out


def release(ids: Optional[Iterable[str]] = None, log=print) -> List[Path]:
    """Rebuild the master notebooks and regenerate ``lessons/<id>/`` for ``ids`` (default: all)."""
    ids = _existing(ids)
    written = []
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        sol, rel = _stage(ids, Path(tmp))
        for lesson_id in ids:
            built = sol / lesson_id / f"{lesson_id}.ipynb"
            master = SOLUTIONS / lesson_id / f"{lesson_id}.ipynb"
            if _source(lesson_id).is_file() and (not master.exists() or not filecmp.cmp(built, master, shallow=False)):
                master.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(built, master)
                log(f"solutions/{lesson_id}/{lesson_id}.ipynb: rebuilt from lessons_src/{lesson_id}/{lesson_id}.py")
            target = LESSONS / lesson_id
            if _diff_trees(rel / lesson_id, target):
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(rel / lesson_id, target)
                log(f"lessons/{lesson_id}/: regenerated")
            else:
                log(f"lessons/{lesson_id}/: up to date")
            written.append(target / f"{lesson_id}.ipynb")
    return written


def check(ids: Optional[Iterable[str]] = None) -> List[str]:
    """What is out of date: regenerate into a scratch folder and compare with the repository.

    Returns one line per problem (empty: solutions/ and lessons/ are up to date).
    """
    ids = _existing(ids)
    problems = []
    with tempfile.TemporaryDirectory(prefix="release-check-") as tmp:
        sol, rel = _stage(ids, Path(tmp))
        for lesson_id in ids:
            if _source(lesson_id).is_file():
                name = f"{lesson_id}/{lesson_id}.ipynb"
                if not (SOLUTIONS / name).is_file() or not filecmp.cmp(sol / name, SOLUTIONS / name, shallow=False):
                    problems.append(f"solutions/{name} differs from what lessons_src/{lesson_id}/{lesson_id}.py builds")
            for path in _diff_trees(rel / lesson_id, LESSONS / lesson_id):
                problems.append(f"lessons/{lesson_id}/{path} is out of date")
    known = set(lesson_ids())
    if LESSONS.is_dir():
        for stale in sorted(p.name for p in LESSONS.iterdir() if p.is_dir() and p.name not in known):
            problems.append(f"lessons/{stale}/ is not a lesson in course.yml")
    if problems:
        problems.append("run `python -m autograder release` (or `make lessons`) and commit the result")
    return problems
