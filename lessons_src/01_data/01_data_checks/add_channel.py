"""Lesson 1 (a): add_channel(images) -> (N, 1, 28, 28), the pixels untouched."""
from __future__ import annotations

import numpy as np

from coursekit.checks import Found, fail, judge, register, where_differs
from .common import image_call, images_for, same_kind_of_array


def add_channel_inputs(seed: int) -> dict:
    return {"images": images_for(seed, 5)}


def add_channel_hidden_inputs(seed: int) -> dict:
    return {"images": images_for(seed + 100, 3)}


@register("data_add_channel", inputs=add_channel_inputs, title="(N, 28, 28) -> (N, 1, 28, 28), pixels untouched",
          hints=[(r"shape \(60000", "don't hard-code 60000: the function must work for any number of images "
                                    "(use -1 or len(images))")])
def collect_add_channel(inputs, add_channel):
    return image_call(add_channel, "add_channel", inputs)


register("data_add_channel_hidden", inputs=add_channel_hidden_inputs, seed=1)(collect_add_channel)


@judge("data_add_channel", "data_add_channel_hidden")
def judge_add_channel(inputs, found):
    images = inputs["images"]
    n = len(images)
    out = Found(found, "out", "add_channel(images)")
    same_kind_of_array(out, "add_channel", "new")
    want = (n, 1, 28, 28)
    if out.shape != want:
        hints = {
            (n, 28, 28, 1): "the channel went to the end (channels-last, as in TensorFlow). PyTorch wants it "
                            "right after the image axis, at position 1.",
            (1, n, 28, 28): "the new axis went in front of the batch axis. Axis 0 counts the images; the "
                            "channel axis goes at position 1.",
            (n, 28, 1, 28): "the new axis went between the rows and the columns; it belongs at position 1.",
            (n, 28, 28): "no axis was added: the shape is unchanged.",
        }
        out.need_shape(want, hint=hints.get(out.shape, "add one axis of length 1 at position 1 (after the batch axis)."))
    if out.dtype != str(images.dtype):
        fail(f"add_channel(images) should keep dtype {images.dtype}, but returned dtype {out.dtype}.",
             "add_channel only adds an axis; changing the values or the dtype is normalize's job (next exercise).")
    v = out.value[:, 0]
    if not np.array_equal(v, images):
        if np.array_equal(v, images.transpose(0, 2, 1)):
            fail("add_channel(images) swapped the rows and the columns of each image (it is transposed).",
                 "adding an axis must not move any pixel, and a transpose does.")
        fail(f"add_channel(images) has the right shape but the pixels moved: {where_differs(v, images)}.",
             "adding an axis must not move any pixel: insert the new axis (indexing with None, np.expand_dims "
             "or a reshape to (N, 1, 28, 28) all do that) instead of transposing.")
    if not found["input_unchanged"]:
        fail("add_channel(images) changed the array it was given (its shape or values).",
             "return a new array (or view) instead of setting images.shape or resizing the array in place.")
