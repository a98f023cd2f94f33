"""autograder.zygote: a warm start per notebook, and nothing of one student reaches the next.

Student A's notebook leaves every kind of state it can behind: module attributes, patched
functions (numpy, torch, coursekit's check), a file in every writable place (an IPython
startup file and a matplotlibrc among them), environment variables, a thread, a child process,
a double-forked daemon, a System V shared memory segment and an abstract Unix socket. Its
last cell runs the detector and finds all of it (the control: the detector can see them).
Student B is forked next by the same zygote and runs the same detector: it finds none.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder import sandbox, zygote
from autograder.runner import run_notebook
from autograder.sandbox import Limits

_why: list[str] = []
needs_bwrap = pytest.mark.skipif(not sandbox.bwrap_available(why=_why), reason=f"bwrap unavailable: {_why}")
LIMITS = Limits(notebook_cpu_seconds=120, cell_cpu_seconds=30, memory_bytes=2 << 30, max_processes=64)

PLANT = r'''
import builtins, ctypes, os, socket, subprocess, sys, threading, time
import numpy, torch, coursekit.checks
for mod in (numpy, torch, coursekit.checks, sys, builtins):
    setattr(mod, "LEAK_A", 1)
numpy.allclose = lambda *a, **k: "patched"
torch.Tensor.sum = lambda self, *a, **k: "patched"
coursekit.checks.check = lambda *a, **k: "patched"
sys.path.insert(0, "/tmp/leak_path")
os.environ["LEAK_A"] = "1"
os.putenv("LEAK_A_PUTENV", "1")

planted = []
for top in ("/", ):
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if os.path.join(d, x) not in ("/proc", "/sys")]
        if os.access(d, os.W_OK):
            try:
                with open(os.path.join(d, "LEAK_A.marker"), "w") as f:
                    f.write("A")
                planted.append(d)
            except OSError:
                pass
home = os.path.expanduser("~")
startup = os.path.join(home, ".ipython", "profile_default", "startup")
os.makedirs(startup, exist_ok=True)
with open(os.path.join(startup, "99-leak.py"), "w") as f:
    f.write("import builtins\nbuiltins.LEAK_STARTUP = 1\n")
os.makedirs(os.path.join(home, ".config", "matplotlib"), exist_ok=True)
with open(os.path.join(home, ".config", "matplotlib", "matplotlibrc"), "w") as f:
    f.write("figure.dpi: 7\n")

def writer():
    while True:
        with open("/tmp/LEAK_A.thread", "w") as f:
            f.write(str(time.time()))
        time.sleep(0.2)
threading.Thread(target=writer, name="LEAK_A_thread", daemon=True).start()
child = subprocess.Popen(["sleep", "600"])
if os.fork() == 0:                                      # a daemon: double fork, own session
    os.setsid()
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(15, b"LEAK_A_daemon", 0, 0, 0)     # PR_SET_NAME
        while True:
            try:
                with open("/tmp/LEAK_A.daemon", "w") as f:
                    f.write("alive")
            except OSError:
                pass
            time.sleep(0.2)
    os._exit(0)
libc = ctypes.CDLL(None, use_errno=True)
shm = libc.shmget(0xC0FFEE, 4096, 0o1666)               # IPC_CREAT | 0666
server = socket.socket(socket.AF_UNIX)
server.bind("\0LEAK_A_socket")
server.listen(1)
time.sleep(0.5)
print(json.dumps({"planted": len(planted), "shm": shm}) if (json := __import__("json")) else "")
'''

DETECT = r'''
import builtins, json, os, socket, sys, threading
import numpy, torch, coursekit.checks
found = {}
found["attributes"] = [m.__name__ for m in (numpy, torch, coursekit.checks, sys, builtins) if hasattr(m, "LEAK_A")]
found["patched"] = [name for name, f in (("numpy.allclose", lambda: numpy.allclose([1.0], [2.0])),
                                          ("torch.Tensor.sum", lambda: torch.ones(2).sum()),
                                          ("coursekit.check", lambda: coursekit.checks.check.__name__))
                    if "patched" in str(f()) or str(f()) == "<lambda>"]
found["startup_file_ran"] = hasattr(builtins, "LEAK_STARTUP")
found["sys_path"] = "/tmp/leak_path" in sys.path
found["environment"] = sorted(k for k in os.environ if k.startswith("LEAK_A"))
markers = []
for d, dirs, files in os.walk("/"):
    dirs[:] = [x for x in dirs if os.path.join(d, x) not in ("/proc", "/sys")]
    markers += [os.path.join(d, f) for f in files if f.startswith("LEAK_A")]
home = os.path.expanduser("~")
for extra in (os.path.join(home, ".ipython", "profile_default", "startup", "99-leak.py"),
              os.path.join(home, ".config", "matplotlib", "matplotlibrc")):
    if os.path.exists(extra):
        markers.append(extra)
found["files"] = sorted(markers)
found["threads"] = [t.name for t in threading.enumerate() if "LEAK_A" in t.name]
procs = []
for pid in os.listdir("/proc"):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        cmd += " " + open(f"/proc/{pid}/comm").read()
    except OSError:
        continue
    if "sleep 600" in cmd or "LEAK_A_daemon" in cmd:
        procs.append(cmd.strip())
found["processes"] = procs
found["sysv_shm"] = [line.split()[0] for line in open("/proc/sysvipc/shm").read().splitlines()[1:]
                     if int(line.split()[0]) == 0xC0FFEE]
try:
    socket.socket(socket.AF_UNIX).connect("\0LEAK_A_socket")
    found["abstract_socket"] = True
except OSError:
    found["abstract_socket"] = False
print("DETECTED " + json.dumps(found))
'''


def _notebook(path: Path, cells) -> Path:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _detected(report) -> dict:
    executed = json.loads(report.executed_notebook.read_text())
    text = "".join("".join(o.get("text", "")) for o in executed["cells"][-1]["outputs"])
    assert "DETECTED " in text, executed["cells"][-1]["outputs"]
    return json.loads(text.split("DETECTED ", 1)[1].splitlines()[0])


@needs_bwrap
@pytest.mark.slow
def test_student_b_sees_nothing_that_student_a_left_behind(tmp_path):
    z = zygote.Zygote()
    try:
        a = run_notebook(_notebook(tmp_path / "a.ipynb", [PLANT, DETECT]), scratch_dir=tmp_path / "run-a",
                         limits=LIMITS, zygote=z)
        b = run_notebook(_notebook(tmp_path / "b.ipynb", [DETECT]), scratch_dir=tmp_path / "run-b",
                         limits=LIMITS, zygote=z)
        assert z.alive()
    finally:
        z.close()
    assert a.warm and b.warm, (a.warnings, b.warnings)       # both forked from the same zygote
    assert [c.status for c in a.cells] == ["ok", "ok"], a.reason
    seen_by_a = _detected(a)
    # The control: in A's own sandbox every kind of state is there to be found ...
    assert len(seen_by_a["attributes"]) == 5 and len(seen_by_a["patched"]) == 3
    assert seen_by_a["sys_path"] and seen_by_a["environment"] == ["LEAK_A"]
    assert {"/tmp", "/dev/shm", "/home/student"} <= {os.path.dirname(f) for f in seen_by_a["files"]}
    assert any(f.endswith("99-leak.py") for f in seen_by_a["files"]) and any(f.endswith("matplotlibrc") for f in seen_by_a["files"])
    assert seen_by_a["threads"] == ["LEAK_A_thread"]
    assert any("sleep 600" in p for p in seen_by_a["processes"]) and any("LEAK_A_daemon" in p for p in seen_by_a["processes"])
    assert seen_by_a["sysv_shm"] and seen_by_a["abstract_socket"] is True
    # ... and B, graded next from the same zygote, sees none of it.
    assert [c.status for c in b.cells] == ["ok"], b.reason
    assert _detected(b) == {"attributes": [], "patched": [], "startup_file_ran": False, "sys_path": False,
                            "environment": [], "files": [], "threads": [], "processes": [], "sysv_shm": [],
                            "abstract_socket": False}


@needs_bwrap
def test_a_warm_start_skips_the_imports_and_reports_its_timings(tmp_path):
    z = zygote.Zygote()
    try:
        ready = z.wait_ready()
        r = run_notebook(_notebook(tmp_path / "t.ipynb", [
            "import sys, time\nt = time.perf_counter()\nimport torch, numpy, matplotlib.pyplot, coursekit.checks\n"
            "print('import', time.perf_counter() - t, 'torch' in sys.modules)"]),
            scratch_dir=tmp_path / "run", limits=LIMITS, zygote=z)
    finally:
        z.close()
    assert ready["threads"] == 1                  # forks are taken from a single-threaded process
    assert r.warm and r.status == "ok", r.reason
    out = "".join(json.loads(r.executed_notebook.read_text())["cells"][0]["outputs"][0]["text"])
    assert float(out.split()[1]) < 0.5, out       # already imported: a fresh kernel takes seconds
    assert {"sandbox_start", "spawn", "kernel_start"} <= set(r.timings), r.timings
    assert r.cells[0].cpu_seconds >= 0


@needs_bwrap
def test_cold_start_still_works_when_the_zygote_is_not_used(tmp_path):
    r = run_notebook(_notebook(tmp_path / "c.ipynb", ["import torch\nprint(torch.ones(2).sum().item())"]),
                     scratch_dir=tmp_path / "run", limits=LIMITS, zygote=False)
    assert not r.warm and r.status == "ok" and r.isolated, r.reason
    out = "".join(json.loads(r.executed_notebook.read_text())["cells"][0]["outputs"][0]["text"])
    assert out.strip() == "2.0"


def test_the_zygote_holds_no_grader_module():
    """What every kernel inherits: never the reference solution nor the hidden judges."""
    z = zygote.Zygote()
    try:
        z.wait_ready()
        with open(f"/proc/{z.proc.pid}/maps") as f:
            maps = f.read()
    finally:
        z.close()
    assert "torch" in maps
    import subprocess
    import sys

    code = ("import sys; sys.argv=['x']; import autograder._driver as d; d.warm_up(); "
            "print(sorted(m for m in sys.modules if m.startswith(('mnist_cnn', 'autograder.hidden', "
            "'autograder.grading', 'nbgrader'))))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300,
                         env=zygote.zygote_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
