"""Read a submitted notebook safely: no symbolic link anywhere below the submissions folder, no
FIFO, socket or device, nothing larger than the cap, and never a blocking open.

Student folders are student-controlled (an upload, an exchange folder, a git clone): a lesson
folder that is a link to another student's folder or to ``solutions/`` must not be graded as
the student's own work, and a FIFO named ``<lesson>.ipynb`` must not hang the run. So the path
is walked from the submissions folder one component at a time with ``openat(O_NOFOLLOW)``: a
link at any level is refused with a reason that names it, the file itself is opened with
``O_NONBLOCK`` and must be a regular file (``fstat``) before a byte is read.

The client reads each notebook twice: once to hash it (is it already graded?), once when it
is sent to a worker (``attach``); the result records the hash of the bytes actually graded.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Optional

from autograder.submission_file import MAX_NOTEBOOK_BYTES     # a submitted notebook larger than this is refused

KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
         stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder", stat.S_IFLNK: "a symbolic link"}


class Refused(Exception):
    """The path is not a notebook the grader will read; ``status`` and the message say why."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status


def _kind(mode: int) -> str:
    return KINDS.get(stat.S_IFMT(mode), "not a regular file")


def read_notebook(root: Path, path: Path, cap: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of ``path``, which must lie below ``root``; Refused(status, reason) otherwise.

    status: "missing" (nothing there), "refused" (a link or a special file on the way),
    "invalid_notebook" (over ``cap`` bytes).
    """
    root = Path(os.path.abspath(root))
    try:
        parts = Path(os.path.abspath(path)).relative_to(root).parts
    except ValueError:
        raise Refused("refused", f"{path} is outside the submissions folder") from None
    if not parts:
        raise Refused("refused", f"{path} is the submissions folder itself")
    shown = "/".join(parts)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        raise Refused("missing", f"cannot open the submissions folder: {err.strerror}") from None
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = "/".join(parts[: i + 1])
            try:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                raise Refused("missing", f"no notebook at {shown}") from None
            except OSError as err:
                raise Refused("missing", f"cannot read {where}: {err.strerror}") from None
            if stat.S_ISLNK(st.st_mode):
                what = "the notebook" if last else f"{where}/"
                raise Refused("refused", f"{what} is a symbolic link ({where}); links are not graded, "
                                         "submit the file itself")
            if not last and not stat.S_ISDIR(st.st_mode):
                raise Refused("missing", f"no notebook at {shown} ({where} is not a folder)")
            if last and not stat.S_ISREG(st.st_mode):
                raise Refused("refused", f"{shown} is {_kind(st.st_mode)}, not a notebook file")
            flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
            try:
                nfd = os.open(part, flags, dir_fd=fd)
            except OSError as err:
                if err.errno == errno.ELOOP:       # replaced by a link since the stat above
                    raise Refused("refused", f"{where} is a symbolic link; links are not graded") from None
                raise Refused("missing", f"cannot read {where}: {err.strerror}") from None
            os.close(fd)
            fd = nfd
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused("refused", f"{shown} is {_kind(st.st_mode)}, not a notebook file")
        if st.st_size > cap:
            raise Refused("invalid_notebook", f"{parts[-1]} is {st.st_size} bytes, over the {cap} byte limit "
                                              "for a notebook")
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            data = f.read(cap + 1)
        if len(data) > cap:
            raise Refused("invalid_notebook", f"{parts[-1]} is over the {cap} byte limit for a notebook")
        return data
    finally:
        if fd >= 0:
            os.close(fd)


def fingerprint(root: Path, path: Path) -> str:
    """sha256 of the notebook, or "missing" / "refused: ..." / "invalid_notebook: ..." (for the cache)."""
    try:
        return hashlib.sha256(read_notebook(root, path)).hexdigest()
    except Refused as why:
        return why.status if why.status == "missing" else f"{why.status}: {why}"


def attach(item: dict, root: Path) -> dict:
    """A copy of ``item`` that carries its notebook (``notebook``: bytes, or None with
    ``read_status`` and ``read_reason``) and the ``sha256`` of exactly those bytes."""
    out = dict(item)
    try:
        data: Optional[bytes] = read_notebook(root, Path(item["path"]))
        out.update(notebook=data, sha256=hashlib.sha256(data).hexdigest())
    except Refused as why:
        reason = (f"no notebook submitted (expected {item.get('display_path')})"
                  if why.status == "missing" and "no notebook at" in str(why) else str(why))
        out.update(notebook=None, read_status=why.status, read_reason=reason,
                   sha256=why.status if why.status == "missing" else f"{why.status}: {why}")
    return out

