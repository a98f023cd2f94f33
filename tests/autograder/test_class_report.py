"""``python -m autograder report``: the class report, from results written as the grade command
writes them, looked at in headless Chromium (the pictures load, the failures are ranked)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autograder.grading import class_report, report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from browser_kit import chromium  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DIV256 = "normalize(images) maps 255 to {v}, not to 1.0: it divides by 256.\nHint: divide by 255."
SHUFFLE = "make_loader(x, y) did not shuffle: the samples came in their original order 0, 1, 2, ..."


def _cell(gid, points, top, message="", reason=""):
    return {"grade_id": gid, "kind": "test", "points": points, "max_points": top,
            "status": "passed" if points == top else "failed", "message": message, "reason": reason}


def _class(grades: Path) -> None:
    """Five students, lesson 1: three divide by 256 (messages differing only in a number), two do
    not shuffle, one is missing."""
    wrongs = {"zoe": ("0.996094", True), "yan": ("0.99609", True), "xia": ("0.996", False),
              "wim": (None, True), "val": (None, False)}
    for student, (v, shuffles) in wrongs.items():
        cells = [_cell("data_normalize", 0 if v else 3, 3, DIV256.format(v=v) if v else "", "wrong answer" if v else ""),
                 _cell("data_make_loader", 4 if shuffles else 0, 4, "" if shuffles else SHUFFLE,
                       "" if shuffles else "wrong answer")]
        points = sum(c["points"] for c in cells)
        report.write_json_atomic(grades / "results" / student / "01_data.json", {
            "student": student, "lesson": "01_data", "status": "graded", "points": points, "max_points": 7,
            "seconds": 20 + len(student), "cells": cells})
    report.write_json_atomic(grades / "results" / "uma" / "01_data.json", {
        "student": "uma", "lesson": "01_data", "status": "missing", "points": 0, "max_points": 7,
        "reason": "no notebook submitted (expected uma/01_data.ipynb)", "cells": []})


def test_the_failures_are_ranked_with_counts_and_one_example(tmp_path):
    _class(tmp_path)
    failures = class_report.failure_reasons(class_report.load_results(tmp_path))
    assert [(f.grade_id, f.students) for f in failures] == [("data_normalize", 3), ("data_make_loader", 2)]
    assert failures[0].pattern == "normalize(images) maps # to #, not to #: it divides by #."
    assert failures[0].example.startswith("normalize(images) maps 255 to")
    assert class_report.pass_rates(class_report.load_results(tmp_path)) == {"01_data data_normalize": 0.4,
                                                                            "01_data data_make_loader": 0.6}


def test_the_report_in_a_browser_shows_its_pictures_and_the_ranking_anonymously(tmp_path):
    _class(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "autograder", "report", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "report" / "index.html"
    text = page.read_text()
    assert not any(name in text for name in ("zoe", "yan", "xia", "wim", "val", "uma"))   # anonymous
    assert "student 1" in text and "http" not in text.replace("http-equiv", "")
    with chromium(1200, 900) as browser:
        browser.get(page.as_uri())
        images = browser.execute_script(
            "return [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 300])")
        ranking = browser.execute_script(
            "return [...document.querySelectorAll('#failure-table tbody tr')].map(r => "
            "[...r.cells].slice(0, 3).map(c => c.innerText.trim()))")
        absent = browser.execute_script("return document.querySelector('#absent-table tbody').innerText")
        browser.save_screenshot(str(tmp_path / "report.png"))
    assert sorted(images) == [["pass_rates.png", True], ["scores.png", True], ["times.png", True]]
    assert ranking == [["1", "3", "01_data data_normalize"], ["2", "2", "01_data data_make_loader"]]
    assert "no notebook submitted" in absent and "student" in absent
    named = subprocess.run([sys.executable, "-m", "autograder", "report", str(tmp_path), "--names"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert named.returncode == 0 and "uma" in page.read_text()


def test_a_folder_without_results_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autograder", "report", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is not a folder" in proc.stderr
