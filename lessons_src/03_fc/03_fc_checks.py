"""Lesson 3 (03_fc): the public checks of flatten, Net, count_parameters.

- ``flatten`` is compared with the (C, H, W) order NumPy's reshape gives;
- ``Net``: the collector loads known weights into the student's network and records, with
  forward hooks, what goes into and comes out of each of conv1, conv2, fc1, fc2, fc3. The
  judges compare each step with what it should be, computed from the step before (ReLU,
  max-pooling, flattening in NumPy), so a message names the layer: a missing ReLU, a
  softmax or a ReLU after fc3, a flattening in the wrong order...
- ``count_parameters`` runs on small networks the collector builds from a description
  (plain data), and is compared with the count worked out from that description.

The hidden checks (``*_hidden``) reuse the collectors on other inputs; their judges
(``lessons_src/03_fc/03_fc_judges.py``) compare with ``mnist_cnn``.
"""
from __future__ import annotations

import numpy as np

from coursekit.checks import (INT_KINDS, Found, attempt, close, describe, doing, fail, fmt_shape, judge, kind,
                              part_ran, register, where_differs)
from coursekit.checks.modules import (KIND, chain, judge_conv_settings, judge_module_kind, judge_params,
                                      layer_forward, load_weights, make_module, max_pool2, random_images,
                                      random_weights, record_module, relu, repair_layers, sigmoid, softmax, tolerance, weights_of)
from coursekit.checks.network import (BATCH_HINTS, CONV_PARAMS, CONV_SHAPE_HINTS,   # shared with lesson 2
                                      judge_conv_part, judge_single)
from coursekit.checks.stand_in import standing_in

# --- (a) flatten -------------------------------------------------------------------------


def _features(rng, n: int) -> np.ndarray:
    """(n, 16, 4, 4) float32, all values different (so any reordering shows), some negative."""
    values = rng.permutation(n * 256).astype(np.float32) / 64 - 1
    return values.reshape(n, 16, 4, 4)


def flatten_inputs(seed: int) -> dict:
    return {"features": _features(np.random.default_rng(seed), 3)}


def flatten_hidden_inputs(seed: int) -> dict:
    return {"features": _features(np.random.default_rng(seed + 400), 5)}


@register("fc_flatten", inputs=flatten_inputs, hints=BATCH_HINTS,
          title="(N, 16, 4, 4) → (N, 256), each image's values in (channel, row, column) order")
def collect_flatten(inputs, flatten):
    import torch

    f = inputs["features"]
    data = {}
    t = torch.from_numpy(f.copy())
    doing(f"calling flatten(features) with features of shape {fmt_shape(f.shape)} float32")
    describe(flatten(t), "out", data)
    data["unchanged"] = bool(tuple(t.shape) == f.shape and np.array_equal(t.numpy(), f))
    doing(f"calling flatten(features) with features of shape {fmt_shape(f[:1].shape)} (a batch of one image)")
    describe(flatten(torch.from_numpy(f[:1].copy())), "single", data)
    return data


register("fc_flatten_hidden", inputs=flatten_hidden_inputs, seed=1)(collect_flatten)


@judge("fc_flatten", "fc_flatten_hidden")
def judge_flatten(inputs, found):
    f = inputs["features"]
    n = len(f)
    what = f"flatten(features) for features of shape {fmt_shape(f.shape)}"
    out = Found(found, "out", what)
    out.need_kind("Tensor", hint={
        "ndarray": "keep it a torch tensor: the next layer, fc1, is a torch layer (tensors have .reshape, "
                   ".view and .flatten too).",
        "NoneType": "end the function with `return` of the flattened tensor.",
    }.get(out.kind, "return a torch tensor."))
    want = (n, 256)
    if out.shape != want:
        hints = {
            (n * 256,): "the batch axis was flattened too: every image of the batch ended up in one long row. "
                        "Keep axis 0 (the images) and flatten the others.",
            (n, 16, 16): "only the rows and columns were flattened; the channels must go into the same row: "
                         "flatten every axis after the first.",
            (256, n): "the images should stay on axis 0, one row each: (N, 256), not (256, N).",
            (1, n * 256): "all the images went into one row; each image needs a row of its own: (N, 256).",
            f.shape: "nothing was flattened: the shape is unchanged.",
            (n * 16, 16): "the channels went into the batch axis: each image must give one row of 16 · 4 · 4 numbers.",
        }
        out.need_shape(want, hint=hints.get(out.shape, "one row per image, of 16 · 4 · 4 = 256 numbers."))
    out.need_dtype("torch.float32", hint="flattening moves numbers around; it does not change their dtype.")
    v = np.asarray(out.value)
    expected = f.reshape(n, -1)
    if not np.array_equal(v, expected):
        if np.array_equal(v, f.transpose(0, 2, 3, 1).reshape(n, -1)):
            fail(f"{what} has the right numbers in the wrong order: channels last (the 16 channel values of pixel "
                 f"(0, 0) first, then those of pixel (0, 1)...).",
                 "keep PyTorch's (channel, row, column) order: all 16 values of channel 0 row by row, then channel "
                 "1... Don't permute the axes before flattening; fc1's weights (trained ones, too) count on this "
                 "order.")
        if np.array_equal(v, f.transpose(0, 1, 3, 2).reshape(n, -1)):
            fail(f"{what} read each 4 × 4 map column by column (transposed).",
                 "flatten each map row by row, as reshape, view and torch.flatten do.")
        if np.array_equal(np.sort(v, axis=1), np.sort(expected, axis=1)):
            fail(f"{what} has each image's numbers in its row, but in another order: {where_differs(v, expected)}.",
                 "keep the (channel, row, column) order: reshape, view or torch.flatten, without permuting.")
        fail(f"{what} mixes the images: row i should hold exactly the 256 numbers of image i, "
             f"{where_differs(v, expected)}.",
             "flatten every axis after the batch axis, keeping the batch axis as it is: the first number of the "
             "new shape is N (a transpose, a .t() or a shape like (256, -1) mixes the images).")
    if not found["unchanged"]:
        fail(f"{what} changed the tensor it was given.", "return a new tensor (or a view); don't resize the input in place.")
    single = Found(found, "single", "flatten(features) for a batch of one image")
    if single.shape != (1, 256):
        single.need_shape((1, 256), hint="a batch of one image is still a batch: don't squeeze the batch axis away, "
                                         "and don't hard-code N.")


# --- (b) Net ------------------------------------------------------------------------------

FC_PARAMS = {"fc1.weight": (120, 256), "fc1.bias": (120,), "fc2.weight": (84, 120), "fc2.bias": (84,),
             "fc3.weight": (10, 84), "fc3.bias": (10,)}
NET_PARAMS = {**CONV_PARAMS, **FC_PARAMS}
NET_LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")
NET_SHAPE_HINTS = {
    **CONV_SHAPE_HINTS,
    ("fc1.weight", (120, 400)): "16 · 5 · 5 = 400 is for 32 × 32 images (the original LeNet-5); our 28 × 28 digits "
                                "leave 16 maps of 4 × 4 = 256 numbers.",
    ("fc1.weight", (120, 16)): "fc1 reads the whole flattened vector: 16 channels × 4 × 4 = 256 numbers, not 16.",
    ("fc1.weight", (120, 4)): "fc1 reads the whole flattened vector: 16 channels × 4 × 4 = 256 numbers.",
    ("fc3.weight", (1, 84)): "one output per digit class: 10 outputs.",
}


def net_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": random_images(rng, 3), **random_weights(rng, NET_PARAMS)}


def net_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 500)
    return {"x": random_images(rng, 2), **random_weights(rng, NET_PARAMS, bias_scale=0.5)}


@register("fc_net", inputs=net_inputs, hints=BATCH_HINTS,
          title="conv1, conv2, fc1 (256→120), fc2 (120→84), fc3 (84→10): (N, 1, 28, 28) → (N, 10) logits")
def collect_net(inputs, Net):
    data = {}
    net = make_module(Net, "Net")
    if not record_module(net, NET_LAYERS, data):
        return data
    repair_layers(net, NET_PARAMS, data)     # forward is judged with the course's layers: its own part
    if not load_weights(net, weights_of(inputs), data):
        return data
    with attempt("forward", data), standing_in(Net, "flatten", _flatten):   # your flatten has its own check
        layer_forward(net, inputs["x"], NET_LAYERS, data, "Net()")
        chain(net, inputs["x"], ("conv1", "relu_pool", "conv2", "relu_pool", "flatten", "fc1", "relu", "fc2",
                                 "relu", "fc3"), data)
    return data


register("fc_net_hidden", inputs=net_hidden_inputs, seed=1)(collect_net)


def _flatten(features):
    """What Net's forward gets for the notebook's flatten while Net is judged: (N, C, H, W) ->
    (N, C·H·W), as the lesson's text gives it (torch.flatten with start_dim 1)."""
    import torch

    return torch.flatten(features, 1)


def _after_fc(before: np.ndarray, after: np.ndarray, *, layer: str, after_what: str) -> None:
    """``after`` should be ReLU of ``before`` (fc1's or fc2's output)."""
    if after.shape != before.shape:
        fail(f"{after_what} should have shape {fmt_shape(before.shape)}, the shape of {layer}'s output, but it has "
             f"shape {fmt_shape(after.shape)}.",
             f"between {layer} and the next layer there is only a ReLU, which keeps the shape.")
    want = relu(before)
    tol = tolerance(want)
    if close(after, want, atol=tol):
        return
    if close(after, before, atol=tol):
        fail(f"the ReLU after {layer} is missing: {after_what} has negative values (down to {float(after.min()):.3g}).",
             f"apply ReLU to {layer}'s output. Without it, two linear layers in a row are just one linear layer.")
    for name, alt in (("a sigmoid", sigmoid(before)), ("tanh", np.tanh(before)), ("a softmax", softmax(before))):
        if close(after, alt, atol=tol):
            fail(f"{after_what} went through {name} after {layer}, not a ReLU.", "the course's network uses ReLU: max(0, v).")
    fail(f"{after_what} is not ReLU of {layer}'s output: {where_differs(after, want, atol=tol)}.",
         f"after {layer} comes a ReLU, nothing else (no dropout, no normalization).")


def _same_logits(out, chain) -> bool:
    """``out`` is the layers' chain of x, or its log-softmax (the same logits, shifted per row)."""
    chain = np.asarray(chain)
    return close(out, chain, atol=tolerance(chain)) or close(out, np.log(softmax(chain)), atol=1e-4)


def _logits(before: np.ndarray, after: np.ndarray, what: str) -> None:
    """``after`` (the network's output) should be fc3's output as it is, or its log-softmax (the same
    logits shifted per row: softmax, CrossEntropyLoss and argmax give the same)."""
    if after.shape != before.shape:
        fail(f"{what} should have shape {fmt_shape(before.shape)}, fc3's output, but it has shape "
             f"{fmt_shape(after.shape)}.", "return fc3's output as it is: one row of 10 logits per image.")
    tol = tolerance(before)
    if close(after, before, atol=tol):
        return
    if close(after, softmax(before), atol=1e-5):
        fail(f"{what} is the softmax of fc3's output: probabilities (each row sums to 1), not logits.",
             "return fc3's output as it is. nn.CrossEntropyLoss (lesson 4) applies log-softmax itself: a softmax "
             "in the network would be applied twice, and training would crawl.")
    if close(after, softmax(before.T).T, atol=1e-5):
        fail(f"{what} is a softmax of fc3's output, taken over the batch axis (dim=0): not logits.",
             "return fc3's output as it is: nn.CrossEntropyLoss (lesson 4) applies the softmax itself, over the "
             "10 classes.")
    if close(after, np.log(softmax(before)), atol=1e-4):
        return   # log-probabilities are logits too: the softmax, the loss and the guesses are the same
    if close(after, relu(before), atol=tol):
        fail(f"{what} went through a ReLU after fc3: logits can't be negative any more (found only values >= 0; "
             f"fc3 gave values down to {float(before.min()):.3g}).",
             "no activation after fc3: its output, the logits, goes out as it is (ReLU only between the layers).")
    if close(after, sigmoid(before), atol=1e-5):
        fail(f"{what} went through a sigmoid after fc3.", "return fc3's output as it is: the logits.")
    fail(f"{what} is not fc3's output: {where_differs(after, before, atol=tol)}.",
         "forward should end by returning fc3's output, unchanged.")


@judge("fc_net", "fc_net_hidden")
def judge_net_kind(inputs, found):
    judge_module_kind(found, "Net()", "Net")


@judge("fc_net", "fc_net_hidden", part="__init__")
def judge_net_layers(inputs, found):
    """__init__: conv1, conv2, fc1, fc2, fc3 with the course's shapes and settings."""
    what = "Net()"
    judge_params(found, NET_PARAMS, what, NET_SHAPE_HINTS)
    for layer, want in (("conv1", "Conv2d"), ("conv2", "Conv2d"), ("fc1", "Linear"), ("fc2", "Linear"),
                        ("fc3", "Linear")):
        if found.get(f"{layer}.kind") != want:
            fail(f"{what}.{layer} should be an nn.{want}, but it is {KIND(found.get(f'{layer}.kind'))}.")
    judge_conv_settings(found, "conv1")
    judge_conv_settings(found, "conv2")


@judge("fc_net", "fc_net_hidden", part="forward")
def judge_net_forward(inputs, found):
    """forward, run with the course's layers (``repair_layers``): the conv part, flattening, the ReLUs
    between fc1, fc2 and fc3, logits out."""
    part_ran(found, "forward")
    what = "Net()"
    n = len(inputs["x"])
    out = Found(found, "out", "Net()(x)")
    out.need_kind("Tensor", hint="forward should end with `return` of the logits."
                  if out.kind == "NoneType" else "forward should return a tensor.")
    judge_conv_part(inputs, found, what)                 # the part from lesson 2: conv1, then conv2's input
    if "conv2.out" in found and "fc1.in" in found:
        conv = max_pool2(relu(np.asarray(found["conv2.out"])))
        got = np.asarray(found["fc1.in"])
        if conv.shape != (n, 16, 4, 4):
            fail(f"conv2's output should have shape {fmt_shape((n, 16, 8, 8))}, but it has shape "
                 f"{fmt_shape(np.asarray(found['conv2.out']).shape)}.",
                 "the convolutional part is lesson 2's: keep it as given.")
        if got.shape != (n, 256):
            fail(f"fc1 should get the flattened feature maps, shape {fmt_shape((n, 256))}, but it got shape "
                 f"{fmt_shape(got.shape)}.",
                 {(n, 16, 8, 8): "that is conv2's output before the pooling: keep lesson 2's ReLU and max-pooling "
                                 "after conv2, then flatten.",
                  (n, 16, 4, 4): "flatten the (N, 16, 4, 4) maps to (N, 256) before fc1.",
                  (n * 256,): "the batch axis was flattened too: keep axis 0.",
                  }.get(got.shape, "after conv2, ReLU and max-pooling: flatten to (N, 256), then fc1."))
        flat = conv.reshape(n, -1)
        if not close(got, flat, atol=tolerance(flat)):
            if close(got, max_pool2(np.asarray(found["conv2.out"])).reshape(n, -1), atol=tolerance(flat)):
                fail("the ReLU after conv2 is missing: fc1's input has negative values.",
                     "keep the convolutional part as lesson 2 has it: ReLU and max-pooling after conv2.")
            if close(got, conv.transpose(0, 2, 3, 1).reshape(n, -1), atol=tolerance(flat)):
                fail("fc1's input is flattened in the wrong order: channels last.",
                     "flatten in PyTorch's (channel, row, column) order, without permuting the axes.")
            fail(f"fc1's input is not the flattened output of the convolutional part: "
                 f"{where_differs(got, flat, atol=tolerance(flat))}.",
                 "after lesson 2's conv2 → ReLU → max-pool, flatten to (N, 256) (your flatten does it) and pass "
                 "that to fc1.")
    for layer, nxt in (("fc1", "fc2"), ("fc2", "fc3")):
        if f"{layer}.out" in found and f"{nxt}.in" in found:
            _after_fc(np.asarray(found[f"{layer}.out"]), np.asarray(found[f"{nxt}.in"]), layer=layer,
                      after_what=f"the input of {nxt}")
    for layer in NET_LAYERS:
        if f"{layer}.calls" not in found and "chain.value" in found and \
                not _same_logits(out.value, found["chain.value"]):
            fail(f"forward never called self.{layer}, and its result is not what the network's layers give.",
                 f"use the layers created in __init__: self.{layer}(...) (a layer created inside forward would get "
                 f"new random weights at every call).")
    if "fc3.out" in found and out.value is not None:
        _logits(np.asarray(found["fc3.out"]), np.asarray(out.value), "Net()(x)")
    out.need_shape((n, 10), hint="one row of 10 logits (a score per digit) for each image.")
    out.need_dtype("torch.float32")
    if "chain.value" in found and not _same_logits(out.value, found["chain.value"]):
        fail(f"Net()(x) is not conv1 → ReLU → max-pool → conv2 → ReLU → max-pool → flatten → fc1 → ReLU → fc2 → "
             f"ReLU → fc3 of x: {where_differs(out.value, found['chain.value'], atol=tolerance(found['chain.value']))}.",
             "use exactly those steps, each once, in that order.")
    judge_single(found, "Net()(x)")


# --- (c) count_parameters -------------------------------------------------------------

# A network as plain data: one row per layer, [kind, in, out, kH, kW, bias] (kind 0: nn.Linear, 1: nn.Conv2d).
COURSE_NET = np.array([[1, 1, 6, 5, 5, 1], [1, 6, 16, 5, 5, 1], [0, 256, 120, 0, 0, 1], [0, 120, 84, 0, 0, 1],
                       [0, 84, 10, 0, 0, 1]], dtype=np.int64)


def _count_inputs(nets, names, descriptions) -> dict:
    out = {"nets": len(nets)}
    for i, (layers, layer_names, desc) in enumerate(zip(nets, names, descriptions)):
        out[f"net{i}"] = np.asarray(layers, dtype=np.int64)
        out[f"names{i}"] = np.array(layer_names, dtype=str)
        out[f"desc{i}"] = desc
    return out


def count_inputs(seed: int) -> dict:
    return _count_inputs(
        [COURSE_NET, [[0, 3, 2, 0, 0, 1]], [[1, 2, 4, 3, 5, 1], [0, 8, 3, 0, 0, 0]]],
        [["conv1", "conv2", "fc1", "fc2", "fc3"], ["layer"], ["conv", "fc"]],
        ["the course's network (conv1, conv2, fc1, fc2, fc3)", "a network with one nn.Linear(3, 2)",
         "a network with nn.Conv2d(2, 4, kernel_size=(3, 5)) and nn.Linear(8, 3, bias=False)"])


def count_hidden_inputs(seed: int) -> dict:
    return _count_inputs(
        [COURSE_NET, [[0, 10, 1, 0, 0, 1], [0, 1, 10, 0, 0, 0]], [[1, 3, 3, 1, 1, 0]]],
        [["conv1", "conv2", "fc1", "fc2", "fc3"], ["a", "b"], ["mix"]],
        ["the course's network", "a network with nn.Linear(10, 1) and nn.Linear(1, 10, bias=False)",
         "a network with one nn.Conv2d(3, 3, kernel_size=1, bias=False)"])


def build_net(layers: np.ndarray, names):
    """The nn.Module that a description (rows [kind, in, out, kH, kW, bias]) stands for, with these layer names."""
    import torch

    net = torch.nn.Module()
    for (k, n_in, n_out, kh, kw, bias), name in zip(np.asarray(layers).tolist(), names):
        layer = (torch.nn.Conv2d(n_in, n_out, (kh, kw), bias=bool(bias)) if k == 1
                 else torch.nn.Linear(n_in, n_out, bias=bool(bias)))
        setattr(net, str(name), layer)
    return net


def _counts(layers: np.ndarray) -> dict:
    """The right count and the usual slips, worked out from a description."""
    weights = biases = tensors = first = 0
    for k, n_in, n_out, kh, kw, bias in np.asarray(layers).tolist():
        weights += n_in * n_out * (kh * kw if k == 1 else 1)
        biases += n_out * bias
        tensors += 1 + bias
        first += n_out * (1 + bias)
    return {"right": weights + biases, "weights only": weights, "biases only": biases, "tensors": tensors,
            "first axis": first, "twice": 2 * (weights + biases)}


COUNT_HINTS = {
    "tensors": ("that is the number of parameter tensors (each layer has a weight and a bias tensor), not the "
                "number of numbers in them.",
                "add up the number of elements of each tensor (a (120, 256) weight holds 120 · 256 numbers); "
                "tensors have a method that gives it."),
    "weights only": ("that counts the weights but not the biases.",
                     "a bias is a parameter too: count every tensor that net.parameters() gives."),
    "biases only": ("that counts only the biases.", "count the weights too: every tensor that net.parameters() gives."),
    "first axis": ("that adds up only the length of each tensor's first axis (what len() gives).",
                   "a (120, 256) weight holds 120 · 256 numbers, not 120: count all the elements."),
    "twice": ("that is twice the right number: some parameters were counted twice.",
              "net.parameters() already goes through every layer; don't add each layer's parameters again "
              "(net.modules() includes the network itself)."),
}


@register("fc_count_parameters", inputs=count_inputs, title="every element of every parameter, as an int",
          hints=[(r"tuple index out of range", "a bias has one axis, a weight two (or four, for a convolution): "
                                              "count each tensor's elements without assuming how many axes it has.")])
def collect_count(inputs, count_parameters):
    import torch

    kinds, values = [], []
    for i in range(int(inputs["nets"])):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(i)
            net = build_net(inputs[f"net{i}"], inputs[f"names{i}"])
        doing(f"calling count_parameters(net) on {inputs[f'desc{i}']}")
        out = count_parameters(net)
        kinds.append(kind(out))
        try:
            values.append(float(out))
        except (TypeError, ValueError):
            values.append(np.nan)
    return {"kinds": np.array(kinds, dtype=str), "values": np.array(values, dtype=np.float64)}


register("fc_count_parameters_hidden", inputs=count_hidden_inputs, seed=1)(collect_count)


@judge("fc_count_parameters", "fc_count_parameters_hidden")
def judge_count(inputs, found):
    kinds, values = list(found["kinds"]), np.asarray(found["values"], dtype=np.float64)
    for i, (kd, v) in enumerate(zip(kinds, values)):
        desc = str(inputs[f"desc{i}"])
        counts = _counts(inputs[f"net{i}"])
        call = f"count_parameters on {desc}"
        if kd == "NoneType":
            fail(f"{call} returned None.", "end the function with `return` of the count.")
        if np.isnan(v):
            fail(f"{call} returned {KIND(kd)}, not a number.", "return the count as an int.")
        if v == counts["right"]:
            continue
        for name, (msg, hint) in COUNT_HINTS.items():
            if v == counts[name]:
                fail(f"{call} returned {v:,.0f}, expected {counts['right']:,}: {msg}", hint)
        others = [float(values[j]) for j in range(len(values)) if j != i]
        if others and all(o == v for o in others):
            fail(f"{call} returned {v:,.0f}, expected {counts['right']:,}; it returns {v:,.0f} for every network.",
                 "count the parameters of the network you are given, not a fixed number.")
        fail(f"{call} returned {v:,.0f}, expected {counts['right']:,}.",
             "add up the number of elements of every tensor in net.parameters(), weights and biases.")
    for i, (kd, v) in enumerate(zip(kinds, values)):
        if kd not in INT_KINDS:
            fail(f"count_parameters on {inputs[f'desc{i}']} returned {v:,.0f} as {KIND(kd)}; it should be an int.",
                 "a tensor's .item() gives a plain number; counts are whole numbers, so int(...) if needed."
                 if kd == "Tensor" else "return a plain Python int.")
