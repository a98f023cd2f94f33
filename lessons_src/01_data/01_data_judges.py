"""Hidden judges of lesson 1 (01_data): the student's data pipeline against mnist_cnn's.

The reference is ``mnist_cnn.train.to_tensors`` (pixels / 255, channel axis 1, float32
images, int64 labels) and the course recipe's batch size in course.yml.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from coursekit.checks import lesson_checks
from coursekit.checks import Found, fail, hidden_judge, where_differs
from coursekit import config
from mnist_cnn.train import to_tensors as reference_to_tensors

public = lesson_checks("01_data")  # registers the checks these judges attach to


def _reference(images, labels=None):
    """mnist_cnn's tensors for ``images`` ((N, 28, 28) uint8): x (N, 1, 28, 28) float32, y (N,) int64."""
    if labels is None:
        labels = np.zeros(len(images), dtype=np.int64)
    x, y = reference_to_tensors(images, labels, standardize=False)
    return x.numpy(), y.numpy()


@hidden_judge("data_add_channel_hidden")
def add_channel_matches_reference(inputs, found):
    ref, _ = _reference(inputs["images"])
    out = Found(found, "out", "add_channel(images)")
    out.need_shape(ref.shape)
    mine = np.asarray(out.value, dtype=np.float32) / 255
    if not np.allclose(mine, ref, atol=1e-6, rtol=0):
        fail(f"add_channel(images) on other images does not match the course's pipeline: {where_differs(mine, ref)}.")


@hidden_judge("data_normalize_hidden")
def normalize_matches_reference(inputs, found):
    images = inputs["images"]                                  # (N, 28, 28): normalize works on any shape
    ref, _ = _reference(images)
    ref = ref[:, 0]
    out = Found(found, "out", "normalize(images)")
    out.need_shape(ref.shape).need_dtype(str(ref.dtype))
    if not np.allclose(out.value, ref, atol=1e-6, rtol=0):
        fail(f"normalize(images) on other images does not match the course's pipeline: {where_differs(out.value, ref)}.")


@hidden_judge("data_to_tensors_hidden")
def to_tensors_matches_reference(inputs, found):
    ref_x, ref_y = _reference(inputs["images"], inputs["labels"])
    y = Found(found, "y", "y").need_shape(ref_y.shape).need_dtype("torch.int64")
    if public.from_own_pipeline(found):   # x is the notebook's own normalize(add_channel(...)): judged there
        x = None
    else:
        x = Found(found, "x", "x").need_shape(ref_x.shape).need_dtype("torch.float32")
    if x is not None and not np.allclose(x.value, ref_x, atol=1e-6, rtol=0):
        fail(f"to_tensors on other images does not match the course's pipeline: x {where_differs(x.value, ref_x)}.")
    if not np.array_equal(y.value, ref_y):
        fail(f"to_tensors on other labels does not match the course's pipeline: y {where_differs(y.value, ref_y)}.")


@hidden_judge("data_make_loader_hidden")
def make_loader_matches_reference(inputs, found):
    x, y, bs = torch.from_numpy(inputs["x"]), torch.from_numpy(inputs["y"]), int(inputs["batch_size"])
    course_bs = config.load().recipe("course").batch_size
    for tag, size in (("default.e1", course_bs), ("fixed.e1", bs)):
        want = [len(b[0]) for b in DataLoader(TensorDataset(x, y), batch_size=size)]
        got = list(found[f"{tag}.sizes"])
        if got != want:
            fail(f"make_loader on {len(x)} samples gave batches of sizes {got}; the course's loader gives {want} "
                 f"(batch_size={size}).")
