"""Training: loss curves, the steps of one training step, gradient descent paths."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._arrays import _np


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
