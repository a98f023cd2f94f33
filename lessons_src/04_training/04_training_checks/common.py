"""Lesson 4's recipe numbers and the NumPy cross-entropy the judges of its exercises share."""
from __future__ import annotations

import numpy as np

LR, MOMENTUM = 0.001, 0.9      # the course recipe (course.yml, recipes.course); the hidden checks read it there
LOG_EVERY = 200                # train_epoch's default: one line every 200 mini-batches
STEPS = 3                      # train_step is called this many times in a row
STEP_NAMES = ["zero_grad", "forward", "loss", "backward", "step"]


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of raw logits (N, C) against labels (N,), in float64."""
    return float(-log_softmax(logits)[np.arange(len(labels)), labels].mean())
