"""Lesson 5 (05_evaluation): the public checks of predict, evaluate, confusion_matrix, and the
collector of the trained network's weights (the 97% check).

predict and evaluate run on a *table network*: it answers each input image with a fixed row
of logits chosen by the check (the image's pixel (0, 0) says which row), and records, for
every forward pass, whether gradients were being tracked and whether it was in training
mode. So the judges know the right answers exactly, and can say when the network was run
with a graph or in training mode. The hidden checks (``*_hidden``) run the same collectors
on the course's ``Net``; their judges, in ``lessons_src/05_evaluation/05_evaluation_judges.py``, compare with
``mnist_cnn.evaluate``. The 97% check (``eval_accuracy``) collects the trained weights as
plain arrays; its hidden judge scores them with the reference evaluation on the test set.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from coursekit.checks import KIND_NAMES, Found, describe, doing, fail, fmt_shape, judge, kind, register, where_differs
from coursekit.checks.training import record_number

NUM_CLASSES = 10
DEFAULT_BAR = 0.97             # course.yml's evaluation.accuracy_threshold, if course.yml cannot be read
NET_SHAPES = {"conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
              "fc1.weight": (120, 256), "fc1.bias": (120,), "fc2.weight": (84, 120), "fc2.bias": (84,),
              "fc3.weight": (10, 84), "fc3.bias": (10,)}


def accuracy_bar() -> float:
    """The accuracy the trained network must reach: course.yml's evaluation.accuracy_threshold."""
    from coursekit import config

    try:
        return float(config.load().evaluation.accuracy_threshold)
    except config.ConfigError:  # no course.yml here: the course's default
        return DEFAULT_BAR


# --- the table network ---------------------------------------------------------------

def _tagged_images(rng, n: int) -> np.ndarray:
    """(n, 1, 28, 28) float32 in [0, 1]; image i has pixel (0, 0) = i / 255 (its row in the table)."""
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    x[:, 0, 0, 0] = np.arange(n, dtype=np.float32) / 255
    return x


def table_net(table: np.ndarray, notes: dict):
    """An nn.Module that maps image i (pixel (0, 0) = i / 255) to the logits table[i].

    Its output depends on a parameter (a scale of 1.0), so it builds a graph when gradients are
    tracked. notes["grad"] / notes["training"] get, per forward pass, torch.is_grad_enabled()
    and the module's training flag.
    """
    import torch
    from torch import nn

    class TableNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.from_numpy(table.astype(np.float32)))
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, x):
            notes.setdefault("grad", []).append(bool(torch.is_grad_enabled()))
            notes.setdefault("training", []).append(bool(self.training))
            ids = torch.round(x[:, 0, 0, 0] * 255).long().clamp(0, len(self.table) - 1)
            return self.table[ids] * self.scale

    return TableNet()


def seeded_net(Net, seed: int, notes: dict):
    """The notebook's Net, initialised from ``seed``, recording its forward passes like table_net."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Net()

    def on_forward(module, args, output):
        notes.setdefault("grad", []).append(bool(torch.is_grad_enabled()))
        notes.setdefault("training", []).append(bool(module.training))

    net.register_forward_hook(on_forward)
    return net


def _weights(net, data: dict) -> None:
    for name, t in net.state_dict().items():
        data[f"w.{name}"] = t.detach().cpu().numpy().copy()


def _notes(notes: dict, data: dict) -> None:
    data["forward_grad"] = np.array(notes.get("grad", []), dtype=bool)
    data["forward_training"] = np.array(notes.get("training", []), dtype=bool)


def _judge_no_graph(found, what: str) -> None:
    grad = np.atleast_1d(found["forward_grad"])
    if grad.size and grad.any():
        fail(f"{what} ran the network with gradient tracking on: every forward pass built a computation graph "
             f"(for a backward pass that never comes), which costs memory and time.",
             "run the network inside a `with torch.no_grad():` block when you only need its outputs (a "
             ".detach() afterwards is too late: the graph is built during the forward pass).")


# --- (a) predict ---------------------------------------------------------------------

def _table(rng, n: int) -> np.ndarray:
    """(n, 10) float32 logits whose largest entry is clear (at least 0.5 above the next)."""
    table = rng.normal(0, 1.5, size=(n, NUM_CLASSES))
    best = rng.integers(0, NUM_CLASSES, size=n)
    table[np.arange(n), best] = table.max(axis=1) + rng.uniform(0.5, 3, size=n)
    return table.astype(np.float32)


def predict_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 50)
    return {"model": "table", "x": _tagged_images(rng, 7), "table": _table(rng, 7), "seed": seed}


def predict_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 150)
    return {"model": "net", "x": _tagged_images(rng, 13), "seed": seed}


@register("eval_predict", inputs=predict_inputs,
          title="(N, 10) logits -> (N,) int64 digits, the argmax over the classes, without a graph")
def collect_predict(inputs, predict, Net):
    import torch

    notes, data = {}, {}
    net = table_net(inputs["table"], notes) if inputs["model"] == "table" else seeded_net(Net, inputs["seed"], notes)
    net.train()
    if inputs["model"] == "net":
        _weights(net, data)
    x = torch.from_numpy(inputs["x"].copy())
    doing(f"calling predict(net, x) with x {fmt_shape(x.shape)} float32")
    with torch.random.fork_rng(devices=[]):
        out = predict(net, x)
    describe(out, "out", data)
    _notes(notes, data)
    return data


register("eval_predict_hidden", inputs=predict_hidden_inputs, seed=1)(collect_predict)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@judge("eval_predict", "eval_predict_hidden")
def judge_predict(inputs, found):
    n = len(inputs["x"])
    out = Found(found, "out", "predict(net, x)")
    if out.kind in ("max", "min", "tuple", "list"):
        fail(f"predict(net, x) returned a {'pair' if out.kind in ('max', 'min') else out.kind}; expected one (N,) "
             f"tensor of class indices.",
             "torch.max(scores, dim=1) returns a pair (values, indices): return only the indices (or use argmax).")
    out.need_kind("Tensor", hint={
        "ndarray": "return the torch tensor of class indices; no need to convert it to NumPy.",
        "NoneType": "end with a return statement.",
    }.get(out.kind, ""))
    if out.shape != (n,):
        hints = {
            (NUM_CLASSES,): f"that is an argmax over dim 0, the {n} images: for each of the 10 classes it picks the "
                            f"image with the highest score. You want, for each image, the class: dim 1.",
            (): "argmax without a dim flattens the (N, 10) scores and returns one position in the whole table; "
                "take it over dim 1, the classes.",
            (n, NUM_CLASSES): "those are still 10 numbers per image (scores or probabilities): the prediction is "
                              "the position of the largest one, an argmax over dim 1.",
            (n, 1): "keepdim=True keeps an axis of length 1: leave it out to get shape (N,).",
            (1, n): "the result has an extra axis: leave out unsqueeze/keepdim and return shape (N,).",
        }
        out.need_shape((n,), hint=hints.get(out.shape, "one predicted class per image: an argmax over dim 1."))
    if out.dtype != "torch.int64":
        v = np.asarray(out.value, dtype=np.float64)
        if out.dtype and "float" in out.dtype and np.all(v == np.round(v)) and v.min() >= 0 and v.max() < NUM_CLASSES:
            fail(f"predict(net, x) returned the classes as {out.dtype}; expected int64.",
                 "argmax returns int64 indices: return them without converting them.")
        if out.dtype and "float" in out.dtype:
            fail(f"predict(net, x) returned {out.dtype} values; expected the class indices, int64.",
                 "torch.max(scores, dim=1) returns a pair (values, indices): the values are the largest scores, "
                 "the indices are the classes. argmax gives the indices directly.")
        out.need_dtype("torch.int64", hint="argmax returns int64 indices: return them unchanged.")
    if inputs["model"] == "table":
        want = inputs["table"].argmax(axis=1)
        got = np.asarray(out.value)
        if not np.array_equal(got, want):
            fail(f"predict(net, x) returned the wrong classes: {where_differs(got, want)}.",
                 "the predicted class of image i is the position of its largest score: argmax over dim 1 of "
                 "net(x).")
    _judge_no_graph(found, "predict(net, x)")


# --- (b) evaluate --------------------------------------------------------------------

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
    return {"model": "table", "x": _tagged_images(rng, n), "y": y, "table": table.astype(np.float32),
            "batch_size": 4, "seed": seed}


def evaluate_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 151)
    n = 23
    return {"model": "net", "x": _tagged_images(rng, n), "y": rng.integers(0, NUM_CLASSES, size=n).astype(np.int64),
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
        _weights(net, data)
    x, y = torch.from_numpy(inputs["x"].copy()), torch.from_numpy(inputs["y"].copy())
    loader = DataLoader(TensorDataset(x, y), batch_size=int(inputs["batch_size"]), shuffle=False)
    sizes = ", ".join(str(len(b)) for b in torch.split(y, int(inputs["batch_size"])))
    doing(f"calling evaluate(net, loader, criterion) on {len(y)} samples in batches of {sizes}, "
          f"criterion = nn.CrossEntropyLoss()")
    with torch.random.fork_rng(devices=[]):
        result = evaluate(net, loader, nn.CrossEntropyLoss())
    data["result.kind"] = kind(result)
    if isinstance(result, (tuple, list)):
        data["result.len"] = len(result)
        if len(result) == 2:
            record_number(result[0], "accuracy", data)
            record_number(result[1], "loss", data)
    _notes(notes, data)
    return data


register("eval_evaluate_hidden", inputs=evaluate_hidden_inputs, seed=1)(collect_evaluate)


def reference_scores(inputs) -> dict:
    """What evaluate should return on the table network, and the usual wrong answers."""
    table, y, bs = inputs["table"].astype(np.float64), inputs["y"], int(inputs["batch_size"])
    logp = np.log(_softmax(table))
    losses = -logp[np.arange(len(y)), y]                      # per sample
    right = (table.argmax(axis=1) == y).astype(np.float64)
    batches = [slice(i, i + bs) for i in range(0, len(y), bs)]
    probs = _softmax(table)
    soft_losses = -np.log(_softmax(probs))[np.arange(len(y)), y]
    return {
        "accuracy": right.mean(), "loss": losses.mean(), "correct": int(right.sum()), "n": len(y),
        "accuracy_per_batch": np.mean([right[b].mean() for b in batches]),
        "loss_per_batch": np.mean([losses[b].mean() for b in batches]),
        "loss_sum": losses.sum(),
        "loss_batch_means_over_n": sum(losses[b].mean() for b in batches) / len(y),
        "loss_softmax": soft_losses.mean(),
        "batches": len(batches),
    }


def _judge_pair(found) -> tuple:
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
    accuracy, loss = _judge_pair(found)
    _judge_no_graph(found, what)
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


# --- (c) confusion_matrix ------------------------------------------------------------

def confusion_inputs(seed: int) -> dict:
    """40 pairs with repeated (true, predicted) pairs and an asymmetric confusion; and 12 pairs of 4 classes."""
    rng = np.random.default_rng(seed + 52)
    y_true = rng.integers(0, NUM_CLASSES, size=40)
    y_pred = y_true.copy()
    flip = rng.random(40) < 0.4
    y_pred[flip] = rng.integers(0, NUM_CLASSES, size=int(flip.sum()))
    y_true[:3], y_pred[:3] = 3, 8                           # a repeated mistake, never the other way round
    y_true[3], y_pred[3] = 9, 4                             # a 9 taken for a 4, and no 9 ever predicted right:
    y_pred[(y_true == 9) & (y_pred == 9)] = 7               # the last row and column are not all empty, but [9, 9] is
    small_true = rng.integers(0, 4, size=12)
    small_pred = np.where(rng.random(12) < 0.5, small_true, rng.integers(0, 4, size=12))
    small_true[:2], small_pred[:2] = 1, 2
    small_pred[(small_true == 3) & (small_pred == 3)] = 0
    return {"y_true": y_true.astype(np.int64), "y_pred": y_pred.astype(np.int64),
            "small_true": small_true.astype(np.int64), "small_pred": small_pred.astype(np.int64)}


def confusion_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 152)
    y_true = rng.integers(0, NUM_CLASSES, size=300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, NUM_CLASSES, size=300))
    small_true = rng.integers(0, 3, size=9)
    small_pred = rng.integers(0, 3, size=9)
    return {"y_true": y_true.astype(np.int64), "y_pred": y_pred.astype(np.int64),
            "small_true": small_true.astype(np.int64), "small_pred": small_pred.astype(np.int64)}


@register("eval_confusion", inputs=confusion_inputs,
          title="(10, 10) int64 counts, rows the true digit, columns the prediction",
          hints=[(r"cannot reshape", "np.bincount returns only as many counts as its largest value + 1: pass "
                                     "minlength=num_classes * num_classes."),
                 (r"out of bounds", "the matrix needs num_classes rows and columns, one per class.")])
def collect_confusion(inputs, confusion_matrix):
    data = {}
    t, p = inputs["y_true"].copy(), inputs["y_pred"].copy()
    doing(f"calling confusion_matrix(y_true, y_pred) with y_true and y_pred {fmt_shape(t.shape)} int64 arrays")
    describe(confusion_matrix(t, p), "full", data)
    data["unchanged"] = bool(np.array_equal(t, inputs["y_true"]) and np.array_equal(p, inputs["y_pred"]))
    t, p = inputs["small_true"].copy(), inputs["small_pred"].copy()
    k = int(max(t.max(), p.max())) + 1
    doing(f"calling confusion_matrix(y_true, y_pred, num_classes={k}) with y_true and y_pred "
          f"{fmt_shape(t.shape)} int64 arrays of labels 0..{k - 1}")
    describe(confusion_matrix(t, p, num_classes=k), "small", data)
    data["small.classes"] = k
    return data


register("eval_confusion_hidden", inputs=confusion_hidden_inputs, seed=1)(collect_confusion)


def counts(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) int64: entry [t, p] = how many samples of true class t were predicted as p."""
    out = np.zeros((k, k), dtype=np.int64)
    np.add.at(out, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return out


@judge("eval_confusion", "eval_confusion_hidden")
def judge_confusion(inputs, found):
    cases = [("full", inputs["y_true"], inputs["y_pred"], NUM_CLASSES, "confusion_matrix(y_true, y_pred)")]
    k = int(found["small.classes"])
    cases.append(("small", inputs["small_true"], inputs["small_pred"], k,
                  f"confusion_matrix(y_true, y_pred, num_classes={k})"))
    for tag, t, p, classes, what in cases:
        out = Found(found, tag, what)
        out.need_kind("ndarray", hint={
            "Tensor": "return a NumPy array (a tensor's .numpy() converts it).",
            "NoneType": "end with a return statement.",
            "list": "build the matrix as a NumPy array, e.g. starting from np.zeros((num_classes, num_classes), ...).",
        }.get(out.kind, ""))
        if out.shape != (classes, classes):
            hint = ("use the num_classes argument for the size, not a fixed 10." if out.shape == (NUM_CLASSES,) * 2
                    else f"one row and one column per class: shape (num_classes, num_classes).")
            out.need_shape((classes, classes), hint=hint)
        if not out.dtype or not out.dtype.startswith(("int", "uint")):
            fail(f"{what} has dtype {out.dtype}; counts are whole numbers: expected int64.",
                 "np.zeros makes float64 unless you pass dtype=np.int64." if "float" in str(out.dtype) else
                 "create the matrix with dtype=np.int64.")
        got = np.asarray(out.value).astype(np.int64)
        want = counts(t, p, classes)
        if np.array_equal(got, want):
            continue
        head = f"{what} has wrong counts, {where_differs(got, want)}."
        if np.array_equal(got, want.T):
            fail(f"{what} is transposed: its rows are the predictions and its columns the true labels.",
                 "entry [t, p] counts the samples of true class t predicted as p: the row is the true label.")
        if np.array_equal(got, (want > 0).astype(np.int64)):
            fail(head + " Every (true, predicted) pair is counted at most once.",
                 "fancy-index assignment such as m[y_true, y_pred] += 1 adds 1 only once per distinct pair, even "
                 "when the pair occurs many times; count in a loop, or with np.add.at.")
        if np.array_equal(got, np.diag(np.diag(want))):
            fail(head + " Only the correct predictions (the diagonal) were counted.",
                 "count every sample: the mistakes go off the diagonal, at [true, predicted].")
        if got.sum() != len(t):
            fail(head + f" The entries add up to {int(got.sum())}, but there are {len(t)} samples.",
                 "every sample adds exactly 1, at [true label, predicted label].")
        fail(head, "entry [t, p] is the number of samples whose true label is t and whose prediction is p.")
    if not found["unchanged"]:
        fail("confusion_matrix changed the arrays it was given.", "don't modify y_true or y_pred.")


# --- the trained network: 97% on the test set ----------------------------------------

def accuracy_inputs(seed: int) -> dict:
    return {"threshold": accuracy_bar(), "split": "test", "batch_size": 1000}


@register("eval_accuracy", inputs=accuracy_inputs,
          title="the trained network reaches the course's accuracy bar on the 10,000 test digits")
def collect_accuracy(inputs, net, evaluate):
    """The trained weights (state_dict as plain arrays, ``w.<name>``), and what the student's evaluate
    says about a copy of the network on the test set."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from coursekit.data import load_digits

    data = {"net.kind": kind(net)}
    if not hasattr(net, "state_dict"):
        return data
    _weights(net, data)
    images, labels = load_digits(inputs["split"])
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)            # (10000, 1, 28, 28) in [0, 1]
    y = torch.from_numpy(labels)
    loader = DataLoader(TensorDataset(x, y), batch_size=int(inputs["batch_size"]), shuffle=False)
    doing("calling evaluate(net, test_loader, criterion) on a copy of your trained net, with the 10,000 test digits")
    with torch.random.fork_rng(devices=[]):
        result = evaluate(copy.deepcopy(net), loader, nn.CrossEntropyLoss())
    data["result.kind"] = kind(result)
    if isinstance(result, (tuple, list)):
        data["result.len"] = len(result)
        if len(result) == 2:
            record_number(result[0], "accuracy", data)
            record_number(result[1], "loss", data)
    return data


register("eval_accuracy_hidden", inputs=accuracy_inputs, seed=1)(collect_accuracy)


@judge("eval_accuracy", "eval_accuracy_hidden")
def judge_accuracy(inputs, found):
    bar = float(inputs["threshold"])
    if "w.fc3.weight" not in found:
        fail(f"the first argument should be the trained network (the Net trained above), but it is "
             f"{KIND.get(found['net.kind'], 'a ' + found['net.kind'])}.", "run the training cell first, from the top.")
    for name, shape in NET_SHAPES.items():
        w = found.get(f"w.{name}")
        if w is None or tuple(np.shape(w)) != shape:
            fail(f"the trained network's {name} should have shape {fmt_shape(shape)}, but it "
                 f"{'is missing' if w is None else 'has shape ' + fmt_shape(np.shape(w))}.",
                 "check the network trained above: it should be the course's Net.")
        if not np.all(np.isfinite(w)):
            fail(f"the trained network's {name} holds NaN or infinite values: training blew up.",
                 "run the notebook again from the top, with the course's learning rate.")
    accuracy, loss = _judge_pair(found)
    if not 0 <= accuracy <= 1:
        fail(f"your evaluate says the accuracy is {accuracy:g}, which is not a fraction between 0 and 1.",
             "fix evaluate first (exercise b): its check says what is wrong.")
    if accuracy < bar:
        fail(f"the trained network gets {accuracy:.2%} of the 10,000 test digits right (measured by your evaluate); "
             f"the course's bar is {bar:.0%}.",
             "if evaluate passes its check, the network is not trained enough: run the training cell (and every "
             "cell above it) again from the top, without changing it.")
