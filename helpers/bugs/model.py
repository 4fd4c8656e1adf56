"""The small residual network every bug is planted into, its fixed batch, and the correct step.

:class:`ResidualNet`: ``stem`` Linear(4 -> 8), one pre-activation residual ``block``
(``h + scale * fc2(relu(fc1(relu(h))))``) and a ``head`` Linear(8 -> 3) giving the logits of 3
classes, trained with cross-entropy and SGD (lr 0.1) on a fixed batch of 16.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .catalogue import Planted, bug

SEED = 0
LR = 0.1


class Block(nn.Module):
    """A pre-activation residual block: ``h + scale * fc2(relu(fc1(relu(h))))``."""

    def __init__(self, width=8):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.scale = nn.Parameter(torch.tensor(1.0))

    def branch(self, h):
        return self.fc2(torch.relu(self.fc1(torch.relu(h))))

    def forward(self, h):
        return h + self.scale * self.branch(h)


class ResidualNet(nn.Module):
    """stem -> residual block -> ReLU -> head: 4 features in, 3 class logits out."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(4, 8)
        self.block = Block(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.block(self.stem(x))))


def residual_net(seed=SEED):
    """A fresh :class:`ResidualNet` whose weights depend only on ``seed``."""
    torch.manual_seed(seed)
    return ResidualNet()


def bug_batch(seed=SEED):
    """A fixed batch ``(x, y)``: 16 inputs of 4 features, 16 labels in {0, 1, 2}."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 4, generator=generator)
    y = torch.randint(0, 3, (16,), generator=generator)
    return x, y


# The parameter names bugs' causes refer to.
STEM = {"stem.weight", "stem.bias"}
EVERY = ["stem.weight", "stem.bias", "block.scale", "block.fc1.weight", "block.fc1.bias",
         "block.fc2.weight", "block.fc2.bias", "head.weight", "head.bias"]


# ---------------------------------------------------------------- the correct step


@bug("none", "no bug (the correct step)", fix="", causes={})
def correct_step():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)

