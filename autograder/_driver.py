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
import re
import signal
import sys
import time
from pathlib import Path

REPORT_VERSION = 2
EVALUE_CHARS = 500
TRACEBACK_CHARS = 8000
KERNEL_LOG_TAIL = 4000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# What a kernel starts with already imported: what the lessons import, and what an IPython
# kernel imports to start. Imported once per zygote (warm) or per driver (cold), before any
# student code exists in the process; never anything of the grader's (mnist_cnn, autograder).
WARM = (
    "numpy", "torch", "torch.nn", "torch.nn.functional", "torch.utils.data", "torch.optim",
    "matplotlib", "matplotlib.pyplot", "matplotlib.font_manager", "matplotlib.backends.backend_agg",
    "PIL.PngImagePlugin", "IPython", "IPython.core.pylabtools", "IPython.core.completer",
    "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
    "ipykernel.comm", "ipykernel.heartbeat", "ipykernel.iostream", "ipykernel.eventloops", "pdb",
    "jupyter_client", "jupyter_client.blocking", "jupyter_client.connect", "zmq", "nbformat",
    "coursekit", "coursekit.data", "coursekit.plots", "coursekit.checks",
)

SIGNAL_REASONS = {
    signal.SIGSEGV: "segmentation fault (SIGSEGV)",
    signal.SIGBUS: "bus error (SIGBUS)",
    signal.SIGABRT: "aborted (SIGABRT; often a failed allocation in C/C++ code: the memory limit)",
    signal.SIGKILL: "killed (SIGKILL: the CPU time limit, or killed by another process)",
    signal.SIGXCPU: "CPU time limit exceeded (SIGXCPU)",
    signal.SIGXFSZ: "file size limit exceeded (SIGXFSZ: a file over the size limit was written)",
    signal.SIGTERM: "terminated (SIGTERM)",
    signal.SIGILL: "illegal instruction (SIGILL)",
    signal.SIGFPE: "arithmetic error (SIGFPE)",
}

# Written to $IPYTHONDIR/profile_default/startup/ before each kernel starts. It truncates
# cell output inside the kernel, before ipykernel buffers it: a loop printing gigabytes then
# finishes in seconds instead of building one enormous message. Student code can undo it; the
# driver's own caps (and libzmq's MAXMSGSIZE) still hold, so it is a courtesy, not a defence.
OUTPUT_CAP_STARTUP = """\
def _grader_cap_output(cap):
    import ipykernel.iostream as iostream
    from IPython import get_ipython
    state = {"n": 0, "dropped": 0}
    original = iostream.OutStream.write

    def write(self, string):
        if not isinstance(string, str):
            return original(self, string)
        n = state["n"]
        state["n"] = n + len(string)
        if n + len(string) <= cap:
            return original(self, string)
        if n < cap:
            original(self, string[: cap - n])
            state["dropped"] += len(string) - (cap - n)
        else:
            state["dropped"] += len(string)
        return len(string)

    def reset(*args):
        state["n"] = state["dropped"] = 0

    def report(*args):
        if state["dropped"]:
            import sys
            original(sys.stderr, "\\n[grader-kernel: %d characters of output dropped]\\n" % state["dropped"])

    iostream.OutStream.write = write
    ip = get_ipython()
    if ip is not None:
        ip.events.register("pre_run_cell", reset)
        ip.events.register("post_run_cell", report)


_grader_cap_output(CAP_CHARS)
del _grader_cap_output
"""
KERNEL_DROPPED = re.compile(r"\[grader-kernel: (\d+) characters of output dropped\]")


def warm_up() -> dict:
    """Import ``WARM`` (once per process); return {module: seconds} of what took over 50 ms.

    jsonschema imports ``rfc3987_syntax`` when it is installed (jupyter-events pulls it in),
    which compiles a grammar at import: 1.7 s, for IRI formats no notebook schema uses.
    nbformat (and so the driver and nbconvert) imports jsonschema, so it is blocked here.
    """
    sys.modules.setdefault("rfc3987_syntax", None)
    took = {}
    for name in WARM:
        if name in sys.modules:
            continue
        t = time.monotonic()
        try:
            __import__(name)
        except Exception:  # noqa: BLE001  (a missing optional module is imported by the student, if at all)
            pass
        if time.monotonic() - t > 0.05:
            took[name] = round(time.monotonic() - t, 3)
    return took


def short(text, limit=EVALUE_CHARS):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 15] + "... [truncated]"


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` and of its children it has waited for (/proc/PID/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


# ------------------------------------------------------------------------------------------
# A kernel: this process, forked, becoming an IPython kernel
# ------------------------------------------------------------------------------------------
def _kernel_main(conn_file: str, log_path: str, parent: int, warm_backend: str | None) -> None:
    """In the forked child: become an IPython kernel listening on ``conn_file``. Never returns."""
    code = 1
    try:
        os.setsid()                              # its own process group: killpg reaches its children
        _libc().prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG: die with the driver
        if os.getppid() != parent:
            os._exit(1)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGPIPE else signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 65536)
        _fresh_process_state(warm_backend)
        sys.argv = ["ipykernel_launcher", "-f", conn_file, "--HistoryManager.hist_file=:memory:",
                    "--HistoryManager.enabled=False", "--IPKernelApp.quiet=True"]
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(sys.argv[1:])
        app.start()
        code = 0
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)


def _fresh_process_state(warm_backend: str | None) -> None:
    """What a new interpreter would have that a fork does not: fresh random state, the
    environment's thread count and matplotlib backend, no cached temporary directory."""
    import tempfile

    tempfile.tempdir = None
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    backend = os.environ.get("MPLBACKEND")
    if "matplotlib" in sys.modules and backend and backend != warm_backend:
        sys.modules["matplotlib"].use(backend, force=True)
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if "torch" in sys.modules and threads.isdigit():
        sys.modules["torch"].set_num_threads(int(threads))


class Kernel:
    """One IPython kernel (a fork of this process) plus a blocking client on its own ZMQ context."""

    def __init__(self, cfg, number, warm_backend):
        import zmq
        from jupyter_client.blocking import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        runtime = Path(cfg["runtime_dir"])
        runtime.mkdir(parents=True, exist_ok=True)
        startup = Path(os.environ.get("IPYTHONDIR", Path(cfg["home"]) / ".ipython")) / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        for old in startup.glob("*.py"):
            old.unlink()
        atomic_write(startup / "00-grader-output-cap.py",
                     OUTPUT_CAP_STARTUP.replace("CAP_CHARS", str(4 * int(cfg["cell_output_bytes"]))))
        self.conn_file = str(runtime / f"kernel-{number}.json")
        self.log_path = str(Path(cfg["grader_dir"]) / f"kernel-{number}.log")
        write_connection_file(self.conn_file, ip="127.0.0.1", key=os.urandom(16).hex().encode())
        # Fork while this process has no other thread (each kernel's ZMQ context, and its
        # I/O threads, is destroyed before the next fork): the child is a clean copy.
        self.pid = os.fork()
        if self.pid == 0:
            _kernel_main(self.conn_file, self.log_path, os.getppid(), warm_backend)
        self.status = None                     # os.waitpid status once it has ended
        self.last_cpu = 0.0
        self.context = zmq.Context()
        # A message bigger than this (one huge print) is dropped by libzmq, not buffered here.
        self.context.setsockopt(zmq.MAXMSGSIZE, int(cfg["max_message_bytes"]))
        self.kc = BlockingKernelClient(context=self.context, connection_file=self.conn_file)
        self.kc.load_connection_file()
        self.kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
        self._watch_iopub()
        self.started = time.monotonic()

    # libzmq drops a connection whose peer sends a message over MAXMSGSIZE and does not
    # reconnect it: watch for that and open a fresh iopub socket.
    def _watch_iopub(self):
        import zmq

        self.iopub_monitor = self.kc.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)

    def iopub_lost(self):
        try:
            if self.iopub_monitor.poll(0):
                self.iopub_monitor.recv_multipart()
                return True
        except Exception:  # noqa: BLE001
            pass
        return False

    def reopen_iopub(self):
        try:
            self.kc.iopub_channel.socket.disable_monitor()
            self.iopub_monitor.close(linger=0)
            self.kc.iopub_channel.close()
        except Exception:  # noqa: BLE001
            pass
        self.kc._iopub_channel = None
        self.kc.iopub_channel  # noqa: B018 - the property connects a new socket
        self._watch_iopub()

    def alive(self):
        if self.status is None:
            self.cpu_seconds()
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, 0
            if pid:
                self.status = status
        return self.status is None

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while self.alive() and time.monotonic() < end:
            time.sleep(0.02)
        return not self.alive()

    def cpu_seconds(self):
        """CPU seconds the kernel (and the children it waited for) used so far."""
        if self.status is None:
            now = process_cpu_seconds(self.pid)
            if now is not None:
                self.last_cpu = now
        return self.last_cpu

    def wait_ready(self, timeout):
        """Until the kernel answers kernel_info on shell AND its iopub stream reaches us."""
        # The shell request waits in its queue until the kernel is up; iopub is a PUB/SUB
        # stream that loses what is sent before the subscription lands, so ask again (a new
        # request, new status messages) until one request's busy/idle reaches us.
        deadline = time.monotonic() + timeout
        pending: set[str] = set()
        replied = False
        resend_at = 0.0
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            now = time.monotonic()
            if now >= resend_at:
                pending.add(self.kc.kernel_info())
                resend_at = now + (0.1 if replied else 0.5)
            for chan in (self.kc.shell_channel, self.kc.iopub_channel):
                try:
                    msg = chan.get_msg(timeout=0.02)
                except Exception:  # noqa: BLE001  (queue.Empty, or a malformed message)
                    continue
                if msg.get("parent_header", {}).get("msg_id") not in pending:
                    continue
                if chan is self.kc.shell_channel:
                    if not replied:  # up: ask again at once, in case iopub missed the first
                        replied, resend_at = True, 0.0
                elif msg.get("msg_type") == "status":
                    return True
        return False

    def interrupt(self):
        try:
            os.kill(self.pid, signal.SIGINT)
        except OSError:
            pass

    def death_reason(self):
        if self.alive():
            return "the kernel stopped responding"
        if os.WIFSIGNALED(self.status):
            sig = os.WTERMSIG(self.status)
            try:
                name = signal.Signals(sig)
            except ValueError:
                return f"the kernel was killed by signal {sig}"
            return "the kernel died: " + SIGNAL_REASONS.get(name, f"killed by {name.name}")
        code = os.WEXITSTATUS(self.status)
        return f"the kernel exited with status {code} (os._exit(), exit() or quit() in the cell?)"

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - KERNEL_LOG_TAIL))
                return f.read(KERNEL_LOG_TAIL).decode("utf-8", errors="replace")
        except OSError:
            return ""

    def kill(self, kill_strays):
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        if kill_strays:
            # Everything else of our uid: orphans of a fork storm, daemons. In a pid namespace
            # (or with a uid of our own) that is only the student's processes; never ourselves.
            for _ in range(3):
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    break
        self.wait(10)
        self.close()

    def close(self):
        try:
            self.kc.iopub_channel.socket.disable_monitor()
            self.iopub_monitor.close(linger=0)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.kc.stop_channels()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.context.destroy(linger=0)       # joins its I/O threads: none left for the next fork
        except Exception:  # noqa: BLE001
            pass
        try:
            os.unlink(self.conn_file)
        except OSError:
            pass


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
        kernel = self.kernel
        kc = kernel.kc
        t_start = time.monotonic()
        cpu0 = kernel.cpu_seconds()
        cpu_limit, wall_end, what = self._limits(t_start)
        grace = float(self.cfg["interrupt_grace_seconds"])
        cap = Caps(min(int(self.cfg["cell_output_bytes"]), max(0, self.output_left)))
        cell.outputs = []
        cell.execution_count = None
        msg_id = kc.execute(cell.source, store_history=True, allow_stdin=False, stop_on_error=False)
        reply = None
        idle = False
        reply_at = None
        interrupted = None            # (cpu, wall) when the kernel was interrupted
        clear_pending = False
        iopub_lost = False
        next_cpu_read = 0.0
        used = 0.0
        while True:
            now = time.monotonic()
            if reply is not None and (idle or now - (reply_at or now) > (0.5 if iopub_lost else 4.0)):
                break
            if kernel.iopub_lost():
                kernel.wait(0.3)   # a dying kernel drops its connections too: that is not an oversize message
                if not kernel.alive():
                    continue
                iopub_lost = True
                kernel.reopen_iopub()
                self.event(f"cell {record['index']}: an output message over {self.cfg['max_message_bytes']} bytes was dropped")
            if not kernel.alive():
                record.update(status="kernel_died", reason=kernel.death_reason())
                break
            if now >= next_cpu_read:
                used = kernel.cpu_seconds() - cpu0
                next_cpu_read = now + 0.1
            if interrupted is None and (used >= cpu_limit or now >= wall_end):
                if now >= wall_end and used < cpu_limit:
                    what = (f"the cell ran for {now - t_start:.0f} s of wall-clock time (the backstop) with "
                            f"{used:.1f} s of CPU time: waiting for something that never came?")
                if now >= self.deadline - 1.5:
                    self.report["deadline_hit"] = True
                kernel.interrupt()
                interrupted = (used, now)
                record.update(status="timeout", reason=f"{what}; it was interrupted")
                continue
            if interrupted is not None and (used - interrupted[0] >= grace
                                            or now - interrupted[1] >= grace * self.wall_factor):
                record.update(status="timeout",
                              reason=f"{what} and it did not stop when interrupted; the kernel was killed "
                                     "(later cells run in a fresh kernel)")
                self.kill_kernel()
                break
            got = False
            for chan in (kc.iopub_channel, kc.shell_channel):
                try:
                    msg = chan.get_msg(timeout=0 if got else 0.05)
                except Exception:  # noqa: BLE001
                    continue
                got = True
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if chan is kc.shell_channel:
                    if msg.get("msg_type") == "execute_reply":
                        reply, reply_at = msg.get("content", {}), time.monotonic()
                    continue
                mtype = msg.get("msg_type")
                content = msg.get("content", {})
                if mtype == "status":
                    if content.get("execution_state") == "idle":
                        idle = True
                elif mtype == "execute_input":
                    cell.execution_count = content.get("execution_count")
                elif mtype == "clear_output":
                    if content.get("wait"):
                        clear_pending = True
                    else:
                        cell.outputs = []
                elif mtype in ("stream", "display_data", "execute_result", "error"):
                    if clear_pending:
                        cell.outputs, clear_pending = [], False
                    self.add_output(cell, msg, cap)
                    if mtype == "error":
                        record["ename"] = short(content.get("ename", ""), 100)
                        record["evalue"] = short(content.get("evalue", ""))
        record["cpu_seconds"] = round(max(0.0, kernel.cpu_seconds() - cpu0), 3)
        self._finish_cell(cell, record, reply, kernel, iopub_lost, cap, interrupted is not None)
        record["seconds"] = round(time.monotonic() - t_start, 3)

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

    def add_output(self, cell, msg, cap):
        content = msg["content"]
        if msg["msg_type"] == "stream":
            text = content.get("text", "")
            name = content.get("name", "stdout")
            note = KERNEL_DROPPED.search(text) if "[grader-kernel:" in text else None
            if note:
                cap.dropped += int(note.group(1))
            kept = cap.take(text)
            if not kept:
                return
            last = cell.outputs[-1] if cell.outputs else None
            if last is not None and last.get("output_type") == "stream" and last.get("name") == name:
                last["text"] += kept
            else:
                cell.outputs.append(self.nbformat.v4.new_output("stream", name=name, text=kept))
            return
        if msg["msg_type"] == "error":
            tb = content.get("traceback", [])
            text = "\n".join(tb)
            if len(text) > TRACEBACK_CHARS:
                tb = [text[:TRACEBACK_CHARS // 2] + "\n...[traceback truncated]...\n" + text[-TRACEBACK_CHARS // 2:]]
            content = dict(content, traceback=tb, evalue=short(content.get("evalue", ""), 2000))
            msg = dict(msg, content=content)
            cap.force(len(json.dumps(content)))  # errors are always kept (size-capped above)
        else:
            size = len(json.dumps(content))
            if not cap.fits(size):
                return
        try:
            cell.outputs.append(self.nbformat.v4.output_from_msg(msg))
        except Exception:  # noqa: BLE001
            pass


class Caps:
    """Output budget of one cell."""

    def __init__(self, budget):
        self.budget, self.kept, self.dropped = budget, 0, 0

    def take(self, text):
        room = self.budget - self.kept
        if room <= 0:
            self.dropped += len(text)
            return ""
        if len(text) > room:
            self.dropped += len(text) - room
            text = text[:room]
        self.kept += len(text)
        return text

    def fits(self, size):
        if self.kept + size > self.budget:
            self.dropped += size
            return False
        self.kept += size
        return True

    def force(self, size):
        self.kept += size


def grade_id(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return short(gid, 200) if isinstance(gid, str) else None


def main(argv, *, warm_backend=None, warm_seconds=None):
    """Run the notebook of the config file ``argv[1]``; 0 when the driver finished.

    warm_backend: the MPLBACKEND matplotlib was imported with (a warm start from the zygote);
    None: a cold start. A cold driver stays light (its CPU rlimit is the students'); its
    kernels, forked from it, import what the notebook imports, as a fresh interpreter would.
    """
    with open(argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
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
