"""Lesson 5's shared parts: the accuracy bar, the network's parameter shapes, and the *table network*
that answers each image with a row of logits the check chose (recording grad mode and train mode)."""
from __future__ import annotations

import numpy as np

from coursekit.checks import fail

NUM_CLASSES = 10
DEFAULT_BAR = 0.97             # course.yml's evaluation.accuracy_threshold, if course.yml cannot be read
NET_SHAPES = {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
              "fc1.weight": (120, 256), "fc1.bias": (120,), "fc2.weight": (84, 120), "fc2.bias": (84,),
              "fc3.weight": (10, 84), "fc3.bias": (10,)}


def accuracy_bar() -> float:
    """The accuracy the trained network must reach: course.yml's evaluation.accuracy_threshold."""
    from coursekit import config

    try:
        return float(config.load().evaluation.accuracy_threshold)
    except config.ConfigError:  # no course.yml here: the course's default
        return DEFAULT_BAR


# --- the table network ---------------------------------------------------------------


def tagged_images(rng, n: int) -> np.ndarray:
    """(n, 1, 28, 28) float32 in [0, 1]; image i has pixel (0, 0) = i / 255 (its row in the table)."""
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    x[:, 0, 0, 0] = np.arange(n, dtype=np.float32) / 255
    return x


def table_net(table: np.ndarray, notes: dict):
    """An nn.Module that maps image i (pixel (0, 0) = i / 255) to the logits table[i].

    Its output depends on a parameter (a scale of 1.0), so it builds a graph when gradients are
    tracked. notes["grad"] / notes["training"] get, per forward pass, torch.is_grad_enabled()
    and the module's training flag.
    """
    import torch
    from torch import nn

    class TableNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.from_numpy(table.astype(np.float32)))
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            notes.setdefault("grad", []).append(bool(torch.is_grad_enabled()))
            notes.setdefault("training", []).append(bool(self.training))
            ids = torch.round(x[:, 0, 0, 0] * 255).long().clamp(0, len(self.table) - 1)
            return self.table[ids] * self.scale

    return TableNet()


def seeded_net(Net, seed: int, notes: dict):
    """The notebook's Net, initialised from ``seed``, recording its forward passes like table_net."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Net()

    def on_forward(module, args, output):
        notes.setdefault("grad", []).append(bool(torch.is_grad_enabled()))
        notes.setdefault("training", []).append(bool(module.training))

    net.register_forward_hook(on_forward)
    return net


def record_weights(net, data: dict) -> None:
    for name, t in net.state_dict().items():
        data[f"w.{name}"] = t.detach().cpu().numpy().copy()


def record_notes(notes: dict, data: dict) -> None:
    data["forward_grad"] = np.array(notes.get("grad", []), dtype=bool)
    data["forward_training"] = np.array(notes.get("training", []), dtype=bool)


def judge_no_graph(found, what: str) -> None:
    grad = np.atleast_1d(found["forward_grad"])
    if grad.size and grad.any():
        fail(f"{what} ran the network with gradient tracking on: every forward pass built a computation graph "
             f"(for a backward pass that never comes), which costs memory and time.",
             "run the network inside a `with torch.no_grad():` block when you only need its outputs (a "
             ".detach() afterwards is too late: the graph is built during the forward pass).")
