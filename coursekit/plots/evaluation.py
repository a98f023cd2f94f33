"""Evaluation: confusion matrices, probabilities, accuracy bars and grids, any bar chart."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ._arrays import _as_images, _np


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


def show_probabilities(images, probabilities, labels=None, *, max_images: int = 5,
                       title: str = "What the network believes: the probability of each digit") -> None:
    """Each digit above a bar chart of the probabilities a network gives it.

    images: (N, 28, 28) or (N, 1, 28, 28)
    probabilities: (N, 10), each row sums to 1 (e.g. a softmax of the logits)
    labels: optional (N,) true digits: that bar is outlined in black
    The highest bar, the prediction, is orange.
    """
    imgs = _as_images(images)[:max_images]
    probs = _np(probabilities).astype(np.float64)[:max_images]
    labels = None if labels is None else _np(labels)
    n = len(imgs)
    fig, axes = plt.subplots(2, n, figsize=(2.1 * n, 3.9), squeeze=False, gridspec_kw={"height_ratios": [1, 1.1]})
    for i in range(n):
        axes[0, i].imshow(imgs[i], cmap="gray")
        axes[0, i].axis("off")
        if labels is not None:
            axes[0, i].set_title(f"label {int(labels[i])}", fontsize=9)
        ax = axes[1, i]
        colours = ["tab:orange" if d == int(np.argmax(probs[i])) else "tab:blue" for d in range(probs.shape[1])]
        bars = ax.bar(range(probs.shape[1]), probs[i], color=colours)
        if labels is not None:
            bars[int(labels[i])].set_edgecolor("k")
            bars[int(labels[i])].set_linewidth(1.5)
        ax.set_ylim(0, 1)
        ax.set_xticks(range(probs.shape[1]))
        ax.tick_params(labelsize=7)
        ax.set_xlabel(f"guess {int(np.argmax(probs[i]))} ({probs[i].max():.0%})", fontsize=8)
        if i == 0:
            ax.set_ylabel("probability", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.show()


def show_bars(*series, labels=None, names: Sequence[str] = (), title: str = "", xlabel: str = "",
              ylabel: str = "", highlight_max: bool = True, ylims: Sequence = ()) -> None:
    """Bar charts side by side, one per series (each a 1-D array of the same length as ``labels``).

    labels: the bars' names (default 0, 1, 2, ...); names: a caption per series.
    ylims: a (bottom, top) per series, or None for its own scale: give series of the same kind
        (probabilities) the same axis, so that a flat one looks flat.
    The largest bar of each series is drawn in orange when ``highlight_max``.
    """
    arrays = [_np(s).astype(np.float64).ravel() for s in series]
    fig, axes = plt.subplots(1, len(arrays), figsize=(max(4.2, 0.45 * len(arrays[0])) * len(arrays), 3.2),
                             squeeze=False)
    for i, (a, ax) in enumerate(zip(arrays, axes.flat)):
        ticks = [str(t) for t in (labels if labels is not None else range(len(a)))]
        colors = ["tab:blue"] * len(a)
        if highlight_max and len(a):
            colors[int(np.argmax(a))] = "tab:orange"
        bars = ax.bar(range(len(a)), a, color=colors)
        if len(a) <= 12:
            ax.bar_label(bars, labels=[f"{x:,.0f}" if abs(x) >= 100 and x == int(x) else f"{x:.3g}" for x in a],
                         fontsize=7)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(range(len(a)))
        ax.set_xticklabels(ticks, fontsize=8)
        ax.set_title(names[i] if i < len(names) else "", fontsize=9)
        ax.set_xlabel(xlabel)
        if i == 0:
            ax.set_ylabel(ylabel)
        ax.margins(y=0.15)
        if i < len(ylims) and ylims[i] is not None:
            ax.set_ylim(*ylims[i])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def show_accuracy_bars(accuracies, names=None, *, reference=None, reference_label: str = "overall",
                       title: str = "Accuracy", xlabel: str = "", errors: bool = False) -> None:
    """Bar chart of accuracies (fractions in [0, 1]), each bar labelled in percent.

    accuracies: (K,) floats in [0, 1]; NaN means "no data" and is drawn as an empty slot saying so
    names: K captions (default 0, 1, ..., K-1: the digits)
    reference: optional accuracy drawn as a dashed line across the chart (e.g. the overall accuracy),
        named ``reference_label`` in the legend
    errors: draw the error rates, 1 − accuracy, on an axis from 0 to just above the largest, so
        that a digit misread 4 times as often has a bar 4 times as high (on a 0-100% accuracy axis
        all bars of a good model look alike)
    The bars are coloured from red (0% right) through yellow (50%) to green (100%), as in
    ``show_accuracy_grid``; with ``errors``, from green (no errors) to red (the most errors shown).
    """
    a = _np(accuracies).astype(np.float64).ravel()
    ticks = [str(t) for t in (names if names is not None else range(len(a)))]
    long_ticks = max(map(len, ticks), default=0) > 8
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(a) + 1.5), 3.6))
    cmap = plt.get_cmap("RdYlGn")
    values = 1 - a if errors else a
    heights = np.nan_to_num(values, nan=0.0)
    top = float(np.nanmax(values)) if errors and np.isfinite(values).any() else 1.0
    if errors and reference is not None:
        top = max(top, 1 - float(reference))
    top = top or 1.0
    colours = [cmap(float(np.clip(1 - v / top if errors else v, 0, 1))) for v in heights]
    bars = ax.bar(range(len(a)), heights, color=colours, edgecolor="black", linewidth=0.4)
    ax.bar_label(bars, labels=["no data" if np.isnan(v) else f"{100 * v:.1f}%" for v in values], fontsize=8)
    if reference is not None:
        line = 1 - float(reference) if errors else float(reference)
        ax.axhline(line, color="black", ls="--", lw=1, label=f"{reference_label}: {100 * line:.1f}%")
        ax.legend(loc="upper right" if errors else "lower right", fontsize=8, framealpha=0.9)
    ax.set_xticks(range(len(a)))
    ax.set_xticklabels(ticks, fontsize=8, rotation=20 if long_ticks else 0, ha="right" if long_ticks else "center")
    if errors:
        ax.set_ylim(0, 1.2 * top)
        yticks = [t for t in ax.get_yticks() if 0 <= t <= 1.2 * top]
    else:
        ax.set_ylim(0, 1.1)
        yticks = np.linspace(0, 1, 6)
    ax.set_yticks(yticks)
    ax.set_yticklabels([f"{100 * t:.{0 if not errors or top > 0.05 else 1}f}%" for t in yticks])
    ax.set_ylabel("error rate (misread)" if errors else "accuracy")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    plt.show()


def show_accuracy_grid(table, row_names, col_names=None, *, title: str = "Accuracy",
                       xlabel: str = "true digit") -> None:
    """Heatmap of a (R, C) table of accuracies in [0, 1]: one row per condition (e.g. a way of
    changing the digits), one column per class; each cell shows its percentage, red (low) to
    green (high). NaN cells (no data) are left grey."""
    t = _np(table).astype(np.float64)
    if t.ndim != 2:
        raise ValueError(f"expected a (rows, columns) table, got shape {t.shape}")
    cols = [str(c) for c in (col_names if col_names is not None else range(t.shape[1]))]
    fig, ax = plt.subplots(figsize=(0.62 * t.shape[1] + 2.8, 0.42 * t.shape[0] + 1.3))
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="lightgrey")
    ax.imshow(np.ma.masked_invalid(t), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for r in range(t.shape[0]):
        for c in range(t.shape[1]):
            if not np.isnan(t[r, c]):
                ax.text(c, r, f"{100 * t[r, c]:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if t[r, c] < 0.25 else "black")
    ax.set_xticks(range(t.shape[1]))
    ax.set_xticklabels(cols)
    ax.set_yticks(range(t.shape[0]))
    ax.set_yticklabels([str(n) for n in row_names])
    ax.set_xlabel(xlabel)
    ax.set_title(title + "  (%)", fontsize=10)
    fig.tight_layout()
    plt.show()
