"""What ``run_notebook`` returns: one ``RunReport`` with a ``CellResult`` per code cell."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CELL_STATUSES = ("ok", "error", "timeout", "kernel_died", "skipped")


@dataclass
class CellResult:
    """One code cell. ``status``: ok | error | timeout | kernel_died | skipped."""

    index: int                 # position in the notebook's cell list (markdown cells count)
    grade_id: str | None       # nbgrader metadata, as the host read it from the submission
    status: str
    reason: str = ""           # one line for humans; "" when ok
    ename: str | None = None   # exception name, e.g. "NameError", "DeadKernel", "CellTimeout"
    evalue: str | None = None  # exception message, short
    seconds: float = 0.0       # wall-clock
    cpu_seconds: float = 0.0   # the kernel's CPU time (what the cell limits count)
    output_bytes: int = 0      # output kept in the executed notebook
    dropped_bytes: int = 0     # output beyond the caps, not kept


@dataclass
class RunReport:
    """The outcome of ``run_notebook``.

    status: "ok" (every cell was attempted; cells may still have failed: see ``cells``),
    "missing", "invalid_notebook" (nothing ran), "timeout" (the notebook's wall-clock limit),
    "disk_limit" (too many bytes or files written), "crashed" (the sandbox died and could not
    be relaunched, or its report was missing or malformed), "cancelled" (the grader stopped it:
    ``runner.Cancel``).
    """

    status: str
    reason: str
    cells: list[CellResult] = field(default_factory=list)
    collected: dict[str, Path] = field(default_factory=dict)   # grade_id -> validated .npz copy
    rejected: dict[str, str] = field(default_factory=dict)     # file name -> why it was refused
    executed_notebook: Path | None = None
    seconds: float = 0.0
    isolated: bool = False
    warnings: list[str] = field(default_factory=list)
    attempts: int = 0          # sandbox launches
    warm: bool = False         # the driver was forked from the zygote (else started cold)
    cpu_seconds: float = 0.0   # CPU time of the notebook's kernels
    timings: dict = field(default_factory=dict)   # sandbox_start, spawn, driver_imports, kernel_start [...]
    log_tail: str = ""         # last lines of the sandbox's stdout/stderr (student-influenced)
    kernel_log: str = ""       # last lines of the kernel's own stdout/stderr (student-influenced)
    course: dict | None = None  # the sandbox's course and checks, said before student code ran


def summary(cells: list[CellResult]) -> str:
    ran = [c for c in cells if c.status != "skipped"]
    bad = [c for c in cells if c.status != "ok"]
    if not bad:
        dropped = sum(c.dropped_bytes for c in cells)
        note = f"; {dropped} bytes of output over the cap were dropped" if dropped else ""
        return f"all {len(cells)} code cells ran without error{note}"
    first = bad[0]
    where = f"cell {first.index}" + (f" ({first.grade_id})" if first.grade_id else "")
    return (f"{len(ran)} of {len(cells)} code cells ran, {len(bad)} with problems; first: "
            f"{where} {first.status}: {first.reason or first.ename or ''}").strip()


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
