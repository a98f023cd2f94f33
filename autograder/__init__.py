"""autograder: the instructor side of the course.

- ``python -m autograder release``: regenerate ``lessons/`` from ``solutions/`` with nbgrader.
- ``python -m autograder grade NOTEBOOK...``: autograde notebooks with nbgrader in a scratch course.
- ``autograder.hidden``: the hidden judges, which compare a student's work with ``mnist_cnn``.

Never shipped to students as part of a lesson; ``coursekit`` must not import it.
"""
