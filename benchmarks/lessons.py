"""Time the lessons as they are graded and self-checked, against course.yml's budgets.

For each lesson: nbgrader autograde of the master notebook (full marks expected) and of the
untouched student notebook (zero expected), the seconds of each against its ``budget_s``;
then the whole submission (the six masters graded in one nbgrader run, as an instructor
grades one student), and the learner's self-check (``python -m coursekit.selfcheck``) of the
untouched lesson.

    python benchmarks/lessons.py                 # every lesson
    python benchmarks/lessons.py 01_data 02_conv # some
    python benchmarks/lessons.py --no-selfcheck  # nbgrader timings only

Prints plain-text tables; the figures depend on the machine and on what else it runs
(the header shows the CPU count and the load average).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.grade import autograde  # noqa: E402
from coursekit import config  # noqa: E402


def selfcheck_seconds(lesson_id: str) -> float:
    """Wall seconds of ``python -m coursekit.selfcheck <lesson_id>`` on the untouched lesson."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "coursekit.selfcheck", lesson_id], cwd=REPO,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="lesson ids (default: all in course.yml)")
    parser.add_argument("--no-selfcheck", action="store_true", help="skip the self-check timings")
    args = parser.parse_args(argv)
    lessons = [lesson for lesson in config.load().lessons if not args.lessons or lesson.id in args.lessons]

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}")
    print(f"\n{'lesson':<15}{'budget':>8}{'master':>9}{'score':>10}{'untouched':>11}{'score':>8}  within budget")
    worst_ok = True
    for lesson in lessons:
        master = REPO / "solutions" / lesson.id / f"{lesson.id}.ipynb"
        released = REPO / "lessons" / lesson.id / f"{lesson.id}.ipynb"
        full, blank = autograde({("master", lesson.id): master, ("untouched", lesson.id): released})
        ok = max(full.seconds, blank.seconds) <= lesson.budget_s
        worst_ok &= ok
        print(f"{lesson.id:<15}{lesson.budget_s:>7g}s{full.seconds:>8.1f}s{full.score:>5g}/{full.max_score:<4g}"
              f"{blank.seconds:>10.1f}s{blank.score:>4g}/{blank.max_score:<3g}  {'yes' if ok else 'NO'}")

    submission = {("student", lesson.id): REPO / "solutions" / lesson.id / f"{lesson.id}.ipynb" for lesson in lessons}
    start = time.perf_counter()
    results = autograde(submission)
    total = time.perf_counter() - start
    print(f"\nwhole submission ({len(results)} notebooks, one nbgrader run): {total:.1f} s wall, "
          f"{sum(r.seconds for r in results):.1f} s in autograde, "
          f"{sum(r.score for r in results):g}/{sum(r.max_score for r in results):g} autograded points; "
          f"budgets sum to {sum(lesson.budget_s for lesson in lessons):g} s")

    if not args.no_selfcheck:
        print(f"\n{'lesson':<15}{'self-check of the untouched lesson':>36}")
        for lesson in lessons:
            print(f"{lesson.id:<15}{selfcheck_seconds(lesson.id):>35.1f}s")
    return 0 if worst_ok else 1


if __name__ == "__main__":
    sys.exit(main())
