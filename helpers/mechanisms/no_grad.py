"""no_grad: run part (or all) of the forward pass without autograd recording it.

Taught in notebooks/04_no_grad. Inside ``torch.no_grad()`` nothing is recorded and nothing is
saved for backward: new results have ``requires_grad=False`` and no ``grad_fn`` (a view of a
tensor that requires grad keeps the flag, but is linked to nothing). The step below runs
the toy forward with L1, L2, both or neither under ``no_grad`` and then tries the usual
backward and SGD step.
"""

import copy

import torch

from ..costs import saved_tensor_bytes
from ..exercises import exercise
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, toy_batch, toy_net

# Which layers of the toy net run under torch.no_grad() for each option value.
LAYERS_UNDER_NO_GRAD = {"none": (), "l1": ("l1",), "l2": ("l2",), "all": ("l1", "l2")}


def layer_forward(layer, inputs, under_no_grad):
    """``layer(inputs)``, run under ``torch.no_grad()`` when ``under_no_grad`` is true."""
    if under_no_grad:
        with torch.no_grad():
            return layer(inputs)
    return layer(inputs)


def describe_result(tensor):
    """How autograd sees a result: ``"grad_fn AddmmBackward0"`` or ``"no grad_fn"``."""
    if tensor.grad_fn is None:
        return f"no grad_fn (requires_grad={tensor.requires_grad})"
    return f"grad_fn {type(tensor.grad_fn).__name__}"


def forward_with_no_grad(ctx, over="l1"):
    """The toy forward L1 -> ReLU -> L2 with the layers named by ``over`` under ``no_grad``.

    ``over`` is "none", "l1", "l2" or "all" ("all" wraps the whole forward in one block, as an
    evaluation loop would). Notes, per parameter, whether its layer ran under ``no_grad`` and
    what autograd recorded for that layer's output.
    """
    under = LAYERS_UNDER_NO_GRAD[over]
    if over == "all":
        with torch.no_grad():
            hidden = ctx.net.l1(ctx.x)
            output = ctx.net.l2(torch.relu(hidden))
    else:
        hidden = layer_forward(ctx.net.l1, ctx.x, "l1" in under)
        output = layer_forward(ctx.net.l2, torch.relu(hidden), "l2" in under)
    for layer, result in (("l1", hidden), ("l2", output)):
        names = (f"{layer}.weight", f"{layer}.bias")
        ctx.note("under no_grad", {n: "yes" if layer in under else "no" for n in names})
        ctx.note("layer output", {n: describe_result(result) for n in names})
    return output


def no_grad_step(ctx, no_grad_over="l1"):
    """zero_grad, forward with some layers under no_grad, backward, SGD step.

    When the output does not depend on anything recorded ("l2", "all"), ``backward()`` raises
    "element 0 of tensors does not require grad and does not have a grad_fn".
    """
    ctx.sgd_step(lambda: forward_with_no_grad(ctx, no_grad_over))


NO_GRAD = register(Mechanism(
    name="no_grad",
    title="torch.no_grad(): do not record this part of the forward",
    step=no_grad_step,
    options=(
        Option("no_grad_over",
               {"none": "nothing", "l1": "L1 only", "l2": "L2 only", "all": "whole forward"},
               "l1", "Which part of the forward runs inside `with torch.no_grad():`?"),
    ),
    notebook="04_no_grad",
    summary="Layers run under no_grad are not recorded: their parameters get no gradient. If "
            "the output itself is computed under no_grad, backward() has nothing to run.",
))


# Exercises of notebook 04 ---------------------------------------------------------------

@exercise("04.1", why="z = w * 2 is a new result computed under no_grad: it does not require "
                      "grad. v = w[:2] is a view of w, and a view keeps w's flag even under "
                      "no_grad (it has no grad_fn, though). u: enable_grad() turns recording "
                      "back on, but an op is recorded only if an input requires grad, and z "
                      "does not; if you said u is True, that is the step you missed.")
def nesting_flags():
    w = torch.ones(3, requires_grad=True)
    with torch.no_grad():
        z = w * 2
        v = w[:2]
        with torch.enable_grad():
            u = z * 3
    return (z.requires_grad, v.requires_grad, u.requires_grad)


@exercise("04.2", why="A batch of 20 rows: L1 saves its input (20x4 floats = 320 bytes, for "
                      "l1.weight's gradient) and the ReLU its output (20x3 floats = 240 bytes, "
                      "also what L2 uses for l2.weight's gradient): 560 bytes. If you got 800, "
                      "you counted L1's output too: the ReLU saves its output, not its input. "
                      "l2.weight.t() is saved as well, but it is the weight, not extra memory.")
def toy_forward_saved_bytes():
    net = toy_net()
    inputs = torch.randn(20, 4, generator=torch.Generator().manual_seed(0))
    return saved_tensor_bytes(net, inputs, exclude=net)


@exercise("04.3", why="An EMA update is an in-place edit of parameters that require grad: it "
                      "must run under torch.no_grad(). With decay 0.9 after one SGD step of "
                      "lr 0.1, the EMA weight is w0 - 0.01 * grad.")
def ema_after_one_step():
    net = toy_net()
    ema = copy.deepcopy(net)
    x, y = toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    torch.nn.functional.mse_loss(net(x), y).backward()
    optimizer.step()
    with torch.no_grad():
        for ema_p, p in zip(ema.parameters(), net.parameters()):
            ema_p.mul_(0.9).add_(p, alpha=0.1)
    return ema.l1.weight.detach().clone()
