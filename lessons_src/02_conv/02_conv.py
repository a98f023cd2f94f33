# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 2: Convolution layers
#
# In lesson 1 the digits became tensors of shape `(N, 1, 28, 28)`. This lesson builds the first
# half of the network that reads them: two **convolution layers**, each followed by a ReLU and a
# 2 × 2 max-pooling. Together they turn each 28 × 28 digit into 16 small 4 × 4 maps of
# "features" (strokes, edges, corners), which lesson 3's layers then turn into a digit.
#
# **By the end of this lesson you will be able to**
#
# - explain what a convolution kernel does to an image, and compute it yourself: slide a small
#   window over the image, multiply by the kernel, add up;
# - work out the size of a convolution's or a pooling's output from the kernel size, the stride
#   and the padding;
# - say what ReLU and 2 × 2 max-pooling do, and why they are there;
# - write the convolutional part of the course's network, `conv1` and `conv2`, as a PyTorch
#   module that takes `(N, 1, 28, 28)` to `(N, 16, 4, 4)`;
# - look at the feature maps a digit produces.
#
# **Time:** about 60 to 75 minutes. **You need:** lesson 1, Python (loops, classes) and a little
# NumPy.
#
# **How the exercises work** (as in lesson 1). Replace `raise NotImplementedError()` with your code
# and run the cell; the locked cell under it checks your code and prints `✔ ... passed`, or what
# it expected, what it found and the likely mistake. More checks run when your notebook is graded.
# To run every check of this lesson at once (save the notebook first):
#
# ```
# python -m coursekit.selfcheck 02_conv
# ```
#
# Run the cells in order, from the top.

# %% nbgrader={"grade": false, "grade_id": "conv_setup", "locked": true, "schema_version": 3, "solution": false}
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)  # the same "random" weights every time you run the notebook

from coursekit.checks import check, relies_on
from coursekit.data import load_digits
from coursekit.plots import show_data_flow, show_feature_maps, show_kernel_on_image, show_kernels

# %% [markdown]
# ## 1. A kernel on a digit
#
# A **kernel** (or *filter*) is a small grid of weights, here 5 × 5. To apply it to an image:
#
# 1. put the kernel on the image's top-left 5 × 5 corner (the *window*);
# 2. multiply each of the 25 pixels under it by the weight on top of it, and add the 25 products
#    up: that sum is the first output pixel;
# 3. slide the window one pixel to the right and do it again, to the end of the row; then one row
#    down, and so on.
#
# In a formula, for a kernel `k` of `kH` rows and `kW` columns:
#
# $$\text{out}[i, j] = \sum_{a=0}^{kH-1} \sum_{b=0}^{kW-1} \text{image}[i + a,\ j + b] \cdot k[a, b]$$
#
# Output pixel `(i, j)` comes from the window whose top-left corner is pixel `(i, j)` of the image.
# It is large where the image, under the window, *looks like the kernel*: bright where the kernel
# is positive, dark where it is negative. A kernel is a small pattern detector.
#
# Here is a 5 × 5 kernel that detects vertical edges: negative weights on the left, positive ones
# on the right. Let us try it on the first test digit. `F.conv2d` is PyTorch's convolution: it
# takes a batch of images `(N, C, H, W)` and a stack of kernels `(C_out, C, kH, kW)`, so we add
# two axes of length 1 to each with `[None, None]`.

# %%
images, labels = load_digits("test")
digit = torch.from_numpy(images[0].astype(np.float32) / 255)     # (28, 28) float32 in [0, 1]
edge = torch.tensor([[-1.0, -1.0, 0.0, 1.0, 1.0]] * 5) / 5         # (5, 5) vertical-edge kernel

out = F.conv2d(digit[None, None], edge[None, None])[0, 0]          # (24, 24)
print("digit:", tuple(digit.shape), " kernel:", tuple(edge.shape), " output:", tuple(out.shape))
show_kernel_on_image(digit, edge, out, at=(12, 14), title=f"A vertical-edge kernel on a {labels[0]}")


# %% [markdown]
# Read the picture from left to right. The orange window on the digit covers the left edge of
# the stroke: dark on its left, bright on its right, just like the kernel, so the sum is large
# and the output pixel at the same position is red. Where the window sits on the stroke's right
# edge (bright, then dark) the sum is negative: blue. On the flat black background, and in the
# middle of a thick stroke, the positive and negative weights cancel out: white, about 0. The
# horizontal top bar of the 7 has almost no vertical edges, so it nearly disappears.
#
# Notice also that the output is **24 × 24**, not 28 × 28: a 5 × 5 window fits in only
# 28 − 5 + 1 = 24 positions along each axis (section 2 works this out in general).
#
# **Convolution or cross-correlation?** In mathematics, "convolution" flips the kernel (upside
# down and left to right) before sliding it. Deep-learning libraries don't flip: what they call a
# convolution is, strictly speaking, a *cross-correlation*, the formula above. Since the network
# learns its kernels anyway, the flip makes no difference to what it can learn; but to get the same
# numbers as PyTorch, don't flip.
#
# ### Exercise (a): `cross_correlate` (3 points)
#
# Write the formula above yourself, for any image and kernel sizes. Two `for` loops over the
# output positions `(i, j)` are enough: `image[i:i + kH, j:j + kW]` is the window (a
# `(kH, kW)` tensor), `window * kernel` multiplies element by element, and `.sum()` adds up.
# Create the output first with `torch.zeros(rows, columns)` (float32 by default) and fill it in.
# Don't call `F.conv2d` here: it is what your function is checked against.

# %% nbgrader={"grade": false, "grade_id": "conv_cross_correlate_answer", "locked": false, "schema_version": 3, "solution": true}
def cross_correlate(image, kernel):
    """Slide kernel over image (no padding, stride 1) and add up the products, like a conv layer.

    image:  (H, W) float32 tensor, e.g. one 28 x 28 digit
    kernel: (kH, kW) float32 tensor, e.g. 5 x 5 weights (not necessarily square)
    returns: (H - kH + 1, W - kW + 1) float32 tensor out, with
             out[i, j] = sum over a < kH, b < kW of image[i + a, j + b] * kernel[a, b]
             (the kernel is not flipped); image and kernel are left unchanged
    """
    ### BEGIN SOLUTION
    rows_k, cols_k = kernel.shape
    rows_out = image.shape[0] - rows_k + 1
    cols_out = image.shape[1] - cols_k + 1
    out = torch.zeros(rows_out, cols_out)
    for i in range(rows_out):
        for j in range(cols_out):
            out[i, j] = (image[i:i + rows_k, j:j + cols_k] * kernel).sum()
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "conv_cross_correlate", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks exercise (a): output shape, dtype, and values against F.conv2d (also for non-square kernels).
check("conv_cross_correlate", cross_correlate)
### BEGIN HIDDEN TESTS
check("conv_cross_correlate_hidden", cross_correlate)
### END HIDDEN TESTS

# %% [markdown]
# Your function against PyTorch's, on the digit, with a horizontal-edge kernel this time (the
# vertical one turned on its side). The differences are tiny rounding errors: the same sums, added up
# in another order.

# %%
relies_on("conv_cross_correlate")   # a warning here if your cross_correlate did not pass its check
horizontal = edge.T.contiguous()                                   # negative above, positive below
mine = cross_correlate(digit, horizontal)
theirs = F.conv2d(digit[None, None], horizontal[None, None])[0, 0]
print("largest difference from F.conv2d:", float((mine - theirs).abs().max()))
show_kernel_on_image(digit, horizontal, mine, at=(5, 10), title="A horizontal-edge kernel, with your cross_correlate")


# %% [markdown]
# Now the top bar of the 7 lights up (dark above, bright below: red on its top side, blue under
# it) and the slanted stroke fades.
#
# ## 2. How big is the output?
#
# Along one axis, a kernel of size `k` slides over an image of size `n`. Two settings change how
# far it can go:
#
# - **padding** `p`: first add `p` rows or columns of zeros on *each* side, so there are
#   `n + 2p` pixels to slide over. (With `p = 2`, a 5 × 5 kernel gives a 28 × 28 output from a
#   28 × 28 image: "same" padding. Our network uses none.)
# - **stride** `s`: move the window `s` pixels at a time instead of 1.
#
# The window starts at position 0 and has `n + 2p − k` pixels of room to move in; in jumps of
# `s` it makes ⌊(n + 2p − k) / s⌋ moves (⌊ ⌋ rounds down: a window that would stick out past the
# edge is not used). Counting the start too:
#
# $$\text{output size} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1$$
#
# Pooling layers (section 3) slide a window over the image too, with the same arithmetic: a 2 × 2
# max-pooling is a window of size 2 with stride 2. A few examples:
#
# | n | k | stride | padding | output | what |
# |---|---|---|---|---|---|
# | 28 | 5 | 1 | 0 | 24 | `conv1` |
# | 24 | 2 | 2 | 0 | 12 | 2 × 2 pooling |
# | 28 | 5 | 1 | 2 | 28 | "same" padding |
# | 7 | 2 | 2 | 0 | 3 | an odd size: the last row is dropped |
#
# ### Exercise (b): `conv_output_size` (2 points)

# %% nbgrader={"grade": false, "grade_id": "conv_output_size_answer", "locked": false, "schema_version": 3, "solution": true}
def conv_output_size(size, kernel, stride=1, padding=0):
    """Output size, along one axis, of a convolution or pooling window.

    size: int, the input's height (or width) in pixels
    kernel: int, the window's size along that axis
    stride: int >= 1, how many pixels the window moves at a time
    padding: int >= 0, zeros added on each side before sliding
    returns: int, the number of positions of the window: floor((size + 2*padding - kernel) / stride) + 1
    """
    ### BEGIN SOLUTION
    return (size + 2 * padding - kernel) // stride + 1
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "conv_output_size", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Checks exercise (b): a table of convolutions and poolings (padding, stride, odd sizes), and the int type.
check("conv_output_size", conv_output_size)
### BEGIN HIDDEN TESTS
check("conv_output_size_hidden", conv_output_size)
### END HIDDEN TESTS

# %% [markdown]
# With your function, here is the road a 28 × 28 digit travels through the network's
# convolutional part (section 3 explains each step):

# %%
relies_on("conv_output_size")   # a warning here if your conv_output_size did not pass its check
size = 28
for step, k, s in [("conv1, 5x5", 5, 1), ("max-pool, 2x2", 2, 2), ("conv2, 5x5", 5, 1), ("max-pool, 2x2", 2, 2)]:
    new = conv_output_size(size, k, stride=s)
    print(f"{step:14s} {size:2d} x {size:2d}  ->  {new:2d} x {new:2d}")
    size = new

# %% [markdown]
# ## 3. Convolution layers, ReLU and max-pooling
#
# ### Channels: `nn.Conv2d`
#
# A convolution layer applies **several** kernels to the same input, and each kernel makes one
# output map, a *channel*. `nn.Conv2d(in_channels, out_channels, kernel_size)` holds:
#
# - `weight`, of shape `(out_channels, in_channels, k, k)`: one kernel per output channel, and each
#   kernel has one `k × k` slice per *input* channel;
# - `bias`, of shape `(out_channels,)`: one number added to each output map.
#
# Output channel `o` is the sum, over the input channels `c`, of input channel `c` cross-correlated
# with `weight[o, c]`, plus `bias[o]`. With a single input channel (our grayscale digits) that is
# exactly your `cross_correlate`, plus the bias. The layer starts with small random weights;
# training (lesson 4) changes them.
#
# Our network has two convolution layers:
#
# - `conv1`: 1 channel in (the grey levels), 6 out, 5 × 5 kernels: weight `(6, 1, 5, 5)`;
# - `conv2`: 6 channels in (`conv1`'s maps), 16 out, 5 × 5 kernels: weight `(16, 6, 5, 5)`. Each of
#   its kernels looks at all six maps of `conv1` at once, so it can combine simple features
#   (a vertical edge here, a horizontal one there) into bigger ones (a corner).
#
# A small layer with 3 kernels, on a batch of 4 digits:

# %%
relies_on("conv_cross_correlate")   # a warning here if your cross_correlate did not pass its check
layer = nn.Conv2d(1, 3, kernel_size=5)             # 1 channel in, 3 out, 5 x 5 kernels
print("weight:", tuple(layer.weight.shape), " bias:", tuple(layer.bias.shape))
batch = torch.from_numpy(images[:4, None].astype(np.float32) / 255)   # (4, 1, 28, 28)
with torch.no_grad():
    maps = layer(batch)
print("input:", tuple(batch.shape), "-> output:", tuple(maps.shape))
same = cross_correlate(batch[0, 0], layer.weight[0, 0].detach()) + layer.bias[0].item()
print("channel 0 of image 0 is your cross_correlate plus the bias:", torch.allclose(same, maps[0, 0], atol=1e-5))

# %% [markdown]
# (`torch.no_grad()` tells PyTorch not to record the computation for training: we are only
# looking. `.detach()` does the same for one tensor.)
#
# ### ReLU
#
# After each convolution comes a **ReLU** (rectified linear unit): every negative value becomes
# 0, every positive value stays as it is, `relu(v) = max(0, v)`. It keeps "this pattern is here"
# and drops "the opposite is here".
#
# Why bother? Without it, `conv2` applied to `conv1`'s output would be just another linear
# filter (a 9 × 9 one): two layers in a row would compute nothing that one layer couldn't. The
# ReLU bends the straight line, and that is what makes stacking layers worth it. PyTorch has it
# as a function, `F.relu(t)`, and as a layer, `nn.ReLU()`; both compute the same thing.

# %%
print(F.relu(torch.tensor([-2.0, -0.5, 0.0, 1.5, 3.0])))

# %% [markdown]
# ### 2 × 2 max-pooling
#
# **Max-pooling** cuts each map into 2 × 2 blocks and keeps the largest value of each block: the
# height and the width are halved (24 × 24 → 12 × 12), so there are 4 times fewer numbers to
# process. It also makes the network a little less sensitive to where exactly a stroke is: if a
# feature moves by one pixel inside its block, the maximum stays the same. `F.max_pool2d(t, 2)`
# and the layer `nn.MaxPool2d(2)` do it (the window moves by its own size, 2, by default).
# *Average* pooling (`F.avg_pool2d`) keeps the mean of each block instead; the original LeNet used
# it, but our network uses the maximum.

# %%
t = torch.tensor([[1.0, 3.0, 0.0, 0.0],
                  [2.0, 0.0, 0.0, 5.0],
                  [0.0, 0.0, 4.0, 1.0],
                  [7.0, 0.0, 1.0, 1.0]])[None, None]        # (1, 1, 4, 4)
print("max-pooling:\n", F.max_pool2d(t, 2)[0, 0])
print("average pooling, for comparison:\n", F.avg_pool2d(t, 2)[0, 0])


# %% [markdown]
# ReLU and max-pooling can come in either order: taking the largest of four values and then
# replacing it by 0 if it is negative gives the same number as first replacing the negative values
# by 0 and then taking the largest. (ReLU after pooling is even a little faster: 4 times fewer values.)
#
# ### Modules
#
# In PyTorch, a network is a class that inherits from `nn.Module`. Its `__init__` first calls
# `super().__init__()`, then creates the layers that have weights as attributes (`self.name =
# ...`: PyTorch finds their parameters by these names); its `forward(x)` says what to do with an
# input. You never call `forward` yourself: calling the module, `net(x)`, does. A tiny example,
# one convolution and a ReLU:
#
# ```python
# class Tiny(nn.Module):
#     def __init__(self):
#         super().__init__()
#         self.conv = nn.Conv2d(1, 3, kernel_size=5)
#
#     def forward(self, x):
#         return F.relu(self.conv(x))
#
# Tiny()(batch).shape        # torch.Size([4, 3, 24, 24])
# ```
#
# ### Exercise (c): `ConvFeatures` (5 points)
#
# Write the convolutional part of the course's network:
#
# ```
# x (N, 1, 28, 28) → conv1 → ReLU → 2×2 max-pool → conv2 → ReLU → 2×2 max-pool → (N, 16, 4, 4)
# ```
#
# The layer names `conv1` and `conv2` matter: they are the names of the original project's layers, and
# lesson 3 and the trained checkpoints of later lessons use them. ReLU and pooling have no weights,
# so use `F.relu` and `F.max_pool2d` in `forward` (or create `nn.ReLU()` / `nn.MaxPool2d(2)`
# layers in `__init__`, if you prefer; either is fine).

# %% nbgrader={"grade": false, "grade_id": "conv_features_answer", "locked": false, "schema_version": 3, "solution": true}
class ConvFeatures(nn.Module):
    """The convolutional part of the course's network.

    Layers (create them in __init__, with exactly these names):
        conv1: nn.Conv2d, 1 -> 6 channels, 5 x 5 kernels (no padding, stride 1)
        conv2: nn.Conv2d, 6 -> 16 channels, 5 x 5 kernels (no padding, stride 1)
    forward(x):
        x: (N, 1, 28, 28) float32 tensor, a batch of digits scaled to [0, 1]
        returns: (N, 16, 4, 4) float32 tensor:
                 conv1 -> ReLU -> 2 x 2 max-pool -> conv2 -> ReLU -> 2 x 2 max-pool
    """

    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)    # (N, 6, 24, 24) -> (N, 6, 12, 12)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)    # (N, 16, 8, 8) -> (N, 16, 4, 4)
        return x
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "conv_features", "locked": true, "points": 5, "schema_version": 3, "solution": false}
# Checks exercise (c): layer names and weight shapes, then, with known weights, each step: conv1, ReLU + max-pool, conv2, ReLU + max-pool.
check("conv_features", ConvFeatures)
### BEGIN HIDDEN TESTS
check("conv_features_hidden", ConvFeatures)
### END HIDDEN TESTS

# %% [markdown]
# ## 4. The feature maps of one digit
#
# A fresh `ConvFeatures` has random kernels, which make noisy maps. To see what kernels *can* do,
# let us put six hand-made kernels into `conv1`: vertical and horizontal edges, the two diagonals,
# a spot detector and a blur. (Training, in lesson 4, finds its own kernels, often much like
# these.)

# %%
ramp = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
diagonal = np.add.outer(ramp, ramp) / 2                     # dark top-left, bright bottom-right
spot = -np.ones((5, 5)) / 16
spot[1:4, 1:4] = 1 / 9
hand_made = np.stack([np.tile(ramp, (5, 1)), np.tile(ramp, (5, 1)).T, diagonal, diagonal[:, ::-1],
                      spot, np.full((5, 5), 1 / 25)]).astype(np.float32)   # (6, 5, 5)
show_kernels(hand_made[:, None], title="Six hand-made kernels for conv1: edges, diagonals, a spot, a blur")

# %% [markdown]
# Now one digit through the layers. We copy the kernels into a fresh `ConvFeatures`'s `conv1`
# (the shape of its weight is `(6, 1, 5, 5)`), with zero biases. `features.conv1(x)` calls just the
# first layer, so we can look at its six maps (after the ReLU, 24 × 24 each); `features(x)` runs
# your whole `forward`.

# %%
relies_on("conv_features")   # a warning here if your ConvFeatures did not pass its check
features = ConvFeatures()
with torch.no_grad():
    features.conv1.weight.copy_(torch.from_numpy(hand_made)[:, None])     # (6, 1, 5, 5)
    features.conv1.bias.zero_()

x = batch[:1]                                               # one digit, (1, 1, 28, 28)
with torch.no_grad():
    maps1 = F.relu(features.conv1(x))                       # (1, 6, 24, 24)
    out = features(x)                                       # (1, 16, 4, 4)
print("conv1 + ReLU:", tuple(maps1.shape), "  ConvFeatures:", tuple(out.shape))
show_feature_maps(maps1[0], title=f"conv1 + ReLU on a {labels[0]}: what each kernel found")
show_feature_maps(out[0], title="After conv2 (still random) + ReLU + pooling: what lesson 3 reads")

# %% [markdown]
# In the first picture each channel lights up where its pattern is: channel 0 on the left edges
# of the slanted stroke, channel 1 along the top bar, the blur (channel 5) is a soft copy of the
# digit. The second picture shows the 16 maps of 4 × 4 at the end of the convolutional part. With
# a random `conv2` they mean little yet; after training, each will signal a larger shape (a loop,
# a corner, a crossing) in one of 16 regions of the digit. These 16 × 4 × 4 = 256 numbers are all
# that the rest of the network gets to see.
#
# The whole convolutional part at a glance: the same digit through a fresh `ConvFeatures` (random
# kernels), as your `forward` computes it, with the shape after every layer. Between the layers,
# the figure names what your code did to the numbers (it checks for ReLU and pooling by their
# effect).

# %%
relies_on("conv_features")   # a warning here if your ConvFeatures did not pass its check
show_data_flow(ConvFeatures(), batch[:1])

# %% [markdown]
# ## Summary
#
# - A kernel slides over the image; each output pixel is the sum of the window times the kernel
#   (cross-correlation: no flip). It responds where the image looks like the kernel.
# - Output size along an axis: ⌊(n + 2·padding − k) / stride⌋ + 1. No padding shrinks the image by
#   `k − 1`; a 2 × 2 pooling with stride 2 halves it.
# - `nn.Conv2d(in, out, k)`: `out` kernels of shape `(in, k, k)`, weight `(out, in, k, k)`, bias `(out,)`.
# - ReLU, `max(0, v)`, makes depth useful; 2 × 2 max-pooling halves the maps and tolerates small
#   shifts; the two commute.
# - `conv1` (1 → 6) and `conv2` (6 → 16), each + ReLU + max-pool: `(N, 1, 28, 28)` →
#   `(N, 6, 12, 12)` → `(N, 16, 4, 4)`.
#
# Next lesson: flatten those 256 numbers and add the fully connected layers that turn them
# into a digit.
#
# ## Further exercises (not graded)
#
# 1. **Faster.** `image.unfold(0, kH, 1).unfold(1, kW, 1)` is a `(H − kH + 1, W − kW + 1, kH, kW)`
#    view of all the windows at once. Write `cross_correlate` without loops with it, and time both
#    versions against `F.conv2d` on a digit (`%timeit`).
# 2. **Flip.** Compare `cross_correlate(digit, edge)` with `cross_correlate(digit, torch.flip(edge, (0, 1)))`.
#    For which kernels is there no difference?
# 3. **Padding.** What padding would keep 28 × 28 after `conv1`? And after both layers, with that
#    padding, what shape would `ConvFeatures` return? Check with `conv_output_size`, then with
#    `nn.Conv2d(..., padding=...)`.
# 4. **How many numbers?** Count the numbers per digit after each step: 784 → 6·24·24 → ... → 256.
#    Where does the network make the data bigger, and where smaller?
# 5. **Average pooling.** Draw the feature maps of section 4 again with `F.avg_pool2d` in place of
#    the maximum. What changes?
