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
# # Lesson 1: Data and normalization
#
# Over six lessons you will build, train and evaluate a convolutional neural network (CNN)
# that reads handwritten digits. Every network starts with its data, so this lesson is
# about the data: what the digits look like, and how to turn them into the tensors a
# PyTorch network eats.
#
# **By the end of this lesson you will be able to**
#
# - load the MNIST digits and look at them: a grid of examples and how many there are of each digit;
# - explain the shape `(N, C, H, W)` that PyTorch's image layers expect, and add the channel axis `C`;
# - scale pixel values from `0..255` to `[0, 1]`, in the right dtype;
# - convert NumPy arrays to PyTorch tensors with the dtypes the network and the loss need;
# - cut the data into shuffled mini-batches with `TensorDataset` and `DataLoader`.
#
# **Time:** about 45 to 60 minutes. **You need:** Python and a little NumPy (arrays, shapes, indexing).
#
# **How the exercises work.** Each exercise is a function with a description of its inputs and
# outputs (shapes and dtypes). Replace `raise NotImplementedError()` with your code and run the
# cell. The cell under it, which you cannot edit, runs the *checks* of that exercise: it prints
# `✔ ... passed`, or tells you what it expected, what it found, and what the likely mistake is.
# When your notebook is graded, the same checks run again, plus a few more on other inputs.
# You can run every check of this lesson at once from a terminal in the course folder (save the
# notebook first):
#
# ```
# python -m coursekit.selfcheck 01_data
# ```
#
# Run the cells in order, from the top.

# %% nbgrader={"grade": false, "grade_id": "data_setup", "locked": true, "schema_version": 3, "solution": false}
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from coursekit.checks import check, relies_on
from coursekit.data import load_digits
from coursekit.plots import show_digits, show_label_counts, show_pixel_histogram, show_stack

# The same "random" shuffles every time you run the notebook ("_ =" keeps the cell from showing
# the generator object that manual_seed returns).
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Meet the digits
#
# MNIST holds 70,000 handwritten digits, scanned and centred in 28 × 28 pixel squares: 60,000
# for training and 10,000 for testing. Each pixel is one byte, from 0 (black) to 255 (white),
# so NumPy stores the images as `uint8` (unsigned 8-bit integers). `load_digits` reads them
# from the course's data folder (if it says the files are missing, run `make data` once).

# %%
images, labels = load_digits("train")
print("images:", images.shape, images.dtype, " values", images.min(), "to", images.max())
print("labels:", labels.shape, labels.dtype, " values", labels.min(), "to", labels.max())

# %% [markdown]
# `images` has shape `(60000, 28, 28)`: image number, row, column. `labels[i]` is the digit that
# `images[i]` shows. Here are the first 40:

# %%
show_digits(images[:40], labels[:40], title="The first 40 training digits and their labels")

# %% [markdown]
# To the computer, a digit is just a grid of numbers. Here is the middle of the first image,
# rows 8 to 15 and columns 8 to 15: bright strokes are large numbers, the background is 0.

# %%
print(images[0, 8:16, 8:16])

# %% [markdown]
# How many images are there of each digit? If one digit were rare, a network could ignore it and
# still score well, and "accuracy" would hide the problem (lesson 6 comes back to this).

# %%
show_label_counts(labels, title="Training images per digit")
counts = np.bincount(labels, minlength=10)
print("fewest:", counts.min(), "(digit", counts.argmin(), ")   most:", counts.max(), "(digit", counts.argmax(), ")")


# %% [markdown]
# The classes are roughly balanced: between about 5,400 and 6,700 images each. Good news:
# no digit is an afterthought.
#
# ## 2. Shapes: the channel axis
#
# PyTorch's image layers (the convolutions of lesson 2) expect a batch of images as a
# 4-dimensional array of shape `(N, C, H, W)`:
#
# | axis | name | MNIST |
# |---|---|---|
# | 0 | `N`, the images in the batch | 60,000 here, 4 in a mini-batch |
# | 1 | `C`, the channels of each pixel | 1 (grey level); a colour photo has 3 (red, green, blue) |
# | 2 | `H`, the rows | 28 |
# | 3 | `W`, the columns | 28 |
#
# Our images have no channel axis yet: `(60000, 28, 28)`. Adding one does not change a single
# pixel; it only tells PyTorch "each pixel has 1 value". In NumPy, indexing with `None`
# (also written `np.newaxis`) inserts an axis of length 1: for a `(3, 5)` array `a`,
# `a[:, None]` has shape `(3, 1, 5)` and `a[None]` has shape `(1, 3, 5)`.
# Careful: the channel goes *after* the image axis. Some libraries (TensorFlow, for one) put
# channels last, `(N, H, W, C)`; PyTorch puts them first.
#
# ### Exercise (a): `add_channel` (2 points)

# %% nbgrader={"grade": false, "grade_id": "data_add_channel_answer", "locked": false, "schema_version": 3, "solution": true}
def add_channel(images):
    """Add a channel axis of length 1, right after the image axis.

    images: (N, 28, 28) uint8 array, N grayscale images, pixels 0..255
    returns: (N, 1, 28, 28) uint8 array with exactly the same pixels
             (result[i, 0] is images[i]); N can be any number, even 1
    """
    ### BEGIN SOLUTION
    return images[:, np.newaxis, :, :]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "data_add_channel", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Checks exercise (a): shape, dtype, and that no pixel moved.
check("data_add_channel", add_channel)
### BEGIN HIDDEN TESTS
check("data_add_channel_hidden", add_channel)
### END HIDDEN TESTS

# %% [markdown]
# This picture shows the first four training images once they have their channel axis:

# %%
relies_on("data_add_channel")   # a warning here if your add_channel did not pass its check
show_stack(add_channel(images[:4]))
print(images.shape, "->", add_channel(images).shape)


# %% [markdown]
# ## 3. Scaling the pixels to [0, 1]
#
# A network multiplies its inputs by weights and adds them up. The weights start as small random
# numbers chosen for inputs of about size 1; feed it values up to 255 and the sums, and the
# gradients that train the weights, come out hundreds of times too large, so training jumps
# around instead of settling. So we scale every pixel to `[0, 1]` by dividing by **255**, the
# largest pixel value: 0 stays 0.0 and 255 becomes exactly 1.0. (Dividing by 256 is a classic
# slip: then white is 0.996, not 1.)
#
# Two details about dtypes:
#
# - Integer arrays can't hold 0.5. Dividing a `uint8` array with `/` gives floats, but NumPy picks
#   `float64`, 8 bytes per number. Networks use `float32` (4 bytes, plenty precise, and what
#   PyTorch's layers expect). `a.astype(np.float32)` returns a `float32` copy of an array `a`,
#   and dividing a `float32` array by a plain number keeps it `float32`.
# - `//` is integer division: `200 // 255` is 0. Not what we want.
#
# ### Exercise (b): `normalize` (3 points)

# %% nbgrader={"grade": false, "grade_id": "data_normalize_answer", "locked": false, "schema_version": 3, "solution": true}
def normalize(images):
    """Scale pixel values from 0..255 to 0.0..1.0.

    images: uint8 array of any shape, e.g. (N, 1, 28, 28), pixels 0..255
    returns: float32 array of the same shape: each pixel divided by 255
             (0 -> 0.0, 255 -> 1.0); the input array is left unchanged
    """
    ### BEGIN SOLUTION
    return images.astype(np.float32) / 255
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "data_normalize", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks exercise (b): range, exact values, dtype, shape.
check("data_normalize", normalize)
### BEGIN HIDDEN TESTS
check("data_normalize_hidden", normalize)
### END HIDDEN TESTS

# %% [markdown]
# The same 1,000 images before and after: the shape of the histogram does not change, only the
# numbers on its axis. (Most pixels are background, 0, hence the log scale.)

# %%
relies_on("data_add_channel", "data_normalize")   # a warning here if your code failed these checks
sample = add_channel(images[:1000])
show_pixel_histogram(sample, normalize(sample), names=["before", "after normalize"])


# %% [markdown]
# ## 4. From NumPy arrays to PyTorch tensors
#
# PyTorch works on *tensors*, its version of NumPy's arrays (they can live on a GPU and remember
# how they were computed, which is how networks learn). `torch.from_numpy(a)` turns an array into
# a tensor without copying it, keeping its dtype: `float32` becomes `torch.float32`, `int64`
# becomes `torch.int64`.
#
# The dtypes matter:
#
# - the images, `x`, must be `torch.float32`, the dtype of the network's weights;
# - the labels, `y`, must be `torch.int64` (also called `long`): the loss function of lesson 4,
#   `CrossEntropyLoss`, takes class *numbers*, not floats.
#
# ### Exercise (c): `to_tensors` (3 points)
#
# Use your `add_channel` and `normalize`.

# %% nbgrader={"grade": false, "grade_id": "data_to_tensors_answer", "locked": false, "schema_version": 3, "solution": true}
def to_tensors(images, labels):
    """Turn the digits into the tensors the network and the loss take.

    images: (N, 28, 28) uint8 array, pixels 0..255
    labels: (N,) int64 array, digits 0..9
    returns: (x, y)
        x: (N, 1, 28, 28) torch.float32 tensor, pixels scaled to [0, 1]
        y: (N,) torch.int64 tensor, y[i] is the label of x[i]
    """
    ### BEGIN SOLUTION
    x = torch.from_numpy(normalize(add_channel(images)))
    y = torch.from_numpy(labels).long()
    return x, y
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "data_to_tensors", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks exercise (c): both tensors' shapes, dtypes and values.
check("data_to_tensors", to_tensors)
### BEGIN HIDDEN TESTS
check("data_to_tensors_hidden", to_tensors)
### END HIDDEN TESTS

# %% [markdown]
# Now the whole training set, and the test set we will use in lesson 5:

# %%
relies_on("data_to_tensors")   # a warning here if your to_tensors did not pass its check
x_train, y_train = to_tensors(images, labels)
test_images, test_labels = load_digits("test")
x_test, y_test = to_tensors(test_images, test_labels)
print("x_train:", tuple(x_train.shape), x_train.dtype, f"({x_train.nelement() * x_train.element_size() / 1e6:.0f} MB)")
print("y_train:", tuple(y_train.shape), y_train.dtype)
print("x_test: ", tuple(x_test.shape), x_test.dtype, "  y_test:", tuple(y_test.shape), y_test.dtype)


# %% [markdown]
# ## 5. Mini-batches: `TensorDataset` and `DataLoader`
#
# A network does not learn from all 60,000 images at once, nor from one image at a time: it
# learns from **mini-batches**, small groups of images (this course uses 4). After each batch
# it nudges its weights a little (lesson 4). One pass over the whole training set is an
# **epoch**.
#
# Two PyTorch classes do the bookkeeping:
#
# - `TensorDataset(x, y)` pairs the tensors up: `dataset[i]` is `(x[i], y[i])`, and `len(dataset)` is `N`.
# - `DataLoader(dataset, batch_size=4, shuffle=True)` hands out the pairs in batches: iterating
#   over it gives `(x_batch, y_batch)` with shapes `(4, 1, 28, 28)` and `(4,)`. The last batch is
#   smaller when `N` is not a multiple of 4.
#
# Why shuffle? The images might be stored in some order (say all the 0s first). A network fed
# one digit after another would learn "everything is a 0", then "everything is a 1"... With
# `shuffle=True` the loader draws a fresh random order at the start of **every** epoch, and
# each image still comes exactly once per epoch, together with its own label.
#
# ### Exercise (d): `make_loader` (4 points)

# %% nbgrader={"grade": false, "grade_id": "data_make_loader_answer", "locked": false, "schema_version": 3, "solution": true}
def make_loader(x, y, batch_size=4, shuffle=True):
    """Wrap the tensors in a TensorDataset and a DataLoader.

    x: (N, 1, 28, 28) float32 tensor; y: (N,) int64 tensor, y[i] the label of x[i]
    batch_size: images per batch; shuffle: draw a new random order every epoch
    returns: a torch.utils.data.DataLoader; iterating over it yields pairs
        (x_batch (B, 1, 28, 28) float32, y_batch (B,) int64), B = batch_size
        (the last batch may be smaller), every sample exactly once per epoch
    """
    ### BEGIN SOLUTION
    dataset = TensorDataset(x, y)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "data_make_loader", "locked": true, "points": 4, "schema_version": 3, "solution": false}
# Checks exercise (d): batches, batch size, every sample once, pairs kept, shuffling.
check("data_make_loader", make_loader)
### BEGIN HIDDEN TESTS
check("data_make_loader_hidden", make_loader)
### END HIDDEN TESTS

# %% [markdown]
# Here is the whole pipeline in one line, from the raw digits to shuffled mini-batches, and one
# mini-batch exactly as the network will see it in lesson 4:

# %%
relies_on("data_make_loader", "data_to_tensors")   # a warning here if your code failed these checks
train_loader = make_loader(*to_tensors(images, labels))
x_batch, y_batch = next(iter(train_loader))
print("one batch:", tuple(x_batch.shape), x_batch.dtype, "and", tuple(y_batch.shape), y_batch.dtype)
print("batches per epoch:", len(train_loader))
show_digits(x_batch, y_batch, title="A random mini-batch")

# %% [markdown]
# ## Summary
#
# - MNIST: 60,000 training and 10,000 test images of 28 × 28 `uint8` pixels (0..255), labels 0..9,
#   roughly the same number of each digit.
# - PyTorch's image layers want `(N, C, H, W)`: we added a channel axis of length 1 at position 1.
# - We scaled the pixels to `[0, 1]` by dividing by 255, in `float32`.
# - The network takes `x` as a `float32` tensor; the loss takes the labels `y` as an `int64` tensor.
# - `TensorDataset` keeps each image with its label; `DataLoader` serves shuffled mini-batches,
#   a new order every epoch.
#
# Next lesson: the convolution layers that read these batches.
#
# ## Further exercises (not graded)
#
# 1. **Standardize.** Compute the mean and the standard deviation of `x_train` (about 0.13 and
#    0.31). Many courses go one step further than ours and use `(x - mean) / std`, so the inputs have
#    mean 0 and standard deviation 1. What range do the pixels have then? Why must the *test* images be
#    transformed with the mean and standard deviation of the *training* images?
# 2. **Average digits.** Draw the mean image of each digit: `x_train[y_train == d].mean(0)` for
#    `d` in 0..9. Which two digits look most alike?
# 3. **Batch size and speed.** Time one full pass over `make_loader(x_train, y_train, batch_size=b)`
#    for `b` = 4, 64 and 1024 (`import time`; `time.perf_counter()`). How many batches is each? Why is
#    the small one so much slower per image?
# 4. **Flip a digit.** Show `images[0][:, ::-1]` (a mirror image). Is it still a digit? Which digits
#    would survive mirroring, and what does that say about "data augmentation" for MNIST?
