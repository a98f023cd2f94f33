"""Runs INSIDE the sandbox: execute one notebook cell by cell in an IPython kernel.

    python -I _driver.py CONFIG.json

Started by ``autograder.runner`` (never imported by the host). The kernel, its ZMQ sockets and
this driver all live in the sandbox. Per code cell: send it to the kernel, collect its outputs
(capped), wait for its reply within the cell time limit; on a timeout interrupt the kernel and,
if it stays busy, kill it; when the kernel dies (``os._exit``, a segfault, a memory or CPU limit,
``exit()``), record why, start a fresh kernel and go on with the next cell. After every cell the
report (JSON) and the executed notebook are rewritten atomically, so a driver killed by student
code still leaves its progress behind for the host, which relaunches it after the fatal cell.

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
import subprocess
import sys
import threading
import time
from pathlib import Path

REPORT_VERSION = 1
EVALUE_CHARS = 500
TRACEBACK_CHARS = 8000
KERNEL_LOG_TAIL = 4000

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


PDEATHSIG_SHIM = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


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


def short(text, limit=EVALUE_CHARS):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 15] + "... [truncated]"


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class Tail:
    """Drain a pipe in a thread, keeping only its last ``limit`` bytes."""

    def __init__(self, stream, limit=KERNEL_LOG_TAIL):
        self.limit, self.data, self.total = limit, b"", 0
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        try:
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not chunk:
                    break
                self.total += len(chunk)
                self.data = (self.data + chunk)[-self.limit:]
        except (OSError, ValueError):
            pass

    def text(self):
        return self.data.decode("utf-8", errors="replace")


class Kernel:
    """One IPython kernel process plus a blocking client (shell, iopub, control channels)."""

    def __init__(self, cfg, context, number):
        from jupyter_client.blocking import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        runtime = Path(cfg["runtime_dir"])
        runtime.mkdir(parents=True, exist_ok=True)
        startup = Path(os.environ.get("IPYTHONDIR", Path(cfg["home"]) / ".ipython")) / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        for old in startup.glob("*.py"):
            old.unlink()
        atomic_write(startup / "00-grader-output-cap.py", OUTPUT_CAP_STARTUP.replace("CAP_CHARS", str(4 * int(cfg["cell_output_bytes"]))))
        self.conn_file = str(runtime / f"kernel-{number}.json")
        write_connection_file(self.conn_file, ip="127.0.0.1", key=os.urandom(16).hex().encode())
        # Through a tiny shim that makes the kernel die with this driver (PR_SET_PDEATHSIG):
        # without a pid namespace nothing else would stop an orphaned kernel.
        argv = [sys.executable, "-I", "-S", "-c", PDEATHSIG_SHIM, str(os.getpid()),
                # -P: the scratch directory (cwd) is not searched for ipykernel_launcher itself.
                sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []),
                "-m", "ipykernel_launcher", "-f", self.conn_file,
                "--HistoryManager.hist_file=:memory:", "--HistoryManager.enabled=False"]
        self.proc = subprocess.Popen(argv, cwd=cfg["home"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.log = Tail(self.proc.stdout)
        self.kc = BlockingKernelClient(context=context, connection_file=self.conn_file)
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
        except Exception:
            pass
        return False

    def reopen_iopub(self):
        try:
            self.kc.iopub_channel.socket.disable_monitor()
            self.iopub_monitor.close(linger=0)
            self.kc.iopub_channel.close()
        except Exception:
            pass
        self.kc._iopub_channel = None
        self.kc.iopub_channel  # noqa: B018 - the property connects a new socket
        self._watch_iopub()

    def alive(self):
        return self.proc.poll() is None

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
                except Exception:  # queue.Empty, or a malformed message
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
            os.kill(self.proc.pid, signal.SIGINT)
        except OSError:
            pass

    def death_reason(self):
        code = self.proc.poll()
        if code is None:
            return "the kernel stopped responding"
        if code < 0:
            try:
                sig = signal.Signals(-code)
            except ValueError:
                return f"the kernel was killed by signal {-code}"
            return "the kernel died: " + SIGNAL_REASONS.get(sig, f"killed by {sig.name}")
        return f"the kernel exited with status {code} (os._exit(), exit() or quit() in the cell?)"

    def kill(self, kill_strays):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
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
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.close()

    def close(self):
        try:
            self.kc.iopub_channel.socket.disable_monitor()
            self.iopub_monitor.close(linger=0)
        except Exception:
            pass
        try:
            self.kc.stop_channels()
        except Exception:
            pass
        try:
            os.unlink(self.conn_file)
        except OSError:
            pass


class Driver:
    def __init__(self, cfg):
        import nbformat
        import zmq

        self.cfg = cfg
        self.nbformat = nbformat
        self.t0 = time.monotonic()
        self.deadline = self.t0 + float(cfg["deadline_seconds"])
        self.grader_dir = Path(cfg["grader_dir"])
        self.grader_dir.mkdir(parents=True, exist_ok=True)
        Path(cfg["collect_dir"]).mkdir(parents=True, exist_ok=True)
        self.report_path = self.grader_dir / "report.json"
        self.executed_path = self.grader_dir / "executed.ipynb"
        self.nb = nbformat.read(cfg["notebook"], as_version=4)
        self._adopt_previous_outputs()
        self.context = zmq.Context()
        # A message bigger than this (one huge print) is dropped by libzmq, not buffered here.
        self.context.setsockopt(zmq.MAXMSGSIZE, int(cfg["max_message_bytes"]))
        self.kernel = None
        self.kernels_started = 0
        self.output_left = int(cfg["output_bytes"])
        self.report = {"version": REPORT_VERSION, "attempt": cfg["attempt"], "start_cell": cfg["start_cell"],
                       "finished": False, "deadline_hit": False, "current": None, "cells": [], "events": [], "kernel_log": ""}

    def _adopt_previous_outputs(self):
        """On a relaunch, keep the outputs of the cells the previous attempt already ran."""
        if not self.cfg["start_cell"] or not self.executed_path.exists():
            return
        try:
            prev = self.nbformat.read(str(self.executed_path), as_version=4)
        except Exception:
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
            self.report["kernel_log"] = self.kernel.log.text()
        atomic_write(self.report_path, json.dumps(self.report))
        try:
            atomic_write(self.executed_path, self.nbformat.writes(self.nb))
        except Exception as err:  # an odd output must not take the report down with it
            self.event(f"could not write the executed notebook: {type(err).__name__}: {err}")

    def event(self, text):
        self.report["events"].append(short(text))

    # ------------------------------------------------------------------ kernels
    def ensure_kernel(self):
        """A live kernel, or a reason why there is none."""
        if self.kernel is not None and self.kernel.alive():
            return None
        if self.kernel is not None:
            self.kernel.kill(self.cfg["kill_strays"])
            self.kernel = None
        if self.kernels_started > int(self.cfg["kernel_restarts"]):
            return f"not run: {self.kernels_started} kernels died or were killed (the restart limit)"
        self.kernels_started += 1
        started = time.monotonic()
        try:
            self.kernel = Kernel(self.cfg, self.context, self.kernels_started)
        except Exception as err:
            self.kernel = None
            return f"not run: the kernel could not start ({type(err).__name__}: {short(err, 200)})"
        timeout = min(float(self.cfg["kernel_start_seconds"]), max(1.0, self.deadline - time.monotonic()))
        if not self.kernel.wait_ready(timeout):
            reason = self.kernel.death_reason() if not self.kernel.alive() else "the kernel did not start in time"
            log = self.kernel.log.text().strip().splitlines()
            self.kernel.kill(self.cfg["kill_strays"])
            self.kernel = None
            return f"not run: {reason}" + (f" ({short(log[-1], 200)})" if log else "")
        self.event(f"kernel {self.kernels_started} ready in {time.monotonic() - started:.2f} s")
        return None

    def kill_kernel(self):
        if self.kernel is not None:
            self.report["kernel_log"] = self.kernel.log.text()
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
                      "evalue": None, "reason": "", "seconds": 0.0, "output_bytes": 0, "dropped_bytes": 0}
            self.report["cells"].append(record)
            if not cell.source.strip():
                record.update(status="ok", reason="empty cell")
                continue
            if time.monotonic() >= self.deadline - 1:
                record["reason"] = "not run: the notebook's time limit was reached"
                self.report["deadline_hit"] = True
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
            self.report["current"] = None
            self.save()
        self.kill_kernel()
        self.report["finished"] = True
        self.report["seconds"] = round(time.monotonic() - self.t0, 3)
        self.save()

    def run_cell(self, cell, record):
        kernel = self.kernel
        kc = kernel.kc
        t_start = time.monotonic()
        limit = min(float(self.cfg["cell_seconds"]), max(0.5, self.deadline - t_start - 1))
        by_deadline = limit < float(self.cfg["cell_seconds"])
        what = ("the notebook's time limit ran out during this cell" if by_deadline
                else f"the cell ran over its {limit:g} s time limit")
        cap = Caps(min(int(self.cfg["cell_output_bytes"]), max(0, self.output_left)))
        cell.outputs = []
        cell.execution_count = None
        msg_id = kc.execute(cell.source, store_history=True, allow_stdin=False, stop_on_error=False)
        reply = None
        idle = False
        reply_at = None
        end = t_start + limit
        interrupted_at = None
        clear_pending = False
        iopub_lost = False
        while True:
            now = time.monotonic()
            if reply is not None and (idle or now - (reply_at or now) > (0.5 if iopub_lost else 4.0)):
                break
            if kernel.iopub_lost():
                try:  # a dying kernel drops its connections too: that is not an oversize message
                    kernel.proc.wait(timeout=0.3)
                except subprocess.TimeoutExpired:
                    pass
                if not kernel.alive():
                    continue
                iopub_lost = True
                kernel.reopen_iopub()
                self.event(f"cell {record['index']}: an output message over {self.cfg['max_message_bytes']} bytes was dropped")
            if not kernel.alive():
                record.update(status="kernel_died", reason=kernel.death_reason())
                break
            if now >= end:
                if by_deadline:
                    self.report["deadline_hit"] = True
                if interrupted_at is None:
                    kernel.interrupt()
                    interrupted_at = now
                    end = now + float(self.cfg["interrupt_grace_seconds"])
                    record.update(status="timeout", reason=f"{what}; it was interrupted")
                    continue
                record.update(status="timeout",
                              reason=f"{what} and it did not stop when interrupted; the kernel was killed "
                                     "(later cells run in a fresh kernel)")
                self.kill_kernel()
                break
            got = False
            for chan in (kc.iopub_channel, kc.shell_channel):
                try:
                    msg = chan.get_msg(timeout=0 if got else 0.05)
                except Exception:
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
        if iopub_lost:
            cell.outputs.append(self.nbformat.v4.new_output(
                "stream", name="stderr", text=f"\n[grader: an output message over "
                f"{self.cfg['max_message_bytes']} bytes was dropped, with what followed it in this cell]\n"))
            record["dropped_bytes"] += int(self.cfg["max_message_bytes"])
            if self.kernel is not None and self.kernel.alive():
                self.kernel.wait_ready(5.0)  # the new iopub socket is connected before the next cell
        record["seconds"] = round(time.monotonic() - t_start, 3)
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
                # exit()/quit(): the kernel shuts itself down after answering.
                try:
                    kernel.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            if not kernel.alive():
                record.update(status="kernel_died", reason=kernel.death_reason())
        elif record["status"] == "timeout" and self.kernel is not None and interrupted_at is not None:
            record["ename"] = record["ename"] or "CellTimeout"
            record["evalue"] = record["evalue"] or record["reason"]
        if record["status"] == "kernel_died":
            record["ename"], record["evalue"] = "DeadKernel", record["reason"]
            self.report["kernel_log"] = kernel.log.text()
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
        except Exception:
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


def main(argv):
    with open(argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    # SIGINT keeps its default here: an ignored SIGINT would be inherited by the kernel, which
    # then could not be interrupted. Interrupts go to the kernel's own session only.
    driver = Driver(cfg)
    try:
        driver.run()
    except BaseException as err:
        driver.event(f"driver error: {type(err).__name__}: {err}")
        try:
            driver.kill_kernel()
            driver.save()
        except Exception:
            pass
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
