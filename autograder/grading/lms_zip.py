"""Grade an LMS's submissions download as it is: a Canvas "Download Submissions" zip or a Moodle
"Download all submissions" zip, unpacked into the flat layout ``<student>/<lesson>.ipynb``.

Canvas names each file ``<name>[_LATE]_<user id>_<submission id>_<uploaded name>``, where
``<name>`` is the student's sortable name run together in lower case (``liddellalice``) and a
file uploaded again under the same name gets ``-1``, ``-2`` before its extension
(``01_data-1.ipynb``). Moodle names each file ``<Full Name>_<participant id>_assignsubmission_file_<uploaded name>``,
or, with "Download submissions in folders", puts it in a folder ``<Full Name>_<participant id>_assignsubmission_file/``.

Who is who: with a roster (``roster.csv``), a Canvas file is the student whose ``lms_id`` is its
user id; a Moodle file the student whose ``lms_id`` is its participant id, else whose full name
("First Last") it carries. Without one, the student id is the name in the file (``liddellalice``,
``alice-liddell``). Which lesson: the uploaded name's lesson id (``01_data.ipynb``,
``01_data-2.ipynb``), else the one lesson asked for with ``--lesson`` (an assignment's zip holds
one lesson, whatever the students called their file). Where a student has several notebooks for
a lesson, the latest is graded (Canvas: the highest submission id, then the highest ``-N``).
Every file that is not graded gets one line saying why (matches no one, not a notebook, ...).

Unpacking never follows the zip's paths: each member is read and written under a name built
here, at most ``MAX_NOTEBOOK_BYTES`` read of each.
"""
from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Sequence, Tuple

from autograder.submission_file import MAX_NOTEBOOK_BYTES

from .discover import STUDENT_ID

CANVAS = re.compile(r"^(?P<name>[^_/]+?)(?P<late>_LATE)?_(?P<user>\d+)_(?P<sub>\d+)_(?P<file>.+)$")
MOODLE = re.compile(r"^(?P<name>[^/]+?)_(?P<user>\d+)_assignsubmission_file(?:_/|/|_)(?P<file>[^/]+)$")
AGAIN = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)$")        # Canvas' "-1" on a file uploaded again


class IntakeError(ValueError):
    """The zip cannot be read as an LMS download (one line: what to do)."""


@dataclass(frozen=True)
class Entry:
    member: str             # the name in the zip
    student: str
    lesson: str
    order: Tuple[int, int]  # later submissions sort higher
    late: bool = False


def kind(path: Path) -> Optional[str]:
    """"canvas", "moodle" or None: which LMS's download the zip at ``path`` looks like."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/") and not _ignored(n)]
    except (OSError, zipfile.BadZipFile):
        return None
    if names and all(MOODLE.match(n) for n in names):
        return "moodle"
    if names and all(CANVAS.match(n) for n in names):
        return "canvas"
    return None


def _ignored(name: str) -> bool:
    return name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith(".")


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def _lesson_of(filename: str, lessons: Sequence[str], only: Sequence[str]) -> Tuple[Optional[str], int]:
    """(lesson, resubmission number) for an uploaded file name; lesson None where unknown."""
    stem = PurePosixPath(filename).stem
    again = 0
    match = AGAIN.match(stem)
    if stem not in lessons and match and match.group("stem") in lessons:
        stem, again = match.group("stem"), int(match.group("n"))
    if stem in lessons:
        return stem, again
    return (only[0] if len(only) == 1 else None), again


def read(path: Path, lessons: Sequence[str], *, only: Sequence[str] = (), roster=None) -> Tuple[List[Entry], List[str], str]:
    """(the entries to grade, one line per file not graded, the LMS) of the zip at ``path``.

    lessons: the gradable lesson ids; only: the --lesson ids asked for; roster: student id ->
    roster.Person (or None).
    """
    lms = kind(path)
    if lms is None:
        raise IntakeError(f"{path} is not a Canvas or Moodle submissions download (Canvas: <name>_<user id>_"
                          f"<submission id>_<file>; Moodle: <Full Name>_<id>_assignsubmission_file_<file>)")
    by_lms = {p.lms_id: sid for sid, p in (roster or {}).items() if p.lms_id}
    by_name = {}
    for sid, p in (roster or {}).items():
        by_name.setdefault(_slug(f"{p.first_name} {p.last_name}"), []).append(sid)
    entries: Dict[Tuple[str, str], Entry] = {}
    lines: List[str] = []
    with zipfile.ZipFile(path) as z:
        for member in z.namelist():
            if member.endswith("/") or _ignored(member):
                continue
            m = (MOODLE if lms == "moodle" else CANVAS).match(member)
            uploaded = m.group("file")
            if not uploaded.endswith(".ipynb"):
                lines.append(f"{member}: not graded (not a notebook)")
                continue
            lesson, again = _lesson_of(uploaded, lessons, only)
            if lesson is None:
                lines.append(f"{member}: not graded ({uploaded} names no lesson: pass --lesson ID for this assignment)")
                continue
            if only and lesson not in only:
                continue
            student, why = _who(lms, m, roster, by_lms, by_name)
            if student is None:
                lines.append(f"{member}: not graded ({why})")
                continue
            order = (int(m.group("sub")) if lms == "canvas" else 0, again)
            entry = Entry(member, student, lesson, order, late=bool(lms == "canvas" and m.group("late")))
            key = (student, lesson)
            if key in entries:
                older, entry = sorted([entries[key], entry], key=lambda e: e.order)
                lines.append(f"{older.member}: not graded ({student} has a later {lesson}: {entry.member})")
            entries[key] = entry
    return sorted(entries.values(), key=lambda e: (e.student, e.lesson)), lines, lms


def _who(lms: str, m, roster, by_lms, by_name) -> Tuple[Optional[str], str]:
    """(student id or None, why not) for one file name's match."""
    user, name = m.group("user"), m.group("name")
    if roster is None:
        sid = name.lower() if lms == "canvas" else _slug(name)
        return (sid, "") if STUDENT_ID.match(sid) else (None, f"{name!r} cannot be a student id")
    if user in by_lms:
        return by_lms[user], ""
    if lms == "moodle":
        same = by_name.get(_slug(name), [])
        if len(same) == 1:
            return same[0], ""
        if len(same) > 1:
            return None, f"{len(same)} students in the roster are called {name}: put their Moodle participant ids in lms_id"
        return None, f"matches no one in the roster: no lms_id {user} and no student called {name}"
    return None, f"matches no one in the roster: no lms_id {user} (Canvas user id of {name})"


def unpack(path: Path, dest: Path, lessons: Sequence[str], *, only: Sequence[str] = (), roster=None) -> List[str]:
    """Write the zip's gradable notebooks to ``dest/<student>/<lesson>.ipynb`` (``dest`` emptied
    first) and return one line per file not graded, then one saying what was unpacked."""
    import shutil

    entries, lines, lms = read(path, lessons, only=only, roster=roster)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with zipfile.ZipFile(path) as z:
        for e in entries:
            with z.open(e.member) as f:
                data = f.read(MAX_NOTEBOOK_BYTES + 1)     # over the cap: the grader refuses it by size
            (dest / e.student).mkdir(exist_ok=True)
            (dest / e.student / f"{e.lesson}.ipynb").write_bytes(data)
    late = sum(e.late for e in entries)
    lines.append(f"{path.name}: {len(entries)} notebook(s) of {len({e.student for e in entries})} student(s) from a "
                 f"{lms.capitalize()} download, unpacked into {dest}" + (f" ({late} marked LATE by Canvas)" if late else ""))
    return lines
