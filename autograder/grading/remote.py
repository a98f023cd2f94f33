"""What runs on a Dask worker (``dask worker tcp://HOST:PORT --nthreads 1``) for the grade command.

The worker machine has the course installed, bubblewrap, and MNIST (fetched on first use). The
client sends each item with its notebook; the worker grades it with its own course (masters,
checks, hidden judges) after checking that this course is the client's, and sends the result
and the feedback page back. Nothing is written on the worker but its scratch folders.
"""
from __future__ import annotations

from typing import Optional

from . import version


class CourseMismatch(Exception):
    """This worker's course differs from the client's: ``args`` = (worker address, differences)."""


def _address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "this process"


def worker_course(allow_unsandboxed: bool = False) -> dict:
    """What the client checks before it sends work here: the course files, and whether bwrap works."""
    from autograder import sandbox

    why: list = []
    ok = allow_unsandboxed or sandbox.bwrap_available(why=why)
    return {"files": version.course_files(), "bwrap": ok, "why": "; ".join(why)[:300]}


def grade_remote(item: dict, expected: str) -> dict:
    """Grade one item here, with this machine's course and data, if the course is the client's."""
    from .worker import grade_task

    from autograder import sandbox

    files = version.course_files()
    if version.fingerprint(files) != expected:
        raise CourseMismatch(_address(), "the course files changed on this worker since it was checked")
    why: list = []
    if not item.get("allow_unsandboxed") and not sandbox.bwrap_available(why=why):
        # a worker that joined after the client's check and got work before the next one
        raise CourseMismatch(_address(), f"bwrap does not work there ({'; '.join(why)[:300]}); install bubblewrap")
    _log_start()
    return grade_task(dict(item, solutions=None, scratch=None, data_dir=None))


START_TOPIC = "autograder-start:"    # + the task's key: one event each time a worker starts grading it


def _log_start() -> None:
    """Tell the scheduler that this task really started here (Dask also counts a worker's death
    against the tasks only queued on it; the client tells those apart by these events)."""
    try:
        from distributed import get_worker

        worker = get_worker()
        key = worker.get_current_task()
        if key is not None:
            worker.log_event(f"{START_TOPIC}{key}", {"worker": worker.address})
    except Exception:  # noqa: BLE001  (outside a worker, e.g. in tests: nothing to tell)
        pass


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - distributed is a dependency; this keeps imports light elsewhere
    WorkerPlugin = object


class Warmup(WorkerPlugin):
    """Registered by the client: each worker starts its zygote and imports the judges at once,
    before its first notebook arrives."""

    name = "autograder-warmup"

    def setup(self, worker: Optional[object] = None) -> None:
        from .worker import init_worker

        init_worker()
