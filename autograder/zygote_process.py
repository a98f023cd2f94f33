"""The zygote process itself (``zygote.Zygote`` starts it: ``python -I -c BOOT COURSE SOCKET_FD PARENT_PID``,
the course's folder first on ``sys.path``, then ``main``): imports
the kernels' modules once (``_driver.warm_up``), then, per request from ``autograder.zygote.Zygote``,
forks a trusted helper that joins a holder sandbox's namespaces and root and forks the driver inside,
dropped to the run's uid with its rlimits. It never runs student code itself."""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from typing import Optional

from autograder.sandbox_limits import apply_rlimits   # imported here: the driver child calls it in the sandbox
from autograder.zygote import CAPABILITY_VERSION_3, NAMESPACES, NS_GET_USERNS

def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _join(target: int) -> None:
    """Enter the namespaces and the root of process ``target`` (the sandbox's holder)."""
    import fcntl

    libc = _libc()
    fds = {n: os.open(f"/proc/{target}/ns/{n}", os.O_RDONLY) for n in NAMESPACES + ("user",)
           if os.path.exists(f"/proc/{target}/ns/{n}")}
    root = os.open(f"/proc/{target}/root", os.O_RDONLY | os.O_DIRECTORY)
    mine = {n: os.stat(f"/proc/self/ns/{n}").st_ino for n in fds}
    theirs = {n: os.fstat(fd).st_ino for n, fd in fds.items()}
    order = []
    owner = fcntl.ioctl(fds["ipc"], NS_GET_USERNS)      # the user namespace bwrap made (if any)
    if os.fstat(owner).st_ino != mine["user"]:
        order.append(("user namespace", owner))
    order += [(n, fds[n]) for n in NAMESPACES if n in fds and theirs[n] != mine[n]]
    if theirs["user"] != mine["user"] and theirs["user"] != os.fstat(owner).st_ino:
        order.append(("nested user namespace", fds["user"]))   # bwrap --disable-userns
    for name, fd in order:
        _check(libc.setns(fd, 0), f"setns {name}")
    os.fchdir(root)
    os.chroot(".")
    for fd in [*fds.values(), owner, root]:
        os.close(fd)


def _drop_privileges(uid: Optional[int]) -> None:
    """No way back: another uid (root hosts) or no capabilities (user namespaces), no_new_privs."""
    import ctypes

    libc = _libc()
    if os.geteuid() == 0 and uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _check(libc.prctl(38, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    for cap in range(64):                                # the bounding set, while CAP_SETPCAP lasts
        if libc.prctl(24, cap, 0, 0, 0) != 0:           # PR_CAPBSET_DROP
            break
    _check(libc.capset(ctypes.byref(Header(CAPABILITY_VERSION_3, 0)), (Data * 2)()), "capset")
    with open("/proc/self/status") as f:
        eff = next(line.split()[1] for line in f if line.startswith("CapEff:"))
    if int(eff, 16) != 0 or os.geteuid() == 0:
        raise OSError("privileges could not be dropped")


def _helper(request: dict, notify: int, log: int, warm_backend: str) -> None:
    """The forked helper: join, fork the driver, wait for it, report. Never returns."""
    def say(message: dict) -> None:
        try:
            os.write(notify, json.dumps(message).encode() + b"\n")
        except OSError:
            pass

    try:
        _libc().prctl(1, signal.SIGKILL, 0, 0, 0)        # PR_SET_PDEATHSIG: die with the zygote
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        with open(request["spawn_file"], encoding="utf-8") as f:
            spec = json.load(f)
        if request.get("target") is not None:
            try:
                _join(int(request["target"]))
            except OSError as err:
                say({"error": f"cannot join the sandbox: {err}", "join": True})
                os._exit(0)
        pid = os.fork()
        if pid == 0:
            _driver_child(spec, notify, log, warm_backend)
        os.close(log)
        _, status = os.waitpid(pid, 0)
        say({"status": os.waitstatus_to_exitcode(status)})
    except BaseException as err:  # noqa: BLE001
        say({"error": f"spawn helper: {type(err).__name__}: {err}"})
    os._exit(0)


def _driver_child(spec: dict, notify: int, log: int, warm_backend: str) -> None:
    """Inside the sandbox now: become the notebook's driver. Never returns."""
    code = 70
    try:
        os.close(notify)
        os.setsid()
        _libc().prctl(1, signal.SIGKILL, 0, 0, 0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        apply_rlimits(spec["rlimits"])
        _drop_privileges(spec.get("uid"))
        os.umask(0o077)
        os.chdir(spec["cwd"])
        os.environ.clear()
        os.environ.update(spec["env"])
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 65536)
        from autograder import _driver

        sys.argv = list(spec["argv"])
        code = _driver.main(sys.argv, warm_backend=warm_backend, warm_seconds=0.0)
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    except BaseException:  # noqa: BLE001
        code = 71
    os._exit(code)


def _serve(sock: socket.socket, parent: int) -> None:
    _libc().prctl(1, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        return
    started = time.monotonic()
    from autograder import _driver

    took = _driver.warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)            # helpers are reaped by the kernel
    warm_backend = os.environ.get("MPLBACKEND", "")
    import coursekit

    course = os.path.dirname(os.path.dirname(os.path.abspath(coursekit.__file__)))
    sock.sendall(json.dumps({"ready": {"seconds": round(time.monotonic() - started, 3), "slow": took},
                             "pid": os.getpid(), "threads": threading.active_count(),
                             "course": course}).encode() + b"\n")
    buffer = b""
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 65536, 4)
        if not msg:
            return
        buffer += msg
        if not buffer.endswith(b"\n"):
            for fd in fds:
                os.close(fd)
            continue
        try:
            request = json.loads(buffer)
        except ValueError:
            request = None
        buffer = b""
        if request is None or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            sock.sendall(b'{"error": "malformed request"}\n')
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            _helper(request, fds[0], fds[1], warm_backend)
        for fd in fds:
            os.close(fd)
        sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def main(argv=None) -> None:
    """``argv``: [SOCKET_FD, PARENT_PID] (default ``sys.argv[1:]``)."""
    argv = sys.argv[1:] if argv is None else argv
    _serve(socket.socket(fileno=int(argv[0])), int(argv[1]))


if __name__ == "__main__":
    main()
