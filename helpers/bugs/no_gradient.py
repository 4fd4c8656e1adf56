"""Bugs that leave tensors with no gradient: frozen, unused, under no_grad or inference_mode,
detached, read with .item(), a loss from argmax, a non-leaf copy, or left out of inputs=.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .catalogue import Planted, bug
from .model import EVERY, LR, STEM, bug_batch, residual_net


@bug("frozen", "stem frozen (left over from fine-tuning)",
     fix="model.stem.requires_grad_(True)", causes=dict.fromkeys(STEM, "frozen"))
def frozen_stem():
    model, (x, y) = residual_net(), bug_batch()
    model.stem.requires_grad_(False)               # BUG: still frozen from an earlier phase
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("unused", "a second head that is never called",
     fix="delete model.aux (or use it in the loss)", patch="pass  # no model.aux",
     causes={"aux.weight": "unused", "aux.bias": "unused"})
def unused_head():
    model, (x, y) = residual_net(), bug_batch()
    model.aux = nn.Linear(8, 3)                    # BUG: an auxiliary head the step never calls
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("no_grad", "stem run under torch.no_grad()",
     fix="h = model.stem(x)", causes=dict.fromkeys(STEM, "no_grad"))
def stem_under_no_grad():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        with torch.no_grad(): h = model.stem(x)   # BUG: copied from the evaluation code
        loss = F.cross_entropy(model.head(torch.relu(model.block(h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("inference_mode", "stem run under torch.inference_mode()",
     fix="h = model.stem(x)",
     causes=dict.fromkeys(STEM, "inference_mode"))
def stem_under_inference_mode():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        with torch.inference_mode(): h = model.stem(x)  # BUG: a "fast" feature extractor
        loss = F.cross_entropy(model.head(torch.relu(model.block(h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("detach", "stem output detached", fix="h = model.stem(x)  # no .detach()",
     causes=dict.fromkeys(STEM, "detached"))
def detached_stem():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = model.stem(x).detach()                 # BUG: copied from logging code
        loss = F.cross_entropy(model.head(torch.relu(model.block(h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("item", "residual scale read with .item()",
     fix="s = model.block.scale.clamp(min=0)", causes={"block.scale": "detached"})
def scale_through_item():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = model.stem(x)
        s = max(model.block.scale.item(), 0.0)    # BUG: a Python float has no history
        h = h + s * model.block.branch(h)
        loss = F.cross_entropy(model.head(torch.relu(h)), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("argmax", "loss computed from argmax predictions",
     fix="loss = F.cross_entropy(model(x), y)", causes=dict.fromkeys(EVERY, "detached"),
     error="does not require grad and does not have a grad_fn")
def loss_from_argmax():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        predicted = model(x).argmax(dim=1)         # integer labels: no gradient
        loss = (predicted != y).float().mean()     # BUG: the error rate is not differentiable
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("non_leaf", "class prior moved with .to() after requires_grad=True",
     fix="prior = torch.zeros(3, dtype=torch.float64, requires_grad=True)",
     causes={"prior": "non_leaf"}, fixed_causes={"prior": "not_in_optimizer"})
def non_leaf_prior():
    model, (x, y) = residual_net(), bug_batch()
    prior = torch.zeros(3, requires_grad=True).to(torch.float64)  # BUG: .to() makes a copy
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x) + prior, y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer, {"prior": prior})


@bug("backward_inputs", "backward(inputs=...) lists only the head",
     fix="loss.backward()  # no inputs=", causes={n: "detached" for n in EVERY
                                                  if not n.startswith("head.")})
def backward_head_only():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward(inputs=list(model.head.parameters()))  # BUG: from a head-only phase
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)
