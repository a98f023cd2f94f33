"""What every plotting module shares: arrays from tensors, images in one shape."""
from __future__ import annotations

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
