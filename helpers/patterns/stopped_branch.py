"""Pattern 8: a skip connection whose side branch is stopped with detach()."""

import torch
from torch import nn
from torch.nn import functional as F

from .core import SEED, batch, pattern


def skip_parts(seed=SEED):
    """A stem Linear(4 -> 4), a side branch Linear(4 -> 4), a head Linear(4 -> 1), a batch."""
    torch.manual_seed(seed)
    stem = nn.Linear(4, 4)
    branch = nn.Linear(4, 4)
    head = nn.Linear(4, 1)
    x, y, _ = batch(seed)
    return stem, branch, head, x, y


@pattern("stopped_branch", "A skip connection with the side branch stopped",
         guarded="the branch's output", must_reach=[], must_not_reach=["stem", "branch"],
         mistakes={"no_detach": "branch output added without detach()",
                   "freeze": "branch frozen with requires_grad_(False) instead"},
         predictions={"correct": "The branch's output is detached, so it reaches no module: the "
                                 "branch does not train, and the stem learns through the skip "
                                 "path only.",
                      "no_detach": "Without detach() the branch's output reaches the branch's own"
                                   " weights and, through its input h, the stem.",
                      "freeze": "A frozen layer gets no gradient itself, but its input h "
                                "requires grad, so the layer is recorded and the gradient "
                                "flows through it into the stem."})
def stopped_branch_step(rec, mistake):
    """out = head(h + branch(h).detach()): the branch adds fixed features; it does not train,
    and the stem learns through the skip path only. Freezing the branch instead stops its
    weights but still passes gradient through it into the stem.
    """
    stem, branch, head, x, y = skip_parts()
    rec.track(stem=stem, branch=branch, head=head)
    if mistake == "freeze":
        branch.requires_grad_(False)
    optimizer = rec.optimizer("optimizer", stem, branch, head)
    optimizer.zero_grad()
    h = torch.relu(stem(x))
    side = branch(h)
    if mistake is None:
        side = side.detach()                     # the stopped branch
    loss = F.mse_loss(head(h + side), y)
    rec.guard(side, draw=False)
    rec.loss = loss
    loss.backward()
    rec.snapshot()
    optimizer.step()
