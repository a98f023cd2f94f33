"""``python -m autograder report GRADES_DIR``: what went wrong across the class, on one page.

Reads the grade command's results (``GRADES_DIR/results/<student>/<lesson>.json``) and writes
``GRADES_DIR/report/index.html`` with its pictures beside it:

- ``scores.png``: the distribution of autograded scores, per lesson and overall (percent);
- ``pass_rates.png``: for every test cell, the share of submitted notebooks that passed it;
- ``times.png``: how long grading took per notebook;
- on the page: the most common failure reasons across the class, ranked, each with its count,
  the cell, and one example message (what to address in the next lecture), then the missing
  and unreadable notebooks.

Anonymous by default: students are "student 1", "student 2", ... (in the order of their ids);
``--names`` shows their ids. Nothing is fetched from the internet by the page.
"""
from __future__ import annotations

import html
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from . import report

PROG = "python -m autograder report"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@dataclass
class Failure:
    """One failure reason across the class: a cell, and its message with the numbers taken out."""

    lesson: str
    grade_id: str
    pattern: str                 # the message's first line, numbers as "#"
    reason: str
    example: str                 # one student's full message
    students: int = 0


def load_results(grades_dir: Path) -> List[dict]:
    """Every readable result of the grade command in ``grades_dir``, sorted by lesson and student."""
    base = Path(grades_dir) / "results"
    if not base.is_dir():
        raise ValueError(f"{base} is not a folder: GRADES_DIR is the --out folder of `python -m autograder grade`")
    out = []
    for path in sorted(base.glob("*/*.json")):
        r = report.load_result(path)
        if r is not None and r.get("student") == path.parent.name and r.get("lesson") == path.stem:
            out.append(r)
    if not out:
        raise ValueError(f"no results in {base}: grade the class first (python -m autograder grade)")
    return sorted(out, key=lambda r: (r["lesson"], r["student"]))


def pseudonyms(results: List[dict], names: bool) -> Dict[str, str]:
    """student id -> what the page calls them: "student 1", ... unless ``names``."""
    ids = sorted({r["student"] for r in results})
    return {s: s if names else f"student {i}" for i, s in enumerate(ids, 1)}


def failure_reasons(results: List[dict]) -> List[Failure]:
    """The failed test cells of graded notebooks, grouped by cell and message (numbers aside), most
    students first."""
    groups: Dict[tuple, Failure] = {}
    for r in results:
        if r.get("status") != "graded":
            continue
        for c in r.get("cells", []):
            if c.get("kind") != "test" or c.get("status") == "passed":
                continue
            message = report.scrub(str(c.get("message") or ""))
            first = (message.splitlines() or [str(c.get("reason") or c.get("status"))])[0]
            key = (r["lesson"], c["grade_id"], NUMBER.sub("#", first)[:300])
            f = groups.setdefault(key, Failure(r["lesson"], c["grade_id"], key[2],
                                               str(c.get("reason") or ""), message or first))
            f.students += 1
    return sorted(groups.values(), key=lambda f: (-f.students, f.lesson, f.grade_id))


def pass_rates(results: List[dict]) -> Dict[str, float]:
    """"<lesson> <grade_id>" -> the share of graded notebooks whose test cell earned all its points."""
    seen, passed = Counter(), Counter()
    for r in results:
        if r.get("status") != "graded":
            continue
        for c in r.get("cells", []):
            if c.get("kind") == "test":
                key = f"{r['lesson']} {c['grade_id']}"
                seen[key] += 1
                passed[key] += c.get("status") == "passed"
    return {k: passed[k] / seen[k] for k in seen}


def _percent(r: dict) -> Optional[float]:
    top = float(r.get("max_points") or 0)
    return None if not top or r.get("points") is None else 100 * float(r["points"]) / top


def _pyplot():
    """matplotlib.pyplot drawing to files (imported here: the other commands never need it)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scores(results: List[dict], path: Path) -> None:
    plt = _pyplot()

    lessons = sorted({r["lesson"] for r in results})
    per = {le: [p for r in results if r["lesson"] == le for p in [_percent(r)] if p is not None] for le in lessons}
    by_student: Dict[str, List[float]] = defaultdict(list)
    for r in results:
        p = _percent(r)
        by_student[r["student"]].append(p if p is not None else 0.0)
    columns = lessons + ["overall"]
    values = [per[le] for le in lessons] + [[sum(v) / len(v) for v in by_student.values()]]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(columns) + 2), 4.2))
    ax.boxplot(values, showmeans=True, widths=0.5)
    for i, v in enumerate(values, 1):                       # every notebook as a dot: small classes too
        ax.scatter([i + 0.18] * len(v), v, s=14, alpha=0.6, color="tab:blue", zorder=3)
    ax.set_xticks(range(1, len(columns) + 1))
    ax.set_xticklabels([f"{c}\n(n = {len(v)})" for c, v in zip(columns, values)], fontsize=10)
    ax.set_ylabel("autograded score (% of the points)", fontsize=10)
    ax.set_ylim(-5, 105)
    ax.set_title("Autograded scores per lesson, and each student's mean", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_pass_rates(rates: Dict[str, float], path: Path) -> None:
    plt = _pyplot()

    keys = sorted(rates, key=lambda k: (rates[k], k))       # the hardest first, at the top
    fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(keys) + 1.4))
    cmap = plt.get_cmap("RdYlGn")
    ax.barh(range(len(keys)), [100 * rates[k] for k in keys], color=[cmap(rates[k]) for k in keys],
            edgecolor="black", linewidth=0.4)
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels(keys, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("notebooks that passed the cell (%)", fontsize=10)
    ax.set_title("Pass rate of every autograded cell (the hardest first)", fontsize=11)
    for i, k in enumerate(keys):
        ax.text(min(100 * rates[k] + 1, 92), i, f"{100 * rates[k]:.0f}%", va="center", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_times(results: List[dict], path: Path) -> None:
    plt = _pyplot()

    seconds = [float(r["seconds"]) for r in results if isinstance(r.get("seconds"), (int, float))]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.hist(seconds or [0], bins=min(20, max(5, len(seconds) // 2)), color="tab:blue", edgecolor="black", linewidth=0.4)
    ax.set_xlabel("seconds to grade one notebook (wall time, on the grading machine)", fontsize=10)
    ax.set_ylabel("notebooks", fontsize=10)
    ax.set_title(f"Grading time per notebook ({len(seconds)} notebooks)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _page(results: List[dict], failures: List[Failure], names: Dict[str, str], top: int) -> str:
    ids = re.compile(r"\b(" + "|".join(re.escape(s) for s in sorted(names, key=len, reverse=True)) + r")\b")

    def esc(text: str) -> str:          # escaped, each student id as the page calls them
        return html.escape(ids.sub(lambda m: names[m.group(1)], str(text)))
    graded = [r for r in results if r.get("status") == "graded"]
    absent = [r for r in results if r.get("status") in ("missing", "invalid_notebook", "refused")]
    errors = [r for r in results if r.get("status") == "grader_error"]
    rows = "\n".join(
        f"<tr><td class=n>{i}</td><td class=n>{f.students}</td><td><code>{esc(f.lesson)}</code> "
        f"<code>{esc(f.grade_id)}</code></td><td>{esc(f.reason)}</td>"
        f"<td><pre>{esc(f.example[:1200])}</pre></td></tr>"
        for i, f in enumerate(failures[:top], 1))
    absent_rows = "\n".join(
        f"<tr><td>{esc(r['student'])}</td><td><code>{esc(r['lesson'])}</code></td>"
        f"<td>{esc(r['status'])}</td><td>{esc(report.scrub(str(r.get('reason') or ''))[:300])}</td></tr>"
        for r in absent + errors)
    students = len({r["student"] for r in results})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Class report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
img {{ max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0 1.5em; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 2em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.35em 0.5em; text-align: left; vertical-align: top; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
pre {{ white-space: pre-wrap; margin: 0; font-size: 0.85em; }}
</style></head><body>
<h1>Class report</h1>
<p>{students} students, {len(results)} notebooks: {len(graded)} graded, {len(absent)} missing or unreadable,
{len(errors)} grader errors. Autograded points only (written answers are graded by hand).</p>
<h2 id="scores">Scores</h2>
<p>Box: the middle half of the notebooks, line: the median, triangle: the mean, dots: the notebooks
(missing and unreadable ones count 0).</p>
<img src="scores.png" alt="Scores per lesson and overall">
<h2 id="failures">The most common failure reasons</h2>
<p>Failed cells of graded notebooks, grouped by cell and message (the numbers in a message aside),
the most students first: what to address in the next lecture.</p>
<table id="failure-table"><thead><tr><th>#</th><th>students</th><th>cell</th><th>reason</th><th>one example</th></tr></thead>
<tbody>
{rows or '<tr><td colspan=5>No failed cells.</td></tr>'}
</tbody></table>
<h2 id="pass-rates">Pass rate per cell</h2>
<img src="pass_rates.png" alt="Pass rate of every autograded cell">
<h2 id="absent">Missing and unreadable notebooks</h2>
<table id="absent-table"><thead><tr><th>student</th><th>lesson</th><th>status</th><th>why</th></tr></thead>
<tbody>
{absent_rows or '<tr><td colspan=4>None.</td></tr>'}
</tbody></table>
<h2 id="times">Grading time</h2>
<img src="times.png" alt="Grading time per notebook">
</body></html>
"""


def write_report(grades_dir: Path, out: Optional[Path] = None, *, names: bool = False, top: int = 15) -> Path:
    """Write the report (see the module docstring); returns the page's path."""
    results = load_results(grades_dir)
    out = Path(out) if out else Path(grades_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    plot_scores(results, out / "scores.png")
    plot_pass_rates(pass_rates(results), out / "pass_rates.png")
    plot_times(results, out / "times.png")
    page = _page(results, failure_reasons(results), pseudonyms(results, names), top)
    return report.write_bytes_atomic(out / "index.html", page.encode("utf-8"))


def add_arguments(parser) -> None:
    parser.add_argument("grades_dir", type=Path, metavar="GRADES_DIR", help="the --out folder of the grade command")
    parser.add_argument("--out", type=Path, default=None, help="where to write it (default: GRADES_DIR/report/)")
    parser.add_argument("--names", action="store_true", help="show the students' ids (default: anonymous)")
    parser.add_argument("--top", type=int, default=15, help="how many failure reasons to list (default 15)")


def run(args) -> int:
    """0: written; 2: usage error (one line)."""
    try:
        page = write_report(args.grades_dir, args.out, names=args.names, top=args.top)
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {page} (open it in a browser; pictures beside it)")
    return 0
