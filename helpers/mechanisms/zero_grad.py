"""zero_grad: how ``.grad`` is cleared before backward, and how many backward passes add into it.

Taught in notebooks/01_zero_grad. One step here is one iteration of a training loop that starts
where the previous iteration left off: that iteration's backward has already put a gradient
(called ``g1``: the gradient of one pass on the toy batch) into every ``.grad``. The step then
clears the grads as the ``clear`` option says, runs ``passes`` forward+backward passes and calls
``optimizer.step()``. No step runs before the passes, so every accumulated grad is a whole
multiple of ``g1``, up to float rounding (``.grad`` is a running sum, and each addition rounds):
:func:`in_units_of` compares with ``torch.allclose``.
"""

import torch

from ..exercises import exercise
from ..grad_table import Table
from ..registry import Mechanism, Option, cached_outcome, register
from ..toy import LEARNING_RATE, toy_batch, toy_loss, toy_net

CLEAR_CHOICES = {
    "nothing": "no clearing",
    "optimizer": "optimizer.zero_grad()",
    "model": "model.zero_grad()",
    "zeros": "optimizer.zero_grad(set_to_none=False)",
    "loop": "for p in model.parameters(): p.grad = None",
}
PASSES_CHOICES = {0: "0 (no backward)", 1: "1", 2: "2", 3: "3"}
OPTIMIZER_CHOICES = {"all": "model.parameters()", "l2": "only model.l2.parameters()"}


def make_sgd(net, optimizer_has="all"):
    """Plain SGD over all of ``net``'s parameters, or (``"l2"``) over ``net.l2``'s only."""
    params = net.parameters() if optimizer_has == "all" else net.l2.parameters()
    return torch.optim.SGD(params, lr=LEARNING_RATE)


def forward_backward(ctx):
    """One forward and one backward pass on the toy batch: adds one ``g1`` into every grad."""
    ctx.loss_of(ctx.net(ctx.x)).backward()


def leave_stale_grads(ctx):
    """The previous iteration's backward; returns a copy of the grads it left (``g1``)."""
    forward_backward(ctx)
    return {name: p.grad.clone() for name, p in ctx.net.named_parameters()}


def clear_grads(net, optimizer, clear):
    """Clear gradients the way ``clear`` names (one of :data:`CLEAR_CHOICES`)."""
    if clear == "optimizer":
        optimizer.zero_grad()  # set_to_none=True by default: .grad becomes None
    elif clear == "model":
        net.zero_grad()  # also set_to_none=True by default
    elif clear == "zeros":
        optimizer.zero_grad(set_to_none=False)  # the same tensors, filled with 0
    elif clear == "loop":
        for p in net.parameters():
            p.grad = None
    elif clear != "nothing":
        raise ValueError(f"unknown clear {clear!r}; valid: {', '.join(CLEAR_CHOICES)}")


def in_units_of(grad, g1):
    """``grad`` described as a whole multiple of one pass's gradient ``g1``, up to float
    rounding (``torch.allclose``: k passes need not be ``k * g1`` bit for bit)."""
    if grad is None:
        return "None"
    if not torch.any(grad):
        return "zeros"
    for multiple in range(1, 10):
        if torch.allclose(grad, multiple * g1):
            return "g1" if multiple == 1 else f"{multiple} × g1"
    return "other"


def note_multiples(ctx, g1, column="grad vs g1"):
    """Add a table column: each parameter's grad as a multiple of ``g1``."""
    ctx.note(column, {name: in_units_of(p.grad, g1[name])
                      for name, p in ctx.net.named_parameters()})


def zero_grad_step(ctx, clear="optimizer", passes=1, optimizer_has="all"):
    """Stale grads from the previous iteration, clear, ``passes`` x forward+backward, step."""
    optimizer = make_sgd(ctx.net, optimizer_has)
    g1 = leave_stale_grads(ctx)
    clear_grads(ctx.net, optimizer, clear)
    ctx.note_grads("grad after clearing")
    for _ in range(passes):
        forward_backward(ctx)
    note_multiples(ctx, g1)
    optimizer.step()


ZERO_GRAD = register(Mechanism(
    name="zero_grad",
    title="Clearing gradients before backward",
    step=zero_grad_step,
    options=(
        Option("clear", CLEAR_CHOICES, "optimizer",
               "How the grads the previous iteration left are cleared before backward"),
        Option("passes", PASSES_CHOICES, 1,
               "How many forward+backward passes run before optimizer.step()"),
        Option("optimizer_has", OPTIMIZER_CHOICES, "all",
               "Which parameters the optimizer was given"),
    ),
    notebook="01_zero_grad",
    summary="backward() adds into .grad; zero_grad() sets it to None (by default), and "
            "optimizer.zero_grad() clears only the optimizer's parameters.",
))


def multiples_table():
    """Static view of the accumulation: l1.weight and l2.weight grads, in units of ``g1``,
    for every (optimizer_has, clear) row and every number of backward passes."""
    columns = ["optimizer has", "clear"] + [f"grad after {k} pass{'es' * (k != 1)}"
                                            for k in PASSES_CHOICES]
    rows = []
    for optimizer_has in OPTIMIZER_CHOICES:
        for clear in CLEAR_CHOICES:
            row = [optimizer_has, clear]
            for passes in PASSES_CHOICES:
                outcome = cached_outcome("zero_grad", (("clear", clear), ("passes", passes),
                                                       ("optimizer_has", optimizer_has)))
                l1, l2 = (outcome.params[n].extra["grad vs g1"]
                          for n in ("l1.weight", "l2.weight"))
                row.append(l1 if l1 == l2 else f"{l1} (l1) | {l2} (l2)")
            rows.append(row)
    caption = ("l1.weight and l2.weight grads before optimizer.step(), as multiples of g1 "
               "(the gradient of one pass), up to float rounding; the biases match their "
               "weights")
    return Table(columns, rows, caption=caption)


# ----- exercises (notebook 01_zero_grad) ---------------------------------------------------


@exercise("01.1", why="optimizer.zero_grad() clears only the optimizer's parameters (l2): "
                      "l1 is never cleared, so each of the 3 backward passes adds one more g1.")
def l1_multiple_after_three_iterations():
    net = toy_net()
    x, y = toy_batch()
    optimizer = torch.optim.SGD(net.l2.parameters(), lr=LEARNING_RATE)
    toy_loss(net(x), y).backward()
    g1 = net.l1.weight.grad.clone()
    net.zero_grad()
    for _ in range(3):
        optimizer.zero_grad()
        toy_loss(net(x), y).backward()
    for multiple in range(1, 10):
        if torch.allclose(net.l1.weight.grad, multiple * g1):
            return multiple
    raise AssertionError("l1.weight.grad is not a whole multiple of g1")


ZERO_GRAD_CALLS = {
    "optimizer.zero_grad()": lambda net, opt: opt.zero_grad(),
    "model.zero_grad()": lambda net, opt: net.zero_grad(),
    "optimizer.zero_grad(set_to_none=False)": lambda net, opt: opt.zero_grad(set_to_none=False),
    "model.zero_grad(set_to_none=False)": lambda net, opt: net.zero_grad(set_to_none=False),
}


@exercise("01.2", why="Since PyTorch 2.0 both zero_grad() methods default to set_to_none=True "
                      "and leave .grad as None (model.zero_grad() too: that it zeros in place "
                      "is a myth); only set_to_none=False keeps a tensor of zeros.")
def calls_that_leave_none():
    x, y = toy_batch()
    leave_none = set()
    for label, call in ZERO_GRAD_CALLS.items():
        net = toy_net()
        optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
        toy_loss(net(x), y).backward()
        call(net, optimizer)
        if all(p.grad is None for p in net.parameters()):
            leave_none.add(label)
    return frozenset(leave_none)


@exercise("01.3", why="Each micro-batch loss divided by k = 4: the four equal-sized "
                      "micro-batches' gradients add up to the gradient of the mean loss over the "
                      "whole batch (up to float rounding). Without the / 4 the grad is 4 times "
                      "too large.")
def full_batch_l1_grad():
    net = toy_net()
    x, y = toy_batch()
    toy_loss(net(x), y).backward()
    return net.l1.weight.grad.clone()


__all__ = ["ZERO_GRAD", "CLEAR_CHOICES", "PASSES_CHOICES", "OPTIMIZER_CHOICES",
           "make_sgd", "forward_backward", "leave_stale_grads", "clear_grads",
           "in_units_of", "note_multiples", "zero_grad_step", "multiples_table"]
