"""Lesson 5: the trained network's weights, collected as plain arrays; its hidden judge scores
them on the test set against course.yml's bar (97%)."""
from __future__ import annotations

import copy

import numpy as np

from coursekit.checks import doing, fail, fmt_shape, judge, kind, register
from .common import NET_SHAPES, accuracy_bar, record_weights
from .evaluate import KIND, judge_pair, record_result

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
    record_weights(net, data)
    images, labels = load_digits(inputs["split"])
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)            # (10000, 1, 28, 28) in [0, 1]
    y = torch.from_numpy(labels)
    loader = DataLoader(TensorDataset(x, y), batch_size=int(inputs["batch_size"]), shuffle=False)
    doing("calling evaluate(net, test_loader, criterion) on a copy of your trained net, with the 10,000 test digits")
    with torch.random.fork_rng(devices=[]):
        result = evaluate(copy.deepcopy(net), loader, nn.CrossEntropyLoss())
    record_result(result, data)
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
    accuracy, loss = judge_pair(found)
    if not 0 <= accuracy <= 1:
        fail(f"your evaluate says the accuracy is {accuracy:g}, which is not a fraction between 0 and 1.",
             "fix evaluate first (exercise b): its check says what is wrong.")
    if accuracy < bar:
        fail(f"the trained network gets {accuracy:.2%} of the 10,000 test digits right (measured by your evaluate); "
             f"the course's bar is {bar:.0%}.",
             "if evaluate passes its check, the network is not trained enough: run the training cell (and every "
             "cell above it) again from the top, without changing it.")
