"""mnist_cnn.evaluate against a hand count on a tiny model whose outputs are known."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from mnist_cnn.evaluate import Evaluation, evaluate

# Logits for sample i are LOGITS[i % len(LOGITS)] (3 classes keep the hand count short; the
# model below pads them to 10 with very low scores).
LOGITS = [
    [2.0, 1.0, 0.0],   # predicts 0
    [0.0, 3.0, 1.0],   # predicts 1
    [1.0, 0.0, 2.0],   # predicts 2
    [0.5, 0.2, 0.1],   # predicts 0
    [0.0, 0.0, 4.0],   # predicts 2
    [1.0, 2.0, 0.0],   # predicts 1
    [3.0, 0.0, 0.0],   # predicts 0
]
LABELS = [0, 1, 1, 2, 2, 1, 0]          # correct: samples 0, 1, 4, 5, 6 -> 5 of 7
PAD = -30.0                             # classes 3..9: exp(-30) ~ 1e-13, negligible but counted below


class Lookup(nn.Module):
    """Returns the stored logits of the sample whose index is in pixel [0, 0, 0]; scaled by a
    parameter (1.0) so that a graph would be built outside no_grad. Records what it saw."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        table = torch.full((len(LOGITS), 10), PAD)
        table[:, :3] = torch.tensor(LOGITS)
        self.register_buffer("table", table)
        self.seen = []                  # (batch size, training flag, grad enabled) per call
        self.outputs = []

    def forward(self, x):
        index = x[:, 0, 0, 0].long()                                  # (B,)
        self.seen.append((x.shape[0], self.training, torch.is_grad_enabled()))
        out = self.table[index] * self.scale                          # (B, 10)
        self.outputs.append(out)
        return out


def _data():
    n = len(LABELS)
    x = torch.zeros(n, 1, 28, 28)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.float32)
    return x, torch.tensor(LABELS)


def _hand_loss() -> float:
    """Mean over the 7 SAMPLES of -log softmax(logits)[label], written out."""
    total = 0.0
    for logits, label in zip(LOGITS, LABELS):
        scores = logits + [PAD] * 7
        total += math.log(sum(math.exp(s) for s in scores)) - scores[label]
    return total / len(LABELS)


def test_against_a_hand_count():
    model = Lookup()
    x, y = _data()
    result = evaluate(model, x, y, batch_size=3)              # batches of 3, 3, 1
    assert isinstance(result, Evaluation)
    assert [n for n, _, _ in model.seen] == [3, 3, 1]

    assert result.accuracy == pytest.approx(5 / 7)
    assert result.loss == pytest.approx(_hand_loss(), rel=1e-6)
    assert result.predictions.dtype == np.int64
    assert result.predictions.tolist() == [0, 1, 2, 0, 2, 1, 0]

    confusion = np.zeros((10, 10), dtype=np.int64)
    confusion[0, 0] = 2                  # samples 0, 6
    confusion[1, 1] = 2                  # samples 1, 5
    confusion[1, 2] = 1                  # sample 2: a 1 taken for a 2
    confusion[2, 0] = 1                  # sample 3: a 2 taken for a 0
    confusion[2, 2] = 1                  # sample 4
    assert result.confusion.dtype == np.int64 and result.confusion.shape == (10, 10)
    np.testing.assert_array_equal(result.confusion, confusion)

    assert result.per_class.dtype == np.float64 and result.per_class.shape == (10,)
    np.testing.assert_allclose(result.per_class[:3], [2 / 2, 2 / 3, 1 / 2])
    assert np.isnan(result.per_class[3:]).all()               # no samples of 3..9


def test_loss_is_per_sample_not_mean_of_batch_means():
    x, y = _data()
    per_sample = evaluate(Lookup(), x, y, batch_size=3).loss
    # What averaging the three batch means would give instead: differs with an uneven last batch.
    losses = [math.log(sum(math.exp(s) for s in lg + [PAD] * 7)) - lg[lb] for lg, lb in zip(LOGITS, LABELS)]
    batch_means = np.mean([np.mean(losses[0:3]), np.mean(losses[3:6]), np.mean(losses[6:7])])
    assert abs(batch_means - _hand_loss()) > 1e-3
    assert per_sample == pytest.approx(_hand_loss(), rel=1e-6)


@pytest.mark.parametrize("batch_size", [1, 2, 7, 1000])
def test_batch_size_does_not_change_the_result(batch_size):
    x, y = _data()
    reference = evaluate(Lookup(), x, y, batch_size=3)
    result = evaluate(Lookup(), x, y, batch_size=batch_size)
    assert result.accuracy == reference.accuracy
    assert result.loss == pytest.approx(reference.loss, rel=1e-6)
    np.testing.assert_array_equal(result.confusion, reference.confusion)
    np.testing.assert_array_equal(result.predictions, reference.predictions)


def test_no_graph_and_eval_mode_inside():
    model = Lookup()
    x, y = _data()
    evaluate(model, x, y, batch_size=4)
    assert all(not training and not grad for _, training, grad in model.seen)
    assert all(not out.requires_grad for out in model.outputs)  # no autograd graph was built
    assert model.scale.grad is None


@pytest.mark.parametrize("training", [True, False])
def test_mode_is_restored(training):
    model = Lookup()
    model.train(training)
    evaluate(model, *_data())
    assert model.training is training


def test_mode_restored_even_on_error():
    model = Lookup()
    model.train()
    x, y = _data()
    with pytest.raises((IndexError, ValueError)):
        evaluate(model, x, torch.tensor(LABELS[:-1] + [10]))     # a label out of range: the loss fails
    assert model.training


def test_rejects_empty_and_mismatched():
    x, y = _data()
    with pytest.raises(ValueError):
        evaluate(Lookup(), x[:0], y[:0])
    with pytest.raises(ValueError):
        evaluate(Lookup(), x, y[:3])


def test_works_with_the_course_net():
    from mnist_cnn.model import Net
    torch.manual_seed(0)
    x = torch.rand(25, 1, 28, 28)
    y = torch.randint(0, 10, (25,))
    result = evaluate(Net(), x, y, batch_size=10)
    assert result.confusion.sum() == 25
    assert 0.0 <= result.accuracy <= 1.0
    assert result.loss == pytest.approx(math.log(10), abs=0.3)  # an untrained net: near chance
