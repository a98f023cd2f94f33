"""What runs on a Dask worker (``dask worker tcp://HOST:PORT --nthreads 1``) for the grade command.

The worker machine has the course installed, bubblewrap, and MNIST (fetched on first use). The
client sends each item with its notebook; the worker grades it with its own course (masters,
checks, hidden judges) after checking that this course is the client's, and sends the result
and the feedback page back. Nothing is written on the worker but its scratch folders.
"""
from __future__ import annotations

import threading
import time
from typing import Optional

from . import version

STOP_POLL_SECONDS = 1.0


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
    from autograder.runner import Cancel

    cancel, done = Cancel(), threading.Event()
    watcher = threading.Thread(target=_watch, args=(item, cancel, done, _stop_event(item)), daemon=True,
                               name="autograder-watchdog")
    watcher.start()
    try:
        return grade_task(dict(item, solutions=None, scratch=None, data_dir=None), cancel=cancel)
    finally:
        done.set()


def _stop_event(item: dict):
    """The client's stop signal for this run (a Dask ``Event`` it sets when the grade command is
    interrupted), or None outside a cluster."""
    name = item.get("stop_event")
    if not name:
        return None
    try:
        from distributed import Event, get_client

        # the client now, in the task's thread: the watchdog's thread could not look it up
        return Event(name, client=get_client())
    except (ImportError, ValueError):     # not on a worker (tests)
        return None


def _watch(item: dict, cancel, done: threading.Event, stop_event) -> None:
    """The task's watchdog: stop the notebook when it runs over ``item["max_seconds"]`` (what a
    local worker may take before it is replaced) or when the client's stop signal is set. Dask
    does not interrupt a running task; this kills its sandbox, so the task ends at once."""
    limit = float(item.get("max_seconds") or 0)
    started = time.monotonic()
    while not done.wait(STOP_POLL_SECONDS):
        if limit and time.monotonic() - started > limit:
            cancel.stop(f"the grader's worker took over {limit:.0f} s and was stopped")
            return
        try:
            stopped = stop_event is not None and stop_event.is_set()
        except Exception:  # noqa: BLE001  (the scheduler is gone: the client stops anyway)
            stopped = False
        if stopped:
            cancel.stop("the grade command was stopped before this notebook was finished")
            return


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
