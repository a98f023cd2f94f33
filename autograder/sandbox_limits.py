"""The resource limits of one sandboxed notebook run (``Limits``) and the launcher, the first program
inside the sandbox, that drops to the run's uid, sets ``no_new_privs`` and applies them."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limits:
    """Resource limits for one notebook run. Defaults: see docs/sandbox.md for the measurements."""

    notebook_cpu_seconds: float = 1200.0  # CPU seconds all the notebook's kernels may use together
    cell_cpu_seconds: float = 600.0     # CPU seconds one cell may use; then the kernel is interrupted ...
    interrupt_grace_seconds: float = 5.0  # ... and killed if still busy this long (CPU) after
    wall_factor: float = 4.0            # wall-clock backstops: this many times each CPU limit
    kernel_start_seconds: float = 60.0  # a kernel that is not ready by then counts as dead
    cpu_seconds: int = 1200             # RLIMIT_CPU, per process (SIGXCPU, then SIGKILL 5 s later)
    memory_bytes: int = 4 * GiB         # RLIMIT_DATA, per process: heap and anonymous mappings
    address_space_bytes: int | None = 64 * GiB  # RLIMIT_AS backstop (None: unlimited)
    max_processes: int = 256            # RLIMIT_NPROC: processes + threads of the sandbox uid
    max_open_files: int = 1024          # RLIMIT_NOFILE
    file_bytes: int = 512 * MiB         # RLIMIT_FSIZE: the largest file student code can write
    disk_bytes: int = 2 * GiB           # all files in the scratch dir (host watchdog kills beyond)
    max_files: int = 20_000             # files and directories in the scratch dir (same watchdog)
    tmpfs_bytes: int = 512 * MiB        # size of the private /tmp and of /dev/shm, each
    output_bytes: int = 2 * MiB         # cell output kept in the executed notebook, all cells
    cell_output_bytes: int = 256 * KiB  # cell output kept per cell
    collect_bytes: int = 64 * MiB       # one collected .npz file (on disk and uncompressed)
    threads: int = 1                    # OMP/MKL/OPENBLAS/NUMEXPR/VECLIB_..._NUM_THREADS
    kernel_restarts: int = 8            # fresh kernels after deaths and kills, per sandbox
    sandbox_restarts: int = 3           # relaunches of the whole sandbox after its driver died

    @property
    def wall_seconds(self) -> float:
        """The whole notebook's wall-clock backstop: the host kills the sandbox after this."""
        return self.notebook_cpu_seconds * self.wall_factor

    def rlimits(self, *, nproc_base: int = 0) -> list[tuple[str, int, int]]:
        """(resource name, soft, hard) triples for the launcher; -1 means unlimited."""
        cpu = int(self.cpu_seconds)
        out = [
            ("RLIMIT_CPU", cpu, cpu + 5),
            ("RLIMIT_DATA", int(self.memory_bytes), int(self.memory_bytes)),
            ("RLIMIT_NPROC", nproc_base + int(self.max_processes), nproc_base + int(self.max_processes)),
            ("RLIMIT_NOFILE", int(self.max_open_files), int(self.max_open_files)),
            ("RLIMIT_FSIZE", int(self.file_bytes), int(self.file_bytes)),
            ("RLIMIT_CORE", 0, 0),
        ]
        if self.address_space_bytes is not None:
            out.append(("RLIMIT_AS", int(self.address_space_bytes), int(self.address_space_bytes)))
        return out


# --------------------------------------------------------------------------------------------
# The launcher: first program inside the sandbox (and the whole "sandbox" without bwrap).
# Runs as `python -I -S -c LAUNCHER CONFIG_JSON ARGV...`: no site-packages, stdlib only.
# --------------------------------------------------------------------------------------------
def apply_rlimits(rlimits) -> None:
    """setrlimit each (resource name, soft, hard); -1: leave as is; never above the current hard
    limit. Also pasted into the launcher below (a stdlib-only program) and used by the zygote."""
    import resource

    for name, soft, hard in rlimits:
        r = getattr(resource, name, None)
        if r is None:
            continue
        cur_soft, cur_hard = resource.getrlimit(r)
        inf = resource.RLIM_INFINITY
        hard = cur_hard if hard < 0 else (hard if cur_hard == inf else min(hard, cur_hard))
        soft = hard if soft < 0 else (soft if hard == inf else min(soft, hard))
        resource.setrlimit(r, (soft, hard))


LAUNCHER = r"""
import json, os, sys
c = json.loads(sys.argv[1])
argv = sys.argv[2:]
if c.get("uid") is not None:
    os.setgroups([])
    os.setresgid(c["gid"], c["gid"], c["gid"])
    os.setresuid(c["uid"], c["uid"], c["uid"])
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("sandbox launcher: could not drop root")
try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(38, 1, 0, 0, 0)                    # PR_SET_NO_NEW_PRIVS
    if c.get("pdeathsig"):
        libc.prctl(1, 9, 0, 0, 0)                 # PR_SET_PDEATHSIG = SIGKILL
except Exception:
    pass
""" + inspect.getsource(apply_rlimits) + r"""
apply_rlimits(c["rlimits"])
os.umask(0o077)
os.chdir(c["cwd"])
os.execve(argv[0], argv, c["env"])
"""
