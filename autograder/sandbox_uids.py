"""The unprivileged uids sandboxed runs drop to on a root host: one per run (``allocate_uid``),
their stray processes killed afterwards (``kill_uid``), and what decides whether a uid drop is
possible at all (``readable_by_others``) and what it costs (``tasks_of_uid``)."""
from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path


def privileged() -> bool:
    """Whether this process is root (bwrap without a user namespace; a uid drop per run)."""
    return os.geteuid() == 0


_UID_BASE, _UID_SPAN = 20_000, 40_000
_uid_lock = threading.Lock()
_uid_counter = 0


def allocate_uid() -> int:
    """An unprivileged uid for one run, distinct between concurrent runs of this host.

    RLIMIT_NPROC counts every task of a uid system-wide, so two students graded at once must
    not share a uid (one's fork storm would starve the other). Derived from the pid (unique
    among live processes) and a per-process counter (unique among up to 16 concurrent runs per
    process); stays within 20000..59999, inside any container's default uid map.
    """
    global _uid_counter
    with _uid_lock:
        _uid_counter += 1
        slot = _uid_counter % 16
    return _UID_BASE + ((os.getpid() % (_UID_SPAN // 16)) * 16 + slot)


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` (root only; a no-op for uid 0 or the caller's own uid).

    Used after a run without a pid namespace: stray processes the student left behind
    (double forks, daemons) die with the rest. Runs ``kill(-1, SIGKILL)`` as that uid, twice.
    """
    if uid == 0 or not privileged() or uid == os.getuid():
        return
    # /bin/sh, not Python: the interpreter may not be readable by that uid. kill(-1) spares
    # the caller itself.
    try:
        subprocess.run(["/bin/sh", "-c", "kill -KILL -1; kill -KILL -1; kill -KILL -1; true"],
                       user=uid, group=uid, extra_groups=[],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30, cwd="/")
    except (OSError, subprocess.SubprocessError):
        pass


def tasks_of_uid(uid: int) -> int:
    """How many tasks (threads) the uid runs now: the base for RLIMIT_NPROC when it is shared."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields.get("Threads", "1").strip())
        except (OSError, KeyError, ValueError):
            continue
    return total


def readable_by_others(path: Path) -> bool:
    """Whether an unprivileged uid can reach and read ``path`` (every parent o+x, itself o+r)."""
    p = Path(os.path.abspath(path))
    try:
        for parent in reversed(p.parents):
            if not os.stat(parent).st_mode & 0o001:
                return False
        st = os.stat(p)
    except OSError:
        return False
    return bool(st.st_mode & 0o004) and (not os.path.isdir(p) or bool(st.st_mode & 0o001))


