"""Late work: due dates per lesson, a penalty policy, per-student extensions.

The policy is course.yml's ``late:`` section, or the instructor's own file given to the grade
command with ``--late FILE`` (the same keys, with or without the ``late:`` line)::

    late:
      policy: per_hour            # none | zero | per_hour
      points_per_hour: 1          # per_hour: points taken for every started hour late
      max_penalty: 6              # per_hour: at most this many points (null: no cap but the score)
      grace_minutes: 10           # this late still counts as on time
      due:                        # lesson id -> due date (a lesson without one is never late)
        01_data: 2026-12-08 23:59 UTC
        04_training: "2026-12-15 23:59 Europe/Berlin"
      extensions:                 # student -> lesson id (or all) -> hours more, or a new due date
        alice: {01_data: 48}
        bob: {all: "2026-12-20 12:00 UTC"}

Dates are read as nbgrader reads them (``2026-12-08 23:59:00 UTC``, a time zone name or offset,
or ISO 8601; without a zone: UTC). The submission time is the one the submission carries:
nbgrader's ``timestamp.txt`` (``submitted/`` layout, or next to a flat layout's notebooks) or the
exchange folder's name. A notebook without one is not checked (the grade command says how many).

The penalty is nbgrader's rule, with the per-hour policy nbgrader lacks: ``zero`` takes every
point earned, ``per_hour`` ``points_per_hour`` for every started hour after the due date (the
grace period only forgives), capped at ``max_penalty``; never more than the points earned.
``none`` takes nothing but still reports how late a notebook came.

The grade command writes each late notebook's penalty to ``grades.csv`` (a ``late_penalty`` row
of negative points) and the policy and every assessment to ``grades.json`` (``late``); the
gradebook import, the export and the feedback command read it from there, so a notebook's
penalty is the same in every place and is recomputed, never lost, at every re-run.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

POLICIES = ("none", "zero", "per_hour")
KEYS = ("policy", "points_per_hour", "max_penalty", "grace_minutes", "due", "extensions")
ALL = "all"

When = dt.datetime                       # naive, UTC


class LateError(ValueError):
    """The late policy cannot be read: the message names the key and says what to write."""


def parse_time(value, where: str) -> When:
    """A due date or submission time as naive UTC: nbgrader's formats, ISO 8601, or a YAML date."""
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        from .discover import parse_utc

        try:
            return parse_utc(value.strip())
        except Exception:
            raise LateError(f"{where}: cannot read the time {value!r} (write e.g. 2026-12-08 23:59 UTC)") from None
    else:
        raise LateError(f"{where}: expected a date and time such as 2026-12-08 23:59 UTC, not {value!r}")
    return (when - when.utcoffset()).replace(tzinfo=None) if when.tzinfo is not None else when


def show_time(when: When) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def points(x: float) -> str:
    """'1 point', '3 points', '1.5 points'."""
    return f"{x:g} point" + ("" if x == 1 else "s")


def show_delay(seconds: float) -> str:
    """'2 h 31 min', '1 d 3 h', 'under 1 min' (a clock's reading: whole minutes)."""
    if 0 < seconds < 60:
        return "under 1 min"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{mins} min"] * bool(mins or not (days or hours))
    return " ".join(parts)


@dataclass(frozen=True)
class Assessment:
    """One notebook against its due date."""
    student: str
    lesson: str
    submitted_at: Optional[When]
    due: Optional[When]                  # with the student's extension
    seconds_late: float                  # 0 when on time, within the grace period, or unknown
    penalty: float                       # points taken (of the autograded points)
    message: str

    @property
    def late(self) -> bool:
        return self.seconds_late > 0

    def as_json(self) -> dict:
        return {"submitted_at": self.submitted_at and self.submitted_at.isoformat(),
                "due": self.due and self.due.isoformat(), "seconds_late": self.seconds_late,
                "penalty": self.penalty, "message": self.message}


@dataclass(frozen=True)
class LatePolicy:
    policy: str = "none"
    points_per_hour: float = 0.0
    max_penalty: Optional[float] = None
    grace_minutes: float = 0.0
    due: Dict[str, When] = field(default_factory=dict)
    extensions: Dict[str, Dict[str, Union[float, When]]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Takes points (policy zero or per_hour) for some lesson."""
        return self.policy != "none" and bool(self.due)

    def due_for(self, student: str, lesson: str) -> Optional[When]:
        """The lesson's due date for this student: an extension of the lesson, else of all lessons."""
        due = self.due.get(lesson)
        if due is None:
            return None
        ext = self.extensions.get(student, {})
        more = ext.get(lesson, ext.get(ALL))
        if isinstance(more, dt.datetime):
            return max(due, more)
        return due + dt.timedelta(hours=float(more)) if more else due

    def penalty(self, seconds_late: float, score: float) -> float:
        """Points taken from a notebook scoring ``score`` that came ``seconds_late`` after its due date
        (nbgrader's ``LateSubmissionPlugin.late_submission_penalty`` with a per-hour policy)."""
        if seconds_late <= self.grace_minutes * 60 or score <= 0 or self.policy == "none":
            return 0.0
        if self.policy == "zero":
            return float(score)
        taken = math.ceil(seconds_late / 3600 - 1e-9) * self.points_per_hour
        if self.max_penalty is not None:
            taken = min(taken, self.max_penalty)
        return float(min(taken, score))

    def rule(self) -> str:
        """The policy in words, for a message."""
        if self.policy == "zero":
            return "a late notebook earns 0 points"
        if self.policy == "per_hour":
            cap = f", at most {self.max_penalty:g}" if self.max_penalty is not None else ""
            return f"{points(self.points_per_hour)} per started hour late{cap}"
        return "no penalty for late work"

    def assess(self, student: str, lesson: str, submitted_at, score: float) -> Assessment:
        """How late the notebook came and what it costs; ``submitted_at``: the submission's own
        timestamp (None: unknown, never late)."""
        due = self.due_for(student, lesson)
        when = None
        if submitted_at:
            try:
                when = parse_time(submitted_at, f"{student} {lesson}'s submission time")
            except LateError:
                when = None
        if due is None or when is None or when <= due:
            msg = "" if due is None or when is not None else "no submission time: not checked for lateness"
            return Assessment(student, lesson, when, due, 0.0, 0.0, msg)
        seconds = (when - due).total_seconds()
        grace = seconds <= self.grace_minutes * 60
        taken = self.penalty(seconds, score)
        msg = (f"submitted {show_time(when)}, {show_delay(seconds)} after the due date {show_time(due)}"
               + (" (within the grace period: on time)" if grace else f": -{points(taken)} ({self.rule()})"))
        return Assessment(student, lesson, when, due, 0.0 if grace else seconds, taken, msg)

    def as_json(self) -> dict:
        return {"policy": self.policy, "points_per_hour": self.points_per_hour, "max_penalty": self.max_penalty,
                "grace_minutes": self.grace_minutes, "due": {k: v.isoformat() for k, v in self.due.items()},
                "extensions": {s: {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in e.items()}
                               for s, e in self.extensions.items()}}


NO_POLICY = LatePolicy()


def _unknown(key, known: Iterable[str], where: str) -> LateError:
    from coursekit.config import did_you_mean

    return LateError(f"unknown key '{where}{key}'{did_you_mean(key, list(known))}")


def _number(value, where: str, *, allow_none: bool = False) -> Optional[float]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise LateError(f"'{where}' must be a number of 0 or more" + (" or null" if allow_none else "")
                        + f", not {value!r}")
    return float(value)


def from_mapping(raw, lessons: Optional[List[str]] = None, *, where: str = "late.") -> LatePolicy:
    """A LatePolicy from the ``late:`` mapping; ``lessons``: the known lesson ids (checked)."""
    if raw is None:
        return NO_POLICY
    if not isinstance(raw, dict):
        raise LateError(f"'{where[:-1]}' must be a mapping, not {type(raw).__name__}")
    for key in raw:
        if key not in KEYS:
            raise _unknown(key, KEYS, where)
    policy = raw.get("policy", "none")
    if policy not in POLICIES:
        raise LateError(f"'{where}policy' must be one of {', '.join(POLICIES)}, not {policy!r}")
    per_hour = _number(raw.get("points_per_hour", 0), where + "points_per_hour")
    if policy == "per_hour" and not per_hour:
        raise LateError(f"'{where}points_per_hour' must be set above 0 for the per_hour policy")

    def lesson_key(key, at: str) -> str:
        if lessons is not None and key not in lessons and key != ALL:
            raise _unknown(key, lessons, at)
        return str(key)

    due_raw = raw.get("due") or {}
    if not isinstance(due_raw, dict):
        raise LateError(f"'{where}due' must map lesson ids to due dates, e.g. 01_data: 2026-12-08 23:59 UTC")
    due = {lesson_key(k, where + "due."): parse_time(v, f"{where}due.{k}") for k, v in due_raw.items()}
    if ALL in due:
        raise LateError(f"'{where}due' names lessons, not {ALL!r}: give each lesson its due date")
    ext_raw = raw.get("extensions") or {}
    if not isinstance(ext_raw, dict):
        raise LateError(f"'{where}extensions' must map student ids to {{lesson: hours or a new due date}}")
    extensions: Dict[str, Dict[str, Union[float, When]]] = {}
    for student, per in ext_raw.items():
        at = f"{where}extensions.{student}"
        if not isinstance(per, dict):
            raise LateError(f"'{at}' must map lesson ids (or {ALL}) to hours or a new due date, e.g. {{01_data: 48}}")
        extensions[str(student)] = {
            lesson_key(k, at + "."): (_number(v, f"{at}.{k}") if isinstance(v, (int, float)) and not isinstance(v, bool)
                                      else parse_time(v, f"{at}.{k}"))
            for k, v in per.items()}
    return LatePolicy(policy=policy, points_per_hour=per_hour or 0.0,
                      max_penalty=_number(raw.get("max_penalty"), where + "max_penalty", allow_none=True),
                      grace_minutes=_number(raw.get("grace_minutes", 0), where + "grace_minutes") or 0.0,
                      due=due, extensions=extensions)


def load(path: Optional[Path] = None, lessons: Optional[List[str]] = None) -> LatePolicy:
    """The policy in ``path`` (YAML, with or without a top-level ``late:``), else course.yml's."""
    import yaml

    if path is None:
        from coursekit import config

        try:
            return from_mapping(config.load().late, lessons, where="course.yml: late.")
        except config.ConfigError:
            return NO_POLICY
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise LateError(f"cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise LateError(f"{path} is not valid YAML" + (f" (line {mark.line + 1})" if mark else "")) from None
    if isinstance(raw, dict) and set(raw) == {"late"}:
        raw = raw["late"]
    return from_mapping(raw, lessons, where=f"{Path(path).name}: ")


def from_json(data) -> LatePolicy:
    """The policy as ``grades.json`` stores it (``LatePolicy.as_json``)."""
    return from_mapping(data, None, where="grades.json late.") if data else NO_POLICY


def recorded(grades_dir: Path) -> tuple:
    """What the last grade run in ``grades_dir`` wrote to grades.json: (the policy,
    {(student, lesson): assessment dict of a late notebook}, {(student, lesson): submission time})."""
    import json

    try:
        data = json.loads((Path(grades_dir) / "grades.json").read_text())
        late = data.get("late") or {}
        policy = from_json(late.get("policy"))
        notebooks = {tuple(k.split("/", 1)): v for k, v in (late.get("notebooks") or {}).items() if "/" in k}
        times = {(r["student"], r["lesson"]): r.get("submitted_at") for r in data.get("results") or []
                 if isinstance(r, dict) and "student" in r and "lesson" in r}
        return policy, notebooks, times
    except (OSError, ValueError, AttributeError, TypeError, LateError):
        return NO_POLICY, {}, {}


def in_gradebook(policy: LatePolicy, gb, student: str, lesson: str, submitted_at) -> Optional[float]:
    """Put the policy into nbgrader's gradebook for one imported notebook: the lesson's due date,
    the student's extension, the submission time, and (where the policy takes points) the penalty
    on the notebook's current score. Returns that penalty (None: nbgrader's own plugin decides)."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(lesson, student)
        nb = gb.find_submission_notebook(lesson, lesson, student)
    except MissingEntry:
        return None
    if policy.due:                                   # our policy owns the due dates
        due = policy.due.get(lesson)
        sub.assignment.duedate = due
        mine = policy.due_for(student, lesson)
        sub.extension = (mine - due) if due is not None and mine != due else None
    if submitted_at:
        try:
            sub.timestamp = parse_time(submitted_at, f"{student} {lesson}'s submission time")
        except LateError:
            pass
    penalty = None
    if policy.active:
        penalty = policy.penalty(sub.total_seconds_late, float(nb.score or 0))
        nb.late_submission_penalty = penalty or None
    gb.db.commit()
    return penalty


def final_penalty(policy: LatePolicy, gb, student: str, lesson: str) -> float:
    """The late penalty of a notebook in nbgrader's gradebook, on its score now (hand grades
    included): the grade command's policy where it takes points, else nbgrader's own."""
    from nbgrader.api import MissingEntry

    try:
        sub = gb.find_submission(lesson, student)
        nb = gb.find_submission_notebook(lesson, lesson, student)
    except MissingEntry:
        return 0.0
    if policy.active:
        return policy.penalty(sub.total_seconds_late, float(nb.score or 0))
    return float(nb.late_submission_penalty or 0)
