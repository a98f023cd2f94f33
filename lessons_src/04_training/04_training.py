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
# # Lesson 4: The SGD training loop
#
# In lessons 2 and 3 you built the network, `Net`: it turns a batch of images `(B, 1, 28, 28)`
# into 10 scores per image, `(B, 10)`. But its weights are random, so its scores are nonsense.
# This lesson makes it learn. Training is a loop of five small moves, done once per mini-batch,
# thousands of times; you will write that loop yourself.
#
# **By the end of this lesson you will be able to**
#
# - explain what the cross-entropy loss measures, and why it takes the network's raw scores (logits);
# - explain what a gradient is for, and what stochastic gradient descent (SGD) and its momentum do
#   with it;
# - write one training step: zero the gradients, forward, loss, backward, step, in that order;
# - write a training epoch that prints the running loss every 200 mini-batches;
# - train the course's network and read its loss curve.
#
# **Time:** about 60 to 75 minutes, plus the optional full training run (it prints its progress
# and how long it took). **You need:** lessons 1 to 3 (the data pipeline and `Net` come ready-made below).
#
# **How the exercises work** (as in lesson 1): replace `raise NotImplementedError()` with your
# code, run the cell, then run the check cell under it. It prints `✔ ... passed`, or what it
# expected, what it found, and the likely mistake. All the checks of this lesson at once, from a
# terminal in the course folder (save the notebook first):
#
# ```
# python -m coursekit.selfcheck 04_training
# ```
#
# Run the cells in order, from the top.

# %% nbgrader={"grade": false, "grade_id": "train_setup", "locked": true, "schema_version": 3, "solution": false}
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from coursekit.checks import check, relies_on
from coursekit.data import load_digits
from coursekit.plots import show_descent_paths, show_loss_curve, show_loss_curves, show_training_loop
from coursekit.progress import progress

torch.manual_seed(0)      # the same "random" weights and shuffles every time you run the notebook
torch.set_num_threads(1)  # batches of 4 images are too small to share between CPU cores: one is fastest

# %% [markdown]
# Your data pipeline from lesson 1 and the network from lessons 2 and 3, ready to use:

# %% nbgrader={"grade": false, "grade_id": "train_given_pipeline", "locked": true, "schema_version": 3, "solution": false} given_from=["01_data:data_add_channel_answer", "01_data:data_normalize_answer", "01_data:data_to_tensors_answer", "01_data:data_make_loader_answer"]
# Given code: `make lessons` fills this cell with the solution code of the cells named in given_from.

# %% nbgrader={"grade": false, "grade_id": "train_given_net", "locked": true, "schema_version": 3, "solution": false} given_from=["03_fc:fc_net_answer"]
# Given code: `make lessons` fills this cell with the solution code of the cells named in given_from.

# %%
images, labels = load_digits("train")
x_train, y_train = to_tensors(images, labels)
net = Net()
x_batch, y_batch = next(iter(make_loader(x_train, y_train)))
logits = net(x_batch)
print("a batch:", tuple(x_batch.shape), "-> the network's scores:", tuple(logits.shape))
print("labels:", y_batch.tolist())
print(logits.detach().numpy().round(2))

# %% [markdown]
# Ten scores per image, all close to 0: the untrained network has no idea. These raw scores are
# called **logits**. The network's guess is the digit with the largest score; for now, that guess
# is a coin toss.
#
# ## 1. How wrong is the network? The cross-entropy loss
#
# To improve, the network needs one number that says how wrong it is: the **loss**. For
# classification the standard loss is the **cross-entropy**, computed in two moves for each image:
#
# 1. **softmax** turns the 10 logits $z_0, \dots, z_9$ into 10 probabilities that are positive and
#    add up to 1: $p_k = e^{z_k} / \sum_j e^{z_j}$. The larger a logit, the larger its probability.
# 2. the loss of the image is $-\log p_y$, where $y$ is its true label: 0 when the network gives the
#    true digit probability 1, large when it gives it a probability near 0.
#
# The loss of a mini-batch is the **mean** over its images. Let's compute it by hand for our batch:

# %%
probabilities = torch.softmax(logits, dim=1)                 # (4, 10), each row sums to 1
p_true = probabilities[torch.arange(len(y_batch)), y_batch]  # (4,): the probability of each true label
print("probability of the true digit:", p_true.detach().numpy().round(3))
print("loss by hand:        ", (-torch.log(p_true)).mean().item())
print("F.cross_entropy:     ", F.cross_entropy(logits, y_batch).item())
print("guessing at random:  ", np.log(10))


# %% [markdown]
# About 2.30 = log 10: the untrained network gives every digit a probability of about 1/10,
# exactly like guessing. Training will push this number down.
#
# PyTorch computes both moves at once in `nn.CrossEntropyLoss` (and its function version,
# `F.cross_entropy`), in a numerically safe way. It takes the **raw logits**: it applies the softmax
# itself. That is why `Net` ends with `fc3` and no softmax. A softmax *before* the loss is a classic
# mistake, and a sneaky one: the code runs and the loss goes down a little, but the scores are
# squashed twice, so even a totally wrong answer costs at most about 2.5, and the network barely learns.
#
# ## 2. Gradients and stochastic gradient descent
#
# How should each of the 44,426 weights change to make the loss smaller? The **gradient** answers
# that: for each weight $w$, $\partial \text{loss} / \partial w$ says how much the loss grows when
# $w$ grows a tiny bit. PyTorch computes all of them in one call, `backward()` on the loss, and
# stores each one next to its weight, in `p.grad` for every parameter `p`.
#
# **Gradient descent** moves every weight a small step against its gradient, downhill:
# $w \leftarrow w - \text{lr} \cdot \partial \text{loss} / \partial w$. The **learning rate** `lr` sets
# the step size: too small and training crawls, too large and it overshoots. *Stochastic* gradient
# descent (SGD) computes the gradient on one small mini-batch at a time instead of all 60,000
# images: each step is noisy, but cheap, so we take many of them.
#
# **Momentum** gives the weights inertia: each step keeps a fraction (0.9 in this course) of the
# previous step's direction and adds the new gradient to it,
# $v \leftarrow 0.9\, v + \text{gradient}$, then $w \leftarrow w - \text{lr} \cdot v$. Where the
# gradients keep pointing the same way the steps build up speed; where they flip back and forth
# they cancel out. The picture shows both on a loss that depends on just two weights, shaped like a
# long narrow valley (a common shape for real losses), with the same learning rate:

# %%
def valley(w1, w2):
    return 0.5 * (w1 ** 2 + 12 * w2 ** 2)      # steep across (w2), gentle along (w1)


def descend(momentum, steps=40, lr=0.03):
    w = torch.tensor([-2.8, 1.0], requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr, momentum=momentum)
    path = [w.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        valley(w[0], w[1]).backward()           # fills w.grad
        opt.step()                              # moves w against w.grad
        path.append(w.detach().clone())
    return torch.stack(path)


show_descent_paths(valley, {"SGD, no momentum": descend(0.0), "SGD, momentum 0.9": descend(0.9)},
                   xlim=(-3.2, 1.6), ylim=(-1.5, 1.5), title="40 steps of SGD, lr 0.03, on a narrow valley")


# %% [markdown]
# Without momentum the weights creep along the valley floor; with momentum they gather speed,
# overshoot and swing around the minimum (inertia!), but end much closer to it in the same 40 steps.
#
# `torch.optim.SGD(parameters, lr=..., momentum=...)` does this bookkeeping for you: it holds the
# parameters you give it and, each time you call its `step()`, moves each one using its `.grad`.
# Give it **all** the network's parameters, `net.parameters()`: a weight the optimizer does not
# hold is never updated and stays random forever.
#
# ### Exercise (a): `make_criterion` and `make_optimizer` (3 points)
#
# The course recipe: the cross-entropy loss, and SGD with learning rate 0.001 and momentum 0.9.

# %% nbgrader={"grade": false, "grade_id": "train_optimizer_answer", "locked": false, "schema_version": 3, "solution": true}
def make_criterion():
    """The loss function of the course: cross-entropy on the network's raw scores.

    returns: a loss object (an nn.Module), called as criterion(logits, labels) with
        logits: (B, 10) float32 tensor, the network's outputs (no softmax)
        labels: (B,) int64 tensor, the true digits 0..9
        and returning a () float32 tensor: the mean loss over the B images
    """
    ### BEGIN SOLUTION
    return nn.CrossEntropyLoss()  # the mean over the batch; log-softmax is built in
    ### END SOLUTION


def make_optimizer(net):
    """SGD with momentum over all of net's parameters: the course recipe.

    net: the network (an nn.Module)
    returns: a torch.optim.SGD optimizer with learning rate 0.001 and momentum 0.9
    """
    ### BEGIN SOLUTION
    return torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)  # the course recipe
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "train_optimizer", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks exercise (a): the loss on raw logits, the optimizer's parameters, lr and momentum.
check("train_optimizer", make_criterion, make_optimizer, Net)
### BEGIN HIDDEN TESTS
check("train_optimizer_hidden", make_criterion, make_optimizer, Net)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. One training step
#
# One step of training, for one mini-batch `(x, y)`, is five moves:

# %%
show_training_loop()

# %% [markdown]
# 1. **Zero the gradients** with the optimizer's `zero_grad()`. Why? Because `backward()` does not
#    *replace* `p.grad`, it **adds** to it. Without this, each step would follow the sum of the
#    gradients of every batch so far. (Adding up is useful for tricks such as combining several small
#    batches into one, so PyTorch leaves the clearing to you.)
# 2. **Forward**: run the network on `x` to get the `(B, 10)` logits.
# 3. **Loss**: `criterion(logits, y)`, one number. PyTorch remembers how it was computed: the
#    *computation graph*.
# 4. **Backward**: `backward()` on the loss walks the graph backwards and fills `p.grad`.
# 5. **Step**: the optimizer's `step()` moves every weight using its `p.grad`.
#
# The order matters: a `step()` before `backward()` uses the gradients of the *previous* batch, and
# clearing between `backward()` and `step()` throws away the gradients just computed. Zeroing at the
# very end of the step, after `step()`, is fine too: what matters is that the gradients are clean
# when `backward()` fills them.
#
# Here is the accumulation at work on a single weight $w$, with loss $3w$ (its gradient is 3):

# %%
w = torch.tensor(2.0, requires_grad=True)
(3 * w).backward()
print("after one backward:   w.grad =", w.grad.item())
(3 * w).backward()
print("after a second one:   w.grad =", w.grad.item(), " (added up, not replaced)")
w.grad = None                      # what zero_grad() does to every parameter
(3 * w).backward()
print("cleared, then again:  w.grad =", w.grad.item())


# %% [markdown]
# The step should also return the batch's loss so we can watch it. The loss is a tensor attached
# to its whole computation graph; keeping thousands of them in a list would keep thousands of graphs
# in memory. `loss.item()` gives its value as a plain Python float.
#
# ### Exercise (b): `train_step` (5 points)

# %% nbgrader={"grade": false, "grade_id": "train_step_answer", "locked": false, "schema_version": 3, "solution": true}
def train_step(net, optimizer, criterion, x, y):
    """Train net on one mini-batch: one step of stochastic gradient descent.

    net: the network: (B, 1, 28, 28) float32 images -> (B, 10) float32 logits
    optimizer: an optimizer holding net's parameters, e.g. make_optimizer(net)
    criterion: the loss, e.g. make_criterion(), called as criterion(logits, labels)
    x: (B, 1, 28, 28) float32 tensor, a mini-batch of images
    y: (B,) int64 tensor, their labels 0..9
    returns: the mini-batch's loss (computed before the step), as a Python float
    """
    ### BEGIN SOLUTION
    optimizer.zero_grad()          # 1. forget the previous batch's gradients
    outputs = net(x)               # 2. forward: (B, 10) logits
    loss = criterion(outputs, y)   # 3. loss: a () tensor, the mean over the batch
    loss.backward()                # 4. backward: fills p.grad for every parameter p
    optimizer.step()               # 5. step: every weight moves against its gradient
    return loss.item()             # the loss as a Python float
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "train_step", "locked": true, "points": 5, "schema_version": 3, "solution": false}
# Checks exercise (b): the order of the five moves, and the weights after a few steps.
check("train_step", train_step, Net)
### BEGIN HIDDEN TESTS
check("train_step_hidden", train_step, Net)
### END HIDDEN TESTS

# %% [markdown]
# A quick sanity check: train on one and the same mini-batch over and over. A working `train_step`
# drives the loss of that one batch to nearly 0: the network memorizes these 4 images (not the
# goal of training, but it shows that the loop works). The check uses its own optimizer with a
# larger learning rate, 0.01, so that 100 steps are enough.
#
# Beware: "the loss goes down" alone proves little. A `train_step` that forgets `zero_grad()` makes
# the loss drop *faster* at first (the gradients add up into ever larger steps), then climb far
# above where it started. So look at the whole curve: down to nearly 0, and staying there.

# %% nbgrader={"grade": false, "grade_id": "train_memorize_tool", "locked": true, "schema_version": 3, "solution": false}
def memorize_one_batch(train_step, net, x, y, steps=100, lr=0.01):
    """Train net on the one mini-batch (x, y), steps times, with train_step and an SGD of its own
    (learning rate lr, momentum 0.9); print the loss every 20 steps and what the losses say.

    x: (B, 1, 28, 28) float32, y: (B,) int64
    returns: the losses, a list of steps floats
    """
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    losses = [train_step(net, optimizer, criterion, x, y) for _ in range(steps)]
    for i in range(19, steps, 20):
        print(f"step {i + 1:3d}: loss {losses[i]:.3f}")
    first, last, top = losses[0], losses[-1], max(losses)
    if not np.isfinite(top) or top > 3 * first:
        print(f"✘ The loss climbed far above its start ({first:.3f}), up to {top:.3g}: the steps grow out of "
              f"control. Most often the gradients add up from step to step: does train_step call "
              f"optimizer.zero_grad() every time, before loss.backward()?")
    elif abs(last - first) < 0.01:
        print(f"✘ The loss did not move ({first:.3f} → {last:.3f}): the weights did not change. Does "
              f"train_step call optimizer.step() after loss.backward()?")
    elif last < 0.05:
        print(f"✔ The loss fell from {first:.3f} to {last:.3f}: your train_step learns.")
    else:
        print(f"✘ The loss only fell from {first:.3f} to {last:.3f} in {steps} steps; a working train_step "
              f"gets it to nearly 0. Compare it with the five moves above.")
    return losses


# %%
relies_on("train_step")   # a warning here if your train_step did not pass its check
torch.manual_seed(0)
losses = memorize_one_batch(train_step, Net(), x_batch, y_batch)
show_loss_curve(losses, title="Memorizing one mini-batch: the loss of the same 4 images, step by step")


# %% [markdown]
# ## 4. A whole epoch, and the running loss
#
# An **epoch** is one pass over the training set: 60,000 images in mini-batches of 4 is 15,000
# steps. Printing 15,000 losses would be useless, and a single batch's loss is noisy anyway (4
# images: a lucky or unlucky batch). So we keep a **running total** of the losses and, every 200
# mini-batches, print their mean and start a new total. Counting the mini-batches from 1
# (`enumerate(loader, start=1)`) makes "every 200" land on batches 200, 400, 600, ...
#
# Training also has a **mode**: `net.train()` puts the network in training mode, `net.eval()` in
# evaluation mode (lesson 5). Our `Net` behaves the same in both, but layers such as dropout and
# batch normalization don't, so a training epoch starts with `net.train()`, always.
#
# ### Exercise (c): `train_epoch` (4 points)
#
# Use your `train_step`. The printed line should look like the one in the docstring: the epoch,
# the mini-batch count and the mean loss with 3 decimals (`f"{value:.3f}"`; `{i:5d}` pads a number
# to 5 characters so the lines align).

# %% nbgrader={"grade": false, "grade_id": "train_epoch_answer", "locked": false, "schema_version": 3, "solution": true}
def train_epoch(net, loader, optimizer, criterion, epoch=1, log_every=200):
    """Train net for one pass over loader, with train_step on each mini-batch.

    net, optimizer, criterion: as for train_step
    loader: yields mini-batches (x, y): x (B, 1, 28, 28) float32, y (B,) int64
    epoch: the number of this epoch, 1, 2, ... (only printed)
    log_every: every log_every mini-batches (counted from 1), print one line such as
        [epoch 1, batch   200] loss 1.234
        with the mean loss of those last log_every mini-batches, then start a new mean
    returns: a list of the printed mean losses (Python floats), in order; the mini-batches
        after the last multiple of log_every are trained but not logged
    Puts net in training mode (net.train()) first.
    """
    ### BEGIN SOLUTION
    net.train()                                       # training mode (lesson 5 switches to eval mode)
    logged = []                                       # the mean losses printed so far
    running = 0.0                                     # the sum of the losses since the last log
    for i, (x, y) in enumerate(loader, start=1):      # i: the mini-batch count, from 1
        running += train_step(net, optimizer, criterion, x, y)
        if i % log_every == 0:                        # every log_every mini-batches
            mean = running / log_every                # the mean of the last log_every losses
            print(f"[epoch {epoch}, batch {i:5d}] loss {mean:.3f}")
            logged.append(mean)
            running = 0.0                             # start a new mean
    return logged                                     # one mean loss per printed line
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "train_epoch", "locked": true, "points": 4, "schema_version": 3, "solution": false}
# Checks exercise (c): one step per mini-batch, the logged means, the printed lines.
check("train_epoch", train_epoch)
### BEGIN HIDDEN TESTS
check("train_epoch_hidden", train_epoch)
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Train the network
#
# A full epoch takes a while on a laptop, so let's start with the first 8,000 training images:
# 2,000 mini-batches, 10 log lines. Watch the loss fall from about 2.30 (guessing):

# %%
relies_on("train_epoch", "train_optimizer")   # a warning here if your code failed these checks
torch.manual_seed(0)
net = Net()
optimizer, criterion = make_optimizer(net), make_criterion()
small_loader = make_loader(x_train[:8000], y_train[:8000])
start = time.perf_counter()
losses = train_epoch(net, progress(small_loader, "8,000 images"), optimizer, criterion, epoch=1)
seconds = time.perf_counter() - start
per_batch = seconds / len(small_loader)
print(f"{len(small_loader)} mini-batches in {seconds:.1f} s ({1000 * per_batch:.2f} ms each)")
print(f"so one epoch of the 60,000 images (15,000 mini-batches) takes about {15000 * per_batch:.0f} s here")
show_loss_curve(losses, every=200, title="Training loss on 8,000 images (mean of every 200 mini-batches)")

# %% [markdown]
# For the first thousand mini-batches or so almost nothing seems to happen: the loss stays near
# 2.30, guessing. The weights start small and the learning rate is small, so the first steps are
# tiny; momentum slowly builds up speed in the directions that keep helping. Then the network
# "finds" the digits and the loss drops fast. Later (in a longer run) it falls more and more slowly:
# the easy part is learned, the details take time. The curve stays a bit bumpy: each point is the
# mean over only 200 mini-batches of 4 images.
#
# **The full recipe** is 10 epochs over all 60,000 images: 150,000 steps, 75 times the 2,000 above
# (the cell above printed how long those took on your machine, so you can estimate the wait), and
# it reaches well above the 97% test accuracy lesson 5 asks for. It is switched off here so that
# the notebook stays quick; set `FULL_TRAINING = True` and run the cell to watch it (lesson 5
# measures the accuracy of a shorter run).

# %%
relies_on("train_epoch", "train_optimizer")   # a warning here if your code failed these checks
FULL_TRAINING = False   # True: the course recipe, 10 epochs over the 60,000 training images

if FULL_TRAINING:
    torch.manual_seed(0)
    net = Net()
    optimizer, criterion = make_optimizer(net), make_criterion()
    train_loader = make_loader(x_train, y_train)
    all_losses = []
    start = time.perf_counter()
    for epoch in range(1, 11):
        all_losses += train_epoch(net, progress(train_loader, f"epoch {epoch}/10"), optimizer, criterion,
                                  epoch=epoch)
    print(f"10 epochs in {time.perf_counter() - start:.0f} s")
    show_loss_curve(all_losses, every=200, title="The full recipe: 10 epochs")

# %% [markdown]
# ## 6. Experiment: the learning rate
#
# The learning rate is the most important knob of SGD. Here is the same network trained from the
# same starting weights on the same 400 mini-batches with three learning rates, ten times apart
# (momentum 0.9 each time). Your `train_epoch` takes any optimizer, so the experiment only swaps it:

# %%
relies_on("train_epoch", "train_optimizer")   # a warning here if your code failed these checks
curves = {}
few_batches = make_loader(x_train[8000:9600], y_train[8000:9600], shuffle=False)
for lr in (0.001, 0.01, 0.1):
    torch.manual_seed(0)
    net = Net()
    sgd = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    print(f"learning rate {lr:g}:")
    curves[f"lr {lr:g}"] = train_epoch(net, progress(few_batches, f"lr {lr:g}"), sgd, make_criterion(), log_every=50)
show_loss_curves(curves, every=50, ylim=(0, 2.5), title="The same 400 mini-batches, three learning rates")

# %% [markdown]
# In 400 mini-batches the recipe's 0.001 has not even left its plateau, while 0.01 gets going
# much sooner. But ten times more again, 0.1, fails: its loss never falls below 2.30, guessing.
# Steps that large throw the weights so far that many neurons end up always negative, so their
# ReLU outputs 0 and they stop learning: the network "dies". (In this run all 84 neurons of `fc2`
# die, and the network gives the same answer for every image.) With batches of only 4 images every
# gradient is noisy, so a large learning rate is a gamble; the recipe's 0.001 is slow to start
# but steady over a long run. Faster recipes use larger batches, and a learning rate that changes
# during training (see the exercises below).
#
# ## Summary
#
# - The **cross-entropy loss** is the mean of $-\log p_{\text{true digit}}$ over a batch; about
#   2.30 for random guessing. `nn.CrossEntropyLoss` takes the **raw logits** and applies the softmax
#   itself: no softmax before it.
# - `backward()` fills `p.grad` for every weight; **SGD** moves each weight a step of size `lr`
#   against it, and **momentum** (0.9) lets consistent directions build up speed.
# - One **training step**: zero the gradients, forward, loss, backward, step. Gradients *add up*,
#   so they must be cleared once per step, before `backward()` (or right after `step()`).
# - One **epoch** is one pass over the data; the **running loss** printed every 200 mini-batches
#   shows whether training works. Return `loss.item()`, not the tensor.
# - The course recipe: batches of 4, SGD with lr 0.001 and momentum 0.9, 10 epochs.
#
# Next lesson: measure how good the trained network really is, on digits it has never seen.
#
# ## Further exercises (not graded)
#
# 1. **The full run.** Set `FULL_TRAINING = True`. How long does each epoch take? How much does the
#    loss still fall in epochs 5 to 10 compared with epoch 1?
# 2. **Forget `zero_grad`.** Copy `train_step`, delete the zeroing, and train on the 8,000 images.
#    What does the loss curve do, and why?
# 3. **A softmax too many.** Train with `criterion(torch.softmax(net(x), dim=1), y)` instead. Where does
#    the loss curve start, and how low does it get? (Hint: what is the smallest value
#    $-\log \text{softmax}(p)_y$ can take when every $p_k$ lies in $[0, 1]$?)
# 4. **A faster recipe.** Try `make_loader(x_train, y_train, batch_size=64)` with
#    `torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)`. How long is an epoch now, and how
#    low does the loss get in one epoch? Why is a larger batch so much faster per image?
# 5. **Adam.** Replace SGD with `torch.optim.Adam(net.parameters(), lr=0.001)`. Compare the loss
#    curves on the 8,000 images.
