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
# # Lesson 3: Fully connected layers
#
# Lesson 2's convolutional part turns each digit into 16 small feature maps of 4 × 4. This lesson
# finishes the network: the maps are **flattened** into one row of 256 numbers, and three **fully
# connected layers** turn those into 10 scores, one per digit. Then the network is complete: the
# same `Net`, with the same layer names, as the original project's.
#
# **By the end of this lesson you will be able to**
#
# - flatten a batch of feature maps `(N, 16, 4, 4)` into vectors `(N, 256)`, keeping the images apart
#   and the numbers in PyTorch's order;
# - explain what `nn.Linear(in_features, out_features)` computes, and the shapes of its weight and bias;
# - say what logits are, what softmax does, and why the network must *not* end with a softmax
#   when it is trained with `CrossEntropyLoss`;
# - write the whole network, `Net`: `conv1`, `conv2`, `fc1` (256 → 120), `fc2` (120 → 84), `fc3` (84 → 10);
# - count its parameters (44,426), and see where they are.
#
# **Time:** about 45 to 60 minutes. **You need:** lessons 1 and 2.
#
# **How the exercises work** (as before). Replace `raise NotImplementedError()` with your code and
# run the cell; the locked cell under it checks your code. More checks run when your notebook is
# graded. To run every check of this lesson at once (save the notebook first):
#
# ```
# python -m coursekit.selfcheck 03_fc
# ```
#
# Run the cells in order, from the top.

# %% nbgrader={"grade": false, "grade_id": "fc_setup", "locked": true, "schema_version": 3, "solution": false}
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)  # the same "random" weights every time you run the notebook

from coursekit.checks import check, relies_on
from coursekit.data import load_digits
from coursekit.plots import show_bars, show_data_flow, show_flatten

# %% [markdown]
# Lesson 2's answer, the convolutional part, is given here (you can't edit this cell):

# %% nbgrader={"grade": false, "grade_id": "fc_given_conv_features", "locked": true, "schema_version": 3, "solution": false} given_from=["02_conv:conv_features_answer"]
# Given code: `make lessons` fills this cell with the solution code of the cells named in given_from.

# %% [markdown]
# ## 1. Flattening
#
# Here is what the convolutional part makes of four test digits (its kernels are still random;
# lesson 4 trains them):

# %%
images, labels = load_digits("test")
x = torch.from_numpy(images[:4, None].astype(np.float32) / 255)     # (4, 1, 28, 28), as in lesson 1
conv_part = ConvFeatures()
with torch.no_grad():
    maps = conv_part(x)
print("digits:", tuple(x.shape), "-> feature maps:", tuple(maps.shape))


# %% [markdown]
# A fully connected layer (section 2) does not care where a number sits in a picture: it takes
# each image as one flat **vector** of numbers. So the 16 maps of 4 × 4 of each image become one
# row of 16 · 4 · 4 = **256** numbers: the shape goes from `(N, 16, 4, 4)` to `(N, 256)`.
#
# Two things must stay right:
#
# - **The images stay apart.** Axis 0 is the batch: image `i` must give row `i`, and only that
#   row. Flattening *everything*, batch axis included, would make one long row of `N · 256` numbers
#   and mix the images up.
# - **The order of the numbers.** PyTorch lays a tensor out row by row, last axis fastest
#   ("C order", as NumPy does too). Flattening keeps that order: first the 16 values of channel 0,
#   row by row, then the 16 values of channel 1, and so on. `fc1` learns one weight per position,
#   so the order must be the same every time, and the same as in the trained networks of later
#   lessons: don't rearrange the axes (with `permute` or `transpose`) before flattening.
#
# Three tensor methods can do it:
#
# - `t.reshape(shape)` and `t.view(shape)` give the same numbers in another shape; one entry of the
#   shape may be `-1`, meaning "whatever makes the count right". (`view` never copies and needs
#   the tensor to be laid out in one piece in memory; `reshape` copies when it must.)
# - `torch.flatten(t, start_dim)` merges the axes from `start_dim` to the last one into one.
#   Careful: `torch.flatten(t)`, with no `start_dim`, starts at axis 0, the batch axis.
#
# ### Exercise (a): `flatten` (2 points)

# %% nbgrader={"grade": false, "grade_id": "fc_flatten_answer", "locked": false, "schema_version": 3, "solution": true}
def flatten(features):
    """Flatten each image's feature maps into one vector, keeping the batch axis.

    features: (N, 16, 4, 4) float32 tensor, N images of 16 maps of 4 x 4
    returns: (N, 256) float32 tensor; row i holds image i's 256 numbers in PyTorch's order
             (channel 0 row by row, then channel 1, ...); N can be any number, even 1
    """
    ### BEGIN SOLUTION
    return torch.flatten(features, start_dim=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "fc_flatten", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Checks exercise (a): shape (N, 256), the order of the numbers, images kept apart, N = 1.
check("fc_flatten", flatten)
### BEGIN HIDDEN TESTS
check("fc_flatten_hidden", flatten)
### END HIDDEN TESTS

# %% [markdown]
# The first digit's 16 maps, and the row of 256 numbers they become (16 segments of 16 numbers;
# the grey lines connect each map to its segment):

# %%
relies_on("fc_flatten")   # a warning here if your flatten did not pass its check
flat = flatten(maps)
print(tuple(maps.shape), "->", tuple(flat.shape))
show_flatten(maps[0], flat[0], title=f"The {labels[0]}'s feature maps, flattened")

# %% [markdown]
# ## 2. Fully connected layers
#
# A **fully connected** (or *linear*, or *dense*) layer `nn.Linear(in_features, out_features)`
# computes `out_features` numbers from `in_features` numbers: each output is a weighted sum of
# **all** the inputs (every output is connected to every input), plus a bias. It holds:
#
# - `weight`, of shape `(out_features, in_features)`: row `o` holds the weights of output `o`;
# - `bias`, of shape `(out_features,)`.
#
# For a batch `x` of shape `(N, in_features)` it returns `x @ weight.T + bias`, of shape
# `(N, out_features)`. (`@` is matrix multiplication, `.T` the transpose.) A small one:

# %%
small = nn.Linear(4, 3)                                   # 4 numbers in, 3 out
v = torch.tensor([[1.0, 2.0, 0.0, -1.0],
                  [0.5, 0.0, 0.0, 0.0]])                  # a batch of 2 vectors: (2, 4)
print("weight:", tuple(small.weight.shape), " bias:", tuple(small.bias.shape))
with torch.no_grad():
    print("small(v):\n", small(v))
    print("v @ weight.T + bias:\n", v @ small.weight.T + small.bias)

# %% [markdown]
# Our network ends with three of them, with a ReLU after the first two:
#
# ```
# (N, 256) → fc1 → ReLU → (N, 120) → fc2 → ReLU → (N, 84) → fc3 → (N, 10)
# ```
#
# (The sizes 120 and 84 come from LeNet-5, Yann LeCun's 1998 digit reader, which this network
# follows.) Why the ReLUs? Without them, two linear layers in a row are just one linear layer:
# `fc2(fc1(x))` is `x @ W.T + c` for one matrix `W` and one vector `c`, so the extra layer would
# add nothing. Check it on two small layers:

# %%
first, second = nn.Linear(4, 3), nn.Linear(3, 2)
with torch.no_grad():
    W = second.weight @ first.weight                      # (2, 4): one layer's weight
    c = second.weight @ first.bias + second.bias          # (2,): and its bias
    print("second(first(v)):\n", second(first(v)))
    print("one layer, v @ W.T + c:\n", v @ W.T + c)
    print("with a ReLU in between, it is something else:\n", second(F.relu(first(v))))

# %% [markdown]
# ## 3. Logits, softmax, and why there is no softmax at the end
#
# `fc3` gives 10 numbers per image, one per digit. They are **logits**: scores of any size and
# sign; the larger, the more the network believes in that digit. The predicted digit is the
# position of the largest one (`logits.argmax(dim=1)`).
#
# **Softmax** turns scores into probabilities: $p_k = e^{z_k} / \sum_j e^{z_j}$. Every $p_k$ is
# positive and they add up to 1; the largest logit gets the largest probability.
#
# To train the network (lesson 4) we use `nn.CrossEntropyLoss`. For one image with label `y`
# it is $-\log p_y$: small when the network gives the right digit a high probability, large
# when it doesn't. The important detail: **`CrossEntropyLoss` takes the logits and does the softmax
# itself** (as a log-softmax, which is numerically safer than taking the log of a softmax).
# So the network must return the logits as they are, not a softmax. (A log-softmax at the end does
# no harm, and the check accepts it: it only shifts each row of logits by a constant, which changes
# neither the softmax nor the loss. But it does nothing useful either.) Let us check on made-up
# logits for an image of a 0:

# %%
logits = torch.tensor([[3.0, 1.0, 0.2, -1.0, 0.5, -2.0, 0.0, 1.5, -0.5, 0.3]])   # (1, 10)
label = torch.tensor([0])
probabilities = torch.softmax(logits, dim=1)
loss = nn.CrossEntropyLoss()
print("softmax:", probabilities.numpy().round(3), " sum:", probabilities.sum().item())
print("CrossEntropyLoss(logits, label)   :", round(loss(logits, label).item(), 4))
print("-log(softmax(logits)[label])      :", round(-torch.log(probabilities[0, 0]).item(), 4))
print("CrossEntropyLoss(softmax(logits)) :", round(loss(probabilities, label).item(), 4), " <- softmax applied twice")
show_bars(logits[0], probabilities[0], torch.softmax(probabilities, dim=1)[0],
          names=["logits (what fc3 gives)", "softmax: probabilities", "softmax of softmax: almost flat"],
          xlabel="digit", ylims=[None, (0, 1), (0, 1)])   # both probability charts on the same 0..1 axis

# %% [markdown]
# If the network ended with a softmax, `CrossEntropyLoss` would apply a second one. The
# probabilities are all between 0 and 1, and a softmax of numbers that close together is almost
# flat (the third chart): the loss barely notices what the network says. Watch what happens as
# the network gets more and more sure of the right answer:

# %%
print("margin   loss on logits   loss after a softmax in the network")
for margin in [0.0, 2.0, 5.0, 10.0, 20.0]:
    z = torch.zeros(1, 10)
    z[0, 0] = margin                                  # the right digit's logit is ahead by `margin`
    print(f"{margin:6.0f}   {loss(z, label).item():14.4f}   {loss(torch.softmax(z, dim=1), label).item():14.4f}")


# %% [markdown]
# On logits the loss goes to 0 as the network becomes sure and right. With a softmax in the
# network it can never go below about 1.46, however right the network is, and it hardly moves
# once the network is fairly sure: its gradients, the signal training follows, fade away. The
# network would learn slowly and badly. So: **the network returns logits; the loss applies the
# softmax.** When we want probabilities to show someone (lesson 5), we apply `torch.softmax` to
# the logits *outside* the network.
#
# ## 4. The whole network
#
# Now put it all together. The convolutional part is lesson 2's, already written in below
# (the same as `ConvFeatures`); add the three fully connected layers in `__init__`, and the
# rest of `forward`: flatten (with your `flatten`, or `torch.flatten(x, 1)`), `fc1`, ReLU, `fc2`,
# ReLU, `fc3`. Keep the names `fc1`, `fc2`, `fc3`: they are the original project's, and the trained
# weights of later lessons are stored under them.
#
# ### Exercise (b): `Net` (5 points)

# %% nbgrader={"grade": false, "grade_id": "fc_net_answer", "locked": false, "schema_version": 3, "solution": true}
class Net(nn.Module):
    """The course's CNN, with the original project's layer names.

    Layers:
        conv1: nn.Conv2d, 1 -> 6 channels, 5 x 5      (lesson 2, given)
        conv2: nn.Conv2d, 6 -> 16 channels, 5 x 5     (lesson 2, given)
        fc1: nn.Linear, 256 -> 120
        fc2: nn.Linear, 120 -> 84
        fc3: nn.Linear, 84 -> 10
    forward(x):
        x: (N, 1, 28, 28) float32 tensor, digits scaled to [0, 1]
        returns: (N, 10) float32 tensor of logits, one score per digit:
                 after the conv part, flatten -> fc1 -> ReLU -> fc2 -> ReLU -> fc3,
                 and fc3's output as it is (no ReLU, no softmax after fc3)
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)         # lesson 2
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)        # lesson 2
        ### BEGIN SOLUTION
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        ### END SOLUTION

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)          # lesson 2: (N, 6, 12, 12)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)          # lesson 2: (N, 16, 4, 4)
        ### BEGIN SOLUTION
        x = torch.flatten(x, 1)                             # (N, 256)
        x = F.relu(self.fc1(x))                             # (N, 120)
        x = F.relu(self.fc2(x))                             # (N, 84)
        return self.fc3(x)                                  # (N, 10) logits
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "fc_net", "locked": true, "points": 5, "schema_version": 3, "solution": false}
# Checks exercise (b): layer names and weight shapes, then, with known weights, each step: flatten, fc1 + ReLU, fc2 + ReLU, fc3, and logits out.
check("fc_net", Net)
### BEGIN HIDDEN TESTS
check("fc_net_hidden", Net)
### END HIDDEN TESTS

# %% [markdown]
# The untrained network on eight test digits: its guesses, and the logits of the first digit, as
# probabilities too. With random weights the logits are small and close together, the
# probabilities all near 1/10, and the guesses mean nothing (often the same digit for every
# image): lesson 4 trains it.

# %%
relies_on("fc_net")   # a warning here if your Net did not pass its check
net = Net()
batch = torch.from_numpy(images[:8, None].astype(np.float32) / 255)    # (8, 1, 28, 28)
with torch.no_grad():
    logits = net(batch)                                                  # (8, 10)
print("logits:", tuple(logits.shape), logits.dtype)
print("guesses:", logits.argmax(dim=1).tolist())
print("labels: ", labels[:8].tolist())
show_bars(logits[0], torch.softmax(logits[0], dim=0),
          names=[f"logits for a {labels[0]} (untrained)", "softmax of them"], xlabel="digit")

# %% [markdown]
# The whole network at a glance: the first digit through a fresh `Net`, as your `forward` computes
# it, with the shape after every layer, from the image, `1 × 28 × 28`, to the ten scores. Feature
# maps are drawn as grids of their channels, vectors as columns (blue negative, red positive);
# the figure names what your code did between two layers by its effect on the numbers.

# %%
relies_on("fc_net")   # a warning here if your Net did not pass its check
show_data_flow(Net(), torch.from_numpy(images[:1, None].astype(np.float32) / 255))      # (1, 1, 28, 28)

# %% [markdown]
# ## 5. How many parameters?
#
# The **parameters** of a network are the numbers training adjusts: all the weights and biases.
# `net.parameters()` goes through them, one tensor at a time (`net.named_parameters()` gives their
# names too); a tensor's `.numel()` is the number of elements in it, and `.shape` its shape.

# %%
relies_on("fc_net")   # a warning here if your Net did not pass its check
for name, p in Net().named_parameters():
    print(f"{name:12s} {str(tuple(p.shape)):16s}")


# %% [markdown]
# ### Exercise (c): `count_parameters` (3 points)

# %% nbgrader={"grade": false, "grade_id": "fc_count_parameters_answer", "locked": false, "schema_version": 3, "solution": true}
def count_parameters(net):
    """How many numbers a network learns: the elements of all its parameter tensors.

    net: a torch.nn.Module, e.g. Net()
    returns: int, the total number of elements in all of net.parameters(), weights and biases
    """
    ### BEGIN SOLUTION
    return sum(p.numel() for p in net.parameters())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "fc_count_parameters", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks exercise (c): the count, on the course's network and on small ones.
check("fc_count_parameters", count_parameters)
### BEGIN HIDDEN TESTS
check("fc_count_parameters_hidden", count_parameters)
### END HIDDEN TESTS

# %% [markdown]
# Where are they? `net.named_children()` gives the layers by name:

# %%
relies_on("fc_count_parameters", "fc_net")   # a warning here if your code failed these checks
net = Net()
names, counts = [], []
for name, layer in net.named_children():
    names.append(name)
    counts.append(count_parameters(layer))
    print(f"{name}: {counts[-1]:6,d}")
print(f"total: {count_parameters(net):,d}")
show_bars(counts, labels=names, names=["parameters per layer"], ylabel="parameters")

# %% [markdown]
# Of 44,426 parameters, `fc1` alone holds 30,840 (69%): 256 × 120 weights plus 120 biases. The
# two convolution layers together hold fewer than 2,600, yet they do most of the *work*: `conv1`'s
# 156 parameters are used at each of the 24 × 24 positions of the image. A convolution shares its
# kernel over the whole image; a fully connected layer has a separate weight for every pair of
# input and output. A network made only of fully connected layers would need 784 × 120 = 94,080
# weights just for its first layer, and would have to learn "an edge" separately for every place
# in the image.
#
# ## Summary
#
# - Flattening turns `(N, 16, 4, 4)` into `(N, 256)`: one row per image, numbers in PyTorch's
#   (channel, row, column) order; the batch axis stays (`torch.flatten(x, 1)`, `x.view(len(x), -1)`).
# - `nn.Linear(in, out)` computes `x @ weight.T + bias`, with weight `(out, in)` and bias `(out,)`.
#   A ReLU between linear layers keeps them from collapsing into one.
# - `fc1` (256 → 120), `fc2` (120 → 84), `fc3` (84 → 10) turn the features into 10 **logits**.
# - `CrossEntropyLoss` applies the softmax itself: the network returns logits, with no softmax (and
#   no ReLU) after `fc3`.
# - `Net` has 44,426 parameters; 69% of them are in `fc1`.
#
# Next lesson: train it, with stochastic gradient descent, on the 60,000 training digits.
#
# ## Further exercises (not graded)
#
# 1. **LeNet's size.** The original LeNet-5 read 32 × 32 images. What would `fc1`'s `in_features`
#    be then? Check with `conv_output_size` from lesson 2, or by running `ConvFeatures` on
#    `torch.zeros(1, 1, 32, 32)`.
# 2. **`nn.Sequential`.** Write the same network as one `nn.Sequential(...)` of layers
#    (`nn.Conv2d`, `nn.ReLU`, `nn.MaxPool2d`, `nn.Flatten`, `nn.Linear`). Does `count_parameters`
#    give the same number? Which names do its parameters get, and why would the trained
#    checkpoints of later lessons not load into it?
# 3. **Work, not just weights.** Count the multiply-adds one digit costs in each layer (a
#    convolution: output values × kernel size × input channels; a linear layer: in × out). Compare
#    with the parameter counts.
# 4. **How sure?** For the untrained `net`, look at `torch.softmax(logits, dim=1).max(dim=1)`.
#    How sure is it of its (random) guesses? Come back to this after lesson 4.
