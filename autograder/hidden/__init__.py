"""Hidden judges: ``autograder.hidden.lessonN`` attaches judges to the hidden checks
(ids ending in ``_hidden``) that ``coursekit.checks.lessonN`` registers.

They compare the collected data with the reference solution ``mnist_cnn``, and are
imported by ``coursekit.checks.load_hidden`` only when a hidden check is judged (while
grading, or in the instructor's self-check of a solution notebook).
"""
