"""mnist_cnn.train: input scaling, the SGD update, logging, seeding, dry runs, and (slow) 98% on MNIST."""
from __future__ import annotations

import dataclasses
import re
import time

import numpy as np
import pytest
import torch
from torch import nn

from coursekit.config import load
from mnist_cnn.evaluate import evaluate
from mnist_cnn.model import Net
from mnist_cnn.train import (DRY_RUN_BATCHES, MNIST_MEAN, MNIST_STD, TrainResult, pick_device,
                             set_seed, to_tensors, train)


@pytest.fixture(scope="module")
def course():
    return load()


def _images(n: int, seed: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8 noise, with pixels 0 and 255 always present."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    return images


def _easy_task(n: int, seed: int = 0):
    """A trivially learnable 10-class task: class k is a bright 6x6 square at spot k, plus faint noise.

    returns: images (n, 28, 28) uint8, labels (n,) int64
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.int64)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = 2 + 12 * (k // 5), 1 + 5 * (k % 5)
        images[i, r:r + 6, c:c + 6] = 255
    return images, labels


# --- to_tensors ---------------------------------------------------------------------------

def _check_to_tensors(fn) -> None:
    """The contract of to_tensors, as assertions; used on the real one and on wrong ones."""
    images = _images(5)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    x, y = fn(images, labels)
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (5,) and y.dtype == torch.int64
    assert y.tolist() == [3, 1, 4, 1, 5]
    assert x.min().item() == 0.0 and x.max().item() == 1.0        # 0 -> 0, 255 -> 1 exactly
    expected = torch.from_numpy(images.astype(np.float32) / np.float32(255)).unsqueeze(1)
    assert torch.equal(x, expected)                               # every pixel is pixel / 255


def _wrong_over_256(images, labels):
    """A common slip: dividing by 256, so 255 -> 0.996."""
    x = torch.from_numpy(images).float().unsqueeze(1) / 256
    return x, torch.from_numpy(labels).long()


def _wrong_unscaled(images, labels):
    """Another: forgetting to scale at all, so pixels stay 0..255."""
    return torch.from_numpy(images).float().unsqueeze(1), torch.from_numpy(labels).long()


def test_to_tensors_is_pixels_over_255():
    _check_to_tensors(to_tensors)


@pytest.mark.parametrize("wrong", [_wrong_over_256, _wrong_unscaled])
def test_to_tensors_check_catches_wrong_scaling(wrong):
    with pytest.raises(AssertionError):
        _check_to_tensors(wrong)


def test_to_tensors_standardize():
    images = _images(3)
    x, _ = to_tensors(images, np.zeros(3, dtype=np.int64), standardize=True)
    assert x.shape == (3, 1, 28, 28) and x.dtype == torch.float32
    expected = (torch.from_numpy(images).float().unsqueeze(1) / 255 - MNIST_MEAN) / MNIST_STD
    torch.testing.assert_close(x, expected)
    assert x.min().item() == pytest.approx(-MNIST_MEAN / MNIST_STD, abs=1e-6)


def test_to_tensors_rejects_bad_shapes():
    with pytest.raises(ValueError):
        to_tensors(np.zeros((2, 784), dtype=np.uint8), np.zeros(2))
    with pytest.raises(ValueError):
        to_tensors(np.zeros((2, 28, 28), dtype=np.uint8), np.zeros(3))


# --- pick_device, set_seed ------------------------------------------------------------------

def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(ValueError):
        pick_device("tpu")


def test_set_seed_repeats_all_three_generators():
    import random
    set_seed(7)
    first = (random.random(), np.random.rand(), torch.rand(()).item())
    set_seed(7)
    assert (random.random(), np.random.rand(), torch.rand(()).item()) == first


# --- the optimizer update ---------------------------------------------------------------------

def test_course_step_is_sgd_with_momentum_by_hand(course):
    """Two steps of the course recipe on one fixed batch equal v = m*v + g; p = p - lr*v done by hand."""
    recipe = dataclasses.replace(course.recipe("course"), epochs=2)  # batch 4, lr 0.001, momentum 0.9
    assert recipe.schedule == "constant" and recipe.weight_decay == 0.0
    lr, m = recipe.lr, recipe.momentum
    images, labels = _easy_task(recipe.batch_size, seed=3)
    x, y = to_tensors(images, labels)                     # one batch: each epoch is one step on it

    set_seed(0)
    model = Net()
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}

    # By hand: gradients from autograd, the update in plain tensor arithmetic.
    hand = Net()
    hand.load_state_dict(start)
    velocity = {name: torch.zeros_like(p) for name, p in hand.named_parameters()}
    plain = {name: p.detach().clone() for name, p in hand.named_parameters()}  # the same without momentum
    for _ in range(2):
        hand.zero_grad()
        nn.functional.cross_entropy(hand(x), y).backward()
        with torch.no_grad():
            for name, p in hand.named_parameters():
                velocity[name] = m * velocity[name] + p.grad
                p -= lr * velocity[name]
                plain[name] -= lr * p.grad

    result = train(model, recipe, x, y, seed=0, progress=False, log=lambda line: None)
    assert result.steps == 2
    trained = dict(model.named_parameters())
    moved = False
    for name, p in hand.named_parameters():
        torch.testing.assert_close(trained[name].detach(), p.detach(), rtol=0, atol=1e-7)
        assert not torch.equal(p, start[name])
        moved |= (p - plain[name]).abs().max().item() > 1e-6  # momentum made a visible difference
    assert moved


# --- the training loop ----------------------------------------------------------------------

def _small_fast(course, **changes):
    return dataclasses.replace(course.recipe("fast"), **{"epochs": 3, "batch_size": 32, **changes})


def test_loss_decreases_on_an_easy_task(course):
    images, labels = _easy_task(640)
    recipe = _small_fast(course)
    x, y = to_tensors(images, labels, standardize=recipe.standardize)
    set_seed(0)
    model = Net()
    result = train(model, recipe, x, y, seed=0, progress=False, log=lambda line: None)
    assert isinstance(result, TrainResult)
    assert result.steps == 3 * 20 and len(result.epoch_losses) == 3
    assert result.epoch_losses[0] > 1.0                    # starts near log(10) = 2.3
    assert result.epoch_losses[-1] < 0.3 * result.epoch_losses[0]
    assert model.training
    assert evaluate(model, x, y).accuracy > 0.9


@pytest.mark.parametrize("name", ["fast", "course"])
def test_same_seed_same_losses(course, name):
    recipe = dataclasses.replace(course.recipe(name), epochs=2, log_every=5)
    recipe = dataclasses.replace(recipe, batch_size=min(recipe.batch_size, 16))
    images, labels = _easy_task(160)
    x, y = to_tensors(images, labels, standardize=recipe.standardize)

    def run(seed):
        set_seed(seed)
        model = Net()
        result = train(model, recipe, x, y, seed=seed, progress=False, log=lambda line: None)
        return result, model.state_dict()

    (a, wa), (b, wb), (c, _) = run(1), run(1), run(2)
    assert a.history == b.history and a.epoch_losses == b.epoch_losses
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert c.epoch_losses != a.epoch_losses


def test_seed_only_changes_the_shuffle_not_the_start(course):
    """Same initial weights, different seeds: different batch orders, so different losses."""
    recipe = dataclasses.replace(course.recipe("course"), epochs=1, log_every=1)
    images, labels = _easy_task(40)
    x, y = to_tensors(images, labels)
    set_seed(0)
    start = Net().state_dict()
    runs = []
    for seed in (10, 11):
        model = Net()
        model.load_state_dict(start)
        runs.append(train(model, recipe, x, y, seed=seed, progress=False, log=lambda line: None).history)
    assert runs[0] != runs[1]


@pytest.mark.parametrize("name", ["fast", "course"])
def test_dry_run_takes_only_a_few_steps(course, name):
    recipe = course.recipe(name)  # 10 or 3 epochs: a dry run ignores them
    images, labels = _easy_task(2000)
    x, y = to_tensors(images, labels, standardize=recipe.standardize)
    result = train(Net(), recipe, x, y, seed=0, dry_run=True, progress=False, log=lambda line: None)
    assert result.steps == DRY_RUN_BATCHES
    assert len(result.epoch_losses) == 1
    assert result.history == []                            # log_every (200) never reached


def test_log_line_every_log_every_batches(course, capsys):
    recipe = dataclasses.replace(course.recipe("course"), epochs=2, log_every=5)
    images, labels = _easy_task(44)                        # 11 batches of 4 per epoch
    x, y = to_tensors(images, labels)
    lines = []
    result = train(Net(), recipe, x, y, seed=0, progress=False, log=lines.append)
    assert result.steps == 22
    assert [step for step, _ in result.history] == [5, 10, 16, 21]
    pattern = re.compile(r"^\[epoch (\d+), batch +(\d+)\] loss (\d+\.\d{3})$")
    parsed = [pattern.match(line) for line in lines]
    assert all(parsed), lines
    assert [(int(p[1]), int(p[2])) for p in parsed] == [(1, 5), (1, 10), (2, 5), (2, 10)]
    assert [float(p[3]) for p in parsed] == [round(loss, 3) for _, loss in result.history]
    assert lines[0] == f"[epoch 1, batch     5] loss {result.history[0][1]:.3f}"  # the tutorial's layout
    assert capsys.readouterr().out == ""                   # nothing printed besides via log


def test_history_with_log_every_1_is_every_batch_loss(course):
    recipe = dataclasses.replace(course.recipe("course"), epochs=2, log_every=1)
    images, labels = _easy_task(18)                        # 5 batches per epoch, the last of 2
    x, y = to_tensors(images, labels)
    result = train(Net(), recipe, x, y, seed=0, progress=False, log=lambda line: None)
    assert [s for s, _ in result.history] == list(range(1, 11))
    per_batch = [loss for _, loss in result.history]
    assert result.epoch_losses == pytest.approx([np.mean(per_batch[:5]), np.mean(per_batch[5:])])


def test_default_log_is_print(course, capsys):
    recipe = dataclasses.replace(course.recipe("course"), epochs=1, log_every=2)
    images, labels = _easy_task(8)
    x, y = to_tensors(images, labels)
    train(Net(), recipe, x, y, seed=0, progress=False)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("[epoch 1, batch     2] loss ")


def test_on_epoch_end_called_each_epoch_and_not_timed(course):
    recipe = _small_fast(course, epochs=2)
    images, labels = _easy_task(64)
    x, y = to_tensors(images, labels, standardize=True)
    calls = []

    def on_epoch_end(epoch, model):
        calls.append((epoch, model.training))
        model.eval()                                       # train() must switch it back
        time.sleep(0.25)

    model = Net()
    model.eval()
    start = time.perf_counter()
    result = train(model, recipe, x, y, seed=0, progress=False, on_epoch_end=on_epoch_end)
    total = time.perf_counter() - start
    assert calls == [(1, True), (2, True)]                 # train mode during training
    assert model.training
    assert result.seconds <= total - 0.5                   # the callbacks' two 0.25 s sleeps are excluded


def test_train_rejects_unscaled_input(course):
    with pytest.raises(ValueError, match="to_tensors"):
        train(Net(), course.recipe("fast"), torch.zeros(4, 28, 28), torch.zeros(4, dtype=torch.int64))


# --- the real thing -----------------------------------------------------------------------------

@pytest.mark.real_data
@pytest.mark.slow
def test_fast_recipe_reaches_98_percent(mnist_train, mnist_test, course):
    """The fast recipe of course.yml, seed 0, on one thread (conftest): ~99% in under 10 s."""
    train_images, train_labels = mnist_train
    test_images, test_labels = mnist_test
    recipe = course.recipe("fast")
    x, y = to_tensors(train_images, train_labels, standardize=recipe.standardize)
    x_test, y_test = to_tensors(test_images, test_labels, standardize=recipe.standardize)
    set_seed(0)
    model = Net()
    result = train(model, recipe, x, y, seed=0, progress=False, log=lambda line: None)
    scores = evaluate(model, x_test, y_test)
    assert scores.accuracy >= 0.98, f"{scores.accuracy:.4f} after {result.seconds:.1f} s"
    assert result.epoch_losses[-1] < result.epoch_losses[0]
