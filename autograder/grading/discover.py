"""Find the submissions in a folder: one ``Submission`` per (student, lesson).

Three layouts are recognised (they may be mixed student by student in the first two):

* flat: ``<dir>/<student>/<lesson>.ipynb``;
* nbgrader's ``submitted/``: ``<dir>/<student>/<lesson>/<lesson>.ipynb`` (``<dir>`` may be the
  course folder that holds ``submitted/``); a ``timestamp.txt`` next to it is kept; a lesson
  folder holding one notebook of another name is used too (noted);
* an nbgrader exchange: ``<dir>/inbound/`` or ``<dir>`` itself holding
  ``<student>+<lesson>+<timestamp>[+<random>]/<lesson>.ipynb``; the latest per student and
  lesson is graded (what ``nbgrader collect`` would copy), except that a folder another Unix
  user made in a student's name is skipped, with a warning (``_claimed_by_another``).

Every student is graded on every lesson: the ``lessons`` asked for, or else every lesson
that some student submitted. A lesson a student did not submit is still an item, with the
path where it was expected, so that the report says "no notebook submitted".

Discovery only finds paths: it may follow links to look around, but nothing is read here.
Each notebook is read by ``submissions.read_notebook``, which refuses a symbolic link at any
level below the submissions folder (a student folder, a lesson folder, the notebook) and
anything that is not a regular file, with the reason in that student's report.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}$")
IGNORED = re.compile(r"^(\.|__|_)")          # .ipynb_checkpoints, __MACOSX, _private


class DiscoveryError(Exception):
    """The submissions folder cannot be read as any layout (a usage error)."""


@dataclass(frozen=True)
class Submission:
    student: str
    lesson: str
    path: Path                      # the notebook, or where it was expected
    layout: str                     # flat | submitted | exchange
    submitted_at: Optional[str] = None
    note: str = ""

    def display(self, root: Path) -> str:
        try:
            return str(self.path.relative_to(root))
        except ValueError:
            return str(self.path)


def _timestamp(folder: Path) -> Optional[str]:
    f = folder / "timestamp.txt"
    try:
        if f.is_file() and not f.is_symlink() and f.stat().st_size < 200:
            return f.read_text(errors="replace").strip() or None
    except OSError:
        pass
    return None


def _notebooks(folder: Path) -> List[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".ipynb" and not IGNORED.match(p.name))
    except OSError:
        return []


def discover(root: Path, lessons: Sequence[str], *, only: Optional[Sequence[str]] = None,
             exclude: Sequence[Path] = ()) -> Tuple[List[Submission], List[str]]:
    """(submissions sorted by student then course order, warnings).

    lessons: the gradable lesson ids, in course order; only: grade these lessons only
    (default: those some student submitted); exclude: folders to skip (the output folder).
    """
    root = Path(root)
    if not root.is_dir():
        raise DiscoveryError(f"{root} is not a folder")
    warnings: List[str] = []
    known = list(lessons)
    excluded = {p.resolve() for p in exclude if p.exists()}
    if (root / "submitted").is_dir():
        found, layout = _scan_students(root / "submitted", known, warnings, excluded), "submitted"
    elif (root / "inbound").is_dir():
        found, layout = _scan_exchange(root / "inbound", known, warnings), "exchange"
    elif any("+" in p.name for p in _dirs(root)) and all("+" in p.name for p in _dirs(root)):
        found, layout = _scan_exchange(root, known, warnings), "exchange"
    else:
        found, layout = _scan_students(root, known, warnings, excluded), None
    students = sorted({s for s, _ in found} | set(_students_without_work(root, layout, excluded, warnings)))
    if only:
        unknown = [lesson for lesson in only if lesson not in known]
        if unknown:
            raise DiscoveryError(f"unknown lesson {unknown[0]}: the lessons with a master notebook are "
                                 f"{', '.join(known) or 'none'}")
        wanted = [lesson for lesson in known if lesson in only]
    else:
        wanted = [lesson for lesson in known if any(lsn == lesson for _, lsn in found)]
    out: List[Submission] = []
    for student in students:
        for lesson in wanted:
            sub = found.get((student, lesson))
            if sub is None:
                base = root / "submitted" if layout == "submitted" else root
                expected = base / student / lesson / f"{lesson}.ipynb" if (layout == "submitted" or (
                    base / student / lesson).is_dir()) else base / student / f"{lesson}.ipynb"
                if layout == "exchange":
                    expected = root / f"{student}+{lesson}+*" / f"{lesson}.ipynb"
                sub = Submission(student, lesson, expected, layout or "flat")
            out.append(sub)
    return out, warnings


def _dirs(folder: Path) -> List[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not IGNORED.match(p.name))
    except OSError as err:
        raise DiscoveryError(f"cannot list {folder}: {err.strerror}") from None


def _students_without_work(root: Path, layout: Optional[str], excluded, warnings) -> List[str]:
    """Student folders that hold nothing gradable (still graded: every lesson missing)."""
    if layout == "exchange":
        return []
    base = root / "submitted" if layout == "submitted" else root
    return [p.name for p in _dirs(base) if STUDENT_ID.match(p.name) and p.resolve() not in excluded]


def _scan_students(base: Path, known: List[str], warnings: List[str], excluded) -> Dict[Tuple[str, str], Submission]:
    found: Dict[Tuple[str, str], Submission] = {}
    try:
        loose = sorted(p.name for p in base.iterdir() if p.is_file() and p.suffix == ".ipynb")
    except OSError as err:
        raise DiscoveryError(f"cannot list {base}: {err.strerror}") from None
    if loose:
        warnings.append(f"ignored {len(loose)} notebook(s) directly in {base} (expected <student>/<lesson>.ipynb): "
                        f"{', '.join(loose[:3])}")
    for sdir in _dirs(base):
        if sdir.resolve() in excluded:
            continue
        if sdir.is_symlink():
            continue     # still a student: reading refuses each of their notebooks, naming the link
        if not STUDENT_ID.match(sdir.name):
            warnings.append(f"skipped folder {sdir.name!r}: not a valid student id "
                            f"(letters, digits, _ . @ -; starting with a letter or digit)")
            continue
        student = sdir.name
        for lesson in known:
            nested, flat = sdir / lesson / f"{lesson}.ipynb", sdir / f"{lesson}.ipynb"
            if nested.exists() or nested.is_symlink():
                found[(student, lesson)] = Submission(student, lesson, nested, "submitted", _timestamp(sdir / lesson))
            elif flat.exists() or flat.is_symlink():
                found[(student, lesson)] = Submission(student, lesson, flat, "flat", _timestamp(sdir))
            elif (sdir / lesson).is_dir():
                others = _notebooks(sdir / lesson)
                if len(others) == 1:
                    found[(student, lesson)] = Submission(
                        student, lesson, others[0], "submitted", _timestamp(sdir / lesson),
                        note=f"graded {others[0].name} (the only notebook in {student}/{lesson}/)")
                elif others:
                    warnings.append(f"{student}/{lesson}/ holds {len(others)} notebooks but no {lesson}.ipynb: "
                                    f"none was graded")
        extra = [p.name for p in _notebooks(sdir) if p.stem not in known]
        if extra:
            warnings.append(f"{student}/: ignored {', '.join(extra[:3])} (not a lesson with a master notebook)")
    return found


def parse_utc(stamp: str):
    """An exchange folder's timestamp as naive UTC: nbgrader.utils.parse_utc's rule (tested against
    it), without importing nbgrader (4 s) for a grade command that never touches a gradebook."""
    import dateutil.parser
    import dateutil.tz

    parts = stamp.split(" ")
    if len(parts) == 3:
        tz = parts[2]
        try:
            tz = int(tz)
        except ValueError:
            tz = dateutil.tz.gettz(tz)
        when = dateutil.parser.parse(" ".join(parts[:2] + ["TZ"]), tzinfos={"TZ": tz})
    else:
        when = dateutil.parser.parse(stamp)
    return (when - when.utcoffset()).replace(tzinfo=None) if when.tzinfo is not None else when


def _claimed_by_another(folder: Path, student: str) -> Optional[str]:
    """The Unix user who made an exchange submission in another student's name, or None.

    On a hub each student is a Unix user and owns what they submit; ``nbgrader submit --student
    bob`` lets anyone name a folder ``bob+...`` (nbgrader's collect only warns). Checked where
    the student is a user of this machine; a folder owned by root (a restore) is trusted.
    """
    import pwd

    try:
        uid = pwd.getpwnam(student).pw_uid
        owner = folder.lstat().st_uid
    except (KeyError, OSError):
        return None
    if owner in (uid, 0):
        return None
    try:
        return pwd.getpwuid(owner).pw_name
    except KeyError:
        return f"uid {owner}"


def _scan_exchange(inbound: Path, known: List[str], warnings: List[str]) -> Dict[Tuple[str, str], Submission]:
    latest: Dict[Tuple[str, str], Tuple[object, Path, str]] = {}
    for d in _dirs(inbound):
        parts = d.name.split("+")
        if len(parts) not in (3, 4):
            warnings.append(f"skipped {d.name}: not <student>+<lesson>+<timestamp>[+<random>]")
            continue
        student, lesson, stamp = parts[0], parts[1], parts[2]
        if not STUDENT_ID.match(student):
            warnings.append(f"skipped {d.name}: {student!r} is not a valid student id")
            continue
        if lesson not in known:
            warnings.append(f"skipped {d.name}: {lesson} is not a lesson with a master notebook")
            continue
        try:
            when = parse_utc(stamp)
        except Exception:
            warnings.append(f"skipped {d.name}: cannot read the timestamp {stamp!r}")
            continue
        impostor = _claimed_by_another(d, student)
        if impostor:
            warnings.append(f"skipped {d.name}: it claims to be {student}'s but belongs to the Unix user {impostor} "
                            f"(nbgrader submit --student): not graded, {student}'s own latest submission is")
            continue
        key = (student, lesson)
        if key not in latest or when > latest[key][0]:
            latest[key] = (when, d, stamp)
    found = {}
    for (student, lesson), (_, d, stamp) in latest.items():
        nb = d / f"{lesson}.ipynb"
        note = ""
        if not nb.exists():
            others = _notebooks(d)
            if len(others) == 1:
                nb, note = others[0], f"graded {others[0].name} (the only notebook submitted)"
        found[(student, lesson)] = Submission(student, lesson, nb, "exchange", stamp, note)
    return found
