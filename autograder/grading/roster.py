"""The class roster: who the students are, for the gradebook and the exports.

``roster.csv`` has a header row and one row per student::

    id,first_name,last_name,email,lms_id
    alice,Alice,Liddell,alice@example.edu,4711

``id`` is the student id the submissions use (the folder name); the other columns may be empty.
``lms_id`` is the student's id in the learning management system (Canvas' user ID, Moodle's ID
number), which the exports need to match the students there.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

COLUMNS = ("id", "first_name", "last_name", "email", "lms_id")


class RosterError(ValueError):
    """The roster cannot be used: the message says what to fix, in one line."""


@dataclass(frozen=True)
class Person:
    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_id: str = ""

    @property
    def sortable_name(self) -> str:
        """"Last, First" (as Canvas shows students), or the id where no name is known."""
        return ", ".join(p for p in (self.last_name, self.first_name) if p) or self.id


def read_roster(path: Path) -> Dict[str, Person]:
    """student id -> Person, in the file's order; RosterError if the file cannot be used."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")          # a spreadsheet's BOM is fine
    except OSError as err:
        raise RosterError(f"cannot read the roster {path}: {err.strerror or err}") from None
    rows = list(csv.DictReader(text.splitlines()))
    header = [h.strip() for h in (csv.reader(text.splitlines()[:1]).__next__() if text.strip() else [])]
    if "id" not in header:
        raise RosterError(f"{path}: the first row must name the columns, among them id "
                          f"({', '.join(COLUMNS)}); found {', '.join(header) or 'nothing'}")
    people: Dict[str, Person] = {}
    for line, row in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        sid = row.get("id", "")
        if not sid:
            raise RosterError(f"{path}, line {line}: no id")
        if sid in people:
            raise RosterError(f"{path}, line {line}: the id {sid!r} is there twice")
        people[sid] = Person(sid, *(row.get(c, "") for c in COLUMNS[1:]))
    return people
