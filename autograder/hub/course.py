"""nbgrader's exchange and the instructor's course folder on the hub.

``prepare_exchange``: ``ROOT/exchange`` is world-writable as nbgrader requires (its
``release_assignment`` refuses another mode) with the sticky bit (1777, as /tmp), and
``ROOT/exchange/<course>`` is made there for the instructor (0755) before any student could
make it, so no one else can take or remove the course's folder. In it, nbgrader's
``release_assignment`` makes ``outbound/`` (0755), ``inbound/`` (0733: students may add a
submission but not list the others) and ``release_feedback`` makes ``feedback/`` (0711: a
student reads only the file named by their own submission's secret).

``prepare_course``: ``/home/<instructor>/<course>/``, the nbgrader course folder: ``source/``
(the master notebooks, from ``solutions/``), ``release/`` (the student notebooks, from
``lessons/``: what ``nbgrader release_assignment LESSON`` copies into the exchange) and
``nbgrader_config.py`` (the course, the exchange, and the line that loads the trusted
grader's settings once ``python -m autograder gradebook`` has written them); and the
instructor's ``~/.jupyter/nbgrader_config.py``, which points formgrader (started in the home
folder) at that course folder and its settings.
"""
from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path
from typing import Sequence

from autograder.grading.ownership import give_to_owner

COURSE_CONFIG_TEMPLATE = '''\
# This course's nbgrader settings (yours): written once by `python -m autograder hub`.
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
{load_ours}'''
# Formgrader starts in the instructor's home, and reads ~/.jupyter/nbgrader_config.py: point it at the
# course folder, with the course's settings (so its Autograde button injects the trusted verdicts).
USER_CONFIG_TEMPLATE = '''\
# Written by `python -m autograder hub`: nbgrader (formgrader, in your JupyterLab) works on your course folder.
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
load_subconfig("nbgrader_config.py", path={root!r})  # noqa: F821 (the course folder's settings, and ours through it)
'''


def prepare_exchange(exchange: Path, course_id: str, instructor: pwd.struct_passwd) -> Path:
    """The exchange root (root's, 1777) and the course's folder in it (the instructor's, 0755)."""
    exchange.mkdir(parents=True, exist_ok=True)
    os.chown(exchange, 0, 0)
    os.chmod(exchange, 0o1777)
    course = exchange / course_id
    course.mkdir(exist_ok=True)
    os.chown(course, instructor.pw_uid, instructor.pw_gid)
    os.chmod(course, 0o755)
    return course


def prepare_course(repo: Path, course_id: str, exchange: Path, instructor: pwd.struct_passwd,
                   lessons: Sequence[str]) -> Path:
    """The instructor's nbgrader course folder, with every lesson's master and release copy.
    An existing ``nbgrader_config.py`` is kept (it is the instructor's)."""
    from autograder.grading.gradebook import COURSE_CONFIG, LOAD_OURS   # (imports nbgrader: only here)

    course = Path(instructor.pw_dir) / course_id
    course.mkdir(exist_ok=True)
    for lesson in lessons:
        for src, kind in ((repo / "solutions" / lesson, "source"), (repo / "lessons" / lesson, "release")):
            shutil.copytree(src, course / kind / lesson, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    config = course / COURSE_CONFIG
    if not config.is_file():
        config.write_text(COURSE_CONFIG_TEMPLATE.format(root=str(course), course_id=course_id,
                                                        exchange=str(exchange), load_ours=LOAD_OURS))
    user_config = Path(instructor.pw_dir) / ".jupyter" / "nbgrader_config.py"
    if not user_config.is_file():
        user_config.parent.mkdir(exist_ok=True)
        user_config.write_text(USER_CONFIG_TEMPLATE.format(root=str(course)))
    home = Path(instructor.pw_dir)
    give_to_owner(user_config.parent, owner_of=home)      # what root wrote in the home: the instructor's
    give_to_owner(course, owner_of=home)
    return course
