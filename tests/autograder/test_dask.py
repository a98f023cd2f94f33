"""``grade --scheduler``: a real Dask cluster on 127.0.0.1 (``dask scheduler``, ``dask worker``).

One class is graded on this machine (``--jobs 2``) and on a cluster of two workers; every cell's
points and status must be the same. During the cluster run, a watcher SIGKILLs:

* once, the Dask worker process grading ``partly`` (mid-notebook): Dask moves that task to
  another worker, and the grades are still identical;
* every time, the worker grading ``killer``: after 2 x (``allowed-failures`` + 1) deaths where it
  really ran (set to 1 for the test scheduler; deaths counted against it while it only waited in a
  killed worker's queue cost nothing) that notebook gets a grader error with a reason; nobody else
  loses anything.

A third worker whose course differs (a master changed) is refused by name; a scheduler that
goes away stops the command with one line, and the same command resumes from what was written.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import sandbox
from submission_kit import LESSON, REPO, copy_course, data_dir, grade_cmd, partly_wrong, put, solution, solved

_why: list = []
pytestmark = [pytest.mark.slow, pytest.mark.real_data,
              pytest.mark.skipif(not sandbox.bwrap_available(why=_why), reason=f"bwrap unavailable: {_why}")]
DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A scheduler and named workers started with Dask's own commands; stopped by ``close``."""

    def __init__(self, tmp: Path, workers=("w1", "w2"), allowed_failures: int = 1):
        self.tmp, self.procs, self.port = tmp, {}, free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=str(allowed_failures))
        self.procs["scheduler"] = self._start(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"], "scheduler", env)
        for name in workers:
            self.add_worker(name)
        if workers:
            self.wait_for(len(workers))

    def _start(self, argv, name, env=None):
        log = open(self.tmp / f"{name}.log", "w")
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def add_worker(self, name, env=None):
        env = dict(env or os.environ, MNIST_DATA_DIR=data_dir())
        self.procs[name] = self._start([DASK, "worker", self.address, "--nthreads", "1", "--no-dashboard",
                                        "--name", name, "--local-directory", str(self.tmp / name)], name, env)

    def wait_for(self, n: int, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(n, timeout=timeout)

    def close(self) -> None:
        for p in self.procs.values():
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait(timeout=30)


def grading_worker_of(student: str) -> int | None:
    """The pid of the Dask worker process grading ``student`` now: the parent of its sandbox."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if not cmd[0].endswith(b"bwrap") or not any(f"-{student}-{LESSON}-".encode() in a for a in cmd):
                continue
            worker = _parent(int(pid))              # the worker process (a spawn child of its nanny)
            if b"dask" in Path(f"/proc/{_parent(worker)}/cmdline").read_bytes():
                return worker
        except (OSError, IndexError, ValueError):
            continue
    return None


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


class Killer(threading.Thread):
    """SIGKILL the worker grading ``always`` each time, and the one grading ``once`` a single time."""

    def __init__(self, always: str, once: str):
        super().__init__(daemon=True)
        self.always, self.once, self.stop, self.kills = always, once, threading.Event(), []

    def run(self):
        try:
            self._run()
        except BaseException as err:  # noqa: BLE001  (shown by the assertion on kills)
            self.kills.append(("watcher failed", repr(err)))

    def _run(self):
        once_done = False
        while not self.stop.wait(0.2):
            for student in (() if once_done else (self.once,)) + (self.always,):
                pid = grading_worker_of(student)
                if pid:
                    time.sleep(1.0 if student == self.once else 0)   # mid-notebook
                    try:
                        os.kill(pid, signal.SIGKILL)
                        self.kills.append((student, pid))
                        once_done = once_done or student == self.once
                    except OSError:
                        pass
                    time.sleep(0.5)


def rows(out: Path) -> dict:
    with open(out / "grades.csv", newline="") as f:
        return {(r["student"], r["lesson"], r["grade_id"]): (r["points"], r["status"]) for r in csv.DictReader(f)}


def build(root: Path) -> None:
    put(root, "correct", solved())
    put(root, "partly", partly_wrong())
    put(root, "exiter", solved(data_normalize_answer=solution("data_normalize_answer") + "import os\nos._exit(3)\n"))
    put(root, "badjson", '{"cells": [')
    put(root, "killer", solved())
    (root / "linked").mkdir()
    os.symlink(root / "correct", root / "linked" / "01_data")      # another student's folder


def grade_then_kill(c: Cluster, victim: str, root: Path, out: Path, *extra, timeout: float):
    """Three correct notebooks graded on ``c``; once the first result is written, the process group
    of ``c.procs[victim]`` is SIGKILLed; the cluster is closed. (proc, stdout, stderr) of the command."""
    for student in ("ann", "ben", "cy"):
        put(root, student, solved())
    args = [sys.executable, "-m", "autograder", "grade", root, "--out", out, "--scheduler", c.address, *extra,
            "--seed", 7, "--time-factor", 0.5, "--no-progress"]
    proc = subprocess.Popen([str(a) for a in args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list((out / "results").glob("*/*.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        os.killpg(c.procs[victim].pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        c.close()
    return proc, stdout, stderr


def resume_here(root: Path, out: Path, kept: int) -> None:
    """The same command, on this machine, grades only the 3 - ``kept`` notebooks still missing."""
    again = grade_cmd(root, "--out", out, "--jobs", 1, "--seed", 7, "--time-factor", 0.5,
                      "--data-dir", data_dir(), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert f"{3 - kept} graded, {kept} unchanged" in again.stdout, again.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dask"))
    yield c
    c.close()


def test_cluster_grades_equal_local_grades_despite_killed_workers(cluster, tmp_path):
    root = tmp_path / "subs"
    build(root)
    local = grade_cmd(root, "--out", tmp_path / "local", "--jobs", 2, "--seed", 7, "--time-factor", 0.5,
                      "--data-dir", data_dir(), "--no-progress")
    assert local.returncode == 0, local.stdout + local.stderr
    killer = Killer(always="killer", once="partly")
    killer.start()
    try:
        remote = grade_cmd(root, "--out", tmp_path / "dask", "--scheduler", cluster.address, "--seed", 7,
                           "--time-factor", 0.5, "--no-progress")
    finally:
        killer.stop.set()
        killer.join()
    assert remote.returncode == 1, remote.stdout + remote.stderr          # killer: a grader error
    assert "Traceback" not in remote.stderr
    killed = [s for s, _ in killer.kills]
    # killer: 2 keys x (allowed-failures + 1) deaths where it really ran; a key of its counted dead
    # when it was only queued on a worker killed for partly is a bystander's, sent again for free
    from autograder.grading.engine import MAX_BYSTANDER_RESENDS

    assert killed.count("partly") == 1, killer.kills
    assert 4 <= killed.count("killer") <= 4 + MAX_BYSTANDER_RESENDS, killer.kills
    here, there = rows(tmp_path / "local"), rows(tmp_path / "dask")
    assert {k: v for k, v in there.items() if k[0] != "killer"} == {k: v for k, v in here.items() if k[0] != "killer"}
    assert here[("correct", LESSON, "data_make_loader")] == ("4", "passed")
    assert here[("linked", LESSON, "data_add_channel")] == ("0", "refused")
    result = json.loads((tmp_path / "dask" / "results" / "killer" / f"{LESSON}.json").read_text())
    assert result["status"] == "grader_error" and "died each time" in result["reason"], result["reason"]
    assert "killer" in remote.stderr and "died each time" in remote.stderr
    # the feedback came back with the results, written by the client
    assert (tmp_path / "dask" / "feedback" / "partly" / f"{LESSON}.html").stat().st_size > 10_000


def test_a_worker_with_another_course_is_refused_by_name(cluster, tmp_path):
    other = copy_course(tmp_path / "course")
    master = other / "solutions" / LESSON / f"{LESSON}.ipynb"
    nb = json.loads(master.read_text())
    nb["metadata"]["changed_by"] = "another instructor"
    master.write_text(json.dumps(nb))
    cluster.add_worker("stranger", env=dict(os.environ, PYTHONPATH=str(other)))
    cluster.wait_for(3)
    root = tmp_path / "subs"
    put(root, "ann", solved())
    proc = grade_cmd(root, "--out", tmp_path / "out", "--scheduler", cluster.address, "--seed", 7,
                     "--time-factor", 0.5, "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    refused = [line for line in proc.stderr.splitlines() if "refused the Dask worker" in line]
    assert len(refused) == 1 and f"solutions/{LESSON}/{LESSON}.ipynb differs" in refused[0], proc.stderr
    assert "(2 workers" in proc.stdout
    assert rows(tmp_path / "out")[("ann", LESSON, "data_make_loader")] == ("4", "passed")


def test_losing_the_scheduler_stops_with_one_line_and_the_same_command_resumes(tmp_path):
    (tmp_path / "c").mkdir()
    c = Cluster(tmp_path / "c", workers=("w1",))
    root = tmp_path / "subs"
    proc, stdout, stderr = grade_then_kill(c, "scheduler", root, tmp_path / "out", timeout=120)
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    lost = [line for line in stderr.splitlines() if "lost the Dask scheduler" in line]
    assert len(lost) == 1 and "run the same command again" in lost[0], stderr
    kept = len(list((tmp_path / "out" / "results").glob("*/*.json")))
    assert 1 <= kept < 3
    resume_here(root, tmp_path / "out", kept)


def test_a_worker_run_from_a_clone_grades_with_it_and_a_cluster_left_without_workers_stops(tmp_path):
    """A worker whose packages come from a clone (PYTHONPATH) grades with that clone's course,
    sandbox and zygote alike (full marks); when every worker is gone the command says so at once,
    stops after --worker-wait seconds with one line and exit 1, and the same command resumes."""
    (tmp_path / "c").mkdir()
    c = Cluster(tmp_path / "c", workers=())
    c.add_worker("twin", env=dict(os.environ, PYTHONPATH=str(copy_course(tmp_path / "twin"))))
    c.wait_for(1)
    root, results = tmp_path / "subs", tmp_path / "out" / "results"
    # killing the worker with its nanny leaves none; the command used to wait forever here
    proc, stdout, stderr = grade_then_kill(c, "twin", root, tmp_path / "out", "--worker-wait", 5, timeout=180)
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    said = [line for line in stderr.splitlines() if "no Dask worker that can grade" in line]
    assert len(said) == 2 and "waiting 5 s for one" in said[0], stderr
    assert "has been connected to" in said[1] and "run the same command again" in said[1], stderr
    kept = [json.loads(p.read_text()) for p in results.glob("*/*.json")]
    assert 1 <= len(kept) < 3 and all(r["points"] == 12.0 for r in kept), [(r["student"], r["points"]) for r in kept]
    resume_here(root, tmp_path / "out", len(kept))


def sandboxes_of(student: str) -> list:
    """Pids of the bwrap sandboxes grading ``student`` now (their scratch folder names them)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"bwrap") and any(f"-{student}-{LESSON}-".encode() in a for a in cmd):
            out.append(int(pid))
    return out


def test_stopping_the_command_stops_the_notebooks_the_workers_are_grading(tmp_path):
    """SIGTERM to the grade command: the workers kill the sandboxes of the notebooks they were
    grading (Dask itself lets a running task finish: here, 100 more CPU seconds)."""
    (tmp_path / "c").mkdir()
    c = Cluster(tmp_path / "c", workers=("w1",))
    root = tmp_path / "subs"
    slow = solved()
    slow["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                          "source": "import time\nt = time.process_time()\nwhile time.process_time() - t < 100:\n    pass"})
    put(root, "slow", slow)
    args = [sys.executable, "-m", "autograder", "grade", root, "--out", tmp_path / "out", "--scheduler", c.address,
            "--seed", 7, "--time-factor", 2, "--no-progress"]
    proc = subprocess.Popen([str(a) for a in args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not sandboxes_of("slow") and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert sandboxes_of("slow"), "the notebook never started"
        time.sleep(3)                                   # into its cells
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        end = time.monotonic() + 30                     # a hang detector: the old behaviour was 100 s
        while sandboxes_of("slow") and time.monotonic() < end:
            time.sleep(0.2)
        left = sandboxes_of("slow")
    finally:
        if proc.poll() is None:
            proc.kill()
        c.close()
    assert proc.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert not left, "the worker went on grading a notebook of a stopped command"


def test_usage_errors_for_the_cluster_are_one_line():
    for args, expected in ((["--scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler"),
                           (["--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"], "--jobs is for grading on this machine"),
                           (["--worker-wait", "5"], "--worker-wait is for grading on a Dask cluster"),
                           (["--scheduler", "tcp://127.0.0.1:1", "--worker-wait", "0"], "--worker-wait must be a positive number")):
        proc = grade_cmd(REPO / "lessons", "--out", Path("/tmp") / f"never-{os.getpid()}", *args, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr


# --- a notebook that died only as a bystander (unit: no cluster) -------------------------------
class _FakeClient:
    def __init__(self, starts: int):
        self.starts = starts

    def get_events(self, topic):
        return tuple((0.0, {"worker": "w"}) for _ in range(self.starts))

    def run_on_scheduler(self, fn):
        return 1                                  # allowed-failures


class _DeadFuture:
    key = "grade-ann-01_data-x"

    def result(self):
        from distributed import KilledWorker

        class Last:
            address = "tcp://127.0.0.1:1"

        raise KilledWorker(self.key, Last(), 1)


@pytest.mark.parametrize("starts, bystander", [(0, True), (1, True), (2, False)])
def test_a_death_counted_against_a_notebook_that_never_ran_is_a_bystanders(starts, bystander):
    """Killed twice (allowed-failures 1) but started fewer times: a worker died with it in its queue."""
    from autograder.grading.dask_engine import DaskEngine

    engine = DaskEngine.__new__(DaskEngine)
    engine.client, engine.futures = _FakeClient(starts), {}
    future = _DeadFuture()
    engine.futures[future] = ("ticket", {}, None)
    outcome = engine._outcome(future)
    assert (outcome.kind, outcome.bystander) == ("died", bystander)


def test_a_bystander_is_sent_again_without_costing_a_try_but_not_forever(tmp_path, monkeypatch):
    from autograder.grading import engine as engine_mod
    from autograder.grading.engine import MAX_BYSTANDER_RESENDS, Outcome, grade

    class Engine:                                  # every attempt: the worker died with it queued
        window, max_tries, sent = 1, 2, 0

        def submit(self, item):
            self.sent += 1
            return self.sent

        def wait(self, timeout):
            return [Outcome(self.sent, "died", bystander=True, reason="the Dask workers ... died each time")]

    eng = Engine()
    item = {"student": "ann", "lesson": LESSON, "seed_id": "s", "grader_version": "v"}
    monkeypatch.setattr(engine_mod.submissions, "attach", lambda item, root: item)   # no file to read here
    counts = grade(eng, [item], tmp_path / "out", tmp_path)
    assert eng.sent == MAX_BYSTANDER_RESENDS + 2                    # the resends, then its two tries
    assert counts["errors"] == 1
    result = json.loads((tmp_path / "out" / "results" / "ann" / f"{LESSON}.json").read_text())
    assert result["status"] == "grader_error" and "died each time" in result["reason"]
