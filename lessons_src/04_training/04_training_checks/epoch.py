"""Lesson 4 (c): train_epoch, judged on easy data: every batch once, the log lines every LOG_EVERY
mini-batches, the loss going down."""
from __future__ import annotations

import contextlib
import io
import math
import re

import numpy as np

from coursekit.checks import doing, fail, judge, kind, register
from coursekit.checks.stand_in import standing_in
from coursekit.checks.training import Trace, linear_model, spy_criterion, spy_net, spy_optimizer
from .common import LOG_EVERY


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
    with contextlib.redirect_stdout(printed), _standing_in_for_train_step(train_epoch, list(loader)) as calls:
        out = train_epoch(net, loader, optimizer, criterion, **kwargs)
    if calls:                                    # it used the notebook's train_step: judged on those calls
        data["step_calls.batch"] = np.array([c[0] for c in calls], dtype=np.int64)
        data["step_calls.training"] = np.array([c[1] for c in calls], dtype=bool)
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


@contextlib.contextmanager
def _standing_in_for_train_step(train_epoch, batches):
    """While train_epoch runs, the notebook's train_step (exercise b) is replaced by a stand-in that
    returns the mini-batch's loss as a float and takes no step: train_epoch is judged on its own
    bookkeeping (one call per mini-batch, in order, the logs of the returned losses), and a
    train_step mistake costs train_step's check only. Yields the calls: (index of the loader's
    mini-batch it got, or -1; net.training). A train_epoch that never calls train_step is judged
    on what it does itself (the spies)."""
    import torch

    calls: list = []

    def batch_index(x) -> int:
        order = [len(calls)] + list(range(len(batches)))          # the expected one first
        for i in (i for i in order if i < len(batches)):
            bx = batches[i][0]
            if isinstance(x, torch.Tensor) and x.shape == bx.shape and torch.equal(x, bx):
                return i
        return -1

    def train_step(net, optimizer, criterion, x, y):
        calls.append((batch_index(x), bool(getattr(net, "training", False))))
        with torch.no_grad():
            return float(criterion(net(x), y))

    with standing_in(train_epoch, "train_step", train_step):
        yield calls


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
    stood_in = "step_calls.batch" in found
    if stood_in:
        _judge_step_calls(call, found, losses, n_batches)
    else:
        _judge_loop(call, found, losses, n_batches)
    values = np.atleast_1d(found["out.values"]).astype(np.float64)
    kinds = [str(k) for k in np.atleast_1d(found.get("out.kinds", []))]
    if any(k == "Tensor" for k in kinds):
        fail(f"{call} returned a list of tensors; it should return plain floats.",
             "train_step returns a float (.item()); add those up, not the loss tensors.")
    k_logs = n_batches // every
    want = np.array([losses[j * every:(j + 1) * every].mean() for j in range(k_logs)])
    where = ", ".join(str(every * (j + 1)) for j in range(min(k_logs, 4))) + (", ..." if k_logs > 4 else "")
    if len(values) != k_logs:
        _judge_log_count(call, inputs, values, losses, every=every, where=where)
    if not np.allclose(values, want, rtol=1e-5, atol=1e-7):
        _judge_log_values(call, values, want, losses, every=every)
    _judge_printed(call, found, want, epoch=epoch, every=every)
    if k_logs >= 2 and not want[-1] < want[0] and not stood_in:   # (with train_step, learning is its job)
        fail(f"on an easy problem (a bright block at a different place for each class), the mean loss did not go "
             f"down during the epoch: {want[0]:.3f} at first, {want[-1]:.3f} at the end.",
             "train_epoch's bookkeeping is right, so look at train_step: does its check pass?")


def _judge_step_calls(call: str, found, losses: np.ndarray, n_batches: int) -> None:
    """train_epoch used the notebook's train_step (replaced by the check's stand-in): once per
    mini-batch, each mini-batch in the loader's order, in training mode, and no loss or step of
    its own besides. losses: (calls,) float64, the losses the stand-in returned."""
    batch = np.atleast_1d(found["step_calls.batch"])
    if len(batch) != n_batches:
        fail(f"{call} called train_step {len(batch)} time{'s' if len(batch) != 1 else ''} on a loader of "
             f"{n_batches} mini-batches; expected once per mini-batch.",
             "loop over the loader (for x, y in loader) and call train_step once on each (x, y).")
    if not np.array_equal(batch, np.arange(n_batches)):
        j = int(np.argmax(batch != np.arange(n_batches)))
        got = "something that is not one of the loader's mini-batches" if batch[j] < 0 else f"mini-batch {batch[j] + 1}"
        fail(f"{call}'s call {j + 1} of train_step got {got}, not mini-batch {j + 1} of the loader.",
             "pass each (x, y) that the loop gets from the loader to train_step, as it is.")
    if not np.atleast_1d(found["step_calls.training"]).all():
        fail(f"{call} trained the network in evaluation mode (net.training was False when train_step was called).",
             "call net.train() at the start of train_epoch: evaluation (lesson 5) switches the network to eval "
             "mode, and some layers (dropout, batch norm) behave differently in each mode.")
    if found["steps"] or len(losses) != n_batches:
        fail(f"{call} calls train_step, and also {'steps the optimizer' if found['steps'] else 'computes the loss'} "
             f"itself: train_step does the whole step.", "in the loop, call train_step and add up what it returns.")


def _judge_loop(call: str, found, losses: np.ndarray, n_batches: int) -> None:
    """One loss, one step per mini-batch, in training mode. losses: (calls,) float64."""
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


def _judge_log_count(call: str, inputs, values: np.ndarray, losses: np.ndarray, *, every: int, where: str) -> None:
    """The number of logged losses is not n_batches // every: name the slip. values: (logs,) float64."""
    n_batches = len(losses)
    k_logs = n_batches // every
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


def _judge_log_values(call: str, values: np.ndarray, want: np.ndarray, losses: np.ndarray, *, every: int) -> None:
    """The logged losses differ from the mean of each group of ``every`` losses: name the slip.
    values, want: (k_logs,) float64; losses: (n_batches,) float64."""
    k_logs = len(want)
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


def _judge_printed(call: str, found, want: np.ndarray, *, epoch: int, every: int) -> None:
    """One printed line per log with the epoch, the mini-batch count and the mean loss. want: (k_logs,)."""
    lines = [ln for ln in str(found["printed"]).splitlines() if ln.strip()]
    for j in range(len(want)):
        batch = every * (j + 1)
        if not any(_log_line_matches(ln, epoch, batch, want[j]) for ln in lines):
            example = f"[epoch {epoch}, batch {batch:5d}] loss {want[j]:.3f}"
            got = "nothing" if not lines else "\n    " + "\n    ".join(lines[:3]) + ("\n    ..." if len(lines) > 3 else "")
            fail(f"{call} should print one line per log, with the epoch ({epoch}), the mini-batch count ({batch}) and "
                 f"the mean loss ({want[j]:.3f}), such as\n    {example}\nIt printed: {got}",
                 "print inside the loop, when you log; use the epoch argument and the batch count from 1.")
