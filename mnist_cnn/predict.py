"""Read a photo or drawing of a digit, make it look like MNIST, and classify it.

MNIST digits are light strokes on a black background, scaled to fit a 20x20 box
(keeping the aspect ratio, antialiased) and placed in a 28x28 image so that their
centre of mass is at the centre. ``preprocess`` does the same to any image.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_cnn.train import MNIST_MEAN, MNIST_STD

SIZE = 28          # output image side, pixels
BOX = 20           # the digit is scaled to fit a BOX x BOX square
MIN_CONTRAST = 0.1  # ink must differ from the background by this much (pixel values in [0, 1])
INK_MARGIN = 0.15   # fraction of the ink's contrast treated as background noise and cleared

ImageLike = Union[str, "os.PathLike[str]", Image.Image]


class ImageError(ValueError):
    """The image is missing, unreadable, or has no digit in it."""


def _open(image: ImageLike) -> Tuple[Image.Image, str]:
    """Return (PIL image, name for messages); ImageError if the file is missing or unreadable."""
    if isinstance(image, Image.Image):
        return image, "image"
    path = Path(image)
    try:
        with Image.open(path) as img:
            img.load()
            return ImageOps.exif_transpose(img), str(path)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise ImageError(f"{path} is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read (expected PNG, JPEG, ...)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: cannot read the image ({err})") from None


def _grayscale(img: Image.Image) -> np.ndarray:
    """PIL image of any mode -> (H, W) float32 in [0, 1]; transparency is composited on white."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(img, dtype=np.float32)                     # (H, W)
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0  # (H, W)


def _centre_of_mass(a: np.ndarray) -> Tuple[float, float]:
    """(row, col) centre of mass of a non-negative (H, W) array with a positive sum."""
    rows, cols = np.indices(a.shape)
    total = a.sum()
    return float((rows * a).sum() / total), float((cols * a).sum() / total)


def preprocess(image: ImageLike) -> np.ndarray:
    """Turn a picture of one digit into an MNIST-style image.

    image: a path (PNG, JPEG, ... of any size; RGB, RGBA, L, P...) or a PIL image, with a
        dark digit on a light background or a light digit on a dark one.
    Returns: (28, 28) float32 in [0, 1], a light digit on black (0), scaled to fit 20x20
        and centred by its centre of mass, like the MNIST images divided by 255.
    Raises ImageError for a missing/unreadable file or an image with no ink in it.
    """
    img, name = _open(image)
    a = _grayscale(img)                                            # (H, W) in [0, 1]
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on light paper: invert so the digit is light on dark, as in MNIST
        a, background = 1.0 - a, 1.0 - background
    contrast = float(a.max()) - background
    if contrast < MIN_CONTRAST:
        raise ImageError(f"{name}: no digit found (the image is blank or has too little contrast)")

    # Clear the background and its noise, stretch the ink to [0, 1].
    floor = background + INK_MARGIN * contrast
    ink = np.clip((a - floor) / (float(a.max()) - floor), 0.0, 1.0)  # (H, W)
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]          # (h, w) bounding box

    # Scale the longer side to BOX pixels, keeping the aspect ratio (Lanczos antialiases).
    h, w = ink.shape
    scale = BOX / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = Image.fromarray(ink.astype(np.float32)).resize((new_w, new_h), Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0)  # (new_h, new_w)
    if digit.max() <= 0:
        raise ImageError(f"{name}: no digit found (the ink vanishes when scaled to 20x20)")
    digit /= digit.max()  # thin strokes of a large image stay visible

    # Paste into 28x28 so the centre of mass lands on the centre (13.5, 13.5), clipping at the edges.
    cy, cx = _centre_of_mass(digit)
    top, left = round((SIZE - 1) / 2 - cy), round((SIZE - 1) / 2 - cx)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)                 # (28, 28)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + new_h, SIZE), min(left + new_w, SIZE)
    out[y0:y1, x0:x1] = digit[y0 - top:y1 - top, x0 - left:x1 - left]
    return out


def predict(
    model: torch.nn.Module,
    images: Sequence[ImageLike],
    *,
    standardize: bool,
    device: Union[str, torch.device] = "cpu",
) -> List[Tuple[int, float, np.ndarray]]:
    """Classify pictures of digits.

    model: a trained ``Net``. images: paths (or PIL images), each read by ``preprocess``.
    standardize: the checkpoint's ``standardize`` (inputs (x - MNIST_MEAN) / MNIST_STD).
    Returns one (digit, probability of that digit, probs (10,) float32) per image, in order.
    Raises ImageError for the first image that cannot be read.
    """
    if not images:
        return []
    pixels = np.stack([preprocess(image) for image in images])     # (N, 28, 28) in [0, 1]
    x = torch.from_numpy(pixels).unsqueeze(1)                      # (N, 1, 28, 28)
    if standardize:
        x = (x - MNIST_MEAN) / MNIST_STD                           # (N, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(x.to(device)), dim=1).cpu().numpy()  # (N, 10)
    return [(int(p.argmax()), float(p.max()), p.astype(np.float32)) for p in probs]
