"""Hidden judges of lesson 5 (05_evaluation): the student's evaluation against mnist_cnn's.

The reference is ``mnist_cnn.evaluate.evaluate`` (argmax over dim 1, mean loss per sample,
eval mode under no_grad, confusion rows = true class) on ``mnist_cnn.model.Net``, and, for
the 97% check, the reference evaluation of the student's trained weights on the real test
set against course.yml's ``evaluation.accuracy_threshold``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from coursekit.checks import lesson_checks
from coursekit.checks import Found, fail, hidden_judge, where_differs
from coursekit import config
from coursekit.fetch import load_mnist
from mnist_cnn.evaluate import evaluate as reference_evaluate
from mnist_cnn.model import Net
from mnist_cnn.train import to_tensors

lesson_checks("05_evaluation")  # registers the checks these judges attach to


def load_net(found) -> Net:
    """mnist_cnn's Net with the weights the collector recorded (``w.<name>``)."""
    net = Net()
    state = {name: torch.from_numpy(np.asarray(found[f"w.{name}"])) for name in net.state_dict()}
    net.load_state_dict(state, strict=True)
    return net


@hidden_judge("eval_predict_hidden")
def predict_matches_reference(inputs, found):
    net = load_net(found).eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(inputs["x"])).numpy()           # (N, 10)
    want = reference_evaluate(net, torch.from_numpy(inputs["x"]),
                              torch.zeros(len(inputs["x"]), dtype=torch.int64)).predictions
    top2 = np.sort(logits, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-4                            # ignore near-ties (rounding)
    got = np.asarray(Found(found, "out", "predict(net, x)").value)
    if not np.array_equal(got[clear], want[clear]):
        fail(f"on the course's Net, predict(net, x) does not match the reference predictions: "
             f"{where_differs(got[clear], want[clear])}.")


@hidden_judge("eval_evaluate_hidden")
def evaluate_matches_reference(inputs, found):
    net = load_net(found)
    ref = reference_evaluate(net, torch.from_numpy(inputs["x"]), torch.from_numpy(inputs["y"]),
                             batch_size=int(inputs["batch_size"]))
    accuracy, loss = float(found["accuracy.value"]), float(found["loss.value"])
    if not math.isclose(accuracy, ref.accuracy, abs_tol=1e-6):
        fail(f"on the course's Net and {len(inputs['y'])} samples in batches of {inputs['batch_size']}, evaluate "
             f"returned accuracy {accuracy:g}; the reference evaluation gives {ref.accuracy:g}.")
    if not math.isclose(loss, ref.loss, rel_tol=1e-4, abs_tol=1e-6):
        fail(f"on the course's Net and {len(inputs['y'])} samples in batches of {inputs['batch_size']}, evaluate "
             f"returned mean loss {loss:.5f}; the reference evaluation gives {ref.loss:.5f}.")


class _Lookup(nn.Module):
    """Predicts the class ``predictions[i]`` for input i (pixel (0, 0) holds i): one-hot logits."""

    def __init__(self, predictions: np.ndarray, num_classes: int):
        super().__init__()
        self.register_buffer("logits", torch.nn.functional.one_hot(torch.from_numpy(predictions),
                                                                   num_classes).float())

    def forward(self, x):
        return self.logits[x[:, 0, 0, 0].round().long()]


def reference_confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    x = torch.zeros(len(y_true), 1, 28, 28)
    x[:, 0, 0, 0] = torch.arange(len(y_true), dtype=torch.float32)
    return reference_evaluate(_Lookup(y_pred, num_classes), x, torch.from_numpy(y_true)).confusion


@hidden_judge("eval_confusion_hidden")
def confusion_matches_reference(inputs, found):
    k = int(found["small.classes"])
    for tag, t, p, classes in (("full", inputs["y_true"], inputs["y_pred"], 10),
                               ("small", inputs["small_true"], inputs["small_pred"], k)):
        want = reference_confusion(t, p, classes)
        got = np.asarray(Found(found, tag, "confusion_matrix").value)
        if got.shape != want.shape or not np.array_equal(got, want):
            fail(f"confusion_matrix on {len(t)} other samples ({classes} classes) does not match the reference: "
                 f"{where_differs(got, want) if got.shape == want.shape else 'shape ' + str(got.shape)}.")


_TEST_SET = {}


def test_set():
    """The real MNIST test set as mnist_cnn's tensors (cached)."""
    if not _TEST_SET:
        images, labels = load_mnist("test", log=lambda message: None)
        _TEST_SET["xy"] = to_tensors(images, labels, standardize=False)
    return _TEST_SET["xy"]


@hidden_judge("eval_accuracy_hidden")
def trained_weights_reach_the_bar(inputs, found):
    bar = config.load().evaluation.accuracy_threshold
    x, y = test_set()
    result = reference_evaluate(load_net(found), x, y, batch_size=config.load().evaluation.batch_size)
    if result.accuracy < bar:
        fail(f"the grader's evaluation of your trained network: {result.accuracy:.2%} of the 10,000 test digits "
             f"right; the bar is {bar:.0%}.",
             "run the whole notebook again from the top, without changing the training cell.")
