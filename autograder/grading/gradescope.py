"""A Gradescope autograder package: ``python -m autograder export GRADES_DIR --format gradescope``.

The zip follows Gradescope's autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/). At its root::

    setup.sh         run once, as root, when Gradescope builds the image (choose Ubuntu 24.04:
                     Python 3.12): bubblewrap, a virtual environment with the course (CPU torch),
                     MNIST
    run_autograder   run for every submission, in /autograder: ``python -m
                     autograder.grading.gradescope run`` below
    course/          the course: autograder/, coursekit/, mnist_cnn/, lessons_src/, solutions/,
                     course.yml, pyproject.toml (solutions and hidden judges: keep the zip private)
    package.json     the lessons it grades and the course secret the check inputs are drawn from
                     (GRADES_DIR/.grading_seed where the class was graded here, so both agree)

``run`` (``/autograder`` by default, ``$AUTOGRADER_ROOT`` in a test) finds each lesson's notebook
in ``submission/`` (``<lesson>.ipynb`` anywhere in the upload; for a one-lesson package, the one
notebook uploaded whatever its name), reads it with ``submissions.read_notebook`` (a symbolic
link is refused, as in every layout), grades it with the sandboxed grade command, and writes
``results/results.json``: one test per graded cell, with the points and the teaching message a
student sees in the feedback (never a hidden test), the written answers named as left for
grading by hand (add them as manually graded questions in Gradescope). Gradescope applies its
own late policy. A notebook that could not be graded scores 0 with the reason; results.json is
written whatever happens, as Gradescope needs one.

Where ``bwrap`` cannot make a sandbox (a container without user namespaces), the submission is
not graded (results.json says why) unless the package was built with ``--unsandboxed``: then
the student's code runs without the grader's isolation, in Gradescope's per-submission
container (it could read the package, hidden judges included).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

from . import report, submissions

PROG = "python -m autograder.grading.gradescope"
STUDENT = "submission"
COURSE_PARTS = ("autograder", "coursekit", "mnist_cnn", "lessons_src", "solutions", "course.yml", "pyproject.toml",
                "README.md")
SKIP_NAMES = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 24.04).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap python3 python3-venv python3-pip >/dev/null
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/pip" install -q --upgrade pip
# the CPU build of the pinned torch (from PyPI, torch==2.13.0 pulls gigabytes of CUDA packages)
"$ROOT/venv/bin/pip" install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
"$ROOT/venv/bin/pip" install -q -e "$ROOT/source/course"
"$ROOT/venv/bin/python" -m coursekit fetch --data-dir "$ROOT/mnist"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission: the course's sandboxed grader writes
# $ROOT/results/results.json (autograder/grading/gradescope.py).
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
cd "$ROOT/source/course" || exit 1
exec "$PY" -m autograder.grading.gradescope run --root "$ROOT"
"""


# ------------------------------------------------------------------------------------------
# Building the package
# ------------------------------------------------------------------------------------------
def _course_files(repo: Path):
    for part in COURSE_PARTS:
        path = repo / part
        if path.is_file():
            yield path
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and not f.is_symlink() and not (SKIP_NAMES & set(f.relative_to(repo).parts)) \
                        and f.suffix not in (".pyc", ".tmp"):
                    yield f


def build(out: Path, lessons: List[str], seed: int, *, unsandboxed: bool = False, repo: Optional[Path] = None) -> Path:
    """Write the zip to ``out``; returns it. ``lessons``: the lesson ids it grades (a Gradescope
    assignment is usually one lesson); ``seed``: the course secret."""
    from .version import REPO

    repo = Path(repo or REPO)
    meta = {"format": 1, "lessons": list(lessons), "seed": int(seed), "unsandboxed": bool(unsandboxed)}

    def add(z: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
        info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as z:
        add(z, "setup.sh", SETUP_SH.encode(), 0o755)
        add(z, "run_autograder", RUN_AUTOGRADER.encode(), 0o755)
        add(z, "package.json", (json.dumps(meta, indent=1) + "\n").encode(), 0o600)
        for f in _course_files(repo):
            add(z, f"course/{f.relative_to(repo)}", f.read_bytes())
    os.replace(tmp, out)
    return out


# ------------------------------------------------------------------------------------------
# Grading one submission on Gradescope
# ------------------------------------------------------------------------------------------
def find_notebooks(submission: Path, lessons: List[str]) -> Dict[str, Optional[Path]]:
    """lesson -> the uploaded notebook to grade for it (None: none uploaded)."""
    found = sorted(p for p in submission.rglob("*.ipynb")
                   if not ({"__MACOSX"} | SKIP_NAMES) & set(p.relative_to(submission).parts))
    out: Dict[str, Optional[Path]] = {}
    for lesson in lessons:
        named = [p for p in found if p.name == f"{lesson}.ipynb"]
        out[lesson] = min(named, key=lambda p: len(p.parts)) if named else None
    if len(lessons) == 1 and out[lessons[0]] is None and len(found) == 1:
        out[lessons[0]] = found[0]
    return out


def results_json(results: List[dict], notes: List[str], seconds: float) -> dict:
    """Gradescope's results.json from the grade command's per-notebook results."""
    tests, lines, manual = [], [], []
    for li, r in enumerate(results, 1):
        lesson, top = r["lesson"], float(r.get("max_points") or 0)
        if r.get("status") != "graded":
            why = str(r.get("reason") or r.get("status"))
            tests.append({"name": f"{lesson}: the notebook", "number": f"{li}", "score": 0.0, "max_score": top,
                          "status": "failed", "output": report.scrub(why), "output_format": "text",
                          "visibility": "visible"})
            lines.append(f"{lesson}: 0 / {top:g} ({why})")
            continue
        for ci, c in enumerate(r.get("cells") or [], 1):
            if c.get("kind") == "manual":
                manual.append(f"{lesson} {c['grade_id']} ({float(c['max_points']):g} points)")
                continue
            points, mx = float(c.get("points") or 0), float(c["max_points"])
            passed = c.get("status") == "passed" and points >= mx
            message = report.scrub(str(c.get("message") or ""))
            tests.append({"name": f"{lesson}: {c['grade_id']}", "number": f"{li}.{ci}", "score": points,
                          "max_score": mx, "status": "passed" if passed else "failed",
                          "output": "\u2714 passed" if passed else f"\u2718 {c.get('reason') or 'failed'}\n{message}".rstrip(),
                          "output_format": "text", "visibility": "visible"})
        lines.append(f"{lesson}: {float(r.get('points') or 0):g} / {top:g} autograded points")
    if manual:
        lines.append("Graded by hand (not in this score): " + ", ".join(manual))
    score = round(sum(t["score"] for t in tests), 6)
    return {"score": score, "execution_time": int(round(seconds)), "output": "\n".join(lines + notes),
            "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def _write(root: Path, data: dict) -> None:
    report.write_json_atomic(root / "results" / "results.json", data)


def run(root: Path) -> int:
    """Grade ``root/submission`` and write ``root/results/results.json``; 0 unless results.json
    could not be written (a grading failure is a result: the reason, 0 points)."""
    t0 = time.monotonic()
    root = Path(root)
    try:
        meta = json.loads((root / "source" / "package.json").read_text())
        lessons, seed = list(meta["lessons"]), int(meta["seed"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        _write(root, {"score": 0.0, "output": f"The autograder package is broken ({err}); tell your instructor.",
                      "tests": []})
        return 0
    work = Path(tempfile.mkdtemp(prefix="grading-"))
    notes: List[str] = []
    try:
        subs = work / "submissions" / STUDENT
        subs.mkdir(parents=True)
        for lesson, path in find_notebooks(root / "submission", lessons).items():
            if path is None:
                continue
            try:
                data = submissions.read_notebook(root / "submission", path)
            except submissions.Refused as why:
                notes.append(f"{lesson}: {why}")
                continue
            if path.name != f"{lesson}.ipynb":
                notes.append(f"{lesson}: graded {path.name} (the only notebook uploaded)")
            (subs / f"{lesson}.ipynb").write_bytes(data)
        if not any(subs.iterdir()):
            expected = " or ".join(f"{le}.ipynb" for le in lessons)
            _write(root, {"score": 0.0, "execution_time": int(time.monotonic() - t0), "tests": [],
                          "output": "\n".join([f"No notebook to grade: upload {expected}.", *notes])})
            return 0
        out = work / "out"
        cmd = [sys.executable, "-m", "autograder", "grade", str(work / "submissions"), "--out", str(out),
               "--seed", str(seed), "--no-progress", "--data-dir", os.environ.get("AUTOGRADER_DATA", str(root / "mnist"))]
        for lesson in lessons:
            cmd += ["--lesson", lesson]
        if meta.get("unsandboxed"):
            cmd.append("--unsandboxed")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(proc.stdout + proc.stderr)                        # /autograder/results/stdout: the instructor's
        results = [r for r in (report.load_result(report.result_path(out, STUDENT, le)) for le in lessons) if r]
        if len(results) < len(lessons):
            why = (proc.stderr.strip().splitlines() or ["the grader wrote no result"])[-1][:500]
            what = ("the grader cannot isolate student code on this machine" if "bwrap does not work" in why
                    else "the grader failed")
            _write(root, {"score": 0.0, "execution_time": int(time.monotonic() - t0), "tests": [],
                          "output": f"Your submission could not be graded: {what}. Tell your instructor "
                                    f"(for them: {why})."})
            return 0
        _write(root, results_json(results, notes, time.monotonic() - t0))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Gradescope's run_autograder step")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="grade ROOT/submission, write ROOT/results/results.json")
    r.add_argument("--root", type=Path, default=Path(os.environ.get("AUTOGRADER_ROOT", "/autograder")))
    args = parser.parse_args(argv)
    return run(args.root)


if __name__ == "__main__":
    sys.exit(main())
