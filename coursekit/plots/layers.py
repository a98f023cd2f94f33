"""What a convolution layer does: kernels, feature maps, one kernel on an image, flattening."""
from __future__ import annotations

import math
import matplotlib.pyplot as plt
import numpy as np

from ._arrays import _np


def show_kernels(weight, *, title: str = "Convolution kernels", max_kernels: int = 32,
                 own_scale: bool = False) -> None:
    """Draw convolution kernels.

    weight: (C_out, C_in, k, k), e.g. ``conv.weight``; each output channel's kernel for
        the first input channel is drawn (blue negative, red positive, 0 white).
    own_scale: scale each kernel to its own largest weight (its pattern shows even when
        another kernel's weights are much larger); by default all share one scale.
    """
    w = _np(weight)
    if w.ndim != 4:
        raise ValueError(f"expected a weight of shape (C_out, C_in, k, k), got {w.shape}")
    w = w[:max_kernels, 0]                                # (K, k, k)
    if own_scale:
        w = w / np.maximum(np.abs(w).max(axis=(1, 2), keepdims=True), 1e-12)
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

    width = min(0.7 * c + 1.5, 11)                      # wide enough, not so wide that a notebook shrinks the text
    fig = plt.figure(figsize=(width, 0.9 * width / c + 2.4))
    grid = fig.add_gridspec(2, c, height_ratios=[1, 0.6], hspace=0.7, left=0.03, right=0.9, bottom=0.22, top=0.8)
    tops = []
    for i in range(c):
        ax = fig.add_subplot(grid[0, i])
        image = ax.imshow(m[i], cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(f"ch {i}", fontsize=9)
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
    ticks = [i * h * w for i in range(0, c, 2 if c > 8 else 1)] + [len(v) - 1]
    ax.set_xticks(ticks)
    ax.tick_params(labelsize=9)
    ax.set_xlabel(f"position in the flattened vector ({len(v)} numbers): channel 0's {h * w} values row by row, "
                  f"then channel 1's, ...", fontsize=10)
    bar = fig.colorbar(image, cax=fig.add_axes((0.925, 0.22, 0.015, 0.58)))   # one scale: maps and vector
    bar.ax.tick_params(labelsize=9)
    bar.set_label("value", fontsize=10)
    fig.suptitle(title, fontsize=12)
    plt.show()
