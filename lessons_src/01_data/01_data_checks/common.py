"""Lesson 1's shared parts: the synthetic digits the checks run on, calling a function on them,
and the judge that the result is the same kind of array."""
from __future__ import annotations

import numpy as np

from coursekit.checks import Found, describe, doing, fmt_shape


def images_for(seed: int, n: int) -> np.ndarray:
    """(n, 28, 28) uint8: image 0 holds every value 0..255, image 1 is faint (brightest 200),
    the last one (if n > 2) is all black, the rest are random."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0] = (np.arange(28 * 28) % 256).reshape(28, 28)[:, ::-1]        # 0..255, not symmetric
    if n > 1:
        images[1] = rng.integers(0, 201, size=(28, 28), dtype=np.uint8)
        images[1, 3, 5] = 200                                              # max exactly 200
    if n > 2:
        images[-1] = 0
    return images


def image_call(fn, name: str, inputs: dict) -> dict:
    images = inputs["images"]
    before = images.copy()
    doing(f"calling {name}(images) with images of shape {fmt_shape(images.shape)} uint8")
    out = fn(images)
    data = describe(out, "out", {})
    data["input_unchanged"] = bool(images.shape == before.shape and images.dtype == before.dtype
                                   and np.array_equal(images, before))
    return data


def same_kind_of_array(out: Found, fn: str, what: str) -> None:
    out.need_kind("ndarray", hint=(
        f"{fn} works on NumPy arrays and should return one; the conversion to torch tensors is "
        f"to_tensors's job." if out.kind == "Tensor" else
        f"{fn} should end with `return ...` of the {what} array." if out.kind == "NoneType" else ""))
