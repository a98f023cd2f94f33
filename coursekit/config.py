"""Load ``course.yml``, the one description of the course, into typed dataclasses.

Every key is checked: a misspelt key, a missing key or a value of the wrong type
raises ``ConfigError`` with the key's dotted name, e.g.
``course.yml: unknown key 'recipes.fast.bach_size' (did you mean 'batch_size'?)``.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = REPO_ROOT / "course.yml"


class ConfigError(ValueError):
    """course.yml is missing, malformed, or has a wrong/missing key."""


@dataclass(frozen=True)
class DataConfig:
    root: typing.Optional[str]
    mirrors: typing.List[str]
    mirror_timeout_s: float
    hub_package: str
    hub_member: str
    hub_sha256: str


@dataclass(frozen=True)
class ModelConfig:
    name: str
    num_classes: int


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    schedule: str
    standardize: bool
    log_every: int

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "onecycle"):
            raise ConfigError(f"schedule must be 'constant' or 'onecycle', not {self.schedule!r}")
        for name in ("epochs", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")


@dataclass(frozen=True)
class EvaluationConfig:
    accuracy_threshold: float
    batch_size: int


@dataclass(frozen=True)
class Lesson:
    """One lesson: ``solutions/<id>/<id>.ipynb`` -> ``lessons/<id>/<id>.ipynb``.

    points: the sum of the points of the notebook's graded cells (checked by a test)
    budget_s: the most seconds nbgrader may take to run the notebook top to bottom
    """
    id: str
    title: str
    points: float
    budget_s: float

    def __post_init__(self) -> None:
        if not (len(self.id) > 3 and self.id[:2].isdigit() and self.id[2] == "_"):
            raise ConfigError(f"lesson id must look like 'NN_name', not {self.id!r}")
        if self.points < 0 or self.budget_s <= 0:
            raise ConfigError(f"lesson {self.id}: points must be >= 0 and budget_s > 0")


@dataclass(frozen=True)
class Course:
    data: DataConfig
    model: ModelConfig
    recipes: typing.Dict[str, Recipe]
    evaluation: EvaluationConfig
    lessons: typing.List[Lesson]
    late: typing.Optional[dict]     # due dates and penalties: checked by autograder.grading.late

    def __post_init__(self) -> None:
        ids = [lesson.id for lesson in self.lessons]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"lesson ids must be unique: {', '.join(ids)}")

    def lesson(self, lesson_id: str) -> Lesson:
        """The lesson called ``lesson_id``; ConfigError naming the known ones if absent."""
        for lesson in self.lessons:
            if lesson.id == lesson_id:
                return lesson
        raise ConfigError(f"no lesson {lesson_id!r} in course.yml; known: {', '.join(l.id for l in self.lessons)}")

    def recipe(self, name: str) -> Recipe:
        """The training recipe called ``name``; ConfigError naming the known ones if absent."""
        if name not in self.recipes:
            raise ConfigError(f"no recipe {name!r} in course.yml; known: {', '.join(sorted(self.recipes))}")
        return self.recipes[name]


def _convert(value, hint, where: str):
    """Check ``value`` against the type ``hint`` (recursing into dataclasses); return it converted."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"'{where}' must be a mapping, not {type(value).__name__}")
        return _build(hint, value, where)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, inner, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"'{where}' must be a list, not {type(value).__name__}")
        (inner,) = typing.get_args(hint)
        return [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{where}' must be a mapping, not {type(value).__name__}")
        _, inner = typing.get_args(hint)
        return {k: _convert(v, inner, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool) or hint is not bool and isinstance(value, bool):
        raise ConfigError(f"'{where}' must be {hint.__name__}, not {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"'{where}' must be {hint.__name__}, not {value!r}")
    return value


def did_you_mean(key, known: typing.List[str]) -> str:
    """" (did you mean 'batch_size'?)" for the closest of ``known``, else " (expected one of: ...)"."""
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (expected one of: {', '.join(known)})"


def _build(cls, raw: dict, where: str = ""):
    """Build dataclass ``cls`` from ``raw``, reporting unknown and missing keys by dotted name."""
    hints = typing.get_type_hints(cls)
    prefix = f"{where}." if where else ""
    for key in raw:
        if key not in hints:
            raise ConfigError(f"unknown key '{prefix}{key}'{did_you_mean(key, list(hints))}")
    missing = [k for k in hints if k not in raw]
    if missing:
        raise ConfigError(f"missing key '{prefix}{missing[0]}'")
    values = {k: _convert(raw[k], hints[k], prefix + k) for k in hints}
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(f"'{where}': {err}") from None


def _default_path() -> Path:
    here = Path.cwd() / "course.yml"
    return DEFAULT_PATH if DEFAULT_PATH.is_file() or not here.is_file() else here


def load(path: typing.Union[str, Path, None] = None) -> Course:
    """Read and check course.yml.

    path: the file; default ``$MNIST_CNN_COURSE``, else the course folder's ``course.yml`` (next to
        this package in a checkout), else ``./course.yml`` (the student environment, where the
        package is installed on its own).
    Returns the Course. Raises ConfigError with a one-line, key-naming message.
    """
    path = Path(path or os.environ.get("MNIST_CNN_COURSE") or _default_path())
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run from a checkout of the course or set MNIST_CNN_COURSE") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return _build(Course, raw)
    except ConfigError as err:
        raise ConfigError(f"{path.name}: {err}") from None
