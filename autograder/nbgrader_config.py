"""nbgrader configuration of the course.

Used by ``python -m autograder release`` and ``python -m autograder grade`` (which
override the root and the database for their scratch course folders), and usable
directly from the repository root, e.g.::

    mkdir -p runs/nbgrader
    nbgrader generate_assignment 01_data --config autograder/nbgrader_config.py

Layout: one nbgrader assignment per lesson, ``solutions/<id>/<id>.ipynb`` (source,
the instructor's master notebook) -> ``lessons/<id>/<id>.ipynb`` (release, the
student's notebook). The gradebook lives in ``runs/nbgrader/`` (git-ignored).
"""
from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)
REPO = Path(__file__).resolve().parents[1]

c.CourseDirectory.root = str(REPO)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
c.CourseDirectory.db_url = f"sqlite:///{REPO / 'runs' / 'nbgrader' / 'gradebook.db'}"
# Never copied into a lesson: scratch files, and instructor-only material such as rubrics
# (keep those in solutions/<id>/instructor/ or in the notebook's mark-scheme regions).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "instructor"]

# What the student sees in place of a solution region.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Feedback must not show the hidden tests (nbgrader shows them by default).
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]

# Grading runs the notebooks top to bottom; a cell that trains may take a while, but
# course.yml's budget_s per lesson is what the tests hold each notebook to.
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = True
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]   # no kernel chatter on the terminal
