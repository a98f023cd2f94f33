"""Lesson 1 (c): to_tensors(images, labels) -> (x, y) tensors; judged on how it uses the notebook's own
normalize and add_channel, whose mistakes cost their own checks (``_watching``)."""
from __future__ import annotations

import contextlib

import numpy as np

from coursekit.checks import Found, describe, doing, fail, fmt_shape, judge, kind, register, where_differs
from coursekit.checks.stand_in import namespace_of, standing_in

from .common import images_for


def to_tensors_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    return {"images": images_for(seed, 6), "labels": rng.permutation(10)[:6].astype(np.int64)}


def to_tensors_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 101)
    return {"images": images_for(seed + 100, 7), "labels": rng.integers(0, 10, size=7).astype(np.int64)}


@register("data_to_tensors", inputs=to_tensors_inputs,
          title="x: the images through add_channel and normalize, as a tensor; y: the labels, an int64 tensor")
def collect_to_tensors(inputs, to_tensors):
    images, labels = inputs["images"], inputs["labels"]
    doing(f"calling to_tensors(images, labels) with images {fmt_shape(images.shape)} uint8 "
          f"and labels {fmt_shape(labels.shape)} int64")
    with _watching(to_tensors, ("add_channel", "normalize")) as returned:
        result = to_tensors(images, labels)
    data = {"result.kind": kind(result)}
    if isinstance(result, (tuple, list)):
        data["result.len"] = len(result)
        if len(result) == 2:
            describe(result[0], "x", data)
            describe(result[1], "y", data)
    if all(returned[name] for name in ("add_channel", "normalize")):   # both used: x is their composition
        describe(returned["last"][-1], "own", data)
    elif returned["normalize"]:                    # normalize used, the channel axis added by hand
        describe(returned["normalize"][-1], "norm", data)
    return data


@contextlib.contextmanager
def _watching(to_tensors, names):
    """While to_tensors runs, record what the notebook's own functions ``names`` return to it:
    {name: [outputs]} and "last": the outputs of whichever returned last.

    to_tensors is judged on how it uses the notebook's add_channel and normalize: their own
    mistakes cost their own checks' points, not to_tensors' too. Nothing extra is called (a
    normalize that never returns would hang the check): the notebook's functions are wrapped, in
    the namespace to_tensors reads them from, for this call only (``standing_in``, with a spy
    for a stand-in).
    """
    returned: dict = {n: [] for n in (*names, "last")}

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            returned[name].append(out)
            returned["last"].append(out)
            return out
        return wrapped

    namespace = namespace_of(to_tensors) or {}
    with contextlib.ExitStack() as stack:
        for name in names:
            if callable(namespace.get(name)):
                stack.enter_context(standing_in(to_tensors, name, spy(name, namespace[name])))
        yield returned


def from_own_pipeline(found) -> bool:
    """x is exactly what the notebook's own functions gave to_tensors: add_channel and normalize
    both used ("own"), or normalize's output with the channel axis added by to_tensors ("norm")."""
    if "x.value" not in found:
        return False
    x = np.asarray(found["x.value"], dtype=np.float64)
    for name in ("own", "norm"):
        if f"{name}.value" not in found:
            continue
        own = np.asarray(found[f"{name}.value"], dtype=np.float64)
        if name == "norm" and own.ndim == 3:
            own = own[:, None]                                   # (N, 28, 28) -> (N, 1, 28, 28)
        same_dtype = str(found.get("x.dtype")).replace("torch.", "") == str(found.get(f"{name}.dtype")).replace("torch.", "")
        if own.shape == x.shape and same_dtype and bool(np.allclose(own, x, atol=1e-6, rtol=0)):
            return True
    return False


register("data_to_tensors_hidden", inputs=to_tensors_hidden_inputs, seed=1)(collect_to_tensors)


def _judge_x_values(images, x) -> None:
    """x's values are images / 255 with the channel axis, and its dtype float32."""
    xv = np.asarray(x.value, dtype=np.float64)
    expected = images[:, None].astype(np.float64) / 255
    if xv.max() > 1.0 + 1e-6:
        fail(f"x has values up to {xv.max():g}; they should lie in [0, 1].",
             "call normalize(...) on the images before converting them.")
    if not np.allclose(xv, expected, atol=1e-6, rtol=0):
        if np.allclose(xv, images[:, None] / 256.0, atol=1e-6):
            fail("x maps 255 to 0.996: the pixels were divided by 256.",
                 "pixels go up to 255: divide by 255 (your normalize, exercise b, does it once it passes its check).")
        fail(f"x has wrong values, {where_differs(xv, expected)}.",
             "x should be normalize(add_channel(images)) as a tensor, image order unchanged.")
    x.need_dtype("torch.float32", hint={
        "torch.float64": "torch.from_numpy keeps NumPy's float64; the model's weights are float32, so "
                         "make sure normalize returns float32 (or call .float()).",
    }.get(x.dtype, "the model wants float32 inputs: .float() converts."))


@judge("data_to_tensors", "data_to_tensors_hidden")
def judge_to_tensors(inputs, found):
    images, labels = inputs["images"], inputs["labels"]
    n = len(images)
    if found["result.kind"] not in ("tuple", "list") or found.get("result.len") != 2:
        got = found["result.kind"] + (f" of length {found['result.len']}" if "result.len" in found else "")
        fail(f"to_tensors(images, labels) should return a pair (x, y), but returned a {got}.",
             "end with `return x, y`.")
    x = Found(found, "x", "x, the first thing to_tensors returns,")
    y = Found(found, "y", "y, the second thing to_tensors returns,")
    x.need_kind("Tensor", hint="convert the NumPy array with torch.from_numpy(...) (or torch.tensor(...)).")
    if not from_own_pipeline(found):   # else normalize's or add_channel's own check reports their mistake
        want = (n, 1, 28, 28)
        x.need_shape(want, hint="call add_channel(images) first: the network wants a channel axis."
                     if x.shape == (n, 28, 28) else f"x must be {fmt_shape(want)}: images, channel, rows, columns.")
        _judge_x_values(images, x)
    y.need_kind("Tensor", hint="convert the labels to a tensor too (torch.from_numpy or torch.tensor).")
    y.need_shape((n,), hint="one label per image: don't add an axis to the labels.")
    if y.dtype != "torch.int64":
        fail(f"y should have dtype torch.int64, but it has dtype {y.dtype}.",
             "CrossEntropyLoss (lesson 4) wants the labels as class numbers of dtype int64 ('long'); "
             "torch.FloatTensor(...) or .float() makes floats; torch.from_numpy keeps NumPy's int64 (.long() converts).")
    if not np.array_equal(np.asarray(y.value), labels):
        fail(f"y does not hold the labels in their order: {where_differs(y.value, labels)}.",
             "y[i] must be the label of image i: convert labels without reordering them.")
    if x.requires_grad:
        fail("x requires a gradient, but it is data, not a weight.", "create it without requires_grad=True.")
