"""Lesson 1 (b): normalize(images) -> float32 in [0, 1], pixel / 255."""
from __future__ import annotations

import numpy as np

from coursekit.checks import Found, fail, judge, register, where_differs
from .common import image_call, images_for, same_kind_of_array


def normalize_inputs(seed: int) -> dict:
    return {"images": images_for(seed, 4)[:, None]}                           # (4, 1, 28, 28) uint8


def normalize_hidden_inputs(seed: int) -> dict:
    return {"images": images_for(seed + 100, 3)}                              # (3, 28, 28): any shape works


@register("data_normalize", inputs=normalize_inputs, title="uint8 0..255 -> float32 0..1 (pixel / 255)")
def collect_normalize(inputs, normalize):
    return image_call(normalize, "normalize", inputs)


register("data_normalize_hidden", inputs=normalize_hidden_inputs, seed=1)(collect_normalize)


@judge("data_normalize", "data_normalize_hidden")
def judge_normalize(inputs, found):
    images = inputs["images"]
    out = Found(found, "out", "normalize(images)")
    same_kind_of_array(out, "normalize", "scaled")
    out.need_shape(images.shape, hint="normalize only changes the values; the shape stays as it was.")
    v = np.asarray(out.value, dtype=np.float64)
    expected = images.astype(np.float64) / 255
    if np.isnan(v).any():
        fail(f"normalize(images) returned NaN (not a number) in {int(np.isnan(v).sum())} places.",
             "NaN comes from 0/0: dividing by each image's own maximum fails for an all-black image. "
             "Divide every pixel by the same number, 255.")
    if v.min() < -1e-6:
        fail(f"normalize(images) returned values from {v.min():g} to {v.max():g}; they should lie in [0, 1].",
             "this lesson scales to [0, 1], pixel / 255, without subtracting a mean (that would be "
             "standardizing, a further exercise).")
    if v.max() > 1.0 + 1e-6:
        if np.allclose(v, images):
            fail(f"normalize(images) returned the pixels unscaled: the values still go up to {v.max():g}.",
                 "divide by 255 so that 0 stays 0 and 255 becomes 1.0.")
        fail(f"normalize(images) returned values up to {v.max():g}; they should lie in [0, 1].",
             "divide by 255 so that 0 stays 0 and 255 becomes 1.0.")
    if out.dtype in ("float16", "bfloat16"):
        out.need_dtype("float32", hint=f"{out.dtype} is too coarse: it cannot hold p / 255 exactly enough. Use float32.")
    if not np.allclose(v, expected, atol=1e-6, rtol=0):
        if np.allclose(v, images / 256.0, atol=1e-6, rtol=0):
            fail(f"normalize(images) maps 255 to {255 / 256:.6f}, not to 1.0: it divides by 256.",
                 "pixels go from 0 to 255, so the largest one is 255: divide by 255.")
        if np.array_equal(v, images // 255):
            fail("normalize(images) returned only 0s and 1s: that is integer division (//).",
                 "use true division, /, on float32 values.")
        per_image = images.max(axis=tuple(range(1, images.ndim)), keepdims=True).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if np.allclose(np.nan_to_num(v), np.nan_to_num(images / per_image), atol=1e-6):
                fail("normalize(images) divides each image by its own brightest pixel: a faint digit whose "
                     "brightest pixel is 200 gets 1.0 instead of 200/255 = 0.784.",
                     "divide every pixel by the same number, 255.")
        fail(f"normalize(images) returned wrong values, {where_differs(v, expected)}.",
             "each pixel p should become p / 255 (0 -> 0.0, 255 -> 1.0), the same fixed number for every "
             "pixel: not a maximum computed from the data (per image or per pixel position).")
    if out.dtype != "float32":
        hint = ("NumPy's division of an integer array gives float64. Networks use float32 (half the memory, "
                "and torch layers expect it): convert with .astype(np.float32)." if out.dtype == "float64" else
                "convert to float32 with .astype(np.float32).")
        out.need_dtype("float32", hint=hint)
    if not found["input_unchanged"]:
        fail("normalize(images) changed the array it was given.", "compute a new array instead of changing images in place.")
