"""The course's training recipes (see ``recipes`` in course.yml).

Two recipes train the same ``Net``; they differ only in how they feed it:

``course`` (schedule ``constant``): what the lessons teach, the classic PyTorch
    tutorial. A ``TensorDataset`` and a shuffling ``DataLoader`` of 4 images,
    ``nn.CrossEntropyLoss``, ``SGD(lr=0.001, momentum=0.9)``, 10 epochs, the
    running loss printed every 200 mini-batches.
``fast`` (schedule ``onecycle``): the command line's default. Standardized
    inputs, the whole training set held as one tensor on the device and sliced by
    a fresh random permutation each epoch (no DataLoader), batches of 128, SGD with
    Nesterov momentum and weight decay, a one-cycle learning-rate schedule, and
    channels-last memory layout. 3 epochs: ~99.1% test accuracy in ~4-5 s of
    training on 2 idle CPU cores (benchmarks/train.py measures it).

Typical use::

    set_seed(0)                                   # before building the model: seeds its init too
    model = Net()
    x, y = to_tensors(images, labels, standardize=recipe.standardize)
    result = train(model, recipe, x, y, seed=0)
"""
from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from coursekit.config import Recipe

# Mean and standard deviation of pixels/255 over the 60,000 training images
# (all 47,040,000 pixels). Measured on the real MNIST with
#   x = load_mnist("train")[0] / 255.0; x.mean(), x.std()
# -> 0.13066047..., 0.30810780...  (the same figures torchvision's examples use).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

# One-cycle shape for the ``onecycle`` schedule (course.yml gives the peak lr). Tuned with
# the fast recipe: 3 epochs of 128 at peak 0.08 gave 99.07-99.25% on seeds 0-7.
ONECYCLE_PCT_START = 0.25     # fraction of the steps spent warming up to the peak lr
ONECYCLE_DIV_FACTOR = 10.0    # start lr = peak / 10
ONECYCLE_FINAL_DIV = 100.0    # final lr = start / 100 (= peak / 1000)

DRY_RUN_BATCHES = 3           # mini-batches trained by ``train(..., dry_run=True)``


def to_tensors(images, labels, standardize: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Turn MNIST arrays into the tensors the model and the loss take.

    images: (N, 28, 28) uint8 array (or tensor) of pixels 0..255
    labels: (N,) integer array (or tensor) of digits 0..9
    standardize: False: x = pixels / 255, in [0, 1].
                 True: then x = (x - MNIST_MEAN) / MNIST_STD (mean ~0, std ~1 over the training set).
    returns: x (N, 1, 28, 28) float32, y (N,) int64
    """
    x = torch.as_tensor(np.asarray(images)).to(torch.float32)  # (N, 28, 28) 0..255
    if x.dim() != 3:
        raise ValueError(f"images must have shape (N, 28, 28), not {tuple(x.shape)}")
    x = x.unsqueeze(1).div_(255.0)                              # (N, 1, 28, 28) in [0, 1]
    if standardize:
        x = x.sub_(MNIST_MEAN).div_(MNIST_STD)                  # (N, 1, 28, 28) mean ~0, std ~1
    y = torch.as_tensor(np.asarray(labels)).to(torch.int64)     # (N,)
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), not {tuple(y.shape)}")
    return x, y


def pick_device(name: str = "auto") -> torch.device:
    """The device to train on.

    name: "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
    returns: a torch.device. Raises RuntimeError for CUDA on a machine without it,
    ValueError for any other name.
    """
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {name!r} requested but CUDA is not available "
                f"(torch {torch.__version__} sees no GPU); use --device cpu or auto")
        return torch.device(name)
    raise ValueError(f"unknown device {name!r}; expected 'auto', 'cpu' or 'cuda'")


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every GPU) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    """What ``train`` returns.

    history: (global mini-batch step, mean loss over the last ``log_every`` batches),
             one entry per printed log line
    epoch_losses: mean training loss of each epoch, in order
    seconds: wall time of the training loop (setup and ``on_epoch_end`` excluded)
    steps: optimizer steps taken
    """
    history: List[Tuple[int, float]] = field(default_factory=list)
    epoch_losses: List[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def _log_line(epoch: int, batch: int, loss: float) -> str:
    """``[epoch 1, batch   200] loss 2.301``, the classic tutorial's running-loss line."""
    return f"[epoch {epoch}, batch {batch:5d}] loss {loss:.3f}"


def _course_batches(x, y, batch_size, generator):
    """Mini-batches of the course recipe: a shuffling DataLoader over a TensorDataset.

    x: (N, 1, 28, 28) float32 on the CPU; y: (N,) int64 on the CPU
    yields: (B, 1, 28, 28) float32, (B,) int64, B = batch_size (the last one may be smaller)
    """
    return iter(DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=generator))


def _fast_batches(x, y, batch_size, generator):
    """Mini-batches of the fast recipe: slices of one in-memory tensor, in a fresh random order.

    x: (N, 1, 28, 28) float32 on the device; y: (N,) int64 on the device
    yields: (B, 1, 28, 28) float32, (B,) int64, B = batch_size (the last one may be smaller)
    """
    n = x.shape[0]
    order = torch.randperm(n, generator=generator).to(x.device)   # (N,) int64, a shuffle of 0..N-1

    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]                     # (B,)
        yield x.index_select(0, idx), y.index_select(0, idx)      # (B, 1, 28, 28), (B,)


def _one_cycle(optimizer, peak_lr: float, total_steps: int):
    """OneCycleLR over ``total_steps`` optimizer steps, peaking at ``peak_lr``; momentum left constant."""
    pct_start = ONECYCLE_PCT_START
    if pct_start * total_steps == 1:  # OneCycleLR divides by zero there (e.g. 4 steps at 0.25)
        pct_start = 0.5 / total_steps  # a tiny run: no warm-up
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peak_lr, total_steps=total_steps, pct_start=pct_start,
        div_factor=ONECYCLE_DIV_FACTOR, final_div_factor=ONECYCLE_FINAL_DIV, cycle_momentum=False)


def train(
    model: nn.Module,
    recipe: Recipe,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    device: Union[str, torch.device] = "cpu",
    seed: Optional[int] = None,
    dry_run: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_epoch_end: Optional[Callable[[int, nn.Module], None]] = None,
) -> TrainResult:
    """Train ``model`` in place with ``recipe``.

    model: e.g. ``Net()``; moved to ``device`` and put in train mode (the fast recipe
        trains it in channels-last memory layout and restores the usual layout at the end)
    recipe: ``load().recipe("course" | "fast")``. ``schedule: constant`` trains the
        course way (DataLoader, constant lr); ``onecycle`` the fast way (in-memory
        slices, Nesterov SGD, one-cycle lr peaking at ``recipe.lr``).
    x: (N, 1, 28, 28) float32 images, from ``to_tensors(..., standardize=recipe.standardize)``
    y: (N,) int64 labels 0..9
    device: where to train ("cpu", "cuda", or a torch.device)
    seed: seeds the shuffling (a private torch.Generator) and, via ``set_seed``, the
        global generators (for any randomness inside the model, e.g. dropout), so the
        same seed and the same initial model give identical losses on one machine. None: the shuffles
        are drawn from torch's global generator (seed it with ``set_seed``).
        The model's initial weights are the caller's: call ``set_seed`` before building it.
    dry_run: train only ``DRY_RUN_BATCHES`` mini-batches of one epoch (smoke tests)
    progress: show a tqdm bar over each epoch's mini-batches
    log: called with each running-loss line, every ``recipe.log_every`` mini-batches
        (the bar is cleared around it, so ``print`` is safe)
    on_epoch_end: called as ``on_epoch_end(epoch, model)`` after each epoch (epoch
        counted from 1); its time is not counted in ``seconds``; the model is put
        back in train mode afterwards
    returns: TrainResult(history, epoch_losses, seconds, steps)
    """
    device = torch.device(device)
    _check_tensors(x, y)
    fast = recipe.schedule == "onecycle"

    generator = torch.Generator()  # on the CPU: drives every shuffle
    generator.manual_seed(seed if seed is not None else int(torch.randint(2**62, ())))
    if seed is not None:
        set_seed(seed)

    x, y, make_batches = _place(model, x, y, device, fast)
    n_batches = math.ceil(x.shape[0] / recipe.batch_size)
    epochs = 1 if dry_run else recipe.epochs
    batches_per_epoch = min(n_batches, DRY_RUN_BATCHES) if dry_run else n_batches
    criterion, optimizer, scheduler = _optimization(model, recipe, fast, epochs * batches_per_epoch)

    result = TrainResult()
    clock = time.perf_counter()
    for epoch in range(1, epochs + 1):
        bar = tqdm(total=batches_per_epoch, desc=f"epoch {epoch}/{epochs}", unit="batch",
                   disable=not progress, leave=False, dynamic_ncols=True)
        batches = itertools.islice(make_batches(x, y, recipe.batch_size, generator), batches_per_epoch)
        result.epoch_losses.append(_train_epoch(model, batches, device, criterion, optimizer, scheduler,
                                                epoch=epoch, log_every=recipe.log_every, result=result,
                                                bar=bar, log=log))
        bar.close()
        if on_epoch_end is not None:
            paused = time.perf_counter()
            on_epoch_end(epoch, model)
            model.train()
            clock += time.perf_counter() - paused
    result.seconds = time.perf_counter() - clock
    if fast:
        model.to(memory_format=torch.contiguous_format)  # back to the usual layout
    return result


def _check_tensors(x: torch.Tensor, y: torch.Tensor) -> None:
    """ValueError unless x is (N, 1, 28, 28)-like float32 and y is (N,)."""
    if x.dim() != 4 or x.dtype != torch.float32:
        raise ValueError(f"x must be (N, 1, 28, 28) float32 (use to_tensors), not {tuple(x.shape)} {x.dtype}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},), not {tuple(y.shape)}")


def _place(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, fast: bool):
    """Move the model (train mode) and the data where the recipe trains; (x, y, make_batches).

    fast: the whole data on the device in channels-last layout, batched by slicing
    (``_fast_batches``); otherwise on the CPU, batched by a DataLoader (``_course_batches``).
    """
    model.to(device)
    model.train()
    if fast:
        # Held whole on the device, in channels-last layout (pixels of a row side by side
        # across channels): the CPU convolutions and poolings run faster that way.
        model.to(memory_format=torch.channels_last)
        x = x.to(device).contiguous(memory_format=torch.channels_last)  # (N, 1, 28, 28)
        return x, y.to(device), _fast_batches                           # y: (N,)
    return x.cpu(), y.cpu(), _course_batches                            # the DataLoader batches on the CPU


def _optimization(model: nn.Module, recipe: Recipe, fast: bool, total_steps: int):
    """(criterion, optimizer, scheduler or None): cross-entropy and SGD with the recipe's lr,
    momentum and weight decay; the fast recipe adds Nesterov momentum and the one-cycle schedule."""
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
        weight_decay=recipe.weight_decay, nesterov=fast and recipe.momentum > 0)
    scheduler = _one_cycle(optimizer, recipe.lr, total_steps) if fast else None
    return criterion, optimizer, scheduler


def _train_epoch(model, batches, device, criterion, optimizer, scheduler, *, epoch: int, log_every: int,
                 result: TrainResult, bar, log: Callable[[str], None]) -> float:
    """One pass over ``batches`` ((B, 1, 28, 28) float32, (B,) int64 pairs); returns the epoch's
    mean loss. Counts ``result.steps`` and appends to ``result.history`` every ``log_every`` batches."""
    running, epoch_sum, done = 0.0, 0.0, 0
    for i, (xb, yb) in enumerate(batches, start=1):
        xb, yb = xb.to(device), yb.to(device)  # (B, 1, 28, 28) float32, (B,) int64
        # forward
        logits = model(xb)                     # (B, 10) float32
        # loss
        loss = criterion(logits, yb)           # () float32, mean over the batch
        # backward
        optimizer.zero_grad(set_to_none=True)
        loss.backward()                        # fills p.grad for every parameter p
        # step
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        result.steps += 1

        # log: the running mean every log_every mini-batches
        value = loss.item()
        running += value
        epoch_sum += value
        done += 1
        bar.update(1)
        if i % log_every == 0:
            mean = running / log_every
            result.history.append((result.steps, mean))
            with tqdm.external_write_mode():
                log(_log_line(epoch, i, mean))
            bar.set_postfix(loss=f"{mean:.3f}")
            running = 0.0
    return epoch_sum / max(1, done)
