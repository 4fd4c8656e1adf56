"""control: a plain training step, the baseline every mechanism is compared with."""

import torch

from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE


def plain_step(ctx, optimizer_step="yes", input_grad="no"):
    """zero_grad, forward, backward, step: the standard loop body."""
    optimizer = torch.optim.SGD(ctx.net.parameters(), lr=LEARNING_RATE)
    optimizer.zero_grad()
    x = ctx.x.requires_grad_(True) if input_grad == "yes" else ctx.x
    ctx.loss_of(ctx.net(x)).backward()
    if optimizer_step == "yes":
        optimizer.step()


CONTROL = register(Mechanism(
    name="control",
    title="A plain training step",
    step=plain_step,
    options=(
        Option("optimizer_step", {"yes": "optimizer.step()", "no": "no step"}, "yes",
               "Run optimizer.step() after backward()?"),
        Option("input_grad", {"no": "x plain", "yes": "x.requires_grad_()"}, "no",
               "Does the input batch x require grad?"),
    ),
    notebook="00_start_here",
    summary="Every parameter requires grad, gets a gradient and moves.",
))
