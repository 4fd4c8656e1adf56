"""control: a plain training step, the baseline every mechanism is compared with."""

import torch

from ..autograd_walk import reachable_leaves
from ..exercises import Hint, exercise
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, toy_batch, toy_loss, toy_net


def control_step(ctx, optimizer_step="yes", input_grad="no"):
    """zero_grad, forward, backward, step: the standard loop body."""
    optimizer = torch.optim.SGD(ctx.net.parameters(), lr=LEARNING_RATE)
    optimizer.zero_grad()
    x = ctx.x.requires_grad_(True) if input_grad == "yes" else ctx.x
    ctx.loss_of(ctx.net(x)).backward()
    if optimizer_step == "yes":
        optimizer.step()


def control_caption(options):
    """The graph's title in words: "plain step", plus what the options change."""
    words = ["plain step"]
    if options["optimizer_step"] == "no":
        words.append("no optimizer.step()")
    if options["input_grad"] == "yes":
        words.append("input x requires grad")
    return ", ".join(words)


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
    predictions={
        "optimizer_step=yes, input_grad=no":
            "Every parameter requires grad and the loss depends on all four, so backward() "
            "reaches each of them and fills every .grad.",
        "optimizer_step=no, input_grad=no":
            "Skipping optimizer.step() changes no gradient: backward() has already filled all "
            "four .grad; only the update is missing.",
        "optimizer_step=yes, input_grad=yes":
            "An input that requires grad adds one more leaf to the graph; the four parameters "
            "still each get their gradient.",
        "optimizer_step=no, input_grad=yes":
            "backward() fills all four .grad (and x.grad); without optimizer.step() the "
            "parameters keep their values.",
    },
    caption=control_caption,
))


# ----- exercises (notebook 00_start_here) -------------------------------------------------


def linear_grad_shapes():
    """A Linear(5, 2) after backward on a batch of 7: (weight.grad, output, input) shapes."""
    with torch.random.fork_rng():  # leave the caller's random state alone
        layer = torch.nn.Linear(5, 2)
        batch = torch.randn(7, 5)
    out = layer(batch)
    out.sum().backward()
    return tuple(layer.weight.grad.shape), tuple(out.shape), tuple(batch.shape)


@exercise("00.1", why="A gradient has its parameter's shape, and nn.Linear(5, 2) stores its "
          "weight as (out_features, in_features) = (2, 5); the batch size is not in it.",
          hints=(Hint(lambda: linear_grad_shapes()[0][::-1],
                      "nn.Linear(in_features, out_features) stores its weight the other way "
                      "round: print(torch.nn.Linear(5, 2).weight.shape)."),
                 Hint(lambda: linear_grad_shapes()[1],
                      "That is the shape of the layer's output. A gradient has the shape of "
                      "the tensor it belongs to, here the weight."),
                 Hint(lambda: linear_grad_shapes()[2],
                      "That is the shape of the input batch. A gradient has the shape of the "
                      "tensor it belongs to, here the weight.")))
def weight_grad_shape():
    return linear_grad_shapes()[0]


def l2_bias_grad_by_hand(reduce):
    """2 * reduce(out - y) on the fresh toy net: the MSE's l2.bias gradient when reduce is
    the reduction the loss uses (mean or sum)."""
    net, (x, y) = toy_net(), toy_batch()
    with torch.no_grad():
        return (2 * reduce(net(x) - y)).item()


@exercise("00.2", why="Each example contributes 2 · (out - y) to l2.bias's gradient, and a sum "
          "does not divide by the 8 examples: (2 * (out - y).sum()).item().",
          hints=(Hint(lambda: l2_bias_grad_by_hand(torch.mean),
                      "That is the gradient of the mean. A sum does not divide by the number "
                      "of examples."),
                 Hint(lambda: l2_bias_grad_by_hand(torch.sum) / 2,
                      "The derivative of (out - y)² is 2 · (out - y): the factor 2 is "
                      "missing.")))
def l2_bias_grad_of_sum():
    net, (x, y) = toy_net(), toy_batch()
    ((net(x) - y) ** 2).sum().backward()
    return net.l2.bias.grad.item()


# 00.3's wrong letters: "a" (scale does not require grad), "c" (scale is not a leaf).
ITEM_HINTS = {"a": "print(scale.requires_grad): an nn.Parameter requires grad.",
              "c": "print(scale.is_leaf): you created scale, no operation made it, so it is a "
                   "leaf."}


@exercise("00.3", why="scale.item() is a plain Python number: the multiplication that follows "
          "cannot record scale, so the loss's graph has no AccumulateGrad node for it and "
          "backward() never reaches it. Multiply by the tensor itself: net(x) * scale.",
          hints=tuple(Hint(lambda letter=letter: letter, f"{text} Look at what .item() returns.")
                      for letter, text in ITEM_HINTS.items()))
def item_scale_cause():
    """Run 00.3's code; name why scale.grad is None: "a" (scale does not require grad), "b"
    (no AccumulateGrad for it in the loss's graph: .item() left the graph), "c" (scale is
    not a leaf)."""
    net, (x, y) = toy_net(), toy_batch()
    scale = torch.nn.Parameter(torch.tensor(2.0))
    loss = toy_loss(net(x) * scale.item(), y)
    loss.backward()
    assert scale.grad is None and net.l2.bias.grad is not None
    if not scale.requires_grad:
        return "a"
    if not scale.is_leaf:
        return "c"
    assert not any(leaf is scale for leaf in reachable_leaves(loss))
    return "b"
