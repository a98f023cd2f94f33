"""A real JupyterLab in a real browser, for tests: a Jupyter server started on 127.0.0.1 from
any interpreter (the course's, or a fresh student environment's), and Debian's headless
Chromium driven by selenium.

    with jupyter_lab(python, root, env) as lab, chromium() as browser:
        browser.get(lab.url("lab/tree/lessons/01_data/01_data.ipynb"))

Where chromium, chromedriver or selenium is missing, ``chromium()`` skips the test with the
command that installs them (`.ci/run` installs them in CI).
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = ("chromedriver",)
INSTALL = "apt-get install chromium chromium-driver; pip install selenium (the dev extra)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(names) -> Optional[str]:
    return next((path for path in map(shutil.which, names) if path), None)


@dataclass
class Lab:
    """A running Jupyter server: ``url(path)`` is a page of it, logged in with the token."""

    port: int
    token: str
    log: Path

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"


@contextlib.contextmanager
def jupyter_lab(python: str, root: Path, env: Optional[dict] = None, *, timeout: float = 240) -> Iterator[Lab]:
    """``python -m jupyter lab`` serving ``root`` on a free 127.0.0.1 port, stopped afterwards.

    python: the interpreter whose JupyterLab (and extensions) to start.
    env: its environment (default: this process's); JUPYTER_* there decide its config.
    Fails the test with the server's log if it is not answering within ``timeout`` seconds.
    """
    port, token = free_port(), secrets.token_hex(16)
    log = Path(tempfile.mkdtemp(prefix="jupyter-lab-")) / "server.log"   # not in root: the lab would list it
    args = [python, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:   # CI's containers run as root
        args.append("--allow-root")
    with open(log, "w") as out:
        proc = subprocess.Popen(args, cwd=root, env=env if env is not None else os.environ.copy(),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(port, token, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(lab.url("api/status"), timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start ({python}):\n{log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.5)
        yield lab
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 900):
    """A headless Chromium under selenium (Debian's chromium and chromedriver); skips where missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip(f"selenium is not installed ({INSTALL})")
    browser_bin, driver_bin = _which(CHROMIUM), _which(DRIVER)
    if not (browser_bin and driver_bin):
        pytest.skip(f"headless Chromium is not installed ({INSTALL})")
    options = webdriver.ChromeOptions()
    options.binary_location = browser_bin
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_bin), options=options)
    driver.set_page_load_timeout(180)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(browser, css: str, timeout: float = 180):
    """The first element matching ``css`` once it is shown (selenium's explicit wait)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def texts(browser, css: str) -> list[str]:
    """The visible texts of every element matching ``css``."""
    from selenium.webdriver.common.by import By

    return [e.text.strip() for e in browser.find_elements(By.CSS_SELECTOR, css) if e.text.strip()]


def instructor_tools(browser) -> list[str]:
    """What of nbgrader's instructor tools the open JupyterLab page shows: its menu ("Nbgrader",
    holding Formgrader), the "Create Assignment" sidebar, the notebook's "Validate" button."""
    seen = [f"the {m!r} menu" for m in texts(browser, ".lm-MenuBar-itemLabel") if "nbgrader" in m.lower()]
    tabs = [e.get_attribute("title") or e.text for e in browser.find_elements("css selector", ".lm-TabBar-tab")]
    seen += [f"the {t!r} sidebar" for t in tabs if "assignment" in (t or "").lower() and "list" not in t.lower()]
    toolbar = texts(browser, ".jp-NotebookPanel-toolbar .jp-Toolbar-item")
    seen += [f"the {t!r} button" for t in toolbar if t.lower() in ("validate", "formgrader")]
    return seen
