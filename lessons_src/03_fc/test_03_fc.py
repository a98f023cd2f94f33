"""Lesson 3 (03_fc): realistic wrong implementations lose the exercise's points, with a
message that names the mistake; valid variants get full marks (public and hidden checks)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lesson_harness import accepts, credit, notebook_functions, rejects, unchecked_numbers


@pytest.fixture(scope="module")
def solution():
    """The master notebook's own flatten, Net, count_parameters."""
    return notebook_functions("03_fc")


def test_the_master_notebooks_functions_pass(solution):
    accepts("fc_flatten", solution["flatten"])
    accepts("fc_net", solution["Net"])
    accepts("fc_count_parameters", solution["count_parameters"])


def test_the_master_notebooks_net_is_the_reference_net(solution):
    from mnist_cnn.model import Net, count_parameters

    mine, ref = solution["Net"](), Net()
    assert [(n, p.shape) for n, p in mine.named_parameters()] == [(n, p.shape) for n, p in ref.named_parameters()]
    mine.load_state_dict(ref.state_dict())
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(mine(x), ref(x))
    assert solution["count_parameters"](mine) == count_parameters(ref) == 44426


# --- (a) flatten -----------------------------------------------------------------------

def _fixed_batch(features):
    return features.view(4, 256)


def _squeezed(features):
    return features.reshape(features.shape[0], -1).squeeze()


@pytest.mark.parametrize("wrong, says", [
    (lambda features: torch.flatten(features), "batch axis was flattened too"),
    (lambda features: features.reshape(-1), "batch axis was flattened too"),
    (lambda features: features.permute(0, 2, 3, 1).reshape(len(features), -1), "channels last"),
    (lambda features: features.view(256, -1), "not (256, n)"),
    (lambda features: features.reshape(256, -1).t(), "mixes the images"),
    (lambda features: features.flatten(2), "only the rows and columns"),
    (lambda features: features.transpose(2, 3).reshape(len(features), -1), "column by column"),
    (lambda features: features.reshape(-1, 16), "channels went into the batch axis"),
    (lambda features: features.numpy().reshape(len(features), -1), "torch tensor"),
    (lambda features: features.double().view(len(features), -1), "dtype"),
    (lambda features: features.view(1, -1), "each image needs a row of its own"),
    (lambda features: features, "nothing was flattened"),
    (_fixed_batch, "hard-code the batch size"),
    (_squeezed, "still a batch"),
], ids=["flatten_all", "reshape_all", "channels_last", "transposed_shape", "view_then_t", "flatten_from_2",
        "maps_transposed", "sixteen_wide", "numpy", "float64", "one_row", "unchanged", "fixed_batch", "squeezed"])
def test_flatten_mistakes_are_caught(wrong, says):
    rejects("fc_flatten", wrong, says)


@pytest.mark.parametrize("valid", [
    lambda features: torch.flatten(features, 1),
    lambda features: features.view(features.size(0), -1),
    lambda features: features.reshape(-1, 256),
    lambda features: features.view(-1, 16 * 4 * 4),
    lambda features: nn.Flatten()(features),
    lambda features: features.flatten(start_dim=1).clone(),
    lambda features: features.contiguous().view(len(features), 16 * 4 * 4),
], ids=["torch_flatten", "view_size", "reshape_256", "view_minus_one", "nn_flatten", "method_clone", "contiguous_view"])
def test_flatten_variants_pass(valid):
    accepts("fc_flatten", valid)


# --- (b) Net -----------------------------------------------------------------------------

class _Layers(nn.Module):
    """The course's layers; forward comes from the test."""

    def __init__(self, fc1=(256, 120), fc2=(120, 84), fc3=(84, 10), fc3_bias=True):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(*fc1)
        self.fc2 = nn.Linear(*fc2)
        self.fc3 = nn.Linear(*fc3, bias=fc3_bias)


def _conv(self, x, act=F.relu):
    x = F.max_pool2d(act(self.conv1(x)), 2)
    return F.max_pool2d(F.relu(self.conv2(x)), 2)


def _fc(self, x, act1=F.relu, act2=F.relu, out=lambda z: z, flat=lambda t: torch.flatten(t, 1)):
    x = act1(self.fc1(flat(x)))
    x = act2(self.fc2(x))
    return out(self.fc3(x))


def net(forward=None, **layers):
    """A Net class with these layer sizes and this forward(self, x) (default: the course's)."""
    forward = forward or (lambda self, x: _fc(self, _conv(self, x)))
    return type("Net", (_Layers,), {"__init__": lambda self: _Layers.__init__(self, **layers), "forward": forward})


def _identity(t):
    return t


class _OtherNames(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.linear1, self.linear2, self.linear3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = torch.flatten(_conv(self, x), 1)
        return self.linear3(F.relu(self.linear2(F.relu(self.linear1(x)))))


class _MisspeltInit(nn.Module):
    def init(self):                         # not __init__: Python never calls it
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(torch.flatten(_conv(self, x), 1))))))


class _SequentialHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Sequential(nn.Linear(256, 120), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Linear(120, 84), nn.ReLU())
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        return self.fc3(self.fc2(self.fc1(torch.flatten(_conv(self, x), 1))))


class _ExtraLayer(_Layers):
    def __init__(self):
        super().__init__()
        self.fc4 = nn.Linear(10, 10)

    def forward(self, x):
        return self.fc4(F.relu(_fc(self, _conv(self, x))))


def _flatten_everything(self, x):
    x = _conv(self, x)
    x = torch.flatten(x)
    return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def _fixed_batch(self, x):
    x = _conv(self, x).view(4, 256)
    return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def _new_layer(self, x):
    x = F.relu(self.fc1(torch.flatten(_conv(self, x), 1)))
    x = F.relu(nn.Linear(120, 84)(x))
    return self.fc3(x)


@pytest.mark.parametrize("wrong, says", [
    (net(lambda self, x: _fc(self, _conv(self, x), out=lambda z: F.softmax(z, dim=1))), "softmax of fc3's output"),
    (net(lambda self, x: _fc(self, _conv(self, x), out=lambda z: torch.softmax(z, dim=0))), "batch axis"),
    (net(lambda self, x: _fc(self, _conv(self, x), out=F.relu)), "relu after fc3"),
    (net(lambda self, x: _fc(self, _conv(self, x), out=torch.sigmoid)), "sigmoid after fc3"),
    (net(lambda self, x: _fc(self, _conv(self, x), act1=_identity)), "ReLU after fc1 is missing"),
    (net(lambda self, x: _fc(self, _conv(self, x), act2=_identity)), "ReLU after fc2 is missing"),
    (net(lambda self, x: _fc(self, _conv(self, x), act1=torch.sigmoid, act2=torch.sigmoid)), "sigmoid after fc1"),
    (net(lambda self, x: _fc(self, _conv(self, x), flat=lambda t: t.permute(0, 2, 3, 1).reshape(len(t), -1))),
     "channels last"),
    (net(lambda self, x: _fc(self, _conv(self, x, act=_identity))), "ReLU after conv1 is missing"),
    (net(fc1=(400, 120), forward=lambda self, x: x), "400"),
    (net(fc1=(120, 256), fc2=(256, 84), forward=lambda self, x: x), "swapped"),
    (net(fc3=(84, 1), forward=lambda self, x: x), "10 outputs"),
    (net(fc3_bias=False), "no bias"),
    (net(lambda self, x: None), "return"),
    (net(_flatten_everything), "mat1 and mat2"),
    (net(_fixed_batch), "hard-code the batch size"),
    (net(_new_layer), "never called self.fc2"),
    (_OtherNames, "no layer called fc1"),
    (_MisspeltInit, "defines init(), not __init__()"),
    (_SequentialHead, "the layer itself"),
    (_ExtraLayer, "fc4"),
], ids=["softmax", "softmax_over_batch", "relu_after_fc3", "sigmoid_after_fc3", "no_relu_fc1",
        "no_relu_fc2", "sigmoid_between", "channels_last", "conv_part_broken", "lenet_400", "in_out_swapped",
        "one_output", "no_bias", "no_return", "flatten_batch", "fixed_batch", "layer_in_forward", "other_names", "misspelt_init",
        "sequential", "extra_layer"])
def test_net_mistakes_are_caught(wrong, says):
    rejects("fc_net", wrong, says)


def _forward_stub(self, x):
    raise NotImplementedError()


@pytest.mark.parametrize("wrong, share, says, right", [
    (net(fc1=(120, 256), fc2=(256, 84)), 0.5, ["swapped"], "forward is right"),
    (_MisspeltInit, 0.5, ["defines init()"], "forward is right"),
    (net(lambda self, x: _fc(self, _conv(self, x), act1=_identity)), 0.5, ["relu after fc1"], "__init__ is right"),
    (net(_forward_stub), 0.5, ["not implemented yet", "stub in _forward_stub"], "__init__ is right"),
    (net(lambda self, x: _fc(self, _conv(self, x), act1=_identity), fc3=(84, 1)), 0.0,
     ["2 parts of this exercise need fixing", "1. __init__: net().fc3.weight", "2. forward: the relu after fc1"], ""),
], ids=["init_only", "misspelt_init_only", "forward_only", "forward_stub", "both"])
def test_net_init_and_forward_cost_once_each(wrong, share, says, right):
    """__init__ and forward are judged on their own (forward runs with the course's layers where
    __init__ made others): a mistake in one costs that part's half of the points, and a cell with
    mistakes in both names both at once."""
    got, message = credit("fc_net", wrong)
    assert got == share, message
    for fragment in says:
        assert fragment.lower() in message.lower(), message
    assert (right in message) if right else ("is right" not in message), message


@pytest.mark.parametrize("wrong_flatten", [lambda t: torch.flatten(t), lambda t: t.permute(0, 2, 3, 1).reshape(len(t), -1),
                                           lambda t: t.reshape(4, -1)], ids=["whole_batch", "channels_last", "fixed_4"])
def test_a_wrong_flatten_costs_flatten_only(wrong_flatten):
    """Net's forward calling the notebook's flatten (as the text suggests): while Net is judged, a
    stand-in flattens right, so a flatten mistake costs fc_flatten only."""
    notebook = {"torch": torch, "nn": nn, "F": F, "flatten": wrong_flatten}
    exec("class Net(nn.Module):\n"
         "    def __init__(self):\n"
         "        super().__init__()\n"
         "        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)\n"
         "        self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)\n"
         "    def forward(self, x):\n"
         "        x = F.max_pool2d(F.relu(self.conv2(F.max_pool2d(F.relu(self.conv1(x)), 2))), 2)\n"
         "        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(flatten(x))))))\n", notebook)
    rejects("fc_flatten", wrong_flatten)
    accepts("fc_net", notebook["Net"])
    assert notebook["flatten"] is wrong_flatten


class _Modules(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc3 = nn.Linear(84, 10)          # defined in another order: the names are what count
        self.fc2 = nn.Linear(120, 84)
        self.fc1 = nn.Linear(256, 120)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        return self.fc3(self.relu(self.fc2(x)))


@pytest.mark.parametrize("valid", [
    net(),
    net(lambda self, x: _fc(self, _conv(self, x), flat=lambda t: t.view(-1, 16 * 4 * 4), act1=torch.relu)),
    net(lambda self, x: _fc(self, _conv(self, x), flat=lambda t: t.reshape(t.shape[0], -1),
                            act2=lambda t: t.clamp(min=0))),
    _Modules,
    net(lambda self, x: F.linear(F.relu(self.fc2(F.relu(self.fc1(torch.flatten(_conv(self, x), 1))))),
                                 self.fc3.weight, self.fc3.bias)),
    # log-probabilities are logits too (shifted per row): the softmax, CrossEntropyLoss and argmax agree
    net(lambda self, x: _fc(self, _conv(self, x), out=lambda z: F.log_softmax(z, dim=1))),
], ids=["functional", "view_torch_relu", "reshape_clamp", "modules_other_order", "functional_linear", "log_softmax"])
def test_net_variants_pass(valid):
    accepts("fc_net", valid)


# --- (c) count_parameters -------------------------------------------------------------

def _weights_only(net):
    return sum(p.numel() for name, p in net.named_parameters() if name.endswith("weight"))


def _every_module(net):
    return sum(p.numel() for module in net.modules() for p in module.parameters())


def _two_axes(net):
    return sum(p.shape[0] * p.shape[1] for p in net.parameters())


@pytest.mark.parametrize("wrong, says", [
    (lambda net: len(list(net.parameters())), "number of parameter tensors"),
    (_weights_only, "not the biases"),
    (lambda net: sum(len(p) for p in net.parameters()), "first axis"),
    (lambda net: 44426, "for every network"),
    (_every_module, "twice"),
    (lambda net: float(sum(p.numel() for p in net.parameters())), "should be an int"),
    (lambda net: sum(torch.tensor(p.numel()) for p in net.parameters()), ".item()"),
    (_two_axes, "IndexError"),
    (lambda net: sum(p.numel() for p in net.parameters() if p.dim() > 1), "not the biases"),
    (lambda net: None, "return"),
], ids=["tensors", "weights_only", "first_axis", "hard_coded", "every_module", "float", "tensor", "two_axes",
        "matrices_only", "no_return"])
def test_count_parameters_mistakes_are_caught(wrong, says):
    rejects("fc_count_parameters", wrong, says)


@pytest.mark.parametrize("valid", [
    lambda net: sum(p.numel() for p in net.parameters()),
    lambda net: sum(np.prod(p.shape) for p in net.parameters()),
    lambda net: sum(math.prod(p.shape) for p in net.parameters()),
    lambda net: sum(v.numel() for v in net.state_dict().values()),
    lambda net: sum(p.nelement() for p in net.parameters() if p.requires_grad),
    lambda net: int(torch.cat([p.flatten() for p in net.parameters()]).numel()),
], ids=["numel", "np_prod", "math_prod", "state_dict", "nelement_trainable", "cat"])
def test_count_parameters_variants_pass(valid):
    accepts("fc_count_parameters", valid)


# --- numbers in the text ---------------------------------------------------------------

def fc1_share_is_69() -> bool:
    """The course's Net: fc1 holds 69% of its 44,426 parameters (30,840)."""
    from mnist_cnn.model import Net

    net = Net()
    total = sum(p.numel() for p in net.parameters())
    fc1 = sum(p.numel() for p in net.fc1.parameters())
    return (total, fc1) == (44_426, 30_840) and f"{fc1 / total:.0%}" == "69%"


# What no run changes; every other number a student compares with their own run is printed by the
# notebook from that run (lesson_harness.unchecked_numbers).
FIXED_NUMBERS = {"45 to 60 minutes": "study time", "69%": fc1_share_is_69}


def test_the_text_states_no_number_of_someone_elses_run():
    assert unchecked_numbers("03_fc", FIXED_NUMBERS) == []
