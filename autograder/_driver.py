"""Runs INSIDE the sandbox: execute one notebook cell by cell in IPython kernels forked from itself.

    python -I _driver.py CONFIG.json          (cold: started by the launcher, imports first)
    _driver.main([..., CONFIG.json])           (warm: forked from autograder.zygote, imports done)

Started by ``autograder.runner`` (never imported by the host's grading code, only by the
zygote, which never runs student code). The driver, its kernels and their ZMQ sockets all
live in the sandbox. Each kernel is a ``fork`` of this process that becomes an IPython kernel
in place, so it starts with torch, numpy, matplotlib and IPython already imported (``WARM``)
and is ready in a fraction of a second; a kernel that died is replaced the same way.

Per code cell: send it to the kernel, collect its outputs (capped), wait for its reply within
the cell's CPU-time limit (the kernel's own CPU seconds, so a busy machine does not cost the
student points; wall time is only a generous backstop, ``wall_factor`` times the CPU limit);
past the limit interrupt the kernel and, if it stays busy, kill it; when the kernel dies
(``os._exit``, a segfault, a memory or CPU rlimit, ``exit()``), record why, start a fresh
kernel and go on with the next cell. After every cell the report (JSON) and the executed
notebook are rewritten atomically, so a driver killed by student code still leaves its
progress behind for the host, which relaunches it after the fatal cell.

The student's code runs with the same uid as this driver, so it can tamper with everything
written here: the host treats the report as information, never as grades.

Uses jupyter_client directly (what nbclient is built on) rather than nbclient's executor: the
executor cannot cap output while it arrives, and on a timeout or a dead kernel it leaves its
polling tasks behind, which makes carrying on in the same process unreliable.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


try:    # imported as autograder._driver (by the zygote: warm starts; by tests)
    from ._driver_cell import Caps, CellRun, add_output
    from ._driver_kernel import WARM, Kernel, atomic_write, short, warm_up  # noqa: F401 (WARM: the zygote's)
except ImportError:   # run as a script inside the sandbox (cold starts): the modules lie next to it
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _driver_cell import Caps, CellRun, add_output
    from _driver_kernel import WARM, Kernel, atomic_write, short, warm_up  # noqa: F401

REPORT_VERSION = 2
COURSE_LINE = "[grader] course "     # the first line of the driver's output: see announce_course


# ------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------
class Driver:
    def __init__(self, cfg, warm_backend):
        import nbformat

        self.cfg = cfg
        self.nbformat = nbformat
        self.warm_backend = warm_backend
        self.t0 = time.monotonic()
        self.deadline = self.t0 + float(cfg["deadline_seconds"])
        self.wall_factor = float(cfg.get("wall_factor", 4.0))
        self.cpu_left = float(cfg["notebook_cpu_seconds"]) - float(cfg.get("cpu_used", 0.0))
        self.grader_dir = Path(cfg["grader_dir"])
        self.grader_dir.mkdir(parents=True, exist_ok=True)
        Path(cfg["collect_dir"]).mkdir(parents=True, exist_ok=True)
        self.report_path = self.grader_dir / "report.json"
        self.executed_path = self.grader_dir / "executed.ipynb"
        self.nb = nbformat.read(cfg["notebook"], as_version=4)
        self._adopt_previous_outputs()
        self.kernel = None
        self.kernels_started = 0
        self.kernel_log = ""
        self.output_left = int(cfg["output_bytes"])
        self.report = {"version": REPORT_VERSION, "attempt": cfg["attempt"], "start_cell": cfg["start_cell"],
                       "finished": False, "deadline_hit": False, "cpu_exhausted": False, "current": None,
                       "cells": [], "events": [], "kernel_log": "", "timings": {}}

    def _adopt_previous_outputs(self):
        """On a relaunch, keep the outputs of the cells the previous attempt already ran."""
        if not self.cfg["start_cell"] or not self.executed_path.exists():
            return
        try:
            prev = self.nbformat.read(str(self.executed_path), as_version=4)
        except Exception:  # noqa: BLE001
            return
        if len(prev.cells) != len(self.nb.cells):
            return
        for i in range(min(self.cfg["start_cell"], len(self.nb.cells))):
            if self.nb.cells[i].cell_type == "code" and prev.cells[i].cell_type == "code":
                self.nb.cells[i].outputs = prev.cells[i].get("outputs", [])
                self.nb.cells[i].execution_count = prev.cells[i].get("execution_count")

    # ------------------------------------------------------------------ bookkeeping
    def save(self):
        if self.kernel is not None:
            self.kernel_log = self.kernel.log_tail() or self.kernel_log
        self.report["kernel_log"] = self.kernel_log
        atomic_write(self.report_path, json.dumps(self.report))
        try:
            atomic_write(self.executed_path, self.nbformat.writes(self.nb))
        except Exception as err:  # noqa: BLE001  (an odd output must not take the report down with it)
            self.event(f"could not write the executed notebook: {type(err).__name__}: {err}")

    def event(self, text):
        self.report["events"].append(short(text))

    # ------------------------------------------------------------------ kernels
    def ensure_kernel(self):
        """A live kernel, or a reason why there is none."""
        if self.kernel is not None and self.kernel.alive():
            return None
        if self.kernel is not None:
            self.kill_kernel()
        if self.kernels_started > int(self.cfg["kernel_restarts"]):
            return f"not run: {self.kernels_started} kernels died or were killed (the restart limit)"
        self.kernels_started += 1
        started = time.monotonic()
        try:
            self.kernel = Kernel(self.cfg, self.kernels_started, self.warm_backend)
        except Exception as err:  # noqa: BLE001
            self.kernel = None
            return f"not run: the kernel could not start ({type(err).__name__}: {short(err, 200)})"
        timeout = min(float(self.cfg["kernel_start_seconds"]), max(1.0, self.deadline - time.monotonic()))
        if not self.kernel.wait_ready(timeout):
            reason = self.kernel.death_reason() if not self.kernel.alive() else "the kernel did not start in time"
            log = self.kernel.log_tail().strip().splitlines()
            self.kill_kernel()
            return f"not run: {reason}" + (f" ({short(log[-1], 200)})" if log else "")
        took = round(time.monotonic() - started, 3)
        self.report["timings"].setdefault("kernel_start", []).append(took)
        self.event(f"kernel {self.kernels_started} ready in {took:.2f} s")
        return None

    def kill_kernel(self):
        if self.kernel is not None:
            self.kernel_log = self.kernel.log_tail() or self.kernel_log
            self.kernel.kill(self.cfg["kill_strays"])
            self.kernel = None

    # ------------------------------------------------------------------ cells
    def run(self):
        start = int(self.cfg["start_cell"])
        code_cells = [i for i, c in enumerate(self.nb.cells) if c.cell_type == "code"]
        self.save()
        for idx in code_cells:
            if idx < start:
                continue
            cell = self.nb.cells[idx]
            record = {"index": idx, "grade_id": grade_id(cell), "status": "skipped", "ename": None,
                      "evalue": None, "reason": "", "seconds": 0.0, "cpu_seconds": 0.0,
                      "output_bytes": 0, "dropped_bytes": 0}
            self.report["cells"].append(record)
            if not cell.source.strip():
                record.update(status="ok", reason="empty cell")
                continue
            if time.monotonic() >= self.deadline - 1:
                record["reason"] = "not run: the notebook's time limit was reached"
                self.report["deadline_hit"] = True
                self.save()
                continue
            if self.cpu_left <= 0:
                record["reason"] = (f"not run: the notebook used its {float(self.cfg['notebook_cpu_seconds']):g} s "
                                    "of CPU time")
                self.report["cpu_exhausted"] = True
                self.save()
                continue
            problem = self.ensure_kernel()
            if problem:
                record["reason"] = problem
                self.save()
                continue
            self.report["current"] = idx
            self.save()
            self.run_cell(cell, record)
            self.cpu_left -= record["cpu_seconds"]
            self.report["current"] = None
            self.save()
        self.kill_kernel()
        self.report["finished"] = True
        self.report["seconds"] = round(time.monotonic() - self.t0, 3)
        self.save()

    def _limits(self, t_start):
        """(CPU-seconds limit, wall-clock end, what to say when it is hit) for the cell starting now."""
        cell_cpu = float(self.cfg["cell_cpu_seconds"])
        cpu = min(cell_cpu, max(0.5, self.cpu_left))
        by_notebook = cpu < cell_cpu
        wall_end = min(t_start + self.wall_factor * cpu + 5.0, self.deadline - 1)
        what = (f"the notebook's CPU time ran out during this cell ({float(self.cfg['notebook_cpu_seconds']):g} s)"
                if by_notebook else f"the cell used more than its {cpu:g} s of CPU time")
        return cpu, max(t_start + 0.5, wall_end), what

    def run_cell(self, cell, record):
        """Execute one cell in the kernel within its CPU, wall-clock and output limits; fills
        ``cell.outputs`` and ``record`` (status, reason, ename/evalue, cpu_seconds, seconds)."""
        kernel = self.kernel
        t_start = time.monotonic()
        cpu_limit, wall_end, what = self._limits(t_start)
        run = CellRun(t_start, kernel.cpu_seconds(), cpu_limit, wall_end, what,
                      Caps(min(int(self.cfg["cell_output_bytes"]), max(0, self.output_left))))
        cell.outputs = []
        cell.execution_count = None
        run.msg_id = kernel.kc.execute(cell.source, store_history=True, allow_stdin=False, stop_on_error=False)
        while not self._cell_over(cell, record, run):
            pass
        record["cpu_seconds"] = round(max(0.0, kernel.cpu_seconds() - run.cpu0), 3)
        self._finish_cell(cell, record, run.reply, kernel, run.iopub_lost, run.cap, run.interrupted is not None)
        record["seconds"] = round(time.monotonic() - t_start, 3)

    def _cell_over(self, cell, record, run) -> bool:
        """One round of watching a running cell: the kernel's health, the limits, the messages."""
        kernel = self.kernel
        now = time.monotonic()
        if run.reply is not None and (run.idle or now - (run.reply_at or now) > (0.5 if run.iopub_lost else 4.0)):
            return True
        if kernel.iopub_lost():
            kernel.wait(0.3)   # a dying kernel drops its connections too: that is not an oversize message
            if not kernel.alive():
                return False
            run.iopub_lost = True
            kernel.reopen_iopub()
            self.event(f"cell {record['index']}: an output message over {self.cfg['max_message_bytes']} bytes was dropped")
        if not kernel.alive():
            record.update(status="kernel_died", reason=kernel.death_reason())
            return True
        if now >= run.next_cpu_read:
            run.used = kernel.cpu_seconds() - run.cpu0
            run.next_cpu_read = now + 0.1
        if run.interrupted is None and (run.used >= run.cpu_limit or now >= run.wall_end):
            self._interrupt(record, run, now)
            return False
        if run.interrupted is not None and (run.used - run.interrupted[0] >= float(self.cfg["interrupt_grace_seconds"])
                                            or now - run.interrupted[1] >= float(self.cfg["interrupt_grace_seconds"])
                                            * self.wall_factor):
            record.update(status="timeout",
                          reason=f"{run.what} and it did not stop when interrupted; the kernel was killed "
                                 "(later cells run in a fresh kernel)")
            self.kill_kernel()
            return True
        self._receive(cell, record, run)
        return False

    def _interrupt(self, record, run, now) -> None:
        """The cell is over its CPU time (or the wall-clock backstop): interrupt it, say why."""
        if now >= run.wall_end and run.used < run.cpu_limit:
            run.what = (f"the cell ran for {now - run.t_start:.0f} s of wall-clock time (the backstop) with "
                        f"{run.used:.1f} s of CPU time: waiting for something that never came?")
        if now >= self.deadline - 1.5:
            self.report["deadline_hit"] = True
        self.kernel.interrupt()
        run.interrupted = (run.used, now)
        record.update(status="timeout", reason=f"{run.what}; it was interrupted")

    def _receive(self, cell, record, run) -> None:
        """Take what the kernel sent for this cell: the reply, the outputs, the state."""
        kc = self.kernel.kc
        got = False
        for chan in (kc.iopub_channel, kc.shell_channel):
            try:
                msg = chan.get_msg(timeout=0 if got else 0.05)
            except Exception:  # noqa: BLE001
                continue
            got = True
            if msg.get("parent_header", {}).get("msg_id") != run.msg_id:
                continue
            if chan is kc.shell_channel:
                if msg.get("msg_type") == "execute_reply":
                    run.reply, run.reply_at = msg.get("content", {}), time.monotonic()
                continue
            mtype = msg.get("msg_type")
            content = msg.get("content", {})
            if mtype == "status":
                if content.get("execution_state") == "idle":
                    run.idle = True
            elif mtype == "execute_input":
                cell.execution_count = content.get("execution_count")
            elif mtype == "clear_output":
                if content.get("wait"):
                    run.clear_pending = True
                else:
                    cell.outputs = []
            elif mtype in ("stream", "display_data", "execute_result", "error"):
                if run.clear_pending:
                    cell.outputs, run.clear_pending = [], False
                add_output(self.nbformat, cell, msg, run.cap)
                if mtype == "error":
                    record["ename"] = short(content.get("ename", ""), 100)
                    record["evalue"] = short(content.get("evalue", ""))

    def _finish_cell(self, cell, record, reply, kernel, iopub_lost, cap, interrupted):
        if iopub_lost:
            cell.outputs.append(self.nbformat.v4.new_output(
                "stream", name="stderr", text=f"\n[grader: an output message over "
                f"{self.cfg['max_message_bytes']} bytes was dropped, with what followed it in this cell]\n"))
            record["dropped_bytes"] += int(self.cfg["max_message_bytes"])
            if self.kernel is not None and self.kernel.alive():
                self.kernel.wait_ready(5.0)  # the new iopub socket is connected before the next cell
        record["output_bytes"] = cap.kept
        record["dropped_bytes"] += cap.dropped
        self.output_left -= cap.kept
        if cap.dropped:
            cell.outputs.append(self.nbformat.v4.new_output(
                "stream", name="stderr",
                text=f"\n[grader: {cap.dropped} more bytes of output were not kept]\n"))
        if record["status"] == "skipped":  # finished normally
            status = (reply or {}).get("status", "ok")
            if status == "error" or record["ename"]:
                record["status"] = "error"
                record["ename"] = record["ename"] or short((reply or {}).get("ename", ""), 100)
                record["evalue"] = record["evalue"] or short((reply or {}).get("evalue", ""))
                record["reason"] = f"{record['ename']}: {record['evalue']}".rstrip(": ")
                if record["ename"] == "MemoryError":
                    record["reason"] += f" (the memory limit is {int(self.cfg['memory_bytes']) >> 20} MiB per process)"
            elif status == "aborted":
                record.update(status="error", reason="the kernel aborted the cell")
            else:
                record["status"] = "ok"
            payload = (reply or {}).get("payload") or []
            if any(isinstance(p, dict) and p.get("source") == "ask_exit" for p in payload):
                kernel.wait(5)      # exit()/quit(): the kernel shuts itself down after answering
            if not kernel.alive():
                record.update(status="kernel_died", reason=kernel.death_reason())
        elif record["status"] == "timeout" and self.kernel is not None and interrupted:
            record["ename"] = record["ename"] or "CellTimeout"
            record["evalue"] = record["evalue"] or record["reason"]
        if record["status"] == "kernel_died":
            record["ename"], record["evalue"] = "DeadKernel", record["reason"]
            self.kill_kernel()
        if record["dropped_bytes"] and record["status"] == "ok":
            record["reason"] = (f"output truncated: {record['dropped_bytes']} bytes over the cap were dropped"
                                if not iopub_lost else "output truncated: an output message over "
                                f"{self.cfg['max_message_bytes']} bytes was dropped")


def grade_id(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return short(gid, 200) if isinstance(gid, str) else None


def announce_course() -> None:
    """Write, as the first line of the driver's output and before any student code exists, which
    course this sandbox imports and the checks it knows: ``COURSE_LINE {"course": folder,
    "checks": [ids]}`` (or ``{"error": why}``). The grader compares them with the master's, so a
    sandbox that cannot find a check is the grader's error, never a student's zero. Done in a
    forked child: the driver's own state (and so every kernel's) stays as it was."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        import contextlib
        import io

        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                import coursekit
                from coursekit import checks

                checks.load_public()
            said = {"course": os.path.dirname(os.path.dirname(os.path.abspath(coursekit.__file__))),
                    "checks": sorted(checks.REGISTRY)}
        except BaseException as err:  # noqa: BLE001
            said = {"error": f"{type(err).__name__}: {err}"[:500]}
        os.write(1, (COURSE_LINE + json.dumps(said) + "\n").encode())
        os._exit(0)
    os.waitpid(pid, 0)


def main(argv, *, warm_backend=None, warm_seconds=None):
    """Run the notebook of the config file ``argv[1]``; 0 when the driver finished.

    warm_backend: the MPLBACKEND matplotlib was imported with (a warm start from the zygote);
    None: a cold start. A cold driver stays light (its CPU rlimit is the students'); its
    kernels, forked from it, import what the notebook imports, as a fresh interpreter would.
    """
    with open(argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    # The course the grader mounted, before whatever else the interpreter would find (a venv's
    # editable install of another checkout): the zygote did the same before its imports.
    for path in reversed([p for p in cfg.get("sys_path", []) if p]):
        if path not in sys.path:
            sys.path.insert(0, path)
    if cfg.get("announce_course"):
        announce_course()
    started = time.monotonic()
    took = {}
    if warm_backend is None:
        sys.modules.setdefault("rfc3987_syntax", None)      # see warm_up()
        import jupyter_client.blocking  # noqa: F401
        import nbformat  # noqa: F401

        warm_backend = os.environ.get("MPLBACKEND")
        warm_seconds = round(time.monotonic() - started, 3)
    # SIGINT keeps its default here: an ignored SIGINT would be inherited by the kernel, which
    # then could not be interrupted. Interrupts go to the kernel's own session only.
    driver = Driver(cfg, warm_backend)
    driver.report["timings"]["driver_imports"] = warm_seconds or 0.0
    if took:
        driver.report["timings"]["slow_imports"] = took
    try:
        driver.run()
    except BaseException as err:
        driver.event(f"driver error: {type(err).__name__}: {err}")
        try:
            driver.kill_kernel()
            driver.save()
        except Exception:  # noqa: BLE001
            pass
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
