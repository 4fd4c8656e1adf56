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
from torch import nn

from ..exercises import Hint, exercise
from ..grad_table import Table
from ..outcome import grad_state
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


CAPTION_CLEAR = {"nothing": "no clearing", "optimizer": "optimizer.zero_grad()",
                 "model": "model.zero_grad()", "zeros": "zero_grad(set_to_none=False)",
                 "loop": "p.grad = None loop"}


def zero_grad_caption(options):
    """The graph's title in words: how the grads were cleared, how many backward passes
    followed, which parameters the optimizer holds."""
    passes = options["passes"]
    backward = "no backward" if passes == 0 else f"{passes} backward pass{'es' * (passes > 1)}"
    holds = "all parameters" if options["optimizer_has"] == "all" else "only l2"
    return f"{CAPTION_CLEAR[options['clear']]}, {backward}; optimizer holds {holds}"


# Predict-first explanations (key: helpers.registry.prediction_key of the resolved options):
# the defaults, each one-option change, and the states notebooks 01 and 10 ask about.
PREDICTIONS = {
    "clear=optimizer, passes=1, optimizer_has=all":
        "optimizer.zero_grad() sets all four grads to None, then the backward pass fills each "
        "again with this batch's gradient.",
    "clear=nothing, passes=1, optimizer_has=all":
        "Without clearing, the stale gradient stays and the backward pass adds to it: every "
        "grad holds two passes' worth (2 × g1).",
    "clear=model, passes=1, optimizer_has=all":
        "model.zero_grad() sets all four grads to None, then the backward pass fills each "
        "again.",
    "clear=zeros, passes=1, optimizer_has=all":
        "set_to_none=False leaves tensors of zeros, not None; the backward pass adds this "
        "batch's gradient into them.",
    "clear=loop, passes=1, optimizer_has=all":
        "The loop sets every grad to None, as model.zero_grad() does; the backward pass fills "
        "them again.",
    "clear=optimizer, passes=0, optimizer_has=all":
        "optimizer.zero_grad() sets all four grads to None (set_to_none=True is the default), "
        "and no backward runs to fill them again.",
    "clear=optimizer, passes=2, optimizer_has=all":
        "optimizer.zero_grad() sets all four to None; the first backward fills them, the "
        "second adds to them (2 × g1).",
    "clear=optimizer, passes=3, optimizer_has=all":
        "optimizer.zero_grad() sets all four to None; three backward passes fill them and add "
        "twice more (3 × g1).",
    "clear=optimizer, passes=1, optimizer_has=l2":
        "optimizer.zero_grad() clears only the optimizer's parameters (l2's): the backward "
        "pass fills l2's grads again and adds into l1's stale ones (2 × g1).",
    "clear=optimizer, passes=0, optimizer_has=l2":
        "optimizer.zero_grad() sets .grad to None (not zeros), and only for the parameters the "
        "optimizer holds: l1's stale gradient is untouched.",
    "clear=model, passes=0, optimizer_has=all":
        "All four: model.zero_grad() sets .grad to None by default (since PyTorch 2.0), as "
        "optimizer.zero_grad() does, and no backward runs after it to fill them again. If you "
        "ticked none, you expected zeros: zero_grad(set_to_none=False) would leave them.",
}


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
    predictions=PREDICTIONS,
    caption=zero_grad_caption,
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


@exercise("01.1", why="optimizer.zero_grad() clears only its own parameters (l1's): l2 is "
                      "never cleared, so l2.bias.grad adds up all 5 backward passes.",
          hints=(Hint(lambda: iterations_in_l2_bias_grad(clear_model=True),
                      "That is what model.zero_grad() would give. Which parameters does "
                      "optimizer.zero_grad() clear, and is l2 among them?"),))
def iterations_in_l2_bias_grad(clear_model=False, iterations=5):
    """Exercise 01.1's loop (optimizer over l1 only; zero_grad, forward, backward, step):
    how many iterations' gradients ``l2.bias.grad`` sums at the end. ``clear_model``: the
    mistake of thinking ``optimizer.zero_grad()`` clears every parameter."""
    net, (x, y) = toy_net(), toy_batch()
    optimizer = torch.optim.SGD(net.l1.parameters(), lr=LEARNING_RATE)
    each = []
    for _ in range(iterations):
        net.zero_grad() if clear_model else optimizer.zero_grad()
        loss = toy_loss(net(x), y)
        each.append(torch.autograd.grad(loss, net.l2.bias, retain_graph=True)[0])
        loss.backward()
        optimizer.step()
    for k in range(1, iterations + 1):
        if torch.allclose(net.l2.bias.grad, sum(each[-k:])):
            return k
    raise AssertionError("l2.bias.grad is not the sum of the last iterations' gradients")


ZERO_GRAD_CALLS = {
    "optimizer.zero_grad()": lambda net, opt: opt.zero_grad(),
    "model.zero_grad()": lambda net, opt: net.zero_grad(),
    "optimizer.zero_grad(set_to_none=False)": lambda net, opt: opt.zero_grad(set_to_none=False),
    "model.zero_grad(set_to_none=False)": lambda net, opt: net.zero_grad(set_to_none=False),
}


def grad_states_after(l1_call, l2_call):
    """Exercise 01.2's code with the two clearing calls given: each .grad's state."""
    net, (x, y) = toy_net(), toy_batch()
    optimizer = torch.optim.SGD(net.l1.parameters(), lr=LEARNING_RATE)
    toy_loss(net(x), y).backward()
    l1_call(optimizer)
    l2_call(net.l2)
    return {name: grad_state(p.grad) for name, p in net.named_parameters()}


@exercise("01.2", why="optimizer.zero_grad(set_to_none=False) zeros the grads of the "
                      "optimizer's parameters (l1's) in place; net.l2.zero_grad() defaults to "
                      "set_to_none=True and leaves l2's grads None.",
          hints=(Hint(lambda: grad_states_after(lambda o: o.zero_grad(set_to_none=False),
                                                lambda m: m.zero_grad(set_to_none=False)),
                      "Module.zero_grad() does not zero in place by default: it has the same "
                      "set_to_none=True default as optimizer.zero_grad()."),
                 Hint(lambda: grad_states_after(lambda o: None, lambda m: m.zero_grad()),
                      "optimizer.zero_grad(set_to_none=False) does clear l1's grads: it keeps "
                      "the tensors and fills them with 0.")))
def grad_states_after_mixed_clearing():
    return grad_states_after(lambda o: o.zero_grad(set_to_none=False),
                             lambda m: m.zero_grad())


def accumulated_sum_losses(scale):
    """Exercise 01.3's loop: l1.weight.grad after 4 micro-batches of 2, each sum loss * scale."""
    net, (x, y) = toy_net(), toy_batch()
    for xb, yb in zip(x.split(2), y.split(2)):
        (nn.functional.mse_loss(net(xb), yb, reduction="sum") * scale).backward()
    return net.l1.weight.grad


@exercise("01.3", why="(loss / 8).backward(): the four micro-batch sums add up to the sum over "
                      "all 8 examples, and the whole batch's mean divides that sum by 8 (up to "
                      "float rounding).",
          hints=(Hint(lambda: accumulated_sum_losses(1 / 4),
                      "Dividing by the number of micro-batches is right for mean losses. These "
                      "are sums: what does the whole batch's mean divide by?"),
                 Hint(lambda: accumulated_sum_losses(1.0),
                      "Unscaled, the four sums add up to the sum over all examples, not the "
                      "mean.")))
def full_batch_l1_grad():
    net = toy_net()
    x, y = toy_batch()
    toy_loss(net(x), y).backward()
    return net.l1.weight.grad.clone()


@exercise("01.4", why="optimizer.zero_grad() sets .grad to None by default, and here it runs "
                      "before the logging line. Clearing after step() is fine for training; "
                      "read the gradient between backward() and zero_grad().",
          hints=(Hint(lambda: "a", "The optimizer was built from net.parameters(), so l1 is in "
                      "it. Print net.l1.weight.grad right after backward()."),
                 Hint(lambda: "b", "step() reads .grad and leaves it as it was: print "
                      "net.l1.weight.grad between step() and zero_grad().")))
def logging_after_zero_grad_cause():
    """Run exercise 01.4's loop once; name why the logged grad is None: "a" (l1 not in the
    optimizer), "b" (step() reset it), "c" (zero_grad ran before the logging line)."""
    net, (x, y) = toy_net(), toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    if not any(p is net.l1.weight for group in optimizer.param_groups for p in group["params"]):
        return "a"
    toy_loss(net(x), y).backward()
    after_backward = net.l1.weight.grad.clone()
    optimizer.step()
    if net.l1.weight.grad is None or not torch.equal(net.l1.weight.grad, after_backward):
        return "b"
    optimizer.zero_grad()
    assert net.l1.weight.grad is None
    return "c"


__all__ = ["ZERO_GRAD", "CLEAR_CHOICES", "PASSES_CHOICES", "OPTIMIZER_CHOICES",
           "make_sgd", "forward_backward", "leave_stale_grads", "clear_grads",
           "in_units_of", "note_multiples", "zero_grad_step", "multiples_table"]
