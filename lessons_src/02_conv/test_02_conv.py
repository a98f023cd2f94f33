"""Lesson 2 (02_conv): realistic wrong implementations lose the exercise's points, with a
message that names the mistake; valid variants get full marks (public and hidden checks)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lesson_harness import accepts, credit, notebook_functions, rejects, unchecked_numbers


@pytest.fixture(scope="module")
def solution():
    """The master notebook's own cross_correlate, conv_output_size, ConvFeatures."""
    return notebook_functions("02_conv")


def test_the_master_notebooks_functions_pass(solution):
    accepts("conv_cross_correlate", solution["cross_correlate"])
    accepts("conv_output_size", solution["conv_output_size"])
    accepts("conv_features", solution["ConvFeatures"])


# --- (a) cross_correlate -------------------------------------------------------------

def _loops(image, kernel, *, flip=False, weights=True, mean=False, short=False, same=False, square=False,
           transpose_out=False, dtype=torch.float32, as_numpy=False):
    """A loop implementation with one slip switched on."""
    kh, kw = kernel.shape
    if square:
        kw = kh
    if flip:
        kernel = torch.flip(kernel, (0, 1))
    if not weights:
        kernel = torch.ones_like(kernel)
    if same:
        image = F.pad(image, (kw // 2, (kw - 1) // 2, kh // 2, (kh - 1) // 2))
    rows, cols = image.shape[0] - kh + 1 - short, image.shape[1] - kw + 1 - short
    out = np.zeros((rows, cols)) if as_numpy else torch.zeros(rows, cols, dtype=dtype)
    for i in range(rows):
        for j in range(cols):
            value = (image[i:i + kh, j:j + kw] * kernel[:kh, :kw]).sum()
            if mean:
                value = value / kernel.numel()
            out[i, j] = float(value)
    if transpose_out:
        out = out.T.contiguous()
    return out


@pytest.mark.parametrize("wrong, says", [
    (lambda image, kernel: _loops(image, kernel, flip=True), "flipped the kernel"),
    (lambda image, kernel: _loops(image, kernel, short=True), "one row and one column short"),
    (lambda image, kernel: _loops(image, kernel, same=True), "'same' padding"),
    (lambda image, kernel: _loops(image, kernel, as_numpy=True), "torch tensor"),
    (lambda image, kernel: _loops(image, kernel, weights=False), "without the kernel's weights"),
    (lambda image, kernel: _loops(image, kernel, mean=True), "averaged"),
    (lambda image, kernel: _loops(image, kernel, transpose_out=True), "rows and columns"),
    (lambda image, kernel: _loops(image, kernel, dtype=torch.float64), "float32"),
    (lambda image, kernel: F.conv2d(image[None, None], kernel[None, None]), "drop the batch and channel axes"),
    (lambda image, kernel: _loops(image, kernel.T.contiguous()) if kernel.shape[0] == kernel.shape[1]
     else _loops(image, kernel), "transposed"),
    (lambda image, kernel: None, "return"),
], ids=["true_convolution", "off_by_one", "same_padding", "numpy", "no_weights", "mean", "transposed_output", "float64", "four_dimensional", "kernel_transposed", "no_return"])
def test_cross_correlate_mistakes_are_caught(wrong, says):
    rejects("conv_cross_correlate", wrong, says)


def test_a_square_kernel_assumed_is_caught():
    def square(image, kernel):
        k = kernel.shape[0]
        out = torch.zeros(image.shape[0] - k + 1, image.shape[1] - k + 1)
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = (image[i:i + k, j:j + k] * kernel).sum()
        return out

    rejects("conv_cross_correlate", square, "(3, 2)", "the window must have the kernel's shape")


def test_a_hard_coded_24_by_24_output_is_caught():
    def fixed_size(image, kernel):
        out = torch.zeros(24, 24)
        for i in range(24):
            for j in range(24):
                out[i, j] = (image[i:i + 5, j:j + 5] * kernel).sum()
        return out

    rejects("conv_cross_correlate", fixed_size, "(6, 9)", "raised", "the window must have the kernel's shape")


def test_changing_the_image_in_place_is_caught():
    def in_place(image, kernel):
        out = _loops(image, kernel)
        image.zero_()
        return out

    rejects("conv_cross_correlate", in_place, "changed the image")


def _unfold(image, kernel):
    windows = image.unfold(0, kernel.shape[0], 1).unfold(1, kernel.shape[1], 1)   # (H', W', kH, kW)
    return (windows * kernel).sum(dim=(-2, -1))


def _scalar_loops(image, kernel):
    rows, cols = image.shape[0] - kernel.shape[0] + 1, image.shape[1] - kernel.shape[1] + 1
    out = torch.empty(rows, cols)
    for i in range(rows):
        for j in range(cols):
            total = 0.0
            for a in range(kernel.shape[0]):
                for b in range(kernel.shape[1]):
                    total += float(image[i + a, j + b]) * float(kernel[a, b])
            out[i, j] = total
    return out


def _numpy_then_tensor(image, kernel):
    img, k = image.numpy(), kernel.numpy()
    windows = np.lib.stride_tricks.sliding_window_view(img, k.shape)
    return torch.from_numpy(np.einsum("ijab,ab->ij", windows, k).astype(np.float32))


@pytest.mark.parametrize("valid", [_unfold, _scalar_loops, _numpy_then_tensor,
                                   lambda image, kernel: F.conv2d(image[None, None], kernel[None, None])[0, 0]],
                         ids=["unfold", "scalar_loops", "numpy_then_tensor", "conv2d"])
def test_cross_correlate_variants_pass(valid):
    accepts("conv_cross_correlate", valid)


# --- (b) conv_output_size --------------------------------------------------------------

@pytest.mark.parametrize("wrong, says", [
    (lambda size, kernel, stride=1, padding=0: (size + 2 * padding - kernel) // stride, "ends with + 1"),
    (lambda size, kernel, stride=1, padding=0: (size + 2 * padding - kernel) / stride + 1, "not rounded down"),
    (lambda size, kernel, stride=1, padding=0: (size - kernel) // stride + 1, "size + 2·padding"),
    (lambda size, kernel, stride=1, padding=0: (size + padding - kernel) // stride + 1, "both"),
    (lambda size, kernel, stride=1, padding=0: math.ceil((size + 2 * padding - kernel) / stride) + 1, "round down"),
    (lambda size, kernel, stride=1, padding=0: size + 2 * padding - kernel + 1, "stride"),
    (lambda size, kernel, stride=1, padding=0: (size + 2 * padding - kernel + 1) // stride, "then"),
    (lambda size, kernel, stride=1, padding=0: np.floor((size + 2 * padding - kernel) / stride) + 1, "an int"),
    (lambda size, kernel, stride=1, padding=0: size - kernel + 1, "expected"),
    (lambda size, kernel, stride=2, padding=0: (size + 2 * padding - kernel) // stride + 1, "default values"),
    (lambda size, kernel, stride=1, padding=0: None, "return"),
], ids=["no_plus_one", "true_division", "no_padding", "padding_once", "ceil", "no_stride", "plus_one_inside",
        "numpy_float", "only_kernel", "wrong_default_stride", "no_return"])
def test_output_size_mistakes_are_caught(wrong, says):
    rejects("conv_output_size", wrong, says)


@pytest.mark.parametrize("valid", [
    lambda size, kernel, stride=1, padding=0: int((size + 2 * padding - kernel) / stride) + 1,
    lambda size, kernel, stride=1, padding=0: math.floor((size - kernel + 2 * padding) / stride) + 1,
    lambda size, kernel, stride=1, padding=0: len(range(0, size + 2 * padding - kernel + 1, stride)),
    lambda size, kernel, stride=1, padding=0: np.floor_divide(size + 2 * padding - kernel, stride) + 1,
], ids=["int_of_division", "math_floor", "len_range", "numpy_int"])
def test_output_size_variants_pass(valid):
    accepts("conv_output_size", valid)


# --- (c) ConvFeatures --------------------------------------------------------------------

class _Layers(nn.Module):
    """conv1 and conv2 as the course has them; forward comes from the test."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)


def features(forward, base=_Layers):
    """A ConvFeatures class with this forward(self, x)."""
    return type("ConvFeatures", (base,), {"forward": forward})


def _step(layer, x, act=F.relu, pool=F.max_pool2d):
    return pool(act(layer(x)), 2)


class _Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.c2 = nn.Conv2d(6, 16, 5)

    def forward(self, x):
        return _step(self.c2, _step(self.c1, x))


class _Sequential(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x):
        return self.conv2(self.conv1(x))


def _layers(conv1=(1, 6, 5, {}), conv2=(6, 16, 5, {})):
    class Layers(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(*conv1[:3], **conv1[3])
            self.conv2 = nn.Conv2d(*conv2[:3], **conv2[3])

        def forward(self, x):
            x = _step(self.conv1, x)
            x = _step(self.conv2, x)
            return x
    return type("ConvFeatures", (Layers,), {})


def _new_layers_in_forward(self, x):
    x = _step(nn.Conv2d(1, 6, 5), x)
    return _step(nn.Conv2d(6, 16, 5), x)


@pytest.mark.parametrize("wrong, says", [
    (features(lambda self, x: _step(self.conv2, F.max_pool2d(self.conv1(x), 2))), "ReLU after conv1 is missing"),
    (features(lambda self, x: F.max_pool2d(self.conv2(_step(self.conv1, x)), 2)), "ReLU after conv2 is missing"),
    (features(lambda self, x: _step(self.conv2, _step(self.conv1, x, pool=F.avg_pool2d), pool=F.avg_pool2d)),
     "average pooling"),
    (features(lambda self, x: F.avg_pool2d(self.conv2(F.avg_pool2d(self.conv1(x), 2)), 2)), "average pooling"),
    (features(lambda self, x: F.relu(self.conv2(_step(self.conv1, x)))), "max-pooling after conv2 is missing"),
    (features(lambda self, x: _step(self.conv2, self.conv1(x))), "max-pooling after conv1 is missing"),
    (features(lambda self, x: _step(self.conv2, _step(self.conv1, x, act=torch.sigmoid), act=torch.sigmoid)),
     "sigmoid"),
    (features(lambda self, x: _step(self.conv2, _step(self.conv1, x, act=torch.tanh))), "tanh"),
    (features(lambda self, x: _step(self.conv2, _step(self.conv1, x, pool=lambda t, k: F.max_pool2d(t, k, stride=1)))),
     "stride"),
    (features(lambda self, x: _step(self.conv2, _step(self.conv1, x)).flatten(1)), "shape (3, 16, 4, 4)"),
    (features(lambda self, x: None), "return"),
    (features(_new_layers_in_forward), "never called self.conv1"),
    (_layers(conv1=(1, 6, 5, {"padding": 2})), "padding"),
    (_layers(conv1=(1, 6, 3, {})), "5 × 5"),
    (_layers(conv1=(6, 1, 5, {})), "swapped"),
    (_layers(conv2=(1, 16, 5, {})), "6 input channels"),
    (_layers(conv2=(6, 16, 5, {"bias": False})), "no bias"),
    (_layers(conv1=(1, 6, 5, {"stride": 2})), "stride"),
    (_Named, "no layer called conv1"),
    (_Sequential, "the layer itself"),
], ids=["no_relu_1", "no_relu_2", "avg_pool", "avg_pool_no_relu", "no_pool_2", "no_pool_1", "sigmoid", "tanh",
        "pool_stride_1", "flattened", "no_return", "layers_in_forward",
        "padding", "kernel_3", "channels_swapped", "conv2_in_1", "no_bias", "conv_stride_2", "other_names",
        "sequential"])
def test_conv_features_mistakes_are_caught(wrong, says):
    rejects("conv_features", wrong, says)


def _pool_first(self, x):
    x = F.max_pool2d(x, 2)
    x = F.max_pool2d(F.relu(self.conv1(x)), 2)
    return F.max_pool2d(F.relu(self.conv2(x)), 2)


def _hard_coded_batch(self, x):
    x = F.max_pool2d(F.relu(self.conv1(x)), 2)
    x = F.max_pool2d(F.relu(self.conv2(x)), 2)
    return x.view(4, 16, 4, 4)


def _hard_coded_three(self, x):
    x = F.max_pool2d(F.relu(self.conv1(x)), 2)
    x = F.max_pool2d(F.relu(self.conv2(x)), 2)
    return x.reshape(3, 16, 4, 4)


@pytest.mark.parametrize("wrong, says", [
    (features(_pool_first), "pooling the images before conv1"),
    (features(_hard_coded_batch), "hard-code the batch size"),
    (features(_hard_coded_three), "hard-code the batch size"),
], ids=["pool_first", "hard_coded_batch", "hard_coded_batch_of_the_check"])
def test_conv_features_mistakes_that_raise_are_explained(wrong, says):
    rejects("conv_features", wrong, says)


@pytest.mark.parametrize("wrong, share, says", [
    (_layers(conv1=(1, 6, 5, {"padding": 2})), 0.5, ["padding", "forward is right"]),
    (_layers(conv2=(1, 16, 5, {})), 0.5, ["6 input channels", "forward is right"]),
    (features(lambda self, x: F.relu(self.conv2(_step(self.conv1, x)))), 0.5,
     ["max-pooling after conv2 is missing", "__init__ is right"]),
    (type("ConvFeatures", (_layers(conv1=(1, 6, 3, {})),),
          {"forward": lambda self, x: F.max_pool2d(self.conv2(_step(self.conv1, x)), 2)}), 0.0,
     ["2 parts of this exercise need fixing", "1. __init__: ", "5 × 5", "2. forward: the relu after conv2"]),
], ids=["padding_only", "conv2_channels_only", "forward_only", "both"])
def test_conv_features_init_and_forward_cost_once_each(wrong, share, says):
    """__init__ and forward are judged on their own (forward with the course's conv1 and conv2 where
    __init__ made others): one mistake costs its part's half; mistakes in both are named at once."""
    got, message = credit("conv_features", wrong)
    assert got == share, message
    for fragment in says:
        assert fragment.lower() in message.lower(), message


class _Modules(_Layers):
    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        return self.pool(self.relu(self.conv2(x)))


class _InPlace(_Layers):
    def __init__(self):
        super().__init__()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        x = F.max_pool2d(self.act(self.conv1(x)), kernel_size=2, stride=2)
        return F.max_pool2d(self.act(self.conv2(x)), kernel_size=2, stride=2)


@pytest.mark.parametrize("valid", [
    features(lambda self, x: _step(self.conv2, _step(self.conv1, x))),
    features(lambda self, x: F.relu(F.max_pool2d(self.conv2(F.relu(F.max_pool2d(self.conv1(x), 2))), 2))),
    _Modules,
    _InPlace,
    features(lambda self, x: torch.max_pool2d(self.conv2(torch.max_pool2d(self.conv1(x), 2).clamp(min=0)), 2).clamp(min=0)),
    features(lambda self, x: F.max_pool2d(F.relu(F.conv2d(F.max_pool2d(F.relu(F.conv2d(x, self.conv1.weight, self.conv1.bias)), 2),
                                                          self.conv2.weight, self.conv2.bias)), 2)),
], ids=["functional", "relu_after_pool", "modules", "inplace_relu", "torch_ops_clamp", "functional_conv"])
def test_conv_features_variants_pass(valid):
    accepts("conv_features", valid)


# --- numbers in the text ---------------------------------------------------------------

# What no run changes; every other number a student compares with their own run is printed by the
# notebook from that run (lesson_harness.unchecked_numbers).
FIXED_NUMBERS = {"60 to 75 minutes": "study time"}


def test_the_text_states_no_number_of_someone_elses_run():
    assert unchecked_numbers("02_conv", FIXED_NUMBERS) == []
