"""The grade command against what an attacker or an operator does to it.

* A symbolic link at any level below the submissions folder (a student folder, a lesson folder,
  the notebook; pointing at another student or at the solutions), in every layout, is refused
  with a reason in that student's report, and never graded as the student's work.
* A FIFO or a socket where a notebook should be is refused at once: the run does not hang.
* SIGTERM or SIGINT: every worker, zygote and sandbox is gone within 5 s, the command's output
  pipes close, results already written stay, the lock is released, and the same command resumes.
* The same submission gets the same points on an idle machine and with every core busy: cell
  limits count the kernel's CPU time, not the wall clock.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import sandbox
from autograder.grading import submissions
from submission_kit import LESSON, REPO, data_dir, grade_cmd, put, solved, write_master, add_channel_cells

_why: list = []
needs_bwrap = pytest.mark.skipif(not sandbox.bwrap_available(why=_why), reason=f"bwrap unavailable: {_why}")
NB = f"{LESSON}.ipynb"


def results(out: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "results").glob(f"*/{LESSON}.json")}


# ------------------------------------------------------------------------------------------
# Links and special files
# ------------------------------------------------------------------------------------------
def test_read_notebook_refuses_links_at_every_level_and_special_files(tmp_path):
    root = tmp_path / "subs"
    put(root, "bob", "{}")
    os.symlink(root / "bob", root / "alice")                                   # student folder
    (root / "carol").mkdir()
    os.symlink(root / "bob" / NB, root / "carol" / NB)                        # the notebook
    (root / "dave").mkdir()
    os.symlink(REPO / "solutions" / LESSON, root / "dave" / LESSON)           # lesson folder -> solutions
    (root / "erin").mkdir()
    os.mkfifo(root / "erin" / NB)
    (root / "fay").mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "fay" / NB))
    assert submissions.read_notebook(root, root / "bob" / NB) == b"{}"
    for path, words in ((root / "alice" / NB, "alice/ is a symbolic link"),
                        (root / "carol" / NB, "the notebook is a symbolic link"),
                        (root / "dave" / LESSON / NB, f"dave/{LESSON}/ is a symbolic link"),
                        (root / "erin" / NB, "a FIFO"), (root / "fay" / NB, "a socket")):
        with pytest.raises(submissions.Refused) as why:
            submissions.read_notebook(root, path)
        assert why.value.status == "refused" and words in str(why.value), str(why.value)
    with pytest.raises(submissions.Refused) as why:
        submissions.read_notebook(root, root / "nobody" / NB)
    assert why.value.status == "missing"
    server.close()


@pytest.mark.parametrize("layout", ["flat", "submitted", "exchange"])
def test_links_and_fifos_are_refused_in_every_layout_with_a_reason_in_the_students_report(tmp_path, layout):
    root = tmp_path / "subs"
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    shutil.copy(REPO / "solutions" / LESSON / NB, secret / NB)          # what a link would smuggle in
    stamp = "2024-05-01 10:00:00.000000 UTC"
    if layout == "flat":
        put(root, "bob", "{")
        os.symlink(root / "bob", root / "alice")
        (root / "carol").mkdir()
        os.symlink(secret / NB, root / "carol" / NB)
        (root / "erin").mkdir()
        os.mkfifo(root / "erin" / NB)
    elif layout == "submitted":
        base = root / "submitted"
        (base / "bob" / LESSON).mkdir(parents=True)
        (base / "bob" / LESSON / NB).write_text("{")
        (base / "alice").mkdir()
        os.symlink(secret, base / "alice" / LESSON)                          # lesson folder -> the master
        (base / "carol" / LESSON).mkdir(parents=True)
        os.symlink(secret / NB, base / "carol" / LESSON / NB)
        (base / "erin" / LESSON).mkdir(parents=True)
        os.mkfifo(base / "erin" / LESSON / NB)
    else:
        base = root / "inbound"
        (base / f"bob+{LESSON}+{stamp}").mkdir(parents=True)
        (base / f"bob+{LESSON}+{stamp}" / NB).write_text("{")
        os.symlink(secret, base / f"alice+{LESSON}+{stamp}")
        (base / f"carol+{LESSON}+{stamp}").mkdir()
        os.symlink(secret / NB, base / f"carol+{LESSON}+{stamp}" / NB)
        (base / f"erin+{LESSON}+{stamp}").mkdir()
        os.mkfifo(base / f"erin+{LESSON}+{stamp}" / NB)
    proc = grade_cmd(root, "--out", tmp_path / "out", "--lesson", LESSON, "--data-dir", data_dir(),
                     "--no-progress", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = results(tmp_path / "out")
    assert got["bob"]["status"] == "invalid_notebook"
    for student in ("alice", "carol", "erin"):
        r = got[student]
        assert r["status"] == "refused" and r["points"] == 0, (student, r["reason"])
        assert all(c["status"] == "refused" and c["points"] == 0 for c in r["cells"])
        expected = "a FIFO" if student == "erin" else "symbolic link"
        assert expected in r["reason"], (student, r["reason"])
        page = (tmp_path / "out" / "feedback" / student / f"{LESSON}.html").read_text()
        assert expected in page
    assert "refused" in proc.stdout                                    # the summary table says so


# ------------------------------------------------------------------------------------------
# Signals
# ------------------------------------------------------------------------------------------
def _descendants(pid: int) -> set:
    children: dict = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@needs_bwrap
@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_everything_within_5_s_and_the_same_command_resumes(tmp_path, signum):
    root = tmp_path / "subs"
    for student in ("ann", "ben", "cy", "dee"):
        put(root, student, solved())
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "autograder", "grade", str(root), "--out", str(out), "--jobs", "2",
            "--time-factor", "0.5", "--data-dir", data_dir(), "--no-progress"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    tree: set = set()
    while time.monotonic() < deadline:                     # wait for a result and two running sandboxes
        tree = _descendants(proc.pid)
        sandboxes = [p for p in tree if Path(f"/proc/{p}/cmdline").exists()
                     and Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"/usr/bin/bwrap")]
        if list((out / "results").glob("*/*.json")) and len(sandboxes) >= 2:
            break
        time.sleep(0.1)
    assert len(tree) > 6, tree                            # workers, zygotes, helpers, sandboxes, kernels
    sent = time.monotonic()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=30)          # returns once every holder of the pipes is gone
    took = time.monotonic() - sent
    while time.monotonic() - sent < 5 and any(_alive(p) for p in tree):   # a killed process takes a moment to go
        time.sleep(0.05)
    left = [p for p in tree if _alive(p)]
    assert took < 5 and not left, (took, [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in left])
    assert proc.returncode == 128 + signum, stdout + stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    done = {p: p.read_bytes() for p in (out / "results").glob("*/*.json")}
    assert done and all(json.loads(b)["points"] == 12 for b in done.values())
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("grade-*-ann-*"))  # scratch removed too
    again = grade_cmd(root, "--out", out, "--jobs", 2, "--time-factor", 0.5, "--data-dir", data_dir(),
                      "--no-progress")
    assert again.returncode == 0, again.stderr                 # the lock was released
    assert f"{4 - len(done)} graded, {len(done)} unchanged" in again.stdout, again.stdout
    assert all(p.read_bytes() == b for p, b in done.items())


# ------------------------------------------------------------------------------------------
# Fair limits on a busy machine
# ------------------------------------------------------------------------------------------
def _burner(seconds: float) -> str:
    return ("import time\n_t = time.process_time()\n"
            f"while time.process_time() - _t < {seconds}:   # {seconds} s of CPU, however busy the machine\n"
            "    pass\n\ndef add_channel(images):\n    return images[:, None]\n")


def _class(tmp_path: Path):
    solutions = tmp_path / "solutions"
    write_master(solutions, "98_busy", add_channel_cells("busy"))
    root = tmp_path / "subs"
    for student, seconds in (("within", 3.5), ("over", 9.0)):
        nb = json.loads((solutions / "98_busy" / "98_busy.ipynb").read_text())
        for cell in nb["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "busy_answer":
                cell["source"] = _burner(seconds)
        put(root, student, nb, "98_busy.ipynb")
    return solutions, root


def _grade(tmp_path, solutions, root, name):
    # time factor 0.025: a cell may use 6 s of CPU (60 s budget x 4 x 0.025); wall time up to 4x that + 5
    proc = grade_cmd(root, "--out", tmp_path / name, "--solutions", solutions, "--jobs", 2, "--seed", 3,
                     "--time-factor", 0.025, "--data-dir", data_dir(), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / name / "grades.csv", newline="") as f:
        rows = {r["student"]: (r["points"], r["status"]) for r in csv.DictReader(f)}
    runs = {s: json.loads((tmp_path / name / "results" / s / "98_busy.json").read_text())["runs"][0]
            for s in ("within", "over")}
    return rows, runs


@needs_bwrap
@pytest.mark.slow
@pytest.mark.real_data
def test_the_same_points_on_an_idle_and_on_a_busy_machine(tmp_path):
    solutions, root = _class(tmp_path)
    idle, _ = _grade(tmp_path, solutions, root, "idle")
    # Other jobs of a shared machine, each in its own session: with the kernel's autogroup
    # scheduling, hogs in the test's own session would only share one session's slice.
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(4)]
    try:
        busy, runs = _grade(tmp_path, solutions, root, "busy")
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert idle == busy == {"within": ("2", "passed"), "over": ("0", "failed")}
    burn = next(c for c in runs["within"]["cells"] if c["cpu_seconds"] > 3)
    # the point of the test: under load the cell took longer than its limit on the wall clock,
    # which a wall-clock limit would have punished; its CPU time stayed within the limit
    assert burn["seconds"] > 6.0 > burn["cpu_seconds"], burn
    over = next(c for c in runs["over"]["cells"] if c["status"] != "ok")
    assert over["status"] == "timeout" and 5.5 < over["cpu_seconds"] < 12, over


# ------------------------------------------------------------------------------------------
@needs_bwrap
@pytest.mark.slow
@pytest.mark.real_data
def test_a_sigkilled_worker_leaves_no_scratch_folder_behind(tmp_path):
    """SIGKILL skips the worker's cleanup: its scratch folder (the student's notebook, the inputs'
    seed) stays until the next grading process in that folder sweeps it; the notebook is graded again."""
    root, scratch = tmp_path / "subs", tmp_path / "scratch"
    scratch.mkdir()
    put(root, "ann", solved())
    args = [sys.executable, "-m", "autograder", "grade", root, "--out", tmp_path / "out", "--jobs", 1, "--seed", 7,
            "--data-dir", data_dir(), "--scratch", scratch, "--no-progress"]
    proc = subprocess.Popen([str(a) for a in args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list(scratch.glob("grade-*")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        first = list(scratch.glob("grade-*"))
        assert first, "no scratch folder appeared"
        os.kill(int(first[0].name.split("-")[1]), signal.SIGKILL)        # the grading worker
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stdout + stderr
    assert results(tmp_path / "out")["ann"]["points"] == 12.0
    assert not first[0].exists() and list(scratch.iterdir()) == []


def test_sweep_removes_only_the_folders_of_gone_grading_processes(tmp_path):
    from autograder.grading.worker import sweep_scratch

    dead = subprocess.Popen(["true"])
    dead.wait()
    gone, mine = tmp_path / f"grade-{dead.pid}-ann-01_data-x", tmp_path / f"grade-{os.getpid()}-ann-01_data-y"
    other = tmp_path / f"grades-{dead.pid}-backup"
    for d in (gone, mine, other):
        (d / "home").mkdir(parents=True)
    (gone / "home" / "01_data.ipynb").write_text("{}")
    assert sweep_scratch(tmp_path) == [gone.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


def test_a_notebook_of_60000_cells_is_refused_at_once_not_run(tmp_path, monkeypatch):
    from autograder.grading.worker import grade_task

    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))   # grade_task sets it (for its worker process): undone after
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "metadata": {}, "source": "", "outputs": [], "execution_count": None}] * 60000}
    item = {"student": "mallory", "lesson": LESSON, "path": str(tmp_path / NB), "notebook": json.dumps(nb).encode(),
            "seed": 1, "seed_id": "s", "grader_version": "v", "data_dir": str(tmp_path), "scratch": str(tmp_path)}
    r = grade_task(item)["result"]
    assert r["status"] == "invalid_notebook" and "60000 cells" in r["reason"], r["reason"]
    assert r["points"] == 0 and all(c["status"] == "invalid" for c in r["cells"])


def test_a_worker_where_bwrap_does_not_work_refuses_work_it_was_sent(monkeypatch):
    """A Dask worker that joined after the client's check is refused by the task itself, never a grader error."""
    from autograder.grading import remote, version

    monkeypatch.setenv("AUTOGRADER_BWRAP", "0")
    expected = version.fingerprint(version.course_files())
    with pytest.raises(remote.CourseMismatch) as err:
        remote.grade_remote({"student": "ann", "lesson": LESSON}, expected)
    assert "bwrap does not work there" in err.value.args[1]


@needs_bwrap
@pytest.mark.slow
@pytest.mark.real_data
def test_a_dask_task_over_its_time_is_stopped_by_its_watchdog(tmp_path, monkeypatch):
    """Dask never interrupts a running task: the task's own watchdog kills the sandbox after the
    item's max_seconds, as a local worker is replaced, and the notebook is a grader error."""
    from autograder.grading import remote, version

    monkeypatch.setenv("MNIST_DATA_DIR", data_dir())     # grade_task sets it for its process: undone after
    nb = solved()
    nb["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                        "source": "while True:\n    pass"})
    item = {"student": "ann", "lesson": LESSON, "path": str(tmp_path / NB), "notebook": json.dumps(nb).encode(),
            "seed": 1, "seed_id": "s", "grader_version": "v", "max_seconds": 5}
    r = remote.grade_remote(item, version.fingerprint(version.course_files()))["result"]
    assert r["status"] == "grader_error" and "took over 5 s and was stopped" in r["reason"], r["reason"]
