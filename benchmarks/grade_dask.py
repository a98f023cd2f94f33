"""Grading throughput on a Dask cluster of 1, 2, ... workers on this machine, and the engine's overhead.

For each ``--workers`` count N: start ``dask scheduler`` and N ``dask worker --nthreads 1`` on
127.0.0.1, grade the synthetic class of ``benchmarks/grade.py`` through ``--scheduler`` twice
(``cold``: the workers' zygotes start with the first command; ``warm``: a second command, as
with a cluster that stays up), and grade it with the local engine (``--jobs N``) for comparison.

    wall s        the grade command, start to exit
    nb/min        notebooks per minute
    in worker s   the sum of the seconds each notebook took inside its worker (result "seconds")
    overhead/task (wall x N - in worker) / notebooks: what a notebook costs beyond its own grading
                  (the command's start, connecting, sending, writing, idle workers at the tail)

    python benchmarks/grade_dask.py                          # 10 students x lessons 01-03, 1 and 2 workers
    python benchmarks/grade_dask.py --students 30 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.grade import DEFAULT_LESSONS, _busy_cpu_seconds, build_class  # noqa: E402

DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(n: int, logs: Path) -> tuple:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)]
    for i in range(n):
        procs.append(subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--no-dashboard",
                                       "--local-directory", str(logs / f"w{i}")],
                                      stdout=open(logs / f"w{i}.log", "w"), stderr=subprocess.STDOUT,
                                      start_new_session=True))
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(n, timeout=120)
    return address, procs


def stop(procs) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()


def grade(class_dir: Path, out: Path, lessons, extra) -> dict:
    cmd = [sys.executable, "-m", "autograder", "grade", str(class_dir), "--out", str(out), "--seed", "1",
           "--force", "--no-progress", *extra]
    for lesson in lessons:
        cmd += ["--lesson", lesson]
    busy0, t0 = _busy_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    seconds = [json.loads(p.read_text()).get("seconds") or 0.0 for p in (out / "results").glob("*/*.json")]
    return {"wall": wall, "exit": proc.returncode, "n": len(seconds), "in_worker": sum(seconds),
            "busy": (_busy_cpu_seconds() - busy0) / wall, "tail": proc.stderr.strip().splitlines()[-1:]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--lessons", nargs="+", default=DEFAULT_LESSONS)
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gradedask-"))
    try:
        build_class(work / "class", args.students, args.lessons)
        print(f"# {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}, {args.students} students x {len(args.lessons)} lessons")
        print(f"{'engine':<22} {'wall s':>7} {'nb':>4} {'nb/min':>7} {'in worker s':>11} {'overhead/task s':>15} "
              f"{'busy cpu':>8} {'exit':>4}")
        for n in args.workers:
            logs = work / f"cluster{n}"
            logs.mkdir()
            address, procs = start_cluster(n, logs)
            try:
                runs = [(f"dask {n}w, cold", grade(work / "class", work / f"d{n}c", args.lessons, ["--scheduler", address])),
                        (f"dask {n}w, warm", grade(work / "class", work / f"d{n}w", args.lessons, ["--scheduler", address]))]
            finally:
                stop(procs)
            runs.append((f"local --jobs {n}", grade(work / "class", work / f"l{n}", args.lessons, ["--jobs", str(n)])))
            for name, r in runs:
                overhead = (r["wall"] * n - r["in_worker"]) / max(1, r["n"])
                print(f"{name:<22} {r['wall']:>7.1f} {r['n']:>4} {60 * r['n'] / r['wall']:>7.1f} {r['in_worker']:>11.1f} "
                      f"{overhead:>15.2f} {r['busy']:>8.2f} {r['exit']:>4}", flush=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
