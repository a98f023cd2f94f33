"""Reading what the sandbox left in the scratch directory: all of it was writable by student code.

Files are opened through ``open_inside`` (no symlink followed, regular files only, size-capped);
``.npz`` files are loaded only with ``np.load(allow_pickle=False)`` after their uncompressed size
is checked; the driver's JSON report is information for humans, never a grade.
"""
from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import Sequence

from .run_report import CELL_STATUSES, CellResult
from .sandbox import Limits

REPORT_BYTES = 8 << 20               # the driver's report, read at most this much
MAX_COLLECTED_FILES = 500
GRADE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def open_inside(base: Path, parts: Sequence[str]) -> int:
    """Open base/parts... read-only without following any symlink; a regular file, or OSError."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts[:-1]:
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
        ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(ffd).st_mode):
        os.close(ffd)
        raise OSError("not a regular file")
    return ffd


def read_capped(base: Path, parts: Sequence[str], cap: int) -> bytes:
    fd = open_inside(base, parts)
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_size > cap:
            raise OSError(f"larger than {cap} bytes")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise OSError(f"larger than {cap} bytes")
    return data


def read_report(home: Path, cap: int, attempt: int) -> tuple[dict | None, str]:
    try:
        data = json.loads(read_capped(home, [".grader", "report.json"], cap))
    except FileNotFoundError:
        return None, "no report"
    except (OSError, ValueError, RecursionError) as err:
        return None, f"unreadable report: {err}"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, "malformed report"
    if data.get("attempt") != attempt:  # a previous launch's report: this one never wrote its own
        return None, "no report from this launch"
    cells = []
    for c in data["cells"]:
        if not (isinstance(c, dict) and isinstance(c.get("index"), int) and c.get("status") in CELL_STATUSES):
            return None, "malformed report"
        cells.append(c)
    cur = data.get("current")
    return {"cells": cells, "finished": data.get("finished") is True,
            "deadline_hit": data.get("deadline_hit") is True, "cpu_exhausted": data.get("cpu_exhausted") is True,
            "timings": data.get("timings") if isinstance(data.get("timings"), dict) else {},
            "current": cur if isinstance(cur, int) else None,
            "kernel_log": data.get("kernel_log") if isinstance(data.get("kernel_log"), str) else "",
            "events": [e[:300] for e in data.get("events", []) if isinstance(e, str)][-20:]
            if isinstance(data.get("events"), list) else []}, ""


def cell_result(c: dict, code_cells: dict[int, str | None]) -> CellResult:
    def text(v, n=500):
        return v[:n] if isinstance(v, str) else None

    def number(v):
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else 0

    return CellResult(index=c["index"], grade_id=code_cells.get(c["index"]), status=c["status"],
                      reason=text(c.get("reason")) or "", ename=text(c.get("ename"), 100),
                      evalue=text(c.get("evalue")), seconds=float(number(c.get("seconds"))),
                      cpu_seconds=float(number(c.get("cpu_seconds"))),
                      output_bytes=int(number(c.get("output_bytes"))),
                      dropped_bytes=int(number(c.get("dropped_bytes"))))


def collect(home: Path, dest: Path, limits: Limits) -> tuple[dict[str, Path], dict[str, str]]:
    collected: dict[str, Path] = {}
    rejected: dict[str, str] = {}
    try:
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            cfd = os.open("collect", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        finally:
            os.close(fd)
    except OSError:
        return collected, rejected
    try:
        names = sorted(os.listdir(cfd))
    finally:
        os.close(cfd)
    for fname in names:
        if len(collected) + len(rejected) >= MAX_COLLECTED_FILES:
            rejected["..."] = f"more than {MAX_COLLECTED_FILES} files; the rest were ignored"
            break
        shown = fname[:140]
        if not fname.endswith(".npz") or not GRADE_ID.match(fname[:-4]):
            if not fname.endswith(".tmp"):
                rejected[shown] = "not named <grade_id>.npz"
            continue
        gid = fname[:-4]
        try:
            data = read_capped(home, ["collect", fname], limits.collect_bytes)
        except OSError as err:
            rejected[shown] = f"refused: {err.strerror or err}"
            continue
        target = dest / fname
        target.write_bytes(data)
        problem = check_npz(target, limits.collect_bytes)
        if problem:
            target.unlink()
            rejected[shown] = problem
        else:
            collected[gid] = target
    return collected, rejected


def check_npz(path: Path, cap: int) -> str:
    """'' when ``path`` is an .npz of plain arrays, uncompressed size within ``cap``."""
    import numpy as np

    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > 1000:
                return "too many arrays"
            if sum(i.file_size for i in infos) > cap:
                return f"over {cap} bytes uncompressed"
            if not all(i.filename.endswith(".npy") for i in infos):
                return "not an .npz of arrays"
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                npz[key]
    except Exception as err:  # zipfile.BadZipFile, ValueError (object arrays), ...
        return f"not a loadable .npz without pickles: {type(err).__name__}: {str(err)[:150]}"
    return ""


def copy_executed(home: Path, dest: Path, submitted_bytes: int, limits: Limits) -> Path | None:
    cap = 2 * submitted_bytes + 4 * int(limits.output_bytes) + (16 << 20)
    try:
        data = read_capped(home, [".grader", "executed.ipynb"], cap)
        json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    dest.write_bytes(data)
    return dest
