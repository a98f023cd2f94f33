"""The grade command against nbgrader on the same notebooks, in the same run, and where its time goes.

One student's submission (the masters of the chosen lessons: every cell runs, full marks) is
graded alternately, ``--rounds`` times each:

    ours        python -m autograder grade SUBS --out FRESH --jobs 1 --force     (sandboxed, one worker)
    nbgrader    nbgrader's autograde (NbGraderAPI.autograde per lesson, in one process, as nbgrader's
                own CLI does it), in a course folder whose assignments were generated beforehand
                (not timed)
    regrade     python -m autograder grade SUBS1 --out FRESH --jobs 1 --force    (lesson 1 alone)

and prints each wall time (process start to exit), the ratio ours / nbgrader per round, and
the CPU-seconds per second the whole machine was busy meanwhile ("busy cpu": both graders use
about one core, so 1.0-1.3 is an otherwise idle machine; above 1.5, other work shared the
cores: distrust that round). Then the breakdown of the last ``ours`` run, from what
the grader records: parent imports (measured apart), worker start, the zygote's imports
(torch, numpy, IPython: once per worker), sandbox start, kernel start, each cell (the MNIST
load among them), any second run, judging, the feedback page.

    python benchmarks/grade_vs_nbgrader.py                        # lessons 01-03, 2 rounds
    python benchmarks/grade_vs_nbgrader.py --lessons all --rounds 1
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.grade import DEFAULT_LESSONS, _busy_cpu_seconds  # noqa: E402

NBGRADER = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from autograder.grade import _fast_gradebook
from autograder.release import nbgrader_config, quiet_nbgrader
quiet_nbgrader(); _fast_gradebook()
from nbgrader.apps import NbGraderAPI
root = Path(sys.argv[2])
api = NbGraderAPI(config=nbgrader_config(**{"CourseDirectory.root": str(root),
      "CourseDirectory.source_directory": "source", "CourseDirectory.release_directory": "release",
      "CourseDirectory.db_url": f"sqlite:///{root / 'gradebook.db'}"}))
for lesson in sys.argv[4:]:
    if sys.argv[3] == "generate":
        assert api.generate_assignment(lesson)["success"]
    else:
        out = api.autograde(lesson, "alice", force=True, create=True)
        assert out["success"], out.get("log", "")[-2000:]
"""


def timed(argv, cwd=REPO) -> tuple:
    """(wall seconds, CPU-seconds the whole machine was busy meanwhile, completed process)."""
    busy0, t0 = _busy_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, _busy_cpu_seconds() - busy0, proc


def setup(work: Path, lessons: list) -> tuple:
    subs, one, course = work / "subs", work / "subs1", work / "course"
    for lesson in lessons:
        master = REPO / "solutions" / lesson / f"{lesson}.ipynb"
        (subs / "alice").mkdir(parents=True, exist_ok=True)
        shutil.copy(master, subs / "alice" / master.name)
        shutil.copytree(REPO / "solutions" / lesson, course / "source" / lesson,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        (course / "submitted" / "alice" / lesson).mkdir(parents=True)
        shutil.copy(master, course / "submitted" / "alice" / lesson / master.name)
    (one / "alice").mkdir(parents=True)
    shutil.copy(REPO / "solutions" / lessons[0] / f"{lessons[0]}.ipynb", one / "alice")
    gen = subprocess.run([sys.executable, "-c", NBGRADER, str(REPO), str(course), "generate", *lessons],
                         capture_output=True, text=True)
    if gen.returncode:
        raise SystemExit(f"nbgrader generate_assignment failed:\n{gen.stderr[-2000:]}")
    return subs, one, course


def breakdown(out: Path, lessons: list, parent_imports: float) -> list:
    lines = [f"{'parent imports (python -m autograder grade, measured apart)':<62} {parent_imports:6.2f} s"]
    results = [json.loads((out / "results" / "alice" / f"{lesson}.json").read_text()) for lesson in lessons]
    first = results[0].get("timings", {})
    lines.append(f"{'worker start, until its first notebook arrived':<62} {first.get('worker_age_at_first_item', 0):6.2f} s")
    slow = first.get("zygote_slow_imports") or {}
    lines.append(f"{'zygote imports, once per worker (' + ', '.join(f'{k} {v:.1f}' for k, v in slow.items() if v > 0.2) + ')':<62} "
                 f"{first.get('zygote_imports') or 0:6.2f} s")
    for r in results:
        master = json.loads((REPO / "solutions" / r["lesson"] / f"{r['lesson']}.ipynb").read_text())
        src = {i: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
               for i, c in enumerate(master["cells"])}
        t = r.get("timings", {})
        lines.append(f"{r['lesson']}: {r['points']:g}/{r['max_points']:g} points, {r['seconds']:.2f} s in the worker")
        for run in r["runs"]:
            rt = run.get("timings", {})
            label = "  run" if run["run"] == 1 else f"  run {run['run']} (after a cell killed the kernel)"
            lines.append(f"{label:<62} {run['seconds']:6.2f} s  ({run.get('cpu_seconds', 0):.2f} CPU s in cells)")
            for key, what in (("zygote_wait", "waiting for the zygote (first notebook only)"),
                              ("sandbox_start", "sandbox start (bwrap holder)"), ("spawn", "fork into the sandbox"),
                              ("kernel_start", "kernel start (fork + IPython ready)")):
                v = rt.get(key)
                if v:
                    lines.append(f"    {what:<58} {sum(v) if isinstance(v, list) else v:6.2f} s")
            cells = sorted(run.get("cells", []), key=lambda c: -c["seconds"])
            rest = 0.0
            for c in cells:
                text = src.get(c["index"], "").strip().splitlines()
                head = (text[0] if text else "")[:44]
                if "load_digits" in src.get(c["index"], ""):
                    head = "[MNIST load] " + head
                if c["seconds"] >= 0.3:
                    lines.append(f"    cell {c['index']:>2} {head:<50} {c['seconds']:6.2f} s")
                else:
                    rest += c["seconds"]
            lines.append(f"    {'the other ' + str(sum(1 for c in cells if c['seconds'] < 0.3)) + ' cells':<58} {rest:6.2f} s")
        lines.append(f"  {'judging (in the worker)':<60} {t.get('judge', 0):6.2f} s")
        lines.append(f"  {'feedback page':<60} {t.get('feedback', 0):6.2f} s")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lessons", nargs="+", default=DEFAULT_LESSONS, help="lesson ids, or 'all'")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    from coursekit import config

    lessons = [lesson.id for lesson in config.load().lessons] if args.lessons == ["all"] else args.lessons
    work = Path(tempfile.mkdtemp(prefix="gradevs-"))
    try:
        subs, one, course = setup(work, lessons)
        print(f"# {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}, lessons {' '.join(lessons)}")
        print(f"{'round':>5} {'ours s':>7} {'nbgrader s':>10} {'ratio':>6} {'regrade s':>9} {'busy cpu':>9}")
        ratios, ours_all, regrades = [], [], []
        out = None
        for k in range(1, args.rounds + 1):
            out = work / f"out{k}"
            a, ca, pa = timed([sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out),
                               "--jobs", "1", "--seed", "1", "--force", "--no-progress"])
            b, cb, pb = timed([sys.executable, "-c", NBGRADER, str(REPO), str(course), "autograde", *lessons])
            c, cc, pc = timed([sys.executable, "-m", "autograder", "grade", str(one), "--out", str(work / f"one{k}"),
                               "--jobs", "1", "--seed", "1", "--force", "--no-progress"])
            for name, p in (("ours", pa), ("nbgrader", pb), ("regrade", pc)):
                if p.returncode:
                    raise SystemExit(f"{name} failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
            ratios.append(a / b)
            ours_all.append(a)
            regrades.append(c)
            busy = (ca + cb + cc) / (a + b + c)
            print(f"{k:>5} {a:>7.1f} {b:>10.1f} {a / b:>6.2f} {c:>9.1f} {busy:>9.2f}", flush=True)
        print(f"\nmedian ratio ours / nbgrader: {statistics.median(ratios):.2f}; median regrade of "
              f"{lessons[0]} alone: {statistics.median(regrades):.1f} s")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import autograder.__main__, autograder.grading.cli"], cwd=REPO)
        parent = time.perf_counter() - t0
        print(f"\nwhere the time of the last 'ours' run went ({ours_all[-1]:.1f} s wall):")
        for line in breakdown(out, lessons, parent):
            print(line)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
