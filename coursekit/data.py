"""The MNIST digits for the lessons, read from the local data cache.

The files are fetched once with ``python -m coursekit fetch`` (``make data``) into
``$MNIST_DATA_DIR``, else course.yml's ``data.root``, else ``~/.cache/mnist_cnn``
(``$XDG_CACHE_HOME/mnist_cnn`` when that is set), in torchvision's layout::

    <root>/MNIST/raw/train-images-idx3-ubyte   (60000, 28, 28) uint8
    <root>/MNIST/raw/train-labels-idx1-ubyte   (60000,)        uint8
    <root>/MNIST/raw/t10k-images-idx3-ubyte    (10000, 28, 28) uint8
    <root>/MNIST/raw/t10k-labels-idx1-ubyte    (10000,)        uint8

This module only reads; it never downloads (a lesson should not hang on the network).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from coursekit.idx import IdxError, read_idx

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DataMissing(FileNotFoundError):
    """The MNIST files are not in the data cache; the message says how to get them."""

    def _render_traceback_(self):  # Jupyter shows this one line instead of a traceback
        return [f"DataMissing: {self}"]


def _configured_root():
    """course.yml's ``data.root`` (see ``coursekit.config.load``), or None where there is none."""
    from coursekit import config

    try:
        root = config.load().data.root
    except config.ConfigError:  # no course.yml, or not readable: the default applies
        return None
    return Path(root).expanduser() if root else None


def data_root() -> Path:
    """The data root, the course's one rule: ``$MNIST_DATA_DIR``, else course.yml's ``data.root``,
    else ``$XDG_CACHE_HOME/mnist_cnn``, else ``~/.cache/mnist_cnn``."""
    if os.environ.get("MNIST_DATA_DIR"):
        return Path(os.environ["MNIST_DATA_DIR"]).expanduser()
    configured = _configured_root()
    if configured:
        return configured
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mnist_cnn"


def load_digits(split: str = "train"):
    """Load one split of MNIST from the data cache.

    split: "train" (60,000 digits) or "test" (10,000 digits).
    Returns (images, labels):
        images: (N, 28, 28) uint8 array, pixels 0 (black) .. 255 (white)
        labels: (N,) int64 array, the digit 0..9 each image shows
    Raises DataMissing (one line: how to fetch them) when the files are not there.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use 'train' or 'test'")
    raw = data_root() / "MNIST" / "raw"
    image_file, label_file = (raw / name for name in SPLITS[split])
    missing = [p.name for p in (image_file, label_file) if not p.is_file()]
    if missing:
        raise DataMissing(
            f"MNIST is not in {raw} (missing {', '.join(missing)}): run `python -m coursekit fetch` (or `make data`) "
            f"in the course folder once (or set MNIST_DATA_DIR to a folder that has MNIST/raw/), then run this cell again")
    try:
        images = read_idx(image_file)                       # (N, 28, 28) uint8
        labels = read_idx(label_file).astype(np.int64)      # (N,) int64
    except IdxError as err:
        raise DataMissing(f"{err}: the file is damaged; run `python -m coursekit fetch` (or `make data`) again to fetch a good copy") from None
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise DataMissing(f"{raw}: images {images.shape} and labels {labels.shape} do not pair up; run `python -m coursekit fetch` (or `make data`) again")
    return images, labels
