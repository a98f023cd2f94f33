"""Grade a class: ``python -m autograder grade SUBMISSIONS_DIR --out DIR`` (see docs/grading.md).

- ``discover``: submission layouts -> (student, lesson, notebook path) items;
- ``plan``: what a lesson grades, from its MASTER notebook; the notebook that actually runs;
- ``worker``: one item: sandboxed run(s) (``autograder.runner``), judging, feedback, result;
- ``judge``: collected ``.npz`` data -> per-check and per-cell verdicts, in the grader's process;
- ``report``: atomic per-item JSON, ``grades.csv`` / ``grades.json``, feedback HTML, summary table;
- ``cli``: the command (options, worker pool, progress bar, exit status).
"""
