"""mnist_cnn.model: the course architecture, checked layer by layer against torch."""
import torch
import torch.nn.functional as F

from mnist_cnn.model import Net, count_parameters


def test_layer_shapes_and_names():
    net = Net()
    shapes = {name: tuple(p.shape) for name, p in net.named_parameters()}
    assert shapes == {
        "conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,),
        "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
        "fc1.weight": (120, 256), "fc1.bias": (120,),
        "fc2.weight": (84, 120), "fc2.bias": (84,),
        "fc3.weight": (10, 84), "fc3.bias": (10,),
    }
    assert count_parameters(net) == 44426


def test_forward_matches_the_layers_applied_by_hand():
    torch.manual_seed(0)
    net, x = Net(), torch.randn(3, 1, 28, 28)  # x: (3, 1, 28, 28)
    h = F.max_pool2d(torch.relu(F.conv2d(x, net.conv1.weight, net.conv1.bias)), 2)  # (3, 6, 12, 12)
    h = F.max_pool2d(torch.relu(F.conv2d(h, net.conv2.weight, net.conv2.bias)), 2)  # (3, 16, 4, 4)
    h = h.reshape(3, -1)  # (3, 256)
    h = torch.relu(h @ net.fc1.weight.T + net.fc1.bias)
    h = torch.relu(h @ net.fc2.weight.T + net.fc2.bias)
    logits = h @ net.fc3.weight.T + net.fc3.bias  # (3, 10)
    out = net(x)
    assert out.shape == (3, 10) and out.dtype == torch.float32
    torch.testing.assert_close(out, logits)


def test_outputs_are_logits_not_probabilities():
    torch.manual_seed(1)
    out = Net()(torch.randn(4, 1, 28, 28))
    assert not torch.allclose(out.sum(1), torch.ones(4))  # no softmax at the end
    assert (out < 0).any()
