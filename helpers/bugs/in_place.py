"""Bugs where an in-place edit changes a tensor autograd saved, so ``backward()`` raises."""

import torch
import torch.nn.functional as F
from torch import nn

from .catalogue import Planted, bug
from .model import LR, bug_batch, residual_net


@bug("inplace_relu", "ReLU(inplace=True) after sigmoid",
     fix="act = nn.ReLU()", causes=None,
     error="modified by an inplace operation", line="h = act(h)")
def inplace_relu():
    model, (x, y) = residual_net(), bug_batch()
    act = nn.ReLU(inplace=True)                    # BUG: in place after an op that saves
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = torch.sigmoid(model.stem(x))           # sigmoid saves its output for backward
        h = act(h)
        loss = F.cross_entropy(model.head(torch.relu(model.block(h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("inplace_add", "out += h after a ReLU",
     fix="out = out + h", causes=None,
     error="modified by an inplace operation", line="out += h")
def inplace_residual_add():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = model.stem(x)
        out = torch.relu(model.block(h))           # relu saves its output for backward
        out += h                                   # BUG: edits that output in place
        loss = F.cross_entropy(model.head(out), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("inplace_mask", "x[mask] = 0 on a saved tensor",
     fix="gate = gate * (gate >= 0.1)", causes=None,
     error="modified by an inplace operation", line="gate[gate < 0.1] = 0")
def inplace_mask():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = model.stem(x)
        gate = torch.sigmoid(h)                    # sigmoid saves its output for backward
        gate[gate < 0.1] = 0                       # BUG: sparsify in place
        loss = F.cross_entropy(model.head(torch.relu(model.block(gate * h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)
