"""The course model: two conv layers and three fully connected layers.

    input (N, 1, 28, 28)
    conv1 5x5, 1->6   + ReLU + 2x2 max-pool -> (N, 6, 12, 12)
    conv2 5x5, 6->16  + ReLU + 2x2 max-pool -> (N, 16, 4, 4)
    flatten                                  -> (N, 256)
    fc1 256->120 + ReLU, fc2 120->84 + ReLU  -> (N, 84)
    fc3 84->10                               -> (N, 10) logits

No softmax at the end: ``nn.CrossEntropyLoss`` takes raw logits.
"""
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """The course CNN, with the seed's layer names ``conv1, conv2, fc1, fc2, fc3``.

    forward:
        x: (N, 1, 28, 28) float32, pixels scaled (see ``mnist_cnn.train``)
        returns: (N, 10) float32 logits, one score per digit class
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 1, 28, 28) -> (N, 6, 24, 24) -> (N, 6, 12, 12)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 6, 12, 12) -> (N, 16, 8, 8) -> (N, 16, 4, 4)
        x = torch.flatten(x, 1)                     # (N, 16, 4, 4) -> (N, 256)
        x = F.relu(self.fc1(x))                     # (N, 256) -> (N, 120)
        x = F.relu(self.fc2(x))                     # (N, 120) -> (N, 84)
        return self.fc3(x)                          # (N, 84) -> (N, 10) logits


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model`` (44,426 for ``Net``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
