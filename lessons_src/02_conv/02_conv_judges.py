"""Hidden judges of lesson 2 (02_conv): the student's pieces against mnist_cnn's network.

- ``conv_output_size``: against the sizes PyTorch's own convolution produces;
- ``cross_correlate``: against ``F.conv2d`` (what ``Net.conv1`` computes for one channel);
- ``ConvFeatures``: against ``mnist_cnn.model.Net`` given the same conv weights: what its
  own forward feeds into ``fc1`` (flattened), reshaped back to (N, 16, 4, 4).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from coursekit.checks import lesson_checks

public = lesson_checks("02_conv")  # registers the checks these judges attach to
from coursekit.checks import Found, close, fail, hidden_judge, where_differs
from mnist_cnn.model import Net


@hidden_judge("conv_output_size_hidden")
def output_size_matches_torch(inputs, found):
    values = np.asarray(found["values"], dtype=np.float64)
    for (size, k, stride, padding, _), v in zip(inputs["cases"], values):
        size, k, stride, padding = int(size), int(k), int(stride), int(padding)
        real = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k),
                        stride=stride or 1, padding=padding).shape[-1]
        if v != real:
            fail(f"{public._call_text(size, k, stride, padding)} returned {v:g}; PyTorch's convolution gives "
                 f"{real} pixels.")


@hidden_judge("conv_cross_correlate_hidden")
def cross_correlate_matches_conv_layer(inputs, found):
    for i in range(int(inputs["cases"])):
        image, kern = inputs[f"image{i}"], inputs[f"kernel{i}"]
        layer = torch.nn.Conv2d(1, 1, kern.shape, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(kern)[None, None])
            ref = layer(torch.from_numpy(image)[None, None])[0, 0].numpy()
        out = Found(found, f"out{i}", f"cross_correlate on a {image.shape[0]} × {image.shape[1]} image")
        out.need_shape(ref.shape)
        tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
        if not close(out.value, ref, atol=tol):
            fail(f"cross_correlate on a {image.shape[0]} × {image.shape[1]} image with a {kern.shape[0]} × "
                 f"{kern.shape[1]} kernel does not match a conv layer: {where_differs(out.value, ref, atol=tol)}.")


def reference_features(x: np.ndarray, weights: dict) -> np.ndarray:
    """mnist_cnn's Net with these conv weights: the (N, 256) input of fc1, as (N, 16, 4, 4)."""
    net = Net()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    seen = {}
    handle = net.fc1.register_forward_pre_hook(lambda module, args: seen.setdefault("x", args[0].detach().clone()))
    try:
        with torch.no_grad():
            net(torch.from_numpy(x))
    finally:
        handle.remove()
    return seen["x"].reshape(len(x), 16, 4, 4).numpy()


@hidden_judge("conv_features_hidden", part="forward")
def conv_features_match_reference(inputs, found):
    ref = reference_features(inputs["x"], public.weights_of(inputs))
    out = Found(found, "out", "ConvFeatures()(x)").need_shape(ref.shape).need_dtype("torch.float32")
    if not close(out.value, ref, atol=1e-5):
        fail(f"on other images and weights, ConvFeatures()(x) does not match the course's network: "
             f"{where_differs(out.value, ref, atol=1e-5)}.")
