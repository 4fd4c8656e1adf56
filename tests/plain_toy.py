"""The toy network and batch written out again, so test expectations never come from helpers."""

import torch
from torch import nn

NAMES = ("l1.weight", "l1.bias", "l2.weight", "l2.bias")


class Net(nn.Module):
    """Linear(4 -> 3), ReLU, Linear(3 -> 1), as helpers.toy.ToyNet should be."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(4, 3)
        self.l2 = nn.Linear(3, 1)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))


def plain_net():
    torch.manual_seed(0)
    return Net()


def plain_batch():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(8, 4, generator=generator), torch.randn(8, 1, generator=generator)
