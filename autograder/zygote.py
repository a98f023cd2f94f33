"""A warm interpreter that forks each notebook's driver into that notebook's own, fresh sandbox.

Starting Python, importing torch, numpy, matplotlib, IPython and ipykernel, and starting a
kernel cost 3 to 4 s per notebook, more than most lessons' own cells. The zygote pays them
once per grading worker: it imports ``autograder._driver_kernel.WARM`` and then only forks.

Per notebook (``Zygote.spawn``), with a fresh bwrap sandbox already made by the runner (the
"holder", whose namespaces are the notebook's sandbox):

    zygote (host, warm; never runs student code, holds nothing of any student)
      └─ helper (host pid namespace; trusted, tiny): reads the notebook's spawn file, joins the
         │        holder's user/ipc/uts/net/pid/cgroup/mount namespaces and its root (setns,
         │        chroot), then forks:
         └─ driver (inside the sandbox's pid namespace): drops to the sandbox uid with no
                    capabilities and no_new_privs, sets the rlimits, the environment, the cwd,
                    and runs ``_driver.main``; its kernels are forks of itself (warm as well).

Each student's code therefore starts from the zygote's state, which no student's code ever
touched, in its own sandbox (own mounts, /tmp, /dev/shm, home, network, IPC, pid namespace,
uid). When the runner kills the holder, the sandbox's pid namespace goes and every process
in it with it. The zygote dies with its parent (``PR_SET_PDEATHSIG``) or when its socket
closes. Where namespaces cannot be joined (a setuid bwrap on a host without unprivileged user
namespaces), ``spawn`` raises ``CannotJoin`` and the runner starts the driver cold instead.

Protocol on a Unix socket: the zygote sends ``{"ready": ..., "pid": ...}`` once warm; then
per request ``{"target": holder pid or null, "spawn_file": host path}`` with two file
descriptors attached (the notify pipe, and the pipe the driver's stdout and stderr go to), it
forks the helper and answers ``{"pid": helper}``.
The helper writes one JSON line to the notify pipe when the driver has ended:
``{"status": exit status}`` or ``{"error": why, "join": true if setns failed}``.

This module is the host's side (``Zygote``, ``shared``); the process itself, its helper and the
driver child are ``autograder/zygote_process.py``.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


__all__ = ["Zygote", "Spawned", "CannotJoin", "ZygoteError", "shared", "zygote_env"]

READY_SECONDS = 180.0             # importing torch on a very busy machine
# The zygote's program: the grader's course folder first on sys.path (``python -I`` ignores the
# current folder and PYTHONPATH, and a venv's editable install may point at another checkout).
BOOT = "import sys; sys.path.insert(0, sys.argv.pop(1)); from autograder.zygote_process import main; main()"
NAMESPACES = ("ipc", "uts", "net", "pid", "cgroup", "mnt")
NS_GET_USERNS = 0xB701            # ioctl: the user namespace that owns a namespace
CAPABILITY_VERSION_3 = 0x20080522


class ZygoteError(RuntimeError):
    """The zygote could not be started or stopped answering."""


class CannotJoin(RuntimeError):
    """This host cannot put a forked process into a bwrap sandbox (use a cold start)."""


def zygote_env(threads: int = 1, mpl_backend: str = "module://matplotlib_inline.backend_inline") -> dict:
    """The environment the zygote imports under: what import-time settings must match in the
    kernels (thread counts, matplotlib's backend). Each driver replaces it with its own."""
    n = str(int(threads))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "MPLBACKEND": mpl_backend,
           "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
           "NUMEXPR_NUM_THREADS": n, "VECLIB_MAXIMUM_THREADS": n, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    for keep in ("HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        if keep in os.environ:   # matplotlib's font cache, built once per host user
            env[keep] = os.environ[keep]
    return env


@dataclass
class Spawned:
    """A driver forked into a sandbox: wait for it with ``wait``."""

    helper_pid: int
    notify: int                  # read end of the notify pipe

    def wait(self, timeout: float) -> Optional[dict]:
        """The helper's final message ({"status": ...} or {"error": ...}), or None on timeout.
        A helper that died without a word gives {"error": "the spawn helper died"}."""
        ready, _, _ = select.select([self.notify], [], [], max(0.0, timeout))
        if not ready:
            return None
        data = b""
        while True:
            try:
                chunk = os.read(self.notify, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        self.close()
        try:
            return json.loads(data.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": "the spawn helper died"}

    def close(self) -> None:
        if self.notify >= 0:
            os.close(self.notify)
            self.notify = -1


class Zygote:
    """Host side: start the warm process, ask it for drivers. Thread-safe; one per process is enough."""

    def __init__(self, *, threads: int = 1, mpl_backend: str = "module://matplotlib_inline.backend_inline",
                 course: Optional[Path] = None):
        from .sandbox import course_root

        self.threads, self.mpl_backend = threads, mpl_backend
        self.course = str(course or course_root() or "/nonexistent")   # the sandbox mounts this one
        self.joinable: Optional[bool] = None       # learnt from the first spawn into a sandbox
        self.failed: Optional[str] = None          # why it must not be used (a course mismatch)
        self._lock = threading.Lock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.started = time.monotonic()
        self.errors = tempfile.TemporaryFile()      # a file, not a pipe: nothing it says can block it
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", BOOT, self.course, str(theirs.fileno()), str(os.getpid())],
            env=zygote_env(threads, mpl_backend), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.errors, pass_fds=(theirs.fileno(),), start_new_session=True, cwd="/")
        theirs.close()
        self.sock = ours
        self._ready: Optional[dict] = None
        self.ready_seconds: Optional[float] = None

    # ------------------------------------------------------------------ life cycle
    def wait_ready(self, timeout: float = READY_SECONDS) -> dict:
        """Block until the zygote has imported everything; its {"ready": {...}, "pid": ...}.
        ZygoteError when it did not start, or imported the course from another folder than
        the one the sandbox mounts (then it is stopped, and says so at every later call)."""
        with self._lock:
            if self.failed:
                raise ZygoteError(self.failed)
            if self._ready is None:
                self.sock.settimeout(timeout)
                try:
                    line = self._readline()
                except (OSError, socket.timeout) as err:
                    raise ZygoteError(f"the grading zygote did not start: {err}; {self._stderr()}") from None
                if not line:
                    raise ZygoteError(f"the grading zygote exited while starting: {self._stderr()}")
                ready = json.loads(line)
                if ready.get("course") != self.course:
                    self.failed = (f"the grading zygote imported the course from {ready.get('course')}, "
                                   f"but the sandbox mounts {self.course}: their checks would differ")
                    self.proc.kill()
                    raise ZygoteError(self.failed)
                self._ready = ready
                self.ready_seconds = round(time.monotonic() - self.started, 3)
        return self._ready

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.errors.close()

    def _stderr(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.errors.seek(0)
            text = self.errors.read()[-4000:].decode(errors="replace").strip()
        except (OSError, ValueError):
            text = ""
        return text.splitlines()[-1][:300] if text else f"exit status {self.proc.poll()}"

    def _readline(self) -> bytes:
        data = b""
        while not data.endswith(b"\n"):
            chunk = self.sock.recv(4096)
            if not chunk:
                return data
            data += chunk
        return data

    # ------------------------------------------------------------------ spawning
    def spawn(self, spawn_file: Path, target: Optional[int], log_fd: int) -> Spawned:
        """Fork a driver that reads ``spawn_file`` (see ``write_spawn_file``) into the sandbox
        whose holder process is ``target`` (None: no sandbox, the unisolated fallback); its
        stdout and stderr go to ``log_fd``."""
        if target is not None and self.joinable is False:
            raise CannotJoin("this host cannot join a bwrap sandbox from outside")
        self.wait_ready()
        r, w = os.pipe()
        try:
            with self._lock:
                request = json.dumps({"target": target, "spawn_file": str(spawn_file)}).encode() + b"\n"
                try:
                    socket.send_fds(self.sock, [request], [w, log_fd])
                    self.sock.settimeout(60)
                    answer = json.loads(self._readline() or b"{}")
                except (OSError, ValueError) as err:
                    raise ZygoteError(f"the grading zygote stopped answering: {err}") from None
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        if "pid" not in answer:
            os.close(r)
            raise ZygoteError(f"the grading zygote could not fork: {answer.get('error', 'no answer')}")
        os.set_blocking(r, False)
        return Spawned(int(answer["pid"]), r)


def write_spawn_file(path: Path, *, uid: Optional[int], rlimits, env: dict, cwd: str, argv: list) -> Path:
    """What the helper and the driver need to know about one notebook (host-only, mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"uid": uid, "rlimits": rlimits, "env": env, "cwd": cwd, "argv": argv}, f)
    return path


# ------------------------------------------------------------------------------------------
# One zygote per process, started on first use
# ------------------------------------------------------------------------------------------
_shared: dict = {}
_shared_lock = threading.Lock()


def shared(threads: int = 1, mpl_backend: str = "module://matplotlib_inline.backend_inline") -> Zygote:
    """This process's zygote for these import-time settings (started now if need be)."""
    key = (int(threads), mpl_backend)
    with _shared_lock:
        z = _shared.get(key)
        if z is None or (not z.alive() and not z.failed):
            if z is not None:
                z.close()
            z = _shared[key] = Zygote(threads=threads, mpl_backend=mpl_backend)
        return z


@atexit.register
def _close_shared() -> None:
    for z in list(_shared.values()):
        z.close()
    _shared.clear()
