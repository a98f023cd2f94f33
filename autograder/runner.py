"""Run one student notebook in the sandbox, cell by cell, and collect what its checks saved.

``run_notebook`` is the host side, in named steps: read the submission without running anything
(``submission_file``), choose isolation and a warm start, lay out the scratch directory
(``_Box.prepare``), launch the sandbox and supervise it (``launch``) as many times as cells that
kill the driver require (``_run_cells``), then copy out, size-capped and validated, the collected
``.npz`` files and the executed notebook (``scratch``).

Trust: everything in the scratch directory was writable by student code; ``scratch`` reads it
(see there). Grades must come from judging the collected data, never from the driver's report.

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
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from .zygote import Zygote

from . import sandbox, scratch
from . import zygote as zygote_mod
from .launch import HOLDER, Launch
from .run_report import CellResult, RunReport, last_line, summary
from .sandbox import Limits, SANDBOX_HOME
from .submission_file import MAX_NOTEBOOK_BYTES, grade_id, parse_notebook, read_submission, safe_name

__all__ = ["CellResult", "RunReport", "run_notebook", "Cancel", "MAX_NOTEBOOK_BYTES"]

DRIVER = Path(__file__).with_name("_driver.py")
DRIVER_FILES = ("_driver.py", "_driver_cell.py", "_driver_kernel.py")   # the driver, its cells' and kernels' modules
INNER = "/opt/autograder"            # where the driver and its config appear inside bwrap
INNER_DATA = "/data"                 # where data_dir appears inside bwrap


class Cancel(threading.Event):
    """Set from another thread (``stop(why)``) to end a run at once: its sandbox is killed within
    a quarter of a second, nothing is launched again, and the report's status is "cancelled"."""

    why = "the run was cancelled"

    def stop(self, why: str) -> None:
        self.why = why
        self.set()


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
    cancel: "Cancel | None" = None,
) -> RunReport:
    """Execute ``notebook_path`` in a sandbox, cell by cell; never raises for student faults.

    scratch_dir: a new or empty directory for this run (see the module docstring).
    env_extra: added to (and overriding) the sandbox environment.
    data_dir: bound read-only inside; ``MNIST_DATA_DIR`` points at it.
    readonly_paths: the runtime; default ``sandbox.runtime_paths()`` (interpreter, coursekit,
        mnist_cnn, course.yml, the lessons' public checks).
    use_bwrap: None: bwrap when it works, else the loudly warned fallback; False: force the
        fallback; True: bwrap or RuntimeError.
    uid: the unprivileged uid to run as (root hosts); default ``sandbox.allocate_uid()``.
    zygote: the warm interpreter to fork the driver from (``autograder.zygote``); None: this
        process's shared one; False: start the driver cold (as the fallback always does).
    cancel: a ``Cancel`` another thread may set to stop the run (status "cancelled").
    """
    t0 = time.monotonic()
    root = _fresh_scratch(scratch_dir)
    report = RunReport(status="ok", reason="")
    # 1. the submission, read and parsed without running anything
    raw, problem = read_submission(Path(notebook_path))
    nb, invalid = parse_notebook(raw) if raw is not None else (None, "")
    if nb is None:
        report.status, report.reason = problem if raw is None else ("invalid_notebook", invalid)
        report.seconds = round(time.monotonic() - t0, 3)
        return report
    # 2. isolation (bwrap, or the loudly warned fallback) and a warm start where possible
    isolated = _isolation(use_bwrap)
    warm = _warm_zygote(zygote, limits, env_extra) if isolated else None
    # 3. the scratch directory and what the sandbox sees
    box = _Box.prepare(root, Path(notebook_path).name, raw, nb, limits=limits, isolated=isolated,
                       uid=uid if uid is not None else sandbox.allocate_uid(), data_dir=data_dir,
                       env_extra=env_extra, readonly_paths=readonly_paths, deadline=t0 + float(limits.wall_seconds))
    # 4. launch, and relaunch after a cell that killed the driver
    status, reason, warm = _run_cells(box, report, warm, cancel)
    # 5. what the run left: cells never reached, the collected data, the executed notebook
    _finish(box, report, status, reason, len(raw))
    report.isolated, report.warm = isolated, warm is not None
    report.seconds = round(time.monotonic() - t0, 3)
    return report


def _fresh_scratch(scratch_dir) -> Path:
    root = Path(os.path.abspath(scratch_dir))
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"scratch_dir {root} is not empty")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _isolation(use_bwrap: bool | None) -> bool:
    """Whether this run is isolated by bwrap; RuntimeError when bwrap was demanded but does not work."""
    why: list[str] = []
    isolated = sandbox.bwrap_available(why=why) if use_bwrap is None else bool(use_bwrap)
    if use_bwrap and not sandbox.bwrap_available(why=why):
        raise RuntimeError(f"bwrap requested but not usable: {'; '.join(why)}")
    if not isolated:
        sandbox.warn_not_isolated("; ".join(why) if use_bwrap is None else "fallback forced")
    return isolated


@dataclass
class _Box:
    """One run's scratch directory, environment and mounts (see the module docstring)."""

    root: Path
    home: Path
    host: Path
    limits: Limits
    isolated: bool
    uid: int
    env: dict
    readonly: list
    binds: dict                                   # inside path -> host file, read-only
    code_cells: dict                              # cell index -> grade_id (None: ungraded)
    deadline: float                               # time.monotonic() of the wall-clock backstop
    results: dict = field(default_factory=dict)   # cell index -> CellResult

    @property
    def inner_home(self) -> str:
        return SANDBOX_HOME if self.isolated else str(self.home)

    @property
    def inner_host(self) -> str:
        return INNER if self.isolated else str(self.host)

    @classmethod
    def prepare(cls, root: Path, name: str, raw: bytes, nb: dict, *, limits: Limits, isolated: bool, uid: int,
                data_dir, env_extra, readonly_paths, deadline: float) -> "_Box":
        """Lay out ``root`` (0711, so a fallback uid reaches home/ and host/ by name only)."""
        os.chmod(root, 0o711)
        home, host, collected = root / "home", root / "host", root / "collected"
        for d in (home, host, collected):
            d.mkdir()
        os.chmod(host, 0o711)
        os.chmod(collected, 0o700)
        (host / "submission.ipynb").write_bytes(raw)
        (home / safe_name(name)).write_bytes(raw)
        (home / "collect").mkdir()
        (home / ".grader").mkdir()
        for name_ in DRIVER_FILES:
            shutil.copyfile(DRIVER.with_name(name_), host / name_)
        for f in (host / "submission.ipynb", *(host / n for n in DRIVER_FILES)):
            f.chmod(0o644)
        ro = list(readonly_paths) if readonly_paths is not None else sandbox.runtime_paths(files=_course_files())
        env = _environment(SANDBOX_HOME if isolated else str(home), limits, isolated, data_dir)
        env.update(env_extra or {})
        binds: dict[str, Path] = {}
        if isolated:
            binds.update(sandbox.identity_files(host / "etc", uid, uid))
            binds.update({f"{INNER}/{n}": host / n for n in DRIVER_FILES})
            binds[f"{INNER}/submission.ipynb"] = host / "submission.ipynb"
            if data_dir is not None:
                binds[INNER_DATA] = Path(os.path.abspath(data_dir))
        else:
            (home / ".tmp").mkdir()
        _chown_tree(home, uid)
        code_cells = {i: grade_id(c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"}
        return cls(root, home, host, limits, isolated, uid, env, ro, binds, code_cells, deadline)

    def driver_config(self, start_cell: int, attempt: int) -> dict:
        """What the driver of launch ``attempt`` runs: from ``start_cell``, within what is left of the limits."""
        lim = self.limits
        return {
            "notebook": f"{self.inner_host}/submission.ipynb", "home": self.inner_home,
            "collect_dir": self.env["COURSE_COLLECT_DIR"], "grader_dir": f"{self.inner_home}/.grader",
            "runtime_dir": self.env["JUPYTER_RUNTIME_DIR"], "start_cell": start_cell, "attempt": attempt,
            "deadline_seconds": max(1.0, self.deadline - time.monotonic() - 3.0),
            "cell_cpu_seconds": float(lim.cell_cpu_seconds), "notebook_cpu_seconds": float(lim.notebook_cpu_seconds),
            "cpu_used": sum(c.cpu_seconds for c in self.results.values()),
            "wall_factor": float(lim.wall_factor), "interrupt_grace_seconds": float(lim.interrupt_grace_seconds),
            "kernel_start_seconds": float(lim.kernel_start_seconds), "kernel_restarts": int(lim.kernel_restarts),
            "output_bytes": int(lim.output_bytes), "cell_output_bytes": int(lim.cell_output_bytes),
            "memory_bytes": int(lim.memory_bytes), "max_message_bytes": max(16 << 20, 4 * int(lim.cell_output_bytes)),
            "kill_strays": True,  # decided once the plan is known
            "sys_path": [str(sandbox.course_root() or "")],   # a cold driver imports the course from here
            "announce_course": attempt == 1,             # RunReport.course
        }

    def mark(self, index, status: str, reason: str, ename: str, evalue: str | None = None) -> None:
        """Record what happened to code cell ``index`` (if it is one) from the host's side."""
        if index in self.code_cells:
            self.results[index] = CellResult(index, self.code_cells[index], status, reason=reason,
                                             ename=ename, evalue=evalue)


def _launch_once(box: _Box, report: RunReport, warm, start_cell: int, cancel=None):
    """Plan, configure and run one launch; returns (outcome, detail, tail) or None when the zygote
    cannot join this host's sandboxes (the caller goes on cold)."""
    attempt = report.attempts
    cfg = box.driver_config(start_cell, attempt)
    cfg_name = f"config-{attempt}.json"
    driver_argv = [f"{box.inner_host}/_driver.py", f"{box.inner_host}/{cfg_name}"]
    argv = [sys.executable, "-I", *driver_argv] if warm is None else [sys.executable, "-I", "-S", "-c", HOLDER]
    binds = dict(box.binds)
    if box.isolated:
        binds[f"{INNER}/{cfg_name}"] = box.host / cfg_name
    # Plan first (it decides whether a uid of our own is possible), then write the config.
    plan = sandbox.plan_sandbox(argv, workdir=box.home, readonly_paths=box.readonly, env=box.env,
                                limits=box.limits, ro_binds=binds, uid=box.uid, use_bwrap=box.isolated)
    cfg["kill_strays"] = bool(plan.pid_namespace or plan.uid is not None)
    (box.host / cfg_name).write_text(json.dumps(cfg))
    (box.host / cfg_name).chmod(0o644)
    for w in plan.warnings:
        if w not in report.warnings:
            report.warnings.append(w)
    launch = Launch(plan, box.home, box.limits, box.deadline, report.timings, cancel)
    if warm is None:
        result = launch.cold()
    else:
        try:
            spawn = zygote_mod.write_spawn_file(box.host / f"spawn-{attempt}.json", uid=plan.launch["uid"],
                                                rlimits=plan.launch["rlimits"], env=plan.launch["env"],
                                                cwd=plan.launch["cwd"], argv=driver_argv)
            result = launch.warm(warm, spawn)
        except (zygote_mod.CannotJoin, zygote_mod.ZygoteError) as err:
            report.warnings.append(f"started cold: {err}")
            (box.host / cfg_name).unlink()
            return None
    if plan.uid is not None and not plan.pid_namespace:
        sandbox.kill_uid(plan.uid)
    if attempt == 1:
        report.course = course_said(launch.head)
    return result


def _run_cells(box: _Box, report: RunReport, warm, cancel=None):
    """Launch until every cell was attempted or the run must stop; returns (status, reason, warm)."""
    start_cell = 0
    while True:
        if cancel is not None and cancel.is_set():
            return "cancelled", cancel.why, warm
        report.attempts += 1
        launched = _launch_once(box, report, warm, start_cell, cancel)
        if launched is None:              # the zygote cannot join here: the same launch, cold
            warm = None
            report.attempts -= 1
            continue
        outcome, detail, tail = launched
        report.log_tail = tail
        data, problem = scratch.read_report(box.home, scratch.REPORT_BYTES, attempt=report.attempts)
        if data is not None:
            _record(box, report, data, start_cell)
        status, reason, start_cell = _after_launch(box, report, outcome, detail, tail, data, problem)
        if start_cell is None:
            return status, reason, warm


def _record(box: _Box, report: RunReport, data: dict, start_cell: int) -> None:
    """Take the cells the driver ran (from ``start_cell`` on) and its timings from its report."""
    report.kernel_log = data["kernel_log"][-4000:]
    _merge_timings(report.timings, data.get("timings"))
    for cell in data["cells"]:
        if cell["index"] in box.code_cells and cell["index"] >= start_cell:
            box.results[cell["index"]] = scratch.cell_result(cell, box.code_cells)


def _after_launch(box: _Box, report: RunReport, outcome: str, detail: str, tail: str, data, problem: str):
    """What a launch's end means: (status, reason, None) to stop, or ("ok", "", next cell) to relaunch
    a fresh sandbox after a cell that killed the driver, so the rest of the notebook is still graded."""
    lim, current = box.limits, (data or {}).get("current")
    backstop = f"the notebook ran over its {lim.wall_seconds:g} s wall-clock backstop"
    if outcome == "cancelled":
        return "cancelled", "the run was cancelled by the grader", None
    if outcome == "timeout":
        box.mark(current, "timeout", "the notebook's time limit ran out during this cell", "NotebookTimeout")
        return "timeout", backstop + "; the sandbox was killed", None
    if outcome == "disk_limit":
        box.mark(current, "kernel_died", detail, "DiskLimit", detail)
        return "disk_limit", detail, None
    if data is None:
        last = last_line(tail)
        return "crashed", (f"the sandbox ended without a usable report ({problem}; exit status {detail})"
                           + (f": {last}" if last else "")), None
    if data["finished"]:
        if data["deadline_hit"]:
            return "timeout", backstop, None
        if data["cpu_exhausted"]:
            return "timeout", f"the notebook used its {lim.notebook_cpu_seconds:g} s of CPU time", None
        return "ok", "", None
    died = (f"the sandbox's driver was killed while this cell ran (exit status {detail}; "
            "did the cell kill its parent process?)")
    box.mark(current, "kernel_died", died, "DeadKernel", died)
    after = current if current in box.code_cells else -1
    later = [i for i in box.code_cells if i > after and i not in box.results]
    if current not in box.code_cells or not later:
        if later or current not in box.code_cells:
            errors = [e for e in data["events"] if e.startswith("driver error")]
            return "crashed", (f"the sandbox died between cells (exit status {detail}) and was not relaunched"
                               + (f": {errors[-1]}" if errors else "")), None
        return "ok", "", None
    if report.attempts > int(lim.sandbox_restarts):
        return "crashed", f"the sandbox died {report.attempts} times; the remaining cells were not run", None
    if time.monotonic() >= box.deadline - 2:
        return "timeout", backstop, None
    return "ok", "", min(later)


def _finish(box: _Box, report: RunReport, status: str, reason: str, submitted_bytes: int) -> None:
    """Cells never reached, the collected data and the executed notebook, the summary."""
    why_not = {"timeout": "not run: the notebook's time limit was reached",
               "disk_limit": "not run: the sandbox was stopped (disk limit)",
               "cancelled": "not run: the run was cancelled"}.get(status, "not run: the sandbox died")
    for i, gid in box.code_cells.items():
        box.results.setdefault(i, CellResult(i, gid, "skipped", reason=why_not))
    report.cells = [box.results[i] for i in sorted(box.results)]
    report.collected, report.rejected = scratch.collect(box.home, box.root / "collected", box.limits)
    report.executed_notebook = scratch.copy_executed(box.home, box.root / "executed.ipynb", submitted_bytes, box.limits)
    report.status = status
    report.reason = (reason + "; " if reason else "") + summary(report.cells)
    report.cpu_seconds = round(sum(c.cpu_seconds for c in report.cells), 3)


def _warm_zygote(zygote, limits: Limits, env_extra) -> "Zygote | None":
    """The zygote to fork from, or None for a cold start (AUTOGRADER_ZYGOTE=0 forces that)."""
    if zygote is False or os.environ.get("AUTOGRADER_ZYGOTE", "").strip().lower() in ("0", "no", "false", "off"):
        return None
    if zygote is None:
        backend = (env_extra or {}).get("MPLBACKEND") or "module://matplotlib_inline.backend_inline"
        zygote = zygote_mod.shared(threads=int(limits.threads), mpl_backend=backend)
    return None if zygote.joinable is False or zygote.failed else zygote


def course_said(head: str) -> dict | None:
    """The driver's first line (``_driver.announce_course``), or None where it is missing or garbled.
    Written before any student code ran: the one line of the sandbox's output the grader trusts."""
    from ._driver import COURSE_LINE

    first = head.split("\n", 1)[0]
    if not first.startswith(COURSE_LINE):
        return None
    try:
        said = json.loads(first[len(COURSE_LINE):])
    except ValueError:
        return None
    return said if isinstance(said, dict) else None


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


def _course_files() -> list[Path]:
    """What of the course checkout the sandbox may read besides the packages: course.yml (for
    coursekit.config) and each lesson's public checks (``coursekit.checks.public_check_sources``),
    path by path: the lesson folders also hold the solutions and hidden judges, which stay out."""
    checkout = sandbox.course_root()
    if checkout is None:
        return []
    from coursekit.checks.registry import public_check_sources

    files = [checkout / "course.yml"] if (checkout / "course.yml").is_file() else []
    return files + public_check_sources(checkout / "lessons_src")


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


