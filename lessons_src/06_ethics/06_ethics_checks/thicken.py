"""Lesson 6 (c): thicken(images): each pixel becomes the brightest of its 3 x 3 neighbourhood,
judged against a NumPy maximum of shifted windows and the usual slips (a mean, a sum that overflows)."""
from __future__ import annotations

import numpy as np

from coursekit.checks import Found, describe, doing, fail, fmt_shape, judge, register, where_differs
from .shift import sparse_images


def _thicken_images(seed: int) -> np.ndarray:
    """(5, 28, 28) uint8: isolated dots of different brightness (some on the edges and corners),
    random pixels, an all-white image (a sum would overflow), a thin diagonal line (diagonal
    neighbours), and a short horizontal stroke."""
    rng = np.random.default_rng(seed)
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    for (r, c), v in zip([(0, 0), (27, 27), (0, 13), (14, 0), (27, 5), (10, 20), (10, 21), (20, 8), (5, 5)],
                         [200, 90, 255, 130, 60, 250, 100, 180, 40]):
        images[0, r, c] = v
    images[1] = sparse_images(rng, 1)[0] // 2 + rng.integers(0, 2, size=(28, 28)).astype(np.uint8) * 100
    images[2] = 255
    for i in range(4, 24):
        images[3, i, i + 2] = 120 + (i * 37) % 136
    images[4, 13, 6:22] = rng.integers(100, 256, size=16).astype(np.uint8)
    return images


def thicken_inputs(seed: int) -> dict:
    return {"images": _thicken_images(seed)}


def thicken_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 100)
    images = sparse_images(rng, 3)
    images[0] = 0
    images[0, 6:22, 12:15] = 230                                   # a "1", 3 pixels wide
    images[0, 6, 10:12] = 160
    return {"images": images}


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
