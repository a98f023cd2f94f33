"""Write what grading found: per-item JSON, the class CSV and JSON, feedback HTML, a summary table.

Layout of the output folder::

    <out>/results/<student>/<lesson>.json    one item, written atomically when it is done
    <out>/feedback/<student>/<lesson>.html   what the student gets back
    <out>/grades.csv                         one row per student, lesson and graded cell
    <out>/grades.json                        every item's result, plus totals
    <out>/.grading_seed                      the course secret the inputs are drawn from (keep it)

Every file is written to a temporary name in the same folder and renamed into place, so a
reader (or an interrupted run) sees the old file or the new one, never half of one. The class
files are rebuilt from the per-item files at the end of every run.

Feedback never shows the hidden tests or the reference solution: test and given cells are
shown with the master's source stripped of hidden-test, solution and mark-scheme regions (what
the released lesson shows), their outputs are replaced by the verdict, and the student's own
outputs are reduced to text and PNG images (no HTML or JavaScript) with anything that looks
like a hidden test removed.
"""
from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .plan import LessonPlan, released_source, source_of

CSV_COLUMNS = ["student", "lesson", "grade_id", "points", "max_points", "status", "message", "reason"]
HIDDEN_CALL = re.compile(r"""check\(\s*["'][A-Za-z0-9_]+_hidden["'][^\n]*""")
HIDDEN_ID = re.compile(r"\b([A-Za-z0-9_]+)_hidden\b")
HIDDEN_MARK = re.compile(r"###\s*(BEGIN|END) HIDDEN TESTS")
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
OUTPUT_TEXT_CHARS = 100_000


# ------------------------------------------------------------------------------------------
def result_path(out: Path, student: str, lesson: str) -> Path:
    return Path(out) / "results" / student / f"{lesson}.json"


def feedback_path(out: Path, student: str, lesson: str) -> Path:
    return Path(out) / "feedback" / student / f"{lesson}.html"


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_json_atomic(path: Path, data) -> Path:
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False, default=str)
    return write_bytes_atomic(path, (text + "\n").encode("utf-8"))


def load_result(path: Path) -> Optional[dict]:
    """A per-item result, or None when it is absent or unreadable (then the item is graded again)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "status" not in data:
        return None
    return data


def summary_of(result: dict) -> dict:
    return {k: result.get(k) for k in ("student", "lesson", "status", "points", "max_points",
                                        "manual_max_points", "reason", "seconds")}


# ------------------------------------------------------------------------------------------
def _csv_safe(text) -> str:
    """Student-influenced text in a spreadsheet: never a formula."""
    text = "" if text is None else str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _num(x) -> str:
    return "" if x is None else f"{float(x):g}"


def csv_rows(results: Iterable[dict]) -> List[List[str]]:
    rows = []
    for r in results:
        cells = r.get("cells") or []
        if not cells:
            rows.append([r["student"], r["lesson"], "", _num(r.get("points")), _num(r.get("max_points")),
                         r.get("status", ""), "", _csv_safe(r.get("reason"))])
        for c in cells:
            rows.append([r["student"], r["lesson"], c["grade_id"], _num(c.get("points")), _num(c.get("max_points")),
                         c.get("status", ""), _csv_safe(c.get("message")), _csv_safe(c.get("reason"))])
    return rows


def write_class_files(out: Path, results: List[dict], lessons: List[str], *, warnings: List[str] = (),
                      late=None) -> None:
    """grades.csv and grades.json from the per-item results (in student, course order).

    late: the ``late.LatePolicy`` (default none): each late notebook gets a ``late_penalty`` row in
    grades.csv (the points taken, negative), its total in grades.json is after the penalty, and
    grades.json's ``late`` holds the policy and every late notebook's assessment.
    """
    from . import late as lateness

    policy = late or lateness.NO_POLICY
    order = {lesson: i for i, lesson in enumerate(lessons)}
    results = sorted(results, key=lambda r: (r["student"], order.get(r["lesson"], 999), r["lesson"]))
    assessed = {(r["student"], r["lesson"]): policy.assess(r["student"], r["lesson"], r.get("submitted_at"),
                                                           float(r.get("points") or 0))
                for r in results if r.get("status") != "grader_error"}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        writer.writerows(csv_rows([r]))
        a = assessed.get((r["student"], r["lesson"]))
        if a is not None and a.submitted_at is not None and a.message:
            writer.writerow([r["student"], r["lesson"], "late_penalty", _num(-a.penalty), "0",
                             "late" if a.late else "on_time", a.message, ""])
    write_bytes_atomic(Path(out) / "grades.csv", buf.getvalue().encode("utf-8"))
    totals: Dict[str, Dict[str, Optional[float]]] = {}
    for r in results:
        a = assessed.get((r["student"], r["lesson"]))
        pts = r.get("points")
        totals.setdefault(r["student"], {})[r["lesson"]] = (None if pts is None else
                                                           float(pts) - (a.penalty if a else 0.0))
    unknown = sum(1 for r in results if r.get("status") == "graded"
                  and policy.due_for(r["student"], r["lesson"]) is not None and not r.get("submitted_at"))
    write_json_atomic(Path(out) / "grades.json", {
        "format": 1, "lessons": [lesson for lesson in lessons if any(r["lesson"] == lesson for r in results)],
        "students": sorted(totals), "totals": totals, "warnings": list(warnings), "results": results,
        "late": {"policy": policy.as_json(), "without_time": unknown,
                 "notebooks": {f"{s}/{le}": a.as_json() for (s, le), a in assessed.items()
                               if a.submitted_at is not None and a.message}}})


def summary_table(results: List[dict], lessons: List[str], late=None) -> str:
    """Students × lessons, 'points/max' (autograded, after any late penalty of ``late``, a
    ``late.LatePolicy``); '*' when cells are left for grading by hand."""
    lessons = [lesson for lesson in lessons if any(r["lesson"] == lesson for r in results)]
    by = {(r["student"], r["lesson"]): r for r in results}
    students = sorted({r["student"] for r in results})
    rows = [["student"] + lessons + ["total"]]
    any_late = False
    for s in students:
        row, tot, tot_max = [s], 0.0, 0.0
        for lesson in lessons:
            r = by.get((s, lesson))
            if r is None:
                row.append("")
                continue
            if r.get("status") == "grader_error":
                row.append("ERROR")
                continue
            pts, mx = float(r.get("points") or 0), float(r.get("max_points") or 0)
            a = late.assess(s, lesson, r.get("submitted_at"), pts) if late is not None else None
            if a is not None and a.late:
                pts, any_late = pts - a.penalty, True
            tot, tot_max = tot + pts, tot_max + mx
            mark = "*" if r.get("manual_max_points") and r.get("status") == "graded" else ""
            tag = {"missing": " missing", "invalid_notebook": " invalid", "refused": " refused"}.get(r.get("status"), "")
            tag += " late" if a is not None and a.late else ""
            row.append(f"{pts:g}/{mx:g}{mark}{tag}")
        row.append(f"{tot:g}/{tot_max:g}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    if any(r.get("manual_max_points") for r in results):
        lines.append("* plus points graded by hand (see docs/grading.md)")
    if any_late and late.policy == "none":
        lines.append("late: submitted after the due date (no penalty: the late policy is none)")
    elif any_late:
        lines.append(f"late: after the late penalty ({late.rule()}; the late_penalty rows of grades.csv)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# Feedback
# ------------------------------------------------------------------------------------------
def scrub(text: str) -> str:
    """Remove what could be hidden-test source from text shown to a student."""
    text = HIDDEN_CALL.sub("[a hidden test]", text)
    text = HIDDEN_MARK.sub("[hidden tests]", text)
    return HIDDEN_ID.sub(r"\1 (grader's extra checks)", text)


def _text(value) -> str:
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def safe_outputs(outputs) -> List[dict]:
    """The student's outputs as plain text and PNG images only (no HTML, SVG or JavaScript)."""
    out: List[dict] = []
    for o in outputs if isinstance(outputs, list) else []:
        if not isinstance(o, dict) or len(out) >= 50:
            continue
        kind = o.get("output_type")
        if kind == "stream":
            out.append({"output_type": "stream", "name": "stderr" if o.get("name") == "stderr" else "stdout",
                        "text": scrub(_text(o.get("text")))[:OUTPUT_TEXT_CHARS]})
        elif kind == "error":
            tb = o.get("traceback") if isinstance(o.get("traceback"), list) else []
            out.append({"output_type": "error", "ename": scrub(str(o.get("ename", "")))[:200],
                        "evalue": scrub(str(o.get("evalue", "")))[:2000],
                        "traceback": [scrub(str(t))[:5000] for t in tb[:60]]})
        elif kind in ("execute_result", "display_data"):
            data = o.get("data") if isinstance(o.get("data"), dict) else {}
            keep = {}
            png = _text(data.get("image/png"))
            if png and len(png) < (8 << 20) and BASE64.match(png):
                keep["image/png"] = png
            if not keep and data.get("text/plain") is not None:
                keep["text/plain"] = scrub(_text(data.get("text/plain")))[:OUTPUT_TEXT_CHARS]
            if keep:
                out.append({"output_type": "display_data", "data": keep, "metadata": {}})
    return out


def _verdict_text(v) -> str:
    pts = "" if v.points is None else f"{v.points:g}"
    if v.kind == "manual":
        return f"{v.grade_id}: graded by hand ({v.max_points:g} points)" + (
            f" - {v.reason}" if v.reason and v.reason != "graded by hand" else "")
    if v.status == "passed":
        return f"\u2714 {v.grade_id}: {pts} / {v.max_points:g} points"
    lines = [f"\u2718 {v.grade_id}: {pts or 0} / {v.max_points:g} points ({v.reason})" if v.reason else
             f"\u2718 {v.grade_id}: {pts or 0} / {v.max_points:g} points"]
    if v.message:
        lines.append(v.message)
    return scrub("\n".join(lines)) + "\n"


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>&])", r"\\\1", text)


def feedback_notebook(result: dict, plan: LessonPlan, prepared, executed: Optional[dict], verdicts) -> dict:
    by_gid = {v.grade_id: v for v in verdicts}
    pts = result.get("points") or 0
    head = [f"# Feedback: lesson {_md_escape(plan.lesson)}",
            f"Student: `{result['student']}`. Autograded: **{pts:g} / {plan.autograded_max:g}** points."]
    if plan.manual_max:
        head.append(f"Written answers, graded by hand: {plan.manual_max:g} points (not included above).")
    head.append("")
    head.append("| cell | points | result |\n|---|---|---|")
    for v in verdicts:
        got = "by hand" if v.points is None else f"{v.points:g} / {v.max_points:g}"
        head.append(f"| {_md_escape(v.grade_id)} | {got} | {_md_escape(v.reason or v.status)} |")
    notes = [n for n in result.get("notes", []) if n]
    if notes:
        head.append("\nNotes from the grader:\n" + "\n".join(f"- {_md_escape(scrub(n))}" for n in notes[:20]))
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "\n".join(head)}]
    ex_cells = executed.get("cells") if isinstance(executed, dict) else None
    same_shape = isinstance(ex_cells, list) and len(ex_cells) == len(prepared.notebook["cells"])
    gid_at = {i: g for g, i in prepared.positions.items()}
    for i, cell in enumerate(prepared.notebook["cells"]):
        gid = gid_at.get(i)
        src = cell["source"]
        if prepared.origin[i] == "master":
            src = released_source(source_of(plan.locked[gid])) if gid in plan.locked else released_source(src)
        new = {"cell_type": cell["cell_type"] if cell["cell_type"] in ("code", "markdown", "raw") else "raw",
               "metadata": {}, "source": src}
        if new["cell_type"] == "markdown" and cell.get("attachments"):
            new["attachments"] = cell["attachments"]
        if new["cell_type"] == "code":
            new["execution_count"] = None
            v = by_gid.get(gid)
            if v is not None and v.kind == "test":
                new["outputs"] = [{"output_type": "stream", "name": "stdout" if v.status == "passed" else "stderr",
                                   "text": _verdict_text(v)}]
            else:
                ex = ex_cells[i] if same_shape and isinstance(ex_cells[i], dict) else {}
                new["outputs"] = safe_outputs(ex.get("outputs"))
        cells.append(new)
        v = by_gid.get(gid)
        if v is not None and v.kind == "manual":
            cells.append({"cell_type": "markdown", "metadata": {}, "source": f"> *{_md_escape(_verdict_text(v))}*"})
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                        "name": "python3"}, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


SAFE_TAGS = ["a", "abbr", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
             "hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td",
             "th", "thead", "tr", "ul", "del", "dl", "dt", "dd", "kbd"]
MATHML_TAGS = ["math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup",
               "msubsup", "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd",
               "mstyle", "mpadded", "mphantom", "menclose", "mfenced"]
SAFE_TAGS += MATHML_TAGS
SAFE_ATTRIBUTES = {"*": ["class", "id", "title"], "a": ["href"], "img": ["src", "alt", "width", "height"],
                   "td": ["align"], "th": ["align"],
                   **{t: ["display", "mathvariant", "stretchy", "fence", "separator", "accent", "accentunder",
                          "lspace", "rspace", "width", "displaystyle", "scriptlevel", "columnalign", "xmlns",
                          "encoding", "minsize", "maxsize", "largeop", "movablelimits", "form", "symmetric"]
                      for t in MATHML_TAGS}}
MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$\w])\$(?!\s)([^$\n]+?)(?<!\s)\$(?![\w$])", re.S)


def clean_html(fragment) -> str:
    """Markdown cells' HTML, made safe: no scripts, styles, event handlers or javascript: links.

    (nbconvert's own ``clean_html`` allows too few tags: headings and paragraphs come out escaped.)
    """
    import bleach

    text = fragment.decode() if isinstance(fragment, bytes) else str(fragment)
    return bleach.clean(text, tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES,
                        protocols=["http", "https", "mailto", "data"], strip=True, strip_comments=True)


def math_to_mathml(markdown: str) -> str:
    """``markdown`` with its TeX math ($...$ inline, $$...$$ display) as MathML, which browsers draw
    themselves: the page needs no MathJax from the internet. Math that does not convert stays TeX."""
    from latex2mathml.converter import convert

    def one(m):
        tex, display = (m.group(1), "block") if m.group(1) is not None else (m.group(2), "inline")
        try:
            return convert(tex.strip(), display=display)
        except Exception:  # TeX latex2mathml does not know: leave it as written
            return m.group(0)
    return MATH.sub(one, markdown)


# What a page must not fetch: nbconvert's lab template loads require.js and MathJax from a CDN.
REMOTE_SCRIPTS = re.compile(r"<script[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>\s*|"
                            r"<script type=\"text/x-mathjax-config\">.*?</script>\s*", re.S)


def offline(page: str) -> str:
    """The page without the scripts it would fetch from the internet."""
    return REMOTE_SCRIPTS.sub("", page)


_exporter: list = []
_exporter_lock = threading.Lock()


def render_html(nb: dict, title: str) -> str:
    """The feedback notebook as a page (nbconvert's lab template; one exporter per process, its
    template compiled once: 0.2 s a page instead of 0.6)."""
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.from_dict(nb)
    for i, cell in enumerate(node.cells):
        cell["id"] = f"fb-{i:03d}"
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml("".join(cell.source) if isinstance(cell.source, list) else cell.source)
    with _exporter_lock:
        if not _exporter:
            _exporter.append(HTMLExporter(template_name="lab", sanitize_html=True, filters={"clean_html": clean_html}))
        body, _ = _exporter[0].from_notebook_node(node, resources={"metadata": {"name": title}})
    return offline(body)


def _plain_page(title: str, lines: List[str]) -> str:
    items = "".join(f"<p>{html.escape(line)}</p>\n" for line in lines)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body>\n<h1>{html.escape(title)}</h1>\n{items}</body></html>\n")


def write_feedback(out: Path, result: dict, plan: LessonPlan, inputs: Optional[dict]) -> Path:
    """Write the student's feedback page (see the module docstring)."""
    path = feedback_path(out, result["student"], result["lesson"])
    write_bytes_atomic(path, feedback_page(result, plan, inputs).encode("utf-8"))
    return path


def feedback_page(result: dict, plan: LessonPlan, inputs: Optional[dict]) -> str:
    """The student's feedback page, HTML (inputs None: the notebook could not be run)."""
    title = f"Feedback: {result['lesson']} - {result['student']}"
    if inputs is None:
        lines = [f"Autograded: {float(result.get('points') or 0):g} / {plan.autograded_max:g} points.",
                 scrub(result.get("reason", ""))]
        lines += [f"{c['grade_id']}: 0 / {c['max_points']:g} points" for c in result.get("cells", [])]
        page = _plain_page(title, lines)
    else:
        nb = feedback_notebook(result, plan, inputs["prepared"], inputs["executed"], inputs["verdicts"])
        page = render_html(nb, title)
    return page
