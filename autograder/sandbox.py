"""The sandbox that student code runs in: a bubblewrap (``bwrap``) command plus resource limits.

What the sandbox sees (see docs/sandbox.md for the reasons and the measured figures):

* a fresh, empty root: ``/usr`` and the ``/lib*``, ``/bin``, ``/sbin`` links or binds, a few
  harmless files of ``/etc`` (the loader cache, time zone, ...), a private ``/proc`` (own pid
  namespace), a minimal ``/dev``, size-capped tmpfs ``/tmp`` and ``/dev/shm``;
* read-only: the Python runtime (the virtual environment and the interpreter it was made from),
  the course packages, the data directory, and whatever else the caller names;
* read-write: one scratch directory, mounted at ``/home/student`` (``SANDBOX_HOME``);
* no network (own network namespace: only a loopback device, for the kernel's ZMQ sockets),
  own IPC and UTS namespaces, a new session (no terminal injection), ``--die-with-parent``.

When the host runs as root, bwrap runs without a user namespace and a tiny launcher inside the
sandbox drops to an unprivileged uid (one per run) before anything else starts, so that
``RLIMIT_NPROC`` is enforced (the kernel ignores it for uid 0) and no capability is left.
Unprivileged hosts get ``--unshare-all`` (a user namespace) instead.

Resource limits are set by that launcher with ``setrlimit`` in both modes: CPU seconds per
process, data segment (``RLIMIT_DATA``: malloc'd and anonymous memory; torch's shared libraries
and reserved-but-unused address space do not count), an address-space backstop, processes and
threads of the sandbox uid, open files, the largest file, no core dumps.

Without a working bwrap, ``sandbox_command`` falls back to the launcher alone (limits, clean
environment, private HOME/cwd, and a uid drop when the host is root and the runtime is readable
by others): this is NOT isolation, and ``warn_not_isolated`` says so loudly.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from typing import Mapping, Sequence

from .sandbox_limits import LAUNCHER, GiB, KiB, Limits, MiB, apply_rlimits
from .sandbox_uids import allocate_uid, kill_uid, privileged, readable_by_others, tasks_of_uid

__all__ = [
    "Limits",
    "SANDBOX_HOME",
    "bwrap_available",
    "bwrap_path",
    "sandbox_command",
    "plan_sandbox",
    "SandboxPlan",
    "runtime_paths",
    "course_root",
    "identity_files",
    "allocate_uid",
    "kill_uid",
    "warn_not_isolated",
    "NOT_ISOLATED_WARNING",
    "apply_rlimits",
    "KiB", "MiB", "GiB",
]

#: Where the read-write scratch directory appears inside a bwrap sandbox.
SANDBOX_HOME = "/home/student"

NOT_ISOLATED_WARNING = (
    "SANDBOX DISABLED: bubblewrap (bwrap) is missing or does not work here, so student code runs "
    "WITHOUT isolation: it can read the solutions, the hidden tests, other submissions and the "
    "gradebook, and it can use the network. Only resource limits apply. "
    "Install bubblewrap (apt-get install -y bubblewrap) before grading real submissions."
)


def bwrap_path() -> str | None:
    """The bwrap executable, or None. ``AUTOGRADER_BWRAP=0`` pretends there is none."""
    if os.environ.get("AUTOGRADER_BWRAP", "").strip().lower() in ("0", "no", "false", "off"):
        return None
    return shutil.which("bwrap")


def _namespace_flags(privileged: bool) -> list[str]:
    if privileged:
        # Real root: no user namespace (it would map only uid 0 and keep RLIMIT_NPROC from
        # working); the launcher drops to the sandbox uid with the two capabilities left to it.
        return [
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
        ]
    return ["--unshare-all", "--unshare-user", "--disable-userns"]


def _system_binds() -> list[str]:
    """/usr, the /lib*, /bin, /sbin links (or binds), and a minimal /etc."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
                 "nsswitch.conf", "host.conf", "mime.types", "fonts", "alternatives",
                 "ssl/openssl.cnf"):
        host = Path("/etc") / name
        if host.exists():
            if "/" in name:
                args += ["--perms", "0755", "--dir", str(host.parent)]
            args += ["--ro-bind", str(host), str(host)]
    return args


@functools.lru_cache(maxsize=None)
def _probe_bwrap(bwrap: str, privileged: bool) -> tuple[bool, str]:
    cmd = [bwrap, *_namespace_flags(privileged), "--die-with-parent", "--new-session",
           *_system_binds(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "true"]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"{bwrap} failed to run: {err}"
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        return False, f"{bwrap} exited {proc.returncode}: {msg[-1] if msg else 'no message'}"
    return True, ""


def bwrap_available(*, why: list[str] | None = None) -> bool:
    """Whether bwrap exists AND works here (tried once per process, then cached).

    bwrap can be installed yet unusable (a container without user namespaces, an AppArmor
    policy...). Pass a list as ``why`` to receive the reason when it is not available.
    """
    bwrap = bwrap_path()
    if bwrap is None:
        if why is not None:
            why.append("bwrap not found on PATH (or AUTOGRADER_BWRAP=0)")
        return False
    ok, reason = _probe_bwrap(bwrap, privileged())
    if not ok and why is not None:
        why.append(reason)
    return ok


_warned = False
_warn_lock = threading.Lock()


def warn_not_isolated(reason: str = "") -> str:
    """Print the loud no-isolation banner to stderr once per process; return its text."""
    global _warned
    text = NOT_ISOLATED_WARNING + (f" ({reason})" if reason else "")
    with _warn_lock:
        if not _warned:
            _warned = True
            bar = "!" * 78
            print(f"\n{bar}\n{text}\n{bar}\n", file=sys.stderr, flush=True)
    return text


# --------------------------------------------------------------------------------------------
# Which host paths make up the runtime
# --------------------------------------------------------------------------------------------
def runtime_paths(packages: Sequence[str] = ("coursekit", "mnist_cnn"),
                  files: Sequence[str | Path] = ()) -> list[Path]:
    """The read-only runtime: the interpreter's prefixes and the named packages' directories.

    Packages are located with ``importlib.util.find_spec`` (nothing is imported), so an editable
    install of the course resolves to the repository's package directories only: the rest of
    the repository (``solutions/``, the autograder, hidden tests, gradebooks) stays outside.
    """
    paths: list[Path] = []
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        paths.append(Path(p))
    exe = Path(sys.executable)
    paths.append(Path(os.path.realpath(exe)).parent.parent)
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            paths.extend(Path(p) for p in spec.submodule_search_locations)
        elif spec.origin:
            paths.append(Path(spec.origin))
    paths.extend(Path(f) for f in files)
    return _dedupe(paths)


def course_root() -> Path | None:
    """The folder this process imports the course's packages from: the checkout (an editable
    install, or ``python -m autograder`` run inside a checkout) or site-packages; None when
    coursekit is not importable. The sandbox mounts the course from here, and the zygote and a
    cold driver put it first on their ``sys.path``, so that all three use one course."""
    spec = importlib.util.find_spec("coursekit")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(os.path.abspath(list(spec.submodule_search_locations)[0])).parent


def _interpreter_paths(python: str) -> list[Path]:
    """The prefixes an interpreter needs: this process's when it is ``sys.executable``."""
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return runtime_paths(packages=())
    return [Path(os.path.abspath(python)).parent.parent, Path(os.path.realpath(python)).parent.parent]


def _dedupe(paths: Sequence[Path]) -> list[Path]:
    """Absolute, existing, without those already inside another one; parents first."""
    absolute = sorted({Path(os.path.abspath(p)) for p in paths if os.path.exists(p)},
                      key=lambda p: (len(p.parts), str(p)))
    out: list[Path] = []
    for p in absolute:
        if p == Path("/"):
            raise ValueError("refusing to expose the whole host file system read-only")
        if not any(p == q or q in p.parents for q in out):
            out.append(p)
    return out


def identity_files(directory: Path, uid: int, gid: int) -> dict[str, Path]:
    """Write a minimal passwd and group naming the sandbox user; return {dest: src} binds."""
    directory.mkdir(parents=True, exist_ok=True)
    passwd = directory / "passwd"
    group = directory / "group"
    passwd.write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"student:x:{uid}:{gid}:student:{SANDBOX_HOME}:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    group.write_text(f"root:x:0:\nstudent:x:{gid}:\nnogroup:x:65534:\n")
    for f in (passwd, group):
        f.chmod(0o644)
    return {"/etc/passwd": passwd, "/etc/group": group}


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SandboxPlan:
    """What ``plan_sandbox`` decided: the command and the facts the caller needs about it."""

    command: list[str]
    launch: dict                 # the launcher's settings: uid, gid, rlimits, cwd, env
    isolated: bool               # bwrap namespaces in place
    uid: int | None              # the unprivileged uid inside, None when it stays the host's
    pid_namespace: bool          # processes inside cannot see or signal the host's
    inner_home: str              # the work directory as seen inside
    warnings: tuple[str, ...]    # human-readable, for the report


def plan_sandbox(
    argv: Sequence[str],
    *,
    workdir: str | Path,
    readonly_paths: Sequence[str | Path] = (),
    env: Mapping[str, str] | None = None,
    limits: Limits = Limits(),
    ro_binds: Mapping[str, str | Path] | None = None,
    uid: int | None = None,
    use_bwrap: bool | None = None,
    python: str | None = None,
) -> SandboxPlan:
    """Decide how to run ``argv`` sandboxed; see ``sandbox_command`` for the arguments.

    Side effect: when the host is root and the run drops to a uid, ``workdir`` is chowned to
    that uid (mode 0700), since it is the one place the student may write.
    """
    python = python or sys.executable
    use_bwrap, warnings = _isolation(use_bwrap)
    workdir = Path(os.path.abspath(workdir))
    ro = _dedupe([*_interpreter_paths(python), *map(Path, readonly_paths)])
    inner_home = SANDBOX_HOME if use_bwrap else str(workdir)
    environment = {"HOME": inner_home, "PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin"}
    environment.update(env or {})
    target_uid, nproc_base = _run_as(uid, use_bwrap, workdir, [
        Path(python), Path(os.path.realpath(python)), *ro, *map(Path, (ro_binds or {}).values()),
        *([Path(argv[0])] if argv and os.path.isabs(argv[0]) else [])], warnings)
    config = {
        "uid": target_uid,
        "gid": target_uid,
        "rlimits": limits.rlimits(nproc_base=nproc_base),
        "cwd": inner_home,
        "env": environment,
        "pdeathsig": not use_bwrap,
    }
    launcher = [python, "-I", "-S", "-c", LAUNCHER, json.dumps(config), *argv]
    if not use_bwrap:
        return SandboxPlan(launcher, config, False, target_uid, False, inner_home, tuple(warnings))
    binds = [(str(p), str(p)) for p in ro] + [(str(src), str(dest)) for dest, src in (ro_binds or {}).items()]
    return SandboxPlan(_bwrap_command(binds, workdir, limits, launcher), config, True, target_uid, True,
                       inner_home, tuple(warnings))


def _isolation(use_bwrap: bool | None) -> tuple[bool, list[str]]:
    """(whether bwrap isolates the run, the warnings to report): bwrap where it works unless the
    caller says otherwise; RuntimeError when it is asked for and does not work."""
    warnings: list[str] = []
    why: list[str] = []
    available = bwrap_available(why=why)
    if use_bwrap is None:
        use_bwrap = available
    elif use_bwrap and not available:
        raise RuntimeError(f"bwrap requested but not usable: {'; '.join(why)}")
    if not use_bwrap:
        warnings.append(NOT_ISOLATED_WARNING + (f" ({'; '.join(why)})" if why and not available else
                                                " (fallback forced by the caller)"))
    return use_bwrap, warnings


def _run_as(uid: int | None, use_bwrap: bool, workdir: Path, needed: list[Path],
            warnings: list[str]) -> tuple[int | None, int]:
    """(the uid the run drops to or None, the RLIMIT_NPROC base). A root host drops to a fresh
    uid (without bwrap only where that uid can read ``needed``, the runtime) and gives it
    ``workdir`` (mode 0700); an unprivileged host keeps its uid and counts its other tasks."""
    if not privileged():
        # Our own uid: RLIMIT_NPROC counts the host user's other tasks too; allow for them.
        return None, tasks_of_uid(os.getuid())
    target_uid: int | None = None
    if use_bwrap:
        target_uid = uid if uid is not None else allocate_uid()
    else:
        unreadable = [str(p) for p in needed if not readable_by_others(p)]
        unreadable += [str(q) for q in workdir.parents if not os.stat(q).st_mode & 0o001][:1]
        if unreadable:
            warnings.append("running as root: the runtime is not readable by an unprivileged "
                            f"uid ({unreadable[0]}), so no process limit applies")
        else:
            target_uid = uid if uid is not None else allocate_uid()
    if target_uid is not None:
        os.chown(workdir, target_uid, target_uid)
        os.chmod(workdir, 0o700)
    return target_uid, 0


def _bwrap_command(binds: list[tuple[str, str]], workdir: Path, limits: Limits, launcher: list[str]) -> list[str]:
    """The bwrap command line: a fresh root with the system's and the ``binds`` (src, dest)
    read-only, capped tmpfs /tmp and /dev/shm, ``workdir`` writable at SANDBOX_HOME, then the launcher."""
    bwrap = bwrap_path()
    assert bwrap is not None
    cmd = [bwrap, *_namespace_flags(privileged()), "--die-with-parent", "--new-session",
           "--hostname", "sandbox", "--clearenv", *_system_binds(),
           "--proc", "/proc", "--dev", "/dev",
           "--perms", "1777", "--size", str(int(limits.tmpfs_bytes)), "--tmpfs", "/tmp",
           "--perms", "1777", "--size", str(int(limits.tmpfs_bytes)), "--tmpfs", "/dev/shm"]
    # bwrap would create the missing parents of the mount points mode 0700 (root only): make
    # them 0755 first so that the unprivileged uid can reach its runtime. Parents under /tmp
    # come after the /tmp tmpfs, so a runtime that lives under /tmp (a venv) shows through.
    parents = sorted({str(q) for _, dest in binds + [("", SANDBOX_HOME)] for q in Path(dest).parents
                      if q != Path("/")}, key=lambda d: (d.count("/"), d))
    for d in parents:
        if d not in ("/usr", "/dev", "/proc", "/tmp") and not d.startswith(("/usr/", "/proc/", "/dev/")):
            cmd += ["--perms", "0755", "--dir", d]
    for src, dest in binds:
        cmd += ["--ro-bind", src, dest]
    # No --chdir: bwrap has dropped its capabilities by then; the launcher changes directory.
    return cmd + ["--bind", str(workdir), SANDBOX_HOME, "--", *launcher]


def sandbox_command(
    argv: Sequence[str],
    *,
    workdir: str | Path,
    readonly_paths: Sequence[str | Path] = (),
    env: Mapping[str, str] | None = None,
    limits: Limits = Limits(),
    ro_binds: Mapping[str, str | Path] | None = None,
    uid: int | None = None,
    use_bwrap: bool | None = None,
    python: str | None = None,
) -> list[str]:
    """The command line that runs ``argv`` inside the sandbox. Run it with ``subprocess.Popen``
    (``start_new_session=True``); the environment, cwd, uid and limits are set by the command.

    argv: the program inside. Its paths are as seen inside: with bwrap, ``workdir`` is at
        ``SANDBOX_HOME``, the ``readonly_paths`` at their host paths, ``ro_binds`` at their keys.
    workdir: host directory, the only writable one (cwd and HOME inside). When the host is
        root it is chowned to the sandbox uid.
    readonly_paths: host paths bound read-only at the same path (the runtime: see
        ``runtime_paths()``); the interpreter's prefixes are always added.
    env: the complete environment inside (nothing of the host's leaks in); HOME defaults to the
        work directory as seen inside, PATH to the interpreter's bin and the system's.
    ro_binds: {path inside: host path} extra read-only binds (config files, data, passwd).
    uid: the unprivileged uid to run as when the host is root (default ``allocate_uid()``;
        its gid is the same number).
    use_bwrap: None = bwrap if ``bwrap_available()``; False = the unisolated fallback (limits
        only, and a loud warning in ``plan_sandbox(...).warnings``); True = bwrap or raise.
    python: the interpreter for the launcher (default ``sys.executable``).
    """
    return plan_sandbox(argv, workdir=workdir, readonly_paths=readonly_paths, env=env, limits=limits,
                        ro_binds=ro_binds, uid=uid, use_bwrap=use_bwrap, python=python).command
