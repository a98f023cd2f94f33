"""The driver's kernels (runs INSIDE the sandbox, with ``_driver.py``): each one is a fork of
the driver that becomes an IPython kernel in place, warm (``WARM`` already imported), with
output capped inside it and its death explained (``SIGNAL_REASONS``).

Imported by ``_driver.py``: as ``autograder._driver_kernel`` where the zygote imported the
driver (warm starts), or from the driver's own folder when the driver runs as a script (cold).
Nothing here imports the grader's packages.
"""
from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

EVALUE_CHARS = 500
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
        _forget_the_grader()
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


def _forget_the_grader() -> None:
    """Drop the grader's modules that the zygote or the driver imported (``autograder.*``: the
    driver, the zygote's process, the rlimits) from the kernel's ``sys.modules``, so student code
    cannot ``import autograder`` from them: their files are not in the sandbox, so it fails as in a
    fresh interpreter. The code now running keeps its own references."""
    for name in [m for m in sys.modules if m == "autograder" or m.startswith("autograder.")]:
        del sys.modules[name]
    for name in ("_driver", "_driver_cell", "_driver_kernel"):     # a cold driver's, imported as scripts
        sys.modules.pop(name, None)


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
