"""Files written by root in someone else's folder go to that folder's owner.

On a JupyterHub the grade command runs as root (its sandbox drops each notebook to a uid of
its own) and writes into the instructor's course folder; ``gradebook`` and ``feedback`` may be
run the same way (``sudo``). Left root's, ``gradebook.db`` could not take the instructor's hand
grades in formgrader. ``give_to_owner(folder)`` hands everything root owns below ``folder`` to
the folder's owner; nothing happens where this process is not root or the folder is root's.
"""
from __future__ import annotations

import os
from pathlib import Path


def give_to_owner(folder: Path, owner_of: Path | None = None) -> int:
    """chown root's files and folders below (and including) ``folder`` to the owner of
    ``owner_of`` (default: ``folder`` itself); returns how many changed."""
    if os.geteuid() != 0 or not Path(folder).is_dir():
        return 0
    st = os.stat(owner_of if owner_of is not None else folder)
    if st.st_uid == 0:
        return 0
    changed = 0
    for here, dirs, files in os.walk(folder):
        for path in [here] + [os.path.join(here, n) for n in dirs + files]:
            if os.lstat(path).st_uid == 0:
                os.lchown(path, st.st_uid, st.st_gid)
                changed += 1
    return changed
