"""Lesson 5 (a): predict(net, x) -> (N,) int64 classes and (N, 10) probabilities, on the table network."""
from __future__ import annotations

import numpy as np

from coursekit.checks import Found, describe, doing, fail, fmt_shape, judge, register, where_differs
from .common import (NUM_CLASSES, judge_no_graph, record_notes, record_weights, seeded_net, table_net,
                     tagged_images)


def _table(rng, n: int) -> np.ndarray:
    """(n, 10) float32 logits whose largest entry is clear (at least 0.5 above the next)."""
    table = rng.normal(0, 1.5, size=(n, NUM_CLASSES))
    best = rng.integers(0, NUM_CLASSES, size=n)
    table[np.arange(n), best] = table.max(axis=1) + rng.uniform(0.5, 3, size=n)
    return table.astype(np.float32)


def predict_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 50)
    return {"model": "table", "x": tagged_images(rng, 7), "table": _table(rng, 7), "seed": seed}


def predict_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 150)
    return {"model": "net", "x": tagged_images(rng, 13), "seed": seed}


@register("eval_predict", inputs=predict_inputs,
          title="(N, 10) logits -> (N,) int64 digits, the argmax over the classes, without a graph")
def collect_predict(inputs, predict, Net):
    import torch

    notes, data = {}, {}
    net = table_net(inputs["table"], notes) if inputs["model"] == "table" else seeded_net(Net, inputs["seed"], notes)
    net.train()
    if inputs["model"] == "net":
        record_weights(net, data)
    x = torch.from_numpy(inputs["x"].copy())
    doing(f"calling predict(net, x) with x {fmt_shape(x.shape)} float32")
    with torch.random.fork_rng(devices=[]):
        out = predict(net, x)
    describe(out, "out", data)
    record_notes(notes, data)
    return data


register("eval_predict_hidden", inputs=predict_hidden_inputs, seed=1)(collect_predict)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@judge("eval_predict", "eval_predict_hidden")
def judge_predict(inputs, found):
    n = len(inputs["x"])
    out = Found(found, "out", "predict(net, x)")
    if out.kind in ("max", "min", "tuple", "list"):
        fail(f"predict(net, x) returned a {'pair' if out.kind in ('max', 'min') else out.kind}; expected one (N,) "
             f"tensor of class indices.",
             "torch.max(scores, dim=1) returns a pair (values, indices): return only the indices (or use argmax).")
    out.need_kind("Tensor", hint={
        "ndarray": "return the torch tensor of class indices; no need to convert it to NumPy.",
        "NoneType": "end with a return statement.",
    }.get(out.kind, ""))
    if out.shape != (n,):
        hints = {
            (NUM_CLASSES,): f"that is an argmax over dim 0, the {n} images: for each of the 10 classes it picks the "
                            f"image with the highest score. You want, for each image, the class: dim 1.",
            (): "argmax without a dim flattens the (N, 10) scores and returns one position in the whole table; "
                "take it over dim 1, the classes.",
            (n, NUM_CLASSES): "those are still 10 numbers per image (scores or probabilities): the prediction is "
                              "the position of the largest one, an argmax over dim 1.",
            (n, 1): "keepdim=True keeps an axis of length 1: leave it out to get shape (N,).",
            (1, n): "the result has an extra axis: leave out unsqueeze/keepdim and return shape (N,).",
        }
        out.need_shape((n,), hint=hints.get(out.shape, "one predicted class per image: an argmax over dim 1."))
    if out.dtype != "torch.int64":
        v = np.asarray(out.value, dtype=np.float64)
        if out.dtype and "float" in out.dtype and np.all(v == np.round(v)) and v.min() >= 0 and v.max() < NUM_CLASSES:
            fail(f"predict(net, x) returned the classes as {out.dtype}; expected int64.",
                 "argmax returns int64 indices: return them without converting them.")
        if out.dtype and "float" in out.dtype:
            fail(f"predict(net, x) returned {out.dtype} values; expected the class indices, int64.",
                 "torch.max(scores, dim=1) returns a pair (values, indices): the values are the largest scores, "
                 "the indices are the classes. argmax gives the indices directly.")
        out.need_dtype("torch.int64", hint="argmax returns int64 indices: return them unchanged.")
    if inputs["model"] == "table":
        want = inputs["table"].argmax(axis=1)
        got = np.asarray(out.value)
        if not np.array_equal(got, want):
            fail(f"predict(net, x) returned the wrong classes: {where_differs(got, want)}.",
                 "the predicted class of image i is the position of its largest score: argmax over dim 1 of "
                 "net(x).")
    judge_no_graph(found, "predict(net, x)")
