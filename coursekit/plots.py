"""Pictures for the lessons: digits, label counts, pixel values, kernels, feature maps, curves.

Every function draws one matplotlib figure with pyplot and shows it (in Jupyter it
appears under the cell); it returns nothing. Arrays may be NumPy arrays or torch
tensors (tensors are detached and moved to the CPU first). Nothing here computes an
answer to an exercise: these only draw what they are given.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np


def _np(x) -> np.ndarray:
    """A NumPy copy of ``x`` (a tensor is detached and moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_images(images) -> np.ndarray:
    """(N, 28, 28) from (N, 28, 28), (N, 1, 28, 28) or one (28, 28) / (1, 28, 28) image."""
    a = _np(images)
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    elif a.ndim == 3 and a.shape[0] == 1 and a.shape[1:] != (28, 28):
        a = a[0][None]
    if a.ndim != 3:
        raise ValueError(f"expected images of shape (N, 28, 28) or (N, 1, 28, 28), got {a.shape}")
    return a


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


def show_kernels(weight, *, title: str = "Convolution kernels", max_kernels: int = 32) -> None:
    """Draw convolution kernels.

    weight: (C_out, C_in, k, k), e.g. ``conv.weight``; each output channel's kernel for
        the first input channel is drawn (blue negative, red positive, 0 white).
    """
    w = _np(weight)
    if w.ndim != 4:
        raise ValueError(f"expected a weight of shape (C_out, C_in, k, k), got {w.shape}")
    w = w[:max_kernels, 0]                                # (K, k, k)
    lim = float(np.abs(w).max()) or 1.0
    ncols = min(8, len(w))
    nrows = math.ceil(len(w) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.4 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(w):
            ax.imshow(w[i], cmap="bwr", vmin=-lim, vmax=lim)
            ax.set_title(f"kernel {i}", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def show_feature_maps(maps, *, title: str = "Feature maps", max_maps: int = 32) -> None:
    """Draw the channels of one image's feature maps: (C, H, W) or (1, C, H, W)."""
    m = _np(maps)
    if m.ndim == 4 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 3:
        raise ValueError(f"expected feature maps of shape (C, H, W), got {m.shape}")
    m = m[:max_maps]
    ncols = min(8, len(m))
    nrows = math.ceil(len(m) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.4 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(m):
            ax.imshow(m[i], cmap="viridis")
            ax.set_title(f"channel {i}", fontsize=8)
    fig.suptitle(f"{title}  ({m.shape[1]}×{m.shape[2]} each)")
    fig.tight_layout()
    plt.show()


def show_loss_curve(losses, *, every: int = 1, title: str = "Training loss") -> None:
    """Plot a loss curve: ``losses`` (K,) values, one every ``every`` mini-batches."""
    v = _np(losses).astype(np.float64).ravel()
    steps = np.arange(1, len(v) + 1) * every
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(steps, v, marker="o" if len(v) < 30 else None)
    ax.set_xlabel("mini-batch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.show()


def show_confusion(confusion, *, title: str = "Confusion matrix (rows: true digit, columns: prediction)") -> None:
    """Draw a (C, C) confusion matrix of counts, with the count in each cell."""
    c = _np(confusion).astype(np.int64)
    fig, ax = plt.subplots(figsize=(6, 5.2))
    ax.imshow(np.log1p(c), cmap="Blues")
    for t in range(c.shape[0]):
        for p in range(c.shape[1]):
            if c[t, p]:
                ax.text(p, t, str(c[t, p]), ha="center", va="center", fontsize=7,
                        color="white" if t == p else "black")
    ax.set_xticks(range(c.shape[1]))
    ax.set_yticks(range(c.shape[0]))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    plt.show()


def show_stack(images, *, count: int = 4, title: str = "") -> None:
    """Draw the first ``count`` images as a stack of cards, labelled with the array's axes.

    images: (N, 28, 28) or (N, 1, 28, 28); the picture shows what each axis counts.
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
    ax.text(last + 33, 24 - last, f"axis 0: image\n(N = {a.shape[0]})", color="tab:blue", fontsize=9, va="top")
    ax.text(0, 30, "axis -1: column (28)", fontsize=9)
    ax.text(-4, 2, "axis -2: row (28)", rotation=90, fontsize=9)
    if a.ndim == 4:
        ax.text(0, 36, f"axis 1: channel (C = {a.shape[1]}, grayscale)", fontsize=9, color="tab:orange")
    shape = "(" + ", ".join(str(s) for s in a.shape) + ")"
    ax.set_title(title or f"an array of shape {shape}")
    ax.set_xlim(-8, last + 75)
    ax.set_ylim(-last - 6, 42)
    ax.axis("off")
    fig.tight_layout()
    plt.show()
