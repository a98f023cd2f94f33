"""The digits themselves: grids, label counts, pixel values, the stacking of images into a batch."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ._arrays import _as_images, _np


def show_digits(images, labels=None, predictions=None, *, ncols: int = 10, max_images: int = 40,
                title: Optional[str] = None) -> None:
    """Draw a grid of digits, each titled with its label (and prediction, red when wrong).

    images: (N, 28, 28) or (N, 1, 28, 28), uint8 0..255 or float (any range; drawn min..max per image)
    labels: optional (N,) integers, the true digits
    predictions: optional (N,) integers, a model's guesses
    Draws the first ``max_images`` images, ``ncols`` per row.
    """
    imgs = _as_images(images)[:max_images]
    n = len(imgs)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.35 * nrows + (0.4 if title else 0)),
                             squeeze=False)
    labels = None if labels is None else _np(labels)
    predictions = None if predictions is None else _np(predictions)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(imgs[i], cmap="gray")
        if labels is not None and predictions is not None:
            wrong = int(labels[i]) != int(predictions[i])
            ax.set_title(f"{int(labels[i])}→{int(predictions[i])}", fontsize=9, color="red" if wrong else "black")
        elif labels is not None:
            ax.set_title(str(int(labels[i])), fontsize=9)
        elif predictions is not None:
            ax.set_title(f"guess {int(predictions[i])}", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def show_label_counts(labels, *, title: str = "How many images of each digit", num_classes: int = 10) -> None:
    """Bar chart of how often each digit 0..num_classes-1 occurs in ``labels`` ((N,) integers)."""
    counts = np.bincount(_np(labels).astype(np.int64).ravel(), minlength=num_classes)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.bar(range(len(counts)), counts, color="tab:blue")
    ax.bar_label(bars, fontsize=8)
    ax.set_xticks(range(len(counts)))
    ax.set_xlabel("digit")
    ax.set_ylabel("number of images")
    ax.set_ylim(0, counts.max() * 1.15 if counts.max() else 1)
    ax.set_title(title)
    fig.tight_layout()
    plt.show()


def show_pixel_histogram(*arrays, names: Sequence[str] = (), bins: int = 64,
                         title: str = "Pixel values") -> None:
    """Histograms of the pixel values of one or more arrays, side by side.

    arrays: any shapes; each drawn as one panel with its own x range
    names: a caption per array (e.g. "before", "after")
    Empty (all-black) pixels dominate MNIST, so the counts are on a log scale.
    """
    fig, axes = plt.subplots(1, len(arrays), figsize=(4.2 * len(arrays), 3), squeeze=False)
    for i, (a, ax) in enumerate(zip(arrays, axes.flat)):
        v = _np(a).ravel()
        ax.hist(v, bins=bins, color="tab:gray", log=True)
        name = names[i] if i < len(names) else ""
        ax.set_title(f"{name}  (dtype {_np(a).dtype}, min {v.min():g}, max {v.max():g})".strip(), fontsize=9)
        ax.set_xlabel("pixel value")
    axes.flat[0].set_ylabel("number of pixels (log)")
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def show_stack(images, *, count: int = 4, title: str = "") -> None:
    """Draw the first ``count`` images as a stack of cards, labelled with the array's axes.

    images: (N, 28, 28) or (N, 1, 28, 28); the picture shows what each axis counts, each axis
        numbered from 0 as ``images.shape`` lists them (row and column are axes 1 and 2, or 2 and 3).
    """
    a = _np(images)
    imgs = _as_images(a)[:count]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    step = 9
    for i in reversed(range(len(imgs))):
        off = i * step
        ax.imshow(imgs[i], cmap="gray", extent=(off, off + 28, -off, -off + 28), zorder=len(imgs) - i)
        ax.add_patch(plt.Rectangle((off, -off), 28, 28, fill=False, color="tab:orange", lw=1.5,
                                   zorder=len(imgs) - i + 0.5))
    last = (len(imgs) - 1) * step
    ax.annotate("", xy=(last + 31, 27 - last), xytext=(31, 27), arrowprops=dict(arrowstyle="->", color="tab:blue"))
    row, col = a.ndim - 2, a.ndim - 1                     # counted from 0, as a.shape lists them
    ax.text(last + 33, 24 - last, f"axis 0: image\n(N = {a.shape[0]})", color="tab:blue", fontsize=9, va="top")
    ax.text(0, 30, f"axis {col}: column ({a.shape[col]})", fontsize=9)
    ax.text(-4, 2, f"axis {row}: row ({a.shape[row]})", rotation=90, fontsize=9)
    if a.ndim == 4:
        ax.text(0, 36, f"axis 1: channel (C = {a.shape[1]}, grayscale)", fontsize=9, color="tab:orange")
    shape = "(" + ", ".join(str(s) for s in a.shape) + ")"
    ax.set_title(title or f"an array of shape {shape}")
    ax.set_xlim(-8, last + 75)
    ax.set_ylim(-last - 6, 42)
    ax.axis("off")
    fig.tight_layout()
    plt.show()


def show_digit_rows(rows, *, labels=None, predictions=None, count: int = 8, title: Optional[str] = None) -> None:
    """One row of digits per entry of ``rows``, its caption on the left: the same digits, changed
    in different ways, one above the other.

    rows: {caption: (N, 28, 28) or (N, 1, 28, 28) images}; the first ``count`` of each are drawn
    labels: optional (N,) true digits
    predictions: optional {caption: (N,) integers}, a model's guesses for that row, written above
        each digit (red where they differ from ``labels``)
    """
    names = list(rows)
    imgs = [_as_images(rows[n])[:count] for n in names]
    ncols = max(len(i) for i in imgs)
    fig, axes = plt.subplots(len(names), ncols, squeeze=False,
                             figsize=(1.05 * ncols + 1.6, 1.15 * len(names) + (0.4 if title else 0)))
    labels = None if labels is None else _np(labels)
    for r, name in enumerate(names):
        guess = None if predictions is None or name not in predictions else _np(predictions[name])
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color("lightgrey")
            if c >= len(imgs[r]):
                ax.axis("off")
                continue
            ax.imshow(imgs[r][c], cmap="gray", vmin=0, vmax=255 if imgs[r].dtype == np.uint8 else None)
            if guess is not None:
                wrong = labels is not None and int(guess[c]) != int(labels[c])
                ax.set_title(f"→ {int(guess[c])}", fontsize=8, color="red" if wrong else "black", pad=2)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.show()
