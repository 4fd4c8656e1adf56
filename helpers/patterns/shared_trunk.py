"""Pattern 7: a shared trunk with a main head and a probe head (two heads, one trunk), and
exercise 09.2."""

import torch
from torch import nn
from torch.nn import functional as F

from ..exercises import Hint, exercise
from .core import SEED, batch, pattern


def trunk_parts(seed=SEED):
    """A trunk (Linear 4->4, ReLU), a main head Linear(4 -> 1), a probe Linear(4 -> 3), a batch."""
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    main_head = nn.Linear(4, 1)
    probe = nn.Linear(4, 3)
    x, y, labels = batch(seed)
    return trunk, main_head, probe, x, y, labels


@pattern("shared_trunk", "A shared trunk with a main head and a probe head",
         guarded="probe_loss", must_reach=["probe"], must_not_reach=["trunk"],
         mistakes={"no_detach": "probe reads the trunk's features without detach()"},
         predictions={"correct": "The probe reads features.detach(): probe_loss reaches the probe"
                                 " only.",
                      "no_detach": "Without detach() the probe's loss reaches the trunk too, and "
                                   "adds its gradient to the main loss's."})
def shared_trunk_step(rec, mistake):
    """The probe reads features.detach(): it trains on the features without shaping them, so the
    trunk's gradient is the main loss's alone.
    """
    trunk, main_head, probe, x, y, labels = trunk_parts()
    rec.track(trunk=trunk, main_head=main_head, probe=probe)
    optimizer = rec.optimizer("optimizer", trunk, main_head, probe)
    optimizer.zero_grad()
    features = trunk(x)
    main_loss = F.mse_loss(main_head(features), y)
    probe_in = features if mistake == "no_detach" else features.detach()
    probe_loss = F.cross_entropy(probe(probe_in), labels)
    rec.guard(probe_loss)
    main_only = torch.autograd.grad(main_loss, list(trunk.parameters()), retain_graph=True)
    (main_loss + probe_loss).backward()
    rec.snapshot()
    rec.checks["the trunk's gradient is the main loss's alone"] = all(
        torch.allclose(p.grad, g) for p, g in zip(trunk.parameters(), main_only))
    optimizer.step()


def trunk_grad(detach_probe=True):
    """The trunk's first weight's gradient of the summed loss, the probe reading ``features``
    detached (or not)."""
    trunk, main_head, probe, x, y, labels = trunk_parts()
    features = trunk(x)
    probe_in = features.detach() if detach_probe else features
    loss = F.mse_loss(main_head(features), y) + F.cross_entropy(probe(probe_in), labels)
    loss.backward()
    return trunk[0].weight.grad.clone()


@exercise("09.2", why="With probe(features.detach()) the probe's loss stops at the cut, so "
                      "the trunk's gradient is the main loss's alone. Without detach() it "
                      "also carries the probe's loss and comes out different.",
          hints=(Hint(lambda: trunk_grad(detach_probe=False),
                      "That gradient also carries the probe's loss: the probe read the trunk's "
                      "features with their history. Cut it where the probe reads them."),))
def trunk_grad_with_detached_probe():
    """Exercise 09.2: the trunk's first weight's gradient, the probe reading detached features."""
    return trunk_grad()
