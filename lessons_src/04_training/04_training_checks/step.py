"""Lesson 4 (b): train_step, judged by the order of its calls (zero_grad, forward, loss, backward,
step) and by the weights after STEPS steps against SGD with momentum computed by hand."""
from __future__ import annotations

import math

import numpy as np

from coursekit.checks import Found, doing, fail, fmt_shape, judge, register, where_differs
from coursekit.checks.training import (Trace, linear_model, record_number, record_params, spy_criterion,
                                       spy_net, spy_optimizer)
from .common import LR, MOMENTUM, STEP_NAMES, STEPS, log_softmax


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
        logp = log_softmax(logits)
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
    judge_steps(found, ref, ["1.weight", "1.bias"],
                params_tol=lambda n, want: (2e-6, 1e-4), grads_tol=lambda want: (2e-6, 1e-4),
                check_losses=lambda: _returned_losses_problem(found, [r["loss"] for r in ref]))


def judge_steps(found, ref: list, names: list, *, params_tol, grads_tol, check_losses) -> None:
    """Judge the recorded steps of train_step against a reference run (the public judge on a
    linear model, the hidden one on the course's Net).

    ref: per step, {"params": {name: after the step}, "grads": {name: the step's gradient}, "loss"}.
    params_tol(name, want) -> (atol, rtol) for the weights after a step; grads_tol(want) -> (atol,
    rtol) for a gradient; check_losses(): raises CheckFailed when the returned losses are wrong.
    Right weights after every step: only the losses are checked; else ``diagnose_step`` says why.
    """
    def params_ok(k):
        for n in names:
            got, want = np.asarray(found[f"p{k + 1}.{n}"]), ref[k]["params"][n]
            atol, rtol = params_tol(n, want)
            if got.shape != want.shape or not np.allclose(got, want, atol=atol, rtol=rtol):
                return False, f"{n} {where_differs(got, want, atol=atol)}"
        return True, ""

    def grads_equal(k, what):
        for n in names:
            g = found.get(f"g{k}.{n}")
            if g is None:
                return False
            g = np.asarray(g)
            if what == "empty":
                if g.size and np.any(g != 0):
                    return False
                continue
            want = ref[k]["grads"][n] if what == "fresh" else sum(ref[j]["grads"][n] for j in range(k + 1))
            atol, rtol = grads_tol(want)
            if g.shape != want.shape or not np.allclose(g, want, atol=atol, rtol=rtol):
                return False
        return True

    if all(params_ok(k)[0] for k in range(STEPS)):
        check_losses()
        return
    diagnose_step(found, params_ok=params_ok, grads_equal=grads_equal, check_losses=check_losses)


@judge("train_step_hidden")
def judge_step_returns(inputs, found):
    _judge_returns(found)
