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
# # Lesson 5: Evaluation
#
# Lesson 4 trained the network and watched its loss fall. But a falling training loss only says
# that the network fits the images it was trained on. The question that matters is different:
# **how well does it read digits it has never seen?** This lesson measures that on the 10,000
# test images, and looks closely at what the network gets wrong.
#
# **By the end of this lesson you will be able to**
#
# - turn the network's scores into predicted digits (an argmax over the right dimension);
# - measure accuracy and mean loss correctly: in evaluation mode, without building a computation
#   graph, averaged over samples (not over batches);
# - build and read a confusion matrix;
# - look at the misclassified digits and judge which mistakes are forgivable.
#
# Your network must reach **97% accuracy** on the test set: the graded check at the end of
# section 2 measures it.
#
# **Time:** about 45 to 60 minutes (the training cell below prints how long it took).
# **You need:** lessons 1 to 4 (the pipeline, `Net` and the training loop come ready-made below).
#
# **How the exercises work** (as before): replace `raise NotImplementedError()` with your code, run
# the cell, then the check cell under it. All the checks of this lesson at once (save first):
#
# ```
# python -m coursekit.selfcheck 05_evaluation
# ```
#
# Run the cells in order, from the top.

# %% nbgrader={"grade": false, "grade_id": "eval_setup", "locked": true, "schema_version": 3, "solution": false}
import itertools
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from coursekit.checks import check, relies_on
from coursekit.data import load_digits
from coursekit.plots import (show_confusion, show_data_flow, show_digits, show_feature_maps, show_kernels,
                             show_loss_curve, show_probabilities)
from coursekit.progress import progress

torch.manual_seed(0)      # the same "random" weights and shuffles every time you run the notebook
torch.set_num_threads(1)  # batches of 4 images are too small to share between CPU cores: one is fastest

# %% [markdown]
# The pieces from lessons 1 to 4: the data pipeline, the network, and the training loop.

# %% nbgrader={"grade": false, "grade_id": "eval_given_pipeline", "locked": true, "schema_version": 3, "solution": false} given_from=["01_data:data_add_channel_answer", "01_data:data_normalize_answer", "01_data:data_to_tensors_answer", "01_data:data_make_loader_answer"]
# Given code: `make lessons` fills this cell with the solution code of the cells named in given_from.

# %% nbgrader={"grade": false, "grade_id": "eval_given_net", "locked": true, "schema_version": 3, "solution": false} given_from=["03_fc:fc_net_answer"]
# Given code: `make lessons` fills this cell with the solution code of the cells named in given_from.

# %% nbgrader={"grade": false, "grade_id": "eval_given_training", "locked": true, "schema_version": 3, "solution": false} given_from=["04_training:train_optimizer_answer", "04_training:train_step_answer", "04_training:train_epoch_answer"]
# Given code: `make lessons` fills this cell with the solution code of the cells named in given_from.

# %% [markdown]
# ## Training the network
#
# The full course recipe is 10 epochs (lesson 4's `FULL_TRAINING`). To keep this
# notebook quick, it trains a **shortened run of the same recipe**: the first
# 25,000 mini-batches of 4, one epoch and two thirds of the next. The recipe is
# unchanged (batches of 4, SGD with learning rate 0.001 and momentum 0.9); only the number of steps
# is smaller. That is enough to pass 97%, as you are about to measure. The loss is printed every
# 1,000 mini-batches to keep the output short.

# %% nbgrader={"grade": false, "grade_id": "eval_train", "locked": true, "schema_version": 3, "solution": false}
TRAIN_BATCHES = 25000   # mini-batches of 4: 1 2/3 epochs of the 10-epoch recipe (150,000)

images, labels = load_digits("train")
x_train, y_train = to_tensors(images, labels)
test_images, test_labels = load_digits("test")
x_test, y_test = to_tensors(test_images, test_labels)

torch.manual_seed(0)
net = Net()
optimizer, criterion = make_optimizer(net), make_criterion()
train_loader = make_loader(x_train, y_train)
losses, done, epoch = [], 0, 0
start = time.perf_counter()
while done < TRAIN_BATCHES:
    epoch += 1
    n = min(len(train_loader), TRAIN_BATCHES - done)                  # the whole epoch, or what is left
    batches = progress(itertools.islice(train_loader, n), f"epoch {epoch}", total=n)
    losses += train_epoch(net, batches, optimizer, criterion, epoch=epoch, log_every=1000)
    done += n
print(f"trained {done:,} mini-batches ({done / len(train_loader):.2f} epochs) in "
      f"{time.perf_counter() - start:.0f} s")
show_loss_curve(losses, every=1000, title="Training loss (mean of every 1,000 mini-batches)")

# %% [markdown]
# ## 1. From scores to predictions
#
# For each image the network returns 10 scores, the logits, one per digit. Its **prediction** is the
# digit with the highest score. If we want to see how sure it is, the softmax turns the scores into
# probabilities (lesson 4); the largest probability belongs to the largest score, so the prediction
# is the same either way. Here is what the trained network believes about the first three test
# digits, and about the two it is least sure of among the first 1,000:

# %%
with torch.no_grad():
    probabilities = torch.softmax(net(x_test[:1000]), dim=1)   # (1000, 10), each row sums to 1
least_sure = probabilities.max(dim=1).values.argsort()[:2]      # the 2 smallest top probabilities
shown = torch.cat([torch.arange(3), least_sure])
show_probabilities(x_test[shown], probabilities[shown], y_test[shown])

# %% [markdown]
# The position of the largest value along a dimension is `argmax`. The scores of a batch have shape
# `(N, 10)`: dimension 0 runs over the N images, dimension 1 over the 10 classes. We want, for each
# image, the best class, so the argmax runs **over dimension 1**: `scores.argmax(dim=1)` has shape
# `(N,)`. (Over dimension 0 it would answer another question, "for each digit, which image scores
# highest?", with shape `(10,)`.) `torch.max(scores, dim=1)` returns both the largest values and
# their positions, as a pair `(values, indices)`; the indices are what we need.
#
# **No graph, please.** Every time the network runs, PyTorch records the computation graph it needs
# for `backward()`, unless gradients are switched off. Predicting never calls `backward()`, so that
# graph is pure waste: memory for every intermediate result of every layer. Inside a
# `torch.no_grad()` block PyTorch records nothing:

# %%
def recorded(t):
    """What PyTorch recorded for tensor t: the name of the step that made it (its grad_fn), or None."""
    return type(t.grad_fn).__name__ if t.grad_fn is not None else None


scores = net(x_test[:1000])
print("with a graph:    requires_grad =", scores.requires_grad, " grad_fn =", recorded(scores))
with torch.no_grad():
    scores = net(x_test[:1000])
print("under no_grad(): requires_grad =", scores.requires_grad, " grad_fn =", recorded(scores))


# %% [markdown]
# ### Exercise (a): `predict` (2 points)

# %% nbgrader={"grade": false, "grade_id": "eval_predict_answer", "locked": false, "schema_version": 3, "solution": true}
def predict(net, x):
    """The digit the network predicts for each image.

    net: the network: (N, 1, 28, 28) float32 images -> (N, 10) float32 scores (logits)
    x: (N, 1, 28, 28) float32 tensor of images
    returns: (N,) int64 tensor, the predicted digit 0..9 of each image: the class with the
        highest score. Computed without building a computation graph.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():                # predicting needs no graph
        scores = net(x)                  # (N, 10)
    return scores.argmax(dim=1)          # (N,) int64: the best class of each image
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "eval_predict", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# Checks exercise (a): shape (N,), dtype int64, the argmax over the classes, no graph.
check("eval_predict", predict, Net)
### BEGIN HIDDEN TESTS
check("eval_predict_hidden", predict, Net)
### END HIDDEN TESTS

# %% [markdown]
# The first 30 test digits, each titled `label→prediction` (red when the prediction is wrong):

# %%
relies_on("eval_predict")   # a warning here if your predict did not pass its check
predictions = predict(net, x_test[:30])
show_digits(x_test[:30], y_test[:30], predictions, title="Test digits: label→prediction")
print("right:", (predictions == y_test[:30]).sum().item(), "of 30")


# %% [markdown]
# ## 2. Accuracy and loss on the test set
#
# Two numbers summarize a classifier on a data set:
#
# - **accuracy**: the fraction of the samples it predicts correctly;
# - **mean loss**: the mean cross-entropy per sample. Accuracy only asks "right or wrong?"; the loss
#   also says how *confident* the network was: a right answer given with 51% costs more than one
#   given with 99%, and a confident wrong answer costs a lot.
#
# We go through the test set in large batches (1,000 images: the batch size changes nothing in
# evaluation, only how much memory is used at once). Three details make the difference between a
# correct number and a subtly wrong one:
#
# 1. **Evaluation mode.** `net.eval()` switches the network to evaluation mode. Our `Net` behaves the
#    same in both modes, but many networks don't: dropout switches neurons off at random *only* while
#    training, and batch normalization uses each batch's statistics while training but fixed ones in
#    evaluation. Evaluating in training mode gives noisy, wrong numbers, so `net.eval()` always comes
#    first (and `train_epoch` switches back with `net.train()`).
# 2. **No graph**: `torch.no_grad()`, as in `predict`. On 10,000 images the graph would be large.
# 3. **Average over samples, not batches.** The criterion returns the *mean* loss of its batch. If
#    the batches are not all the same size, the mean of the batch means is not the mean over samples.
#    With 10 samples in batches of 4, 4 and 2, the 2 samples of the last batch would weigh as much as
#    the 4 of the first batch, each counting double. So multiply each batch's mean loss by its number
#    of samples, add those totals up, and divide by the number of samples at the end. Do the same for
#    the correct predictions.
#
# ### Exercise (b): `evaluate` (4 points)
#
# Use your `predict` if you like (it returns the predicted classes of a batch), but the loss needs the
# scores themselves.

# %% nbgrader={"grade": false, "grade_id": "eval_evaluate_answer", "locked": false, "schema_version": 3, "solution": true}
def evaluate(net, loader, criterion):
    """Accuracy and mean loss of net on all the samples of loader.

    net: the network: (B, 1, 28, 28) float32 -> (B, 10) float32 logits
    loader: yields (x, y) batches: x (B, 1, 28, 28) float32, y (B,) int64;
        B may differ between batches (the last one is often smaller)
    criterion: the loss, e.g. nn.CrossEntropyLoss(): the MEAN loss of a batch
    returns: (accuracy, mean_loss), two Python floats:
        accuracy: the fraction of all samples predicted correctly, in [0, 1]
        mean_loss: the loss averaged over all samples (not over batches)
    Runs net in evaluation mode (net.eval()) and without building a graph.
    """
    ### BEGIN SOLUTION
    net.eval()                                   # evaluation mode: no dropout, fixed statistics
    correct, total, loss_sum = 0, 0, 0.0
    with torch.no_grad():                        # no graph: we never call backward() here
        for x, y in loader:                      # B images; the last batch may be smaller
            scores = net(x)                                   # (B, 10)
            loss_sum += criterion(scores, y).item() * len(y)  # the batch's mean loss * B
            correct += (scores.argmax(dim=1) == y).sum().item()  # right predictions in the batch
            total += len(y)                                   # samples so far
    return correct / total, loss_sum / total     # per sample, not per batch
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "eval_evaluate", "locked": true, "points": 4, "schema_version": 3, "solution": false}
# Checks exercise (b): accuracy and mean loss per sample, eval mode, no graph.
check("eval_evaluate", evaluate, Net)
### BEGIN HIDDEN TESTS
check("eval_evaluate_hidden", evaluate, Net)
### END HIDDEN TESTS

# %% [markdown]
# Now the real measurement: the trained network on the 10,000 test digits, and, for comparison, on
# 10,000 of the training digits it learned from:

# %%
relies_on("eval_evaluate")   # a warning here if your evaluate did not pass its check
test_loader = make_loader(x_test, y_test, batch_size=1000, shuffle=False)
test_accuracy, test_loss = evaluate(net, test_loader, criterion)
train_accuracy, train_loss = evaluate(net, make_loader(x_train[:10000], y_train[:10000], 1000, False), criterion)
print(f"test set:     accuracy {test_accuracy:.2%}, mean loss {test_loss:.4f}")
print(f"training set: accuracy {train_accuracy:.2%}, mean loss {train_loss:.4f}  (first 10,000 images)")

# %% [markdown]
# Both are close: after less than two epochs the network has not started to memorize its training
# images, it has learned what digits look like. (After many more epochs the training accuracy keeps
# rising while the test accuracy stalls: that gap is called **overfitting**, and it is why we always
# measure on images the network has never seen.)
#
# The graded check: your trained network must get at least 97% of the test digits right. It measures
# the network with your `evaluate`, and, when your notebook is graded, the grader measures the same
# trained weights again with its own evaluation.

# %% nbgrader={"grade": true, "grade_id": "eval_accuracy", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks that the trained network reaches 97% on the 10,000 test digits.
check("eval_accuracy", net, evaluate)
### BEGIN HIDDEN TESTS
check("eval_accuracy_hidden", net, evaluate)
### END HIDDEN TESTS

# %% [markdown]
# ## 3. The confusion matrix
#
# One accuracy number hides *which* digits the network confuses. The **confusion matrix** shows all
# of it: a 10 × 10 table whose entry in row $t$, column $p$ counts the test images of true digit $t$
# that were predicted as $p$. The diagonal ($t = p$) holds the correct predictions, everything off
# the diagonal is a mistake, and each row adds up to the number of test images of that digit.
# Rows are the truth, columns the prediction: that is the usual convention (scikit-learn's too), and
# the order matters, since "3s taken for 8s" and "8s taken for 3s" are different mistakes.
#
# A trap: with NumPy's fancy indexing, `m[y_true, y_pred] += 1` looks like it counts every pair,
# but when the same (true, predicted) pair occurs several times it adds 1 **only once**. Count in a
# loop over the pairs (or look up `np.add.at`, which does add up repeats).
#
# ### Exercise (c): `confusion_matrix` (3 points)

# %% nbgrader={"grade": false, "grade_id": "eval_confusion_answer", "locked": false, "schema_version": 3, "solution": true}
def confusion_matrix(y_true, y_pred, num_classes=10):
    """Count how often each true digit was predicted as each digit.

    y_true: (N,) int64 NumPy array, the true labels 0..num_classes-1
    y_pred: (N,) int64 NumPy array, the predicted labels, same length
    returns: (num_classes, num_classes) int64 NumPy array m, where m[t, p] is the number of
        samples with true label t that were predicted as p (rows: truth, columns: prediction)
    """
    ### BEGIN SOLUTION
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        matrix[t, p] += 1                        # row: the truth, column: the prediction
    return matrix                                # (num_classes, num_classes) int64
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "eval_confusion", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# Checks exercise (c): shape, dtype, rows = true labels, every sample counted.
check("eval_confusion", confusion_matrix)
### BEGIN HIDDEN TESTS
check("eval_confusion_hidden", confusion_matrix)
### END HIDDEN TESTS

# %%
relies_on("eval_confusion", "eval_predict")   # a warning here if your code failed these checks
test_predictions = predict(net, x_test).numpy()
confusion = confusion_matrix(y_test.numpy(), test_predictions)
show_confusion(confusion)
mistakes = confusion - np.diag(np.diag(confusion))          # the off-diagonal counts
print("Your network's three most common confusions:")
for flat in np.argsort(mistakes, axis=None)[::-1][:3]:
    t, p = divmod(int(flat), 10)
    print(f"{mistakes[t, p]:3d} test images of a {t} were taken for a {p}")

# %% [markdown]
# Read the largest off-diagonal counts (the cell printed your three largest): do the two digits of
# each pair share strokes? Which pairs come first changes from run to run, and from one computer to
# another. A confusion matrix tells you where to look; the images tell you why.
#
# ## 4. The misclassified digits
#
# Here are the test digits the network gets wrong, titled `label→prediction`:

# %%
relies_on("eval_predict")   # a warning here if your predict did not pass its check
test_predictions = predict(net, x_test).numpy()                 # (10000,)
wrong = np.flatnonzero(test_predictions != y_test.numpy())        # the positions of the mistakes
print(f"{len(wrong)} of {len(y_test):,} test digits are misclassified")
show_digits(x_test[wrong], y_test[wrong], test_predictions[wrong], max_images=30,
            title="Misclassified test digits: label→prediction")

# %% [markdown]
# Many of them are hard even for a person: broken strokes, unusual slants, digits written over the
# edge, and a few labels that look wrong. Others are plain mistakes a better network would not make.
# The most worrying are the **confident** mistakes: the network was wrong *and* sure of itself.

# %%
relies_on("eval_predict")   # a warning here if your predict did not pass its check
wrong = np.flatnonzero(predict(net, x_test).numpy() != y_test.numpy())
with torch.no_grad():
    confidence = torch.softmax(net(x_test[wrong]), dim=1).max(dim=1).values   # (len(wrong),)
order = wrong[np.argsort(-confidence.numpy())][:5]
with torch.no_grad():
    show_probabilities(x_test[order], torch.softmax(net(x_test[order]), dim=1), y_test[order],
                       title="The most confident mistakes (the true label is above each digit)")

# %% [markdown]
# ## 5. What your network learned to see
#
# In lesson 2 you put hand-made kernels into `conv1`: edges, diagonals, a spot, a blur. Training
# found kernels of its own. Below are your network's six `conv1` kernels before training (the
# random start: `torch.manual_seed(0)` and `Net()` again, as the training cell began) and after
# it, each kernel on its own colour scale so that its pattern shows. Then what the trained kernels
# make of one test digit, and the digit's way through the whole network.
#
# Compare the two rows kernel by kernel. Training does not start over: it nudges the random
# weights, so traces of the start often remain. Look for lesson 2's patterns in the trained ones:
# a light side next to a dark one is an edge detector at that angle, a light stripe a bar. The
# printed line measures how rough the kernels are (how much neighbouring weights differ) before
# and after, in your run.

# %%
def roughness(weight):
    """Mean jump between neighbouring weights of the kernels, relative to their mean size.
    weight: (C_out, 1, k, k)."""
    w = weight.detach()[:, 0]                                      # (C_out, k, k)
    jumps = (w[:, 1:] - w[:, :-1]).abs().mean() + (w[:, :, 1:] - w[:, :, :-1]).abs().mean()
    return float(jumps / 2 / w.abs().mean())


torch.manual_seed(0)
untrained = Net()                                                  # the weights training started from
show_kernels(untrained.conv1.weight, own_scale=True,
             title="conv1 before training: random kernels (each on its own scale; red +, blue −)")
show_kernels(net.conv1.weight, own_scale=True, title="conv1 after training: your network's own kernels")
print(f"In your run: neighbouring kernel weights differ by {roughness(untrained.conv1.weight):.2f} of a "
      f"weight's size before training, {roughness(net.conv1.weight):.2f} after (smaller: smoother kernels).")
digit = x_test[:1]                                                 # (1, 1, 28, 28)
with torch.no_grad():
    maps = F.relu(net.conv1(digit))                                # (1, 6, 24, 24)
show_feature_maps(maps[0], title=f"Trained conv1 + ReLU on a test {int(y_test[0])}: what each kernel found")
show_data_flow(net, digit)

# %% [markdown]
# ## Summary
#
# - The prediction is the **argmax over dimension 1** (the classes) of the `(N, 10)` scores;
#   `torch.max(..., dim=1)` gives `(values, indices)`, and the indices are the classes.
# - Evaluate in **evaluation mode** (`net.eval()`) and without a graph (`torch.no_grad()`).
# - Average over **samples**, not batches: multiply each batch's mean loss by its size, add up,
#   divide by the number of samples; count correct predictions the same way.
# - Your shortened training run of the course recipe gets above 97% on 10,000 digits it has never
#   seen.
# - The **confusion matrix** (rows: true digit, columns: prediction) shows which digits are
#   confused; the misclassified images show why.
# - Training nudges `conv1`'s random kernels towards patterns of its own; the trained kernels and
#   their feature maps show what the first layer looks for.
#
# Next lesson: per-digit accuracy, digits that are shifted a little, and what it means to deploy a
# model like this one.
#
# ## Further exercises (not graded)
#
# 1. **Train longer.** Change nothing but the number of mini-batches (a copy of the training cell
#    with `TRAIN_BATCHES = 150_000` is the full recipe, 10 epochs). How much higher does the
#    test accuracy get? And the accuracy on the training images?
# 2. **Per-digit accuracy.** From the confusion matrix, compute the accuracy of each digit:
#    the diagonal divided by the row sums. Which digit is hardest? (Lesson 6 comes back to this.)
# 3. **Precision.** The column sums count how often each digit was *predicted*. What does the
#    diagonal divided by the column sums mean? When would you care about it more than about the
#    row-wise accuracy?
# 4. **Batch size in evaluation.** Run `evaluate` with test loaders of batch size 1,000, 999 and 7.
#    Your accuracy and loss should not change (up to rounding in the last digits). Would they, if you
#    had averaged the batch means?
# 5. **Forget `no_grad`.** Time `evaluate` with and without the `torch.no_grad()` block
#    (`time.perf_counter()`), and print `torch.cuda.max_memory_allocated()` if you have a GPU.
