"""Running a check: collect what the student's code does on the check's inputs, judge it, and
say so in one line or one teaching message (``check`` is what a notebook's test cell calls)."""
from __future__ import annotations

import contextlib
import os
import re
import sys
import traceback
from pathlib import Path
from dataclasses import dataclass, field
from typing import List, Optional

from .collected import from_npz, save, to_npz_bytes
from .registry import Check, CheckFailed, get, load_hidden, part_of, quiet

# Under a failing check in the notebook: what ran and what did not, and how to go on.
HOW_TO_GO_ON = ("(Under Run All, the run stops here and the cells below have not run. Fix the exercise, run its "
                "cell and this one again; or, to go on first, click the next cell and use Run > Run Selected Cell "
                "and All Below: cells that use this code will warn you.)")
COLLECT_DIR_ENV = "COURSE_COLLECT_DIR"   # collect mode: save data to this folder instead of judging
SEED_ENV = "COURSE_SEED"                 # overrides every check's seed (a grader choosing inputs)
_COURSEKIT_DIR = Path(__file__).resolve().parents[1]
_LESSON_CHECKS = re.compile(r"[0-9]{2}_\w+_checks(\.py$|[/\\])")   # a lesson's checks, where they are in a checkout

_doing: List[str] = []


def doing(what: str) -> None:
    """Collectors call this before calling student code, e.g. ``doing("calling normalize(images)")``;
    if the student's code raises, the message says what was being done."""
    _doing[:] = [what]


PARTS_KEY = "__attempted__"               # the parts a collector ran with ``attempt``, in order


def _error_data(err: Exception) -> dict:
    """How student code failed, as data: status (a bare ``raise NotImplementedError()`` is an
    unfinished stub; torch's "... not implemented for 'Long'", with a message, is a real error),
    the error, and the lines of the student's code it came from."""
    stub = isinstance(err, NotImplementedError) and not str(err)
    out = {"__status__": "not_implemented" if stub else "error",
           "__error__": f"{type(err).__name__}: {err}".rstrip(": "),
           "__where__": "\n".join(_student_frames(err.__traceback__))}
    if _doing:
        out["__doing__"] = _doing[0]
    return out


@contextlib.contextmanager
def attempt(part: str, data: dict):
    """In a collector: run the student code of one part of the exercise (``part`` as in ``judge``).
    If it raises, the error is recorded under the part (``<part>.__status__``, ...) and collecting
    goes on with the next part, so that one unfinished function does not hide the others; that
    part's judge then fails with the error (``part_ran``)."""
    data[PARTS_KEY] = list(data.get(PARTS_KEY, [])) + [part]
    try:
        yield
    except Exception as err:
        data.update({f"{part}.{key}": value for key, value in _error_data(err).items()})


def part_ran(found: dict, part: str) -> None:
    """In a part's judge: fail with the error message if that part's code raised (see ``attempt``)."""
    status = str(found.get(f"{part}.__status__", "ok"))
    if status != "ok":
        own = {key: found.get(f"{part}.{key}") for key in ("__status__", "__error__", "__where__", "__doing__")}
        raise CheckFailed(_error_message(get(str(found["__check__"])), {k: v for k, v in own.items() if v is not None}))


def _is_ours(filename: str) -> bool:
    f = str(filename)
    return (f.startswith(str(_COURSEKIT_DIR)) or "site-packages" in f or "dist-packages" in f
            or f.startswith(sys.prefix) or f.startswith(getattr(sys, "base_prefix", sys.prefix))
            or f.startswith("<frozen") or _LESSON_CHECKS.search(f) is not None)


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
            if _doing:
                data["__doing__"] = _doing[0]
            tried = data.get(PARTS_KEY, [])
            parts = {part_of(fn) for fn in chk.judges} - {""}
            if tried and parts <= set(tried) and all(data.get(f"{p}.__status__") == "not_implemented" for p in tried):
                first = tried[0]        # every part is still the stub: the exercise is not started
                data.update({key: data[f"{first}.{key}"] for key in ("__status__", "__error__", "__where__",
                                                                       "__doing__") if f"{first}.{key}" in data})
        except Exception as err:  # the student's code raised: record it, do not crash the cell
            data = _error_data(err)
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


@dataclass
class Verdict:
    """What the judges said of one collected run.

    message: None when every judge passed, else the teaching message (every failing part's).
    parts: the exercise's parts that are judged on their own, in order ([]: it is judged whole).
    failed: the parts that failed; "" stands for a judge of the whole exercise.
    """

    message: Optional[str]
    parts: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """The share of the cell's points earned: 1 when all passed, the share of passing parts
        when only parts failed, 0 when the whole exercise failed (or its code did not run)."""
        if self.message is None:
            return 1.0
        if not self.parts or "" in self.failed or not self.failed:
            return 0.0
        return (len(self.parts) - len(set(self.failed))) / len(self.parts)


def _could_not_judge(fn, err: Exception) -> str:
    return (f"the check could not make sense of what your code returned "
            f"({type(err).__name__} in judge {fn.__name__}: {err}); compare your result "
            f"with the shapes and dtypes in the exercise's description")


def _run_judges(judges, inputs, data) -> List[tuple]:
    """Run ``judges`` in order; return the failures, ``(part, message)``.

    A judge of the whole exercise (part "") ends the judging when it fails, and is skipped once a
    part has failed (it would fail for that part's reason). A failing part only ends its own
    part: the judges of the other parts still run, so the student hears of every failing part.
    """
    failures: List[tuple] = []
    for fn in judges:
        part = part_of(fn)
        if (failures and not part) or part in {p for p, _ in failures}:
            continue
        try:
            fn(inputs, data)
        except CheckFailed as failure:
            failures.append((part, str(failure)))
        except Exception as err:  # a judge tripped over data it did not expect
            failures.append((part, _could_not_judge(fn, err)))
        if failures and not failures[-1][0]:
            break
    return failures


def _combined_message(failures: List[tuple], parts: List[str]) -> str:
    """One message for every failing part: the message as it is for one, a numbered list for more."""
    failed = [p for p, _ in failures]
    right = [p for p in parts if p not in failed]
    tail = ""
    if right and all(failed):
        tail = f"\n({' and '.join(right)} {'is' if len(right) == 1 else 'are'} right: only the above needs fixing.)"
    if len(failures) == 1:
        return failures[0][1] + tail
    lines = [f"{len(failures)} parts of this exercise need fixing ({' and '.join(failed)}):"]
    for i, (part, message) in enumerate(failures, 1):
        first, *rest = message.splitlines() or [""]
        lines.append(f"{i}. {part}: {first}")
        lines += ["   " + line for line in rest]
    return "\n".join(lines) + tail


def verdict(check_id: str, data: dict, *, with_hidden: Optional[bool] = None) -> Verdict:
    """Judge collected ``data``: every failing part's message, and which parts failed.

    The inputs are rebuilt from the seed stored in the data (a grader would use its own).
    with_hidden: run hidden judges too (default: for hidden checks). Their absence
    raises CheckFailed (see ``load_hidden``).
    """
    chk = get(check_id)
    if data.get("__status__") != "ok":
        return Verdict(_error_message(chk, data), failed=[""])
    hidden = chk.hidden if with_hidden is None else with_hidden
    judges = list(chk.judges)
    with quiet():
        if hidden:
            load_hidden(chk)
            judges += chk.hidden_judges
        inputs = chk.inputs(int(data["__seed__"]))
        failures = _run_judges(judges, inputs, data)
    parts = list(dict.fromkeys(part_of(fn) for fn in judges if part_of(fn)))
    if not failures:
        return Verdict(None, parts)
    return Verdict(_combined_message(failures, parts), parts, [p for p, _ in failures])


def judge_data(check_id: str, data: dict, *, with_hidden: Optional[bool] = None) -> Optional[str]:
    """Judge collected ``data``; return None when it passes, else the teaching message
    (``verdict``'s message: every failing part's)."""
    return verdict(check_id, data, with_hidden=with_hidden).message


# What check() said in this Python session: check id -> (passed, the names of what it checked).
_said: dict = {}


def relies_on(*check_ids: str) -> None:
    """In a lesson cell that uses the student's own functions: one line for each of their checks
    that has not passed in this session (it failed, or its cell was not run), saying what that
    means for what this cell shows. Nothing when they all passed, and nothing in collect mode
    (the grader judges outside the notebook)."""
    if os.environ.get(COLLECT_DIR_ENV):
        return
    for check_id in check_ids:
        passed, names = _said.get(check_id, (None, ()))
        what = f"your code checked by {check_id}" + (f" ({', '.join(names)})" if names else "")
        if passed is None:
            print(f"\u26a0 This cell uses {what}, but that check has not run: run its cell above first, "
                  f"to know whether to trust what this cell shows.")
        elif not passed:
            print(f"\u26a0 This cell uses {what}, which failed that check above: what this cell shows may be "
                  f"wrong. Fix it, run its cell and the check again, then this cell.")


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
    names = tuple(str(getattr(o, "__name__", "")) for o in objects if callable(o))
    _said[chk.cell] = (message is None, tuple(n for n in names if n and not n.startswith("<")))
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
