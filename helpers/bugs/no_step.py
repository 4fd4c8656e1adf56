"""Bugs where a gradient arrives but the step does not move the parameter: left out of the
optimizer, replaced after it was built, a learning rate of 0, dead ReLU units.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .catalogue import Planted, bug
from .model import EVERY, LR, STEM, bug_batch, residual_net


@bug("not_in_optimizer", "stem left out of the optimizer",
     fix="trained = list(model.parameters())",
     causes=dict.fromkeys(STEM, "not_in_optimizer"))
def stem_not_in_optimizer():
    model, (x, y) = residual_net(), bug_batch()
    trained = [*model.block.parameters(), *model.head.parameters()]  # BUG: no model.stem
    optimizer = torch.optim.SGD(trained, lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("replaced", "head replaced after the optimizer was built",
     fix='optimizer.add_param_group({"params": model.head.parameters()})',
     patch='model.head = nn.Linear(8, 3); '
           'optimizer.add_param_group({"params": model.head.parameters()})',
     causes={"head.weight": "not_in_optimizer", "head.bias": "not_in_optimizer"})
def head_replaced():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    model.head = nn.Linear(8, 3)                   # BUG: the optimizer holds the old head

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("lr0", "learning rate 0", fix="optimizer = torch.optim.SGD(model.parameters(), lr=0.1)",
     causes=dict.fromkeys(EVERY, "not_moved"))
def zero_learning_rate():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # BUG: a learning rate of 0

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("dead_relu", "dead ReLU units after fc1",
     fix="model.block.fc1.bias.zero_()  # re-initialise, then lower the learning rate",
     causes=dict.fromkeys(["block.fc1.weight", "block.fc1.bias", "block.fc2.weight"],
                          "zero_grad"))
def dead_relu():
    model, (x, y) = residual_net(), bug_batch()
    with torch.no_grad():
        model.block.fc1.bias.fill_(-10.0)          # BUG: as after one far too large step
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)
