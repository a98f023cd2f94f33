"""The Dask engine: grade on the workers of an existing Dask distributed cluster (``--scheduler``).

    dask scheduler                                     # anywhere reachable: tcp://HOST:8786
    dask worker tcp://HOST:8786 --nthreads 1           # each grading machine, once per core
    python -m autograder grade SUBS --out DIR --scheduler tcp://HOST:8786

Each worker runs ``remote.grade_remote`` on one item at a time. Before any work is sent, every
worker's course is compared with the client's (``version.course_files``): a worker whose
masters, checks, hidden judges, grading code or libraries differ, or where bwrap does not
work, is refused with a message naming what differs, and never given an item; workers that
join later are checked the same way. Dask itself moves a task off a worker that dies (and,
after ``distributed.scheduler.allowed-failures`` deaths, reports ``KilledWorker``: that notebook
gets a grader error, the others are unaffected). A scheduler that goes away stops the command:
``SchedulerLost``; what was written stays, and the same command resumes.
"""
from __future__ import annotations

import time
import uuid
from typing import Dict, List, Optional

from . import version
from .engine import Outcome, SchedulerLost

CONNECT_SECONDS = 10.0
LOST_AFTER_SECONDS = 10.0        # the scheduler unreachable this long: stop


class DaskUnusable(Exception):
    """The cluster cannot be used (unreachable, or no worker with this course): a usage error."""


class DaskEngine:
    def __init__(self, address: str, *, solutions=None, allow_unsandboxed: bool = False,
                 warn=lambda text: None):
        import logging

        from distributed import Client

        for name in ("distributed", "distributed.client", "distributed.core", "distributed.comm"):
            logging.getLogger(name).setLevel(logging.CRITICAL)   # our one-line messages instead
        self.address, self.warn, self.allow_unsandboxed = address, warn, allow_unsandboxed
        try:
            self.client = Client(address, timeout=CONNECT_SECONDS)   # the default: distributed.wait uses it
        except (OSError, TimeoutError, ValueError) as err:
            raise DaskUnusable(f"cannot reach the Dask scheduler at {address}: {_short(err)}") from None
        self.files = version.course_files(solutions)
        self.expected = version.fingerprint(self.files)
        self.good: Dict[str, int] = {}           # worker address -> threads
        self.refused: Dict[str, str] = {}
        self.futures: Dict[object, object] = {}  # future -> ticket (the future itself)
        self._not_running_since: Optional[float] = None
        self._checked_at = 0.0
        self._check_workers()
        if not self.good:
            self.client.close()
            why = "; ".join(f"{w}: {r}" for w, r in list(self.refused.items())[:3]) or "no worker is connected"
            raise DaskUnusable(f"no Dask worker at {address} can grade with this course ({why})")
        from .remote import Warmup

        try:
            self.client.register_plugin(Warmup(), name=Warmup.name)
        except Exception as err:  # noqa: BLE001  (only a speed-up)
            warn(f"the Dask workers were not warmed up: {_short(err)}")

    def describe(self) -> str:
        n = sum(self.good.values())
        return f"the Dask cluster at {self.address} ({len(self.good)} worker{'s' if len(self.good) != 1 else ''}, " \
               f"{n} thread{'s' if n != 1 else ''})"

    @property
    def window(self) -> int:
        return max(2, 2 * sum(self.good.values()))

    # ------------------------------------------------------------------ workers
    def _check_workers(self) -> None:
        """Compare the course of every worker not seen yet; refuse those that differ."""
        from .remote import worker_course

        self._checked_at = time.monotonic()
        try:
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:
            workers = self.client.scheduler_info()["workers"]
        new = [w for w in workers if w not in self.good and w not in self.refused]
        if not new:
            return
        answers = self.client.run(worker_course, self.allow_unsandboxed, workers=new, on_error="return")
        for w in new:
            answer = answers.get(w)
            if isinstance(answer, BaseException) or not isinstance(answer, dict):
                self._refuse(w, f"the course is not installed there ({_short(answer)})")
            elif not answer.get("bwrap"):
                self._refuse(w, f"bwrap does not work there ({answer.get('why')}); install bubblewrap")
            elif version.fingerprint(answer["files"]) != self.expected:
                self._refuse(w, "its course differs from this one: "
                                + "; ".join(version.differences(self.files, answer["files"])))
            else:
                self.good[w] = int(workers[w].get("nthreads", 1) or 1)

    def _refuse(self, worker: str, why: str) -> None:
        self.good.pop(worker, None)
        if worker not in self.refused:
            self.refused[worker] = why
            self.warn(f"refused the Dask worker {worker}: {why}")

    # ------------------------------------------------------------------ work
    def submit(self, item: dict):
        future = self.client.submit(_grade_remote(), item, self.expected, pure=False,
                                    key=f"grade-{item['student']}-{item['lesson']}-{uuid.uuid4().hex[:8]}",
                                    workers=list(self.good), allow_other_workers=False)
        self.futures[future] = future
        return future

    def wait(self, timeout: float) -> List[Outcome]:
        from distributed import wait as dask_wait

        self._watch_scheduler()
        if time.monotonic() - self._checked_at > 10:
            self._check_workers()
        if not self.futures:
            time.sleep(min(timeout, 0.2))
            return []
        try:
            done, _ = dask_wait(list(self.futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        except OSError as err:
            raise SchedulerLost(f"lost the Dask scheduler at {self.address}: {_short(err)}") from None
        return [self._outcome(f) for f in done]

    def _outcome(self, future) -> Outcome:
        from distributed import KilledWorker

        from .remote import CourseMismatch

        self.futures.pop(future, None)
        try:
            return Outcome(future, "done", payload=future.result())
        except KilledWorker as err:
            return Outcome(future, "died", final=True,
                           reason=f"the Dask workers grading this notebook died each time ({_short(err)}); "
                                  "not tried again")
        except CourseMismatch as err:
            self._refuse(str(err.args[0]), str(err.args[1]) if len(err.args) > 1 else "course differs")
            return Outcome(future, "refused")
        except Exception as err:  # noqa: BLE001
            if self.client.status != "running":
                raise SchedulerLost(f"lost the Dask scheduler at {self.address}") from None
            return Outcome(future, "error", reason=f"{type(err).__name__}: {_short(err)}")

    def _watch_scheduler(self) -> None:
        if self.client.status == "running":
            self._not_running_since = None
            return
        now = time.monotonic()
        self._not_running_since = self._not_running_since or now
        if self.client.status in ("closed", "closing") or now - self._not_running_since > LOST_AFTER_SECONDS:
            raise SchedulerLost(f"lost the Dask scheduler at {self.address} (the client is {self.client.status})")

    def close(self, *, now: bool = False) -> None:
        try:
            if self.futures:
                self.client.cancel(list(self.futures), force=True)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.client.close(timeout=3 if now else 10)
        except Exception:  # noqa: BLE001
            pass


def _grade_remote():
    from .remote import grade_remote

    return grade_remote


def _short(err) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]
