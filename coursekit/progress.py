"""Progress bars for the lessons' long cells: how many mini-batches are done, the time spent and
the time left (tqdm's bar: a widget in JupyterLab, text elsewhere). A busy laptop can take several
times as long as an idle one, so the lessons show the wait instead of promising a duration."""
from __future__ import annotations

from typing import Iterable, Optional


def progress(batches: Iterable, desc: str, total: Optional[int] = None):
    """``batches`` (a DataLoader, or any iterable of mini-batches) wrapped in a progress bar.

    Iterate it as the original (it yields the same items, and ``len()`` works where the original
    has one); the bar stays after the loop, showing how long it took.
    total: how many items there will be, where ``batches`` has no ``len()`` (an ``islice``).
    """
    from tqdm.auto import tqdm

    return tqdm(batches, desc=desc, total=total, unit="batch", mininterval=0.5, leave=True)
