"""Lesson 5 (b): evaluate(net, loader) -> (mean loss, accuracy), on the table network."""
from __future__ import annotations

import math

import numpy as np

from coursekit.checks import KIND_NAMES, doing, fail, judge, kind, register
from coursekit.checks.stand_in import standing_in
from coursekit.checks.training import record_number
from .common import (NUM_CLASSES, judge_no_graph, record_notes, record_weights, seeded_net, table_net,
                     tagged_images)
from .predict import softmax


def evaluate_inputs(seed: int) -> dict:
    """10 samples in batches of 4, 4, 2. Correct: all of batch 1, half of batch 2, none of batch 3
    (whose losses are large), so averaging per batch gives other numbers than per sample."""
    rng = np.random.default_rng(seed + 51)
    n = 10
    y = rng.integers(0, NUM_CLASSES, size=n).astype(np.int64)
    table = rng.normal(0, 0.5, size=(n, NUM_CLASSES))
    correct = np.array([1, 1, 1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    for i in range(n):
        if correct[i]:
            table[i, y[i]] = table[i].max() + rng.uniform(0.5, 3)
        else:
            wrong = (y[i] + rng.integers(1, NUM_CLASSES)) % NUM_CLASSES
            table[i, wrong] = table[i].max() + rng.uniform(2, 6 if i >= 8 else 3)
    return {"model": "table", "x": tagged_images(rng, n), "y": y, "table": table.astype(np.float32),
            "batch_size": 4, "seed": seed}


def evaluate_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 151)
    n = 23
    return {"model": "net", "x": tagged_images(rng, n), "y": rng.integers(0, NUM_CLASSES, size=n).astype(np.int64),
            "batch_size": 5, "seed": seed}


@register("eval_evaluate", inputs=evaluate_inputs,
          title="accuracy and mean loss per sample, in eval mode, without a graph",
          hints=[(r"must match the size of tensor", "compare each image's predicted class (an argmax over dim 1 "
                                                    "of the (B, 10) scores) with its label: both have shape (B,).")])
def collect_evaluate(inputs, evaluate, Net):
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    notes, data = {}, {}
    net = table_net(inputs["table"], notes) if inputs["model"] == "table" else seeded_net(Net, inputs["seed"], notes)
    net.train()                                    # as it would be right after training
    if inputs["model"] == "net":
        record_weights(net, data)
    x, y = torch.from_numpy(inputs["x"].copy()), torch.from_numpy(inputs["y"].copy())
    loader = DataLoader(TensorDataset(x, y), batch_size=int(inputs["batch_size"]), shuffle=False)
    sizes = ", ".join(str(len(b)) for b in torch.split(y, int(inputs["batch_size"])))
    doing(f"calling evaluate(net, loader, criterion) on {len(y)} samples in batches of {sizes}, "
          f"criterion = nn.CrossEntropyLoss()")
    with torch.random.fork_rng(devices=[]), standing_in(evaluate, "predict", _predict):   # predict: its own check
        result = evaluate(net, loader, nn.CrossEntropyLoss())
    record_result(result, data)
    record_notes(notes, data)
    return data


def _predict(net, x):
    """What evaluate gets for the notebook's predict while evaluate is judged: the index of each
    row's largest score, (N, 10) -> (N,) int64, as the lesson's text gives it."""
    import torch

    with torch.no_grad():
        return torch.max(net(x), 1).indices


def record_result(result, data: dict) -> None:
    """What evaluate returned: its kind and length, and, for a pair, (accuracy, loss) as numbers."""
    data["result.kind"] = kind(result)
    if isinstance(result, (tuple, list)):
        data["result.len"] = len(result)
        if len(result) == 2:
            record_number(result[0], "accuracy", data)
            record_number(result[1], "loss", data)


register("eval_evaluate_hidden", inputs=evaluate_hidden_inputs, seed=1)(collect_evaluate)


def reference_scores(inputs) -> dict:
    """What evaluate should return on the table network, and the usual wrong answers."""
    table, y, bs = inputs["table"].astype(np.float64), inputs["y"], int(inputs["batch_size"])
    logp = np.log(softmax(table))
    losses = -logp[np.arange(len(y)), y]                      # per sample
    right = (table.argmax(axis=1) == y).astype(np.float64)
    batches = [slice(i, i + bs) for i in range(0, len(y), bs)]
    probs = softmax(table)
    soft_losses = -np.log(softmax(probs))[np.arange(len(y)), y]
    return {
        "accuracy": right.mean(), "loss": losses.mean(), "correct": int(right.sum()), "n": len(y),
        "accuracy_per_batch": np.mean([right[b].mean() for b in batches]),
        "loss_per_batch": np.mean([losses[b].mean() for b in batches]),
        "loss_sum": losses.sum(),
        "loss_batch_means_over_n": sum(losses[b].mean() for b in batches) / len(y),
        "loss_softmax": soft_losses.mean(),
        "batches": len(batches),
    }


def judge_pair(found) -> tuple:
    what = "evaluate(net, loader, criterion)"
    if found["result.kind"] not in ("tuple", "list") or found.get("result.len") != 2:
        got = found["result.kind"] + (f" of length {found['result.len']}" if "result.len" in found else "")
        fail(f"{what} should return a pair (accuracy, mean_loss), but returned {KIND_NAMES.get(got, got)}.",
             "end with `return accuracy, mean_loss`.")
    values = []
    for name in ("accuracy", "loss"):
        k = found[f"{name}.kind"]
        if found.get(f"{name}.requires_grad"):
            fail(f"the {name} that {what} returned is a tensor that requires a gradient: it is still attached to "
                 f"a computation graph.", "evaluate under torch.no_grad(), and return plain numbers (.item()).")
        if f"{name}.value" not in found:
            fail(f"the {name} that {what} returned is {KIND.get(k, 'a ' + k)}; expected a number (a Python float).",
                 "turn one-number tensors into floats with .item().")
        values.append(float(found[f"{name}.value"]))
    return tuple(values)


KIND = {"NoneType": "None", "list": "a list", "tuple": "a tuple", "Tensor": "a tensor of several numbers",
        "ndarray": "an array", "str": "a string"}


@judge("eval_evaluate", "eval_evaluate_hidden")
def judge_evaluate(inputs, found):
    what = "evaluate(net, loader, criterion)"
    accuracy, loss = judge_pair(found)
    judge_no_graph(found, what)
    training = np.atleast_1d(found["forward_training"])
    if training.size and training.any():
        fail(f"{what} ran the network in training mode (net.training was True during the forward passes).",
             "call net.eval() before evaluating: layers such as dropout and batch normalization behave "
             "differently while training, and evaluation must see the network as it will be used.")
    if inputs["model"] != "table":
        return
    ref = reference_scores(inputs)
    n, sizes = ref["n"], f"batches of {int(inputs['batch_size'])} with a smaller last one"
    if not math.isclose(accuracy, ref["accuracy"], abs_tol=1e-6):
        head = (f"{what} returned accuracy {accuracy:g}; expected {ref['accuracy']:g} ({ref['correct']} of the {n} "
                f"samples right).")
        if math.isclose(accuracy, 100 * ref["accuracy"], abs_tol=1e-4):
            fail(head + " That is a percentage.", "return the fraction, between 0 and 1 (print it as a percentage "
                                                  "with f\"{accuracy:.1%}\").")
        if math.isclose(accuracy, ref["correct"], abs_tol=1e-6):
            fail(head + " That is the number of correct predictions.", "divide by the number of samples.")
        if math.isclose(accuracy, ref["accuracy_per_batch"], abs_tol=1e-6):
            fail(head + f" That is the mean of the {ref['batches']} batches' accuracies: with {sizes}, each sample "
                        f"of the last batch counts more than the others.",
                 "count the correct predictions and the samples over all batches, and divide once at the end.")
        if math.isclose(accuracy, ref["correct"] / ref["batches"], abs_tol=1e-6):
            fail(head + " That divides by the number of batches.", "divide by the number of samples.")
        fail(head, "a prediction is right when the argmax over dim 1 of the scores equals the label; accuracy = "
                   "right predictions / samples, over the whole loader.")
    if not math.isclose(loss, ref["loss"], rel_tol=1e-5, abs_tol=1e-6):
        head = f"{what} returned mean loss {loss:.5f}; expected {ref['loss']:.5f}, the mean over the {n} samples."
        if math.isclose(loss, ref["loss_per_batch"], rel_tol=1e-5):
            fail(head + f" That is the mean of the {ref['batches']} batches' mean losses: with {sizes}, the samples of "
                        f"the last batch count more than the others.",
                 "criterion(...) returns the mean over its batch: multiply it by the batch size to get the batch's "
                 "total, add the totals up, and divide by the number of samples at the end.")
        if math.isclose(loss, ref["loss_batch_means_over_n"], rel_tol=1e-5):
            fail(head + " It adds up the batches' mean losses and divides by the number of samples.",
                 "criterion(...) returns the mean over its batch: multiply it by the batch size before adding up.")
        if math.isclose(loss, ref["loss_sum"], rel_tol=1e-5):
            fail(head + " That is the total, not the mean.", "divide the total by the number of samples.")
        if math.isclose(loss, ref["loss_softmax"], rel_tol=1e-5):
            fail(head + " The criterion was given probabilities: there is a softmax before it.",
                 "give the criterion the raw scores, net(x): it applies the softmax itself.")
        fail(head, "add up criterion(scores, y) * (number of samples in the batch) over the batches, then divide "
                   "by the number of samples.")
