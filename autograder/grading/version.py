"""The course a grader grades with, as a fingerprint a client and its workers can compare.

A Dask worker on another machine grades with *its* installed course: if its masters, checks,
hidden judges, grading code, course.yml or numerical libraries differ from the client's, its
grades would differ too. ``course_files()`` hashes each of those files (and records the
Python, torch and numpy versions); the client refuses a worker whose files differ, naming them.
"""
from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
CODE = [("autograder", "*.py"), ("autograder/grading", "*.py"), ("autograder/hidden", "*.py"),
        ("coursekit", "**/*.py"), ("mnist_cnn", "*.py"),   # mnist_cnn: the reference the hidden judges use
        ("lessons_src", "*/*_judges.py")]                 # and the public checks: public_check_sources


def course_files(solutions: Optional[Path] = None) -> Dict[str, str]:
    """{path relative to the course: sha256 prefix} of everything that decides grades; the
    masters under ``solutions/<id>/<id>.ipynb`` whatever folder they were read from."""
    from .plan import default_solutions_dir

    out: Dict[str, str] = {}
    for folder, pattern in CODE:
        for f in sorted((REPO / folder).glob(pattern)):
            if "__pycache__" not in f.parts and f.is_file():
                out[str(f.relative_to(REPO))] = _sha(f.read_bytes())
    from coursekit.checks.registry import public_check_sources, source_files

    for entry in public_check_sources(REPO / "lessons_src"):
        for f in source_files(entry):
            out[str(f.relative_to(REPO))] = _sha(f.read_bytes())
    course = REPO / "course.yml"
    if course.is_file():
        out["course.yml"] = _sha(course.read_bytes())
    root = Path(solutions or default_solutions_dir())
    for master in sorted(root.glob("*/*.ipynb")):
        if master.stem == master.parent.name:
            out[f"solutions/{master.parent.name}/{master.name}"] = _sha(master.read_bytes())
    out["(python)"] = platform.python_version()
    for module in ("torch", "numpy"):
        try:
            out[f"({module})"] = __import__(module).__version__
        except ImportError:
            out[f"({module})"] = "missing"
    return out


def fingerprint(files: Dict[str, str]) -> str:
    return _sha(json.dumps(files, sort_keys=True).encode())


def differences(mine: Dict[str, str], theirs: Dict[str, str], most: int = 4) -> List[str]:
    """What differs, for a message: 'solutions/01_data/01_data.ipynb differs', 'coursekit/x.py is missing there'."""
    out = []
    for path in sorted(set(mine) | set(theirs)):
        if path not in theirs:
            out.append(f"{path} is missing there")
        elif path not in mine:
            out.append(f"{path} exists only there")
        elif mine[path] != theirs[path]:
            out.append(f"{path} differs ({theirs[path]} there, {mine[path]} here)" if path.startswith("(")
                       else f"{path} differs")
    return out[:most] + ([f"and {len(out) - most} more"] if len(out) > most else [])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
