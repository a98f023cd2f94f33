"""Hidden judges of lesson 3 (03_fc): the student's pieces against mnist_cnn's network.

- ``flatten``: against the flattening ``mnist_cnn.model.Net`` does before ``fc1``;
- ``Net``: against ``mnist_cnn.model.Net`` with the same weights, on other images;
- ``count_parameters``: against ``mnist_cnn.model.count_parameters`` (44,426 for ``Net``).
"""
from __future__ import annotations

import numpy as np
import torch

from coursekit.checks import lesson_checks

public = lesson_checks("03_fc")  # registers the checks these judges attach to
from coursekit.checks import Found, close, fail, hidden_judge, where_differs
from mnist_cnn.model import Net, count_parameters


def _fc1_input(maps: np.ndarray) -> np.ndarray:
    """How mnist_cnn's Net flattens conv2's pooled maps (N, 16, 4, 4) before fc1 (its forward uses
    torch.flatten from axis 1); the Net test checks that the whole forward agrees."""
    return torch.flatten(torch.from_numpy(maps), 1).numpy()


@hidden_judge("fc_flatten_hidden")
def flatten_matches_reference(inputs, found):
    ref = _fc1_input(inputs["features"])
    out = Found(found, "out", "flatten(features)").need_shape(ref.shape).need_dtype("torch.float32")
    if not close(out.value, ref, atol=1e-4):
        fail(f"flatten on other feature maps does not give what the course's network feeds into fc1: "
             f"{where_differs(out.value, ref, atol=1e-4)}.")


@hidden_judge("fc_net_hidden", part="forward")
def net_matches_reference(inputs, found):
    net = Net()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in public.weights_of(inputs).items()})
    with torch.no_grad():
        ref = net(torch.from_numpy(inputs["x"])).numpy()
    out = Found(found, "out", "Net()(x)").need_shape(ref.shape).need_dtype("torch.float32")
    if not close(out.value, ref, atol=1e-4) and not close(out.value, torch.log_softmax(torch.from_numpy(ref), 1).numpy(),
                                                           atol=1e-4):   # its log-softmax: the same logits
        fail(f"on other images and weights, Net()(x) does not match the course's network: "
             f"{where_differs(out.value, ref, atol=1e-4)}.")


@hidden_judge("fc_count_parameters_hidden")
def count_matches_reference(inputs, found):
    values = np.asarray(found["values"], dtype=np.float64)
    for i, v in enumerate(values):
        net = public.build_net(inputs[f"net{i}"], inputs[f"names{i}"])
        ref = count_parameters(net)
        if i == 0:
            ref = count_parameters(Net())
        if v != ref:
            fail(f"count_parameters on {inputs[f'desc{i}']} returned {v:,.0f}; the course's count is {ref:,}.")
