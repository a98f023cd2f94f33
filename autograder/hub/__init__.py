"""``python -m autograder hub``: the course on a JupyterHub on one machine (the Littlest-JupyterHub
shape), with nbgrader's exchange, for a demo, a test, or a small class.

What it sets up under ``--root`` (default ``/srv/mnist-course``), as root::

    ROOT/env/                 the users' Python environment: the student support package with its
                              ``hub`` extra (nbgrader, jupyterhub); nbgrader's instructor tools are
                              disabled in it (students see only the Assignments list)
    ROOT/student/             what ``make student`` writes: the lessons and the support package
    ROOT/data/MNIST/raw/      the digits, read-only for everyone ($MNIST_DATA_DIR of every server)
    ROOT/exchange/            nbgrader's exchange (root's, 0755); ROOT/exchange/<course>/ is the
                              instructor's: outbound/ (releases), inbound/ (0733: submissions),
                              feedback/ (0711: one file per submission, named by its secret's hash)
    ROOT/state/               the hub's database, cookie secret, settings and the users' passwords (0700)
    /home/<instructor>/<course>/   the nbgrader course folder (source/, release/, gradebook, grades)

The Unix users (``accounts``): the instructor and the students, homes 0700; the instructor is
in the course's staff group, which alone may read the course repository (``lock_course``).
The hub (``jupyterhub_config.py``) logs them in with PAM and starts each one's JupyterLab as
that user from ``ROOT/env``; the instructor's has nbgrader's formgrader (enabled for that
user only, as nbgrader's docs set up several graders).

Modules: ``accounts`` (users, groups, permissions), ``environment`` (ROOT/env), ``course``
(the exchange and the instructor's course folder), ``command`` (the verb: prepare, then start
JupyterHub with configurable-http-proxy), ``jupyterhub_config`` (the hub's settings file).
"""
