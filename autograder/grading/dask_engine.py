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
gets a grader error, the others are unaffected, and a notebook only queued behind one that
killed its worker is sent again under a new key: see ``DaskEngine.max_tries``). A scheduler that goes away stops the command:
``SchedulerLost``; so does a cluster left without a worker that can grade for ``worker_wait``
seconds (``WorkersLost``, said as soon as the last one leaves); what was written stays, and
the same command resumes.
"""
from __future__ import annotations

import time
import uuid
from typing import Dict, List, Optional

from . import version
from .engine import Outcome, SchedulerLost

CONNECT_SECONDS = 10.0
LOST_AFTER_SECONDS = 10.0        # the scheduler unreachable this long: stop
WORKER_WAIT_SECONDS = 60.0       # no worker that can grade this long: stop (grade --worker-wait)
WORKER_CHECK_SECONDS = 5.0       # how often the workers are looked at again


class WorkersLost(SchedulerLost):
    """Every worker that could grade left the cluster, and none came for ``worker_wait`` seconds."""


class DaskUnusable(Exception):
    """The cluster cannot be used (unreachable, or no worker with this course): a usage error."""


class DaskEngine:
    def __init__(self, address: str, *, solutions=None, allow_unsandboxed: bool = False,
                 warn=lambda text: None, worker_wait: float = WORKER_WAIT_SECONDS):
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
        self.futures: Dict[object, tuple] = {}   # future -> (ticket, item, the workers it may run on)
        self.stop_event = f"autograder-stop-{uuid.uuid4().hex}"   # set by close(now=True): workers stop
        self._not_running_since: Optional[float] = None
        self._no_workers_since: Optional[float] = None
        self.worker_wait = float(worker_wait)
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

    # Dask counts a worker's death against every task that worker holds, running or waiting in
    # its queue (single tasks are not held back at the scheduler). So: no more tasks in flight
    # than threads; a worker logs an event each time it really starts a task (remote._log_start),
    # and a notebook that got KilledWorker having started fewer times than it was counted dead
    # was a bystander: it is sent again under a new key without costing a try (at most
    # engine.MAX_BYSTANDER_RESENDS times). A notebook that kills every worker that runs it is
    # sent once more under a new key (its count starts again) and reported after
    # 2 x (allowed-failures + 1) deaths.
    max_tries = 2

    @property
    def window(self) -> int:
        return max(1, sum(self.good.values()))

    # ------------------------------------------------------------------ workers
    def _check_workers(self) -> None:
        """Compare the course of every worker not seen yet; refuse those that differ."""
        from .remote import worker_course

        self._checked_at = time.monotonic()
        try:
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:
            workers = self.client.scheduler_info()["workers"]
        for gone in [w for w in self.good if w not in workers]:
            del self.good[gone]                   # left, or restarted on another address
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
    def submit(self, item: dict, ticket=None):
        """Send one item. Restricted to the checked workers only while some worker is refused:
        a restriction names addresses, and a worker its nanny restarted comes back on another
        one (``_unstick`` resubmits what waits for workers that are gone)."""
        workers = list(self.good) if self.refused else None
        future = self.client.submit(_grade_remote(), dict(item, stop_event=self.stop_event), self.expected, pure=False,
                                    key=f"grade-{item['student']}-{item['lesson']}-{uuid.uuid4().hex[:8]}",
                                    workers=workers, allow_other_workers=False)
        ticket = ticket if ticket is not None else future
        self.futures[future] = (ticket, item, workers)
        return ticket

    def _unstick(self) -> None:
        alive = set(self.good)
        for future, (ticket, item, workers) in list(self.futures.items()):
            if workers and not alive & set(workers) and future.status == "pending":
                self.futures.pop(future)
                future.cancel()
                self.submit(item, ticket)

    def wait(self, timeout: float) -> List[Outcome]:
        from distributed import wait as dask_wait

        self._watch_scheduler()
        if time.monotonic() - self._checked_at > min(WORKER_CHECK_SECONDS, self.worker_wait / 2):
            self._check_workers()
            self._unstick()
            self._watch_workers()
        if not self.futures:
            time.sleep(min(timeout, 0.2))
            return []
        try:
            done, _ = dask_wait(list(self.futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        except Exception as err:  # noqa: BLE001  (FuturesCancelledError "scheduler-connection-lost", OSError)
            if "connection" in str(err).lower() or self.client.status != "running" or isinstance(err, OSError):
                raise SchedulerLost(f"lost the Dask scheduler at {self.address}") from None
            raise
        return [self._outcome(f) for f in done]

    def _outcome(self, future) -> Outcome:
        from distributed import KilledWorker

        from .remote import CourseMismatch

        ticket, _, _ = self.futures.pop(future)
        try:
            return Outcome(ticket, "done", payload=future.result())
        except KilledWorker as err:
            return Outcome(ticket, "died", bystander=self._starts(future.key) <= self._allowed_failures(),
                           reason=f"the Dask workers grading this notebook died each time ({_short(err)})")
        except CourseMismatch as err:
            self._refuse(str(err.args[0]), str(err.args[1]) if len(err.args) > 1 else "course differs")
            return Outcome(ticket, "refused")
        except Exception as err:  # noqa: BLE001
            if self.client.status != "running":
                raise SchedulerLost(f"lost the Dask scheduler at {self.address}") from None
            return Outcome(ticket, "error", reason=f"{type(err).__name__}: {_short(err)}")

    def _starts(self, key) -> int:
        """How many times a worker really started the task ``key`` (its start events)."""
        from .remote import START_TOPIC

        try:
            return len(self.client.get_events(f"{START_TOPIC}{key}"))
        except Exception:  # noqa: BLE001  (unknown: count it as a real death)
            return 1 << 30

    def _allowed_failures(self) -> int:
        """The scheduler's distributed.scheduler.allowed-failures (deaths before KilledWorker, minus one)."""
        if not hasattr(self, "_allowed"):
            try:
                self._allowed = int(self.client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures))
            except Exception:  # noqa: BLE001
                import dask

                self._allowed = int(dask.config.get("distributed.scheduler.allowed-failures"))
        return self._allowed

    def _watch_workers(self) -> None:
        """Say at once when no worker that can grade is left; WorkersLost after ``worker_wait`` s."""
        if self.good:
            if self._no_workers_since is not None:
                self.warn(f"a Dask worker joined the cluster at {self.address}: grading goes on")
            self._no_workers_since = None
            return
        now = time.monotonic()
        if self._no_workers_since is None:
            self._no_workers_since = now
            self.warn(f"no Dask worker that can grade is left at {self.address}; waiting "
                      f"{self.worker_wait:g} s for one (start `dask worker {self.address} --nthreads 1`)")
        elif now - self._no_workers_since >= self.worker_wait:
            raise WorkersLost(f"no Dask worker that can grade has been connected to {self.address} "
                              f"for {self.worker_wait:g} s")

    def _watch_scheduler(self) -> None:
        if self.client.status == "running":
            self._not_running_since = None
            return
        now = time.monotonic()
        self._not_running_since = self._not_running_since or now
        if self.client.status in ("closed", "closing") or now - self._not_running_since > LOST_AFTER_SECONDS:
            raise SchedulerLost(f"lost the Dask scheduler at {self.address} (the client is {self.client.status})")

    def close(self, *, now: bool = False) -> None:
        """Cancel what is queued; with ``now`` (interrupted, or the cluster lost), also tell the
        workers to stop the notebooks they are grading (``remote._watch`` kills their sandboxes)."""
        if now:
            try:
                from distributed import Event

                Event(self.stop_event, client=self.client).set()
            except Exception:  # noqa: BLE001  (a scheduler that is gone stops them anyway)
                pass
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
