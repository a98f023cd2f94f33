"""Lesson 2 (02_conv): the public checks of cross_correlate, conv_output_size, ConvFeatures.

The inputs are small and synthetic (no data files). The judges need no reference code:

- ``cross_correlate`` is compared with PyTorch's own ``F.conv2d`` on the same image and kernel;
- ``conv_output_size`` with a table of sizes worked out by hand;
- ``ConvFeatures``: the collector loads known weights into the student's layers and records,
  with forward hooks, what goes into and comes out of ``conv1`` and ``conv2``. Each step is
  then compared with ReLU and 2×2 max-pooling (NumPy, below) of the step before, so a message
  can name the layer and the step. ReLU before or after the pooling gives the same numbers
  (max-pooling and ReLU commute), and functional or module calls give the same hooks.

The helpers for layers (``layer_forward``, ``judge_params``, ``judge_stage``...) are the check
framework's (``coursekit.checks.modules``), shared with lesson 3. The hidden checks (``*_hidden``) reuse the collectors on other inputs; their
judges (``lessons_src/02_conv/02_conv_judges.py``) compare with ``mnist_cnn``.
"""
from __future__ import annotations

import numpy as np

from coursekit.checks import (INT_KINDS, Found, attempt, close, describe, doing, fail, fmt_shape, judge, kind,
                              part_ran, register, where_differs)
from coursekit.checks.modules import (KIND, chain, judge_conv_settings, judge_module_kind, judge_params,
                                      layer_forward, load_weights, make_module, random_images, random_weights,
                                      record_module, repair_layers, tolerance, weights_of)
from coursekit.checks.network import BATCH_HINTS, CONV_PARAMS, CONV_SHAPE_HINTS, judge_conv_part, judge_single

# --- (a) cross_correlate ---------------------------------------------------------------

def _stroke_image(rng) -> np.ndarray:
    """(28, 28) float32 in [0, 1]: a thick ring and a bar, like a digit, plus faint noise."""
    r, c = np.mgrid[0:28, 0:28]
    cy, cx = 10 + rng.integers(-2, 3), 14 + rng.integers(-2, 3)
    ring = np.abs(np.hypot(r - cy, c - cx) - 5) < 1.6
    bar = (np.abs(c - cx - 4) < 1.5) & (r > cy) & (r < 24)
    img = (ring | bar).astype(np.float32) * 0.9 + rng.random((28, 28), dtype=np.float32) * 0.1
    return img.astype(np.float32)


def _kernel(rng, shape) -> np.ndarray:
    """An asymmetric kernel: neither flipping nor transposing it gives the same numbers."""
    k = rng.normal(0, 1, shape).astype(np.float32)
    k.flat[0] = 2.5
    k.flat[-1] = -1.5
    return k


def cross_correlate_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"cases": 2,
            "image0": _stroke_image(rng), "kernel0": _kernel(rng, (5, 5)),
            "image1": rng.random((6, 9), dtype=np.float32), "kernel1": _kernel(rng, (3, 2))}


def cross_correlate_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 200)
    return {"cases": 3,
            "image0": rng.random((10, 12), dtype=np.float32), "kernel0": _kernel(rng, (3, 3)),
            "image1": rng.random((5, 5), dtype=np.float32), "kernel1": _kernel(rng, (5, 5)),
            "image2": rng.random((7, 4), dtype=np.float32), "kernel2": _kernel(rng, (2, 4))}


@register("conv_cross_correlate", inputs=cross_correlate_inputs,
          title="out[i, j] = sum of window × kernel, as F.conv2d computes it",
          hints=[(r"must match the size of tensor|shape mismatch|size of tensor a",
                  "the window must have the kernel's shape: rows i to i + kH (exclusive), columns j to j + kW."),
                 (r"out of range|out of bounds",
                  "a kH × kW window fits in H − kH + 1 positions down and W − kW + 1 across.")])
def collect_cross_correlate(inputs, cross_correlate):
    import torch

    data = {}
    for i in range(int(inputs["cases"])):
        image, kern = inputs[f"image{i}"], inputs[f"kernel{i}"]
        image_t, kern_t = torch.from_numpy(image.copy()), torch.from_numpy(kern.copy())
        doing(f"calling cross_correlate(image, kernel) with an image of shape {fmt_shape(image.shape)} and a "
              f"kernel of shape {fmt_shape(kern.shape)} (float32 tensors)")
        describe(cross_correlate(image_t, kern_t), f"out{i}", data)
        data[f"unchanged{i}"] = bool(np.array_equal(image_t.numpy(), image) and np.array_equal(kern_t.numpy(), kern))
    return data


register("conv_cross_correlate_hidden", inputs=cross_correlate_hidden_inputs, seed=1)(collect_cross_correlate)


def torch_xcorr(image: np.ndarray, kern: np.ndarray) -> np.ndarray:
    """PyTorch's own answer: F.conv2d of one image with one kernel, in float64."""
    import torch
    import torch.nn.functional as F

    im = torch.from_numpy(np.asarray(image, dtype=np.float64))[None, None]
    k = torch.from_numpy(np.ascontiguousarray(kern, dtype=np.float64))[None, None]
    return F.conv2d(im, k)[0, 0].numpy()


@judge("conv_cross_correlate", "conv_cross_correlate_hidden")
def judge_cross_correlate(inputs, found):
    for i in range(int(inputs["cases"])):
        image, kern = inputs[f"image{i}"], inputs[f"kernel{i}"]
        (h, w), (kh, kw) = image.shape, kern.shape
        what = f"cross_correlate(image, kernel) for a {h} × {w} image and a {kh} × {kw} kernel"
        out = Found(found, f"out{i}", what)
        out.need_kind("Tensor", hint={
            "ndarray": "return a torch tensor: build the result with torch.zeros(...), or convert at the end "
                       "with torch.from_numpy(...).float().",
            "NoneType": "end the function with `return` of the result.",
        }.get(out.kind, "return a 2-D torch tensor of float32 values."))
        want = (h - kh + 1, w - kw + 1)
        if out.shape != want:
            hints = {
                (h, w): "the output has the image's size, as with 'same' padding. Here there is no padding: the "
                        "kernel must lie entirely inside the image, so it fits in H − kH + 1 positions down and "
                        "W − kW + 1 across.",
                (h - kh, w - kw): "one row and one column short: a kH × kW kernel fits in H − kH + 1 positions down "
                                  "(range(H - kH + 1)), not H − kH.",
                (h + kh - 1, w + kw - 1): "that is a 'full' convolution, with the kernel hanging over the edges; "
                                          "here the kernel stays inside the image.",
                (want[1], want[0]): "the output's rows and columns are swapped: rows come from the image's height "
                                    "(axis 0), columns from its width (axis 1).",
                (1, 1) + want: "return a 2-D tensor (H − kH + 1, W − kW + 1): drop the batch and channel axes.",
            }
            if kh != kw:
                hints.setdefault((h - kh + 1, w - kh + 1), "the kernel is not square here: use its height kH for the "
                                                           "rows and its width kW for the columns.")
                hints.setdefault((h - kw + 1, w - kw + 1), "the kernel is not square here: use its height kH for the "
                                                           "rows and its width kW for the columns.")
            if h != w:
                hints.setdefault((h - kh + 1, h - kw + 1), "the image is not square here: use its height H for the "
                                                           "rows and its width W for the columns.")
                hints.setdefault((w - kh + 1, w - kw + 1), "the image is not square here: use its height H for the "
                                                           "rows and its width W for the columns.")
            out.need_shape(want, hint=hints.get(out.shape, "the output has one value per position of the kernel: "
                                                           "(H − kH + 1, W − kW + 1)."))
        out.need_dtype("torch.float32", hint="torch.zeros(...) makes float32 by default; NumPy's np.zeros makes "
                                             "float64. Convert with .float().")
        v = np.asarray(out.value, dtype=np.float64)
        ref = torch_xcorr(image, kern)
        tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
        if close(v, ref, atol=tol):
            if not found[f"unchanged{i}"]:
                fail(f"{what} changed the image or the kernel it was given.",
                     "compute into a new tensor; don't write into image or kernel.")
            continue
        alternatives = [
            (torch_xcorr(image, kern[::-1, ::-1]),
             f"{what} flipped the kernel: that is the textbook 'convolution'. Conv layers (and this exercise) "
             f"compute cross-correlation, without flipping.",
             "multiply image[i + a, j + b] by kernel[a, b], the kernel as it is."),
            (torch_xcorr(image, np.ones_like(kern)),
             f"{what} returned the sum of each window, without the kernel's weights.",
             "multiply the window by the kernel, element by element, then add up the products."),
            (torch_xcorr(image, kern) / kern.size,
             f"{what} averaged the products instead of adding them up (divided by {kern.size}).",
             "out[i, j] is the sum of the products, not their mean."),
        ]
        if kh == kw:
            alternatives.append((torch_xcorr(image, kern.T),
                                 f"{what} used the kernel transposed (its rows as columns).",
                                 "pair image[i + a, j + b] with kernel[a, b]: a counts rows, b counts columns."))
        if want[0] == want[1] and h == w:
            alternatives.append((torch_xcorr(image, kern).T,
                                 f"{what} has its rows and columns swapped (out[j, i] instead of out[i, j]).",
                                 "out[i, j] uses the window whose top-left corner is image[i, j]: i counts rows, "
                                 "j counts columns."))
        for alt, msg, hint in alternatives:
            if alt is not None and close(v, alt, atol=tol):
                fail(msg, hint)
        fail(f"{what} returned wrong values, {where_differs(v, ref, atol=tol)}.",
             "out[i, j] = sum over a, b of image[i + a, j + b] * kernel[a, b], for a < kH and b < kW: the window "
             "whose top-left corner is (i, j), multiplied element by element by the kernel, and added up.")


# --- (b) conv_output_size ----------------------------------------------------------------

# size, kernel, stride, padding, expected; stride 0 means: call with the defaults, f(size, kernel)
OUTPUT_SIZE_CASES = np.array([
    [28, 5, 0, 0, 24],      # conv1
    [24, 2, 2, 0, 12],      # 2 × 2 max-pooling
    [12, 5, 1, 0, 8],       # conv2
    [8, 2, 2, 0, 4],        # pooling again
    [28, 5, 1, 2, 28],      # 'same' padding
    [28, 3, 2, 1, 14],
    [7, 2, 2, 0, 3],        # odd size: round down
    [28, 5, 2, 0, 12],
    [10, 3, 3, 0, 3],
    [32, 5, 1, 0, 28],
], dtype=np.int64)

OUTPUT_SIZE_HIDDEN_CASES = np.array([
    [100, 7, 3, 2, 33],
    [5, 5, 0, 0, 1],
    [13, 2, 2, 0, 6],
    [64, 4, 4, 0, 16],
    [29, 5, 2, 2, 15],
    [1, 1, 1, 0, 1],
    [30, 3, 1, 1, 30],
    [17, 4, 3, 1, 6],
], dtype=np.int64)


def output_size_inputs(seed: int) -> dict:
    return {"cases": OUTPUT_SIZE_CASES.copy()}


def output_size_hidden_inputs(seed: int) -> dict:
    return {"cases": OUTPUT_SIZE_HIDDEN_CASES.copy()}


def _call_text(size, k, stride, padding) -> str:
    return f"conv_output_size({size}, {k})" if stride == 0 else \
        f"conv_output_size({size}, {k}, stride={stride}, padding={padding})"


@register("conv_output_size", inputs=output_size_inputs,
          title="⌊(size + 2·padding − kernel) / stride⌋ + 1, as an int, on a table of convolutions and poolings")
def collect_output_size(inputs, conv_output_size):
    kinds, values = [], []
    for size, k, stride, padding, _ in inputs["cases"]:
        size, k, stride, padding = int(size), int(k), int(stride), int(padding)
        doing(f"calling {_call_text(size, k, stride, padding)}")
        out = conv_output_size(size, k) if stride == 0 else conv_output_size(size, k, stride=stride, padding=padding)
        kinds.append(kind(out))
        try:
            values.append(float(out))
        except (TypeError, ValueError):
            values.append(np.nan)
    return {"kinds": np.array(kinds, dtype=str), "values": np.array(values, dtype=np.float64)}


register("conv_output_size_hidden", inputs=output_size_hidden_inputs, seed=1)(collect_output_size)

def _wrong_sizes(s, k, st, p):
    """The usual slips, as (name, value, hint)."""
    st_ = max(st, 1)
    return [
        ("no +1", (s + 2 * p - k) // st_,
         "count the positions: a 5-pixel kernel fits in 28 − 5 + 1 = 24 places, so the formula ends with + 1."),
        ("ceil", -(-(s + 2 * p - k) // st_) + 1,
         "round down: a position where the window would stick out past the edge is not used."),
        ("no padding", (s - k) // st_ + 1,
         "padding adds `padding` zeros on each side of the image: the room is size + 2·padding."),
        ("padding once", (s + p - k) // st_ + 1,
         "padding adds zeros on *both* sides: size + 2·padding, not size + padding."),
        ("no stride", s + 2 * p - k + 1,
         "with stride s the window jumps s pixels at a time: divide the room it can move in by the stride."),
        ("+1 inside", (s + 2 * p - k + 1) // st_,
         "divide the room the window can move in, size + 2·padding − kernel, by the stride, and *then* add 1."),
    ]


@judge("conv_output_size", "conv_output_size_hidden")
def judge_output_size(inputs, found):
    cases = inputs["cases"]
    kinds, values = list(found["kinds"]), np.asarray(found["values"], dtype=np.float64)
    rows = []
    for (size, k, stride, padding, want), kd, v in zip(cases, kinds, values):
        call = _call_text(size, k, stride, padding)
        if kd == "NoneType":
            fail(f"{call} returned None.", "end the function with `return` of the size.")
        if np.isnan(v):
            fail(f"{call} returned {KIND(kd)}, not a number.", "return the size as an int.")
        rows.append((call, int(size), int(k), int(stride), int(padding), int(want), kd, v))
    defaults = [r for r in rows if r[3] == 0]
    if defaults and all(r[7] == r[5] for r in rows if r[3] != 0) and any(r[7] != r[5] for r in defaults):
        call, *_, want, kd, v = next(r for r in defaults if r[7] != r[5])
        fail(f"{call} returned {v:g}, expected {want}, though the calls that give stride and padding are right.",
             "check the default values in the first line of the function: stride=1 and padding=0.")
    for call, s, k, st, p, want, kd, v in rows:
        if v != want:
            got = f"{v:g}"
            for name, alt, hint in _wrong_sizes(s, k, st if st else 1, p):
                others = [alt_ for c_, s_, k_, st_, p_, w_, kd_, v_ in rows
                          for n_, alt_, _ in _wrong_sizes(s_, k_, st_ if st_ else 1, p_) if n_ == name and v_ != alt_]
                if alt == v and not others:
                    fail(f"{call} returned {got}, expected {want}.", hint)
            if abs(v - ((s + 2 * p - k) / (st or 1) + 1)) < 1e-9:
                fail(f"{call} returned {got}, expected {want}: the division was not rounded down.",
                     "sizes are whole numbers: use integer division // (it rounds down).")
            table = "\n".join(f"  {c}: expected {w_}, got {v_:g}" for c, _, _, _, _, w_, _, v_ in rows)
            fail(f"{call} returned {got}, expected {want}. All the cases:\n{table}",
                 "the number of positions is ⌊(size + 2·padding − kernel) / stride⌋ + 1 (⌊ ⌋: round down); "
                 "stride defaults to 1 and padding to 0.")
    for call, s, k, st, p, want, kd, v in rows:
        if kd not in INT_KINDS:
            fail(f"{call} returned {v:g} as {KIND(kd)}; a size should be an int.",
                 "sizes count pixels: use integer division // (or int(...)), so that the result can be used in "
                 "range() or in a shape." if kd.startswith("float") else "return a plain Python int.")


# --- (c) ConvFeatures ----------------------------------------------------------------------

def conv_features_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": random_images(rng, 3), **random_weights(rng, CONV_PARAMS)}


def conv_features_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 300)
    return {"x": random_images(rng, 2), **random_weights(rng, CONV_PARAMS, bias_scale=0.5)}


@register("conv_features", inputs=conv_features_inputs, hints=BATCH_HINTS,
          title="conv1 (1→6, 5×5) and conv2 (6→16, 5×5), each + ReLU + 2×2 max-pool: (N, 1, 28, 28) → (N, 16, 4, 4)")
def collect_conv_features(inputs, ConvFeatures):
    data = {}
    net = make_module(ConvFeatures, "ConvFeatures")
    if not record_module(net, ("conv1", "conv2"), data):
        return data
    repair_layers(net, CONV_PARAMS, data)     # forward is judged with the course's layers: its own part
    if not load_weights(net, weights_of(inputs), data):
        return data
    with attempt("forward", data):
        layer_forward(net, inputs["x"], ("conv1", "conv2"), data, "ConvFeatures()")
        chain(net, inputs["x"], ("conv1", "relu_pool", "conv2", "relu_pool"), data)
    return data


register("conv_features_hidden", inputs=conv_features_hidden_inputs, seed=1)(collect_conv_features)


@judge("conv_features", "conv_features_hidden")
def judge_conv_features_kind(inputs, found):
    judge_module_kind(found, "ConvFeatures()", "ConvFeatures")


@judge("conv_features", "conv_features_hidden", part="__init__")
def judge_conv_features_layers(inputs, found):
    """__init__: conv1 and conv2 with the course's shapes and settings."""
    what = "ConvFeatures()"
    judge_params(found, CONV_PARAMS, what, CONV_SHAPE_HINTS)
    for layer in ("conv1", "conv2"):
        if found.get(f"{layer}.kind") != "Conv2d":
            fail(f"{what}.{layer} should be an nn.Conv2d, but it is {KIND(found.get(f'{layer}.kind'))}.")
        judge_conv_settings(found, layer)


@judge("conv_features", "conv_features_hidden", part="forward")
def judge_conv_features_forward(inputs, found):
    """forward, run with the course's conv1 and conv2 (``repair_layers``): ReLU, pooling, order, shape."""
    part_ran(found, "forward")
    what = "ConvFeatures()"
    n = len(inputs["x"])
    out = Found(found, "out", "ConvFeatures()(x)")
    out.need_kind("Tensor", hint="forward should end with `return` of the feature maps."
                  if out.kind == "NoneType" else "forward should return a tensor.")
    judge_conv_part(inputs, found, what, final="ConvFeatures()(x)")
    for layer in ("conv1", "conv2"):
        if f"{layer}.calls" not in found and "chain.value" in found and not close(out.value, found["chain.value"]):
            fail(f"forward never called self.{layer}, and its result is not what conv1 and conv2 give.",
                 f"use the layers you created in __init__: self.{layer}(...) (a layer created inside forward "
                 f"would get new random weights at every call).")
    out.need_shape((n, 16, 4, 4), hint="conv1 → ReLU → 2 × 2 max-pool → conv2 → ReLU → 2 × 2 max-pool takes "
                                       "28 × 28 to 24, 12, 8, then 4.")
    out.need_dtype("torch.float32")
    if "chain.value" in found and not close(out.value, found["chain.value"], atol=tolerance(found["chain.value"])):
        fail(f"ConvFeatures()(x) is not conv1 → ReLU → max-pool → conv2 → ReLU → max-pool of x: "
             f"{where_differs(out.value, found['chain.value'], atol=tolerance(found['chain.value']))}.",
             "use exactly those steps, each once, in that order.")
    judge_single(found, "ConvFeatures()(x)")
