"""``python -m autograder hub``: set up the course's JupyterHub on this machine, then run it.

    sudo .venv/bin/python -m autograder hub --users 3            # instructor + student1..student3
    sudo .venv/bin/python -m autograder hub --students ada,alan --instructor grace --port 8000
    sudo .venv/bin/python -m autograder hub --users 3 --prepare-only   # everything but starting it

Each step says what it did; every step is safe to repeat (users, passwords, the environment
and the course folder are kept, the lessons refreshed). The passwords are in
``ROOT/state/passwords.txt`` (root only). Stop the hub with Ctrl-C.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
from pathlib import Path
from typing import Dict, List

from . import accounts, course, environment
from .accounts import HubError

PROG = "python -m autograder hub"
REPO = Path(__file__).resolve().parents[2]
PROXY = REPO / ".venv" / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
CONFIG = Path(__file__).with_name("jupyterhub_config.py")


def add_arguments(parser) -> None:
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--users", type=int, default=2, metavar="N", help="students student1..studentN (default 2)")
    who.add_argument("--students", metavar="A,B,...", help="the students' user names, comma-separated")
    parser.add_argument("--prefix", default="", help="put this before every user name (e.g. a course code)")
    parser.add_argument("--instructor", default="instructor", help="the instructor's user name (default instructor)")
    parser.add_argument("--root", type=Path, default=Path("/srv/mnist-course"),
                        help="where the exchange, the users' environment and the hub's state live")
    parser.add_argument("--course-id", default="mnist_cnn", help="nbgrader's course id (default mnist_cnn)")
    parser.add_argument("--lesson", action="append", dest="lesson_ids", metavar="ID",
                        help="the lessons to set up (repeatable; default: all)")
    parser.add_argument("--ip", default="127.0.0.1", help="the address to serve on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="the port to serve on (default 8000)")
    parser.add_argument("--python", help="the interpreter to build the users' environment from "
                                         "(default: one every user may run, of this version)")
    parser.add_argument("--hub-config", type=Path, metavar="FILE",
                        help="your own JupyterHub settings, loaded after the course's (TLS, an authenticator; docs/hub.md)")
    parser.add_argument("--prepare-only", action="store_true", help="set everything up, do not start the hub")


def _students(args) -> List[str]:
    names = args.students.split(",") if args.students else [f"student{i}" for i in range(1, args.users + 1)]
    return [accounts.check_name(args.prefix + n.strip()) for n in names if n.strip()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _passwords(path: Path, users: List[str]) -> Dict[str, str]:
    """Each user's password: the one in ``path`` where it has one, else a new one (written back)."""
    known: Dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if " " in line:
                user, password = line.split(" ", 1)
                known[user] = password
    for user in users:
        known.setdefault(user, secrets.token_urlsafe(12))
    path.touch(mode=0o600)
    os.chmod(path, 0o600)
    path.write_text("".join(f"{u} {p}\n" for u, p in known.items()))
    return known


def staff_group(course_id: str) -> str:
    """The Unix group that may read the course repository: ``<course id>-staff``."""
    return f"{course_id.replace('_', '-')}-staff"[:31]


def proxy_command() -> str:
    found = str(PROXY) if PROXY.is_file() else shutil.which("configurable-http-proxy")
    if not found:
        raise HubError("configurable-http-proxy is not installed: run `make hub-proxy` (needs node and npm: "
                       "apt-get install nodejs npm)")
    return found


def prepare(args, log=print) -> dict:
    """Everything but starting the hub; returns the hub's settings (also written to ROOT/state)."""
    from autograder import student
    from coursekit import data

    if os.geteuid() != 0:
        raise HubError("run it as root (it creates Unix users and starts their servers): sudo .venv/bin/python -m "
                       "autograder hub ...")
    proxy = proxy_command()
    extra = Path(os.path.abspath(args.hub_config)) if args.hub_config else None
    if extra is not None and not extra.is_file():
        raise HubError(f"--hub-config {args.hub_config}: no such file")
    root = Path(os.path.abspath(args.root))
    instructor, students = accounts.check_name(args.prefix + args.instructor), _students(args)
    if instructor in students:
        raise HubError(f"{instructor} cannot be both the instructor and a student")
    if not students:
        raise HubError("no students: pass --users N (at least 1) or --students A,B")
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    blocked = accounts.reachable(root)
    if blocked:
        raise HubError(f"the users cannot reach {root}: {blocked[0]} is closed to them (pick --root under /srv or /opt)")
    state = root / "state"
    state.mkdir(exist_ok=True)
    os.chmod(state, 0o700)

    dist = student.build(root / "student", args.lesson_ids, log=lambda *a: None)
    lessons = sorted(p.name for p in (dist / "lessons").iterdir())
    log(f"{root / 'student'}: the student lessons ({', '.join(lessons)}) and the support package")
    exchange = root / "exchange"
    environment.build(root / "env", dist / "support", course_id=args.course_id, exchange=exchange,
                                python=args.python, log=log)
    log(f"{root / 'env'}: the users' environment; nbgrader's instructor tools disabled in it")
    mnist = root / "data" / "MNIST"
    if not (mnist / "raw").is_dir():
        shutil.copytree(data.data_root() / "MNIST" / "raw", mnist / "raw")
    for folder, dirs, files in os.walk(root / "data"):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)

    passwords = _passwords(state / "passwords.txt", [instructor, *students])
    people = {name: accounts.ensure_user(name, passwords[name]) for name in [instructor, *students]}
    staff_name = staff_group(args.course_id)
    accounts.ensure_group(staff_name)
    accounts.add_to_group(instructor, staff_name)
    if accounts.lock_course(REPO, staff_name):
        log(f"{REPO}: now readable by root and the group {staff_name} ({instructor}) only")
    log(f"users: {instructor} (instructor), {', '.join(students)}; homes 0700; passwords in {state / 'passwords.txt'}")
    course.prepare_exchange(exchange, args.course_id, people[instructor])
    course_dir = course.prepare_course(REPO, args.course_id, exchange, people[instructor], lessons)
    environment.enable_instructor_tools(people[instructor])
    log(f"{course_dir}: {instructor}'s nbgrader course folder; release a lesson there with "
        f"`nbgrader release_assignment 01_data`")
    settings = {"ip": args.ip, "port": args.port, "hub_port": _free_port(), "proxy_api_port": _free_port(),
                "proxy": proxy, "state": str(state), "env": str(root / "env"), "data": str(root / "data"),
                "course_yml": str(dist / "course.yml"), "instructor": instructor, "students": students,
                "course_dir": str(course_dir), "exchange": str(exchange / args.course_id),
                "extra_config": str(extra) if extra else None}
    (state / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return settings


def run(args) -> int:
    """Prepare, then replace this process with JupyterHub (0: prepared only; 1: could not)."""
    try:
        settings = prepare(args)
    except HubError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    if args.prepare_only:
        print(f"prepared; start it with: sudo {sys.executable} -m autograder hub (same options)")
        return 0
    hub = Path(sys.executable).parent / "jupyterhub"
    print(f"JupyterHub at http://{settings['ip']}:{settings['port']}/ (Ctrl-C stops it)", flush=True)
    env = {**os.environ, "COURSE_HUB_SETTINGS": str(Path(settings["state"]) / "settings.json")}
    os.chdir(settings["state"])
    os.execve(str(hub), [str(hub), "-f", str(CONFIG)], env)
    return 1   # not reached
