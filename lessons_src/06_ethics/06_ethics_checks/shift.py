"""Lesson 6 (b): shift(images, dx, dy), judged against NumPy padding and cropping, naming the
usual slips (wrap-around, swapped axes, the wrong direction)."""
from __future__ import annotations

import numpy as np

from typing import Optional
from coursekit.checks import Found, describe, doing, fail, fmt_shape, judge, register, where_differs


def sparse_images(rng, n: int) -> np.ndarray:
    """(n, 28, 28) uint8: about a third of the pixels lit (1..255), up to the edges, so that a
    pixel moved the wrong way, or wrapped around, shows."""
    images = rng.integers(1, 256, size=(n, 28, 28)).astype(np.uint8)
    images[rng.random((n, 28, 28)) < 0.65] = 0
    return images


SHIFTS = ((3, 0), (0, -2), (-4, 5), (2, 3), (0, 0))
HIDDEN_SHIFTS = ((5, -1), (-1, -6), (-7, 0), (1, 1), (0, 27), (-27, 3))


def shift_inputs(seed: int) -> dict:
    return {"images": sparse_images(np.random.default_rng(seed), 4), "shifts": np.array(SHIFTS, dtype=np.int64)}


def shift_hidden_inputs(seed: int) -> dict:
    return {"images": sparse_images(np.random.default_rng(seed + 100), 3),
            "shifts": np.array(HIDDEN_SHIFTS, dtype=np.int64)}


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
