"""The hub users' Python environment, ``ROOT/env``: what every single-user server runs from.

It holds the student support package with its ``hub`` extra (nbgrader's student parts need
nbgrader itself; ``jupyterhub-singleuser`` needs jupyterhub) and nothing of the instructor's.
nbgrader's instructor tools are disabled in it at the environment's level, as nbgrader's docs
do for students (docs: "Installation", disabling extensions)::

    jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader   (and the others below)
    jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader

(the first written as the ``page_config.json`` that command writes, without the lock it puts
on formgrader, which would stop the next step) so a student's JupyterLab shows the Assignments
list only; ``enable_instructor_tools(user)`` turns them back on for the instructor (user level,
which wins over the environment's).
``etc/jupyter/nbgrader_config.py`` in it names the course and the exchange for everyone.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from autograder.grading.ownership import give_to_owner

from .accounts import HubError

# nbgrader 0.9's JupyterLab plugins and server extensions an instructor uses and a student must not see.
LAB_PLUGINS = ("formgrader", "create-assignment", "course-list", "validate-assignment")
SERVER_EXTENSIONS = ("formgrader", "course_list")
NBGRADER_CONFIG = '''\
# Written by `python -m autograder hub`: the course and the exchange, for every user of this environment.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
'''


def python_for_everyone(candidates: Sequence[str] = ()) -> str:
    """An interpreter every user may run (its real path readable and passable by others), of this
    Python's version: the environment's ``python`` is a link to it."""
    from autograder.sandbox_uids import readable_by_others

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = getattr(sys, "_base_executable", sys.executable)
    for path in [*candidates, base, f"/usr/bin/{version}", f"/usr/local/bin/{version}"]:
        real = os.path.realpath(path)
        if os.path.isfile(real) and readable_by_others(Path(real)) and readable_by_others(Path(real).parent.parent / "lib"):
            return real
    raise HubError(f"no {version} that every user may run ({os.path.realpath(base)} is in a private folder): "
                   f"install one (apt-get install {version}-venv) or pass --python")


def _run(args: Sequence[str], what: str) -> None:
    done = subprocess.run(list(args), capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise HubError(f"{what} failed: {' | '.join(tail) or f'exit {done.returncode}'}")


def build(env: Path, support: Path, *, course_id: str, exchange: Path, python: Optional[str] = None,
          log: Callable[[str], None] = print) -> Path:
    """Create (or update) the environment ``env`` from the support package folder ``support``.

    support: ``dist/student/support`` (``make student``); python: the interpreter to build it
    from (default: ``python_for_everyone()``). Returns ``env``'s ``bin`` folder.
    """
    bin_dir = env / "bin"
    if not (bin_dir / "python").exists():
        interpreter = python or python_for_everyone()
        log(f"creating the users' environment {env} from {interpreter}")
        _run([interpreter, "-m", "venv", str(env)], f"{interpreter} -m venv {env}")
    stamp = env / ".support-installed"
    marker = _support_marker(support)
    if not stamp.is_file() or stamp.read_text() != marker:
        log(f"installing the support package with nbgrader and jupyterhub into {env} (a few minutes the first time)")
        _run([str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
              f"{support}[hub]"], "pip install support[hub]")
        stamp.write_text(marker)
    jupyter = str(bin_dir / "jupyter")
    _merge_json(env / "etc" / "jupyter" / "labconfig" / "page_config.json",
                {"disabledExtensions": {f"@jupyter/nbgrader:{p}": True for p in LAB_PLUGINS}})
    for ext in SERVER_EXTENSIONS:
        _run([jupyter, "server", "extension", "disable", "--sys-prefix", f"nbgrader.server_extensions.{ext}"],
             f"disabling nbgrader's {ext} server extension for students")
    config = env / "etc" / "jupyter" / "nbgrader_config.py"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(NBGRADER_CONFIG.format(course_id=course_id, exchange=str(exchange)))
    return bin_dir


def _support_marker(support: Path) -> str:
    """What the installed support package was built from: a hash of its files' names and bytes."""
    digest = hashlib.sha256()
    for p in sorted(support.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            digest.update(f"{p.relative_to(support)}\0".encode() + p.read_bytes() + b"\0")
    return digest.hexdigest()


def _merge_json(path: Path, update: dict) -> None:
    """Merge ``update`` (two levels deep) into the JSON file ``path`` (created where missing)."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    for key, value in update.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def enable_instructor_tools(user) -> None:
    """nbgrader's formgrader, Create Assignment and course list for ``user`` (a passwd entry)
    only: the user-level settings ``jupyter labextension enable --level=user`` and ``jupyter
    server extension enable --user`` write, in their ``~/.jupyter``, which win over the
    environment's."""
    home = Path(user.pw_dir) / ".jupyter"
    _merge_json(home / "labconfig" / "page_config.json",
                {"disabledExtensions": {f"@jupyter/nbgrader:{p}": False for p in LAB_PLUGINS}})
    _merge_json(home / "jupyter_server_config.json", {"ServerApp": {"jpserver_extensions": {
        f"nbgrader.server_extensions.{ext}": True for ext in SERVER_EXTENSIONS}}})
    give_to_owner(home, owner_of=Path(user.pw_dir))      # what root wrote there: the user's
