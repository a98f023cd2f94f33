"""Checking training code: a linear model with known weights, spies on the network, the
optimizer and the loss that record the order of a training step's calls (and the gradients
each step used), and recording what a function returned where a Python float is expected.
Shared by lesson 4 (the training loop) and lesson 5 (evaluation).
"""
from __future__ import annotations

import numpy as np

from coursekit.checks import kind


def linear_model(W: np.ndarray, b: np.ndarray):
    """A linear classifier (B, 1, 28, 28) -> (B, 10): flatten, then logits = x W^T + b."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Flatten(), nn.Linear(W.shape[1], W.shape[0]))
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(W))
        model[1].bias.copy_(torch.from_numpy(b))
    return model


class Trace:
    """What the spies saw: the events in order, and notes about the loss inputs and forwards."""

    def __init__(self):
        self.events: list = []
        self.probabilities: list = []     # per criterion call: did its input look like probabilities?
        self.losses: list = []            # per criterion call: the loss value
        self.forward_training: list = []  # per forward: net.training
        self.forward_grad: list = []      # per forward: torch.is_grad_enabled()
        self.step_grads: list = []        # per step: {name: gradient as NumPy (None if missing)}

    def add(self, event: str) -> None:
        self.events.append(event)


def spy_net(net, trace: Trace):
    """Record every forward pass of ``net`` and every call of ``net.zero_grad``."""
    import torch

    def on_forward(module, args, output):
        trace.add("forward")
        trace.forward_training.append(bool(module.training))
        trace.forward_grad.append(bool(torch.is_grad_enabled()))

    net.register_forward_hook(on_forward)
    original = net.zero_grad

    def zero_grad(*args, **kwargs):
        trace.add("zero_grad")
        return original(*args, **kwargs)

    net.zero_grad = zero_grad          # an instance attribute: shadows nn.Module.zero_grad for this net only
    return net


def spy_optimizer(net, trace: Trace, lr: float, momentum: float):
    """A real torch.optim.SGD over ``net``'s parameters that records zero_grad and step calls,
    and the gradients each step was about to use."""
    import torch

    names = {id(p): n for n, p in net.named_parameters()}

    class SpySGD(torch.optim.SGD):
        def zero_grad(self, set_to_none: bool = True):
            trace.add("zero_grad")
            return super().zero_grad(set_to_none=set_to_none)

        def step(self, closure=None):
            trace.add("step")
            grads = {}
            for group in self.param_groups:
                for p in group["params"]:
                    grads[names.get(id(p), "?")] = None if p.grad is None else p.grad.detach().clone().numpy()
            trace.step_grads.append(grads)
            return super().step(closure)

    SpySGD.__name__ = "SGD"
    return SpySGD(net.parameters(), lr=lr, momentum=momentum)


def spy_criterion(trace: Trace):
    """nn.CrossEntropyLoss that records each call, whether its input looked like probabilities
    (every value in [0, 1], rows summing to 1), the loss, and when the backward pass reaches it."""
    import torch
    from torch import nn

    class SpyCrossEntropyLoss(nn.CrossEntropyLoss):
        def forward(self, input, target):
            trace.add("loss")
            v = input.detach()
            looks = bool(v.dim() == 2 and v.min() >= 0 and v.max() <= 1
                         and torch.allclose(v.sum(dim=1), torch.ones(len(v)), atol=1e-4))
            trace.probabilities.append(looks)
            out = super().forward(input, target)
            trace.losses.append(float(out.detach()))
            if out.requires_grad:
                def on_backward(grad):
                    trace.add("backward")
                out.register_hook(on_backward)
            return out

    SpyCrossEntropyLoss.__name__ = "CrossEntropyLoss"
    return SpyCrossEntropyLoss()


def record_params(net, prefix: str, data: dict) -> None:
    """Record each of ``net``'s parameters as ``<prefix>.<name>`` (a NumPy copy)."""
    for name, p in net.named_parameters():
        data[f"{prefix}.{name}"] = p.detach().clone().numpy()


def record_number(x, name: str, data: dict) -> None:
    """Record a returned value that should be a Python float: its kind, and its value if it is a number."""
    data[f"{name}.kind"] = kind(x)
    if hasattr(x, "detach") and hasattr(x, "dim"):
        data[f"{name}.requires_grad"] = bool(x.requires_grad)
        data[f"{name}.shape"] = np.asarray(tuple(x.shape), dtype=np.int64)
        if x.numel() == 1:
            data[f"{name}.value"] = float(x.detach().reshape(()))
    elif isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool):
        data[f"{name}.value"] = float(x)
