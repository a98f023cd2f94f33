"""Lesson 4 (04_training): the public checks of make_criterion / make_optimizer, train_step, train_epoch.

The collectors run the student's functions on small models with *spies*: an SGD optimizer
that records when ``zero_grad`` and ``step`` are called (and what the gradients were at
each step), a CrossEntropyLoss that records what it was given, and hooks that record the
forward pass and the backward pass. The judges compare the weights after a few steps
with SGD-with-momentum computed by hand (NumPy) on a linear model, and use the recorded
order of the calls to say which step of the loop went wrong. The hidden checks
(``*_hidden``) run the same collectors on the course's ``Net``; their judges, in
``lessons_src/04_training/04_training_judges.py``, compare with ``mnist_cnn`` and the course recipe.
"""
from __future__ import annotations

import contextlib
import io
import math
import re

import numpy as np

from coursekit.checks import Found, doing, fail, fmt_shape, judge, kind, register, where_differs
from coursekit.checks.training import (Trace, linear_model, record_number, record_params, spy_criterion,
                                       spy_net, spy_optimizer)

LR, MOMENTUM = 0.001, 0.9      # the course recipe (course.yml, recipes.course); the hidden checks read it there
LOG_EVERY = 200                # train_epoch's default: one line every 200 mini-batches
STEPS = 3                      # train_step is called this many times in a row
STEP_NAMES = ["zero_grad", "forward", "loss", "backward", "step"]

# --- (a) make_criterion and make_optimizer -------------------------------------------

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
    import torch

    data = {}
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
    return data


register("train_optimizer_hidden", inputs=optimizer_inputs, seed=1)(collect_optimizer)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of raw logits (N, C) against labels (N,), in float64."""
    return float(-_log_softmax(logits)[np.arange(len(labels)), labels].mean())


@judge("train_optimizer", "train_optimizer_hidden")
def judge_optimizer(inputs, found):
    logits, labels = inputs["logits"], inputs["labels"]
    # the criterion
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
        probs = np.exp(_log_softmax(logits))
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
        fail(f"criterion(logits, labels) = {value:.4f}, expected the mean cross-entropy {want:.4f}.",
             "use nn.CrossEntropyLoss with its defaults: it takes (B, 10) logits and (B,) labels.")
    # the optimizer
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
             "1e-3 and 0.001 are the same number; 0.01 is ten times larger, and with momentum 0.9 it makes "
             "training with batches of 4 jumpy." if np.any(lrs > LR) else "pass lr=0.001 to the optimizer.")
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


# --- (b) train_step ------------------------------------------------------------------

def _batches(rng, sizes, into: dict) -> None:
    for k, b in enumerate(sizes):
        x = rng.random((b, 1, 28, 28), dtype=np.float32)
        x[x < 0.6] = 0                                     # mostly background, like a digit
        into[f"x{k}"] = x
        into[f"y{k}"] = rng.integers(0, 10, size=b).astype(np.int64)


def train_step_inputs(seed: int) -> dict:
    """A linear model (weights W, b) and 3 mini-batches of 4; lr and momentum of the spy optimizer."""
    rng = np.random.default_rng(seed + 41)
    inputs = {"model": "linear", "seed": seed, "lr": 0.05, "momentum": 0.9,
              "W": (rng.standard_normal((10, 784)) * 0.03).astype(np.float32),
              "b": (rng.standard_normal(10) * 0.1).astype(np.float32)}
    _batches(rng, [4] * STEPS, inputs)
    return inputs


def train_step_hidden_inputs(seed: int) -> dict:
    """The course's Net (initialised from ``seed``) and 3 mini-batches of 4; the course recipe's lr and momentum."""
    rng = np.random.default_rng(seed + 141)
    inputs = {"model": "net", "seed": seed, "lr": LR, "momentum": MOMENTUM}
    _batches(rng, [4] * STEPS, inputs)
    return inputs


def _model(inputs, Net):
    import torch

    if inputs["model"] == "linear":
        return linear_model(inputs["W"], inputs["b"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(inputs["seed"]))
        return Net()


@register("train_step", inputs=train_step_inputs,
          title="zero_grad, forward, loss, backward, step: the weights move like SGD with momentum",
          hints=[(r"does not require grad|does not have a grad_fn",
                  "backward() needs a loss computed with gradients on: don't compute it under torch.no_grad() "
                  "and don't convert it to a number (.item()) before calling backward()."),
                 (r"(Float|Long|float|long).*(but|expected)|expected.*(Float|Long|float|long)|for 'Long'",
                  "call criterion(outputs, labels): the network's (B, 10) float outputs first, then the (B,) "
                  "int64 labels."),
                 (r"backward through the graph a second time",
                  "call backward() once per mini-batch, on that batch's loss.")])
def collect_step(inputs, train_step, Net):
    import torch

    data = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(inputs["seed"]) + 7)
        trace = Trace()
        net = spy_net(_model(inputs, Net), trace)
        net.train()
        optimizer = spy_optimizer(net, trace, float(inputs["lr"]), float(inputs["momentum"]))
        criterion = spy_criterion(trace)
        record_params(net, "p0", data)
        for k in range(STEPS):
            x, y = torch.from_numpy(inputs[f"x{k}"].copy()), torch.from_numpy(inputs[f"y{k}"].copy())
            start_events, start_steps = len(trace.events), len(trace.step_grads)
            doing(f"calling train_step(net, optimizer, criterion, x, y) (call {k + 1} of {STEPS}, x "
                  f"{fmt_shape(x.shape)} float32, y {fmt_shape(y.shape)} int64)")
            out = train_step(net, optimizer, criterion, x, y)
            record_number(out, f"ret{k}", data)
            data[f"events{k}"] = np.array(trace.events[start_events:], dtype=str)
            record_params(net, f"p{k + 1}", data)
            steps = trace.step_grads[start_steps:]
            data[f"steps{k}"] = len(steps)
            if steps:
                for name, g in steps[0].items():
                    data[f"g{k}.{name}"] = np.zeros(0, np.float32) if g is None else g
                data[f"gnone{k}"] = np.array([n for n, g in steps[0].items() if g is None], dtype=str)
    data["probabilities"] = bool(any(trace.probabilities))
    data["criterion_calls"] = len(trace.losses)
    return data


register("train_step_hidden", inputs=train_step_hidden_inputs, seed=1)(collect_step)


def linear_reference(inputs) -> list:
    """SGD with momentum on the linear model, by hand (float64): per step the loss, gradients and weights.

    PyTorch's SGD: buf = grad on the first step, then buf = momentum * buf + grad; w -= lr * buf.
    """
    W, b = inputs["W"].astype(np.float64), inputs["b"].astype(np.float64)
    lr, mu = float(inputs["lr"]), float(inputs["momentum"])
    buf_w = buf_b = None
    out = []
    for k in range(STEPS):
        x, y = inputs[f"x{k}"].reshape(len(inputs[f"x{k}"]), -1).astype(np.float64), inputs[f"y{k}"]
        logits = x @ W.T + b                                  # (B, 10)
        logp = _log_softmax(logits)
        loss = float(-logp[np.arange(len(y)), y].mean())
        dlogits = np.exp(logp)
        dlogits[np.arange(len(y)), y] -= 1
        dlogits /= len(y)                                     # d loss / d logits, (B, 10)
        gw, gb = dlogits.T @ x, dlogits.sum(axis=0)
        buf_w = gw.copy() if buf_w is None else mu * buf_w + gw
        buf_b = gb.copy() if buf_b is None else mu * buf_b + gb
        W, b = W - lr * buf_w, b - lr * buf_b
        out.append({"loss": loss, "grads": {"1.weight": gw, "1.bias": gb}, "params": {"1.weight": W, "1.bias": b}})
    return out


def _judge_returns(found) -> None:
    for k in range(STEPS):
        r = Found(found, f"ret{k}", f"train_step(...) (call {k + 1})")
        if r.kind == "NoneType":
            fail("train_step(...) returned None; it should return the mini-batch's loss as a Python float.",
                 "end with a return statement: the loss tensor's .item() is its value as a float.")
        if r.kind == "Tensor":
            fail("train_step(...) returned a tensor; it should return the loss as a Python float.",
                 "a loss tensor keeps its whole computation graph alive (memory!) while you keep it in a list; "
                 ".item() gives its value as a float.")
        if r.kind not in ("float", "float64", "float32"):
            fail(f"train_step(...) returned {r.kind}; it should return the loss as a Python float.",
                 "return the loss's value, .item(), once per call.")


def _order_problem(events: list) -> str:
    """What is wrong with the order of one call's events, or ''."""
    if "backward" not in events:
        return "backward"
    if "step" not in events:
        return "step"
    first_step, last_backward = events.index("step"), len(events) - 1 - events[::-1].index("backward")
    if first_step < last_backward:
        return "step_before_backward"
    backward_at = events.index("backward")
    if any(e == "zero_grad" for e in events[backward_at:first_step]):
        return "zero_between"
    return ""


def diagnose_step(found, *, params_ok, grads_equal, check_losses) -> None:
    """Explain why train_step's weights differ from the expected ones (always fails).

    params_ok(k) -> (ok, detail): the weights after call k+1 match, else where they differ.
    grads_equal(k, kind) -> bool: the gradients the k-th step used were ``kind``:
        'fresh' (this batch's), 'accumulated' (sum of all batches so far), 'empty' (None or 0).
    check_losses(): raises CheckFailed when the returned losses are wrong.
    """
    events = [list(np.atleast_1d(found[f"events{k}"])) for k in range(STEPS)]
    all_events = [e for ev in events for e in ev]
    seen = ", ".join(e for e in events[0] if e in STEP_NAMES) or "nothing"
    order = f"The first call did: {seen}."
    if found["criterion_calls"] == 0 and "loss" not in all_events:
        fail("train_step never called the criterion it was given. " + order,
             "compute the loss with criterion(outputs, y), the criterion passed in.")
    if "forward" not in all_events:
        fail("train_step never ran the network (forward pass) on x. " + order,
             "outputs = net(x) gives the (B, 10) logits.")
    problems = [_order_problem(ev) for ev in events]
    if "backward" in problems:
        fail("train_step never ran the backward pass, so no gradients were computed. " + order,
             "backward() on the loss fills p.grad for every parameter p; step() then uses them.")
    if "step" in problems:
        moved = not params_ok(0)[0] and any(not np.array_equal(found[f"p1.{n[3:]}"], found[f"p0.{n[3:]}"])
                                           for n in found if n.startswith("p0."))
        if moved:
            fail("train_step changed the weights, but never called step() of the optimizer it was given. " + order,
                 "use the optimizer passed in as an argument: its step() applies the learning rate and the "
                 "momentum the caller chose. A new optimizer created inside train_step (or a hand-written update) "
                 "ignores them, and starts without momentum every time.")
        fail("train_step never called the optimizer's step(), so the weights never change. " + order,
             "after backward(), optimizer.step() moves every weight a little against its gradient.")
    if "step_before_backward" in problems:
        k = problems.index("step_before_backward")
        fail(f"in train_step the optimizer's step() comes before backward() (call {k + 1} did: "
             f"{', '.join(e for e in events[k] if e in STEP_NAMES)}). So each step uses the gradients of the "
             f"previous mini-batch (the first step has none at all).",
             "the order is: clear the gradients, forward, loss, backward, then step.")
    if "zero_between" in problems:
        fail("in train_step zero_grad() comes between backward() and step(): it wipes the gradients that "
             "backward() just computed, so step() has nothing to follow (only the momentum moves the weights). "
             + order,
             "clear the gradients before backward() (at the start of train_step, or at its very end), never "
             "between backward() and step().")
    if found.get("probabilities"):
        fail("the criterion was given probabilities (every row of its input sums to 1), not raw logits: "
             "there is a softmax before the loss.",
             "nn.CrossEntropyLoss applies log-softmax itself: give it the network's outputs unchanged. A softmax "
             "before it squashes the scores twice and the gradients become tiny.")
    cleared = "zero_grad" in all_events
    for k in range(1, STEPS):
        if found.get(f"steps{k}") and grads_equal(k, "accumulated") and not grads_equal(k, "fresh"):
            fail(f"at step {k + 1}, the gradients were the sum of the gradients of mini-batches 1 to {k + 1}: "
                 f"they accumulate, because nothing clears them"
                 + (" (zero_grad() was never called)." if not cleared else "."),
                 "PyTorch adds each backward() into p.grad; call zero_grad() once per mini-batch, before "
                 "backward() (or after step()).")
    if not cleared and not all(params_ok(k)[0] for k in range(STEPS)):
        fail("train_step never clears the gradients (no zero_grad()), so they add up from one mini-batch to "
             "the next.", "call zero_grad() of the optimizer (or of the net) once per mini-batch.")
    for k in range(STEPS):
        if found.get(f"steps{k}", 0) > 1:
            fail(f"train_step called step() {found[f'steps{k}']} times for one mini-batch.",
                 "one mini-batch, one step.")
    for k in range(STEPS):
        if found.get(f"steps{k}") and grads_equal(k, "empty"):
            fail(f"at step {k + 1} the gradients were empty when step() ran.",
                 "the order is: clear the gradients, forward, loss, backward, then step.")
    check_losses()
    for k in range(STEPS):
        ok, detail = params_ok(k)
        if not ok:
            fail(f"after {k + 1} call{'s' if k else ''} of train_step the weights differ from one step of SGD "
                 f"with momentum: {detail}.",
                 "train_step should do exactly: zero_grad, outputs = net(x), loss = criterion(outputs, y), "
                 "backward, step; using the net, optimizer and criterion it is given.")
    fail("train_step does not train like SGD with momentum.")


def _returned_losses_problem(found, losses) -> None:
    for k in range(STEPS):
        got, want = float(found[f"ret{k}.value"]), losses[k]
        if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-5):
            if math.isclose(got, want * 4, rel_tol=1e-4):
                hint = "return the mean loss the criterion computed, not multiplied by the batch size."
            else:
                hint = ("return the loss of this mini-batch, computed before the step (the value of the loss "
                        "that backward() ran through).")
            fail(f"train_step returned {got:.5f} for mini-batch {k + 1}, expected its loss {want:.5f}.", hint)


@judge("train_step")
def judge_step(inputs, found):
    _judge_returns(found)
    ref = linear_reference(inputs)
    names = ["1.weight", "1.bias"]

    def params_ok(k):
        for n in names:
            got, want = found[f"p{k + 1}.{n}"], ref[k]["params"][n]
            if got.shape != want.shape or not np.allclose(got, want, atol=2e-6, rtol=1e-4):
                return False, f"{n} {where_differs(got, want, atol=2e-6)}"
        return True, ""

    def grads_equal(k, what):
        for n in names:
            g = found.get(f"g{k}.{n}")
            if g is None:
                return False
            if what == "empty":
                if g.size and np.any(g != 0):
                    return False
                continue
            want = ref[k]["grads"][n] if what == "fresh" else sum(ref[j]["grads"][n] for j in range(k + 1))
            if g.shape != want.shape or not np.allclose(g, want, atol=2e-6, rtol=1e-4):
                return False
        return True

    def check_losses():
        _returned_losses_problem(found, [r["loss"] for r in ref])

    if all(params_ok(k)[0] for k in range(STEPS)):
        check_losses()
        return
    diagnose_step(found, params_ok=params_ok, grads_equal=grads_equal, check_losses=check_losses)


@judge("train_step_hidden")
def judge_step_returns(inputs, found):
    _judge_returns(found)


# --- (c) train_epoch -----------------------------------------------------------------

def _easy_data(rng, n: int):
    """n images whose class (0..9) is a bright 7 x 7 block at a class-specific place, plus noise."""
    y = (np.arange(n) * 7 + rng.integers(0, 10)) % 10
    x = rng.random((n, 1, 28, 28), dtype=np.float32) * 0.2
    for i, c in enumerate(y):
        r, col = 7 * (c // 4), 7 * (c % 4)
        x[i, 0, r:r + 7, col:col + 7] += 0.8
    return x, y.astype(np.int64)


def train_epoch_inputs(seed: int) -> dict:
    """23 mini-batches (45 samples, batch size 2: the last has 1), a log every 5, epoch 7."""
    rng = np.random.default_rng(seed + 42)
    x, y = _easy_data(rng, 45)
    return {"x": x, "y": y, "batch_size": 2, "log_every": 5, "epoch": 7, "lr": 0.02, "momentum": 0.9,
            "W": np.zeros((10, 784), np.float32), "b": np.zeros(10, np.float32)}


def train_epoch_hidden_inputs(seed: int) -> dict:
    """425 mini-batches of 2 and train_epoch's defaults (epoch 1, a log every 200 batches)."""
    rng = np.random.default_rng(seed + 142)
    x, y = _easy_data(rng, 850)
    return {"x": x, "y": y, "batch_size": 2, "log_every": None, "epoch": None, "lr": 0.02, "momentum": 0.9,
            "W": np.zeros((10, 784), np.float32), "b": np.zeros(10, np.float32)}


@register("train_epoch", inputs=train_epoch_inputs,
          title="one pass over the loader, a log line and a mean loss every log_every mini-batches")
def collect_epoch(inputs, train_epoch):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    data = {}
    trace = Trace()
    net = spy_net(linear_model(inputs["W"], inputs["b"]), trace)
    net.eval()                                   # train_epoch should switch it to training mode
    optimizer = spy_optimizer(net, trace, float(inputs["lr"]), float(inputs["momentum"]))
    criterion = spy_criterion(trace)
    x, y = torch.from_numpy(inputs["x"].copy()), torch.from_numpy(inputs["y"].copy())
    loader = DataLoader(TensorDataset(x, y), batch_size=int(inputs["batch_size"]), shuffle=False)
    kwargs, shown = {}, []
    if inputs["epoch"] is not None:
        kwargs["epoch"] = int(inputs["epoch"])
        shown.append(f"epoch={inputs['epoch']}")
    if inputs["log_every"] is not None:
        kwargs["log_every"] = int(inputs["log_every"])
        shown.append(f"log_every={inputs['log_every']}")
    printed = io.StringIO()
    doing(f"calling train_epoch(net, loader, optimizer, criterion{''.join(', ' + s for s in shown)}) on a loader "
          f"of {len(loader)} mini-batches")
    with contextlib.redirect_stdout(printed):
        out = train_epoch(net, loader, optimizer, criterion, **kwargs)
    data["out.kind"] = kind(out)
    if isinstance(out, (list, tuple, np.ndarray)):
        values, kinds = [], []
        for v in list(out):
            kinds.append(kind(v))
            try:
                values.append(float(v))
            except (TypeError, ValueError):
                values.append(np.nan)
        data["out.values"] = np.array(values, dtype=np.float64)
        data["out.kinds"] = np.array(kinds, dtype=str)
    data["printed"] = printed.getvalue()[:20000]
    data["losses"] = np.array(trace.losses, dtype=np.float64)
    data["steps"] = len(trace.step_grads)
    data["forward_training"] = np.array(trace.forward_training, dtype=bool)
    data["batches"] = len(loader)
    return data


register("train_epoch_hidden", inputs=train_epoch_hidden_inputs, seed=1)(collect_epoch)

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _log_line_matches(line: str, epoch: int, batch: int, value: float) -> bool:
    numbers = NUMBER.findall(line)
    ints = {int(t) for t in numbers if re.fullmatch(r"-?\d+", t)}
    floats = [float(t) for t in numbers]
    return epoch in ints and batch in ints and any(abs(f - value) <= 5.1e-4 + 1e-3 * abs(value) for f in floats)


@judge("train_epoch", "train_epoch_hidden")
def judge_epoch(inputs, found):
    n_batches = int(found["batches"])
    every = int(inputs["log_every"] or LOG_EVERY)
    epoch = int(inputs["epoch"] or 1)
    call = "train_epoch(...)"
    if found["out.kind"] == "NoneType":
        fail(f"{call} returned None; it should return the list of the mean losses it printed.",
             "collect each printed mean loss in a list and return the list at the end.")
    if "out.values" not in found:
        fail(f"{call} returned {found['out.kind']}; it should return a list of floats, the mean losses it printed.")
    losses = np.atleast_1d(found["losses"]).astype(np.float64)
    if len(losses) != n_batches:
        fail(f"{call} computed the loss {len(losses)} time{'s' if len(losses) != 1 else ''} on a loader of "
             f"{n_batches} mini-batches; expected once "
             f"per mini-batch.",
             "loop over the loader (for x, y in loader) and call train_step once on each (x, y).")
    if found["steps"] != n_batches:
        fail(f"{call} made {found['steps']} optimizer steps for {n_batches} mini-batches; expected one step per "
             f"mini-batch.", "call train_step once per mini-batch: it does the step.")
    training = np.atleast_1d(found["forward_training"])
    if len(training) and not training.all():
        fail(f"{call} trained the network in evaluation mode (net.training was False during the forward passes).",
             "call net.train() at the start of train_epoch: evaluation (lesson 5) switches the network to eval "
             "mode, and some layers (dropout, batch norm) behave differently in each mode.")
    values = np.atleast_1d(found["out.values"]).astype(np.float64)
    kinds = [str(k) for k in np.atleast_1d(found.get("out.kinds", []))]
    if any(k == "Tensor" for k in kinds):
        fail(f"{call} returned a list of tensors; it should return plain floats.",
             "train_step returns a float (.item()); add those up, not the loss tensors.")
    k_logs = n_batches // every
    want = np.array([losses[j * every:(j + 1) * every].mean() for j in range(k_logs)])
    where = ", ".join(str(every * (j + 1)) for j in range(min(k_logs, 4))) + (", ..." if k_logs > 4 else "")
    if len(values) != k_logs:
        if inputs["log_every"] is None and len(values) and len(values) != n_batches:
            fail(f"called without log_every, {call} logged {len(values)} times on {n_batches} mini-batches; with "
                 f"the default log_every={LOG_EVERY} it should log {k_logs} times (after mini-batches {where}).",
                 f"keep the default from the exercise's first line, log_every={LOG_EVERY}.")
        if len(values) == 0:
            fail(f"{call} logged nothing on {n_batches} mini-batches; with log_every={every} it should log "
                 f"{k_logs} times (after mini-batches {where}).",
                 "use the log_every argument, not a fixed number." if every != LOG_EVERY else
                 "every log_every mini-batches, print and remember the mean loss of those mini-batches.")
        if len(values) == n_batches:
            fail(f"{call} returned {n_batches} values, one per mini-batch; expected {k_logs}: the mean loss of "
                 f"each group of {every} mini-batches (after mini-batches {where}).",
                 "add the losses up in a running total, and every log_every mini-batches append total / log_every.")
        if len(values) == k_logs + 1 and math.isclose(values[0], losses[0] / every, rel_tol=1e-6):
            fail(f"{call} logged after mini-batch 0 (right at the start), then every {every}: expected {k_logs} "
                 f"logs, after mini-batches {where}.",
                 "count the mini-batches from 1 (enumerate(loader, start=1)), or log when (i + 1) is a multiple "
                 "of log_every.")
        if len(values) == k_logs + 1 and n_batches % every and math.isclose(
                values[-1], losses[k_logs * every:].mean(), rel_tol=1e-6):
            fail(f"{call} also logged the last {n_batches % every} mini-batches as a group of their own; expected "
                 f"{k_logs} logs, after mini-batches {where}.",
                 "log only every log_every mini-batches; the leftover batches at the end are trained, not logged.")
        fail(f"{call} returned {len(values)} logged losses for {n_batches} mini-batches with log_every={every}; "
             f"expected {k_logs} (after mini-batches {where}).",
             "use the log_every argument, not a fixed number." if every != LOG_EVERY
             else "log when the mini-batch count (from 1) is a multiple of log_every.")
    if not np.allclose(values, want, rtol=1e-5, atol=1e-7):
        cum = np.array([losses[:(j + 1) * every].sum() / every for j in range(k_logs)])
        running_mean = np.array([losses[:(j + 1) * every].mean() for j in range(k_logs)])
        last = np.array([losses[(j + 1) * every - 1] for j in range(k_logs)])
        sums = want * every
        shifted = np.array([losses[max(0, j * every - 1):(j + 1) * every - 1].sum() / every for j in range(k_logs)])
        j = int(np.argmax(~np.isclose(values, want, rtol=1e-5, atol=1e-7)))
        head = (f"{call} logged {values[j]:.4f} after mini-batch {every * (j + 1)}, expected {want[j]:.4f}, the "
                f"mean loss of mini-batches {every * j + 1} to {every * (j + 1)}.")
        if np.allclose(values, cum, rtol=1e-5) and k_logs > 1:
            fail(head + " The running total is never reset, so each log includes all the earlier mini-batches.",
                 "after printing, set the running total back to 0.")
        if np.allclose(values, running_mean, rtol=1e-5) and k_logs > 1:
            fail(head + " That is the mean since the start of the epoch.",
                 "average only the last log_every mini-batches: reset the running total after each log.")
        if np.allclose(values, sums, rtol=1e-5):
            fail(head + f" That is the sum of those {every} losses.", "divide the running total by log_every.")
        if np.allclose(values, last, rtol=1e-5):
            fail(head + " That is only the loss of the last mini-batch.",
                 "add every mini-batch's loss to a running total and log its mean.")
        if np.allclose(values, shifted, rtol=1e-5):
            fail(head + " The groups are shifted by one mini-batch.",
                 "add the loss to the running total before checking whether it is time to log.")
        fail(head, "add each mini-batch's loss (train_step's return value) to a running total; every log_every "
                   "mini-batches, log total / log_every and reset the total to 0.")
    lines = [ln for ln in str(found["printed"]).splitlines() if ln.strip()]
    for j in range(k_logs):
        batch = every * (j + 1)
        if not any(_log_line_matches(ln, epoch, batch, want[j]) for ln in lines):
            example = f"[epoch {epoch}, batch {batch:5d}] loss {want[j]:.3f}"
            got = "nothing" if not lines else "\n    " + "\n    ".join(lines[:3]) + ("\n    ..." if len(lines) > 3 else "")
            fail(f"{call} should print one line per log, with the epoch ({epoch}), the mini-batch count ({batch}) and "
                 f"the mean loss ({want[j]:.3f}), such as\n    {example}\nIt printed: {got}",
                 "print inside the loop, when you log; use the epoch argument and the batch count from 1.")
    if k_logs >= 2 and not want[-1] < want[0]:
        fail(f"on an easy problem (a bright block at a different place for each class), the mean loss did not go "
             f"down during the epoch: {want[0]:.3f} at first, {want[-1]:.3f} at the end.",
             "train_epoch's bookkeeping is right, so look at train_step: does its check pass?")
