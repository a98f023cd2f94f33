"""Lesson 6 (a): per_class_accuracy(y_true, y_pred) -> (10,) float, judged against the fraction
computed here and the usual slips (precision, counts, percentages, the overall accuracy)."""
from __future__ import annotations

import numpy as np

from coursekit.checks import Found, describe, doing, fail, fmt_shape, judge, register

NUM_CLASSES = 10


def _label_pairs(seed: int, absent: int, low: int, high: int) -> dict:
    """y_true, y_pred: (N,) int64 digits. Digit ``absent`` never occurs in y_true (it is predicted
    a few times); every other digit occurs between ``low`` and ``high`` times, with an accuracy of
    its own (all different, one of them 1.0 and none 0), so each usual mistake gives other numbers."""
    rng = np.random.default_rng(seed)
    present = [d for d in range(NUM_CLASSES) if d != absent]
    while True:
        counts = rng.integers(low, high + 1, size=len(present))
        right = np.array([rng.integers(1, c) for c in counts])            # 1 .. count-1 right
        right[0] = counts[0]                                             # one digit always right
        acc = right / counts
        if len(np.unique(np.round(acc, 9))) == len(acc):
            break
    y_true, y_pred = [], []
    for digit, count, ok in zip(present, counts, right):
        y_true += [digit] * int(count)
        others = [d for d in range(NUM_CLASSES) if d != digit]
        wrong = rng.choice(others, size=int(count - ok))
        if len(wrong):
            wrong[: max(1, len(wrong) // 3)] = absent                   # the absent digit is predicted too
        y_pred += [digit] * int(ok) + [int(w) for w in wrong]
    order = rng.permutation(len(y_true))
    return {"y_true": np.asarray(y_true, dtype=np.int64)[order], "y_pred": np.asarray(y_pred, dtype=np.int64)[order],
            "absent": absent}


def per_class_inputs(seed: int) -> dict:
    return _label_pairs(seed, absent=7, low=3, high=9)


def per_class_hidden_inputs(seed: int) -> dict:
    return _label_pairs(seed + 100, absent=0, low=20, high=60)


@register("ethics_per_class", inputs=per_class_inputs,
          title="for each true digit: the fraction of its images predicted right (NaN if it never occurs)",
          hints=[(r"ZeroDivisionError|division by zero",
                  "a digit that never occurs in y_true has no images to be right or wrong about: give it "
                  "NaN (np.nan) instead of dividing by zero."),
                 (r"index 1?\d is out of bounds|out of bounds for axis",
                  "the digits are 0..9, so the result has positions 0..9; `range(10)` counts 0..9.")])
def collect_per_class(inputs, per_class_accuracy):
    y_true, y_pred = inputs["y_true"].copy(), inputs["y_pred"].copy()
    doing(f"calling per_class_accuracy(y_true, y_pred) with y_true and y_pred of shape "
          f"{fmt_shape(y_true.shape)} int64")
    out = per_class_accuracy(y_true, y_pred)
    data = describe(out, "out", {})
    if isinstance(out, (list, tuple)):
        data["out.len"] = len(out)
    data["input_unchanged"] = bool(np.array_equal(y_true, inputs["y_true"])
                                   and np.array_equal(y_pred, inputs["y_pred"]))
    return data


register("ethics_per_class_hidden", inputs=per_class_hidden_inputs, seed=1)(collect_per_class)


# --- judges: per_class_accuracy --------------------------------------------------------


def _same(a, b) -> bool:
    """Same shape and values (NaN equal to NaN)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, atol=1e-6, rtol=0, equal_nan=True))


def _fmt(values) -> str:
    return "[" + ", ".join("nan" if np.isnan(v) else f"{v:.3g}" for v in np.asarray(values, dtype=np.float64)) + "]"


def expected_per_class(y_true, y_pred) -> np.ndarray:
    """(10,) float64: for each digit d, (images of d predicted d) / (images of d); NaN where none."""
    out = np.full(NUM_CLASSES, np.nan)
    for d in range(NUM_CLASSES):
        total = np.count_nonzero(y_true == d)
        if total:
            out[d] = np.count_nonzero((y_true == d) & (y_pred == d)) / total
    return out


@judge("ethics_per_class", "ethics_per_class_hidden")
def judge_per_class(inputs, found):
    y_true, y_pred, absent = inputs["y_true"], inputs["y_pred"], int(inputs["absent"])
    what = "per_class_accuracy(y_true, y_pred)"
    out = Found(found, "out", what)
    out.need_kind("ndarray", hint={
        "list": "build the values in a list if you like, but return a NumPy array: np.array(values).",
        "tuple": "return a NumPy array: np.array(values).",
        "Tensor": "this lesson works on NumPy arrays: return a NumPy array (tensor.numpy() converts).",
        "NoneType": "end with `return ...` of the array of 10 accuracies.",
        "float": "return one accuracy per digit (10 numbers), not one number for all of them.",
    }.get(out.kind, ""))
    if out.shape != (NUM_CLASSES,):
        hint = "one value per digit 0..9, in that order, even for a digit that never occurs (NaN)."
        if out.shape == (NUM_CLASSES - 1,):
            hint = (f"digit {absent} never occurs in this y_true, so looping over np.unique(y_true) skips it. "
                    f"Loop over all ten digits, 0..9, and give a missing one NaN.")
        elif out.shape == ():
            hint = "return one accuracy per digit (10 numbers), not one number for all of them."
        out.need_shape((NUM_CLASSES,), hint=hint)
    v = np.asarray(out.value, dtype=np.float64)
    expected = expected_per_class(y_true, y_pred)
    present = ~np.isnan(expected)
    if not _same(v, expected):
        right = np.array([np.count_nonzero((y_true == d) & (y_pred == d)) for d in range(NUM_CLASSES)],
                         dtype=np.float64)
        predicted = np.bincount(y_pred, minlength=NUM_CLASSES).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = right / predicted
        overall = float(np.mean(y_true == y_pred))
        finite = v[np.isfinite(v)]
        if _same(v[present], precision[present]) or _same(v, precision):
            fail(f"{what} returned {_fmt(v)}: for each digit d that is (right predictions of d) / (how many "
                 f"times d was PREDICTED). Expected {_fmt(expected)}.",
                 "that is the precision of each digit. Accuracy on a digit divides by how many images of that "
                 "digit there ARE: count with y_true == d, not y_pred == d.")
        if len(finite) and np.allclose(finite, overall, atol=1e-6, rtol=0):
            fail(f"{what} returned {overall:.3g} for every digit: the overall accuracy. Expected {_fmt(expected)}.",
                 "compute the accuracy separately on the images of each digit: select them with y_true == d.")
        if _same(v[present], right[present]) or np.allclose(np.nan_to_num(v), right):
            fail(f"{what} returned the NUMBER of right predictions per digit, {_fmt(v)}; expected the fraction, "
                 f"{_fmt(expected)}.", "divide by how many images of each digit there are.")
        if _same(v[present], 100 * expected[present]):
            fail(f"{what} returned percentages, {_fmt(v)}; expected fractions between 0 and 1, {_fmt(expected)}.",
                 "don't multiply by 100: 0.95 means 95%.")
        if np.all(np.isin(v[present], (0.0, 1.0))) and not np.all(np.isin(expected[present], (0.0, 1.0))):
            fail(f"{what} returned only 0s and 1s, {_fmt(v)}; expected {_fmt(expected)}.",
                 "that is integer division (//), which rounds 9 / 10 down to 0: divide with /.")
        for off, word in ((1, "the next digit's"), (-1, "the previous digit's")):
            shifted = np.roll(expected, -off)
            idx = np.arange(NUM_CLASSES)
            keep = (idx + off >= 0) & (idx + off < NUM_CLASSES) & present & ~np.isnan(shifted)
            if keep.sum() >= 5 and _same(v[keep], shifted[keep]) and not _same(v[keep], expected[keep]):
                fail(f"{what}[d] holds {word} accuracy: the values are shifted by one position. "
                     f"Expected {_fmt(expected)}, found {_fmt(v)}.",
                     "position d of the result is digit d, for d = 0..9: `range(10)` counts 0..9, "
                     "`range(1, 11)` counts 1..10.")
        if _same(v[present], expected[present]):
            if not np.isnan(v[absent]):
                fail(f"digit {absent} never occurs in y_true, so its accuracy should be NaN (not a number), but "
                     f"{what} gives it {v[absent]:g}.",
                     "with no images of a digit there is nothing to measure, and 0 or 1 would claim a result. "
                     "np.nan marks 'no data' (and 0 / 0 with NumPy numbers gives it too).")
        bad = int(np.flatnonzero(~np.isclose(v, expected, atol=1e-6, rtol=0, equal_nan=True))[0])
        fail(f"{what} returned {_fmt(v)}; expected {_fmt(expected)} (first difference: digit {bad}, "
             f"found {v[bad]:g}, expected {expected[bad]:g}).",
             "for each digit d: among the images whose TRUE label is d, the fraction predicted d.")
    out.need_dtype("float64", hint="accuracies are fractions: make the array float64, e.g. "
                                   "np.array(values, dtype=np.float64) or .astype(np.float64).")
    if not found["input_unchanged"]:
        fail(f"{what} changed the arrays it was given.",
             "compute new arrays instead of changing y_true or y_pred in place.")
