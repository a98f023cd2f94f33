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
# # Lesson 6: What the model gets wrong, and for whom
#
# In lessons 1 to 5 you built a CNN that reads handwritten digits and measured it with one number:
# its accuracy on the test set, 97% or more in lesson 5. This lesson looks behind that number.
# *Which* digits does the model get wrong? What happens when the digits are written a little
# differently from the ones it learned from? Who would bear those errors? And what changes when
# the same technology is pointed at people's faces?
#
# **By the end of this lesson you will be able to**
#
# - measure accuracy separately for each digit, and explain why one overall accuracy can hide a
#   group the model fails;
# - write image transformations in NumPy that make digits look unlike MNIST's (moved off-centre,
#   drawn with a thicker pen) and measure how much accuracy drops;
# - read the results to say which digits and which writing styles the model fails, and who would
#   pay for those failures;
# - explain the concerns that face recognition raises (privacy, consent, bias in who is in the
#   data), with evidence from published audits, and connect them to what you measured.
#
# **Time:** about 75 to 90 minutes: 30 for the code, the rest for reading, looking and writing.
# **You need:** lessons 1 to 5 (their code is given here, ready to run), Python and a little NumPy.
#
# **How this lesson is graded.** Three exercises are functions, checked like before: replace
# `raise NotImplementedError()` with your code and run the cell under it, which prints
# `✔ ... passed` or what it expected, what it found and the likely mistake (`python -m
# coursekit.selfcheck 06_ethics` runs all the checks from a terminal). Four questions are
# **written answers**: double-click the cell that says *YOUR ANSWER HERE* and write a few
# sentences (Markdown). An instructor grades them by hand. There is no single right opinion;
# what counts is that you use the evidence (quote the numbers from *your* charts), reason
# from it, and consider more than one side.
#
# Run the cells in order, from the top.

# %% nbgrader={"grade": false, "grade_id": "ethics_setup", "locked": true, "schema_version": 3, "solution": false}
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from coursekit.checks import check, relies_on
from coursekit.data import load_digits
from coursekit.plots import show_accuracy_bars, show_accuracy_grid, show_digit_rows, show_digits
from coursekit.progress import progress

torch.manual_seed(0)       # the same "random" numbers every time you run the notebook
torch.set_num_threads(1)   # a network this small, fed small batches, runs as fast on one CPU core


# %% [markdown]
# ## 1. A model to examine
#
# We need a trained model to examine. The cell below holds what you wrote in the earlier lessons:
# the network `Net` (lessons 2 and 3), `to_x`, which scales the pixels and adds the channel axis
# (lesson 1), the training loop (lesson 4) and `predict`, which returns the model's guesses
# (lesson 5).
#
# To keep this lesson quick, `train_briefly` trains a **shortened run**: the first 20,000
# training digits once, in batches of 32 with a learning rate of 0.03 (the course recipe uses
# batches of 4 and 0.001 for 10 epochs). The cell prints how long it took on your machine and the
# accuracy it reached, a little below your lesson 5 model's. A less trained model shows its weak
# spots more clearly, but every model has them: you can repeat the analysis with your lesson 5
# model (see the further exercises). The numbers in the rest of this lesson are the ones *your*
# notebook prints: they change a little from one computer to another, so answer from yours.

# %% nbgrader={"grade": false, "grade_id": "ethics_given_model", "locked": true, "schema_version": 3, "solution": false} given_from=["03_fc:fc_net_answer"]
# Given code: `make lessons` fills this cell with the solution code of the cells named in given_from.

# %% nbgrader={"grade": false, "grade_id": "ethics_given_helpers", "locked": true, "schema_version": 3, "solution": false}
def to_x(images):
    """(N, 28, 28) uint8 pixels -> (N, 1, 28, 28) float32 tensor in [0, 1] (lesson 1)."""
    return torch.from_numpy(images[:, None].astype(np.float32) / 255)


def train_briefly(net, images, labels, *, batch_size=32, lr=0.03, seed=0):
    """One pass of SGD with momentum over (images, labels) (lesson 4's loop, shortened).

    images: (N, 28, 28) uint8; labels: (N,) int64. Trains net in place; returns the seconds taken.
    """
    start = time.perf_counter()
    loader = DataLoader(TensorDataset(to_x(images), torch.from_numpy(labels)), batch_size=batch_size,
                        shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    net.train()
    for x, y in progress(loader, "training"):
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def predict(net, images, batch_size=1000):
    """The model's guesses (lesson 5): (N, 28, 28) uint8 -> (N,) int64 digits 0..9."""
    net.eval()
    with torch.no_grad():
        guesses = [net(to_x(images[i:i + batch_size])).argmax(dim=1) for i in range(0, len(images), batch_size)]
    return torch.cat(guesses).numpy()


def one_time_in(accuracy):
    """An accuracy in [0, 1] as an error rate in words: 'misread one time in 13'."""
    if not accuracy < 1:
        return "never misread"
    return f"misread one time in {1 / (1 - accuracy):.0f}"


# %%
images, labels = load_digits("train")
test_images, test_labels = load_digits("test")

net = Net()
seconds = train_briefly(net, images[:20000], labels[:20000])
test_pred = predict(net, test_images)
overall = np.mean(test_pred == test_labels)
print(f"trained in {seconds:.1f} s; accuracy on the 10,000 test digits: {overall:.2%} "
      f"({np.sum(test_pred != test_labels)} read wrong)")


# %% [markdown]
# ## 2. Accuracy is an average
#
# Take a round example: a model that reads 96% of the 10,000 test digits right reads 400 wrong. The
# 96% does not say *which* 400. If they were spread evenly, every digit would be read right 96% of
# the time. If they were all 9s (the test set has about 1,000 of them), a 9 would be misread 40%
# of the time, and the headline would still say 96%. An average over everyone can hide a group the
# model fails, all the more so when that group is small. (Your model's own figures are printed
# above.)
#
# So the first question of any fairness audit is to **break the results down by group**. For
# digits, the groups are the ten classes. Take six test images:
#
# | image | 0 | 1 | 2 | 3 | 4 | 5 |
# |---|---|---|---|---|---|---|
# | true digit `y_true` | 0 | 0 | 0 | 1 | 1 | 2 |
# | prediction `y_pred` | 0 | 0 | 1 | 1 | 1 | 0 |
#
# The overall accuracy is 4/6. Per digit: the 0s were read right 2 times out of **3**, the 1s
# 2 times out of **2**, and the only 2 was misread (0 out of **1**). The denominators are how many
# images of each digit there *are* (count `y_true == d`). This answers the question of the person who wrote the digit: "if I
# write a d, how likely is it to be read as a d?" (It is also called the *recall* of d.)
#
# Don't confuse it with a different question, "when the model says d, how often is it right?"
# (the *precision*: divide by how often d was *predicted*; for the digit 1 above that is 2 out
# of 3). And a digit that never occurs in `y_true` has no accuracy at all: we have no evidence
# about it, which is not the same as 0% or 100%. We mark it `NaN` ("not a number").
#
# Useful NumPy: `y_true == d` is a boolean array (a *mask*) that is `True` at the images of digit
# `d`; `a[mask]` keeps the elements where the mask is `True`; the mean of a boolean array is the
# fraction of `True`s; `mask.sum()` counts them; `np.full(10, np.nan)` is ten NaNs.
#
# ### Exercise (a): `per_class_accuracy` (3 points)

# %% nbgrader={"grade": false, "grade_id": "ethics_per_class_answer", "locked": false, "schema_version": 3, "solution": true}
def per_class_accuracy(y_true, y_pred):
    """Accuracy on each true digit.

    y_true: (N,) int64 array, the true digits 0..9
    y_pred: (N,) int64 array, the model's guesses 0..9 (y_pred[i] is its guess for image i)
    returns: (10,) float64 array; element d is the fraction of the images whose TRUE digit
             is d that were predicted d (a number in [0, 1]). A digit that never occurs in
             y_true gets NaN (np.nan). y_true and y_pred are left unchanged.
    """
    ### BEGIN SOLUTION
    acc = np.full(10, np.nan)
    for d in range(10):
        mine = y_true == d
        if mine.any():
            acc[d] = np.mean(y_pred[mine] == d)
    return acc
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ethics_per_class", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks exercise (a): shape, dtype, the right denominators, NaN for a missing digit.
check("ethics_per_class", per_class_accuracy)
### BEGIN HIDDEN TESTS
check("ethics_per_class_hidden", per_class_accuracy)
### END HIDDEN TESTS

# %% [markdown]
# Now our model, digit by digit. With every digit's accuracy high, bars of accuracy on an axis
# from 0 to 1 all look alike; so the chart shows each digit's **error rate**, the share of its test images
# that are misread (1 − its accuracy), on an axis that starts at 0: a digit misread four times as
# often has a bar four times as high. The dashed line is the overall error rate; the colours go
# from green (the fewest errors) to red (the most).

# %%
relies_on("ethics_per_class")   # a warning here if your per_class_accuracy did not pass its check
per_digit = per_class_accuracy(test_labels, test_pred)
show_accuracy_bars(per_digit, reference=overall, errors=True, xlabel="true digit",
                   title="How often each digit of the test set is misread (error rate)")
worst, best = int(np.nanargmin(per_digit)), int(np.nanargmax(per_digit))
missed = (test_labels == worst) & (test_pred != worst)
print(f"In your run: worst digit {worst}, {per_digit[worst]:.1%} right ({one_time_in(per_digit[worst])}); "
      f"best digit {best}, {per_digit[best]:.1%} right ({one_time_in(per_digit[best])}).")
if per_digit[best] < 1:
    print(f"A {worst} is misread {(1 - per_digit[worst]) / (1 - per_digit[best]):.1f} times as often as a {best}.")
taken_for = np.bincount(test_pred[missed], minlength=10)
print(f"The {missed.sum()} misread {worst}s were taken for: "
      + ", ".join(f"{d} ({n})" for d, n in sorted(enumerate(taken_for), key=lambda t: -t[1]) if n))
show_digits(test_images[missed], test_labels[missed], test_pred[missed], max_images=20,
            title=f"Some of the misread {worst}s (true → predicted)")


# %% [markdown]
# Are the errors spread evenly in your run? Compare the tallest bar with the shortest, as the cell
# does: how often is your worst digit misread, against your best? Then look at the
# misread digits: how many are unusual ways of writing that digit (a small or open loop, a long
# straight tail, a slant), and how many would puzzle a person?
#
# ## 3. Digits that don't look like MNIST
#
# The test set comes from the same source as the training set, so it flatters the model: it tests
# on the kind of writing the model has already seen. MNIST's digits share a house style. They were
# written by employees of the US Census Bureau and by American high-school students; each was
# scaled to fit a 20 × 20 pixel box and centred in the 28 × 28 image by its centre of mass;
# strokes are a few pixels wide (about 2 to 4), white on black, and mostly upright.
#
# Real writing varies in all of these: felt-tip pens and fine pencils, digits written off-centre
# in their box or cropped badly by a scanner, slanted writing, dark ink on white paper that
# nobody inverted. A person reads all of them without effort. We will write five transformations
# that imitate such differences, and measure what they do to the model:
#
# | transformation | imitates | |
# |---|---|---|
# | `shift(images, dx, dy)` | a digit off-centre in its box | exercise (b) |
# | `thicken(images)` | a thick felt-tip pen | exercise (c) |
# | `thin(images)` | a fine pencil | given (uses your `thicken`) |
# | `rotate(images, degrees)` | slanted writing, a tilted scan | given |
# | `invert(images)` | dark ink on white paper | given |
#
# All of them take and return `(N, 28, 28)` `uint8` arrays, like `load_digits`.

# %% nbgrader={"grade": false, "grade_id": "ethics_given_transforms", "locked": true, "schema_version": 3, "solution": false}
def invert(images):
    """Dark ink on light paper: pixel p becomes 255 - p. (N, 28, 28) uint8 -> (N, 28, 28) uint8."""
    return 255 - images


def thin(images):
    """A finer pen: each pixel becomes the DARKEST of its 3 x 3 neighbourhood (outside the image
    ignored), the mirror image of thicken: invert, thicken the (now white) background, invert back.
    (N, 28, 28) uint8 -> (N, 28, 28) uint8. Needs your thicken (exercise c)."""
    return invert(thicken(invert(images)))


def rotate(images, degrees):
    """Turn each digit about the centre of its image by `degrees` (positive: anticlockwise).
    (N, 28, 28) uint8 -> (N, 28, 28) uint8; corners that come in from outside are black."""
    a = np.deg2rad(degrees)
    # affine_grid maps each OUTPUT pixel to the input point it samples (coordinates in [-1, 1])
    theta = torch.tensor([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0]], dtype=torch.float32)
    x = torch.from_numpy(images[:, None].astype(np.float32))                    # (N, 1, 28, 28)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    turned = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return turned[:, 0].round().clamp(0, 255).numpy().astype(np.uint8)


# %% [markdown]
# ### Exercise (b): `shift` (3 points)
#
# Move every digit `dx` pixels to the right and `dy` pixels down (negative values: left and up).
# What is pushed over an edge is lost, and what comes in from the other side is black (0).
# With `images[n, row, column]`, a pixel at `(r, c)` lands on `(r + dy, c + dx)`: `dy` changes the
# row (axis 1), `dx` the column (axis 2). Row 0 is the top.
#
# ```
# dx = 2, dy = 1:            before          after
#                           . . . . .       . . . . .
#                           . A B . .       . . . . .
#                           . C D . .       . . . A B
#                           . . . . .       . . . C D
# ```
#
# Two traps. `np.roll` moves an array but **wraps around**: what leaves on the right comes back on
# the left, which is not what a shifted pen stroke does. And slices: a natural way is to make a
# black image with `np.zeros_like(images)` (same shape, same `uint8` dtype) and copy the part of
# the digit that stays inside, with one slice for where it comes from and one for where it goes.
# Work the bounds out for `dx > 0`, `dx < 0` **and** `dx = 0` (careful: `a[:-0]` is empty,
# because `-0` is `0`); `max(0, ...)` and `min(28, ...)` help.

# %% nbgrader={"grade": false, "grade_id": "ethics_shift_answer", "locked": false, "schema_version": 3, "solution": true}
def shift(images, dx, dy):
    """Move each digit dx pixels right and dy pixels down, filling with black.

    images: (N, 28, 28) uint8 array
    dx: int, columns to move right (negative: left); dy: int, rows to move down
        (negative: up); -28 < dx, dy < 28
    returns: (N, 28, 28) uint8 array with result[n, r + dy, c + dx] = images[n, r, c]
             wherever (r + dy, c + dx) is inside the image, and 0 everywhere else
             (nothing wraps around). images is left unchanged.
    """
    ### BEGIN SOLUTION
    h, w = images.shape[1:]
    result = np.zeros_like(images)
    result[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return result
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ethics_shift", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks exercise (b): direction, axes, black fill without wrap-around, dtype, dx or dy = 0.
check("ethics_shift", shift)
### BEGIN HIDDEN TESTS
check("ethics_shift_hidden", shift)
### END HIDDEN TESTS

# %% [markdown]
# Eight test digits, moved three ways, with the model's guess above each (red when it is wrong).
# A shift of 3 or 4 pixels is small: the digit stays (nearly) whole and you read it as easily as
# before.

# %%
relies_on("ethics_shift")   # a warning here if your shift did not pass its check
sample, sample_labels = test_images[:8], test_labels[:8]
moved = {"original": sample, "3 right": shift(sample, 3, 0), "4 left, 2 up": shift(sample, -4, -2),
         "3 left, 3 down": shift(sample, -3, 3)}
show_digit_rows(moved, labels=sample_labels, predictions={k: predict(net, v) for k, v in moved.items()},
                title="Shifted digits and what the model reads")


# %% [markdown]
# ### Exercise (c): `thicken` (3 points)
#
# A thicker pen: each pixel becomes the **brightest** pixel of the 3 × 3 square centred on it
# (itself and its 8 neighbours, the diagonal ones included). A stroke then grows by one pixel on
# every side, and a single bright dot becomes a 3 × 3 block:
#
# ```
# before          after
# 0 0 0 0 0       0 0 0 0 0
# 0 0 0 0 0       0 9 9 9 0
# 0 0 9 0 0   ->  0 9 9 9 0
# 0 0 0 0 0       0 9 9 9 0
# 0 0 0 0 0       0 0 0 0 0
# ```
#
# On the edge of the image, the part of the square that sticks out doesn't count (think of it
# as black, 0). You know an operation that takes the maximum over small squares: the max-pooling
# of lesson 2. There it used 2 × 2 squares that jumped 2 pixels at a time, to halve the image.
# Here the square is 3 × 3, moves **1** pixel at a time (`stride`; it defaults to the square's
# size) and is padded by 1 pixel on every side (`padding`), so the output stays 28 × 28.
# `F.max_pool2d` wants a tensor of shape `(N, C, H, W)` (floats, as in the network): convert the
# pixels, add the channel axis, and undo both at the end. (Pure NumPy works too: pad the images with a border of zeros,
# `np.pad`, and take the maximum of the nine shifted 28 × 28 views.)
#
# Your `thicken` also gives us `thin` (a finer pen): the given `thin` inverts the image,
# thickens the background, and inverts back.

# %% nbgrader={"grade": false, "grade_id": "ethics_thicken_answer", "locked": false, "schema_version": 3, "solution": true}
def thicken(images):
    """A thicker pen: each pixel becomes the brightest pixel of the 3 x 3 square centred on
    it (pixels outside the image don't count).

    images: (N, 28, 28) uint8 array
    returns: (N, 28, 28) uint8 array; images is left unchanged
    """
    ### BEGIN SOLUTION
    x = torch.from_numpy(images).float().unsqueeze(1)            # (N, 1, 28, 28) float32
    x = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)      # (N, 1, 28, 28): max of each 3 x 3 square
    return x.squeeze(1).numpy().astype(np.uint8)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ethics_thicken", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks exercise (c): shape, dtype, the maximum of each 3 x 3 square, the edges.
check("ethics_thicken", thicken)
### BEGIN HIDDEN TESTS
check("ethics_thicken_hidden", thicken)
### END HIDDEN TESTS

# %% [markdown]
# All five transformations on the same eight digits, with the model's guesses:

# %%
relies_on("ethics_shift", "ethics_thicken")   # a warning here if your code failed these checks
styles = {"original": sample, "thicker": thicken(sample), "thinner": thin(sample),
          "3 right": shift(sample, 3, 0), "rotated 30°": rotate(sample, 30), "inverted": invert(sample)}
show_digit_rows(styles, labels=sample_labels, predictions={k: predict(net, v) for k, v in styles.items()},
                title="The same digits in other styles (above each: the model's guess)")

# %% [markdown]
# ## 4. How much does accuracy drop, and for which digits?
#
# The next cell applies each transformation to the first 2,000 test digits, and measures the
# accuracy: overall (the bar chart) and for each digit (the table below it, one row per style).

# %%
relies_on("ethics_per_class", "ethics_shift", "ethics_thicken")   # a warning here if your code failed these checks
subset, subset_labels = test_images[:2000], test_labels[:2000]
variants = {
    "original": subset,
    "thicker": thicken(subset),
    "thinner": thin(subset),
    "3 px right": shift(subset, 3, 0),
    "3 left, 3 down": shift(subset, -3, 3),
    "rotated 30°": rotate(subset, 30),
    "rotated -30°": rotate(subset, -30),
    "inverted": invert(subset),
}
accuracy, per_digit_table, guessed = {}, [], {}
for name, digits in variants.items():
    guesses = guessed[name] = predict(net, digits)
    accuracy[name] = np.mean(guesses == subset_labels)
    per_digit_table.append(per_class_accuracy(subset_labels, guesses))
    print(f"{name:>15}: {accuracy[name]:6.1%}   worst digit {int(np.nanargmin(per_digit_table[-1]))} "
          f"({np.nanmin(per_digit_table[-1]):.0%})")
show_accuracy_bars(list(accuracy.values()), list(accuracy), reference=accuracy["original"],
                   reference_label="original", title="Accuracy on 2,000 test digits, by style")
show_accuracy_grid(np.array(per_digit_table), list(variants),
                   title="Accuracy for each digit (columns) and style (rows)")
share = {name: np.bincount(g, minlength=10) / len(g) for name, g in guessed.items()}   # (10,) per style
print("In your run, against the original digits (and the guess each style makes more often than the originals):")
for name in list(variants)[1:]:
    more = int(np.argmax(share[name] - share["original"]))       # the digit guessed most above its usual share
    print(f"{name:>15}: {100 * (accuracy[name] - accuracy['original']):+6.1f} points; guessed {more} for "
          f"{share[name][more]:.0%} of the digits (originals: {share['original'][more]:.0%})")

# %% [markdown]
# Read the two charts slowly, with the lines printed under them (your run's numbers):
#
# - Which styles cost the most points, and which the least? A person reads all of them without
#   effort; a shift of three pixels is barely visible.
# - Where a style pushes the model to one guess, why that digit? (Thin strokes, for instance, are
#   what a 1 looks like to many models; look at the "thinner" row of the table: which digits
#   still score well?)
# - **Inverted** digits: to the model, "a digit" means white strokes on black.
# - The table shows that each style hurts **different digits**: no single number describes who is
#   affected.
#
# (Part of what "thinner" measures is ink that is gone: `thin` erases every stroke less than three
# pixels wide, and leaves one pixel of a three-pixel stroke. Look at the "thinner" digits above
# before you blame the model for all of it.)
#
# Why? The model never saw anything but MNIST's style, so nothing told it that stroke width,
# position or ink colour don't matter. A CNN's convolutions and poolings tolerate a small
# shift, but its fully connected layers learned *where* strokes usually are. Nothing is broken
# in the code: the model learned exactly what its data showed it, and no more.
#
# There are remedies: train on varied data (here, *augmentation*: random shifts, rotations and
# stroke widths added during training; see the further exercises), collect data from the people
# who will use the system, and above all **test on them, group by group**, before deployment,
# and publish the limits (*model cards*, Mitchell et al., 2019, document a model's intended use
# and its accuracy per group; *datasheets for datasets*, Gebru et al., 2018, document where data
# came from and who is in it).
#
# ### Your own handwriting
#
# Draw a digit on the black pad below with the mouse, and let go of the button: the pad shows the
# 28 x 28 image your network gets, prepared the way MNIST's digits were (cropped to the ink, fitted
# into 20 x 20 pixels, centred by its centre of mass), its guess and the ten probabilities.
# **Clear** starts again. Try a 4 open and closed, a 7 with a bar, a 1 with a flag, a slanted 9, a
# digit drawn small in a corner, a very thick one.
#
# Expect your own writing to be read worse than the test set: you draw with a mouse, not a pen;
# your strokes are not MNIST's width; and the network only ever saw the writing of the people
# MNIST collected. That is section 4's finding, tried on yourself.

# %%
from coursekit.draw import DigitPad

DigitPad(net, to_x)

# %% [markdown]
# ### Question 1: who gets hurt? (2 points, graded by hand)
#
# Suppose a bank used this model to read the amounts written on cheques, or a post office to
# read postcodes. Using **your** charts: which two digits and which two styles does the model
# read worst (give the accuracies)? Name two groups of people whose writing or documents look
# like those styles (for instance people who write with a fine pen, whose hands shake, who
# learned to write digits differently, who use forms with their own layout...), and say
# concretely what a misread digit costs them. (4 to 6 sentences.)

# %% [markdown] nbgrader={"grade": true, "grade_id": "ethics_who_fails", "locked": false, "points": 2, "schema_version": 3, "solution": true}
# *Model answer (the rubric is in solutions/rubrics/06_ethics.md; its figures come from one run of
# this master, and a student's own run gives others).* On the test set the worst
# digits are 9 (about 92%) and 8 (about 93%), against 98% for 0 and 1, so a 9 is misread four
# to five times as often as a 0; among the styles, inverted digits (about 29%) and a 3-pixel shift
# down and left (about 41%) or thin strokes (about 46%) are read worst, and thin 8s and 9s fall
# below 25%. People who write with a fine pencil or a light hand (older people, people with a
# tremor, whose strokes are thin and faint), and people whose forms are scanned as dark ink on
# white or cropped off-centre, would see many more errors than the 96% suggests; so would people
# who learned to write 1, 7 or 9 differently (a long flag on the 1, a crossed 7). A misread
# amount on a cheque means a wrong payment or a rejected cheque, a delay, fees, and the burden of
# proving the machine wrong; a misread postcode delays or loses mail. The errors fall on the same
# people again and again, not at random.

# %% [markdown]
# ### Question 2: what does one accuracy figure hide? (2 points, graded by hand)
#
# A manager reads your model's accuracy on the test set (section 1) and wants to deploy it.
# Explain in 4 to 6 sentences what this number does not tell them, using your results, and what
# you would report instead (or in addition) before anyone decides.

# %% [markdown] nbgrader={"grade": true, "grade_id": "ethics_one_number", "locked": false, "points": 2, "schema_version": 3, "solution": true}
# *Model answer (figures from one run of this master).* The accuracy (about 96% there) is an
# average over the test set, and the test set comes from the same
# source, and the same writing style, as the training data. It hides that the errors are
# concentrated (9s are misread about four to five times as often as 0s) and that accuracy
# collapses for writing that looks different (a fine pen about 46%, inverted scans about 29%, a
# 3-pixel shift costs 20 to 55 points). I would report the accuracy per digit and per style (the worst group,
# not only the average), on data that looks like what the system will really see, with the
# number of examples behind each figure; say who was and was not represented in the data; state
# the intended use and where the model must not be used; and say what happens when it is wrong
# (a person checks uncertain cases, people can appeal).

# %% [markdown]
# ## 5. The same technology, pointed at faces
#
# Our network maps a small picture to one of ten labels. Face recognition uses the same building
# blocks (convolutions, trained on millions of labelled photos) for three kinds of task:
# **verification**, one to one ("is this the phone's owner?"), **identification**, one to many
# ("who is this, among the millions of faces in a database?"), and **classification** of a face
# by attributes such as age or gender. Everything we saw with digits carries over, and more is
# at stake, because now the pictures are of people.
#
# **Privacy.** You can change a password, not your face. A face can be photographed from a
# distance, without the person knowing, and identification connected to cameras can follow
# people around a city or list who attended a protest, a clinic or a place of worship. This
# concern does not depend on errors at all: a *perfectly* accurate system used for mass
# surveillance is the problem.
#
# **Consent.** The photos that train and test these systems were often collected from the web
# without asking the people in them. Microsoft's MS-Celeb-1M, about 10 million photos of
# roughly 100,000 people, was taken offline in 2019 after journalists and researchers showed that
# many of them had never been asked. The company Clearview AI built a face search engine from
# billions of images scraped from social media and sold access to police; data-protection
# authorities in several European countries (among them Italy, Greece and France, in 2022) fined
# it and ordered it to delete their residents' photos.
#
# **Bias in who is in the data.** In the *Gender Shades* study (Buolamwini and Gebru, 2018), the
# authors audited three commercial face *classification* services (from IBM, Microsoft and
# Face++) that guessed a person's gender from a photo. Two face data sets widely used at the time
# were 79.6% and 86.2% lighter-skinned people, so the authors built a balanced benchmark of
# 1,270 photos of members of parliament from three African and three European countries, and
# broke the results down by gender and skin type, exactly as you broke ours down by digit. All
# three services were more accurate on men than on women and on lighter than on darker skin.
# The errors piled up on darker-skinned women, with error rates of up to 34.7%, against at most
# 0.8% for lighter-skinned men. After the study was published, the companies released improved
# versions (Raji and Buolamwini, 2019).
#
# The US National Institute of Standards and Technology tested 189 face *recognition* algorithms
# from 99 developers (NIST IR 8280, 2019). For many of them, the rate of false matches (two
# different people judged to be the same person) was 10 to 100 times higher for some demographic
# groups than for others: higher for West African, East African and East Asian faces than for
# Eastern European faces in one-to-one matching, and higher for women, older people and children.
# The differences varied a lot between algorithms, and for some algorithms developed in Asia the
# gap for East Asian faces disappeared or even reversed: what a system gets wrong depends on what
# it was trained and tested on.
#
# In the US, several people have been arrested after a false face-recognition match; the first
# widely reported case is Robert Williams, arrested in Detroit in January 2020 for a theft he did
# not commit. (In the 2024 settlement of his lawsuit, the Detroit police agreed not to arrest
# anyone on the strength of a face-recognition result alone.)
#
# The responses vary. Unlocking your own phone (one-to-one, on your device, with your consent,
# and you can use a PIN instead) raises few of these concerns; finding a missing person or
# describing photos to a blind user can do real good. Some US cities (San Francisco was the first,
# in 2019) banned their own agencies from using face recognition; the European Union's AI Act
# (2024) prohibits building face databases by untargeted scraping of the web or CCTV footage and
# allows police to identify people in public spaces in real time only in narrowly defined cases.
#
# Compare with what you measured. The mechanism is the same as with our digits: a model is as good
# as its data is for a group, the average hides the group, and the people at the edges of the
# data bear the errors. What differs is the cost of an error, and that some harms (surveillance,
# using people's photos without consent) remain even when the model makes none.
#
# ### Question 3: privacy and consent (3 points, graded by hand)
#
# Choose **one** use of face recognition that you find acceptable and **one** that you don't (or
# argue that none is acceptable). For each, say who is photographed, whether they agreed and
# could refuse, who keeps the data and for what, and what happens to a person when the system is
# wrong. What is the difference between the two that matters most to you? (6 to 10 sentences.)

# %% [markdown] nbgrader={"grade": true, "grade_id": "ethics_faces_privacy", "locked": false, "points": 3, "schema_version": 3, "solution": true}
# *Model answer (one of many good ones).* Acceptable: unlocking my own phone with my face. Only I
# am photographed, I chose to enrol and can switch to a PIN at any time, the face template stays
# on my device and is used for one thing, and an error is cheap (I type my PIN; a false accept
# is rare and limited to one phone). Not acceptable: police matching everyone who walks past
# street cameras against a database of photos collected from social media. The people filmed did
# not agree and cannot refuse short of staying home, the people in the database never agreed to
# their photos being used this way, the data is held by the police or a private vendor with
# little oversight, and an error can mean being stopped, questioned or arrested for something
# one did not do (as happened to Robert Williams), more often for groups the system is worse
# at. Even with no errors, it would let anyone with access track where people go and who they
# meet, which chills protest and religious practice. The differences that matter most: consent
# and the ability to opt out, one-to-one on your own device versus one-to-many on everyone, who
# controls the data, and how severe and how fixable an error is.

# %% [markdown]
# ### Question 4: bias in who is in the data (3 points, graded by hand)
#
# (a) Using our digit experiments as an analogy, explain how a training set that
# under-represents a group leads to more errors for that group, and why the overall accuracy
# can hide it. (b) Propose **two** concrete measures a team should take before deploying a face
# recognition system, and (c) name **one** problem that better data or a more accurate model
# would *not* solve. (6 to 10 sentences.)

# %% [markdown] nbgrader={"grade": true, "grade_id": "ethics_faces_bias", "locked": false, "points": 3, "schema_version": 3, "solution": true}
# *Model answer.* (a) Our model only saw MNIST's style (white, centred, 2 to 3-pixel strokes),
# so it learned that style rather than "digits": thin, shifted or inverted digits, which were
# absent from its training data, are misread far more often, and a 9 written in an unusual way
# is misread more than a 0. In the same way, a face model trained and tested mostly on
# lighter-skinned men has seen too few examples of other faces to learn what distinguishes them,
# so it makes more errors on them (Gender Shades: up to 34.7% for darker-skinned women against
# 0.8% for lighter-skinned men). Because the under-represented group is also a small part of
# the test set, its errors barely move the average, just as 96% overall hid 92% on 9s (and 46% on
# thin strokes). (b)
# Measures: test accuracy and false-match rates separately for each group (skin type, gender,
# age, and their combinations) on a benchmark that represents the people the system will be
# used on, and don't deploy until the worst group meets the requirement; document the data
# (who is in it, how it was collected, with what consent) and the model's limits in a datasheet
# and a model card; collect more representative data with consent; keep a human in the loop
# who can overrule the match, and give people a way to contest it; have an independent audit.
# (c) A perfectly accurate system still enables surveillance and tracking, still uses faces
# collected without consent, and can still be used for unjust purposes; better data does not
# answer whether the system should be built or deployed at all.

# %% [markdown]
# ## Summary
#
# - One accuracy is an average; **break it down by group** (`per_class_accuracy`): our model
#   misreads some digits four to five times as often as others.
# - Accuracy on a test set from the same source as the training data overestimates accuracy in
#   the world. Digits that look different (a thinner pen, a 3-pixel shift, a rotation, inverted
#   colours) are read far worse, and each style hurts different digits.
# - A model learns its data's style, no more: the people whose writing (or faces) differ from
#   the data bear its errors. Remedies: varied and representative data, tests group by group
#   before deployment, documented limits, a way to contest errors.
# - Face recognition adds what digits don't have: faces are personal and can't be changed
#   (privacy), photos are often taken and used without consent, and audits (Gender Shades,
#   NIST IR 8280) found much higher error rates for some groups of people. Some harms remain
#   even with a perfect model.
#
# This is the end of the course: you built a CNN from the data up, trained it, evaluated it, and
# looked at who it fails.
#
# ## Further exercises (not graded)
#
# 1. **Augmentation.** Train a second `Net` with `train_briefly` on a mix of the original digits
#    and transformed ones (for instance a third of them shifted by a random amount between -3 and
#    3 pixels, a third thickened or thinned). Rerun section 4 with it. What happens on the
#    shifted and thin digits? And on the original test set?
# 2. **Your lesson 5 model.** Save the network you trained in lesson 5: add a cell at the end of
#    that notebook with `torch.save(net.state_dict(), "model.pt")` and run it. Load it here with
#    `net = Net(); net.load_state_dict(torch.load("../05_evaluation/model.pt"))` and rerun
#    sections 2 and 4. Does a better-trained model also cope better with digits in other styles?
# 3. **Precision.** Write `per_class_precision(y_true, y_pred)` (divide by how often each digit
#    was *predicted*). On the thinner digits, which digit has the worst precision, and why? What
#    would that mean on a cheque?
# 4. **Confident and wrong.** `torch.softmax(net(to_x(invert(subset))), dim=1).max(dim=1)` gives
#    the model's confidence in each guess. Is the model less sure of itself on inverted digits
#    than on the originals? Why is a model that is confidently wrong dangerous, and what could a
#    system do with the uncertain cases?
# 5. **Read the sources.** Buolamwini and Gebru, *Gender Shades* (2018,
#    <https://proceedings.mlr.press/v81/buolamwini18a.html>) and NIST IR 8280 (2019,
#    <https://doi.org/10.6028/NIST.IR.8280>). How do they break down their results, and how did
#    they choose their test images?
