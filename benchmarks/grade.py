"""How fast does ``python -m autograder grade`` grade a class, with 1, 2, ... worker processes?

Builds a synthetic class of ``--students`` students (``<student>/<lesson>.ipynb``) in a
temporary folder, grades it with ``python -m autograder grade CLASS --out OUT --jobs J --force
--no-progress --seed S`` once per ``--jobs`` value (a fresh OUT each time), and prints per run:

    wall s      the grade command's wall time, process start to exit (workers' start included)
    notebooks   notebooks in the class (students x lessons; missing ones count: they get a result)
    s/sub       wall seconds per submission (a submission = one student's notebooks)
    sub/min     submissions per minute
    tree RSS    peak of the summed resident memory of the grader's whole process tree (the
                command, its workers, the sandboxes and their kernels), sampled from /proc every
                0.2 s; shared pages (torch's libraries) count once per process: an overstatement
    tree PSS    the same with proportional set sizes (shared pages split between the processes
                sharing them: what the tree really occupies), sampled every 1 s
    max proc    the largest RSS of a single process of that tree (sampled likewise)
    exit        the command's exit status (0: graded; 1: some grader error; 2: usage)
    own cpu     CPU-seconds per second the grader's tree used (at most the core count; sampled,
                so a process's last 0.2 s is missed)
    other cpu   CPU-seconds per second used by OTHER processes meanwhile (0 = a quiet machine;
                1 = a core busy elsewhere: distrust that row's timings), as in benchmarks/train.py

and then whether every cell's points and status are the same in all the runs (same seed).

The class (students shuffled with a fixed seed; their names say what they are):
    1/2  correct   the released lesson with the master's solution code in every exercise cell
    1/3  partly    as correct, but one exercise cell has a realistic bug (e.g. /256, a flipped
                   kernel, no zero_grad) and, for every other one of them, the next exercise cell
                   is left as the released stub
    1/6  broken    (at least one) one notebook broken, the others correct, in turn: invalid
                   JSON, ``os._exit(3)`` in an exercise cell, no notebook, a top-level
                   ``while True: pass`` left in an exercise cell (interrupted after the cell
                   limit, 60 s for a 15 s lesson), ...; the lesson broken rotates too

    python benchmarks/grade.py                                  # 30 students, lessons 1-3, jobs 1 2 4
    python benchmarks/grade.py --students 4 --lessons all --jobs 2
    python benchmarks/grade.py --keep /tmp/gradebench           # keep the class and the outputs

``--lessons`` defaults to the three lessons without training (01_data 02_conv 03_fc), so
that a run stays within minutes; ``--lessons all`` grades the full six-lesson submission
(lesson 5 trains: about 30-40 s per notebook on one thread; see benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from coursekit import config  # noqa: E402

DEFAULT_LESSONS = ["01_data", "02_conv", "03_fc"]
# A realistic bug per exercise cell: (text of the master's solution, what the student wrote).
# An exercise not listed here (or whose text changed in the master) is left as the stub.
BUGS = {
    "data_add_channel_answer": ("images[:, np.newaxis, :, :]", "images[:, :, :, np.newaxis]"),
    "data_normalize_answer": ("/ 255", "/ 256"),
    "data_to_tensors_answer": ("normalize(add_channel(images))", "add_channel(images).astype(np.float32)"),
    "data_make_loader_answer": ("shuffle=shuffle", "shuffle=False"),
    "conv_cross_correlate_answer": ("* kernel).sum()", "* kernel.flip(0, 1)).sum()"),
    "conv_output_size_answer": ("2 * padding", "padding"),
    "conv_features_answer": ("x = F.max_pool2d(F.relu(self.conv2(x)), 2)", "x = F.relu(self.conv2(x))"),
    "fc_flatten_answer": ("torch.flatten(features, start_dim=1)", "torch.flatten(features)"),
    "fc_net_answer": ("return self.fc3(x)", "return F.relu(self.fc3(x))"),
    "fc_count_parameters_answer": ("for p in net.parameters())", "for p in net.parameters() if p.dim() > 1)"),
    "train_optimizer_answer": ("lr=0.001", "lr=0.01"),
    "train_step_answer": ("optimizer.zero_grad()", "pass"),
    "train_epoch_answer": ("mean = running / log_every", "mean = running / i"),
    "eval_predict_answer": ("argmax(dim=1)", "argmax(dim=0)"),
    "eval_evaluate_answer": ("criterion(scores, y).item() * len(y)", "criterion(scores, y).item()"),
    "eval_confusion_answer": ("matrix[t, p]", "matrix[p, t]"),
    "ethics_per_class_answer": ("np.mean(y_pred[mine] == d)", "np.mean(y_pred == d)"),
    "ethics_thicken_answer": ("padding=1", "padding=0"),
}
BROKEN = ["badjson", "exit", "missing", "loop"]


# ------------------------------------------------------------------------------------------
# Phase 1: the class
# ------------------------------------------------------------------------------------------
def _src(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _exercises(lesson: str) -> dict:
    """grade_id -> the master's solution, as a student who solved it would write it (no markers)."""
    master = json.loads((REPO / "solutions" / lesson / f"{lesson}.ipynb").read_text())
    return {_grade_id(c): "\n".join(line for line in _src(c).splitlines() if "### " not in line) + "\n"
            for c in master["cells"]
            if c["cell_type"] == "code" and c.get("metadata", {}).get("nbgrader", {}).get("solution")}


def notebook(lesson: str, answers: dict) -> dict:
    """The released lesson with these exercise cells replaced (grade_id -> code)."""
    nb = json.loads((REPO / "lessons" / lesson / f"{lesson}.ipynb").read_text())
    for cell in nb["cells"]:
        if _grade_id(cell) in answers:
            cell["source"] = answers[_grade_id(cell)]
    return nb


def partly_wrong(lesson: str, k: int) -> dict:
    """Exercise k (mod their number) with its bug; for odd k, also the next one left as the stub."""
    solutions = _exercises(lesson)
    ids = list(solutions)
    answers = dict(solutions)
    bug = ids[k % len(ids)]
    old, new = BUGS.get(bug, (None, None))
    if old and old in answers[bug]:
        answers[bug] = answers[bug].replace(old, new)
    else:
        del answers[bug]                            # left as the stub
    if k % 2 and len(ids) > 1:
        answers.pop(ids[(k + 1) % len(ids)], None)
    return notebook(lesson, answers)


def broken(lesson: str, kind: str):
    """One broken notebook: JSON text, or None for a missing one."""
    if kind == "badjson":
        return '{"cells": [ {"cell_type": "code", '
    if kind == "missing":
        return None
    answers = _exercises(lesson)
    first = next(iter(answers))
    tail = {"exit": "import os\nos._exit(3)\n", "loop": "while True:   # left from debugging\n    pass\n"}[kind]
    answers[first] += tail
    return notebook(lesson, answers)


def build_class(root: Path, students: int, lessons: list) -> dict:
    """Write the class under root; returns {student: kind}."""
    n_broken = max(1, round(students / 6)) if students >= 3 else 0
    n_partly = round(students / 3)
    kinds = ["broken"] * n_broken + ["partly"] * n_partly + ["correct"] * (students - n_broken - n_partly)
    random.Random(0).shuffle(kinds)
    roster, counts = {}, {"broken": 0, "partly": 0}
    for i, kind in enumerate(kinds, start=1):
        k = counts.get(kind, 0)
        counts[kind] = k + 1
        label = BROKEN[k % len(BROKEN)] if kind == "broken" else kind
        name = f"s{i:02d}-{label}"
        roster[name] = label
        (root / name).mkdir(parents=True)
        for j, lesson in enumerate(lessons):
            if kind == "partly":
                nb = partly_wrong(lesson, k + j)
            elif kind == "broken" and j == k % len(lessons):
                nb = broken(lesson, label)
            else:
                nb = notebook(lesson, _exercises(lesson))
            if nb is not None:
                (root / name / f"{lesson}.ipynb").write_text(nb if isinstance(nb, str) else json.dumps(nb))
    return roster


# ------------------------------------------------------------------------------------------
# Phase 2: one grading run, with its memory sampled
# ------------------------------------------------------------------------------------------
def _tree(root_pid: int) -> dict:
    """{pid: CPU-seconds so far (user + system)} of root_pid and all its descendants (/proc/*/stat)."""
    children, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, frontier = {root_pid: cpu.get(root_pid, 0.0)}, [root_pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            tree[child] = cpu.get(child, 0.0)
            frontier.append(child)
    return tree


def _memory_mib(pids, pss: bool) -> list:
    """RSS (cheap: /proc/PID/statm) or PSS (/proc/PID/smaps_rollup) of each of pids, MiB."""
    sizes = []
    for pid in pids:
        try:
            if pss:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    sizes.append(next(int(line.split()[1]) for line in f if line.startswith("Pss:")) / 1024)
            else:
                with open(f"/proc/{pid}/statm") as f:
                    sizes.append(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    return sizes


def _busy_cpu_seconds() -> float:
    """CPU-seconds all processes on this machine have spent busy (/proc/stat, minus idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def grade(class_dir: Path, out: Path, jobs: int, lessons: list, seed: int) -> dict:
    """Run the grade command once; its wall time, exit status, peak memory and summary line."""
    command = [sys.executable, "-m", "autograder", "grade", str(class_dir), "--out", str(out),
               "--jobs", str(jobs), "--seed", str(seed), "--force", "--no-progress"]
    for lesson in lessons:
        command += ["--lesson", lesson]
    busy0 = _busy_cpu_seconds()
    log = open(out.parent / f"{out.name}.log", "w")
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    peak, done = {"rss": 0.0, "pss": 0.0, "proc": 0.0}, threading.Event()
    cpu = {}                                        # pid -> its CPU-seconds when last seen

    def sample():                                   # RSS every 0.2 s; PSS (costlier to read) every 1 s
        n = 0
        while not done.wait(0.2):
            pids = _tree(proc.pid)
            cpu.update(pids)
            rss = _memory_mib(pids, pss=False)
            peak["rss"], peak["proc"] = max(peak["rss"], sum(rss)), max([peak["proc"], *rss])
            if n % 5 == 0:
                peak["pss"] = max(peak["pss"], sum(_memory_mib(pids, pss=True)))
            n += 1

    # Sampled, not wait4's rusage: the sandboxes' kernels die with their PID namespace and are
    # never reaped, so rusage misses their CPU time and memory.
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc.wait()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    own = sum(cpu.values())                         # a process's last 0.2 s may be missed
    other = max(0.0, (_busy_cpu_seconds() - busy0 - own) / wall)
    log.close()
    text = (out.parent / f"{out.name}.log").read_text()
    summary = next((line for line in text.splitlines() if " graded, " in line and "grader error" in line), "")
    return {"jobs": jobs, "wall": wall, "exit": proc.returncode, "peak_rss_mib": peak["rss"], "peak_pss_mib": peak["pss"],
            "peak_proc_mib": peak["proc"], "own_cpu": own / wall, "other_cpu": other,
            "summary": summary, "out": out}


# ------------------------------------------------------------------------------------------
# Phase 3: the grades, compared
# ------------------------------------------------------------------------------------------
def grades(out: Path) -> dict:
    """(student, lesson, grade_id) -> (points, status, reason) from grades.csv."""
    path = out / "grades.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {(r["student"], r["lesson"], r["grade_id"]): (r["points"], r["status"], r["reason"])
                for r in csv.DictReader(f)}


def compare(runs: list) -> list:
    """Lines describing every difference between the first run's grades and the others'."""
    first = grades(runs[0]["out"])
    lines = []
    if not first:
        return [f"jobs {runs[0]['jobs']}: no grades.csv"]
    for run in runs[1:]:
        other = grades(run["out"])
        for key in sorted(set(first) | set(other)):
            a, b = first.get(key), other.get(key)
            if a is None or b is None or a[:2] != b[:2]:
                lines.append(f"jobs {runs[0]['jobs']} vs {run['jobs']}: {' '.join(key)}: {a} != {b}")
            elif a[2] != b[2]:
                lines.append(f"(reason only) jobs {runs[0]['jobs']} vs {run['jobs']}: {' '.join(key)}: "
                             f"{a[2]!r} != {b[2]!r}")
    return lines


def totals(out: Path) -> dict:
    data = json.loads((out / "grades.json").read_text())
    return data["totals"]


# ------------------------------------------------------------------------------------------
# Phase 4: the report
# ------------------------------------------------------------------------------------------
def report(runs: list, roster: dict, lessons: list) -> None:
    n = len(roster)
    header = (f"{'jobs':>4} {'wall s':>7} {'notebooks':>9} {'s/sub':>6} {'sub/min':>7} {'tree RSS MiB':>12} "
              f"{'tree PSS MiB':>12} {'max proc MiB':>12} {'exit':>4} {'own cpu':>7} {'other cpu':>9}")
    print(header)
    print("-" * len(header))
    for r in runs:
        print(f"{r['jobs']:>4} {r['wall']:>7.1f} {n * len(lessons):>9} {r['wall'] / n:>6.2f} "
              f"{60 * n / r['wall']:>7.1f} {r['peak_rss_mib']:>12.0f} {r['peak_pss_mib']:>12.0f} "
              f"{r['peak_proc_mib']:>12.0f} {r['exit']:>4} {r['own_cpu']:>7.2f} {r['other_cpu']:>9.2f}")
    for r in runs:
        print(f"jobs {r['jobs']}: {r['summary'] or '(no summary line: see ' + str(r['out']) + '.log)'}")
    print()
    try:
        tot = totals(runs[0]["out"])
        for kind in sorted(set(roster.values())):
            who = [s for s, k in roster.items() if k == kind]
            pts = [sum(v or 0 for v in tot.get(s, {}).values()) for s in who]
            print(f"{kind:<8} {len(who):>3} students, autograded points {min(pts):g}..{max(pts):g} "
                  f"(jobs {runs[0]['jobs']})")
    except (OSError, ValueError, KeyError) as err:
        print(f"no grades.json: {err}")
    diffs = compare(runs) if len(runs) > 1 else []
    real = [d for d in diffs if not d.startswith("(reason only)")]
    if len(runs) > 1:
        print("\ngrades identical across job counts (points and status of every cell): "
              + ("yes" if not real else f"NO, {len(real)} difference(s)"))
        for line in diffs[:20]:
            print("  " + line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=30, help="class size (default: 30)")
    parser.add_argument("--lessons", nargs="+", default=DEFAULT_LESSONS,
                        help="lesson ids, or 'all' (default: 01_data 02_conv 03_fc)")
    parser.add_argument("--jobs", nargs="+", type=int, default=[1, 2, 4], help="worker counts (default: 1 2 4)")
    parser.add_argument("--seed", type=int, default=1, help="the grading secret, the same for every run (default: 1)")
    parser.add_argument("--keep", type=Path, default=None, help="build the class and outputs here and keep them")
    args = parser.parse_args(argv)
    known = [lesson.id for lesson in config.load().lessons]
    lessons = known if args.lessons == ["all"] else args.lessons
    unknown = [lesson for lesson in lessons if lesson not in known]
    if unknown:
        parser.error(f"unknown lesson(s) {', '.join(unknown)}; known: {', '.join(known)}")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gradebench-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    try:
        roster = build_class(work / "class", args.students, lessons)
        mix = {k: sum(1 for v in roster.values() if v == k) for k in sorted(set(roster.values()))}
        print(f"# {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}, python {sys.version.split()[0]}")
        print(f"# {len(roster)} students x {len(lessons)} lessons ({' '.join(lessons)}): "
              + ", ".join(f"{v} {k}" for k, v in mix.items()))
        runs = []
        for jobs in args.jobs:
            out = work / f"out-jobs{jobs}"
            if out.exists():
                shutil.rmtree(out)
            runs.append(grade(work / "class", out, jobs, lessons, args.seed))
            r = runs[-1]
            print(f"# jobs {jobs}: {r['wall']:.1f} s, exit {r['exit']}", flush=True)
        print()
        report(runs, roster, lessons)
        if args.keep:
            print(f"\nclass and outputs kept in {work}")
        return 0 if all(r["exit"] == 0 for r in runs) else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
