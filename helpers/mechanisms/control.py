"""control: a plain training step, the baseline every mechanism is compared with."""

import torch

from ..exercises import exercise
from ..registry import Mechanism, Option, register
from ..outcome import params_with_grad_none, toy_net_after_backward
from ..toy import LEARNING_RATE


def control_step(ctx, optimizer_step="yes", input_grad="no"):
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
    step=control_step,
    options=(
        Option("optimizer_step", {"yes": "optimizer.step()", "no": "no step"}, "yes",
               "Run optimizer.step() after backward()?"),
        Option("input_grad", {"no": "x plain", "yes": "x.requires_grad_()"}, "no",
               "Does the input batch x require grad?"),
    ),
    notebook="00_start_here",
    summary="Every parameter requires grad, gets a gradient and moves.",
))


@exercise("00.1", why="A gradient has its parameter's shape: l1 maps 4 inputs to 3 units, so "
          "l1.weight and its grad are (3, 4).")
def _l1_weight_grad_shape():
    return tuple(toy_net_after_backward().l1.weight.grad.shape)


@exercise("00.2", why="In the plain step every parameter requires grad and the loss depends on "
          "all of them, so none is left None.")
def _grads_none_in_plain_step():
    return params_with_grad_none(toy_net_after_backward())
