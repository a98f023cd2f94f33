"""autograder.runner: tiny notebooks written here, each fault with the right status and reason.

One hostile notebook carries most faults (cheaper than one sandbox each): network, secrets,
writes outside, 8 GB, a fork storm, 1 GB of output, sys.exit, an infinite loop, os._exit, a
segfault, killing the driver. Its fixture runs it once; each test reads its own cells. Cells
write .npz files straight into $COURSE_COLLECT_DIR, as coursekit's check() does in collect mode.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import sandbox
from autograder.runner import run_notebook
from autograder.sandbox import Limits

_why: list[str] = []
BWRAP = sandbox.bwrap_available(why=_why)
needs_bwrap = pytest.mark.skipif(not BWRAP, reason=f"bwrap unavailable: {'; '.join(_why)}")
REPO = Path(__file__).resolve().parents[2]
FAST = Limits(notebook_cpu_seconds=120, cell_cpu_seconds=20, memory_bytes=2 << 30, max_processes=64,
              interrupt_grace_seconds=3)


def save(cell_code: str, grade_id: str) -> str:
    """A cell that saves what check() would in collect mode."""
    return (f"import os as _os, numpy as _np\n{cell_code}\n"
            f"_np.savez(_os.path.join(_os.environ['COURSE_COLLECT_DIR'], '{grade_id}.npz'), **_out)")


def write_notebook(path: Path, cells: list) -> Path:
    nb = new_notebook(cells=[c if not isinstance(c, str) else new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def graded(source: str, grade_id: str):
    return new_code_cell(source, metadata={"nbgrader": {"grade": True, "grade_id": grade_id, "points": 1}})


def by_index(report):
    return {c.index: c for c in report.cells}


# ------------------------------------------------------------------------------------------
def test_good_notebook_collects_and_warnings_are_not_errors(tmp_path):
    nb = write_notebook(tmp_path / "good.ipynb", [
        new_markdown_cell("# Lesson"),
        "import warnings, sys\nx = 20\nwarnings.warn('deprecated thing')\nprint('to stderr', file=sys.stderr)\nprint('hello')",
        graded(save("_out = {'answer': _np.array([x + 22]), 'w': _np.ones((2, 3), _np.float32)}", "q1_answer"),
               "q1_answer"),
        "import os\nprint(os.environ['OMP_NUM_THREADS'], os.environ['MPLBACKEND'], os.environ['PYTHONUNBUFFERED'])",
    ])
    r = run_notebook(nb, scratch_dir=tmp_path / "run", limits=FAST)
    assert r.status == "ok", r.reason
    assert [c.status for c in r.cells] == ["ok", "ok", "ok"]
    assert r.cells[1].grade_id == "q1_answer" and r.cells[0].index == 1
    assert set(r.collected) == {"q1_answer"} and not r.rejected
    with np.load(r.collected["q1_answer"], allow_pickle=False) as z:
        assert int(z["answer"][0]) == 42 and z["w"].shape == (2, 3)
    executed = json.loads(r.executed_notebook.read_text())
    outs = executed["cells"][1]["outputs"]
    assert any(o.get("name") == "stderr" and "deprecated thing" in "".join(o["text"]) for o in outs)
    assert "1 Agg 1" in "".join(executed["cells"][3]["outputs"][0]["text"])
    assert r.attempts == 1 and r.isolated == BWRAP
    assert r.reason.startswith("all 3 code cells ran")


def test_missing_and_invalid_notebooks_are_reported_without_running(tmp_path):
    r = run_notebook(tmp_path / "nope.ipynb", scratch_dir=tmp_path / "a")
    assert r.status == "missing" and "nope.ipynb" in r.reason and r.cells == [] and r.attempts == 0
    bad = tmp_path / "bad.ipynb"
    bad.write_text('{"cells": [ {"cell_type": "code", "source": "x"} ')
    r = run_notebook(bad, scratch_dir=tmp_path / "b")
    assert r.status == "invalid_notebook" and "not valid JSON" in r.reason and "line 1" in r.reason
    other = tmp_path / "other.ipynb"
    other.write_text('{"hello": "world"}')
    r = run_notebook(other, scratch_dir=tmp_path / "c")
    assert r.status == "invalid_notebook" and "not a notebook" in r.reason
    (tmp_path / "dir.ipynb").mkdir()
    assert run_notebook(tmp_path / "dir.ipynb", scratch_dir=tmp_path / "d").status == "missing"


# ------------------------------------------------------------------------------------------
# The hostile notebook
# ------------------------------------------------------------------------------------------
HOSTILE = {}  # name -> cell index, filled by the fixture


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    secret = tmp / "solutions" / "lesson1_solution.txt"
    secret.parent.mkdir()
    secret.write_text("w = 0.1234")
    gradebook = tmp / "gradebook.db"
    gradebook.write_text("alice: 10/10")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]
    socket.create_connection(("127.0.0.1", port), timeout=5).close()   # reachable from the host
    coursekit_dir = Path(sandbox.runtime_paths(packages=("coursekit",))[-1])
    coursekit_before = sorted(os.listdir(coursekit_dir))

    cells = [
        ("setup", "a = 1"),
        ("early_save", graded(save("_out = {'v': _np.arange(3)}", "q_early"), "q_early")),
        ("net", f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)"),
        ("dns", "import socket\nsocket.getaddrinfo('pypi.org', 443)"),
        ("secret", f"print(open({str(secret)!r}).read())"),
        ("repo", f"print(open({str(REPO / 'pyproject.toml')!r}).read())"),
        ("gradebook", f"open({str(gradebook)!r}, 'w').write('mallory: 10/10')"),
        ("runtime_write", f"open({str(coursekit_dir / 'pwned.py')!r}, 'w').write('x = 1')"),
        ("mem", "b = bytearray(8 * 2**30)"),
        ("fork", "import os, time\nn, blocked = 0, False\ntry:\n    for i in range(1000):\n"
                 "        pid = os.fork()\n        if pid == 0:\n            time.sleep(1); os._exit(0)\n"
                 "        n += 1\nexcept BlockingIOError:\n    blocked = True\nfor _ in range(n): os.wait()\n"
                 "print('forked', n, blocked)\nassert blocked"),
        ("flood", "import sys\nfor _ in range(1024): sys.stdout.write('x' * (1 << 20))"),
        ("warn", "import warnings\nwarnings.warn('just noise')"),
        ("alive1", "print('alive', a)"),
        ("sysexit", "import sys\nsys.exit(3)"),
        ("loop", "while True:\n    pass"),
        ("alive2", "print('alive', a)"),
        ("osexit", "import os\nos._exit(1)"),
        ("after_osexit", "print(a)"),
        ("reset", "a = 2"),
        ("segv", "import ctypes\nctypes.string_at(0)"),
        ("after_segv", "print('fresh kernel')"),
        ("killparent", "import os\nos.kill(os.getppid(), 9)"),
        ("after_kill", "print('relaunched')"),
        ("late_save", graded(save("_out = {'v': _np.arange(4)}", "q_late"), "q_late")),
    ]
    HOSTILE.update({name: i for i, (name, _) in enumerate(cells)})
    nb = write_notebook(tmp / "hostile.ipynb", [c for _, c in cells])
    try:
        report = run_notebook(nb, scratch_dir=tmp / "run", limits=Limits(
            notebook_cpu_seconds=150, cell_cpu_seconds=8, memory_bytes=2 << 30, max_processes=64,
            interrupt_grace_seconds=3))
    finally:
        server.close()
    return {"report": report, "secret": secret, "gradebook": gradebook, "coursekit_dir": coursekit_dir,
            "coursekit_before": coursekit_before, "cells": by_index(report)}


def cell(h, name):
    return h["cells"][HOSTILE[name]]


@needs_bwrap
@pytest.mark.slow
def test_hostile_isolation(hostile):
    assert cell(hostile, "net").ename == "ConnectionRefusedError"
    assert cell(hostile, "dns").ename == "gaierror"
    assert cell(hostile, "secret").ename == "FileNotFoundError"
    assert cell(hostile, "repo").ename == "FileNotFoundError"
    assert cell(hostile, "gradebook").status == "error"
    assert cell(hostile, "runtime_write").ename in ("OSError", "PermissionError")
    # ... and the host's files are intact.
    assert hostile["secret"].read_text() == "w = 0.1234"
    assert hostile["gradebook"].read_text() == "alice: 10/10"
    assert sorted(os.listdir(hostile["coursekit_dir"])) == hostile["coursekit_before"]


@needs_bwrap
@pytest.mark.slow
def test_hostile_limits(hostile):
    mem = cell(hostile, "mem")
    assert mem.status == "error" and mem.ename == "MemoryError" and "memory limit" in mem.reason
    assert cell(hostile, "fork").status == "ok"           # the cell asserts it was blocked
    flood = cell(hostile, "flood")
    assert flood.status == "ok" and flood.dropped_bytes > 1_000_000_000   # within the 8 s cell limit
    assert flood.output_bytes <= FAST.cell_output_bytes and "truncated" in flood.reason
    assert cell(hostile, "warn").status == "ok"


@needs_bwrap
@pytest.mark.slow
def test_hostile_exits_loops_and_deaths(hostile):
    assert cell(hostile, "alive1").status == "ok"
    ex = cell(hostile, "sysexit")
    assert ex.status == "error" and ex.ename == "SystemExit"
    loop = cell(hostile, "loop")
    assert loop.status == "timeout" and "interrupted" in loop.reason
    assert cell(hostile, "alive2").status == "ok"         # an interrupt keeps the kernel's state
    osexit = cell(hostile, "osexit")
    assert osexit.status == "kernel_died" and "exited with status 1" in osexit.reason
    after = cell(hostile, "after_osexit")                 # a fresh kernel: the variable is gone
    assert after.status == "error" and after.ename == "NameError"
    segv = cell(hostile, "segv")
    assert segv.status == "kernel_died" and "SIGSEGV" in segv.reason
    assert cell(hostile, "after_segv").status == "ok"
    kill = cell(hostile, "killparent")
    assert kill.status == "kernel_died" and "driver was killed" in kill.reason
    assert cell(hostile, "after_kill").status == "ok"


@needs_bwrap
@pytest.mark.slow
def test_hostile_rest_of_submission_still_graded(hostile):
    r = hostile["report"]
    assert r.status == "ok" and r.attempts == 2
    assert set(r.collected) == {"q_early", "q_late"}
    assert len(r.cells) == len(HOSTILE) and all(c.status != "skipped" for c in r.cells)
    assert "code cells ran" in r.reason and "problems" in r.reason
    executed = json.loads(r.executed_notebook.read_text())
    texts = ["".join(o.get("text", "")) for o in executed["cells"][HOSTILE["after_kill"]]["outputs"]]
    assert "relaunched\n" in texts
    early = ["".join(o.get("text", "")) for o in executed["cells"][HOSTILE["alive1"]]["outputs"]]
    assert "alive 1\n" in early                           # outputs from before the relaunch kept


@needs_bwrap
@pytest.mark.slow
def test_another_student_is_graded_normally_at_the_same_time(tmp_path):
    """A fork storm holding its process limit does not starve a student graded concurrently."""
    storm = write_notebook(tmp_path / "storm.ipynb", [
        "import os, time\nkids = []\ntry:\n    for i in range(1000):\n        pid = os.fork()\n"
        "        if pid == 0:\n            time.sleep(4); os._exit(0)\n        kids.append(pid)\n"
        "except BlockingIOError:\n    pass\nfor _ in kids: os.wait()\nprint(len(kids))"])
    good = write_notebook(tmp_path / "good.ipynb", [
        "import time; time.sleep(1)\nimport subprocess, sys\n"
        "procs = [subprocess.Popen([sys.executable, '-c', 'pass']) for _ in range(8)]\n"
        "print([p.wait() for p in procs])",
        graded(save("_out = {'ok': _np.array([1])}", "q1"), "q1")])
    reports = {}
    runs = [threading.Thread(target=lambda n=n, p=p: reports.__setitem__(n, run_notebook(
        p, scratch_dir=tmp_path / f"run-{n}", limits=FAST))) for n, p in (("storm", storm), ("good", good))]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert reports["good"].status == "ok" and [c.status for c in reports["good"].cells] == ["ok", "ok"]
    assert set(reports["good"].collected) == {"q1"}
    assert reports["storm"].cells[0].status == "ok"


@needs_bwrap
@pytest.mark.slow
def test_wall_clock_limit_kills_a_frozen_sandbox(tmp_path):
    """SIGSTOP on the driver: nothing inside can end the run, the host's clock does."""
    nb = write_notebook(tmp_path / "freeze.ipynb", [
        graded(save("_out = {'v': _np.ones(1)}", "q1"), "q1"),
        "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\nimport time\ntime.sleep(100)",
        "print('never')"])
    r = run_notebook(nb, scratch_dir=tmp_path / "run",
                     limits=Limits(notebook_cpu_seconds=7, wall_factor=1, cell_cpu_seconds=60))
    assert r.status == "timeout" and "7 s wall-clock backstop" in r.reason
    assert 6.5 <= r.seconds < 20
    cells = by_index(r)
    assert cells[0].status == "ok" and cells[1].status == "timeout" and cells[2].status == "skipped"
    assert set(r.collected) == {"q1"}


@needs_bwrap
def test_disk_limit(tmp_path):
    nb = write_notebook(tmp_path / "disk.ipynb", [
        "import os, time\nfor i in range(200):\n    with open(f'junk{i}', 'wb') as f:\n"
        "        f.write(b'x' * (1 << 20))\ntime.sleep(30)",
        "print('never')"])
    r = run_notebook(nb, scratch_dir=tmp_path / "run", limits=Limits(notebook_cpu_seconds=60, disk_bytes=64 << 20))
    assert r.status == "disk_limit" and "bytes were written" in r.reason
    assert r.seconds < 30 and r.cells[1].status == "skipped"


@needs_bwrap
def test_forged_report_and_hostile_collect_files(tmp_path):
    nb = write_notebook(tmp_path / "forge.ipynb", [
        "import os, numpy as np\nd = os.environ['COURSE_COLLECT_DIR']\n"
        f"os.symlink({str(REPO / 'pyproject.toml')!r}, d + '/q_link.npz')\n"
        "np.savez(d + '/q_obj.npz', a=np.array([object()], dtype=object))\n"
        "open(d + '/q_junk.npz', 'w').write('junk')\n"
        "os.mkfifo(d + '/q_fifo.npz')\n"
        "np.savez_compressed(d + '/q_bomb.npz', a=np.zeros(200 << 20, np.uint8))\n"
        "np.savez(d + '/q_ok.npz', a=np.ones(3))\n"
        "np.savez(d + '/../escape.npz', a=np.ones(3))",
        "import os\nr = os.path.expanduser('~/.grader/report.json')\nos.unlink(r)\n"
        "os.symlink('/etc/passwd', r)\nos.kill(os.getppid(), 9)"])
    r = run_notebook(nb, scratch_dir=tmp_path / "run", limits=Limits(notebook_cpu_seconds=60, collect_bytes=16 << 20))
    assert r.status == "crashed" and "report" in r.reason
    assert set(r.collected) == {"q_ok"}
    assert set(r.rejected) == {"q_link.npz", "q_obj.npz", "q_junk.npz", "q_fifo.npz", "q_bomb.npz"}
    assert "pickles" in r.rejected["q_obj.npz"] and "uncompressed" in r.rejected["q_bomb.npz"]
    assert all(p.parent == tmp_path / "run" / "collected" for p in r.collected.values())


def test_fallback_runs_loudly_without_isolation(tmp_path, capsys):
    nb = write_notebook(tmp_path / "fb.ipynb", [
        "print('hi')", graded(save("_out = {'v': _np.arange(2)}", "q1"), "q1"), "import os\nos._exit(3)",
        "print('after')"])
    sandbox._warned = False
    r = run_notebook(nb, scratch_dir=tmp_path / "run", limits=FAST, use_bwrap=False)
    assert r.status == "ok" and not r.isolated
    assert any("SANDBOX DISABLED" in w for w in r.warnings)
    assert "SANDBOX DISABLED" in capsys.readouterr().err
    assert [c.status for c in r.cells] == ["ok", "ok", "kernel_died", "ok"]
    assert set(r.collected) == {"q1"}


def test_scratch_dir_must_be_empty(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("")
    with pytest.raises(ValueError):
        run_notebook(tmp_path / "nb.ipynb", scratch_dir=tmp_path / "run")


@needs_bwrap
def test_cpu_time_limit_kills_the_kernel_and_the_next_cell_runs(tmp_path):
    nb = write_notebook(tmp_path / "cpu.ipynb", ["while True:\n    pass", "print('next')"])
    r = run_notebook(nb, scratch_dir=tmp_path / "run",
                     limits=Limits(notebook_cpu_seconds=60, cell_cpu_seconds=30, cpu_seconds=2))
    first, second = r.cells
    assert first.status == "kernel_died" and "SIGXCPU" in first.reason
    assert first.seconds < 15 and second.status == "ok"


@needs_bwrap
@pytest.mark.parametrize("warm", [True, False])
def test_student_code_finds_no_grader_module_and_the_driver_named_its_course_first(tmp_path, warm):
    nb = write_notebook(tmp_path / "nb.ipynb", [
        "import sys\nprint(sorted(m for m in sys.modules if 'autograder' in m or m.startswith('_driver')))",
        "import autograder",
        "from autograder import _driver",
    ])
    r = run_notebook(nb, scratch_dir=tmp_path / "run", limits=FAST, zygote=None if warm else False)
    assert r.warm == warm
    cells = by_index(r)
    executed = json.loads(r.executed_notebook.read_text())
    assert "".join(executed["cells"][0]["outputs"][0]["text"]).strip() == "[]"
    assert cells[1].ename == "ModuleNotFoundError" and cells[2].ename == "ModuleNotFoundError"
    assert r.course["course"] == str(REPO) and "data_add_channel" in r.course["checks"]
