"""One launch of a notebook's sandbox, supervised from the host until its driver exits, the
wall-clock backstop runs out, or it writes too much (``Launch.cold`` / ``Launch.warm``)."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import sandbox
from . import zygote as zygote_mod
from .sandbox import Limits

if TYPE_CHECKING:
    from .zygote import Zygote


# The program of a warm run's holder sandbox: it only keeps the namespaces alive (the driver is
# forked into them by the zygote) until the host kills the sandbox. It is the namespace's pid 1
# (bwrap --as-pid-1): nothing inside can signal it (not even the driver's kill(-1) of strays),
# and it reaps the orphans that student code leaves behind.
HOLDER = "import os, signal\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)\nos.write(1, b'R')\nos.read(0, 1)\n"


class Tail:
    """Drain a pipe in a thread, keeping its last ``limit`` bytes (a flood costs CPU, not RAM)
    and its first ``HEAD`` bytes (``head``: what the driver says before any student code runs)."""

    HEAD = 16384

    def __init__(self, stream, limit: int = 8192):
        self.limit, self.data, self.first = limit, b"", b""
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        try:
            while chunk := stream.read1(1 << 16):
                if len(self.first) < self.HEAD:
                    self.first += chunk[: self.HEAD - len(self.first)]
                self.data = (self.data + chunk)[-self.limit:]
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        self.thread.join(timeout=2)
        return self.data.decode("utf-8", errors="replace")

    def head(self) -> str:
        self.thread.join(timeout=2)
        return self.first.decode("utf-8", errors="replace")


class Launch:
    """One launch of the sandbox, supervised until its driver exits, the wall-clock backstop
    runs out, or it writes too much. ``cold()`` / ``warm()`` return (outcome, detail, output
    tail): outcome "exited" (detail: the driver's exit status), "timeout", "disk_limit"
    (detail: why), "cancelled" (``cancel`` was set)."""

    def __init__(self, plan: sandbox.SandboxPlan, home: Path, limits: Limits, deadline: float, timings: dict,
                 cancel: threading.Event | None = None):
        self.plan, self.home, self.limits, self.deadline, self.timings = plan, home, limits, deadline, timings
        self.cancel = cancel     # set from another thread: the sandbox is killed ("cancelled")
        self.head = ""           # the first bytes of the output: the driver's own, before student code

    def cold(self) -> tuple[str, str, str]:
        """bwrap runs the launcher, which execs ``python -I _driver.py CONFIG``."""
        t = time.monotonic()
        proc = subprocess.Popen(self.plan.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        self.timings["sandbox_start"] = self.timings.get("sandbox_start", 0.0) + round(time.monotonic() - t, 3)
        tail = Tail(proc.stdout)
        try:
            outcome, detail = self._watch(lambda timeout: wait_proc(proc, timeout))
        finally:
            kill_session(proc)
        self.head = tail.head()
        return outcome, detail, tail.text()

    def warm(self, zygote: "Zygote", spawn_file: Path) -> tuple[str, str, str]:
        """bwrap runs a holder (the sandbox's namespaces, nothing else); the zygote forks the
        driver into it. Raises zygote.CannotJoin when this host cannot do that."""
        t = time.monotonic()
        info_r, info_w = os.pipe()
        cmd = self.plan.command[:1] + ["--info-fd", str(info_w), "--as-pid-1"] + self.plan.command[1:]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(info_w,), start_new_session=True)
        os.close(info_w)
        log_r, log_w = os.pipe()
        tail = Tail(os.fdopen(log_r, "rb"))
        spawned = None
        try:
            target = holder_ready(proc, info_r, min(60.0, max(5.0, self.deadline - time.monotonic())))
            self.timings["sandbox_start"] = self.timings.get("sandbox_start", 0.0) + round(time.monotonic() - t, 3)
            t = time.monotonic()
            zygote.wait_ready()
            if time.monotonic() - t > 0.01:
                self.timings["zygote_wait"] = self.timings.get("zygote_wait", 0.0) + round(time.monotonic() - t, 3)
            t = time.monotonic()
            spawned = zygote.spawn(spawn_file, target, log_w)
            os.close(log_w)
            log_w = -1
            self.timings["spawn"] = self.timings.get("spawn", 0.0) + round(time.monotonic() - t, 3)
            box: dict = {}

            def wait(timeout):
                if "end" not in box:
                    message = spawned.wait(timeout)
                    if message is None:
                        return None
                    box["end"] = message
                if box["end"].get("join"):
                    zygote.joinable = False
                    raise zygote_mod.CannotJoin(box["end"]["error"])
                if "error" in box["end"]:
                    return box["end"]["error"]
                if zygote.joinable is None:
                    zygote.joinable = True
                return box["end"]["status"]

            outcome, detail = self._watch(wait)
        finally:
            if log_w >= 0:
                os.close(log_w)
            os.close(info_r)
            kill_session(proc)
            if spawned is not None:
                spawned.close()
        self.head = tail.head()
        return outcome, detail, tail.text()

    def _watch(self, wait) -> tuple[str, str]:
        """Poll ``wait(timeout)`` (the exit status, or None while running) against the clock and the disk."""
        next_disk = time.monotonic() + 1.0
        while True:
            code = wait(0.25)
            if code is not None:
                return "exited", str(code)
            if self.cancel is not None and self.cancel.is_set():
                return "cancelled", ""
            now = time.monotonic()
            if now >= self.deadline:
                return "timeout", ""
            if now >= next_disk:
                over = disk_over(self.home, self.limits)
                if over:
                    return "disk_limit", over
                next_disk = time.monotonic() + 1.0


def wait_proc(proc: subprocess.Popen, timeout: float):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def holder_ready(proc: subprocess.Popen, info_fd: int, timeout: float) -> int:
    """The host pid of the holder sandbox's init, once its mounts are in place (the holder said 'R')."""
    import select

    end = time.monotonic() + timeout
    info = b""
    while not info.rstrip().endswith(b"}"):
        ready, _, _ = select.select([info_fd], [], [], max(0.0, end - time.monotonic()))
        chunk = os.read(info_fd, 4096) if ready else b""
        if not chunk:
            raise zygote_mod.ZygoteError(f"the sandbox did not start: {proc_error(proc)}")
        info += chunk
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))
    if not ready or proc.stdout.read(1) != b"R":
        raise zygote_mod.ZygoteError(f"the sandbox did not start: {proc_error(proc)}")
    return int(json.loads(info)["child-pid"])


def proc_error(proc: subprocess.Popen) -> str:
    kill_session(proc)
    try:
        text = proc.stderr.read(4000).decode(errors="replace").strip()
    except (OSError, ValueError):
        text = ""
    return text.splitlines()[-1] if text else f"exit status {proc.returncode}"


def kill_session(proc: subprocess.Popen) -> None:
    """Kill bwrap and its session: that tears down the pid namespace, so every process of the
    sandbox dies; the fallback relies on the process group and kill_uid()."""
    if proc.poll() is None:
        for target in (lambda: os.killpg(proc.pid, 9), lambda: proc.kill()):
            try:
                target()
            except OSError:
                pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def disk_over(home: Path, limits: Limits) -> str:
    """'' or why the scratch home is over its limits (bytes on disk, number of entries)."""
    total = count = 0
    stack = [str(home)]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for entry in it:
                    count += 1
                    if count > limits.max_files:
                        return f"more than {limits.max_files} files were created in the scratch directory"
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if total > limits.disk_bytes:
                        return f"more than {limits.disk_bytes} bytes were written to the scratch directory"
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue
    return ""
