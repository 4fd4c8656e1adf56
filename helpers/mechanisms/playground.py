"""playground: combine the mechanisms in one step (notebook 08_compare_all).

Each option is an independent knob, and each knob is one sibling mechanism's own building block:

- ``freeze``: :func:`helpers.mechanisms.requires_grad.freeze_layers`
  (``requires_grad_(False)``);
- ``no_grad``: :func:`helpers.mechanisms.no_grad.layer_forward` runs L1 + ReLU under
  ``torch.no_grad()``;
- ``inference``: :func:`helpers.mechanisms.inference_mode.first_half` runs L1 + ReLU under
  ``torch.inference_mode()`` (inside the ``no_grad`` block when both are on);
- ``detach``: ``.detach()`` on L1's output (the cut of :mod:`helpers.mechanisms.detach`);
- ``optimizer``: the parameter groups of :func:`helpers.mechanisms.optimizer_subsets.param_groups`
  (every parameter, only l2 or only l1), plain SGD;
- ``edit``: :func:`helpers.mechanisms.manual_grad_edits.edit_grads_directly` on l1's grads
  between ``backward()`` and ``step()``;

and the step clears the grads first with :func:`helpers.mechanisms.zero_grad.clear_grads`.

With every knob at "none" the step is the plain training step. Some combinations raise (a loss
with nothing to differentiate; an inference tensor that L2 must save): the error is caught and
explained, as everywhere in the series.
"""

import torch

from ..autograd_walk import reachable_leaves
from ..exercises import Hint, exercise
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_loss, toy_net
from .inference_mode import first_half
from .manual_grad_edits import edit_grads_directly, edited_params
from .no_grad import layer_forward
from .optimizer_subsets import held_lr, param_groups
from .requires_grad import freeze_layers, note_in_graph
from .zero_grad import clear_grads

FREEZE_CHOICES = {"none": "nothing frozen", "l1": "freeze l1", "l2": "freeze l2"}
NO_GRAD_CHOICES = {"none": "no", "l1": "on L1 + ReLU"}
INFERENCE_CHOICES = {"no": "no", "yes": "on L1 + ReLU"}
DETACH_CHOICES = {"none": "no", "l1": "after L1"}
OPTIMIZER_CHOICES = {"all": "all parameters", "l2": "only l2", "l1": "only l1"}
EDIT_CHOICES = {"none": "no edit", "set_none": "l1 grads set to None"}


def playground_forward(net, x, no_grad="none", inference="no", detach="none"):
    """The toy forward with L1 + ReLU optionally under no_grad and/or inference_mode, and its
    output optionally detached, before L2."""
    def first(inputs):  # L1 + ReLU, in inference mode if asked (notebook 05's building block)
        return first_half(net, inputs, "l1" if inference == "yes" else "none")

    hidden = layer_forward(first, x, no_grad == "l1")  # notebook 04's building block
    if detach == "l1":
        hidden = hidden.detach()  # notebook 03's cut
    return net.l2(hidden)


def playground_step(ctx, freeze="none", no_grad="none", inference="no", detach="none",
                    optimizer="all", edit="none"):
    """Freeze, build the optimizer over a subset, clear, forward, backward, edit, step."""
    net = ctx.net
    freeze_layers(net, freeze)
    opt = torch.optim.SGD(param_groups(net, optimizer), lr=LEARNING_RATE)
    ctx.note("in optimizer", {n: "yes" if held_lr(opt, p) is not None
                              else "no" for n, p in net.named_parameters()})
    clear_grads(net, opt, "optimizer")
    loss = ctx.loss_of(playground_forward(net, ctx.x, no_grad, inference, detach))
    note_in_graph(ctx, loss)
    loss.backward()
    if edit != "none":
        edit_grads_directly(edited_params(net, "l1"), edit)
    opt.step()


# Each changed option in words, for the graph's title (the defaults are the plain step).
CAPTION_WORDS = {
    "freeze": {"l1": "L1 frozen", "l2": "L2 frozen"},
    "no_grad": {"l1": "L1 + ReLU under no_grad"},
    "inference": {"yes": "L1 + ReLU under inference_mode"},
    "detach": {"l1": "detach after L1"},
    "optimizer": {"l2": "optimizer holds only l2", "l1": "optimizer holds only l1"},
    "edit": {"set_none": "l1's grads set to None before the step"},
}


def playground_caption(options):
    """The step under ``options`` in words: "plain step", or the changed options joined by
    "; "."""
    return "; ".join(CAPTION_WORDS[k][v] for k, v in options.items()
                     if v in CAPTION_WORDS[k]) or "plain step"


def _key(**changed):
    """The predictions key of the defaults with ``changed`` applied."""
    options = {"freeze": "none", "no_grad": "none", "inference": "no", "detach": "none",
               "optimizer": "all", "edit": "none", **changed}
    return ", ".join(f"{k}={v}" for k, v in options.items())


PREDICTIONS = {
    _key(): "None of them: at its defaults the playground is the plain training step, and "
            "backward() reaches all four parameters.",
    _key(freeze="l1"): "l1.weight and l1.bias: requires_grad_(False) made them constants, and "
                       "backward() fills no .grad for a tensor that does not require grad. L2 "
                       "trains as usual.",
    _key(freeze="l2"): "l2.weight and l2.bias, the frozen ones. L2's operation is still "
                       "recorded, because its input comes from L1, which requires grad: the "
                       "gradient flows through L2 back to L1.",
    _key(no_grad="l1"): "l1.weight and l1.bias: L1 and the ReLU ran under torch.no_grad(), so "
                        "nothing was recorded there and the loss has no path back to them. L2 "
                        "was recorded and gets its gradients.",
    _key(inference="yes"): "All four. L2 must save its input to compute its weight's gradient, "
                           "and that input is an inference tensor, which cannot be saved for "
                           "backward: L2's forward raises, so there is no loss and no "
                           "backward() at all.",
    _key(detach="l1"): "l1.weight and l1.bias: L1 was recorded, but the loss reaches it only "
                       "through L1's output, and that output was detached: backward() stops "
                       "at the cut. L2 gets its gradients.",
    _key(optimizer="l2"): "None of them: backward() fills the .grad of every parameter it "
                          "reaches, held by the optimizer or not. The optimizer decides only "
                          "what the step moves: l2, not l1.",
    _key(optimizer="l1"): "None of them: backward() fills the .grad of every parameter it "
                          "reaches, held by the optimizer or not. The optimizer decides only "
                          "what the step moves: l1, not l2.",
    _key(edit="set_none"): "l1.weight and l1.bias: backward() filled them, then the edit set "
                           "them to None before the step (so SGD skips them). l2's grads stay "
                           "as backward() left them.",
    _key(no_grad="l1", optimizer="l1"): "l1.weight and l1.bias. L1 was not recorded, so its "
                                        "grads stay None; L2 was recorded, so l2 gets "
                                        "gradients. But the optimizer holds only l1, whose "
                                        "grads are None: the step moves nothing at all.",
}

PLAYGROUND = register(Mechanism(
    name="playground",
    title="Playground: combine the mechanisms",
    step=playground_step,
    options=(
        Option("freeze", FREEZE_CHOICES, "none", "requires_grad_(False) on a layer (02)"),
        Option("no_grad", NO_GRAD_CHOICES, "none", "Run L1 + ReLU under torch.no_grad() (04)"),
        Option("inference", INFERENCE_CHOICES, "no",
               "Run L1 + ReLU under torch.inference_mode() (05)"),
        Option("detach", DETACH_CHOICES, "none", "Call .detach() on L1's output (03)"),
        Option("optimizer", OPTIMIZER_CHOICES, "all", "Which parameters SGD is given (06)"),
        Option("edit", EDIT_CHOICES, "none",
               "Set l1's grads to None between backward() and step() (07)"),
    ),
    notebook="08_compare_all",
    summary="Mechanisms combine: with the plain SGD used here, a parameter moves only if it "
            "gets a gradient and the optimizer holds it (not every optimizer skips a None "
            "grad: LBFGS does not, notebook 06). Some mixes leave nothing to differentiate, or "
            "feed L2 an inference tensor: those raise.",
    predictions=PREDICTIONS,
    caption=playground_caption,
))


# --- Exercises of notebook 08_compare_all ---------------------------------------------------
# Each computes the expected answer (and each hint's wrong answer) with plain PyTorch.

def _moved_with_l1_frozen(weight_decay=0.1, l1_bias_grad=False):
    """08.1's step; the hints run it without the weight decay, or with l1.bias given a grad of
    zeros too."""
    net = toy_net()
    x, y = toy_batch()
    net.l1.requires_grad_(False)
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, weight_decay=weight_decay)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    optimizer.zero_grad()
    toy_loss(net(x), y).backward()
    net.l1.weight.grad = torch.zeros_like(net.l1.weight)
    if l1_bias_grad:
        net.l1.bias.grad = torch.zeros_like(net.l1.bias)
    optimizer.step()
    return {n for n, p in net.named_parameters() if not torch.equal(before[n], p)}


@exercise("08.1", why="SGD does not look at requires_grad, only at .grad: it skips l1.bias "
                      "(grad None) but not l1.weight, whose grad of zeros gets weight decay "
                      "added (0.1 * weight), so the frozen weight moves; l2 trains as usual.",
          hints=(Hint(lambda: _moved_with_l1_frozen(weight_decay=0),
                      "That would be right without weight_decay. SGD never reads "
                      "requires_grad: which of l1's parameters has a .grad here, and what does "
                      "weight decay add to a grad of zeros?"),
                 Hint(lambda: _moved_with_l1_frozen(l1_bias_grad=True),
                      "Which of l1's parameters has a .grad at all? SGD skips a parameter "
                      "whose .grad is None, weight decay or not."),))
def _moved_with_l1_frozen_and_a_zero_grad_under_weight_decay():
    return _moved_with_l1_frozen()


def _moved_with_l2_frozen(held="l2"):
    """08.2's step: L2 frozen, SGD given only ``held``'s parameters (the hints: others)."""
    net = toy_net()
    x, y = toy_batch()
    net.l2.requires_grad_(False)
    params = net.parameters() if held == "all" else getattr(net, held).parameters()
    optimizer = torch.optim.SGD(params, lr=LEARNING_RATE)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    optimizer.zero_grad()
    toy_loss(net(x), y).backward()
    optimizer.step()
    return {n for n, p in net.named_parameters() if not torch.equal(before[n], p)}


@exercise("08.2", why="Nothing moves: the empty set. l2 is in the optimizer but frozen, so its "
                      ".grad stays None and SGD skips it. l1 does get gradients (L2's frozen "
                      "weights still pass them back), but the optimizer does not hold l1.",
          hints=(Hint(lambda: _moved_with_l2_frozen(held="all"),
                      "l1 does get gradients here, but is l1 in this optimizer?"),
                 Hint(lambda: {"l2.weight", "l2.bias"},
                      "l2 is in the optimizer, but what is net.l2.weight.grad after backward() "
                      "when L2 is frozen?"),))
def _moved_with_l2_frozen_and_an_optimizer_of_l2():
    return _moved_with_l2_frozen()


def _frozen_after_the_optimizer(zero_grad=True):
    """08.3's step: the optimizer is built, then L1 is frozen, then one step runs."""
    net = toy_net()
    x, y = toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    net.l1.requires_grad_(False)
    if zero_grad:
        optimizer.zero_grad()
    loss = toy_loss(net(x), y)
    loss.backward()
    optimizer.step()
    return net, optimizer, loss


def _why_l1_grad_is_none():
    """The letters of 08.3's true statements, each statement tested on PyTorch."""
    net, optimizer, loss = _frozen_after_the_optimizer()
    held = [p for group in optimizer.param_groups for p in group["params"]]
    reached = reachable_leaves(loss)
    true = {
        "a": not any(p is net.l1.weight for p in held),              # dropped from the optimizer
        "b": net.l1.weight.grad is None and not any(p is net.l1.weight for p in reached)
        and not net.l1.weight.requires_grad,                          # frozen when backward ran
        # c: zero_grad() is why: without it, l1.weight would get a grad
        "c": _frozen_after_the_optimizer(zero_grad=False)[0].l1.weight.grad is not None,
    }
    return "".join(letter for letter, holds in true.items() if holds)


@exercise("08.3", why="b: requires_grad counts when the forward runs, not when the optimizer is "
                      "built. L1 was frozen by then, so the loss's graph has no AccumulateGrad "
                      "node for l1 and backward() fills nothing there. The optimizer still "
                      "holds l1 (it is in optimizer.param_groups) and skips it because its "
                      ".grad is None.",
          hints=(Hint(lambda: "a",
                      "Look in optimizer.param_groups[0][\"params\"]: is net.l1.weight still "
                      "there?"),
                 Hint(lambda: "c",
                      "Run the step again without optimizer.zero_grad(): is "
                      "net.l1.weight.grad still None?"),))
def _why_is_l1_weight_grad_none():
    return _why_l1_grad_is_none()


__all__ = ["PLAYGROUND", "playground_forward", "playground_step", "PARAM_NAMES"]
