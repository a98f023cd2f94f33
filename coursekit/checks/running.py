"""Running a check: collect what the student's code does on the check's inputs, judge it, and
say so in one line or one teaching message (``check`` is what a notebook's test cell calls)."""
from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path
from typing import List, Optional

from .collected import from_npz, save, to_npz_bytes
from .registry import Check, CheckFailed, get, load_hidden, quiet

# Under a failing check in the notebook: what ran and what did not, and how to go on.
HOW_TO_GO_ON = ("(Run All stops here: the cells below have not run. Fix the exercise, run its cell and this one "
                "again; or, to go on first, click the next cell and use Run > Run Selected Cell and All Below.)")
COLLECT_DIR_ENV = "COURSE_COLLECT_DIR"   # collect mode: save data to this folder instead of judging
SEED_ENV = "COURSE_SEED"                 # overrides every check's seed (a grader choosing inputs)
_COURSEKIT_DIR = Path(__file__).resolve().parents[1]

_doing: List[str] = []


def doing(what: str) -> None:
    """Collectors call this before calling student code, e.g. ``doing("calling normalize(images)")``;
    if the student's code raises, the message says what was being done."""
    _doing[:] = [what]


def _is_ours(filename: str) -> bool:
    f = str(filename)
    return (f.startswith(str(_COURSEKIT_DIR)) or "site-packages" in f or "dist-packages" in f
            or f.startswith(sys.prefix) or f.startswith(getattr(sys, "base_prefix", sys.prefix))
            or f.startswith("<frozen"))


def _student_frames(tb) -> List[str]:
    """'line N: code' for the frames of the traceback that are the student's own code (last 3)."""
    frames = [f for f in traceback.extract_tb(tb) if not _is_ours(f.filename)]
    return [f"in {f.name}, line {f.lineno}" + (f": {f.line.strip()}" if f.line else "") for f in frames[-3:]]


def seed_of(chk: Check) -> int:
    """The seed inputs are drawn with: ``$COURSE_SEED`` if set, else the check's own."""
    env = os.environ.get(SEED_ENV)
    return int(env) if env not in (None, "") else chk.seed


def collect(check_id: str, *objects, seed: Optional[int] = None) -> dict:
    """Run the collector of ``check_id`` on the student's ``objects``; return plain data.

    Never raises for the student's mistakes: an exception in their code is recorded as
    ``__status__`` 'not_implemented' or 'error' with ``__error__`` (the error) and
    ``__where__`` (the lines of their code it came from). The data always holds
    ``__check__`` and ``__seed__``. It has been through np.savez and back.
    """
    chk = get(check_id)
    seed = seed_of(chk) if seed is None else seed
    data: dict = {}
    _doing[:] = []
    with quiet():
        inputs = chk.inputs(seed)
        try:
            data = chk.collect(inputs, *objects) or {}
            data["__status__"] = "ok"
        except Exception as err:  # the student's code raised: record it, do not crash the cell
            # a bare `raise NotImplementedError()` is an unfinished stub; torch's own
            # "... not implemented for 'Long'" (a NotImplementedError with a message) is a real error
            stub = isinstance(err, NotImplementedError) and not str(err)
            data = {"__status__": "not_implemented" if stub else "error",
                    "__error__": f"{type(err).__name__}: {err}".rstrip(": "),
                    "__where__": "\n".join(_student_frames(err.__traceback__))}
        if _doing:
            data["__doing__"] = _doing[0]
    data["__check__"] = check_id
    data["__seed__"] = int(seed)
    return from_npz(to_npz_bytes(data))


# --- judging -------------------------------------------------------------------------

def _error_message(chk: Check, data: dict) -> str:
    doing_ = data.get("__doing__", "running your code")
    if data["__status__"] == "not_implemented":
        frames = [line for line in str(data.get("__where__", "")).splitlines() if line]
        stub = re.match(r"in (\w+),", frames[-1]) if frames else None
        where = f" (the stub in {stub.group(1)})" if stub else ""
        return (f"not implemented yet: {doing_} raised NotImplementedError{where}. Write your code in place "
                f"of `raise NotImplementedError()` in the exercise cell, run that cell, then this one.")
    lines = [f"{doing_} raised {data.get('__error__', 'an error')}"]
    where = data.get("__where__", "")
    if where:
        lines.append("  " + where.replace("\n", "\n  "))
    for pattern, hint in chk.hints:
        if re.search(pattern, str(data.get("__error__", ""))):
            lines.append(f"Hint: {hint}")
    return "\n".join(lines)


def judge_data(check_id: str, data: dict, *, with_hidden: Optional[bool] = None) -> Optional[str]:
    """Judge collected ``data``; return None when it passes, else the teaching message.

    The inputs are rebuilt from the seed stored in the data (a grader would use its own).
    with_hidden: run hidden judges too (default: for hidden checks). Their absence
    raises CheckFailed (see ``load_hidden``).
    """
    chk = get(check_id)
    if data.get("__status__") != "ok":
        return _error_message(chk, data)
    hidden = chk.hidden if with_hidden is None else with_hidden
    judges = list(chk.judges)
    with quiet():
        if hidden:
            load_hidden(chk)
            judges += chk.hidden_judges
        inputs = chk.inputs(int(data["__seed__"]))
        for fn in judges:
            try:
                fn(inputs, data)
            except CheckFailed as failure:
                return str(failure)
            except Exception as err:  # a judge tripped over data it did not expect
                return (f"the check could not make sense of what your code returned "
                        f"({type(err).__name__} in judge {fn.__name__}: {err}); compare your result "
                        f"with the shapes and dtypes in the exercise's description")
    return None


def check(check_id: str, *objects) -> None:
    """What a notebook test cell calls: ``check("data_normalize", normalize)``.

    Collect mode ($COURSE_COLLECT_DIR set): save the collected data, judge nothing.
    Otherwise judge now: print one line if all is well, else raise CheckFailed
    (NotImplementedError if the exercise is still the stub), whose message is all
    that Jupyter shows.
    """
    data = collect(check_id, *objects)
    folder = os.environ.get(COLLECT_DIR_ENV)
    if folder:
        save(data, Path(folder) / f"{check_id}.npz")
        print(f"[collected {check_id}]")
        return
    chk = get(check_id)
    message = judge_data(check_id, data)
    if message is None:
        if chk.hidden:
            print(f"\u2714 {chk.cell}: the grader's extra checks passed")
        else:
            print(f"\u2714 {check_id} passed" + (f": {chk.title}" if chk.title else ""))
        return
    message += "\n" + HOW_TO_GO_ON
    if data.get("__status__") == "not_implemented":
        err = NotImplementedError(f"{check_id}: {message}")
        err._render_traceback_ = lambda: [f"\x1b[0;31mNotImplementedError\x1b[0m: {check_id}: {message}"]
        raise err
    raise CheckFailed(f"{check_id}: {message}")
