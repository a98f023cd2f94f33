"""Hidden judges of lesson 4 (04_training): the student's training loop against mnist_cnn's.

The reference is the course recipe in course.yml (``recipes.course``: SGD, lr, momentum,
log_every) and mnist_cnn's training step: ``nn.CrossEntropyLoss`` on ``Net``'s logits,
``torch.optim.SGD``, zero_grad / forward / loss / backward / step.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from coursekit.checks import lesson_checks

public = lesson_checks("04_training")  # registers the checks these judges attach to
from coursekit.checks import fail, hidden_judge
from coursekit import config
from mnist_cnn.model import Net


def _recipe():
    return config.load().recipe("course")


@hidden_judge("train_optimizer_hidden", part="make_optimizer")
def optimizer_matches_the_recipe(inputs, found):
    recipe = _recipe()
    for key, want in (("lr", recipe.lr), ("momentum", recipe.momentum), ("weight_decay", recipe.weight_decay)):
        got = np.atleast_1d(found[f"opt.{key}"])
        if not np.allclose(got, want, rtol=1e-9, atol=0):
            fail(f"make_optimizer(net) has {key} {', '.join(f'{v:g}' for v in np.unique(got))}; the course recipe "
                 f"has {key} {want:g}.")
    if np.any(np.atleast_1d(found["opt.nesterov"]) != 0):
        fail("make_optimizer(net) uses Nesterov momentum; the course recipe does not.")


def reference_steps(inputs, found) -> list:
    """mnist_cnn's Net from the student's initial weights, trained on the same 3 batches with torch's
    SGD and CrossEntropyLoss: per step the loss, the gradients and the weights (NumPy)."""
    net = Net()
    state = {name: torch.from_numpy(np.asarray(found[f"p0.{name}"])) for name, _ in net.named_parameters()}
    net.load_state_dict(state, strict=True)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=float(inputs["lr"]), momentum=float(inputs["momentum"]))
    criterion = nn.CrossEntropyLoss()
    out = []
    for k in range(public.STEPS):
        x, y = torch.from_numpy(inputs[f"x{k}"]), torch.from_numpy(inputs[f"y{k}"])
        optimizer.zero_grad()
        loss = criterion(net(x), y)
        loss.backward()
        grads = {n: p.grad.detach().clone().numpy() for n, p in net.named_parameters()}
        optimizer.step()
        out.append({"loss": float(loss.item()), "grads": grads,
                    "params": {n: p.detach().clone().numpy() for n, p in net.named_parameters()}})
    return out


@hidden_judge("train_step_hidden")
def train_step_matches_reference(inputs, found):
    if inputs["model"] != "net":
        return
    ref = reference_steps(inputs, found)

    def params_tol(n, want):       # a thousandth of how far the reference moved the weight
        return 1e-3 * float(np.abs(want - np.asarray(found[f"p0.{n}"])).max()) + 1e-7, 0.0

    def check_losses():
        for k in range(public.STEPS):
            got, want = float(found[f"ret{k}.value"]), ref[k]["loss"]
            if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-5):
                fail(f"on the course's Net, train_step returned {got:.5f} for mini-batch {k + 1}; its loss is "
                     f"{want:.5f}.", "return the loss of this mini-batch, computed before the step.")

    public.judge_steps(found, ref, list(ref[0]["params"]), params_tol=params_tol,
                       grads_tol=lambda want: (1e-4 * (float(np.abs(want).max()) + 1e-12), 0.0),
                       check_losses=check_losses)


@hidden_judge("train_epoch_hidden")
def train_epoch_logs_like_the_recipe(inputs, found):
    every = _recipe().log_every
    n = int(found["batches"])
    got = len(np.atleast_1d(found["out.values"]))
    if got != n // every:
        fail(f"train_epoch with its default log_every logged {got} times on {n} mini-batches; the course recipe "
             f"logs every {every} mini-batches, so {n // every} times.")
