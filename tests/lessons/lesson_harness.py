"""Helpers for the lesson tests: judge a (wrong or right) implementation, run notebooks.

    from lesson_harness import rejects, accepts

    rejects("data_normalize", lambda images: images / 256, "256")   # fails the exercise, message says "256"
    accepts("data_normalize", my_valid_variant)                      # passes public and hidden checks

An exercise's test cell runs the check ``grade_id`` and the hidden ``grade_id_hidden``;
``rejects`` passes when either fails (the student loses that cell's points) and the
first failing message contains every fragment (case-insensitive).
"""
from __future__ import annotations

import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Optional

from coursekit.checks import HIDDEN_SUFFIX, REGISTRY, collect, get, judge_data
from coursekit.checks import verdict as judge_verdict

REPO = Path(__file__).resolve().parents[2]


def verdict(check_id: str, *objects) -> Optional[str]:
    """Collect from ``objects`` and judge (hidden judges included for hidden ids): None or the message."""
    return judge_data(check_id, collect(check_id, *objects))


def _cell_checks(grade_id: str):
    get(grade_id)
    ids = [grade_id]
    if grade_id + HIDDEN_SUFFIX in REGISTRY:
        ids.append(grade_id + HIDDEN_SUFFIX)
    return ids


def rejects(grade_id: str, *objects_and_fragments) -> str:
    """The graded cell ``grade_id`` fails for these objects; the message has every fragment.

    Call as rejects(grade_id, obj1[, obj2 ...], "fragment", ...): the trailing strings are fragments.
    Returns the message.
    """
    objects = [o for o in objects_and_fragments if not isinstance(o, str)]
    fragments = [o for o in objects_and_fragments if isinstance(o, str)]
    for cid in _cell_checks(grade_id):
        message = verdict(cid, *objects)
        if message is not None:
            # Match fragments outside the quoted source lines ("  in f, line N: code"): a wrong
            # implementation written inline would otherwise "find" the fragment in its own code.
            low = "\n".join(line for line in message.lower().splitlines()
                            if not re.match(r"\s*in [\w<>.]+, line \d+", line))
            missing = [f for f in fragments if f.lower() not in low]
            assert not missing, f"{cid} failed, but its message lacks {missing}:\n{message}"
            return message
    raise AssertionError(f"a wrong implementation passed every check of {grade_id}")


def accepts(grade_id: str, *objects) -> None:
    """The graded cell ``grade_id`` passes (public and hidden checks) for these objects."""
    for cid in _cell_checks(grade_id):
        message = verdict(cid, *objects)
        assert message is None, f"a valid implementation failed {cid}:\n{message}"


def credit(grade_id: str, *objects) -> tuple:
    """(share of the cell's points, message) for these objects, as the grader gives them: the
    smallest share over the cell's public and hidden checks; the message is the public check's
    (or the hidden one's, where the public passes)."""
    shares, messages = [], []
    for cid in _cell_checks(grade_id):
        said = judge_verdict(cid, collect(cid, *objects))
        shares.append(said.fraction)
        messages.append(said.message)
    return min(shares), next((m for m in messages if m), None)


BLOCKER = textwrap.dedent('''
    """Installed by the lesson tests: the reference solution and the autograder cannot be imported."""
    import os
    import sys

    BLOCKED = ("mnist_cnn", "autograder")


    class _Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: a released lesson must run without it)")
            return None


    sys.meta_path.insert(0, _Blocker())
    flag = os.environ.get("LESSON_BLOCKER_FLAG")
    if flag:
        open(flag, "w").write("active")
''')


def blocked_env(tmp_path: Path, base: Optional[dict] = None) -> tuple:
    """An environment whose Python cannot import mnist_cnn or autograder; returns (env, flag_path).

    The flag file is written by every interpreter that starts in it (proof the blocker ran).
    """
    site = tmp_path / "blocker"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(site)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    flag = tmp_path / "blocker-active"
    env["LESSON_BLOCKER_FLAG"] = str(flag)
    return env, flag


def master(lesson_id: str) -> Path:
    return REPO / "solutions" / lesson_id / f"{lesson_id}.ipynb"


def released(lesson_id: str) -> Path:
    return REPO / "lessons" / lesson_id / f"{lesson_id}.ipynb"


def python() -> str:
    return sys.executable


def notebook_functions(lesson_id: str) -> dict:
    """Run the master notebook's given and exercise cells (no kernel, no data) in a fresh namespace.

    Returns the namespace: the reference solution's functions as the notebook defines them.
    """
    import nbformat

    namespace: dict = {}
    nb = nbformat.read(master(lesson_id), as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("solution") or (meta.get("locked") and not meta.get("grade"))):
            exec(compile(cell.source, f"<{lesson_id} {cell.id}>", "exec"), namespace)
    return namespace


def shipped_sources() -> list:
    """The Python files that ship to students: coursekit and each lesson's public checks."""
    from coursekit.checks import public_check_sources, source_files

    return sorted((REPO / "coursekit").rglob("*.py")) + [
        f for entry in public_check_sources(REPO / "lessons_src") for f in source_files(entry)]


# --- numbers in a lesson's text ------------------------------------------------------------
# What a student compares with their own run: percentages, error rates, points lost, durations.
# Each must be printed by the notebook from the student's own run, or be a number no run changes
# (the lesson's test lists those, with why, or with a function that checks the claim).
RUN_NUMBER = re.compile(
    r"\d+(?:[.,]\d+)?(?: (?:to|and) \d+(?:[.,]\d+)?)?\s?%"              # 96%, 92 and 93%, 72 to 75%
    r"|one time in \d+(?: or \d+)?"                                     # error rates
    r"|(?<![(\d])\b\d+ (?:to \d+ )?(?:percentage )?points\b(?!, graded)"  # "costs about 7 points", not "(3 points)"
    r"|\b(?:a few|\d+(?: to \d+)?|half a) (?:seconds?|minutes?)\b"       # run times a busy machine breaks
    r"|\b\d+ to \d+ s\b")


def text_numbers(lesson) -> list[str]:
    """Each run-dependent-looking number in the text (markdown cells) of the student notebook of
    ``lesson`` (a lesson id, or a notebook), as 'number: the sentence it stands in'."""
    import nbformat

    nb = nbformat.read(str(released(lesson)), as_version=4) if isinstance(lesson, str) else lesson
    out = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"\s+", " ", cell.source)
        for m in RUN_NUMBER.finditer(text):
            before = text.rfind(". ", 0, m.start())
            end = text.find(". ", m.end())
            sentence = text[before + 2 if before >= 0 else 0:end if end >= 0 else None].strip().rstrip(".")
            out.append(f"{m.group(0)}: {sentence[:160]}")
    return out


def unchecked_numbers(lesson, fixed: dict) -> list[str]:
    """The numbers of ``text_numbers`` that ``fixed`` does not cover. ``fixed`` maps a number as
    written ("69%") to why no run changes it (a string) or to a function that checks the claim on
    the reference and returns True when it holds (a failing claim is reported too)."""
    problems = []
    for item in text_numbers(lesson):
        number = item.split(": ", 1)[0]
        why = fixed.get(number)
        if why is None:
            problems.append(f"{item!r}: print it from the student's own run, or list it as fixed")
        elif callable(why) and not why():
            problems.append(f"{item!r}: the claim does not hold on the reference")
    return problems
