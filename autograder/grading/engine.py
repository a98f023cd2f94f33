"""Grade work items on an engine's workers; write each result as it arrives. One loop, any engine.

An engine runs ``worker.grade_task`` on items somewhere and says how each ended:

* ``LocalEngine(jobs)``: worker processes on this machine (the default, ``--jobs N``);
* ``dask_engine.DaskEngine(address)``: the workers of a Dask distributed cluster (``--scheduler``).

``grade(engine, items, ...)`` is the supervision both share: it reads each notebook just before
it is sent (``submissions.attach``: the bytes travel with the item, so no shared file system is
needed), keeps at most ``engine.window`` items in flight, writes each answer atomically (the
feedback page, then the result: a result file on disk is complete, and means the item is done,
so an interrupted run loses nothing), and retries an item whose worker died, at most
``MAX_TRIES`` times in all: a notebook that kills its worker every time is reported with that
reason, never retried forever, and costs the other students nothing.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_any
from pathlib import Path
from typing import Callable, Dict, List, Optional

from . import report, submissions
from .worker import error_result, grade_task, init_worker

MAX_TRIES = 3
MAX_BYSTANDER_RESENDS = 4        # a notebook lost only as a bystander is sent again, this many times at most


@dataclass
class Outcome:
    ticket: object
    kind: str                    # done | died | error | refused
    payload: Optional[dict] = None    # done: {"result": ..., "feedback": html}
    reason: str = ""
    final: bool = False          # died: the engine already retried (Dask), do not try again
    bystander: bool = False      # died: only queued behind what killed the worker; costs no try


class SchedulerLost(Exception):
    """The engine's coordinator went away (a Dask scheduler): stop, keep what is written."""


class Interrupted(Exception):
    """SIGINT or SIGTERM to the grade command."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def on_signals() -> Callable[[], None]:
    """SIGTERM (and SIGINT) raise ``Interrupted`` in the main thread; returns the undo."""
    def raise_it(signum, frame):
        raise Interrupted(signum)

    old = {s: signal.signal(s, raise_it) for s in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(s, h) for s, h in old.items()]


# ------------------------------------------------------------------------------------------
def grade(engine, items: List[dict], out: Path, root: Path, *, progress: bool = False,
          max_tries: int = MAX_TRIES) -> Dict[str, int]:
    """Grade ``items`` (from ``cli.make_items``) on ``engine``; counts of what happened."""
    from tqdm import tqdm

    max_tries = getattr(engine, "max_tries", max_tries)
    queue = deque(items)
    in_flight: Dict[object, dict] = {}
    tries: Dict[tuple, int] = {}
    resent: Dict[tuple, int] = {}
    counts = {"graded": 0, "retried": 0, "errors": 0}
    bar = tqdm(total=len(items), desc="grading", unit="nb", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < engine.window:
                item = queue.popleft()
                in_flight[engine.submit(submissions.attach(item, root))] = item
            for o in engine.wait(1.0):
                item = in_flight.pop(o.ticket, None)
                if item is None:
                    continue
                key = (item["student"], item["lesson"])
                if o.kind == "done":
                    _write(out, o.payload)
                    counts["graded"] += 1
                elif o.kind == "refused":
                    queue.appendleft(item)        # the engine will not send it there again
                    continue
                elif o.kind == "died" and o.bystander and resent.get(key, 0) < MAX_BYSTANDER_RESENDS:
                    resent[key] = resent.get(key, 0) + 1
                    counts["retried"] += 1
                    queue.appendleft(item)
                    continue
                elif o.kind == "died":
                    tries[key] = tries.get(key, 1) + 1
                    if not o.final and tries[key] <= max_tries:
                        counts["retried"] += 1
                        queue.appendleft(item)
                        continue
                    n = tries[key] - 1 if not o.final else ""
                    _write(out, {"result": error_result(item, f"grader error: {o.reason}" + (
                        f" (graded {n} times, each time the worker died: not tried again)" if n else ""))})
                    counts["errors"] += 1
                else:
                    _write(out, {"result": error_result(item, f"grader error: {o.reason}")})
                    counts["errors"] += 1
                status = (o.payload or {}).get("result", {}).get("status", "grader error")
                bar.set_postfix_str(f"{item['student']} {item['lesson']}: {status}", refresh=False)
                bar.update(1)
    finally:
        bar.close()
    return counts


def _write(out: Path, payload: dict) -> None:
    result = payload["result"]
    page = payload.get("feedback")
    if page is not None:
        report.write_bytes_atomic(report.feedback_path(out, result["student"], result["lesson"]),
                                  page.encode("utf-8"))
    report.write_json_atomic(report.result_path(out, result["student"], result["lesson"]), result)


# ------------------------------------------------------------------------------------------
# The local engine: worker processes on this machine
# ------------------------------------------------------------------------------------------
@dataclass
class _Worker:
    process: multiprocessing.Process
    conn: object
    ticket: Optional[int] = None
    since: float = 0.0
    limit: float = 0.0


def _worker_main(conn, fn) -> None:
    """A local worker: grade what it is sent until it is sent None."""
    def stop(signum, frame):        # SIGTERM from the client: unwind, so sandboxes are killed
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # the client decides (Ctrl-C reaches the group)
    if fn is grade_task:
        init_worker()
    while True:
        try:
            item = conn.recv()
        except EOFError:
            _exit_now()
        if item is None:
            _exit_now()
        try:
            answer = {"ok": fn(item)}
        except Exception as err:  # noqa: BLE001
            answer = {"error": f"{type(err).__name__}: {err}"}
        conn.send(answer)


def _exit_now() -> None:
    """End a worker without the interpreter's teardown (0.7 s with torch loaded): its zygote and
    sandboxes are stopped first, and nothing else of it needs finalizing."""
    from autograder import zygote

    zygote._close_shared()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class LocalEngine:
    """``jobs`` worker processes (spawned: clean, no inherited torch threads), one item at a time
    each. A worker that dies costs only the item it was grading; a fresh one takes its place."""

    def __init__(self, jobs: int, fn: Callable = grade_task):
        self.fn = fn
        self.ctx = multiprocessing.get_context("spawn")
        self.window = jobs
        self.workers = [self._start() for _ in range(jobs)]
        self._next = 0

    def describe(self) -> str:
        return f"{len(self.workers)} worker{'s' if len(self.workers) > 1 else ''}"

    def _start(self) -> _Worker:
        ours, theirs = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker_main, args=(theirs, self.fn), daemon=True, name="grading-worker")
        p.start()
        theirs.close()
        return _Worker(p, ours)

    def submit(self, item: dict) -> int:
        w = next(w for w in self.workers if w.ticket is None)
        self._next += 1
        w.ticket, w.since, w.limit = self._next, time.monotonic(), float(item.get("max_seconds") or 0)
        try:
            w.conn.send(item)
        except (OSError, EOFError):
            pass                                 # it died: wait() reports it
        return w.ticket

    def wait(self, timeout: float) -> List[Outcome]:
        busy = [w for w in self.workers if w.ticket is not None]
        if not busy:
            return []
        ready = set(wait_any([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        now = time.monotonic()
        outcomes = []
        for i, w in enumerate(self.workers):
            if w.ticket is None:
                continue
            if w.conn in ready or w.process.sentinel in ready:
                try:
                    answer = w.conn.recv() if w.conn.poll() else None
                except (EOFError, OSError):
                    answer = None
                if answer is None:
                    outcomes.append(Outcome(w.ticket, "died", reason=self._death(w)))
                    self._replace(i)
                elif "ok" in answer:
                    outcomes.append(Outcome(w.ticket, "done", payload=answer["ok"]))
                    w.ticket = None
                else:
                    outcomes.append(Outcome(w.ticket, "error", reason=answer["error"]))
                    w.ticket = None
            elif w.limit and now - w.since > w.limit:
                outcomes.append(Outcome(w.ticket, "died", final=True,
                                        reason=f"the grader's worker took over {w.limit:.0f} s and was stopped"))
                self._replace(i)
        return outcomes

    def _death(self, w: _Worker) -> str:
        w.process.join(timeout=5)
        code = w.process.exitcode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exit status {code}")
        return f"the grader's worker process died while grading this notebook ({how})"

    def _replace(self, i: int) -> None:
        old = self.workers[i]
        _stop(old.process)
        old.conn.close()
        self.workers[i] = self._start()

    def close(self, *, now: bool = False) -> None:
        """Stop every worker: idle ones are told to finish; with ``now`` (or if they do not),
        SIGTERM (each kills its sandboxes and zygote), then SIGKILL 3 s later."""
        for w in self.workers:
            if not now and w.ticket is None:
                try:
                    w.conn.send(None)
                except (OSError, EOFError):
                    pass
        for w in self.workers:
            if now or w.ticket is not None:
                try:
                    w.process.terminate()
                except OSError:
                    pass
        end = time.monotonic() + (3.0 if now else 10.0)
        for w in self.workers:
            w.process.join(timeout=max(0.0, end - time.monotonic()))
        for w in self.workers:
            _stop(w.process)
            w.conn.close()


def _stop(process: multiprocessing.Process) -> None:
    if process.is_alive():
        process.terminate()
        process.join(timeout=3)
    if process.is_alive():
        process.kill()
        process.join(timeout=5)
