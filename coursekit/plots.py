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


def show_kernel_on_image(image, kernel, output, *, at=(10, 10), title: str = "") -> None:
    """Draw one kernel sliding over one image: the image with the kernel's window at ``at``,
    the kernel with its weights written in, and the output with the matching pixel marked.

    image: (H, W), e.g. one digit (or (1, H, W) / (1, 1, H, W))
    kernel: (kH, kW) weights (blue negative, red positive, 0 white)
    output: (H - kH + 1, W - kW + 1), the image cross-correlated with the kernel
    at: (row, column) of the window's top-left corner, which is the output pixel it makes
    """
    img, k, out = (np.squeeze(_np(a)).astype(np.float64) for a in (image, kernel, output))
    if img.ndim != 2 or k.ndim != 2 or out.ndim != 2:
        raise ValueError(f"expected 2-D image, kernel and output, got {img.shape}, {k.shape}, {out.shape}")
    r, c = at
    kh, kw = k.shape
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9), gridspec_kw={"width_ratios": [1, 0.8, 1]})
    ax = axes[0]
    ax.imshow(img, cmap="gray")
    ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), kw, kh, fill=False, color="tab:orange", lw=2))
    ax.set_title(f"image {img.shape[0]}×{img.shape[1]}, the {kh}×{kw} window at ({r}, {c})", fontsize=9)
    ax = axes[1]
    lim = float(np.abs(k).max()) or 1.0
    ax.imshow(k, cmap="bwr", vmin=-lim, vmax=lim)
    if kh * kw <= 81:
        for i in range(kh):
            for j in range(kw):
                ax.text(j, i, f"{k[i, j]:.2g}", ha="center", va="center", fontsize=8,
                        color="white" if abs(k[i, j]) > 0.6 * lim else "black")
    ax.set_title(f"kernel {kh}×{kw}: multiply the window by it,\nelement by element, and add up", fontsize=9)
    ax = axes[2]
    lim = float(np.abs(out).max()) or 1.0
    im = ax.imshow(out, cmap="bwr", vmin=-lim, vmax=lim)
    ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, color="tab:orange", lw=2))
    ax.set_title(f"output {out.shape[0]}×{out.shape[1]}: pixel ({r}, {c}) = {out[r, c]:.3g}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def show_flatten(maps, vector, *, title: str = "Flattening: (C, H, W) feature maps → one row of C·H·W numbers") -> None:
    """Draw one image's feature maps (C, H, W) above the vector (C·H·W,) they were flattened into;
    the vector is cut into C segments, one per channel, to show the order."""
    m = _np(maps).astype(np.float64)
    v = _np(vector).astype(np.float64).ravel()
    if m.ndim == 4 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 3:
        raise ValueError(f"expected feature maps of shape (C, H, W), got {m.shape}")
    c, h, w = m.shape
    lo, hi = float(min(m.min(), v.min())), float(max(m.max(), v.max()))
    from matplotlib.patches import ConnectionPatch

    width = min(0.8 * c + 1, 14)
    fig = plt.figure(figsize=(width, 0.8 * width / c + 2.0))
    grid = fig.add_gridspec(2, c, height_ratios=[1, 0.6], hspace=0.6, left=0.04, right=0.98, bottom=0.2, top=0.8)
    tops = []
    for i in range(c):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(m[i], cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(f"ch {i}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        tops.append(ax)
    ax = fig.add_subplot(grid[1, :])
    ax.imshow(v[None, :], cmap="viridis", vmin=lo, vmax=hi, aspect="auto",
              extent=(-0.5, len(v) - 0.5, 0, 1))
    for i in range(1, c):
        ax.axvline(i * h * w - 0.5, color="white", lw=1)
    ax.set_yticks([])
    for i, top in enumerate(tops):
        fig.add_artist(ConnectionPatch(xyA=((w - 1) / 2, h - 0.5), coordsA=top.transData,
                                       xyB=(i * h * w + (h * w - 1) / 2, 1), coordsB=ax.transData,
                                       color="tab:gray", lw=0.8))
    ticks = [i * h * w for i in range(c)] + [len(v) - 1]
    ax.set_xticks(ticks)
    ax.tick_params(labelsize=7)
    ax.set_xlabel(f"position in the flattened vector ({len(v)} numbers): channel 0's {h * w} values row by row, "
                  f"then channel 1's, ...", fontsize=8)
    fig.suptitle(title, fontsize=10)
    plt.show()


def show_bars(*series, labels=None, names: Sequence[str] = (), title: str = "", xlabel: str = "",
              ylabel: str = "", highlight_max: bool = True) -> None:
    """Bar charts side by side, one per series (each a 1-D array of the same length as ``labels``).

    labels: the bars' names (default 0, 1, 2, ...); names: a caption per series.
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def show_training_loop(*, title: str = "One training step, done for every mini-batch") -> None:
    """Draw the training loop as a cycle: clear the gradients, forward, loss, backward, step."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    steps = [("1. zero the gradients", "optimizer.zero_grad()\nforget the last batch's p.grad", "tab:gray"),
             ("2. forward", "logits = net(x)\n(B, 10) scores", "tab:blue"),
             ("3. loss", "criterion(logits, y)\none number: how wrong", "tab:purple"),
             ("4. backward", "backward() on the loss\nfills p.grad for every weight p", "tab:red"),
             ("5. step", "optimizer.step()\nevery weight moves against p.grad", "tab:green")]
    fig, ax = plt.subplots(figsize=(8.6, 5.0))
    angles = np.pi / 2 - np.arange(len(steps)) * 2 * np.pi / len(steps)
    centres = np.stack([3.1 * np.cos(angles), 1.9 * np.sin(angles)], axis=1)
    w, h = 2.7, 0.95
    for (name, text, colour), (cx, cy) in zip(steps, centres):
        ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, boxstyle="round,pad=0.08",
                                    facecolor="white", edgecolor=colour, lw=2))
        ax.text(cx, cy + 0.2, name, ha="center", va="center", fontsize=10, weight="bold", color=colour)
        ax.text(cx, cy - 0.17, text, ha="center", va="center", fontsize=7.5, family="monospace")
    for i in range(len(steps)):
        a, b = centres[i], centres[(i + 1) % len(steps)]
        d = (b - a) / np.linalg.norm(b - a)
        margin = np.array([w / 2 + 0.05, h / 2 + 0.05]) * np.abs(d) / np.abs(d).max()
        ax.add_patch(FancyArrowPatch(a + d * margin, b - d * margin, arrowstyle="-|>", mutation_scale=16, lw=1.5,
                                     color="0.35", connectionstyle="arc3,rad=-0.18"))
    ax.text(0, 0.15, "the next mini-batch (x, y)", ha="center", va="center", fontsize=10)
    ax.text(0, -0.3, "x: (B, 1, 28, 28) images, y: (B,) labels", ha="center", va="center", fontsize=8, color="0.3")
    ax.set_xlim(-4.7, 4.7)
    ax.set_ylim(-2.6, 2.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    plt.show()


def show_descent_paths(fn, paths, *, xlim=(-3.0, 3.0), ylim=(-3.0, 3.0), title: str = "Gradient descent paths") -> None:
    """Draw the contour lines of a function of two weights and the paths of optimizers over it.

    fn: fn(w1, w2) -> loss, evaluated on NumPy grids (element-wise)
    paths: {name: (K, 2) array}, the weights (w1, w2) after each of K - 1 steps, starting point first
    The minimum of the drawn area is marked with a star.
    """
    g1, g2 = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    z = fn(g1, g2)
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ax.contour(g1, g2, z, levels=np.quantile(z, np.linspace(0.02, 0.9, 14)), colors="0.75", linewidths=0.8)
    best = np.unravel_index(np.argmin(z), z.shape)
    ax.plot(g1[best], g2[best], "*", color="gold", markersize=16, markeredgecolor="k", label="the minimum")
    for (name, path), colour in zip(paths.items(), ["tab:blue", "tab:red", "tab:green", "tab:purple"]):
        p = _np(path).astype(np.float64)
        ax.plot(p[:, 0], p[:, 1], "o-", color=colour, markersize=3, lw=1.2, label=f"{name} ({len(p) - 1} steps)")
    ax.plot(*_np(next(iter(paths.values())))[0], "ks", markersize=7, label="start")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("weight 1")
    ax.set_ylabel("weight 2")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    plt.show()


def show_loss_curves(curves, *, every: int = 1, title: str = "Training loss", ylim=None) -> None:
    """Plot several loss curves on one axis.

    curves: {name: (K,) values}, one value every ``every`` mini-batches
    ylim: optional (low, high) for the loss axis (a diverging curve would squash the others)
    """
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, values in curves.items():
        v = _np(values).astype(np.float64).ravel()
        ax.plot(np.arange(1, len(v) + 1) * every, v, marker="o" if len(v) < 30 else None, markersize=3, label=name)
    ax.set_xlabel("mini-batch")
    ax.set_ylabel("loss")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
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


def show_accuracy_bars(accuracies, names=None, *, reference=None, reference_label: str = "overall",
                       title: str = "Accuracy", xlabel: str = "") -> None:
    """Bar chart of accuracies (fractions in [0, 1]), each bar labelled in percent.

    accuracies: (K,) floats in [0, 1]; NaN means "no data" and is drawn as an empty slot saying so
    names: K captions (default 0, 1, ..., K-1: the digits)
    reference: optional accuracy drawn as a dashed line across the chart (e.g. the overall accuracy),
        named ``reference_label`` in the legend
    The bars are coloured from red (0%) through yellow (50%) to green (100%), as in ``show_accuracy_grid``.
    """
    a = _np(accuracies).astype(np.float64).ravel()
    ticks = [str(t) for t in (names if names is not None else range(len(a)))]
    long_ticks = max(map(len, ticks), default=0) > 8
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(a) + 1.5), 3.6))
    cmap = plt.get_cmap("RdYlGn")
    heights = np.nan_to_num(a, nan=0.0)
    bars = ax.bar(range(len(a)), heights, color=[cmap(float(np.clip(v, 0, 1))) for v in heights],
                  edgecolor="black", linewidth=0.4)
    ax.bar_label(bars, labels=["no data" if np.isnan(v) else f"{100 * v:.1f}%" for v in a], fontsize=8)
    if reference is not None:
        ax.axhline(float(reference), color="black", ls="--", lw=1,
                   label=f"{reference_label}: {100 * float(reference):.1f}%")
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.set_xticks(range(len(a)))
    ax.set_xticklabels(ticks, fontsize=8, rotation=20 if long_ticks else 0, ha="right" if long_ticks else "center")
    ax.set_ylim(0, 1.1)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_yticklabels([f"{int(round(100 * t))}%" for t in np.linspace(0, 1, 6)])
    ax.set_ylabel("accuracy")
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
