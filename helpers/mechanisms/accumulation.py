"""Gradient accumulation over micro-batches, against one big batch (notebook 12_at_scale).

The toy batch of 8 examples is split into micro-batches (``split``); each micro-batch's loss is
reduced and scaled as ``reduction`` says and backpropagated, so ``.grad`` adds them up; then one
optimizer step. With ``norm="batchnorm"`` the hidden layer is normalised with the statistics of
the batch it sees (``F.batch_norm`` in training mode, no affine parameters, so the toy net keeps
its four parameters). The extra table column is each parameter's relative distance
``||g_accumulated - g_big|| / ||g_big||`` from the gradient of the whole batch at once, under the
same normalisation.
"""

import copy

import torch
from torch.nn import functional as F

from ..exercises import Hint, exercise
from ..grad_table import grid_table
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_net

SPLITS = {"8": "one batch of 8", "4+4": "4 + 4", "6+2": "6 + 2", "3+3+2": "3 + 3 + 2"}
REDUCTIONS = {
    "mean": "mean, added up",
    "mean/k": "mean / k",
    "weighted": "mean × n_i / N",
    "sum/N": "sum / N",
}
NORMS = {"none": "none", "batchnorm": "BatchNorm"}
COLUMN = "distance from big batch"
ROUNDING = 1e-5  # relative distances below this are float rounding (fact 43), shown as 0


def sizes_of(split):
    """``"6+2"`` -> ``[6, 2]``; a ValueError names the valid splits."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return [int(part) for part in split.split("+")]


def forward_with_norm(net, x, norm="none"):
    """The toy net's forward, with the hidden layer batch-normalised if ``norm="batchnorm"``."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    hidden = torch.relu(net.l1(x))
    if norm == "batchnorm":
        hidden = F.batch_norm(hidden, None, None, training=True)  # this batch's mean and var
    return net.l2(hidden)


def micro_batch_loss(output, target, reduction, k, total):
    """The loss one micro-batch backpropagates, reduced and scaled as ``reduction`` says.

    ``k`` is the number of micro-batches, ``total`` the number of examples in all of them.
    """
    if reduction == "mean":
        return F.mse_loss(output, target)                      # k times too big if equal
    if reduction == "mean/k":
        return F.mse_loss(output, target) / k                  # right only for equal sizes
    if reduction == "weighted":
        return F.mse_loss(output, target) * len(target) / total
    if reduction == "sum/N":
        return F.mse_loss(output, target, reduction="sum") / total
    raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")


def accumulate_micro_batches(net, x, y, split, reduction, norm="none"):
    """Backpropagate every micro-batch of ``split`` into ``net``'s grads; return the last loss."""
    sizes = sizes_of(split)
    loss = None
    for xb, yb in zip(x.split(sizes), y.split(sizes)):
        output = forward_with_norm(net, xb, norm)
        loss = micro_batch_loss(output, yb, reduction, len(sizes), len(x))
        loss.backward()
    return loss


def big_batch_grads(net, x, y, norm="none"):
    """``{name: gradient}`` of the mean loss over the whole batch, on a copy of ``net``."""
    twin = copy.deepcopy(net)
    loss = F.mse_loss(forward_with_norm(twin, x, norm), y)
    return dict(zip(PARAM_NAMES, torch.autograd.grad(loss, list(twin.parameters()))))


def relative_distance(grad, reference):
    """``||grad - reference|| / ||reference||`` (the absolute distance if the reference is 0)."""
    scale = float(reference.norm())
    gap = float((grad - reference).norm())
    return gap / scale if scale else gap


def format_distance(value):
    """``"0"`` below :data:`ROUNDING`, else a percentage with one decimal."""
    return "0" if value < ROUNDING else f"{value:.1%}"


def accumulation_step(ctx, split="6+2", reduction="mean/k", norm="none"):
    """zero_grad, one backward per micro-batch, step; notes each grad's distance from the
    big batch's."""
    reference = big_batch_grads(ctx.net, ctx.x, ctx.y, norm)
    optimizer = torch.optim.SGD(ctx.net.parameters(), lr=LEARNING_RATE)
    optimizer.zero_grad()
    ctx.loss = accumulate_micro_batches(ctx.net, ctx.x, ctx.y, split, reduction, norm)
    ctx.note(COLUMN, {name: format_distance(relative_distance(p.grad, reference[name]))
                      for name, p in ctx.net.named_parameters()})
    optimizer.step()


ACCUMULATION = register(Mechanism(
    name="accumulation",
    title="Gradient accumulation over micro-batches",
    step=accumulation_step,
    options=(
        Option("split", SPLITS, "6+2", "Micro-batch sizes (the batch has 8 examples)"),
        Option("reduction", REDUCTIONS, "mean/k", "How each micro-batch's loss is scaled"),
        Option("norm", NORMS, "none", "Normalise the hidden layer with batch statistics?"),
    ),
    notebook="12_at_scale",
    summary="Accumulated micro-batch gradients equal the big batch's (up to rounding) when every "
            "example gets the same weight: mean × n_i / N or sum / N for every split, mean / k "
            "only for equal sizes. BatchNorm's per-micro-batch statistics break the equality.",
    in_comparison=False,
    caption=lambda o: (("one batch of 8" if o["split"] == "8" else
                        f"micro-batches {SPLITS[o['split']]}, loss {REDUCTIONS[o['reduction']]}")
                       + (", BatchNorm" if o["norm"] == "batchnorm" else "")),
))


def accumulation_distances(split, reduction, norm):
    """``{name: relative distance}`` of accumulated from big-batch grads on a fresh toy net."""
    net = toy_net()
    x, y = toy_batch()
    reference = big_batch_grads(net, x, y, norm)
    accumulate_micro_batches(net, x, y, split, reduction, norm)
    return {name: relative_distance(p.grad, reference[name])
            for name, p in net.named_parameters()}


def accumulation_table():
    """Every split × reduction × norm: the largest relative distance from the big batch."""
    def cells(norm, split, reduction):
        worst = max(accumulation_distances(split, reduction, norm).values())
        return format_distance(worst), "yes" if worst < ROUNDING else "no"
    return grid_table({"norm": NORMS, "split": SPLITS, "reduction": REDUCTIONS}, cells,
                      ["largest distance", "same as big batch"],
                      caption="accumulation: largest relative distance of any parameter's "
                              "gradient from the big batch's (0 = equal up to float rounding)",
                      shown=("split", "reduction", "norm"))


# --- Exercises of notebook 12_at_scale ------------------------------------------------------

@exercise("12.1", why="Each example should weigh 1/N = 1/8 in the big batch's mean. The "
                      "2-example micro-batch's mean weighs each of its examples 1/2, so it must "
                      "be multiplied by 2/8 = 0.25 (and the 6-example one by 6/8). "
                      "Dividing by k = 2 would give 0.5: its two examples would count too much.",
          hints=(Hint(lambda: 1 / len(sizes_of("6+2")),
                      "1/k weighs the two micro-batches equally, but one holds 6 examples and "
                      "the other 2. What weight does each example get in the big batch?"),))
def weight_of_small_micro_batch():
    x, y = toy_batch()
    big = big_batch_grads(toy_net(), x, y)
    for weight in (0.5, 0.25, 1 / 8, 1.0):  # search a few candidates, keep the one that matches
        net = toy_net()
        (F.mse_loss(net(x[:6]), y[:6]) * 6 / 8).backward()
        (F.mse_loss(net(x[6:]), y[6:]) * weight).backward()
        if all(torch.allclose(p.grad, big[n], atol=1e-7) for n, p in net.named_parameters()):
            return weight
    raise AssertionError("no candidate weight matched the big batch")


@exercise("12.3", why="An inf in a gradient makes scaler.step() skip optimizer.step() (the "
                      "parameters do not move) and scaler.update() multiply the scale by its "
                      "backoff_factor, 0.5 by default: 1024 becomes 512. The scale grows again "
                      "(x2) only after growth_interval (2000) steps in a row without inf or NaN.",
          hints=(Hint(lambda: 1024.0, "The step was skipped, but the scale did not stay the "
                                      "same: what does scaler.update() do after an inf?"),
                 Hint(lambda: 2048.0, "The scale grows only after many steps without inf or "
                                      "NaN; this step had an inf."),))
def scale_after_overflow():
    net = toy_net()
    x, y = toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale(F.mse_loss(net(x), y)).backward()
    net.l1.weight.grad[0, 0] = float("inf")
    scaler.step(optimizer)
    scaler.update()
    return float(scaler.get_scale())
