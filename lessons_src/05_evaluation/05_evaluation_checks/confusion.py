"""Lesson 5 (c): confusion_matrix(y_true, y_pred) -> (10, 10) counts, rows the true digits."""
from __future__ import annotations

import numpy as np

from coursekit.checks import Found, describe, doing, fail, fmt_shape, judge, register, where_differs
from .common import NUM_CLASSES


def confusion_inputs(seed: int) -> dict:
    """40 pairs with repeated (true, predicted) pairs and an asymmetric confusion; and 12 pairs of 4 classes."""
    rng = np.random.default_rng(seed + 52)
    y_true = rng.integers(0, NUM_CLASSES, size=40)
    y_pred = y_true.copy()
    flip = rng.random(40) < 0.4
    y_pred[flip] = rng.integers(0, NUM_CLASSES, size=int(flip.sum()))
    y_true[:3], y_pred[:3] = 3, 8                           # a repeated mistake, never the other way round
    y_true[3], y_pred[3] = 9, 4                             # a 9 taken for a 4, and no 9 ever predicted right:
    y_pred[(y_true == 9) & (y_pred == 9)] = 7               # the last row and column are not all empty, but [9, 9] is
    small_true = rng.integers(0, 4, size=12)
    small_pred = np.where(rng.random(12) < 0.5, small_true, rng.integers(0, 4, size=12))
    small_true[:2], small_pred[:2] = 1, 2
    small_pred[(small_true == 3) & (small_pred == 3)] = 0
    return {"y_true": y_true.astype(np.int64), "y_pred": y_pred.astype(np.int64),
            "small_true": small_true.astype(np.int64), "small_pred": small_pred.astype(np.int64)}


def confusion_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 152)
    y_true = rng.integers(0, NUM_CLASSES, size=300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, NUM_CLASSES, size=300))
    small_true = rng.integers(0, 3, size=9)
    small_pred = rng.integers(0, 3, size=9)
    return {"y_true": y_true.astype(np.int64), "y_pred": y_pred.astype(np.int64),
            "small_true": small_true.astype(np.int64), "small_pred": small_pred.astype(np.int64)}


@register("eval_confusion", inputs=confusion_inputs,
          title="(10, 10) int64 counts, rows the true digit, columns the prediction",
          hints=[(r"cannot reshape", "np.bincount returns only as many counts as its largest value + 1: pass "
                                     "minlength=num_classes * num_classes."),
                 (r"out of bounds", "the matrix needs num_classes rows and columns, one per class.")])
def collect_confusion(inputs, confusion_matrix):
    data = {}
    t, p = inputs["y_true"].copy(), inputs["y_pred"].copy()
    doing(f"calling confusion_matrix(y_true, y_pred) with y_true and y_pred {fmt_shape(t.shape)} int64 arrays")
    describe(confusion_matrix(t, p), "full", data)
    data["unchanged"] = bool(np.array_equal(t, inputs["y_true"]) and np.array_equal(p, inputs["y_pred"]))
    t, p = inputs["small_true"].copy(), inputs["small_pred"].copy()
    k = int(max(t.max(), p.max())) + 1
    doing(f"calling confusion_matrix(y_true, y_pred, num_classes={k}) with y_true and y_pred "
          f"{fmt_shape(t.shape)} int64 arrays of labels 0..{k - 1}")
    describe(confusion_matrix(t, p, num_classes=k), "small", data)
    data["small.classes"] = k
    return data


register("eval_confusion_hidden", inputs=confusion_hidden_inputs, seed=1)(collect_confusion)


def counts(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) int64: entry [t, p] = how many samples of true class t were predicted as p."""
    out = np.zeros((k, k), dtype=np.int64)
    np.add.at(out, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return out


@judge("eval_confusion", "eval_confusion_hidden")
def judge_confusion(inputs, found):
    cases = [("full", inputs["y_true"], inputs["y_pred"], NUM_CLASSES, "confusion_matrix(y_true, y_pred)")]
    k = int(found["small.classes"])
    cases.append(("small", inputs["small_true"], inputs["small_pred"], k,
                  f"confusion_matrix(y_true, y_pred, num_classes={k})"))
    for tag, t, p, classes, what in cases:
        out = Found(found, tag, what)
        out.need_kind("ndarray", hint={
            "Tensor": "return a NumPy array (a tensor's .numpy() converts it).",
            "NoneType": "end with a return statement.",
            "list": "build the matrix as a NumPy array, e.g. starting from np.zeros((num_classes, num_classes), ...).",
        }.get(out.kind, ""))
        if out.shape != (classes, classes):
            hint = ("use the num_classes argument for the size, not a fixed 10." if out.shape == (NUM_CLASSES,) * 2
                    else "one row and one column per class: shape (num_classes, num_classes).")
            out.need_shape((classes, classes), hint=hint)
        if not out.dtype or not out.dtype.startswith(("int", "uint")):
            fail(f"{what} has dtype {out.dtype}; counts are whole numbers: expected int64.",
                 "np.zeros makes float64 unless you pass dtype=np.int64." if "float" in str(out.dtype) else
                 "create the matrix with dtype=np.int64.")
        got = np.asarray(out.value).astype(np.int64)
        want = counts(t, p, classes)
        if np.array_equal(got, want):
            continue
        head = f"{what} has wrong counts, {where_differs(got, want)}."
        if np.array_equal(got, want.T):
            fail(f"{what} is transposed: its rows are the predictions and its columns the true labels.",
                 "entry [t, p] counts the samples of true class t predicted as p: the row is the true label.")
        if np.array_equal(got, (want > 0).astype(np.int64)):
            fail(head + " Every (true, predicted) pair is counted at most once.",
                 "fancy-index assignment such as m[y_true, y_pred] += 1 adds 1 only once per distinct pair, even "
                 "when the pair occurs many times; count in a loop, or with np.add.at.")
        if np.array_equal(got, np.diag(np.diag(want))):
            fail(head + " Only the correct predictions (the diagonal) were counted.",
                 "count every sample: the mistakes go off the diagonal, at [true, predicted].")
        if got.sum() != len(t):
            fail(head + f" The entries add up to {int(got.sum())}, but there are {len(t)} samples.",
                 "every sample adds exactly 1, at [true label, predicted label].")
        fail(head, "entry [t, p] is the number of samples whose true label is t and whose prediction is p.")
    if not found["unchanged"]:
        fail("confusion_matrix changed the arrays it was given.", "don't modify y_true or y_pred.")
