"""The graded checks of the lessons, split into *collect* and *judge*.

A check has an id (the ``grade_id`` of the notebook cell that runs it) and:

- ``inputs(seed) -> dict``: the inputs the student's code is run on, chosen by a seed
  (so a grader can choose them);
- a **collector** ``collect(inputs, *student_objects) -> dict``: runs in the student's
  process, calls the student's function/object on those inputs and returns plain data
  (numbers, strings, NumPy arrays: what ``np.savez`` stores without pickling);
- **judges** ``judge(inputs, found) -> None``: pure functions of the inputs and the
  collected data that raise ``CheckFailed(message)``; the message says what was
  expected, what was found and the likely mistake.

Public checks (collector and judges) live in each lesson's folder, as
``lessons_src/<id>/<id>_checks.py`` (module ``coursekit.checks.<id>_checks``: this package's
path includes the lesson folders next to it; the student environment copies the files in);
they need no reference code. A hidden check has an id ending in ``_hidden``; its collector
is registered here too, but its judges live with the grader (the course's are in
``autograder.hidden.lessonN`` and compare with ``mnist_cnn``); the grader registers them
through an entry point, and they are loaded only when a hidden check is judged.

A notebook's test cell only calls ``check("grade_id", student_function, ...)``:

- normally it collects, judges at once, prints one line when all is well and raises
  ``CheckFailed`` (an ``AssertionError``) whose message is all Jupyter shows;
- with ``$COURSE_COLLECT_DIR`` set (collect mode: the self-check runner, a future
  sandboxed grader) it only saves the collected data to ``<dir>/<id>.npz``.

Nothing here writes to stderr (nbgrader gives zero points to a test cell with stderr output).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import math
import os
import pkgutil
import re
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

COLLECT_DIR_ENV = "COURSE_COLLECT_DIR"   # collect mode: save data to this folder instead of judging
SEED_ENV = "COURSE_SEED"                 # overrides every check's seed (a grader choosing inputs)
HIDDEN_SUFFIX = "_hidden"
CHECKS_SUFFIX = "_checks"                # lessons_src/<id>/<id>_checks.py: the lesson's public checks
_PACKAGE_DIR = Path(__file__).resolve().parent
_COURSEKIT_DIR = _PACKAGE_DIR.parent


def lesson_dirs() -> List[Path]:
    """The lessons' folders of the course checkout this package sits in, ``lessons_src/<id>/``
    (none where the package is installed on its own, as in the student environment)."""
    root = _COURSEKIT_DIR.parent / "lessons_src"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name[:2].isdigit())


# The lessons' check modules are this package's modules: coursekit.checks.01_data_checks ...
__path__ += [str(d) for d in lesson_dirs() if str(d) not in __path__]  # noqa: F821 (a package's own)

Judge = Callable[[dict, dict], None]


class CheckFailed(AssertionError):
    """A check's verdict: not right yet. The message teaches; Jupyter shows only the message."""

    def _render_traceback_(self):  # IPython calls this instead of printing a traceback
        lines = str(self).splitlines() or [""]
        return [f"\x1b[0;31mCheckFailed\x1b[0m: {lines[0]}"] + lines[1:]


@dataclass
class Check:
    """One registered check (see the module docstring)."""

    id: str
    module: str                      # "01_data": the lesson whose <id>_checks / <id>_judges define it
    collect: Callable[..., dict]
    inputs: Callable[[int], dict]
    seed: int = 0
    title: str = ""
    hints: List[tuple] = field(default_factory=list)   # (regex on an error text, hint)
    judges: List[Judge] = field(default_factory=list)
    hidden_judges: List[Judge] = field(default_factory=list)

    @property
    def hidden(self) -> bool:
        return self.id.endswith(HIDDEN_SUFFIX)

    @property
    def cell(self) -> str:
        """The grade_id of the test cell that runs this check."""
        return self.id[: -len(HIDDEN_SUFFIX)] if self.hidden else self.id


REGISTRY: Dict[str, Check] = {}
_loaded_public = False
_loaded_hidden: Dict[str, bool] = {}


# --- registering checks -------------------------------------------------------------

def _module_of(fn) -> str:
    """The lesson id of the ``<id>_checks`` module that defines ``fn``."""
    name = fn.__module__.rsplit(".", 1)[-1]
    return name[: -len(CHECKS_SUFFIX)] if name.endswith(CHECKS_SUFFIX) else name


def register(check_id: str, *, inputs: Callable[[int], dict], seed: int = 0, title: str = "",
             hints: Sequence[tuple] = ()):
    """Decorator: register ``collect(inputs, *objects) -> dict`` as the collector of ``check_id``.

    inputs: ``inputs(seed) -> dict`` of what the student's code is run on.
    seed: the default seed (``$COURSE_SEED`` overrides it).
    title: what the check verifies, printed when it passes.
    hints: (regex, hint) pairs: when the student's code raises and the error text
        matches regex, the hint is added to the message.
    """
    def deco(collect):
        REGISTRY[check_id] = Check(check_id, _module_of(collect), collect, inputs, seed, title, list(hints))
        return collect
    return deco


def judge(*check_ids: str):
    """Decorator: add ``fn(inputs, found)`` as a public judge of each of ``check_ids`` (in order)."""
    def deco(fn):
        for cid in check_ids:
            REGISTRY[cid].judges.append(fn)
        return fn
    return deco


def hidden_judge(*check_ids: str):
    """Decorator for ``autograder.hidden``: add ``fn(inputs, found)`` as a hidden judge of ``check_ids``."""
    def deco(fn):
        for cid in check_ids:
            if not cid.endswith(HIDDEN_SUFFIX):
                raise ValueError(f"hidden judges belong to hidden checks (id ending in {HIDDEN_SUFFIX!r}), not {cid!r}")
            REGISTRY[cid].hidden_judges.append(fn)
        return fn
    return deco


def lesson_checks(lesson_id: str):
    """The module of lesson ``lesson_id``'s public checks (importing it registers them)."""
    return importlib.import_module(f"{__name__}.{lesson_id}{CHECKS_SUFFIX}")


def load_public() -> None:
    """Import every lesson's ``<id>_checks`` module (they register their checks)."""
    global _loaded_public
    if not _loaded_public:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):  # noqa: F821
            if info.name.endswith(CHECKS_SUFFIX):
                importlib.import_module(f"{__name__}.{info.name}")
        _loaded_public = True


def get(check_id: str) -> Check:
    """The registered check ``check_id``; CheckFailed if there is none."""
    if check_id not in REGISTRY:
        with _quiet():
            load_public()
    if check_id not in REGISTRY:
        raise CheckFailed(f"there is no check called {check_id!r}: is coursekit up to date with the lessons? "
                          f"(run `git pull` and `pip install -e .` in the course folder)")
    return REGISTRY[check_id]


HIDDEN_JUDGES_GROUP = "coursekit.hidden_judges"   # entry points: fn(module) attaches that module's hidden judges


def load_hidden(chk: Check) -> None:
    """Attach the hidden judges of ``chk``'s module, through whatever package registered them.

    coursekit names no grader: a grading package declares an entry point in the group
    ``coursekit.hidden_judges`` (the course's autograder does), and each one is called with the
    check's lesson id ("01_data"). Raises CheckFailed (a clear message) where none is
    installed, as in the student environment.
    """
    if _loaded_hidden.get(chk.module):
        return
    from importlib.metadata import entry_points

    attached, reason = False, "no package that judges them is installed"
    for ep in entry_points(group=HIDDEN_JUDGES_GROUP):
        try:
            ep.load()(chk.module)
            attached = True
        except ImportError as err:
            reason = f"{ep.value}: {err}"
    if not attached:
        raise CheckFailed(
            f"{chk.id} is a hidden check: it is judged by the course's autograder, which is not "
            f"available here ({reason}). It runs when your notebook is graded; nothing to do for you.")
    _loaded_hidden[chk.module] = True


# --- describing what the student's code returned -------------------------------------

def kind(x) -> str:
    """A short type name: 'ndarray', 'Tensor', 'list', 'int', 'DataLoader', 'NoneType', ..."""
    return type(x).__name__


def describe(x, name: str, out: dict) -> dict:
    """Store what ``x`` is under keys ``name.kind``, ``name.shape``, ``name.dtype``, ``name.value``.

    ndarray / tensor: kind, shape (int array), dtype (e.g. 'float32', 'torch.float32'),
    value (a NumPy copy; torch tensors detached), requires_grad for tensors.
    Python numbers and strings: kind and value. Anything else: kind only.
    Returns ``out``.
    """
    out[f"{name}.kind"] = kind(x)
    if hasattr(x, "detach") and hasattr(x, "dtype") and hasattr(x, "shape"):   # a torch tensor
        out[f"{name}.shape"] = np.asarray(tuple(x.shape), dtype=np.int64)
        out[f"{name}.dtype"] = str(x.dtype)
        out[f"{name}.requires_grad"] = bool(getattr(x, "requires_grad", False))
        t = x.detach().cpu()
        out[f"{name}.value"] = t.float().numpy() if str(t.dtype) == "torch.bfloat16" else t.numpy().copy()
    elif isinstance(x, np.ndarray):
        out[f"{name}.shape"] = np.asarray(x.shape, dtype=np.int64)
        out[f"{name}.dtype"] = str(x.dtype)
        if x.dtype != object:
            out[f"{name}.value"] = x.copy()
    elif isinstance(x, (bool, int, float, str, np.generic)):
        out[f"{name}.value"] = x
    return out


# --- the data: plain, serializable, the same in both modes ---------------------------

def to_npz_bytes(data: dict) -> bytes:
    """Serialize collected data with np.savez (no pickles). Raises TypeError on object arrays."""
    arrays = {}
    for key, value in data.items():
        a = np.asarray(value)
        if a.dtype == object:
            raise TypeError(f"collected value {key!r} is not plain data ({type(value).__name__})")
        arrays[key] = a
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def from_npz(source) -> dict:
    """Load collected data (bytes or a path); 0-d arrays come back as Python scalars."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    with np.load(source, allow_pickle=False) as z:
        return {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}


def save(data: dict, path) -> Path:
    """Write collected data to ``path`` (an .npz file), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(to_npz_bytes(data))
    os.replace(tmp, path)
    return path


# --- collecting ----------------------------------------------------------------------

_doing: List[str] = []


def doing(what: str) -> None:
    """Collectors call this before calling student code, e.g. ``doing("calling normalize(images)")``;
    if the student's code raises, the message says what was being done."""
    _doing[:] = [what]


@contextlib.contextmanager
def _quiet():
    """No warnings, and anything written to stderr goes to stdout (stderr zeroes a cell in nbgrader)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stderr(sys.stdout):
            yield


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
    with _quiet():
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
    with _quiet():
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
    if data.get("__status__") == "not_implemented":
        err = NotImplementedError(f"{check_id}: {message}")
        err._render_traceback_ = lambda: [f"\x1b[0;31mNotImplementedError\x1b[0m: {check_id}: {message}"]
        raise err
    raise CheckFailed(f"{check_id}: {message}")


# --- helpers for judges --------------------------------------------------------------

def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in np.asarray(shape).ravel()) + (",)" if np.size(shape) == 1 else ")")


KIND_NAMES = {"ndarray": "a NumPy array", "Tensor": "a torch tensor", "NoneType": "None", "tuple": "a tuple",
              "list": "a list", "int": "an int", "float": "a float", "str": "a string", "nothing": "missing"}


class Found:
    """What ``describe`` stored under ``name``: ``.kind``, ``.shape`` (tuple), ``.dtype``, ``.value``."""

    def __init__(self, data: dict, name: str, what: str):
        self.name, self.what = name, what
        self.kind = data.get(f"{name}.kind", "nothing")
        shape = data.get(f"{name}.shape")
        self.shape = None if shape is None else tuple(int(s) for s in np.atleast_1d(shape)) if np.size(shape) else ()
        self.dtype = data.get(f"{name}.dtype")
        self.value = data.get(f"{name}.value")
        self.requires_grad = data.get(f"{name}.requires_grad")

    def need_kind(self, *kinds: str, hint: str = "") -> "Found":
        if self.kind not in kinds:
            want = " or ".join(KIND_NAMES.get(k, f"a {k}") for k in kinds)
            raise CheckFailed(f"{self.what} should be {want}, but it is {KIND_NAMES.get(self.kind, f'a {self.kind}')}."
                              + (f"\nHint: {hint}" if hint else ""))
        return self

    def need_shape(self, expected: tuple, hint: str = "") -> "Found":
        if self.shape != tuple(expected):
            got = "no shape" if self.shape is None else f"shape {fmt_shape(self.shape)}"
            raise CheckFailed(f"{self.what} should have shape {fmt_shape(expected)}, but it has {got}."
                              + (f"\nHint: {hint}" if hint else ""))
        return self

    def need_dtype(self, expected: str, hint: str = "") -> "Found":
        if self.dtype != expected:
            raise CheckFailed(f"{self.what} should have dtype {expected}, but it has dtype {self.dtype}."
                              + (f"\nHint: {hint}" if hint else ""))
        return self


def fail(message: str, hint: str = "") -> None:
    """Raise CheckFailed(message + hint)."""
    raise CheckFailed(message + (f"\nHint: {hint}" if hint else ""))


def close(a, b, *, atol: float = 1e-6) -> bool:
    """Same shape and all values within ``atol``."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a.astype(np.float64), b.astype(np.float64), atol=atol, rtol=0))


def where_differs(found, expected, *, atol: float = 1e-6) -> str:
    """'at index (i, j, ...): found x, expected y' for the first differing element."""
    f, e = np.asarray(found, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    bad = np.argwhere(~np.isclose(f, e, atol=atol, rtol=0))
    if not len(bad):
        return "no difference"
    idx = tuple(int(i) for i in bad[0])
    return f"at index {idx}: found {f[idx]:.6g}, expected {e[idx]:.6g} ({len(bad)} of {f.size} values differ)"


__all__ = [
    "COLLECT_DIR_ENV", "SEED_ENV", "HIDDEN_SUFFIX", "Check", "CheckFailed", "REGISTRY",
    "register", "judge", "hidden_judge", "load_public", "load_hidden", "get", "kind", "describe",
    "to_npz_bytes", "from_npz", "save", "doing", "seed_of", "collect", "judge_data", "check",
    "Found", "fail", "close", "where_differs", "fmt_shape",
]
