"""Lesson 5 (05_evaluation): the public checks of predict, evaluate, confusion_matrix, and the
collector of the trained network's weights (the 97% check).

predict and evaluate run on a *table network*: it answers each input image with a fixed row
of logits chosen by the check (the image's pixel (0, 0) says which row), and records, for
every forward pass, whether gradients were being tracked and whether it was in training
mode. So the judges know the right answers exactly, and can say when the network was run
with a graph or in training mode. The hidden checks (``*_hidden``) run the same collectors
on the course's ``Net``; their judges, in ``lessons_src/05_evaluation/05_evaluation_judges.py``, compare with
``mnist_cnn.evaluate``. The 97% check (``eval_accuracy``) collects the trained weights as
plain arrays; its hidden judge scores them with the reference evaluation on the test set.

One file per exercise: ``predict`` (a), ``evaluate`` (b), ``confusion`` (c), ``accuracy`` (the trained
network); ``common`` holds the table network and the accuracy bar. Importing this package registers them all.
"""
from __future__ import annotations

from . import accuracy, confusion, evaluate, predict
from .common import NET_SHAPES, NUM_CLASSES, accuracy_bar, table_net

__all__ = ["accuracy", "confusion", "evaluate", "predict", "NET_SHAPES", "NUM_CLASSES", "accuracy_bar", "table_net"]   # importing the exercises registers their checks
