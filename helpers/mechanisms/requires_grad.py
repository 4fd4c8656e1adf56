"""requires_grad: freezing layers with ``requires_grad_(False)`` (notebook 02).

A frozen parameter gets no new gradient (on a fresh network ``.grad`` stays ``None``; freezing
does not clear a grad it already holds). Autograd records an operation only if one of its inputs
requires grad, so a frozen *first* layer fed the batch (which does not require grad) leaves no
trace in the graph, while a frozen *later* layer stays in it and passes gradients through to the
layers before it.
"""

import torch

from ..autograd_walk import reachable_leaves
from ..exercises import Hint, exercise
from ..outcome import params_with_grad_none
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, toy_batch, toy_loss, toy_net

FROZEN_CHOICES = {
    "none": "nothing frozen",
    "l1": "freeze l1",
    "l2": "freeze l2",
    "both": "freeze l1 and l2",
}


def layers_named(net, frozen):
    """The layers of the toy ``net`` that the option value ``frozen`` names."""
    return {"none": [], "l1": [net.l1], "l2": [net.l2], "both": [net.l1, net.l2]}[frozen]


def freeze_layers(net, frozen):
    """``requires_grad_(False)`` on the layers ``frozen`` names: "none", "l1", "l2" or "both"."""
    for layer in layers_named(net, frozen):
        layer.requires_grad_(False)


def trainable_parameters(net):
    """The parameters that still require grad: the ones to give the optimizer."""
    return [p for p in net.parameters() if p.requires_grad]


def note_in_graph(ctx, loss):
    """Add a table column: does each parameter have an ``AccumulateGrad`` node in the graph?

    Those are exactly the leaves ``loss.backward()`` will write a ``.grad`` into.
    """
    leaves = reachable_leaves(loss)
    ctx.note("in graph", {name: "yes" if any(p is leaf for leaf in leaves) else "no"
                          for name, p in ctx.net.named_parameters()})


def requires_grad_step(ctx, frozen="none"):
    """Notebook 02's recipe: freeze some layers, build an SGD optimizer over the trainable
    parameters, then forward, backward and step.

    The net is fresh, so there are no old gradients to clear. When everything is frozen, the
    recipe stops where a learner's code would: the optimizer, given an empty parameter list,
    raises a ValueError before any forward pass (``backward()`` would raise next, as nothing
    the loss depends on requires grad).
    """
    freeze_layers(ctx.net, frozen)
    optimizer = torch.optim.SGD(trainable_parameters(ctx.net), lr=LEARNING_RATE)
    loss = ctx.loss_of(ctx.net(ctx.x))
    note_in_graph(ctx, loss)
    loss.backward()
    optimizer.step()


CAPTIONS = {
    "none": "plain step",
    "l1": "L1 frozen (requires_grad_(False)): L1 not recorded",
    "l2": "L2 frozen (requires_grad_(False)): L2 still recorded",
    "both": "L1 and L2 frozen (requires_grad_(False)): nothing to train",
}

PREDICTIONS = {
    "frozen=none": "Nothing is frozen, so backward() reaches all four parameters, as in the "
                   "plain step.",
    "frozen=l1": "Neither l1's parameters nor the batch x require grad, so l1's operation is "
                 "not recorded at all and backward() has no path to them. l2 trains as usual.",
    "frozen=l2": "Only the frozen parameters stay None. l2's operation is still recorded "
                 "because its input (the ReLU output) requires grad, so the gradient flows "
                 "through l2 into l1.",
    "frozen=both": "With every parameter frozen, the optimizer over the trainable parameters "
                   "gets an empty list and raises before any forward pass; without it, "
                   "backward() would raise next, as nothing the loss depends on requires grad.",
}

REQUIRES_GRAD = register(Mechanism(
    name="requires_grad",
    title="Freezing layers with requires_grad_(False)",
    step=requires_grad_step,
    options=(
        Option("frozen", FROZEN_CHOICES, "none",
               "Which layer is frozen with requires_grad_(False)?"),
    ),
    notebook="02_requires_grad",
    summary="Frozen parameters get no gradient (.grad None on a fresh net) and do not move; a "
            "frozen later layer still passes gradients through to earlier layers; with "
            "everything frozen the optimizer gets an empty parameter list and raises (and "
            "backward() would raise too).",
    predictions=PREDICTIONS,
    caption=lambda options: CAPTIONS[options["frozen"]],
))


# Exercises of notebook 02. Each function computes the expected answer with plain PyTorch.

def _grads_none_after(freeze):
    """Names of the toy net's parameters whose grad is None after one backward, with the tensors
    named in ``freeze`` frozen."""
    net, (x, y) = toy_net(), toy_batch()
    for name in freeze:
        net.get_parameter(name).requires_grad_(False)
    toy_loss(net(x), y).backward()
    return params_with_grad_none(net)


exercise("02.1", why="Freezing works per tensor: only l1.weight stops requiring grad. l1's "
                  "matmul is still recorded because l1.bias requires grad, so the other three "
                  "parameters all get gradients.",
         hints=(Hint(lambda: _grads_none_after(["l1.weight", "l1.bias"]),
                     "That is what freezing the whole layer l1 gives. Here only one tensor is "
                     "frozen: does l1.bias still require grad?"),
                ))(lambda: _grads_none_after(["l1.weight"]))


def _l2_bias_grad_is_none(unfreeze_before_forward):
    """Freeze ``l2.bias``, unfreeze it before or after the forward pass, run backward: is its
    grad None?"""
    net, (x, y) = toy_net(), toy_batch()
    net.l2.bias.requires_grad_(False)
    if unfreeze_before_forward:
        net.l2.bias.requires_grad_(True)
    loss = toy_loss(net(x), y)
    net.l2.bias.requires_grad_(True)
    loss.backward()
    return net.l2.bias.grad is None


def _requires_grad_keeps_grad():
    """Does flipping ``requires_grad`` off and on leave a grad the parameter holds alone?"""
    net, (x, y) = toy_net(), toy_batch()
    toy_loss(net(x), y).backward()
    held = net.l2.bias.grad
    net.l2.bias.requires_grad_(False)
    net.l2.bias.requires_grad_(True)
    return net.l2.bias.grad is held


def _why_l2_bias_grad_is_none():
    """The letter of 02.2's true statement, each statement tested on PyTorch."""
    true = {
        "a": _l2_bias_grad_is_none(unfreeze_before_forward=False),  # frozen while recorded
        "b": _l2_bias_grad_is_none(unfreeze_before_forward=True),   # skipped if frozen earlier
        "c": not _requires_grad_keeps_grad(),                       # requires_grad_ clears grad
    }
    return "".join(letter for letter, holds in true.items() if holds)


exercise("02.2", why="a: the forward pass recorded l2's operation while l2.bias was frozen, so "
                  "the graph has no AccumulateGrad node for it, and backward() has nowhere to "
                  "write its gradient. Unfreezing later does not add one: unfreeze before the "
                  "forward pass.",
         hints=(Hint(lambda: "b", "Try it: freeze l2.bias, unfreeze it, and only then run the "
                                  "forward pass and backward(). Is l2.bias skipped?"),
                Hint(lambda: "c", "Try it on a parameter that already has a gradient: does "
                                  "requires_grad_(True) touch its .grad?"),
                ))(_why_l2_bias_grad_is_none)


def _trainable_numbers(frozen, only_trainable=True):
    net = toy_net()
    freeze_layers(net, frozen)
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not only_trainable)


exercise("02.3", why="With l1 frozen only l2 trains: its weight (1 x 3) and bias (1) hold 4 "
                  "numbers. Counting trainable numbers is the usual check after freezing a "
                  "backbone.",
         hints=(Hint(lambda: _trainable_numbers("l1", only_trainable=False),
                     "That counts every parameter, frozen or not: keep only those with "
                     "p.requires_grad."),
                Hint(lambda: _trainable_numbers("l2"),
                     "That counts l1's numbers, the frozen ones: count the layer that still "
                     "trains."),
                ))(lambda: _trainable_numbers("l1"))
