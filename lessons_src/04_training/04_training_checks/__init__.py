"""Lesson 4 (04_training): the public checks of make_criterion / make_optimizer, train_step, train_epoch.

The collectors run the student's functions on small models with *spies*: an SGD optimizer
that records when ``zero_grad`` and ``step`` are called (and what the gradients were at
each step), a CrossEntropyLoss that records what it was given, and hooks that record the
forward pass and the backward pass. The judges compare the weights after a few steps
with SGD-with-momentum computed by hand (NumPy) on a linear model, and use the recorded
order of the calls to say which step of the loop went wrong. The hidden checks
(``*_hidden``) run the same collectors on the course's ``Net``; their judges, in
``lessons_src/04_training/04_training_judges.py``, compare with ``mnist_cnn`` and the course recipe.

One file per exercise: ``optimizer`` (a), ``step`` (b), ``epoch`` (c); ``common`` holds the
recipe's numbers and the NumPy cross-entropy they share. Importing this package registers them all.
"""
from __future__ import annotations

from . import epoch, optimizer, step
from .common import LOG_EVERY, LR, MOMENTUM, STEP_NAMES, STEPS, cross_entropy
from .step import diagnose_step, judge_steps, linear_reference

__all__ = ["epoch", "optimizer", "step", "LOG_EVERY", "LR", "MOMENTUM", "STEP_NAMES", "STEPS", "cross_entropy", "diagnose_step",
           "judge_steps", "linear_reference"]   # importing the exercises registers their checks
