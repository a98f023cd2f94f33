"""Lesson 6 (06_ethics): the public checks of per_class_accuracy, shift and thicken.

Each check: ``*_inputs(seed)`` builds small synthetic inputs (no data files needed), a
collector runs the student's function on them and records plain data, and the judges
below explain what is wrong. The hidden checks (``*_hidden``) reuse these collectors on
other inputs; their judges are in ``lessons_src/06_ethics/06_ethics_judges.py``.

The judges compute the expected values their own way (padding and cropping in NumPy)
and, when a result is wrong, compare it with the results of the usual mistakes
(precision instead of accuracy, wrap-around, swapped axes, averaging instead of a
maximum...) to name the likely one.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from coursekit.checks import Found, describe, doing, fail, fmt_shape, judge, register, where_differs

NUM_CLASSES = 10

# --- inputs --------------------------------------------------------------------------


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


def _sparse_images(rng, n: int) -> np.ndarray:
    """(n, 28, 28) uint8: about a third of the pixels lit (1..255), up to the edges, so that a
    pixel moved the wrong way, or wrapped around, shows."""
    images = rng.integers(1, 256, size=(n, 28, 28)).astype(np.uint8)
    images[rng.random((n, 28, 28)) < 0.65] = 0
    return images


SHIFTS = ((3, 0), (0, -2), (-4, 5), (2, 3), (0, 0))
HIDDEN_SHIFTS = ((5, -1), (-1, -6), (-7, 0), (1, 1), (0, 27), (-27, 3))


def shift_inputs(seed: int) -> dict:
    return {"images": _sparse_images(np.random.default_rng(seed), 4), "shifts": np.array(SHIFTS, dtype=np.int64)}


def shift_hidden_inputs(seed: int) -> dict:
    return {"images": _sparse_images(np.random.default_rng(seed + 100), 3),
            "shifts": np.array(HIDDEN_SHIFTS, dtype=np.int64)}


def _thicken_images(seed: int) -> np.ndarray:
    """(5, 28, 28) uint8: isolated dots of different brightness (some on the edges and corners),
    random pixels, an all-white image (a sum would overflow), a thin diagonal line (diagonal
    neighbours), and a short horizontal stroke."""
    rng = np.random.default_rng(seed)
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    for (r, c), v in zip([(0, 0), (27, 27), (0, 13), (14, 0), (27, 5), (10, 20), (10, 21), (20, 8), (5, 5)],
                         [200, 90, 255, 130, 60, 250, 100, 180, 40]):
        images[0, r, c] = v
    images[1] = _sparse_images(rng, 1)[0] // 2 + rng.integers(0, 2, size=(28, 28)).astype(np.uint8) * 100
    images[2] = 255
    for i in range(4, 24):
        images[3, i, i + 2] = 120 + (i * 37) % 136
    images[4, 13, 6:22] = rng.integers(100, 256, size=16).astype(np.uint8)
    return images


def thicken_inputs(seed: int) -> dict:
    return {"images": _thicken_images(seed)}


def thicken_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 100)
    images = _sparse_images(rng, 3)
    images[0] = 0
    images[0, 6:22, 12:15] = 230                                   # a "1", 3 pixels wide
    images[0, 6, 10:12] = 160
    return {"images": images}


# --- collectors ----------------------------------------------------------------------

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


@register("ethics_shift", inputs=shift_inputs,
          title="digits moved dx columns right and dy rows down, the uncovered pixels black, nothing wrapped around",
          hints=[(r"could not broadcast|shape mismatch",
                  "the piece you copy and the place you copy it to must have the same size. A slice like "
                  "a[:-dx] is empty when dx is 0 (-0 is 0), and a[dx:] means something else when dx is "
                  "negative: write the slice bounds so they hold for dx > 0, dx = 0 and dx < 0."),
                 (r"negative dimensions|index -?\d+ is out of bounds",
                  "work out, for dx > 0 and for dx < 0, which columns of the input survive and where "
                  "they land; max(0, ...) and min(28, ...) keep the bounds inside the image.")])
def collect_shift(inputs, shift):
    images = inputs["images"]
    data: dict = {}
    unchanged = True
    for i, (dx, dy) in enumerate(inputs["shifts"]):
        dx, dy = int(dx), int(dy)
        given = images.copy()                   # a fresh copy for each call: one call can't spoil the next
        doing(f"calling shift(images, dx={dx}, dy={dy}) with images of shape {fmt_shape(images.shape)} uint8")
        describe(shift(given, dx, dy), f"out{i}", data)
        unchanged = unchanged and given.shape == images.shape and given.dtype == images.dtype \
            and bool(np.array_equal(given, images))
    data["input_unchanged"] = bool(unchanged)
    return data


register("ethics_shift_hidden", inputs=shift_hidden_inputs, seed=1)(collect_shift)


@register("ethics_thicken", inputs=thicken_inputs,
          title="each pixel becomes the brightest of its 3 x 3 neighbourhood; shape and dtype kept",
          hints=[(r"not implemented for 'Byte'|\"max_pool2d\" not implemented|Input type .* and weight type",
                  "PyTorch's pooling works on float tensors: convert the uint8 pixels to float first, and "
                  "back to uint8 at the end."),
                 (r"Expected 3D \(unbatched\) or 4D \(batched\)|expected 3D or 4D",
                  "max_pool2d wants (N, C, H, W): add a channel axis first, and remove it at the end.")])
def collect_thicken(inputs, thicken):
    images = inputs["images"]
    before = images.copy()
    doing(f"calling thicken(images) with images of shape {fmt_shape(images.shape)} uint8")
    data = describe(thicken(images), "out", {})
    data["input_unchanged"] = bool(images.shape == before.shape and images.dtype == before.dtype
                                   and np.array_equal(images, before))
    return data


register("ethics_thicken_hidden", inputs=thicken_hidden_inputs, seed=1)(collect_thicken)

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


# --- judges: shift -------------------------------------------------------------------


def moved(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``images`` moved dx columns right and dy rows down, black where nothing came in."""
    n, h, w = images.shape
    framed = np.pad(images, ((0, 0), (h, h), (w, w)))
    return framed[:, h - dy: 2 * h - dy, w - dx: 2 * w - dx]


def _which_move(out: np.ndarray, images: np.ndarray) -> Optional[tuple]:
    """(kind, a, b) when ``out`` is ``images`` moved by a columns and b rows: kind 'zero' (black fill),
    'wrap' (np.roll's wrap-around); None otherwise."""
    n, h, w = images.shape
    framed = np.pad(images, ((0, 0), (h, h), (w, w)))
    tiled = np.tile(images, (1, 2, 2))
    for kind_, big in (("zero", framed), ("wrap", tiled)):
        for a in range(-w + 1, w):
            for b in range(-h + 1, h):
                if kind_ == "zero":
                    window = big[:, h - b: 2 * h - b, w - a: 2 * w - a]
                else:
                    window = big[:, (-b) % h: (-b) % h + h, (-a) % w: (-a) % w + w]
                if np.array_equal(out, window):
                    return kind_, a, b
    return None


def _move_words(a: int, b: int) -> str:
    horizontal = f"{abs(a)} column{'s' if abs(a) != 1 else ''} {'right' if a > 0 else 'left'}" if a else ""
    vertical = f"{abs(b)} row{'s' if abs(b) != 1 else ''} {'down' if b > 0 else 'up'}" if b else ""
    return " and ".join(p for p in (horizontal, vertical) if p) or "not at all"


@judge("ethics_shift", "ethics_shift_hidden")
def judge_shift(inputs, found):
    images = inputs["images"]
    for i, (dx, dy) in enumerate(inputs["shifts"]):
        dx, dy = int(dx), int(dy)
        what = f"shift(images, dx={dx}, dy={dy})"
        out = Found(found, f"out{i}", what)
        out.need_kind("ndarray", hint={
            "Tensor": "shift works on NumPy arrays and should return one (tensor.numpy() converts).",
            "NoneType": "end with `return ...` of the new array.",
        }.get(out.kind, ""))
        if out.shape != images.shape:
            out.need_shape(images.shape, hint="shifting moves the digit inside its 28 x 28 square: the result has "
                                              "exactly the shape of the input (no padding left around it).")
        v = np.asarray(out.value)
        expected = moved(images, dx, dy)
        if not np.array_equal(v.astype(np.float64), expected.astype(np.float64)):
            seen = _which_move(v.astype(np.float64), images.astype(np.float64))
            want = f"{_move_words(dx, dy)}"
            if seen is not None:
                kind_, a, b = seen
                if (a, b) == (0, 0):
                    fail(f"{what} returned the images unmoved; expected them moved {want}.",
                         "return the moved copy, not the input.")
                if kind_ == "wrap":
                    fail(f"{what}: the pixels pushed off one edge came back in on the opposite edge (wrap-around, "
                         f"as np.roll does). Expected the digit moved {want} with black (0) coming in.",
                         "np.roll wraps around: a digit moved off the right edge reappears on the left. Start from "
                         "a black image (np.zeros_like) and copy the part of the digit that stays inside.")
                if (a, b) == (dy, dx):
                    fail(f"{what} moved the digit {_move_words(a, b)}; expected {want}: rows and columns are swapped.",
                         "images[n, row, column]: axis 1 is the row (up/down, dy), axis 2 the column "
                         "(left/right, dx).")
                if (a, b) == (-dx, -dy) or (a, b) == (-dx, dy) or (a, b) == (dx, -dy):
                    fail(f"{what} moved the digit {_move_words(a, b)}; expected {want}: a shift goes the wrong way.",
                         "positive dx moves the digit to the right (towards larger column numbers), positive dy "
                         "moves it down (towards larger row numbers, row 0 is the top).")
                fail(f"{what} moved the digit {_move_words(a, b)}; expected {want}.",
                     "check the slice bounds: each one should be off by exactly dx (or dy), no more and no less.")
            fail(f"{what} returned wrong pixels, {where_differs(v, expected)}; expected the digit moved {want}, "
                 f"black (0) where nothing came in.",
                 "pixel (row r, column c) of the input should land on (r + dy, c + dx) when that is inside the "
                 "image; everything else is 0.")
        if out.dtype != str(images.dtype):
            out.need_dtype(str(images.dtype), hint="np.zeros(shape) makes float64 zeros: np.zeros_like(images) keeps "
                                                   "the input's dtype, uint8.")
    if not found["input_unchanged"]:
        fail("shift(images, dx, dy) changed the array it was given.",
             "write into a new array (np.zeros_like(images)), not into images itself.")


# --- judges: thicken -----------------------------------------------------------------


def _windows(images: np.ndarray, offsets) -> np.ndarray:
    """(len(offsets), N, H, W): ``images`` seen from each (dr, dc) offset, black outside."""
    n, h, w = images.shape
    framed = np.pad(images.astype(np.float64), ((0, 0), (2, 2), (2, 2)))
    return np.stack([framed[:, 2 + dr: 2 + dr + h, 2 + dc: 2 + dc + w] for dr, dc in offsets])


SQUARE = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]


def expected_thicken(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8: each pixel the brightest of the 3 x 3 square around it (outside the image: black)."""
    return _windows(images, SQUARE).max(axis=0).astype(np.uint8)


@judge("ethics_thicken", "ethics_thicken_hidden")
def judge_thicken(inputs, found):
    images = inputs["images"]
    n = len(images)
    what = "thicken(images)"
    out = Found(found, "out", what)
    out.need_kind("ndarray", hint={
        "Tensor": "if you used PyTorch, convert the result back: .numpy(), then to uint8.",
        "NoneType": "end with `return ...` of the new array.",
    }.get(out.kind, ""))
    if out.shape != images.shape:
        hints = {
            (n, 1, 28, 28): "remove the channel axis you added for PyTorch: the result has the input's shape "
                            "(N, 28, 28).",
            (n, 10, 10): "a 3 x 3 pooling window moved 3 pixels at a time (max_pool2d's stride defaults to the "
                         "kernel size). Move it 1 pixel at a time: stride=1.",
            (n, 1, 10, 10): "a 3 x 3 pooling window moved 3 pixels at a time (max_pool2d's stride defaults to the "
                            "kernel size). Move it 1 pixel at a time, and remove the channel axis at the end.",
            (n, 9, 9): "a 3 x 3 pooling window moved 3 pixels at a time, without padding: use stride 1 and padding 1.",
            (n, 26, 26): "a 3 x 3 window centred on an edge pixel sticks out of the image, so without padding the "
                         "result loses a pixel on every side. Pad by 1 (padding=1).",
            (n, 1, 26, 26): "pad by 1 (padding=1) so the result keeps 28 x 28, and remove the channel axis at the end.",
            (n, 27, 27): "that is a 2 x 2 window; thicken uses a 3 x 3 one, centred on the pixel, with padding 1.",
            (n, 29, 29): "that is a 2 x 2 window with padding 1; thicken uses a 3 x 3 one, centred on the pixel.",
        }
        out.need_shape(images.shape, hint=hints.get(out.shape, "the result has exactly the shape of the input."))
    v = np.asarray(out.value, dtype=np.float64)
    expected = expected_thicken(images).astype(np.float64)
    if not np.allclose(v, expected, atol=1e-6):
        win = _windows(images, SQUARE)
        plus = _windows(images, [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]).max(axis=0)
        rows = _windows(images, [(0, -1), (0, 0), (0, 1)]).max(axis=0)
        cols = _windows(images, [(-1, 0), (0, 0), (1, 0)]).max(axis=0)
        big = _windows(images, [(dr, dc) for dr in range(-2, 3) for dc in range(-2, 3)]).max(axis=0)
        mean9 = win.mean(axis=0)
        total = win.sum(axis=0)
        inner = (slice(None), slice(1, -1), slice(1, -1))
        wrapped = np.max([np.roll(images.astype(np.float64), (dr, dc), axis=(1, 2)) for dr, dc in SQUARE], axis=0)
        if np.allclose(v, images):
            fail(f"{what} returned the images unchanged.",
                 "each pixel should become the maximum of its 3 x 3 neighbourhood.")
        if np.allclose(v, mean9, atol=1) or np.allclose(v[inner], mean9[inner], atol=1):
            fail(f"{what} averages each 3 x 3 neighbourhood: that blurs the strokes (an isolated dot of 200 "
                 f"becomes about 22) instead of thickening them.",
                 "take the MAXIMUM of the 9 pixels (max-pooling), not their mean (average pooling).")
        if np.allclose(v, total % 256) or np.allclose(v, np.minimum(total, 255)) or np.allclose(v, total):
            fail(f"{what} adds up the 9 pixels of each neighbourhood; a white area (255) then overflows "
                 f"or saturates, and bright and faint strokes mix.",
                 "take the maximum of the 9 pixels, not their sum.")
        if np.allclose(v, plus):
            fail(f"{what} takes the maximum over the pixel and its 4 neighbours (up, down, left, right), "
                 f"but not the diagonal ones.", "use the whole 3 x 3 square: 9 pixels, corners included.")
        if np.allclose(v, rows) or np.allclose(v, cols):
            fail(f"{what} thickens only {'sideways' if np.allclose(v, rows) else 'up and down'}: the maximum is "
                 f"taken along one axis only.", "use the whole 3 x 3 square: 3 rows and 3 columns.")
        if np.allclose(v, big):
            fail(f"{what} thickens too much: each pixel became the maximum of a 5 x 5 square.",
                 "a 3 x 3 window, centred on the pixel (one pixel on each side): applied once.")
        if np.allclose(v, wrapped):
            fail(f"{what} lets pixels on one edge thicken into the opposite edge (wrap-around, as np.roll does).",
                 "outside the image is black: pad with zeros instead of rolling.")
        if np.allclose(v[inner], expected[inner]):
            fail(f"{what} is right inside the image but wrong on its outer border, {where_differs(v, expected)}.",
                 "near the edge the 3 x 3 window sticks out of the image; treat the outside as black (pad with 0) "
                 "and keep the edge pixels' own neighbourhood.")
        fail(f"{what} returned wrong pixels, {where_differs(v, expected)}.",
             "each pixel (r, c) becomes the largest value among the pixels at rows r-1..r+1 and columns c-1..c+1 "
             "that lie inside the image.")
    if out.dtype != str(images.dtype):
        out.need_dtype(str(images.dtype), hint="the pixels are still whole numbers 0..255: convert back with "
                                               ".astype(np.uint8) (for a tensor: .numpy() first).")
    if not found["input_unchanged"]:
        fail(f"{what} changed the array it was given.", "compute a new array instead of changing images in place.")
