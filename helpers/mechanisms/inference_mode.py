"""inference_mode: run part of the forward under ``torch.inference_mode()``, then try to train.

``torch.inference_mode()`` records nothing, as ``no_grad`` does, and more: the tensors it
allocates are *inference tensors* (no version counter, no view tracking), and forward-mode AD is
off too. Outside the mode inference tensors can be read, but a recorded op cannot save them for
backward, and they cannot be edited in place. The step below shows where that bites: L1's output
made in inference mode is refused by L2's forward, unless it is cloned. Its costs are measured by
:mod:`helpers.costs` (one measurement for every gradient mode). Taught in
notebooks/05_inference_mode.ipynb.
"""

import torch

from ..exercises import exercise
from ..registry import Mechanism, Option, register
from ..toy import PARAM_NAMES, toy_batch, toy_net

PARTS = {"none": "nothing", "l1": "L1 + ReLU", "all": "the whole forward"}


def hidden(net, x):
    """The first half of the toy net: L1 then ReLU."""
    return torch.relu(net.l1(x))


def first_half(net, x, part):
    """L1 + ReLU, under ``torch.inference_mode()`` when ``part`` is ``"l1"``."""
    if part == "l1":
        with torch.inference_mode():
            return hidden(net, x)
    return hidden(net, x)


def forward_with_inference(net, x, part="l1", clone="no"):
    """The toy forward with ``part`` of it under inference mode.

    ``part``: ``"none"``, ``"l1"`` (L1 + ReLU) or ``"all"``. ``clone="yes"`` clones the tensor
    that part produced, outside the mode, before it is used: the clone is a normal tensor.
    With ``part="none"`` no tensor was made in inference mode, so there is nothing to clone and
    ``clone`` changes nothing. With ``part="l1"`` and no clone, L2's forward raises "Inference
    tensors cannot be saved for backward": ``l2`` must save its input to compute its weight's
    gradient.
    """
    if part == "all":
        with torch.inference_mode():
            out = net(x)
        return out.clone() if clone == "yes" else out
    h = first_half(net, x, part)
    if clone == "yes" and part == "l1":
        h = h.clone()
    return net.l2(h)


def inference_mode_step(ctx, part="l1", clone="no"):
    """zero_grad, forward (part of it in inference mode), loss, backward, step."""
    ctx.note("in inference_mode", {
        name: "yes" if part == "all" or (part == "l1" and name.startswith("l1.")) else "no"
        for name in PARAM_NAMES})
    ctx.sgd_step(lambda: forward_with_inference(ctx.net, ctx.x, part, clone))


INFERENCE_MODE = register(Mechanism(
    name="inference_mode",
    title="torch.inference_mode() inside a training step",
    step=inference_mode_step,
    options=(
        Option("part", PARTS, "l1",
               "Which part of the forward runs under torch.inference_mode()?"),
        Option("clone", {"no": "use it as is", "yes": ".clone() it first"}, "no",
               "Clone the tensor made in inference mode (outside the mode) before using it? "
               "No effect when part is 'nothing': no tensor was made in inference mode."),
    ),
    notebook="05_inference_mode",
    summary="Tensors made in inference mode cannot be saved for backward: L2's forward refuses "
            "L1's inference output unless it is cloned; then only L2 learns.",
))


# --- exercises -------------------------------------------------------------------------------

@exercise("05.1", why="Where an op runs decides only for new memory: t + 0 made outside the "
                      "mode is a normal tensor, t.clone() made inside it another inference "
                      "tensor. A view (reshape of a contiguous tensor, a slice, detach()) of an "
                      "inference tensor is one too, wherever it is made: if you said False for "
                      "the reshape, that is the rule you missed.")
def inference_flags_of_view_sum_and_clone():
    """``is_inference()`` of a view of an inference tensor, of ``t + 0`` outside the mode, and
    of ``t.clone()`` inside it."""
    with torch.inference_mode():
        t = torch.ones(4)
        inside = t.clone()
    return (t.reshape(2, 2).is_inference(), (t + 0).is_inference(), inside.is_inference())


@exercise("05.2", why="enable_grad() flips torch.is_grad_enabled() back to True, but "
                      "inference mode still records nothing: r = w * 2 is new, unrecorded, and "
                      "does not require grad (torch.inference_mode(False) records again). v = "
                      "w[:2] is a view of the normal tensor w: it keeps w's flag (True) but has "
                      "no grad_fn, as a view made under no_grad does.")
def grad_flags_under_enable_grad():
    """``requires_grad`` of a new result and of a view, made under inference_mode + enable_grad."""
    w = torch.ones(3, requires_grad=True)
    with torch.inference_mode(), torch.enable_grad():
        r = w * 2
        v = w[:2]
    return (r.requires_grad, v.requires_grad)


@exercise("05.3", why="A Linear layer saves its input to compute its weight's gradient, so "
                      "it refuses an inference tensor (a); detach() of an inference tensor is "
                      "still an inference tensor (c); clone() outside the mode is a normal "
                      "tensor (b).")
def head_inputs_that_train():
    """Which of a: the inference features as they are, b: their clone, c: their detach(), L2
    can train on (its forward and backward run)."""
    net = toy_net()
    x, _ = toy_batch()
    with torch.inference_mode():
        features = hidden(net, x)
    works = set()
    for letter, use in (("a", lambda f: f), ("b", lambda f: f.clone()),
                        ("c", lambda f: f.detach())):
        try:
            net.l2(use(features)).sum().backward()
            works.add(letter)
        except RuntimeError:
            pass
    return works
