"""The whole network's data flow: one digit, and what it becomes after every layer of the
student's own network (shapes written under each picture)."""
from __future__ import annotations

import math
from typing import List, Tuple

import matplotlib.pyplot as plt
import numpy as np


def trace_layers(net, image) -> List[Tuple[str, np.ndarray]]:
    """What ``net`` makes of one image, stage by stage, as its ``forward`` really computes it.

    net: an ``nn.Module``; each of its layers (leaf modules with parameters) is watched.
    image: (1, 28, 28) or (1, 1, 28, 28) float32, one digit as the network takes it.
    Returns [(stage, array)] in order: "input", then for each layer call its output ("conv1"),
    preceded by the layer's input where it differs in shape from what came before (the steps
    between layers: "ReLU + max-pool", "flatten"; a step that keeps the shape is named with the
    layer: "ReLU → fc2"), and last "output" if it is not the last layer's.
    Arrays are one image's: (C, H, W) or (F,).
    """
    import torch

    x = torch.as_tensor(np.asarray(image, dtype=np.float32)).reshape(1, 1, *np.shape(image)[-2:])
    seen: List[Tuple[str, str, np.ndarray]] = []       # (layer, "in" | "out", array)
    names = {m: n for n, m in net.named_modules() if n and not list(m.children()) and list(m.parameters())}
    handles = []
    for module, name in names.items():
        handles.append(module.register_forward_pre_hook(
            lambda m, args, name=name: seen.append((name, "in", args[0].detach()[0].numpy().copy()))))
        handles.append(module.register_forward_hook(
            lambda m, args, out, name=name: seen.append((name, "out", out.detach()[0].numpy().copy()))))
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        for h in handles:
            h.remove()
    stages = [("input", x[0].numpy())]
    step = ""                                          # a step between layers that kept the shape
    for name, where, a in seen:
        before = stages[-1][1]
        if where == "in":
            step = ""
            if a.shape != before.shape:
                stages.append((_between(before, a), a))
            elif not np.allclose(a, before, atol=1e-5):
                step = _between(before, a)
        else:
            stages.append((f"{step} → {name}" if step else name, a))
    final = out.detach()[0].numpy()
    if final.shape != stages[-1][1].shape or not np.allclose(final, stages[-1][1]):
        stages.append(("output", final))
    return stages


def _pool(a: np.ndarray, reduce) -> np.ndarray:
    c, h, w = a.shape
    return reduce(a[:, :h // 2 * 2, :w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2), axis=(2, 4))


def _between(before: np.ndarray, after: np.ndarray) -> str:
    """What the forward did between two layers, found by trying the usual steps on ``before``:
    ReLU, 2 × 2 max- or average pooling, flattening. before: (C, H, W) or (F,)."""
    candidates = {"flatten": lambda a: a}
    if before.ndim == 3:
        relu = np.maximum(before, 0)
        candidates = {"ReLU + max-pool": _pool(relu, np.max), "max-pool": _pool(before, np.max),
                      "ReLU + average pool": _pool(relu, np.mean), "average pool": _pool(before, np.mean),
                      "ReLU": relu, "": before}
    else:
        candidates = {"ReLU": np.maximum(before, 0), "": before}
    for name, value in candidates.items():
        if value.size == after.size and np.allclose(value.reshape(after.shape), after, atol=1e-5):
            return " + ".join(s for s in (name, "flatten" if after.ndim == 1 and before.ndim == 3 else "") if s)
    return "reshape"


def _shape(a: np.ndarray) -> str:
    return " × ".join(str(s) for s in a.shape)


def _montage(a: np.ndarray, max_maps: int = 16) -> np.ndarray:
    """(C, H, W) -> one image of up to ``max_maps`` channels in a near-square grid (NaN gaps)."""
    a = a[:max_maps]
    c, h, w = a.shape
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan, dtype=np.float32)
    for i in range(c):
        r, k = divmod(i, cols)
        m = a[i]
        span = float(m.max() - m.min()) or 1.0
        out[r * (h + 1):r * (h + 1) + h, k * (w + 1):k * (w + 1) + w] = (m - m.min()) / span
    return out


def show_data_flow(net, image, *, title: str = "One digit through your network: the shape after every layer") -> None:
    """Draw what ``net`` makes of one digit after every layer, left to right, with each shape.

    net: the student's network (an ``nn.Module``: lesson 2's ConvFeatures, lesson 3's Net).
    image: (1, 28, 28) or (1, 1, 28, 28) float32, one digit as the network takes it.
    Feature maps (C, H, W) are drawn as a grid of their channels (up to 16; each scaled to its
    own range), vectors (F,) as a column of F cells (blue negative, red positive). Prints one
    line instead of a figure if the network cannot take the image.
    """
    try:
        stages = trace_layers(net, image)
    except Exception as err:  # a broken forward: say so in one line, the check above says why
        print(f"show_data_flow: your network could not take one image of shape (1, 1, 28, 28): "
              f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        return
    fig, axes = plt.subplots(1, len(stages), figsize=(1.55 * len(stages) + 0.5, 3.6),
                             gridspec_kw={"width_ratios": [2.2 if a.ndim == 3 else 0.9 for _, a in stages]})
    for ax, (name, a) in zip(np.atleast_1d(axes), stages):
        ax.set_xticks([])
        ax.set_yticks([])
        if a.ndim == 3:
            ax.imshow(_montage(a), cmap="gray" if name == "input" else "viridis", vmin=0, vmax=1)
            shown = "" if a.shape[0] <= 16 else f"\n(16 of {a.shape[0]} maps)"
        else:
            v = a.reshape(-1, 1)
            lim = float(np.abs(v).max()) or 1.0
            ax.imshow(v, cmap="bwr", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
            shown = ""
            if len(v) == 10:                              # the ten scores: one per digit
                ax.set_yticks(range(10))
                ax.tick_params(labelsize=8, length=0)
            name = name.replace(" + ", " +\n").replace(" → ", " →\n")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(_shape(a) + shown, fontsize=10)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    plt.show()
