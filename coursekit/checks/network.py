"""The course network's parts that two lessons judge: the conv part (lesson 2's ``ConvFeatures``,
the start of lesson 3's ``Net``), its parameter shapes, and the hints for batch and channel mistakes.

Inputs of the judges: ``inputs["x"]``, (N, 1, 28, 28) float32 images; ``found``, the data
``coursekit.checks.modules.record_module`` collected (``conv1.in``, ``conv1.out``, ``conv2.in``, ...).
"""
from __future__ import annotations

import numpy as np

from .modules import KIND, judge_stage, tolerance
from .verdicts import Found, close, fail, fmt_shape, where_differs

CONV_PARAMS = {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,)}
CONV_SHAPE_HINTS = {
    ("conv1.weight", (6, 3, 5, 5)): "the digits are grayscale: conv1 takes 1 input channel.",
    ("conv2.weight", (16, 1, 5, 5)): "conv2 reads conv1's output, which has 6 channels: 6 input channels.",
    ("conv2.weight", (6, 16, 5, 5)): "conv2 takes conv1's 6 channels and gives 16: in_channels=6, out_channels=16.",
}


BATCH_HINTS = [
    (r"invalid for input of size", "don't hard-code the batch size N: the checks use batches of other sizes "
                                   "(use -1 or x.shape[0] where a shape needs N)."),
    (r"expected input.* to have \d+ channels|Expected .* channels",
     "a layer got a tensor with a different number of channels than it was made for: check in_channels, "
     "and the order of the layers in forward."),
    (r"Output size is too small|Kernel size can't be greater",
     "the maps got smaller than a layer's window: each convolution comes first, then ReLU and pooling; "
     "pooling the images before conv1 (or pooling twice) leaves too few pixels."),
    (r"mat1 and mat2 shapes cannot be multiplied",
     "a fully connected layer got vectors of another length than its in_features (the error shows its input as "
     "rows x length, then the layer's in_features x out_features): print x.shape before it. Flattening must keep "
     "the batch axis: (N, 256)."),
]


def judge_conv_part(inputs, found, what: str, *, final: str = "") -> None:
    """conv1 gets x; conv2 gets ReLU + max-pool of conv1's output; if ``final`` names what should be
    ReLU + max-pool of conv2's output (e.g. "ConvFeatures' output"), that too."""
    x = inputs["x"]
    n = len(x)
    if "conv1.in" in found:
        got = np.asarray(found["conv1.in"])
        if got.shape != x.shape:
            fail(f"conv1 should get the images as they are, shape {fmt_shape(x.shape)}, but it got shape "
                 f"{fmt_shape(got.shape)}.",
                 "the first thing forward does with x is conv1; pooling or reshaping comes after the convolution."
                 if got.shape[-1] < 28 else "pass x to conv1 unchanged.")
        if not close(got, x, atol=1e-6):
            fail(f"conv1 should get the images as they are, but it got other values: {where_differs(got, x)}.",
                 "pass x to conv1 unchanged (the scaling to [0, 1] happened in lesson 1).")
    checks = [("conv1", "conv2", (n, 6, 24, 24), "the input of conv2")]
    if final:
        checks.append(("conv2", None, (n, 16, 8, 8), final))
    for layer, nxt, shape, after_what in checks:
        if f"{layer}.out" not in found:
            continue
        out = np.asarray(found[f"{layer}.out"])
        if out.shape != shape:
            fail(f"{layer}'s output should have shape {fmt_shape(shape)}, but it has shape {fmt_shape(out.shape)}.",
                 f"check {layer}'s padding and kernel size: a 5 × 5 kernel without padding trims 2 pixels on "
                 f"every side.")
        if nxt is None:
            f = Found(found, "out", final)
            if f.value is not None and f.kind == "Tensor":
                judge_stage(out, np.asarray(f.value), layer=layer, after_what=final)
        elif f"{nxt}.in" in found:
            judge_stage(out, np.asarray(found[f"{nxt}.in"]), layer=layer, after_what=after_what)


def judge_single(found, what: str) -> None:
    single = Found(found, "single", f"{what} for a batch of one image")
    out = Found(found, "out", what)
    if single.kind != "Tensor" or single.shape != (1,) + tuple(out.shape[1:]) or \
            not close(single.value, np.asarray(out.value)[:1], atol=tolerance(np.asarray(out.value))):
        got = f"shape {fmt_shape(single.shape)}" if single.shape is not None else KIND(single.kind)
        fail(f"{what} for a batch of one image gave {got}, not the first row of the batch's result "
             f"(shape {fmt_shape((1,) + tuple(out.shape[1:]))}).",
             "don't hard-code the batch size (use -1 or x.shape[0]), and don't squeeze away the batch axis.")
