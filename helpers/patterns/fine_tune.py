"""Pattern 1: fine-tuning a new head on a frozen, "pretrained" backbone (and exercise 09.4)."""

import torch
from torch import nn
from torch.nn import functional as F

from ..exercises import Hint, exercise
from .core import SEED, batch, named_parameters_of, pattern, sgd


def transfer_parts(seed=SEED):
    """A "pretrained" backbone (Linear 4->6, ReLU), a new head (Linear 6->3), and a batch."""
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
    head = nn.Linear(6, 3)
    x, _, labels = batch(seed)
    return backbone, head, x, labels


@pattern("fine_tune", "Fine-tuning a new head on a frozen backbone", guarded="loss",
         must_reach=["head"], must_not_reach=["backbone"],
         mistakes={"no_freeze": "backbone not frozen, every parameter in the optimizer",
                   "optimizer_only": "head-only optimizer, backbone not frozen"},
         predictions={"correct": "The backbone is frozen and, as the first layer, reads an input "
                                 "that does not require grad, so its forward is not even "
                                 "recorded: loss reaches the head only.",
                      "no_freeze": "Nothing is frozen, so loss reaches the backbone as well as "
                                   "the head, and with the backbone in the optimizer its "
                                   "pretrained weights move.",
                      "optimizer_only": "Leaving the backbone out of the optimizer does not "
                                        "freeze it: loss still reaches it and backward computes "
                                        "its gradients; only the step skips it."})
def fine_tune_step(rec, mistake):
    """Freeze the backbone (requires_grad_(False)) and give the optimizer the head only. Without
    the freeze the backbone still gets gradients (paid for), and with it in the optimizer its
    pretrained weights move.
    """
    backbone, head, x, labels = transfer_parts()
    rec.track(backbone=backbone, head=head)
    if mistake is None:
        backbone.requires_grad_(False)
    trained = (backbone, head) if mistake == "no_freeze" else (head,)
    optimizer = rec.optimizer("optimizer", *trained)
    optimizer.zero_grad()
    loss = F.cross_entropy(head(backbone(x)), labels)
    rec.guard(loss)
    loss.backward()
    rec.snapshot()
    optimizer.step()


@exercise("09.4", why="backbone(x).detach() cuts the graph between the backbone and the head, so "
                      "backward fills only the head's .grad, although the backbone requires grad "
                      "and the optimizer holds it: the optimizer decides what moves, not what "
                      "gets a gradient (without the detach() all four would have one). Three "
                      "ways save the backbone's gradient work: this .detach(), "
                      "backbone.requires_grad_(False), or running the backbone under "
                      "torch.no_grad(); the last two also skip recording the backbone's forward.",
          hints=(Hint(lambda: params_with_grad(detach=False),
                      "Those are the parameters with a gradient without the detach(). Being in "
                      "the optimizer and requiring grad is not enough: backward() must reach "
                      "them from the loss."),))
def params_with_grad_behind_detached_backbone():
    """Exercise 09.4: the parameters with a ``.grad`` when the head reads backbone(x).detach()."""
    return params_with_grad(detach=True)


def params_with_grad(detach):
    """The parameters with a ``.grad`` after backward, the head reading backbone(x) (detached
    or not), one SGD over both modules."""
    backbone, head, x, labels = transfer_parts()
    sgd(backbone, head).zero_grad()
    features = backbone(x)
    F.cross_entropy(head(features.detach() if detach else features), labels).backward()
    named = named_parameters_of({"backbone": backbone, "head": head})
    return {name for name, p in named.items() if p.grad is not None}
