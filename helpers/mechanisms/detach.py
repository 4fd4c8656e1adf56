"""detach: cut the autograd graph at one point of the forward pass (notebook 03_detach).

``t.detach()`` returns a tensor that shares ``t``'s storage and version counter but has no
autograd history, so backward stops there: what was computed before the cut gets no gradient
through it, only along other paths to the loss (in the toy chain there are none, so L1 gets
nothing when the cut is after L1).
"""

import torch

from ..exercises import Hint, exercise
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


CAPTIONS = {
    "none": "no detach (plain step)",
    "l1": "detach after L1: L1 recorded, then cut off",
    "l2": "detach after L2 (the output): the loss is cut off",
}

PREDICTIONS = {
    "cut=none": "Without a cut, backward() reaches every parameter, as in the plain step.",
    "cut=l1": "backward() walks the graph from the loss and stops at the detached tensor; in "
              "this chain L1 reaches the loss only through it, so L1's .grad stays None. L2 "
              "comes after the cut and gets its gradient as usual.",
    "cut=l2": "The loss depends only on the detached output, which has no history, so "
              "backward() raises (the loss does not require grad) and writes no gradient.",
}

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
    predictions=PREDICTIONS,
    caption=lambda options: CAPTIONS[options["cut"]],
))


# --- Exercises of notebook 03_detach -------------------------------------------------------

def _detached_weight_step():
    """03.1's step: L2 written out with its weight detached. Returns the net and ``w``."""
    net, (x, y) = toy_net(), toy_batch()
    w = net.l2.weight.detach()
    out = torch.relu(net.l1(x)) @ w.T + net.l2.bias
    toy_loss(out, y).backward()
    return net, w


def _why_l2_weight_grad_is_none():
    """The letter of 03.1's true statement, each statement tested on PyTorch."""
    net, w = _detached_weight_step()
    plain, (x, y) = toy_net(), toy_batch()
    toy_loss(plain(x), y).backward()
    true = {
        "a": w.data_ptr() != net.l2.weight.data_ptr(),                     # w is a copy
        "b": net.l1.weight.grad is None,                                    # all before a cut
        "c": params_with_grad_none(net) == {"l2.weight"} and w.grad_fn is None
        and not w.requires_grad,                                            # w has no history
    }
    # L1's path to the loss has no cut: it gets exactly the plain step's gradient.
    assert torch.equal(net.l1.weight.grad, plain.l1.weight.grad)
    return "".join(letter for letter, holds in true.items() if holds)


exercise("03.1", why="c: w = net.l2.weight.detach() has no history, and l2.weight reaches the "
                  "loss only through w, so backward() stops before it. The cut is on the "
                  "weight's path alone: L1's path to the loss passes through the matmul's other "
                  "input, so L1 gets exactly its plain-step gradient.",
         hints=(Hint(lambda: "a",
                     "Compare w.data_ptr() with net.l2.weight.data_ptr(): is w new memory?"),
                Hint(lambda: "b", "Then l1.weight.grad would be None too. Print it: is it?"),
                ))(_why_l2_weight_grad_is_none)


def _bootstrapped_target_grad(detach=True):
    net, (x, y) = toy_net(), toy_batch()
    target = y + 0.5 * (net(x).detach() if detach else net(x))
    toy_loss(net(x), target).backward()
    return net.l2.bias.grad.clone()


exercise("03.2", why="The target must be a constant: target = y + 0.5 * net(x).detach(). "
                  "Without detach() the gradient also flows through the target and "
                  "l2.bias.grad comes out different (half the size here).",
         hints=(Hint(lambda: _bootstrapped_target_grad(detach=False),
                     "That is the gradient with the target not held fixed: it also flows back "
                     "through the target's net(x). Cut that one."),))(_bootstrapped_target_grad)


def _data_trap_grad(edit=True):
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    if edit:
        w.data.mul_(10)
    loss.backward()
    return w.grad.clone()


exercise("03.3", why="w.data.mul_(10) changed w after w * w saved it, and .data skips the "
                  "version check: backward used the new w and returned 2 * (10 * w), ten times "
                  "the true gradient 2 * w, without any error.",
         hints=(Hint(lambda: _data_trap_grad(edit=False),
                     "That is the true gradient, 2 * w at the w the loss was computed with. "
                     "Which values of w did backward() actually use?"),))(_data_trap_grad)
