"""Run one student notebook in the sandbox, cell by cell, and collect what its checks saved.

``run_notebook`` is the host side. It checks the notebook (missing? valid JSON?) without running
anything, lays out the scratch directory, starts ``_driver.py`` inside the sandbox (see
``autograder.sandbox``), enforces the wall-clock and disk limits from outside, relaunches the
sandbox after a cell that killed the driver, and finally copies out, size-capped and validated,
the collected ``.npz`` files and the executed notebook.

Trust: everything in the scratch directory was writable by student code. The host reads it only
through ``_open_inside`` (no symlinks followed, regular files only, size-capped), loads ``.npz``
files only with ``np.load(allow_pickle=False)`` after checking their uncompressed size, and
parses the driver's JSON report as information for humans: grades must come from judging the
collected data, never from the report.

Scratch layout (``scratch_dir`` must be empty or absent; it is made mode 0711)::

    home/            the student's writable space, HOME and cwd inside (/home/student with bwrap)
      <notebook>       a copy of the submission
      collect/         $COURSE_COLLECT_DIR: check() writes <grade_id>.npz here
      .grader/         the driver's report.json and executed.ipynb (student-writable!)
    host/            host only: the driver's config, the submission as the driver reads it
    collected/       host only: validated copies of the collected .npz files
    executed.ipynb   host only: copy of the executed notebook
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from .zygote import Zygote

from . import sandbox
from . import zygote as zygote_mod
from .sandbox import Limits, SANDBOX_HOME

__all__ = ["CellResult", "RunReport", "run_notebook", "MAX_NOTEBOOK_BYTES"]

DRIVER = Path(__file__).with_name("_driver.py")
MAX_NOTEBOOK_BYTES = 50 << 20        # a submitted notebook larger than this is refused
REPORT_BYTES = 8 << 20               # the driver's report, read at most this much
MAX_COLLECTED_FILES = 500
GRADE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
CELL_STATUSES = ("ok", "error", "timeout", "kernel_died", "skipped")
INNER = "/opt/autograder"            # where the driver and its config appear inside bwrap
INNER_DATA = "/data"                 # where data_dir appears inside bwrap


@dataclass
class CellResult:
    """One code cell. ``status``: ok | error | timeout | kernel_died | skipped."""

    index: int                 # position in the notebook's cell list (markdown cells count)
    grade_id: str | None       # nbgrader metadata, as the host read it from the submission
    status: str
    reason: str = ""           # one line for humans; "" when ok
    ename: str | None = None   # exception name, e.g. "NameError", "DeadKernel", "CellTimeout"
    evalue: str | None = None  # exception message, short
    seconds: float = 0.0       # wall-clock
    cpu_seconds: float = 0.0   # the kernel's CPU time (what the cell limits count)
    output_bytes: int = 0      # output kept in the executed notebook
    dropped_bytes: int = 0     # output beyond the caps, not kept


@dataclass
class RunReport:
    """The outcome of ``run_notebook``.

    status: "ok" (every cell was attempted; cells may still have failed: see ``cells``),
    "missing", "invalid_notebook" (nothing ran), "timeout" (the notebook's wall-clock limit),
    "disk_limit" (too many bytes or files written), "crashed" (the sandbox died and could not
    be relaunched, or its report was missing or malformed).
    """

    status: str
    reason: str
    cells: list[CellResult] = field(default_factory=list)
    collected: dict[str, Path] = field(default_factory=dict)   # grade_id -> validated .npz copy
    rejected: dict[str, str] = field(default_factory=dict)     # file name -> why it was refused
    executed_notebook: Path | None = None
    seconds: float = 0.0
    isolated: bool = False
    warnings: list[str] = field(default_factory=list)
    attempts: int = 0          # sandbox launches
    warm: bool = False         # the driver was forked from the zygote (else started cold)
    cpu_seconds: float = 0.0   # CPU time of the notebook's kernels
    timings: dict = field(default_factory=dict)   # sandbox_start, spawn, driver_imports, kernel_start [...]
    log_tail: str = ""         # last lines of the sandbox's stdout/stderr (student-influenced)
    kernel_log: str = ""       # last lines of the kernel's own stdout/stderr (student-influenced)


# ------------------------------------------------------------------------------------------
def run_notebook(
    notebook_path: str | Path,
    *,
    scratch_dir: str | Path,
    limits: Limits = Limits(),
    env_extra: Mapping[str, str] | None = None,
    data_dir: str | Path | None = None,
    readonly_paths: Sequence[str | Path] | None = None,
    use_bwrap: bool | None = None,
    uid: int | None = None,
    zygote: "Zygote | None | bool" = None,
) -> RunReport:
    """Execute ``notebook_path`` in a sandbox, cell by cell; never raises for student faults.

    scratch_dir: a new or empty directory for this run (see the module docstring).
    env_extra: added to (and overriding) the sandbox environment.
    data_dir: bound read-only inside; ``MNIST_DATA_DIR`` points at it.
    readonly_paths: the runtime; default ``sandbox.runtime_paths()`` (interpreter, coursekit,
        mnist_cnn, course.yml).
    use_bwrap: None: bwrap when it works, else the loudly warned fallback; False: force the
        fallback; True: bwrap or RuntimeError.
    uid: the unprivileged uid to run as (root hosts); default ``sandbox.allocate_uid()``.
    zygote: the warm interpreter to fork the driver from (``autograder.zygote``); None: this
        process's shared one; False: start the driver cold (as the fallback always does).
    """
    t0 = time.monotonic()
    notebook_path = Path(notebook_path)
    scratch = Path(os.path.abspath(scratch_dir))
    if scratch.exists() and any(scratch.iterdir()):
        raise ValueError(f"scratch_dir {scratch} is not empty")
    scratch.mkdir(parents=True, exist_ok=True)

    report = RunReport(status="ok", reason="")
    raw, problem = _read_submission(notebook_path)
    if raw is None:
        report.status, report.reason = problem
        report.seconds = round(time.monotonic() - t0, 3)
        return report
    nb, problem = _parse_notebook(raw)
    if nb is None:
        report.status, report.reason = "invalid_notebook", problem
        report.seconds = round(time.monotonic() - t0, 3)
        return report

    code_cells = {i: _grade_id(c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"}
    why: list[str] = []
    isolated = sandbox.bwrap_available(why=why) if use_bwrap is None else bool(use_bwrap)
    if use_bwrap and not sandbox.bwrap_available(why=why):
        raise RuntimeError(f"bwrap requested but not usable: {'; '.join(why)}")
    if not isolated:
        sandbox.warn_not_isolated("; ".join(why) if use_bwrap is None else "fallback forced")
    run_uid = uid if uid is not None else sandbox.allocate_uid()
    warm = _warm_zygote(zygote, limits, env_extra) if isolated else None

    # Layout. scratch: 0711 so a fallback uid can reach home/ and host/ by name only.
    os.chmod(scratch, 0o711)
    home, host, collected_dir = scratch / "home", scratch / "host", scratch / "collected"
    for d in (home, host, collected_dir):
        d.mkdir()
    os.chmod(host, 0o711)
    os.chmod(collected_dir, 0o700)
    name = _safe_name(notebook_path.name)
    (host / "submission.ipynb").write_bytes(raw)
    (home / name).write_bytes(raw)
    (home / "collect").mkdir()
    (home / ".grader").mkdir()
    shutil.copyfile(DRIVER, host / "_driver.py")
    for f in (host / "submission.ipynb", host / "_driver.py"):
        f.chmod(0o644)
    ro = list(readonly_paths) if readonly_paths is not None else sandbox.runtime_paths(files=_course_files())

    inner_home = SANDBOX_HOME if isolated else str(home)
    inner_host = INNER if isolated else str(host)
    env = _environment(inner_home, limits, isolated, data_dir)
    env.update(env_extra or {})
    ro_binds: dict[str, Path] = {}
    if isolated:
        ro_binds.update(sandbox.identity_files(host / "etc", run_uid, run_uid))
        ro_binds[f"{INNER}/_driver.py"] = host / "_driver.py"
        ro_binds[f"{INNER}/submission.ipynb"] = host / "submission.ipynb"
        if data_dir is not None:
            ro_binds[INNER_DATA] = Path(os.path.abspath(data_dir))
    else:
        (home / ".tmp").mkdir()
    _chown_tree(home, run_uid)

    deadline = t0 + float(limits.wall_seconds)
    results: dict[int, CellResult] = {}
    start_cell = 0
    final_status, final_reason = "ok", ""
    while True:
        report.attempts += 1
        cpu_used = sum(c.cpu_seconds for c in results.values())
        cfg = {
            "notebook": f"{inner_host}/submission.ipynb",
            "home": inner_home,
            "collect_dir": env["COURSE_COLLECT_DIR"],
            "grader_dir": f"{inner_home}/.grader",
            "runtime_dir": env["JUPYTER_RUNTIME_DIR"],
            "start_cell": start_cell,
            "attempt": report.attempts,
            "deadline_seconds": max(1.0, deadline - time.monotonic() - 3.0),
            "cell_cpu_seconds": float(limits.cell_cpu_seconds),
            "notebook_cpu_seconds": float(limits.notebook_cpu_seconds),
            "cpu_used": cpu_used,
            "wall_factor": float(limits.wall_factor),
            "interrupt_grace_seconds": float(limits.interrupt_grace_seconds),
            "kernel_start_seconds": float(limits.kernel_start_seconds),
            "kernel_restarts": int(limits.kernel_restarts),
            "output_bytes": int(limits.output_bytes),
            "cell_output_bytes": int(limits.cell_output_bytes),
            "memory_bytes": int(limits.memory_bytes),
            "max_message_bytes": max(16 << 20, 4 * int(limits.cell_output_bytes)),
            "kill_strays": True,  # decided below, once the plan is known
        }
        cfg_name = f"config-{report.attempts}.json"
        driver_argv = [f"{inner_host}/_driver.py", f"{inner_host}/{cfg_name}"]
        argv = [sys.executable, "-I", *driver_argv] if warm is None else [sys.executable, "-I", "-S", "-c", HOLDER]
        binds = dict(ro_binds)
        if isolated:
            binds[f"{INNER}/{cfg_name}"] = host / cfg_name
        # Plan first (it decides whether a uid of our own is possible), then write the config.
        plan = sandbox.plan_sandbox(argv, workdir=home, readonly_paths=ro, env=env, limits=limits,
                                    ro_binds=binds, uid=run_uid, use_bwrap=isolated)
        cfg["kill_strays"] = bool(plan.pid_namespace or plan.uid is not None)
        (host / cfg_name).write_text(json.dumps(cfg))
        (host / cfg_name).chmod(0o644)
        for w in plan.warnings:
            if w not in report.warnings:
                report.warnings.append(w)
        launch = _Launch(plan, home, limits, deadline, report.timings)
        if warm is not None:
            try:
                spawn = zygote_mod.write_spawn_file(host / f"spawn-{report.attempts}.json", uid=plan.launch["uid"],
                                                    rlimits=plan.launch["rlimits"], env=plan.launch["env"],
                                                    cwd=plan.launch["cwd"], argv=driver_argv)
                outcome, detail, tail = launch.warm(warm, spawn)
            except (zygote_mod.CannotJoin, zygote_mod.ZygoteError) as err:
                report.warnings.append(f"started cold: {err}")
                warm = None
                report.attempts -= 1
                (host / cfg_name).unlink()
                continue
        else:
            outcome, detail, tail = launch.cold()
        report.log_tail = tail
        if plan.uid is not None and not plan.pid_namespace:
            sandbox.kill_uid(plan.uid)
        data, problem = _read_report(home, REPORT_BYTES, attempt=report.attempts)
        if data is not None:
            report.kernel_log = data.get("kernel_log", "")[-4000:] if isinstance(data.get("kernel_log"), str) else ""
            _merge_timings(report.timings, data.get("timings"))
            for cell in data["cells"]:
                if cell["index"] in code_cells and cell["index"] >= start_cell:
                    results[cell["index"]] = _cell_result(cell, code_cells)
        if outcome == "timeout":
            current = data.get("current") if data else None
            if current in code_cells:
                results[current] = CellResult(current, code_cells[current], "timeout",
                                              reason="the notebook's time limit ran out during this cell",
                                              ename="NotebookTimeout")
            final_status = "timeout"
            final_reason = (f"the notebook ran over its {limits.wall_seconds:g} s wall-clock backstop; "
                            "the sandbox was killed")
            break
        if outcome == "disk_limit":
            final_status, final_reason = "disk_limit", detail
            current = data.get("current") if data else None
            if current in code_cells:
                results[current] = CellResult(current, code_cells[current], "kernel_died", reason=detail,
                                              ename="DiskLimit", evalue=detail)
            break
        if data is None:
            final_status = "crashed"
            last = _last_line(tail)
            final_reason = f"the sandbox ended without a usable report ({problem}; exit status {detail})" + (
                f": {last}" if last else "")
            break
        if data["finished"]:
            if data["deadline_hit"]:
                final_status = "timeout"
                final_reason = f"the notebook ran over its {limits.wall_seconds:g} s wall-clock backstop"
            elif data["cpu_exhausted"]:
                final_status = "timeout"
                final_reason = f"the notebook used its {limits.notebook_cpu_seconds:g} s of CPU time"
            break
        # The driver died while a cell ran (killed by the cell, most likely): record that cell
        # and relaunch a fresh sandbox after it, so the rest of the notebook is still graded.
        current = data.get("current")
        died = f"the sandbox's driver was killed while this cell ran (exit status {detail}; did the cell kill its parent process?)"
        if current in code_cells:
            results[current] = CellResult(current, code_cells[current], "kernel_died", reason=died,
                                          ename="DeadKernel", evalue=died)
        later = [i for i in code_cells if i > (current if current in code_cells else -1) and i not in results]
        if current not in code_cells or not later:
            if later or current not in code_cells:
                final_status = "crashed"
                errors = [e for e in data["events"] if e.startswith("driver error")]
                final_reason = (f"the sandbox died between cells (exit status {detail}) and was not relaunched"
                                + (f": {errors[-1]}" if errors else ""))
            break
        if report.attempts > int(limits.sandbox_restarts):
            final_status = "crashed"
            final_reason = f"the sandbox died {report.attempts} times; the remaining cells were not run"
            break
        if time.monotonic() >= deadline - 2:
            final_status = "timeout"
            final_reason = f"the notebook ran over its {limits.wall_seconds:g} s wall-clock backstop"
            break
        start_cell = min(later)

    for i, gid in code_cells.items():
        if i not in results:
            why_not = {"timeout": "not run: the notebook's time limit was reached",
                       "disk_limit": "not run: the sandbox was stopped (disk limit)"}.get(
                final_status, "not run: the sandbox died")
            results[i] = CellResult(i, gid, "skipped", reason=why_not)
    report.cells = [results[i] for i in sorted(results)]
    report.collected, report.rejected = _collect(home, collected_dir, limits)
    report.executed_notebook = _copy_executed(home, scratch / "executed.ipynb", len(raw), limits)
    report.status = final_status
    report.reason = final_reason + ("; " + _summary(report.cells) if final_reason else _summary(report.cells))
    report.isolated = isolated
    report.warm = warm is not None
    report.cpu_seconds = round(sum(c.cpu_seconds for c in report.cells), 3)
    report.seconds = round(time.monotonic() - t0, 3)
    return report


# The program of a warm run's holder sandbox: it only keeps the namespaces alive (the driver is
# forked into them by the zygote) until the host kills the sandbox. It is the namespace's pid 1
# (bwrap --as-pid-1): nothing inside can signal it (not even the driver's kill(-1) of strays),
# and it reaps the orphans that student code leaves behind.
HOLDER = "import os, signal\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)\nos.write(1, b'R')\nos.read(0, 1)\n"


def _warm_zygote(zygote, limits: Limits, env_extra) -> "Zygote | None":
    """The zygote to fork from, or None for a cold start (AUTOGRADER_ZYGOTE=0 forces that)."""
    if zygote is False or os.environ.get("AUTOGRADER_ZYGOTE", "").strip().lower() in ("0", "no", "false", "off"):
        return None
    if zygote is None:
        backend = (env_extra or {}).get("MPLBACKEND") or "module://matplotlib_inline.backend_inline"
        zygote = zygote_mod.shared(threads=int(limits.threads), mpl_backend=backend)
    return None if zygote.joinable is False else zygote


def _merge_timings(into: dict, timings) -> None:
    if not isinstance(timings, dict):
        return
    for key in ("driver_imports",):
        v = timings.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            into[key] = into.get(key, 0.0) + float(v)
    starts = timings.get("kernel_start")
    if isinstance(starts, list):
        into.setdefault("kernel_start", []).extend(float(x) for x in starts[:20] if isinstance(x, (int, float)))


# ------------------------------------------------------------------------------------------
# The submission
# ------------------------------------------------------------------------------------------
def _read_submission(path: Path) -> tuple[bytes | None, tuple[str, str]]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, ("missing", f"no notebook at {path.name}")
    except OSError as err:
        return None, ("missing", f"cannot read {path.name}: {err.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return None, ("missing", f"{path.name} is not a regular file")
    if st.st_size > MAX_NOTEBOOK_BYTES:
        return None, ("invalid_notebook", f"{path.name} is {st.st_size} bytes, over the "
                      f"{MAX_NOTEBOOK_BYTES} byte limit for a notebook")
    try:
        with open(path, "rb") as f:
            return f.read(MAX_NOTEBOOK_BYTES + 1), ("", "")
    except OSError as err:
        return None, ("missing", f"cannot read {path.name}: {err.strerror}")


def _parse_notebook(raw: bytes) -> tuple[dict | None, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, f"the notebook is not UTF-8 text (byte {err.start})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return None, f"the notebook is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
    except RecursionError:
        return None, "the notebook is not valid JSON: nested too deeply"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, "the file is JSON but not a notebook (no list of cells)"
    if data.get("nbformat") != 4:
        return None, f"unsupported notebook format {data.get('nbformat')!r} (expected nbformat 4)"
    for i, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return None, f"cell {i} of the notebook is malformed"
        src = cell.get("source")
        if not (isinstance(src, str) or (isinstance(src, list) and all(isinstance(s, str) for s in src))):
            return None, f"cell {i} of the notebook has no valid source"
    try:
        import nbformat

        nbformat.reads(text, as_version=4)
    except Exception as err:  # the driver reads it with nbformat too: refuse what it would refuse
        return None, f"the notebook cannot be read: {type(err).__name__}: {str(err)[:200]}"
    return data, ""


def _grade_id(cell: dict) -> str | None:
    meta = cell.get("metadata")
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
    return gid[:200] if isinstance(gid, str) else None


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)[:100].lstrip(".")
    return cleaned if cleaned.endswith(".ipynb") else (cleaned or "notebook") + ".ipynb"


def _course_files() -> list[Path]:
    """What of the course checkout the sandbox may read besides the packages: course.yml (for
    coursekit.config) and each lesson's public checks, ``lessons_src/<id>/<id>_checks.py``, file
    by file (the folders also hold the lesson's solutions and hidden judges, which stay out)."""
    import importlib.util

    spec = importlib.util.find_spec("coursekit")
    if not (spec and spec.submodule_search_locations):
        return []
    checkout = Path(list(spec.submodule_search_locations)[0]).parent
    files = [checkout / "course.yml"] if (checkout / "course.yml").is_file() else []
    return files + sorted(checkout.glob("lessons_src/[0-9]*/[0-9]*_checks.py"))


def _environment(home: str, limits: Limits, isolated: bool, data_dir) -> dict[str, str]:
    threads = str(int(limits.threads))
    env = {
        "HOME": home, "USER": "student", "LOGNAME": "student",
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.config/matplotlib",
        "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads, "VECLIB_MAXIMUM_THREADS": threads,
        "COURSE_COLLECT_DIR": f"{home}/collect",
        "TMPDIR": "/tmp" if isolated else f"{home}/.tmp",
        "JUPYTER_RUNTIME_DIR": f"{home}/.grader/runtime", "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_DATA_DIR": f"{home}/.local/share/jupyter", "JUPYTER_CONFIG_DIR": f"{home}/.jupyter",
        "IPYTHONDIR": f"{home}/.ipython",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    if data_dir is not None:
        env["MNIST_DATA_DIR"] = INNER_DATA if isolated else str(Path(os.path.abspath(data_dir)))
    return env


def _chown_tree(root: Path, uid: int) -> None:
    if os.geteuid() != 0:
        return
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, uid)
        for f in filenames:
            os.chown(os.path.join(dirpath, f), uid, uid)


# ------------------------------------------------------------------------------------------
# Supervising the sandbox
# ------------------------------------------------------------------------------------------
class _Tail:
    """Drain a pipe in a thread, keeping its last ``limit`` bytes (a flood costs CPU, not RAM)."""

    def __init__(self, stream, limit: int = 8192):
        self.limit, self.data = limit, b""
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        try:
            while chunk := stream.read1(1 << 16):
                self.data = (self.data + chunk)[-self.limit:]
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        self.thread.join(timeout=2)
        return self.data.decode("utf-8", errors="replace")


class _Launch:
    """One launch of the sandbox, supervised until its driver exits, the wall-clock backstop
    runs out, or it writes too much. ``cold()`` / ``warm()`` return (outcome, detail, output
    tail): outcome "exited" (detail: the driver's exit status), "timeout", "disk_limit"
    (detail: why)."""

    def __init__(self, plan: sandbox.SandboxPlan, home: Path, limits: Limits, deadline: float, timings: dict):
        self.plan, self.home, self.limits, self.deadline, self.timings = plan, home, limits, deadline, timings

    def cold(self) -> tuple[str, str, str]:
        """bwrap runs the launcher, which execs ``python -I _driver.py CONFIG``."""
        t = time.monotonic()
        proc = subprocess.Popen(self.plan.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        self.timings["sandbox_start"] = self.timings.get("sandbox_start", 0.0) + round(time.monotonic() - t, 3)
        tail = _Tail(proc.stdout)
        try:
            outcome, detail = self._watch(lambda timeout: _wait_proc(proc, timeout))
        finally:
            _kill_session(proc)
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
        tail = _Tail(os.fdopen(log_r, "rb"))
        spawned = None
        try:
            target = _holder_ready(proc, info_r, min(60.0, max(5.0, self.deadline - time.monotonic())))
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
            _kill_session(proc)
            if spawned is not None:
                spawned.close()
        return outcome, detail, tail.text()

    def _watch(self, wait) -> tuple[str, str]:
        """Poll ``wait(timeout)`` (the exit status, or None while running) against the clock and the disk."""
        next_disk = time.monotonic() + 1.0
        while True:
            code = wait(0.25)
            if code is not None:
                return "exited", str(code)
            now = time.monotonic()
            if now >= self.deadline:
                return "timeout", ""
            if now >= next_disk:
                over = _disk_over(self.home, self.limits)
                if over:
                    return "disk_limit", over
                next_disk = time.monotonic() + 1.0


def _wait_proc(proc: subprocess.Popen, timeout: float):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def _holder_ready(proc: subprocess.Popen, info_fd: int, timeout: float) -> int:
    """The host pid of the holder sandbox's init, once its mounts are in place (the holder said 'R')."""
    import select

    end = time.monotonic() + timeout
    info = b""
    while not info.rstrip().endswith(b"}"):
        ready, _, _ = select.select([info_fd], [], [], max(0.0, end - time.monotonic()))
        chunk = os.read(info_fd, 4096) if ready else b""
        if not chunk:
            raise zygote_mod.ZygoteError(f"the sandbox did not start: {_proc_error(proc)}")
        info += chunk
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))
    if not ready or proc.stdout.read(1) != b"R":
        raise zygote_mod.ZygoteError(f"the sandbox did not start: {_proc_error(proc)}")
    return int(json.loads(info)["child-pid"])


def _proc_error(proc: subprocess.Popen) -> str:
    _kill_session(proc)
    try:
        text = proc.stderr.read(4000).decode(errors="replace").strip()
    except (OSError, ValueError):
        text = ""
    return text.splitlines()[-1] if text else f"exit status {proc.returncode}"


def _kill_session(proc: subprocess.Popen) -> None:
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


def _disk_over(home: Path, limits: Limits) -> str:
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


# ------------------------------------------------------------------------------------------
# Reading what the sandbox left (all of it student-writable)
# ------------------------------------------------------------------------------------------
def _open_inside(base: Path, parts: Sequence[str]) -> int:
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


def _read_capped(base: Path, parts: Sequence[str], cap: int) -> bytes:
    fd = _open_inside(base, parts)
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_size > cap:
            raise OSError(f"larger than {cap} bytes")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise OSError(f"larger than {cap} bytes")
    return data


def _read_report(home: Path, cap: int, attempt: int) -> tuple[dict | None, str]:
    try:
        data = json.loads(_read_capped(home, [".grader", "report.json"], cap))
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


def _cell_result(c: dict, code_cells: dict[int, str | None]) -> CellResult:
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


def _collect(home: Path, dest: Path, limits: Limits) -> tuple[dict[str, Path], dict[str, str]]:
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
            data = _read_capped(home, ["collect", fname], limits.collect_bytes)
        except OSError as err:
            rejected[shown] = f"refused: {err.strerror or err}"
            continue
        target = dest / fname
        target.write_bytes(data)
        problem = _check_npz(target, limits.collect_bytes)
        if problem:
            target.unlink()
            rejected[shown] = problem
        else:
            collected[gid] = target
    return collected, rejected


def _check_npz(path: Path, cap: int) -> str:
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


def _copy_executed(home: Path, dest: Path, submitted_bytes: int, limits: Limits) -> Path | None:
    cap = 2 * submitted_bytes + 4 * int(limits.output_bytes) + (16 << 20)
    try:
        data = _read_capped(home, [".grader", "executed.ipynb"], cap)
        json.loads(data)
    except (OSError, ValueError, RecursionError):
        return None
    dest.write_bytes(data)
    return dest


def _summary(cells: list[CellResult]) -> str:
    ran = [c for c in cells if c.status != "skipped"]
    bad = [c for c in cells if c.status != "ok"]
    if not bad:
        dropped = sum(c.dropped_bytes for c in cells)
        note = f"; {dropped} bytes of output over the cap were dropped" if dropped else ""
        return f"all {len(cells)} code cells ran without error{note}"
    first = bad[0]
    where = f"cell {first.index}" + (f" ({first.grade_id})" if first.grade_id else "")
    return (f"{len(ran)} of {len(cells)} code cells ran, {len(bad)} with problems; first: "
            f"{where} {first.status}: {first.reason or first.ename or ''}").strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
