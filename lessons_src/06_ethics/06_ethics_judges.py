"""Hidden judges of lesson 6 (06_ethics): the student's functions on other inputs, against references.

- per_class_accuracy: ``mnist_cnn.evaluate.evaluate``'s ``per_class`` (accuracy on the samples of
  each true class, NaN for a class with no samples), fed the same predictions through a model that
  replays them;
- shift and thicken: ``mnist_cnn`` has no image transformations, so the references are here,
  written with PyTorch (F.pad / F.max_pool2d), independently of the public judges' NumPy versions.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.checks import lesson_checks
from coursekit.checks import Found, fail, hidden_judge, where_differs
from coursekit import config
from mnist_cnn.evaluate import evaluate

lesson_checks("06_ethics")  # registers the checks these judges attach to


class _Replay(nn.Module):
    """A "model" whose logits for sample i (its index is stored in pixel (0, 0)) pick predictions[i]."""

    def __init__(self, predictions: np.ndarray, num_classes: int):
        super().__init__()
        self.predictions = torch.as_tensor(predictions, dtype=torch.int64)
        self.num_classes = num_classes

    def forward(self, x):
        index = x[:, 0, 0, 0].round().long()
        return F.one_hot(self.predictions[index], self.num_classes).float()


def reference_per_class(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(C,) float64 per-class accuracy, as mnist_cnn.evaluate computes it."""
    n = len(y_true)
    num_classes = config.load().model.num_classes
    x = torch.zeros(n, 1, 28, 28)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32)
    return evaluate(_Replay(y_pred, num_classes), x, torch.as_tensor(y_true, dtype=torch.int64)).per_class


@hidden_judge("ethics_per_class_hidden")
def per_class_matches_reference(inputs, found):
    ref = reference_per_class(inputs["y_true"], inputs["y_pred"])
    out = Found(found, "out", "per_class_accuracy(y_true, y_pred)").need_shape(ref.shape).need_dtype("float64")
    v = np.asarray(out.value, dtype=np.float64)
    if not np.allclose(v, ref, atol=1e-9, rtol=0, equal_nan=True):
        fail(f"per_class_accuracy on other labels does not match the course's evaluation: "
             f"{where_differs(np.nan_to_num(v, nan=-1), np.nan_to_num(ref, nan=-1), atol=1e-9)} (NaN shown as -1).")


def reference_shift(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Pad with black on the side the digit moves away from, crop on the side it moves towards."""
    h, w = images.shape[1:]
    x = torch.from_numpy(images.astype(np.int64))
    padded = F.pad(x, (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)))   # (left, right, top, bottom)
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[:, top:top + h, left:left + w].numpy().astype(images.dtype)


@hidden_judge("ethics_shift_hidden")
def shift_matches_reference(inputs, found):
    images = inputs["images"]
    for i, (dx, dy) in enumerate(inputs["shifts"]):
        ref = reference_shift(images, int(dx), int(dy))
        what = f"shift(images, dx={int(dx)}, dy={int(dy)})"
        out = Found(found, f"out{i}", what).need_shape(ref.shape).need_dtype(str(ref.dtype))
        if not np.array_equal(out.value, ref):
            fail(f"{what} on other images does not match the reference: {where_differs(out.value, ref)}.")


def reference_thicken(images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images.astype(np.float32))[:, None]
    return F.max_pool2d(x, 3, 1, 1)[:, 0].numpy().astype(images.dtype)


@hidden_judge("ethics_thicken_hidden")
def thicken_matches_reference(inputs, found):
    ref = reference_thicken(inputs["images"])
    out = Found(found, "out", "thicken(images)").need_shape(ref.shape).need_dtype(str(ref.dtype))
    if not np.array_equal(out.value, ref):
        fail(f"thicken(images) on other images does not match the reference: {where_differs(out.value, ref)}.")
