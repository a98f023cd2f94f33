"""The course's JupyterHub for tests: ``python -m autograder hub`` started for real on 127.0.0.1
(free port) with Unix users made for the test and removed after it, and what a user does in it:
log in in headless Chromium, open nbgrader's Assignments list, press its buttons; run a command
as a user (``runuser``).

    with running_hub(root, prefix, ["ada", "bob"]) as hub, chromium() as browser:
        login(browser, hub, hub.student("ada"))

The command changes the course repository's group and mode (students must not read it) and
needs its parents passable; both are put back afterwards.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from browser_kit import free_port, texts, wait_for

REPO = Path(__file__).resolve().parents[2]
ANNOUNCEMENT = "MNIST CNN course: log in with your university account"


@dataclass
class Hub:
    url: str
    root: Path
    settings: dict
    passwords: Dict[str, str]
    prefix: str
    log: Path
    shots: List[Path] = field(default_factory=list)
    login_page: str = ""

    @property
    def instructor(self) -> str:
        return self.settings["instructor"]

    def student(self, name: str) -> str:
        return self.prefix + name

    @property
    def course_dir(self) -> Path:
        return Path(self.settings["course_dir"])

    @property
    def exchange(self) -> Path:
        return Path(self.settings["exchange"])

    @property
    def env_bin(self) -> Path:
        return Path(self.settings["env"]) / "bin"


def skip_unless_possible() -> None:
    """Skip (with what to do) where this machine cannot run the hub: not root, no useradd, no proxy."""
    from autograder.hub.command import HubError, proxy_command

    if os.geteuid() != 0:
        pytest.skip("the hub test creates Unix users: run it as root (CI does)")
    if not shutil.which("useradd"):
        pytest.skip("no useradd on this machine (Debian's passwd package)")
    try:
        proxy_command()
    except HubError as err:
        pytest.skip(str(err))


def as_user(hub: Hub, user: str, args, cwd=None, env=None, timeout=600, check=True) -> subprocess.CompletedProcess:
    """Run ``args`` as the Unix user ``user`` with what a terminal in their JupyterLab has (their
    HOME, the users' environment first on PATH, the course's data and settings) and nothing else;
    fails the test with the output where it fails and ``check``."""
    import pwd

    home = pwd.getpwnam(user).pw_dir
    base = {"HOME": home, "USER": user, "PATH": f"{hub.env_bin}:/usr/bin:/bin", "LANG": "C.UTF-8",
            # what the hub gives each server (and so a terminal in it): autograder/hub/jupyterhub_config.py
            "MNIST_DATA_DIR": hub.settings["data"], "MNIST_CNN_COURSE": hub.settings["course_yml"]}
    base.update(env or {})
    done = subprocess.run(["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in base.items()), *args],
                          cwd=cwd or home, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} as {user} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}",
                    pytrace=False)
    return done


@contextlib.contextmanager
def _course_repo_restored() -> Iterator[None]:
    """Put back the repository's group and mode, and its parents' modes, after the hub changed them."""
    st = os.stat(REPO)
    parents = {p: stat.S_IMODE(os.stat(p).st_mode) for p in REPO.parents}
    for p, mode in parents.items():      # the instructor must reach the course (a clone under a 0700 tmp)
        if not mode & stat.S_IXOTH:
            os.chmod(p, mode | stat.S_IXOTH)
    try:
        yield
    finally:
        os.chown(REPO, -1, st.st_gid)
        os.chmod(REPO, stat.S_IMODE(st.st_mode))
        for p, mode in parents.items():
            os.chmod(p, mode)


@contextlib.contextmanager
def running_hub(root: Path, prefix: str, students: List[str], timeout: float = 900) -> Iterator[Hub]:
    """``python -m autograder hub`` with these students (and ``<prefix>teach``) on a free port;
    stopped, its users and their homes removed, the repository's mode restored afterwards."""
    from autograder.hub import accounts
    from autograder.hub.command import staff_group

    port = free_port()
    log = root.parent / f"{root.name}-hub.log"
    extra = root.parent / "my_hub_config.py"      # the instructor's own settings (--hub-config)
    extra.write_text(f"c.JupyterHub.template_vars = {{'announcement_login': {ANNOUNCEMENT!r}}}\n")
    args = [sys.executable, "-m", "autograder", "hub", "--students", ",".join(students), "--prefix", prefix,
            "--instructor", "teach", "--root", str(root), "--port", str(port), "--lesson", "01_data",
            "--hub-config", str(extra)]
    users = [prefix + "teach", *(prefix + s for s in students)]
    with _course_repo_restored():
        with open(log, "w") as out:
            proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while True:
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/hub/api", timeout=5) as r:
                        if r.status == 200:
                            break
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the hub did not start:\n{log.read_text()[-4000:]}", pytrace=False)
                time.sleep(1)
            settings = json.loads((root / "state" / "settings.json").read_text())
            passwords = dict(line.split(" ", 1) for line in (root / "state" / "passwords.txt").read_text().splitlines())
            yield Hub(f"http://127.0.0.1:{port}", root, settings, passwords, prefix, log)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            for user in users:
                accounts.remove_user(user)
            accounts.remove_group(staff_group("mnist_cnn"))


# ---------------------------------------------------------------------------------------------
# In the browser
# ---------------------------------------------------------------------------------------------
def login(browser, hub: Hub, user: str) -> None:
    """Log ``user`` in with their password and wait for their JupyterLab."""
    browser.get(f"{hub.url}/hub/logout")          # whoever was logged in (cookies are per path)
    browser.delete_all_cookies()
    browser.get(f"{hub.url}/hub/login")
    wait_for(browser, "#username_input").send_keys(user)
    hub.login_page = browser.find_element("css selector", "body").text
    browser.find_element("css selector", "#password_input").send_keys(hub.passwords[user])
    browser.find_element("css selector", "#login_submit").click()
    wait_for(browser, ".lm-MenuBar-itemLabel", timeout=400)
    browser.get(f"{hub.url}/user/{user}/lab?reset")     # no tabs restored from the last visit
    wait_for(browser, ".lm-MenuBar-itemLabel", timeout=400)
    wait_until(browser, lambda b: "File" in texts(b, ".lm-MenuBar-itemLabel"), 120)
    time.sleep(2)   # extensions add their menus once the app has started


def wait_until(browser, condition, timeout: float = 180):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, ignored_exceptions=(Exception,)).until(condition)


def menu(browser, name: str) -> List[str]:
    """Open the menu-bar menu ``name``; the labels of its items (the menu stays open)."""
    for item in browser.find_elements("css selector", ".lm-MenuBar-item"):
        if item.text.strip() == name:
            item.click()
            time.sleep(0.5)
            return texts(browser, ".lm-Menu-itemLabel")
    return []


def close_menu(browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    time.sleep(0.3)


def open_assignments(browser) -> None:
    """Nbgrader > Assignment List: nbgrader's Assignments tab."""
    labels = menu(browser, "Nbgrader")
    assert "Assignment List" in labels, labels
    for item in browser.find_elements("css selector", ".lm-Menu-item"):
        if item.text.strip() == "Assignment List":
            item.click()
            break
    wait_until(browser, lambda b: "Released assignments" in b.find_element("css selector", "body").text)


def press(browser, panel: str, label: str, timeout: float = 300) -> None:
    """Press the button ``label`` in the Assignments tab's ``panel`` (released, fetched, submitted)
    once it is there, refreshing the list while waiting."""
    css = f"#{panel}_assignments_list button"

    def ready(b):
        for button in b.find_elements("css selector", css):
            if button.text.strip() == label and button.is_enabled():
                return button
        with contextlib.suppress(Exception):
            b.find_element("css selector", "#refresh_assignments_list").click()
        time.sleep(2)
        return False

    wait_until(browser, ready, timeout).click()


def panel_text(browser, panel: str) -> str:
    return browser.find_element("css selector", f"#{panel}_assignments_list").text


def shot(browser, hub: Hub, name: str) -> Path:
    path = hub.root.parent / f"hub-{name}.png"
    browser.save_screenshot(str(path))
    hub.shots.append(path)
    return path
