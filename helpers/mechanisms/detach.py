"""detach: cut the autograd graph at one point of the forward pass (notebook 03_detach).

``t.detach()`` returns a tensor that shares ``t``'s storage and version counter but has no
autograd history, so backward stops there: what was computed before the cut gets no gradient
through it, only along other paths to the loss (in the toy chain there are none, so L1 gets
nothing when the cut is after L1).
"""

import torch

from ..exercises import exercise
from ..outcome import params_with_grad_none
from ..registry import Mechanism, Option, register
from ..toy import toy_batch, toy_loss, toy_net

CUTS = {"none": "nowhere", "l1": "after L1", "l2": "after L2"}


def forward_cut(net, x, where="none"):
    """The toy net's forward pass, with ``.detach()`` applied after layer ``where``.

    ``where`` is ``"none"`` (a plain forward), ``"l1"`` (detach L1's output, before the ReLU)
    or ``"l2"`` (detach the network's output, so the loss depends on nothing that requires grad).
    """
    if where not in CUTS:
        raise ValueError(f"where must be one of {list(CUTS)}, not {where!r}")
    hidden = net.l1(x)
    if where == "l1":
        hidden = hidden.detach()
    out = net.l2(torch.relu(hidden))
    if where == "l2":
        out = out.detach()
    return out


def detach_step(ctx, cut="none"):
    """zero_grad, a forward pass cut at ``cut``, backward, step."""
    ctx.sgd_step(lambda: forward_cut(ctx.net, ctx.x, cut))


DETACH = register(Mechanism(
    name="detach",
    title="Cutting the graph with .detach()",
    step=detach_step,
    options=(
        Option("cut", CUTS, "l1", "Where the forward pass calls .detach()"),
    ),
    notebook="03_detach",
    summary="No gradient flows back through the cut. In the toy chain, the layers before it "
            "get none (grad None); layers after it train as usual. A layer before a cut that "
            "also reaches the loss another way still gets a gradient along that way. Cutting "
            "after the last layer leaves nothing to differentiate: backward raises.",
))


# --- Exercises of notebook 03_detach -------------------------------------------------------

@exercise("03.1", why="The cut stops only the path through h.detach(). The path through h "
                      "still reaches L1, so every parameter gets a gradient: no .grad is None "
                      "(the empty set). {l1.weight, l1.bias} is the answer for a chain cut "
                      "after L1, where L1 has no other path to the loss.")
def two_paths_one_cut_none():
    net, (x, y) = toy_net(), toy_batch()
    h = torch.relu(net.l1(x))
    toy_loss(net.l2(h + h.detach()), y).backward()
    return params_with_grad_none(net)


@exercise("03.2", why="The target must be a constant: target = y + 0.5 * net(x).detach(). "
                      "Without detach() the gradient also flows through the target and "
                      "l2.bias.grad comes out different (half the size here).")
def bootstrapped_target_grad():
    net, (x, y) = toy_net(), toy_batch()
    target = y + 0.5 * net(x).detach()
    toy_loss(net(x), target).backward()
    return net.l2.bias.grad.clone()


@exercise("03.3", why="w.data.mul_(10) changed w after w * w saved it, and .data skips the "
                      "version check: backward used the new w and returned 2 * (10 * w), "
                      "ten times the true gradient 2 * w, without any error.")
def data_trap_grad():
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    w.data.mul_(10)
    loss.backward()
    return w.grad.clone()
