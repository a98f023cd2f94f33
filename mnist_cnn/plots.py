"""The training run's pictures: loss curve, confusion matrix, misclassified digits.

Each function draws one figure with matplotlib's Agg backend (no display needed,
the global pyplot state is untouched), writes it as a PNG and returns its path.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

PathLike = Union[str, "os.PathLike[str]"]
DPI = 120


def _save(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` to ``path`` as a PNG (creating parent folders); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def loss_curve(
    history: Sequence[Tuple[int, float]],
    path: PathLike,
    *,
    title: str = "Training loss",
    epoch_losses: Optional[Sequence[float]] = None,
    steps: Optional[int] = None,
) -> Path:
    """Plot the training loss against the mini-batch step.

    history: (step, loss) pairs, e.g. ``TrainResult.history`` (the running loss of each log line).
    path: the PNG to write.
    epoch_losses: optional mean loss of each epoch, drawn as points at each epoch's last step.
    steps: total optimizer steps (``TrainResult.steps``), to place the epoch points;
        default the last step of ``history``.
    Returns the path written. The loss axis is logarithmic when the loss spans over 10x.
    """
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    values = []
    if history:
        step, loss = np.asarray(history, dtype=np.float64).T        # (K,), (K,)
        ax.plot(step, loss, color="tab:blue", linewidth=1.5, label="running loss (log lines)")
        values.extend(loss)
    epoch_losses = list(epoch_losses or [])
    total = steps or (int(history[-1][0]) if history else None)
    if epoch_losses and total:
        ends = [total * (i + 1) / len(epoch_losses) for i in range(len(epoch_losses))]
        ax.plot(ends, epoch_losses, "o--", color="tab:orange", label="mean loss of each epoch")
        values.extend(epoch_losses)
    if not values:
        ax.text(0.5, 0.5, "no loss logged\n(too few mini-batches, e.g. a --dry-run)",
                ha="center", va="center", transform=ax.transAxes, fontsize=12, color="gray")
    else:
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > 10:
            ax.set_yscale("log")
        ax.legend()
    ax.set_title(title)
    ax.set_xlabel("mini-batch step")
    ax.set_ylabel("cross-entropy loss")
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path)


def confusion_matrix(
    confusion: np.ndarray,
    path: PathLike,
    *,
    title: str = "Confusion matrix (test set)",
) -> Path:
    """Plot a confusion matrix with the count written in every cell.

    confusion: (C, C) integer counts, rows = true class, columns = predicted class (C = 10).
    path: the PNG to write. Returns the path written.
    Colours are on a log scale so that the few mistakes show beside the large diagonal.
    """
    confusion = np.asarray(confusion, dtype=np.int64)                # (C, C)
    n = confusion.shape[0]
    fig = Figure(figsize=(7.5, 6.5), layout="constrained")
    ax = fig.add_subplot()
    shown = np.ma.masked_equal(confusion, 0)                         # zeros left white
    vmax = max(int(confusion.max()), 2)
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=vmax))
    fig.colorbar(image, ax=ax, label="count (log scale)")
    threshold = math.sqrt(vmax)  # geometric middle of the colour scale
    for t in range(n):
        for p in range(n):
            count = int(confusion[t, p])
            if count:
                ax.text(p, t, str(count), ha="center", va="center", fontsize=8,
                        color="white" if count > threshold else "black")
    total, correct = int(confusion.sum()), int(np.trace(confusion))
    accuracy = f", accuracy {100 * correct / total:.2f}%" if total else ""
    ax.set_title(f"{title}\n{correct}/{total} correct{accuracy}")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticks(np.arange(-0.5, n), minor=True)
    ax.set_yticks(np.arange(-0.5, n), minor=True)
    ax.grid(which="minor", color="lightgray", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    return _save(fig, path)


def misclassified_grid(
    images: np.ndarray,
    true: np.ndarray,
    predicted: np.ndarray,
    path: PathLike,
    *,
    max_images: int = 36,
    title: str = "Misclassified test digits",
) -> Path:
    """Show digits the model got wrong, each titled "pred 3 / true 5".

    images: (N, 28, 28) uint8 (0 = black background), the misclassified digits
        (or any digits: only those with true != predicted are drawn).
    true, predicted: (N,) integer labels.
    path: the PNG to write. max_images: at most this many digits, the first ones, on a square grid.
    Returns the path written.
    """
    images = np.asarray(images)
    true, predicted = np.asarray(true).reshape(-1), np.asarray(predicted).reshape(-1)
    wrong = np.flatnonzero(true != predicted)
    shown = wrong[:max_images]
    cols = max(1, math.ceil(math.sqrt(len(shown))))
    rows = max(1, math.ceil(len(shown) / cols))
    fig = Figure(figsize=(max(4.0, 1.5 * cols + 0.5), max(2.5, 1.6 * rows + 0.8)), layout="constrained")
    header = f"{title}: first {len(shown)} of {len(wrong)}" if len(wrong) > len(shown) else f"{title}: {len(wrong)}"
    fig.suptitle(header)
    if len(shown) == 0:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "none: every digit was classified correctly", ha="center", va="center")
        ax.set_axis_off()
        return _save(fig, path)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i in zip(axes.flat, shown):
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"pred {int(predicted[i])} / true {int(true[i])}", fontsize=9)
    return _save(fig, path)
