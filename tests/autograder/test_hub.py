"""A class on the course's JupyterHub (``python -m autograder hub``), with real Unix users in
headless Chromium: the instructor releases lesson 1 into nbgrader's exchange; ada fetches it from
the Assignments tab, answers it and submits; bob submits one realistic mistake (normalize divides
by 256); the instructor grades the exchange with the sandboxed grader (and the same notebooks
after ``nbgrader collect``, to the same points), imports them into the gradebook, writes the
feedback and hands it out with nbgrader's ``release_feedback``; each student fetches it in the
Assignments tab and reads the score and the teaching message; bob resubmits and gets full marks.

And what a student must not see or read: nbgrader's instructor tools (looked at in the browser,
beside the instructor's, who has them) and the course, the solutions, the hidden judges, the
instructor's folder, the other students' submissions (tried as that Unix user).
"""
from __future__ import annotations

import csv
import json
import os
import pwd
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from browser_kit import chromium, instructor_tools
from hub_kit import (ANNOUNCEMENT, REPO, as_user, close_menu, login, menu, open_assignments, panel_text, press, running_hub, shot,
                     skip_unless_possible, wait_until)
from submission_kit import LESSON, WRONG_NORMALIZE, skip_unless_gradable, solved, totals

pytestmark = [pytest.mark.slow, pytest.mark.real_data]
MAX = 12


@pytest.fixture(scope="module")
def hub():
    skip_unless_possible()
    skip_unless_gradable()
    base = Path(tempfile.mkdtemp(prefix="hubtest-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        with running_hub(base / "srv", f"h{os.getpid() % 100000}-", ["ada", "bob"]) as h:
            yield h
    finally:
        if os.environ.get("COURSE_HUB_SHOTS"):       # keep the screenshots (docs/hub.md's come from here)
            for png in base.glob("hub-*.png"):
                shutil.copy(png, os.environ["COURSE_HUB_SHOTS"])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(hub):
    with chromium() as b:
        yield b


def _course(*args, check=True):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=1800)
    if check:
        assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _hand_in(browser, hub, user: str, notebook: dict, name: str) -> None:
    """As ``user`` in the browser: fetch lesson 1 (first time), answer it, submit it."""
    login(browser, hub, user)
    open_assignments(browser)
    home = Path(pwd.getpwnam(user).pw_dir)
    target = home / LESSON / f"{LESSON}.ipynb"
    if not target.exists():
        press(browser, "released", "Fetch")
        wait_until(browser, lambda b: target.exists(), 120)
    shot(browser, hub, f"{name}-fetched")
    # The answers, saved as the student (the file the editor would save).
    answer = hub.root.parent / f"{name}.ipynb"
    answer.write_text(json.dumps(notebook))
    answer.chmod(0o644)
    as_user(hub, user, ["cp", str(answer), str(target)])
    before = panel_text(browser, "submitted")
    press(browser, "fetched", "Submit")
    wait_until(browser, lambda b: panel_text(b, "submitted") != before and "mnist_cnn" in panel_text(b, "submitted"))
    shot(browser, hub, f"{name}-submitted")


def _read_feedback(browser, hub, user: str, name: str, focus: str = "") -> str:
    """As ``user``: fetch the feedback in the Assignments tab and open it as a student would
    (view feedback, then the page in the file browser); the page's text. ``focus``: a text to
    scroll to for the screenshot."""
    from selenium.webdriver.common.action_chains import ActionChains

    login(browser, hub, user)
    open_assignments(browser)
    press(browser, "submitted", "Fetch Feedback")

    def view_latest(b):           # "(view feedback)" of the latest submission; the list re-renders
        links = [a for a in b.find_elements("css selector", "#submitted_assignments_list a")
                 if "feedback" in a.text.lower()]
        if not links:
            return False
        shot(b, hub, f"{name}-feedback-fetched")
        when = links[-1].find_element("xpath", "..").text.split(" (view")[0].split()[1]   # 03:55:03.601293
        links[-1].click()         # the file browser goes to the feedback's folder, named by the time
        return when

    when = wait_until(browser, view_latest, 180)
    wait_until(browser, lambda b: when in b.find_element("css selector", ".jp-BreadCrumbs").text, 120)
    item = wait_until(browser, lambda b: next((e for e in b.find_elements("css selector", ".jp-DirListing-item")
                                               if e.text.strip().startswith(f"{LESSON}.html")), False), 120)
    ActionChains(browser).double_click(item).perform()    # opens in JupyterLab's HTML viewer
    frame = wait_until(browser, lambda b: b.find_element(
        "css selector", ".jp-HTMLViewer:not(.lm-mod-hidden) iframe"), 120)     # the tab shown, not one restored
    browser.switch_to.frame(frame)
    try:
        wait_until(browser, lambda b: "Total:" in b.find_element("css selector", "body").text, 120)
        text = browser.find_element("css selector", "body").text
    except Exception:
        browser.switch_to.default_content()
        shot(browser, hub, f"{name}-feedback-not-shown")
        raise
    try:
        if focus:
            spot = browser.find_element("xpath", f"//*[contains(text(), {focus!r})]")
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", spot)
    finally:
        browser.switch_to.default_content()
    shot(browser, hub, f"{name}-feedback")
    return text


def _grade_round(hub, grades: Path, warning: str = "") -> dict:
    """The instructor's round: grade the exchange, import, feedback, release_feedback.
    warning: a submission the grade command must skip with this warning (exit status 1)."""
    done = _course("grade", hub.exchange, "--out", grades, "--jobs", "2", check=not warning)
    if warning:
        assert done.returncode == 1 and warning in done.stderr, done.stdout[-2000:] + done.stderr[-2000:]
    _course("gradebook", grades, "--course", hub.course_dir, "--submissions", hub.exchange)
    _course("feedback", grades, "--course", hub.course_dir)
    teach = pwd.getpwnam(hub.instructor)
    assert os.stat(hub.course_dir / "gradebook.db").st_uid == teach.pw_uid, "the gradebook stays the instructor's"
    as_user(hub, hub.instructor, ["nbgrader", "release_feedback", LESSON], cwd=hub.course_dir)
    # The final grade as the LMS gets it is the one grades.csv has (and the checks below: formgrader, feedback).
    _course("export", grades, "--format", "canvas", "--course", hub.course_dir, "--out", grades / "canvas.csv")
    with open(grades / "canvas.csv") as f:
        canvas = {r["SIS User ID"]: float(r[next(k for k in r if k.startswith(LESSON))])
                  for r in csv.DictReader(f) if r["Student"] != "Points Possible"}
    assert canvas == totals(grades), (canvas, totals(grades))
    return canvas


def test_students_see_the_assignments_list_and_no_instructor_tool(hub, browser):
    ada = hub.student("ada")
    login(browser, hub, ada)
    assert ANNOUNCEMENT in hub.login_page, "the instructor's own hub settings (--hub-config) are loaded"
    labels = menu(browser, "Nbgrader")
    shot(browser, hub, "student-menu")
    assert labels == ["Assignment List"], labels
    close_menu(browser)
    assert [t for t in instructor_tools(browser) if "Nbgrader" not in t] == []
    browser.get(f"{hub.url}/user/{ada}/formgrader")
    assert "404" in browser.find_element("css selector", "body").text, "the student's server has no formgrader"
    # The control: the instructor, in the same environment, has them.
    login(browser, hub, hub.instructor)
    labels = menu(browser, "Nbgrader")
    shot(browser, hub, "instructor-menu")
    assert {"Formgrader", "Create assignment", "Course List", "Assignment List"} <= set(labels), labels


def test_release_fetch_submit_grade_and_feedback_through_the_exchange(hub, browser):
    ada, bob = hub.student("ada"), hub.student("bob")
    release = as_user(hub, hub.instructor, ["nbgrader", "release_assignment", LESSON], cwd=hub.course_dir)
    assert "Released as: mnist_cnn 01_data" in release.stdout + release.stderr

    _hand_in(browser, hub, ada, solved(), "ada")
    # The self-check works where a hub's student is: a terminal in their home, the users' Python.
    check = as_user(hub, ada, ["python", "-m", "coursekit.selfcheck", LESSON], check=False, timeout=900)
    assert check.returncode == 0 and "4 passed" in check.stdout, check.stdout[-2000:] + check.stderr[-2000:]
    _hand_in(browser, hub, bob, solved(data_normalize_answer=WRONG_NORMALIZE), "bob")
    inbound = sorted(p.name.split("+")[0] for p in (hub.exchange / "inbound").iterdir())
    assert inbound == [ada, bob]

    # The grader reads the exchange; the same notebooks collected by nbgrader grade the same.
    points = _grade_round(hub, hub.course_dir / "grades")
    assert points[ada] == MAX and points[bob] < MAX, points
    as_user(hub, hub.instructor, ["nbgrader", "collect", LESSON], cwd=hub.course_dir)
    collected = hub.root.parent / "grades-collected"
    _course("grade", hub.course_dir, "--out", collected, "--jobs", "2")
    assert totals(collected) == points

    # Formgrader, in the instructor's JupyterLab, shows the imported grades (no student code runs there).
    login(browser, hub, hub.instructor)
    browser.get(f"{hub.url}/user/{hub.instructor}/formgrader/gradebook/{LESSON}/{LESSON}")
    wait_until(browser, lambda b: "Submission #2" in b.find_element("css selector", "body").text, 180)
    browser.find_element("xpath", "//button[contains(., 'Show All Names')]").click()   # (anonymous at first)
    try:
        wait_until(browser, lambda b: ada in b.find_element("css selector", "body").text, 60)
    finally:
        shot(browser, hub, "formgrader")
    rows = [r.text for r in browser.find_elements("css selector", "tbody tr")]
    row = {who: next((r for r in rows if who in r), "") for who in (ada, bob)}
    assert f"{MAX:g} / {MAX:g}" in row[ada] and f"{points[bob]:g} / {MAX:g}" in row[bob], rows

    page = _read_feedback(browser, hub, ada, "ada")
    assert f"Total: {MAX:g} / {MAX:g}" in page, page[:2000]
    page = _read_feedback(browser, hub, bob, "bob", focus="divides by 256")
    assert f"Total: {points[bob]:g} / {MAX:g}" in page and "divides by 256" in page, page[:3000]

    # Resubmission: bob fixes normalize and hands it in again; the next round gives full marks.
    _hand_in(browser, hub, bob, solved(), "bob-again")
    # ... and ada, from her own terminal, hands in an empty lesson in bob's name after him.
    fake = Path(pwd.getpwnam(ada).pw_dir) / "fake"
    as_user(hub, ada, ["mkdir", "-p", str(fake / LESSON)])
    as_user(hub, ada, ["cp", str(hub.root / "student" / "lessons" / LESSON / f"{LESSON}.ipynb"), str(fake / LESSON)])
    as_user(hub, ada, ["nbgrader", "submit", LESSON, "--student", bob], cwd=fake)
    assert len(list((hub.exchange / "inbound").glob(f"{bob}+*"))) == 3
    points = _grade_round(hub, hub.course_dir / "grades",
                          warning=f"claims to be {bob}'s but belongs to the Unix user {ada}")
    assert points == {ada: MAX, bob: MAX}, points
    page = _read_feedback(browser, hub, bob, "bob-again")
    assert f"Total: {MAX:g} / {MAX:g}" in page, page[:2000]


PROBE = r'''
import json, os, sys
out = {}
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read(1)
        out[path] = "read"
    except PermissionError:
        out[path] = "denied"
    except OSError as err:
        out[path] = type(err).__name__
print(json.dumps(out))
'''


def _probe(hub, user: str, paths) -> dict:
    done = as_user(hub, user, ["python", "-c", PROBE, *map(str, paths)], cwd="/")
    return json.loads(done.stdout)


def test_a_student_cannot_read_the_course_the_solutions_the_judges_or_other_work(hub):
    ada, bob = hub.student("ada"), hub.student("bob")
    secrets = [REPO / "solutions" / LESSON / f"{LESSON}.ipynb",
               REPO / "lessons_src" / LESSON / f"{LESSON}_judges.py",
               REPO / "autograder" / "hidden",
               hub.course_dir,
               hub.course_dir / "source" / LESSON / f"{LESSON}.ipynb",
               hub.root / "state" / "passwords.txt"]
    others = [hub.exchange / "inbound", Path(pwd.getpwnam(bob).pw_dir), Path(pwd.getpwnam(bob).pw_dir) / LESSON]
    for path in secrets:
        assert path.exists(), path
    seen = _probe(hub, ada, secrets + others)
    assert set(seen.values()) == {"denied"}, seen
    # The control: the instructor reads the course and the submissions; ada reads the lessons and the data.
    seen = _probe(hub, hub.instructor, secrets[:2] + [hub.exchange / "inbound"])
    assert set(seen.values()) == {"read"}, seen
    seen = _probe(hub, ada, [hub.root / "student" / "lessons" / LESSON / f"{LESSON}.ipynb",
                             hub.root / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte"])
    assert set(seen.values()) == {"read"}, seen
    # Nor can a student take the course's folder in the exchange away from the instructor.
    moved = as_user(hub, ada, ["mv", str(hub.exchange), str(hub.exchange) + "-mine"], check=False)
    assert moved.returncode != 0 and hub.exchange.is_dir()


@pytest.mark.parametrize("args, message", [
    (["--students", "Ada Lovelace"], "is not a valid user name"),
    (["--instructor", "ada", "--students", "ada"], "cannot be both the instructor and a student"),
    (["--hub-config", "/nonexistent/my_hub_config.py"], "--hub-config /nonexistent/my_hub_config.py: no such file"),
])
def test_a_wrong_option_is_one_line_before_anything_is_changed(tmp_path, args, message):
    skip_unless_possible()
    import subprocess

    done = subprocess.run([sys.executable, "-m", "autograder", "hub", "--root", str(tmp_path / "srv"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "srv").exists(), "nothing is set up"
