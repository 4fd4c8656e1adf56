"""The shared toy network: L1 -> ReLU -> L2, the same in every notebook."""

import torch
from torch import nn

SEED = 0
PARAM_NAMES = ("l1.weight", "l1.bias", "l2.weight", "l2.bias")
LEARNING_RATE = 0.1


class ToyNet(nn.Module):
    """Linear(4 -> 3), ReLU, Linear(3 -> 1)."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(4, 3)
        self.l2 = nn.Linear(3, 1)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))


def toy_net(seed=SEED):
    """A fresh ToyNet whose weights depend only on ``seed``."""
    torch.manual_seed(seed)
    return ToyNet()


def toy_batch(seed=SEED):
    """A fixed batch ``(x, y)``: 8 inputs of 4 features, 8 targets."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 4, generator=generator)
    y = torch.randn(8, 1, generator=generator)
    return x, y


def toy_loss(output, target):
    """Mean squared error, the loss every notebook uses."""
    return nn.functional.mse_loss(output, target)
