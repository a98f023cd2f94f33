"""One cell's execution inside the sandbox driver: its state while it runs (``CellRun``), its output
budget (``Caps``) and how an output message joins the cell (``add_output``). A part of the driver,
copied into the sandbox beside it (``autograder.runner.DRIVER_FILES``)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

try:    # imported as autograder._driver_cell
    from ._driver_kernel import KERNEL_DROPPED, short
except ImportError:   # beside _driver.py inside the sandbox
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _driver_kernel import KERNEL_DROPPED, short

TRACEBACK_CHARS = 8000


@dataclass
class CellRun:
    """What is known of a running cell: its limits, the reply, the kernel's state, the interrupt."""

    t_start: float                      # time.monotonic() when it was sent
    cpu0: float                         # the kernel's CPU seconds then
    cpu_limit: float                    # CPU seconds it may use
    wall_end: float                     # the wall-clock backstop (monotonic)
    what: str                           # why it is stopped if it runs out, for the report
    cap: "Caps"
    msg_id: str = ""
    reply: Optional[dict] = None
    reply_at: Optional[float] = None
    idle: bool = False                  # the kernel said idle after it
    interrupted: Optional[tuple] = None  # (cpu used, monotonic time) of the interrupt
    clear_pending: bool = False         # clear_output(wait=True) seen
    iopub_lost: bool = False            # an oversize message cost the iopub socket
    next_cpu_read: float = 0.0
    used: float = 0.0                   # CPU seconds used so far


def add_output(nbformat, cell, msg, cap: "Caps") -> None:
    """Append the output message ``msg`` to ``cell.outputs`` within the cell's budget ``cap``:
    streams merged and cut at the budget, errors always kept (their traceback shortened)."""
    content = msg["content"]
    if msg["msg_type"] == "stream":
        text = content.get("text", "")
        name = content.get("name", "stdout")
        note = KERNEL_DROPPED.search(text) if "[grader-kernel:" in text else None
        if note:
            cap.dropped += int(note.group(1))
        kept = cap.take(text)
        if not kept:
            return
        last = cell.outputs[-1] if cell.outputs else None
        if last is not None and last.get("output_type") == "stream" and last.get("name") == name:
            last["text"] += kept
        else:
            cell.outputs.append(nbformat.v4.new_output("stream", name=name, text=kept))
        return
    if msg["msg_type"] == "error":
        tb = content.get("traceback", [])
        text = "\n".join(tb)
        if len(text) > TRACEBACK_CHARS:
            tb = [text[:TRACEBACK_CHARS // 2] + "\n...[traceback truncated]...\n" + text[-TRACEBACK_CHARS // 2:]]
        content = dict(content, traceback=tb, evalue=short(content.get("evalue", ""), 2000))
        msg = dict(msg, content=content)
        cap.force(len(json.dumps(content)))  # errors are always kept (size-capped above)
    else:
        size = len(json.dumps(content))
        if not cap.fits(size):
            return
    try:
        cell.outputs.append(nbformat.v4.output_from_msg(msg))
    except Exception:  # noqa: BLE001
        pass


class Caps:
    """Output budget of one cell."""

    def __init__(self, budget):
        self.budget, self.kept, self.dropped = budget, 0, 0

    def take(self, text):
        room = self.budget - self.kept
        if room <= 0:
            self.dropped += len(text)
            return ""
        if len(text) > room:
            self.dropped += len(text) - room
            text = text[:room]
        self.kept += len(text)
        return text

    def fits(self, size):
        if self.kept + size > self.budget:
            self.dropped += size
            return False
        self.kept += size
        return True

    def force(self, size):
        self.kept += size
