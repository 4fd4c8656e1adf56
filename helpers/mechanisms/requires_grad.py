"""requires_grad: freezing layers with ``requires_grad_(False)`` (notebook 02).

A frozen parameter gets no new gradient (on a fresh network ``.grad`` stays ``None``; freezing
does not clear a grad it already holds). Autograd records an operation only
if one of its inputs requires grad, so a frozen *first* layer leaves no trace in the graph, while
a frozen *later* layer stays in it and passes gradients through to the layers before it.
"""

import torch

from ..autograd_walk import reachable_leaves
from ..exercises import exercise
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


REQUIRES_GRAD = register(Mechanism(
    name="requires_grad",
    title="Freezing layers with requires_grad_(False)",
    step=requires_grad_step,
    options=(
        Option("frozen", FROZEN_CHOICES, "none",
               "Which layer is frozen with requires_grad_(False)?"),
    ),
    notebook="02_requires_grad",
    summary="Frozen parameters keep .grad None and do not move; a frozen later layer still "
            "passes gradients through to earlier layers; with everything frozen the optimizer "
            "gets an empty parameter list and raises (and backward() would raise too).",
))


# Exercises of notebook 02. Each function computes the expected answer with plain PyTorch.

def _loss_with_one_tensor_frozen(name):
    """A fresh toy net whose parameter ``name`` (e.g. "l1.weight") alone is frozen, and its loss."""
    net, (x, y) = toy_net(), toy_batch()
    net.get_parameter(name).requires_grad_(False)
    return net, toy_loss(net(x), y)


@exercise("02.1", why="Freezing works per tensor: only l1.weight stops requiring grad. l1's "
                      "matmul is still recorded because l1.bias requires grad, so the other "
                      "three parameters all get gradients.")
def _grads_none_with_l1_weight_frozen():
    net, loss = _loss_with_one_tensor_frozen("l1.weight")
    loss.backward()
    return params_with_grad_none(net)


@exercise("02.2", why="Freezing works per tensor: only l2.weight loses its AccumulateGrad node "
                      "(not 2: l2.bias still requires grad and keeps its node). l1.weight, "
                      "l1.bias and l2.bias have one each.")
def _accumulate_grad_node_count_with_l2_weight_frozen():
    _, loss = _loss_with_one_tensor_frozen("l2.weight")
    return len(reachable_leaves(loss))


@exercise("02.3", why="With l1 frozen only l2 trains: its weight (1 x 3) and bias (1) hold 4 "
                      "numbers. Counting trainable numbers is the usual check after freezing a "
                      "backbone.")
def _trainable_numbers_with_l1_frozen():
    net = toy_net()
    net.l1.requires_grad_(False)
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
