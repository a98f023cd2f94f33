"""Lesson 4 (04_training): realistic wrong training loops lose the exercise's points, with a
message that names the mistake (which move of the loop); valid variants get full marks
(public and hidden checks)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lesson_harness import accepts, credit, notebook_functions, rejects, unchecked_numbers


@pytest.fixture(scope="module")
def solution():
    """The master notebook's own functions (and its given Net)."""
    return notebook_functions("04_training")


@pytest.fixture(scope="module")
def Net(solution):
    return solution["Net"]


def test_the_master_notebooks_functions_pass(solution):
    accepts("train_optimizer", solution["make_criterion"], solution["make_optimizer"], solution["Net"])
    accepts("train_step", solution["train_step"], solution["Net"])
    accepts("train_epoch", solution["train_epoch"])


# --- (a) make_criterion, make_optimizer ----------------------------------------------

def criterion():
    return nn.CrossEntropyLoss()


def optimizer(net):
    return torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)


class SoftmaxThenCrossEntropy(nn.Module):
    def forward(self, logits, labels):
        return F.cross_entropy(torch.softmax(logits, dim=1), labels)


@pytest.mark.parametrize("wrong_criterion, wrong_optimizer, says", [
    (SoftmaxThenCrossEntropy, optimizer, "softmax before"),
    (lambda: nn.NLLLoss(), optimizer, "NLLLoss"),
    (lambda: nn.CrossEntropyLoss(reduction="sum"), optimizer, "sum"),
    (lambda: nn.CrossEntropyLoss(reduction="none"), optimizer, "reduction"),
    (lambda: nn.MSELoss(), optimizer, "class labels"),
    (lambda: nn.CrossEntropyLoss, optimizer, "class"),
    (lambda: (lambda logits, labels: F.cross_entropy(logits, labels).item()), optimizer, "tensor"),
    (criterion, lambda net: torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9), "0.01 is 10 times larger"),
    (criterion, lambda net: torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), "0.1 is 100 times larger"),
    (criterion, lambda net: torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9), "pass lr=0.001"),
    (lambda: (lambda logits, labels: -F.cross_entropy(logits, labels)), optimizer, "never negative"),
    (criterion, lambda net: torch.optim.SGD(net.parameters(), lr=0.001), "momentum defaults to 0"),
    (criterion, lambda net: torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.5), "momentum=0.9"),
    (criterion, lambda net: torch.optim.Adam(net.parameters(), lr=0.001), "Adam"),
    (criterion, lambda net: torch.optim.SGD(net.fc3.parameters(), lr=0.001, momentum=0.9), "conv1.weight"),
    (criterion, lambda net: torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, nesterov=True), "Nesterov"),
    (criterion, lambda net: torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4),
     "weight_decay"),
    (criterion, lambda net: torch.optim.SGD, "class itself"),
    (criterion, lambda net: None, "None"),
    (criterion, lambda net: torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.001, momentum=0.9), "does not update"),
], ids=["softmax", "nll", "sum", "none", "mse", "class", "item", "lr", "lr_0.1", "lr_small", "negative",
        "no_momentum", "momentum", "adam",
        "one_layer", "nesterov", "weight_decay", "optimizer_class", "no_return", "other_params"])
def test_optimizer_and_criterion_mistakes_are_caught(Net, wrong_criterion, wrong_optimizer, says):
    rejects("train_optimizer", wrong_criterion, wrong_optimizer, Net, says)


@pytest.mark.parametrize("valid_criterion, valid_optimizer", [
    (lambda: nn.CrossEntropyLoss(reduction="mean"), lambda net: torch.optim.SGD(net.parameters(), 1e-3, 0.9)),
    (lambda: F.cross_entropy, lambda net: torch.optim.SGD(params=list(net.parameters()), lr=1e-3, momentum=0.9)),
    (lambda: nn.CrossEntropyLoss(), lambda net: torch.optim.SGD([{"params": net.conv1.parameters()},
                                                                 {"params": [p for n, p in net.named_parameters()
                                                                             if not n.startswith("conv1")]}],
                                                                lr=0.001, momentum=0.9)),
], ids=["positional", "functional", "param_groups"])
def test_optimizer_and_criterion_variants_pass(Net, valid_criterion, valid_optimizer):
    accepts("train_optimizer", valid_criterion, valid_optimizer, Net)


def _stub(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("make_criterion, make_optimizer, share, says", [
    (lambda: nn.MSELoss(), optimizer, 0.5, ["class labels", "make_optimizer is right"]),
    (criterion, lambda net: torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9), 0.5,
     ["0.01 is 10 times larger", "make_criterion is right"]),
    (_stub, optimizer, 0.5, ["not implemented yet: calling make_criterion()", "make_optimizer is right"]),
    (SoftmaxThenCrossEntropy, lambda net: torch.optim.SGD(net.parameters(), lr=0.001), 0.0,
     ["2 parts of this exercise need fixing", "1. make_criterion: ", "softmax before", "2. make_optimizer: ",
      "momentum defaults to 0"]),
    (_stub, _stub, 0.0, ["not implemented yet: calling make_criterion()"]),
], ids=["criterion_only", "optimizer_only", "criterion_not_started", "both", "neither_started"])
def test_criterion_and_optimizer_cost_once_each(Net, make_criterion, make_optimizer, share, says):
    """make_criterion and make_optimizer are judged on their own, each half of the cell: one wrong
    or unfinished function costs its half, and two wrong ones are named at once."""
    got, message = credit("train_optimizer", make_criterion, make_optimizer, Net)
    assert got == share, message
    for fragment in says:
        assert fragment.lower() in message.lower(), message


# --- (b) train_step ------------------------------------------------------------------

def no_zero_grad(net, optimizer, criterion, x, y):
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_before_backward(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    optimizer.step()
    loss.backward()
    return loss.item()


def zero_grad_between(net, optimizer, criterion, x, y):
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def softmax_first(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(torch.softmax(net(x), dim=1), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def no_step(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    return loss.item()


def no_backward(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    optimizer.step()
    return loss.item()


def returns_tensor(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()
    return loss


def returns_nothing(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()


def new_optimizer(net, optimizer, criterion, x, y):
    opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    opt.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def loss_after_step(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()
    return criterion(net(x), y).item()


def labels_first(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(y, net(x))
    loss.backward()
    optimizer.step()
    return loss.item()


def under_no_grad(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    with torch.no_grad():
        loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def two_steps(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()
    optimizer.step()
    return loss.item()


def manual_sgd(net, optimizer, criterion, x, y):
    net.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.001 * p.grad
    return loss.item()


@pytest.mark.parametrize("wrong, says", [
    (no_zero_grad, "accumulate"),
    (step_before_backward, "step() comes before backward()"),
    (zero_grad_between, "between backward() and step()"),
    (softmax_first, "softmax before the loss"),
    (no_step, "never called the optimizer's step()"),
    (no_backward, "never ran the backward pass"),
    (returns_tensor, "python float"),
    (returns_nothing, "returned none"),
    (new_optimizer, "new optimizer"),
    (loss_after_step, "computed before the step"),
    (labels_first, "criterion(outputs, labels)"),
    (under_no_grad, "torch.no_grad()"),
    (two_steps, "2 times"),
    (manual_sgd, "step() of the optimizer it was given"),
], ids=["no_zero_grad", "step_before_backward", "zero_grad_between", "softmax", "no_step", "no_backward",
        "returns_tensor", "returns_nothing", "new_optimizer", "loss_after_step", "labels_first", "no_grad",
        "two_steps", "manual_sgd"])
def test_train_step_mistakes_are_caught(Net, wrong, says):
    rejects("train_step", wrong, Net, says)


def zero_grad_at_the_end(net, optimizer, criterion, x, y):
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def net_zero_grad_keep_zeros(net, optimizer, criterion, x, y):
    net.zero_grad(set_to_none=False)
    outputs = net(x)
    loss = criterion(outputs, y)
    loss.backward()
    optimizer.step()
    return float(loss)


def manual_clearing_after_forward(net, optimizer, criterion, x, y):
    loss = criterion(net(x), y)
    for p in net.parameters():
        p.grad = None
    loss.backward()
    optimizer.step()
    return loss.detach().item()


def functional_loss(net, optimizer, criterion, x, y):
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.parametrize("valid", [zero_grad_at_the_end, net_zero_grad_keep_zeros, manual_clearing_after_forward,
                                   functional_loss],
                         ids=["zero_grad_at_the_end", "net_zero_grad", "manual_clearing", "functional_loss"])
def test_train_step_variants_pass(Net, valid):
    accepts("train_step", valid, Net)


def _one_batch(start: int):
    from coursekit.data import load_digits

    images, labels = load_digits("train")
    return (torch.from_numpy(images[start:start + 4, None].astype(np.float32) / 255),
            torch.from_numpy(labels[start:start + 4].astype(np.int64)))


@pytest.mark.parametrize("seed, start", [(0, 0), (1, 100), (2, 2000)])
def test_memorizing_one_batch_tells_a_working_step_from_the_usual_bugs(solution, capsys, seed, start):
    """The sanity check after exercise (b): with the master's train_step the loss of one batch falls
    to nearly 0 in 100 steps (on other seeds and batches too, as the text claims); without
    zero_grad it climbs far above its start (the old 100-step check, at lr 0.001, made that bug look
    better than correct code); with the step before backward it does not move."""
    memorize, Net = solution["memorize_one_batch"], solution["Net"]
    x, y = _one_batch(start)
    for train_step, says in ((solution["train_step"], "✔ The loss fell"), (no_zero_grad, "✘ The loss climbed"),
                             (step_before_backward, "✘ The loss did not move"), (no_step, "✘ The loss did not move")):
        torch.manual_seed(seed)
        losses = memorize(train_step, Net(), x, y)
        verdict = capsys.readouterr().out.strip().splitlines()[-1]
        assert verdict.startswith(says), (train_step.__name__, verdict)
        if train_step is solution["train_step"]:
            assert losses[-1] < 0.05 and max(losses) <= losses[0] * 1.5


# --- (c) train_epoch -----------------------------------------------------------------

def _step(net, optimizer, criterion, x, y):
    optimizer.zero_grad()
    loss = criterion(net(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def never_reset(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    logged, running = [], 0.0
    for i, (x, y) in enumerate(loader, start=1):
        running += _step(net, optimizer, criterion, x, y)
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {running / log_every:.3f}")
            logged.append(running / log_every)
    return logged


def counts_from_zero(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    logged, running = [], 0.0
    for i, (x, y) in enumerate(loader):
        running += _step(net, optimizer, criterion, x, y)
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {running / log_every:.3f}")
            logged.append(running / log_every)
            running = 0.0
    return logged


def fixed_200(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    logged, running = [], 0.0
    for i, (x, y) in enumerate(loader, start=1):
        running += _step(net, optimizer, criterion, x, y)
        if i % 200 == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {running / 200:.3f}")
            logged.append(running / 200)
            running = 0.0
    return logged


def not_divided(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    logged, running = [], 0.0
    for i, (x, y) in enumerate(loader, start=1):
        running += _step(net, optimizer, criterion, x, y)
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {running:.3f}")
            logged.append(running)
            running = 0.0
    return logged


def every_batch(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    logged = []
    for i, (x, y) in enumerate(loader, start=1):
        logged.append(_step(net, optimizer, criterion, x, y))
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {np.mean(logged[-log_every:]):.3f}")
    return logged


def no_train_mode(net, loader, optimizer, criterion, epoch=1, log_every=200):
    logged, running = [], 0.0
    for i, (x, y) in enumerate(loader, start=1):
        running += _step(net, optimizer, criterion, x, y)
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {running / log_every:.3f}")
            logged.append(running / log_every)
            running = 0.0
    return logged


def no_print(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    logged, running = [], 0.0
    for i, (x, y) in enumerate(loader, start=1):
        running += _step(net, optimizer, criterion, x, y)
        if i % log_every == 0:
            logged.append(running / log_every)
            running = 0.0
    return logged


def no_return(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    running = 0.0
    for i, (x, y) in enumerate(loader, start=1):
        running += _step(net, optimizer, criterion, x, y)
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {running / log_every:.3f}")
            running = 0.0


def tensors_summed(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    logged, running = [], 0.0
    for i, (x, y) in enumerate(loader, start=1):
        optimizer.zero_grad()
        loss = criterion(net(x), y)
        loss.backward()
        optimizer.step()
        running += loss
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {running.item() / log_every:.3f}")
            logged.append(running / log_every)
            running = 0.0
    return logged


def last_batch_only(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    logged = []
    for i, (x, y) in enumerate(loader, start=1):
        loss = _step(net, optimizer, criterion, x, y)
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {loss:.3f}")
            logged.append(loss)
    return logged


def only_first_batch(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    x, y = next(iter(loader))
    return [_step(net, optimizer, criterion, x, y)]


def wrong_default(net, loader, optimizer, criterion, epoch=1, log_every=100):
    net.train()
    logged, running = [], 0.0
    for i, (x, y) in enumerate(loader, start=1):
        running += _step(net, optimizer, criterion, x, y)
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {running / log_every:.3f}")
            logged.append(running / log_every)
            running = 0.0
    return logged


@pytest.mark.parametrize("wrong, says", [
    (never_reset, "never reset"),
    (counts_from_zero, "mini-batch 0"),
    (fixed_200, "log_every argument"),
    (not_divided, "sum of those"),
    (every_batch, "one per mini-batch"),
    (no_train_mode, "net.train()"),
    (no_print, "print one line"),
    (no_return, "returned None"),
    (tensors_summed, "list of tensors"),
    (last_batch_only, "only the loss of the last mini-batch"),
    (only_first_batch, "once per mini-batch"),
    (wrong_default, "default log_every=200"),
], ids=["never_reset", "counts_from_zero", "fixed_200", "not_divided", "every_batch", "no_train_mode", "no_print",
        "no_return", "tensors", "last_batch_only", "one_batch", "wrong_default"])
def test_train_epoch_mistakes_are_caught(wrong, says):
    rejects("train_epoch", wrong, says)


def tutorial_style(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    history = []
    running_loss = 0.0
    for i, data in enumerate(loader, 0):
        inputs, labels = data
        running_loss += _step(net, optimizer, criterion, inputs, labels)
        if i % log_every == log_every - 1:
            print('[%d, %5d] loss: %.3f' % (epoch, i + 1, running_loss / log_every))
            history.append(running_loss / log_every)
            running_loss = 0.0
    return history


def window_of_floats(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train(True)
    losses, logged = [], []
    for x, y in loader:
        losses.append(_step(net, optimizer, criterion, x, y))
        if len(losses) % log_every == 0:
            mean = float(np.mean(losses[-log_every:]))
            logged.append(mean)
            print(f"epoch {epoch} batch {len(losses)}: running loss = {mean:.4f}")
    return logged


@pytest.mark.parametrize("valid", [tutorial_style, window_of_floats], ids=["tutorial_style", "window"])
def test_train_epoch_variants_pass(valid):
    accepts("train_epoch", valid)


TRAIN_EPOCH = """
def train_epoch(net, loader, optimizer, criterion, epoch=1, log_every=200):
    net.train()
    logged, running = [], 0.0
    for i, (x, y) in enumerate(loader, start=1):
        running += train_step(net, optimizer, criterion, x, y)
        if i % log_every == 0:
            print(f"[epoch {epoch}, batch {i:5d}] loss {running / log_every:.3f}")
            logged.append(running / log_every)
            running = 0.0
    return logged
"""


WRONG_STEPS = [no_zero_grad, step_before_backward, zero_grad_between, softmax_first, no_step, no_backward,
               returns_tensor, returns_nothing, new_optimizer, loss_after_step, labels_first, under_no_grad,
               two_steps, manual_sgd]


@pytest.mark.parametrize("wrong_step", WRONG_STEPS, ids=[f.__name__ for f in WRONG_STEPS])
def test_a_wrong_train_step_costs_train_step_only(solution, wrong_step):
    """A right train_epoch calling a wrong train_step: train_step's check fails, train_epoch's passes
    (while it is judged, a stand-in that returns the batch's loss replaces the notebook's train_step).
    Before, 13 of these 14 train_step mistakes cost train_epoch's points too."""
    notebook = {"Net": solution["Net"], "train_step": wrong_step, "np": np, "torch": torch}
    exec(TRAIN_EPOCH, notebook)
    rejects("train_step", wrong_step, solution["Net"])
    accepts("train_epoch", notebook["train_epoch"])
    assert notebook["train_step"] is wrong_step                  # the notebook's own, put back


@pytest.mark.parametrize("change, says", [
    (("train_step(net, optimizer, criterion, x, y)", "train_step(net, optimizer, criterion, x, y) + "
      "train_step(net, optimizer, criterion, x, y) / 1e9"), "called train_step 46 times"),
    (("for i, (x, y) in enumerate(loader, start=1):", "first = next(iter(loader))\n    for i, (x, y) in "
      "enumerate(loader, start=1):\n        x, y = first"), "got mini-batch 1, not mini-batch 2"),
    (("    net.train()\n", ""), "evaluation mode"),
    (("        running += train_step(net, optimizer, criterion, x, y)\n",
      "        running += train_step(net, optimizer, criterion, x, y)\n        optimizer.step()\n"),
     "also steps the optimizer"),
    (("running / log_every:.3f", "running / i:.3f"), "mean loss"),
], ids=["twice_per_batch", "first_batch_only", "no_train_mode", "extra_step", "wrong_mean_printed"])
def test_train_epoch_mistakes_around_train_step_are_caught(solution, change, says):
    notebook = {"Net": solution["Net"], "train_step": solution["train_step"], "np": np, "torch": torch}
    exec(TRAIN_EPOCH.replace(*change), notebook)
    rejects("train_epoch", notebook["train_epoch"], says)


# --- numbers in the text ---------------------------------------------------------------

def course_bar_is_97() -> bool:
    """course.yml's accuracy threshold, which the text quotes as 97%."""
    from coursekit import config

    return config.load().evaluation.accuracy_threshold == 0.97


# What no run changes; every other number a student compares with their own run is printed by the
# notebook from that run (lesson_harness.unchecked_numbers).
FIXED_NUMBERS = {"60 to 75 minutes": "study time", "97%": course_bar_is_97}


def test_the_text_states_no_number_of_someone_elses_run():
    assert unchecked_numbers("04_training", FIXED_NUMBERS) == []
