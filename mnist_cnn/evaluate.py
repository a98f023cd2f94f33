"""Evaluate a trained model: accuracy, mean loss, per-class accuracy, confusion matrix."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Evaluation:
    """What ``evaluate`` returns.

    accuracy: fraction of samples predicted correctly, in [0, 1]
    loss: mean cross-entropy per SAMPLE (not a mean of batch means)
    per_class: (C,) float64, accuracy on the samples of each true class
               (NaN for a class with no samples); C = 10 for MNIST
    confusion: (C, C) int64, confusion[t, p] = number of samples of true class t predicted as p
    predictions: (N,) int64, the predicted class (argmax of the logits) of each sample
    """
    accuracy: float
    loss: float
    per_class: np.ndarray
    confusion: np.ndarray
    predictions: np.ndarray


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 1000,
    device: Union[str, torch.device] = "cpu",
) -> Evaluation:
    """Score ``model`` on (x, y) without training it.

    model: returns (B, C) logits for (B, 1, 28, 28) inputs; moved to ``device``.
        Run in eval mode under ``torch.no_grad()``; its previous train/eval mode is restored.
    x: (N, 1, 28, 28) float32, scaled as in training (``to_tensors``)
    y: (N,) int64 true labels 0..C-1
    batch_size: samples per forward pass (memory only: no effect on the result);
        N need not be a multiple of it
    device: where to run the forward passes
    returns: Evaluation(accuracy, loss, per_class, confusion, predictions)
    """
    n = x.shape[0]
    if n == 0:
        raise ValueError("cannot evaluate on an empty set (x has 0 samples)")
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},), not {tuple(y.shape)}")
    device = torch.device(device)
    was_training = model.training
    model.to(device)
    model.eval()
    predictions = []
    loss_sum = 0.0
    num_classes = None
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                xb = x[start:start + batch_size].to(device)             # (B, 1, 28, 28) float32
                yb = y[start:start + batch_size].to(device)             # (B,) int64
                logits = model(xb)                                      # (B, C) float32
                num_classes = logits.shape[1]
                loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()  # summed over the B samples
                predictions.append(logits.argmax(dim=1).cpu())          # (B,) int64
    finally:
        model.train(was_training)

    pred = torch.cat(predictions).numpy().astype(np.int64)              # (N,)
    true = y.cpu().numpy().astype(np.int64)                             # (N,)
    if true.min() < 0 or true.max() >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}, found {true.min()}..{true.max()}")
    confusion = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    confusion = confusion.reshape(num_classes, num_classes).astype(np.int64)  # (C, C) rows: true
    per_class_total = confusion.sum(axis=1)                             # (C,) samples of each class
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / per_class_total                # (C,) float64, NaN if no samples
    return Evaluation(
        accuracy=float((pred == true).mean()),
        loss=loss_sum / n,
        per_class=per_class.astype(np.float64),
        confusion=confusion,
        predictions=pred,
    )
