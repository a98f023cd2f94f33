"""The hub's Unix users and who may read what.

- ``ensure_user(name, password)``: a system user with a home of mode 0700 (no other user reads it:
  not the fetched lessons, not the nbgrader cache that holds each submission's secret);
- ``ensure_group`` / ``add_to_group``: the course's staff group (the instructor);
- ``lock_course(repo, group)``: the course repository (solutions, hidden judges, the grader)
  readable by root and that group only;
- ``remove_user``: what tests call to clean up.

Every function runs a real command (``useradd``, ``chpasswd``, ``groupadd``, ``usermod``,
``userdel``) as root and raises ``HubError`` with one line naming it where it fails.
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import subprocess
from pathlib import Path
from typing import Sequence

NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")      # what useradd accepts by default (and a hub name)


class HubError(Exception):
    """The hub cannot be set up or started; the message says what to do (one line)."""


def _run(args: Sequence[str], stdin: str | None = None) -> None:
    done = subprocess.run(list(args), input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise HubError(f"{' '.join(args[:2])} failed: {why[-1] if why else f'exit {done.returncode}'}")


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise HubError(f"{name!r} is not a valid user name (lower-case letters, digits, _ and -, "
                       "starting with a letter; at most 31 characters)")
    return name


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ensure_user(name: str, password: str | None = None) -> pwd.struct_passwd:
    """The user ``name`` (created with a home and bash where missing), its home made 0700, its
    password set where one is given. Returns its passwd entry."""
    check_name(name)
    if not exists(name):
        _run(["useradd", "--create-home", "--shell", "/bin/bash", name])
    entry = pwd.getpwnam(name)
    os.chmod(entry.pw_dir, 0o700)
    if password is not None:
        _run(["chpasswd"], stdin=f"{name}:{password}\n")
    return entry


def ensure_group(name: str) -> int:
    """The gid of group ``name``, created where missing."""
    check_name(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        _run(["groupadd", name])
        return grp.getgrnam(name).gr_gid


def add_to_group(user: str, group: str) -> None:
    if user not in grp.getgrnam(group).gr_mem:
        _run(["usermod", "--append", "--groups", group, user])


def remove_user(name: str) -> None:
    """Delete the user and its home (tests clean up with this); nothing where it does not exist."""
    if exists(name):
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        home_left = Path(pwd.getpwnam(name).pw_dir).exists()
        _run(["userdel", "--remove", name] if home_left else ["userdel", name])


def remove_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        return
    _run(["groupdel", name])


def reachable(path: Path) -> list[Path]:
    """The folders on the way to ``path`` that another user cannot pass (no o+x); empty: all pass."""
    return [p for p in reversed(Path(os.path.abspath(path)).parents) if not os.stat(p).st_mode & stat.S_IXOTH]


def lock_course(repo: Path, group: str) -> bool:
    """Make the course repository readable by root and ``group`` only (mode 0750, that group).

    Only the top folder changes: whatever lies inside is then out of other users' reach. Its
    parents must let the group pass (o+x); ``HubError`` names the first that does not.
    Returns True where something changed.
    """
    blocked = reachable(repo)
    if blocked:
        raise HubError(f"the instructor cannot reach the course at {repo}: {blocked[0]} is closed to other "
                       f"users (chmod o+x {blocked[0]}, or clone the course under /srv or /opt)")
    gid = grp.getgrnam(group).gr_gid
    st = os.stat(repo)
    if st.st_gid == gid and stat.S_IMODE(st.st_mode) == 0o750:
        return False
    os.chown(repo, -1, gid)
    os.chmod(repo, 0o750)
    return True
