"""Lesson 4 (a): make_criterion and make_optimizer, judged on a spied CrossEntropyLoss and SGD."""
from __future__ import annotations

import math

import numpy as np

from coursekit.checks import Found, attempt, doing, fail, fmt_shape, judge, kind, part_ran, register
from coursekit.checks.training import record_number
from .common import LR, MOMENTUM, cross_entropy, log_softmax


def optimizer_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 40)
    logits = (rng.standard_normal((6, 10)) * 2).astype(np.float32)
    labels = rng.integers(0, 10, size=6).astype(np.int64)
    return {"logits": logits, "labels": labels, "seed": seed}


@register("train_optimizer", inputs=optimizer_inputs,
          title="CrossEntropyLoss on raw logits; SGD over all of net's parameters, lr 0.001, momentum 0.9",
          hints=[(r"(Float|Long|float|long).*(but|expected)|expected.*(Float|Long|float|long)|must match the size",
                  "CrossEntropyLoss takes (B, 10) float logits and (B,) int64 labels; a loss such as MSELoss "
                  "wants targets shaped like the outputs, which class labels are not."),
                 (r"parameters|iterable|params", "the optimizer needs the network's parameters: net.parameters().")])
def collect_optimizer(inputs, make_criterion, make_optimizer, Net):
    data = {}
    with attempt("make_criterion", data):      # each function is judged on its own (partial credit)
        _collect_criterion(inputs, make_criterion, data)
    with attempt("make_optimizer", data):
        _collect_sgd(inputs, make_optimizer, Net, data)
    return data


register("train_optimizer_hidden", inputs=optimizer_inputs, seed=1)(collect_optimizer)


def _collect_criterion(inputs, make_criterion, data: dict) -> None:
    """criterion = make_criterion(); its loss (and gradient) on (6, 10) logits and (6,) labels."""
    import torch

    doing("calling make_criterion()")
    criterion = make_criterion()
    data["crit.kind"] = kind(criterion)
    data["crit.is_class"] = isinstance(criterion, type)
    if not isinstance(criterion, type) and callable(criterion):
        logits = torch.tensor(inputs["logits"], requires_grad=True)
        labels = torch.from_numpy(inputs["labels"].copy())
        doing("calling criterion(logits, labels) with logits (6, 10) float32 and labels (6,) int64, "
              "criterion = make_criterion()")
        out = criterion(logits, labels)
        record_number(out, "crit.out", data)
        if hasattr(out, "backward") and getattr(out, "requires_grad", False) and out.numel() == 1:
            out.backward()
            if logits.grad is not None:
                data["crit.grad"] = logits.grad.numpy().copy()


def _collect_sgd(inputs, make_optimizer, Net, data: dict) -> None:
    """optimizer = make_optimizer(net) on a seeded Net(): its param groups' settings and parameters."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(inputs["seed"]))
        net = Net()
    doing("calling make_optimizer(net) with net = Net()")
    optimizer = make_optimizer(net)
    data["opt.kind"] = kind(optimizer)
    data["opt.is_class"] = isinstance(optimizer, type)
    groups = getattr(optimizer, "param_groups", None)
    if isinstance(groups, list) and not isinstance(optimizer, type):
        data["opt.groups"] = len(groups)
        for key in ("lr", "momentum", "dampening", "weight_decay", "nesterov"):
            data[f"opt.{key}"] = np.array([float(g.get(key, np.nan)) for g in groups], dtype=np.float64)
        ids = [id(p) for g in groups for p in g["params"]]
        mine = {id(p) for p in net.parameters()}
        data["opt.missing"] = np.array([n for n, p in net.named_parameters() if id(p) not in set(ids)], dtype=str)
        data["opt.extra"] = len(set(ids) - mine)
        data["opt.duplicates"] = len(ids) - len(set(ids))


@judge("train_optimizer", "train_optimizer_hidden", part="make_criterion")
def judge_criterion(inputs, found) -> None:
    """make_criterion(): an instance whose loss on (6, 10) logits is their mean cross-entropy, a () tensor."""
    part_ran(found, "make_criterion")
    logits, labels = inputs["logits"], inputs["labels"]
    if found["crit.is_class"]:
        fail(f"make_criterion() returned the class {found['crit.kind'] if found['crit.kind'] != 'type' else ''} "
             f"itself, not a loss function.".replace("  ", " "),
             "create an instance of the loss class (call it with parentheses) and return that.")
    if "crit.out.kind" not in found:
        fail(f"make_criterion() returned {found['crit.kind']}, which cannot be called as criterion(logits, labels).",
             "return the loss object: nn.CrossEntropyLoss, created once.")
    out = Found(found, "crit.out", "criterion(logits, labels), the loss of 6 samples,")
    out.need_kind("Tensor", hint="the loss must stay a torch tensor, so that backward() can run through it; "
                  "don't convert it to a number inside the criterion." if out.kind in ("float", "int") else "")
    if found.get("crit.out.shape") is not None and np.size(found["crit.out.shape"]) != 0:
        fail(f"criterion(logits, labels) returned a tensor of shape {fmt_shape(found['crit.out.shape'])}; "
             f"expected one number, shape ().",
             "keep CrossEntropyLoss's default reduction, the mean over the batch (reduction='none' gives one "
             "loss per sample).")
    if not found.get("crit.out.requires_grad"):
        fail("criterion(logits, labels) returned a loss that is not connected to the logits (requires_grad is False).",
             "compute the loss with torch operations on the logits, without .item(), .detach() or NumPy.")
    value = float(found["crit.out.value"])
    want = cross_entropy(logits, labels)
    if not math.isclose(value, want, rel_tol=1e-4, abs_tol=1e-5):
        probs = np.exp(log_softmax(logits))
        if math.isclose(value, cross_entropy(probs, labels), rel_tol=1e-4, abs_tol=1e-5):
            fail(f"criterion(logits, labels) = {value:.4f}, expected {want:.4f}: it applies a softmax before the "
                 f"cross-entropy.",
                 "nn.CrossEntropyLoss takes raw logits and does the (log-)softmax itself; a softmax before it "
                 "squashes the scores twice, and the gradients almost vanish.")
        if math.isclose(value, want * len(labels), rel_tol=1e-4):
            fail(f"criterion(logits, labels) = {value:.4f} for 6 samples, expected {want:.4f}: that is the sum "
                 f"of the 6 losses, not their mean.",
                 "keep the default reduction, 'mean': then the step size does not depend on the batch size.")
        if math.isclose(value, float(-logits[np.arange(len(labels)), labels].mean()), rel_tol=1e-4, abs_tol=1e-5):
            fail(f"criterion(logits, labels) = {value:.4f}, expected {want:.4f}: that is NLLLoss on raw logits.",
                 "NLLLoss expects log-probabilities (after log_softmax); CrossEntropyLoss takes the raw logits "
                 "the network returns.")
        if value < 0:
            fail(f"criterion(logits, labels) = {value:.4f}, a negative loss; expected the mean cross-entropy "
                 f"{want:.4f}. A cross-entropy is never negative: it is -log of a probability, and a "
                 f"probability is at most 1.",
                 "look for a minus sign too many (or missing before a log), or for a loss applied to something "
                 "that is not a probability: nn.CrossEntropyLoss takes the raw logits.")
        fail(f"criterion(logits, labels) = {value:.4f}, expected the mean cross-entropy {want:.4f}.",
             "use nn.CrossEntropyLoss with its defaults: it takes (B, 10) logits and (B,) labels.")


@judge("train_optimizer", "train_optimizer_hidden", part="make_optimizer")
def judge_sgd(inputs, found) -> None:
    """make_optimizer(net): torch.optim.SGD over all of net's parameters, once, with the recipe's settings."""
    part_ran(found, "make_optimizer")
    if found["opt.is_class"]:
        fail("make_optimizer(net) returned the optimizer class itself, not an optimizer.",
             "create the optimizer: call the class with net's parameters, the learning rate and the momentum.")
    if "opt.groups" not in found:
        fail(f"make_optimizer(net) returned {found['opt.kind'] if found['opt.kind'] != 'NoneType' else 'None'}, "
             f"not a torch optimizer.", "return a torch.optim.SGD built on net.parameters().")
    if found["opt.kind"] != "SGD":
        fail(f"make_optimizer(net) returned a torch.optim.{found['opt.kind']}; this course trains with plain "
             f"SGD with momentum (torch.optim.SGD).",
             "other optimizers (Adam, RMSprop...) work too, but need other settings than the recipe's lr 0.001 "
             "and momentum 0.9; the course recipe is torch.optim.SGD.")
    missing = list(np.atleast_1d(found["opt.missing"]))
    if missing:
        fail(f"make_optimizer(net) does not update {len(missing)} of net's parameters: "
             f"{', '.join(str(m) for m in missing[:6])}{f' and {len(missing) - 6} more' if len(missing) > 6 else ''}.",
             "give the optimizer all of the network's parameters, net.parameters(), not only one layer's: "
             "the weights it does not get stay random forever.")
    if found["opt.extra"]:
        fail(f"make_optimizer(net) also updates {found['opt.extra']} tensors that are not net's parameters.",
             "build it on net.parameters() of the net you are given (not a new Net()).")
    lrs = np.atleast_1d(found["opt.lr"])
    if not np.allclose(lrs, LR, rtol=1e-9, atol=0):
        fail(f"make_optimizer(net) has learning rate {', '.join(f'{v:g}' for v in np.unique(lrs))}; the course "
             f"recipe uses lr={LR:g}.",
             f"1e-3 and 0.001 are the same number; {lrs.max():g} is {lrs.max() / LR:.3g} times larger, and with "
             f"momentum 0.9 it makes training with batches of 4 jumpy, or makes it diverge."
             if np.any(lrs > LR) else "pass lr=0.001 to the optimizer.")
    moms = np.atleast_1d(found["opt.momentum"])
    if not np.allclose(moms, MOMENTUM, rtol=1e-9, atol=0):
        fail(f"make_optimizer(net) has momentum {', '.join(f'{v:g}' for v in np.unique(moms))}; the course "
             f"recipe uses momentum={MOMENTUM:g}.",
             "SGD's momentum defaults to 0 (no momentum): pass momentum=0.9." if np.all(moms == 0)
             else "pass momentum=0.9 to the optimizer.")
    if np.any(np.atleast_1d(found["opt.nesterov"]) != 0):
        fail("make_optimizer(net) uses Nesterov momentum; the course recipe uses plain momentum.",
             "leave nesterov at its default, False.")
    if np.any(np.atleast_1d(found["opt.weight_decay"]) != 0) or np.any(np.atleast_1d(found["opt.dampening"]) != 0):
        fail("make_optimizer(net) sets weight_decay or dampening; the course recipe leaves both at 0.",
             "pass only the parameters, lr and momentum.")
    if found["opt.duplicates"]:
        fail("make_optimizer(net) was given some parameters twice.", "pass net.parameters() once.")
