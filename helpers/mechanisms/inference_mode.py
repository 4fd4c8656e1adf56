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

from ..exercises import Hint, exercise
from ..registry import Mechanism, Option, register
from ..toy import PARAM_NAMES, toy_batch, toy_net

PARTS = {"none": "nothing", "l1": "L1 + ReLU", "all": "the whole forward"}
PLAIN = ("Nothing ran in inference mode: this is the plain step, and every parameter gets a "
         "gradient.")
WHOLE = ("The whole forward ran in inference mode: nothing was recorded, the loss has no "
         "grad_fn and backward() raises, so every grad stays None. A clone of a tensor with no "
         "history has no history either.")


def caption(options):
    """The graph's title in words for resolved ``options``."""
    part, cloned = options["part"], options["clone"] == "yes"
    if part == "none":
        return ("plain step (nothing in inference_mode, nothing to clone)" if cloned
                else "plain step (nothing in inference_mode)")
    if part == "l1":
        return ("L1 + ReLU in inference_mode, output cloned: they record nothing, L2 trains"
                if cloned else "L1 + ReLU in inference_mode: L2's forward refuses their output")
    return ("whole forward in inference_mode, output cloned: nothing recorded" if cloned
            else "whole forward in inference_mode: nothing recorded")


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
    predictions={
        **dict.fromkeys(["part=none, clone=no", "part=none, clone=yes"], PLAIN),
        "part=l1, clone=no": "If you ticked only L1: that is what no_grad() would give. Here "
                             "L2's forward pass raises, because a Linear layer must save its "
                             "input for backward and an inference tensor cannot be saved. The "
                             "step stops before the loss is even computed, so no parameter "
                             "gets a gradient.",
        "part=l1, clone=yes": "L1 and the ReLU ran in inference mode and recorded nothing, so "
                              "l1's grads stay None. The clone, made outside the mode, is a "
                              "normal tensor that L2 may save: L2 trains.",
        **dict.fromkeys(["part=all, clone=no", "part=all, clone=yes"], WHOLE),
    },
    caption=caption,
))


# --- exercises -------------------------------------------------------------------------------

def inference_flags_of_view_sum_and_clone():
    """``is_inference()`` of a view of an inference tensor, of ``t + 0`` outside the mode, and
    of ``t.clone()`` inside it."""
    with torch.inference_mode():
        t = torch.ones(4)
        inside = t.clone()
    return (t.reshape(2, 2).is_inference(), (t + 0).is_inference(), inside.is_inference())


def where_the_op_ran(inside):
    """``is_inference()`` of new memory (``t + 0``) made inside or outside the mode."""
    with torch.inference_mode():
        t = torch.ones(4)
        if inside:
            return (t + 0).is_inference()
    return (t + 0).is_inference()


exercise("05.1", why="Where an op runs decides only for new memory: t + 0 made outside the "
                     "mode is a normal tensor, t.clone() made inside it another inference "
                     "tensor. A view (reshape of a contiguous tensor, a slice, detach()) of an "
                     "inference tensor is one too, wherever it is made.",
         hints=(Hint(lambda: (where_the_op_ran(inside=False), False, True),
                     "t.reshape(2, 2) of a contiguous t allocates no new memory: it is a view. "
                     "What is a view of an inference tensor?"),
                Hint(lambda: (True, where_the_op_ran(inside=True), True),
                     "t + 0 runs outside the mode and allocates new memory there.")))(
    inference_flags_of_view_sum_and_clone)


def grad_flags_under_enable_grad(switch=torch.enable_grad):
    """``requires_grad`` of a new result and of a view, made under inference_mode + ``switch``."""
    w = torch.ones(3, requires_grad=True)
    with torch.inference_mode(), switch():
        r = w * 2
        v = w[:2]
    return (r.requires_grad, v.requires_grad)


exercise("05.3", why="enable_grad() flips torch.is_grad_enabled() back to True, but "
                     "inference mode still records nothing: r = w * 2 is new, unrecorded, and "
                     "does not require grad (torch.inference_mode(False) records again). v = "
                     "w[:2] is a view of the normal tensor w: it keeps w's flag (True) but has "
                     "no grad_fn, as a view made under no_grad does.",
         hints=(Hint(lambda: grad_flags_under_enable_grad(lambda: torch.inference_mode(False)),
                     "That is what torch.inference_mode(False) would give. enable_grad() sets "
                     "is_grad_enabled() to True: does inference mode then record?"),
                Hint(lambda: (False, False),
                     "v = w[:2] is not a new result: it is a view of w, a tensor made before "
                     "the block. What does a view keep from the tensor it looks into?")))(
    grad_flags_under_enable_grad)


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


exercise("05.2", why="A Linear layer saves its input to compute its weight's gradient, so "
                     "it refuses an inference tensor (a); detach() of an inference tensor is "
                     "still an inference tensor (c); clone() outside the mode is a normal "
                     "tensor (b).",
         hints=(Hint(lambda: {"b", "c"},
                     "Check features.detach().is_inference(): what does L2 do with an "
                     "inference tensor?"),
                Hint(lambda: {"a", "b", "c"},
                     "Try net.l2(features) outside the mode: L2 must save its input for "
                     "backward.")))(head_inputs_that_train)


def embedding_lookup_step(in_inference_mode=True):
    """The step of exercise 05.4: (emb, net) after backward, the lookup in inference mode."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(10, 4)
    net = toy_net()
    _, y = toy_batch()
    with torch.inference_mode(in_inference_mode):
        features = emb(torch.arange(8))
    torch.nn.functional.mse_loss(net(features.clone()), y).backward()
    return emb, net


def why_the_table_gets_no_grad():
    """The letter of the cause, checked against PyTorch: the table stays a normal parameter,
    the net trains, and the table trains too once the lookup runs outside the mode."""
    emb, net = embedding_lookup_step()
    assert emb.weight.grad is None and not emb.weight.is_inference()
    assert all(p.grad is not None for p in net.parameters())
    assert embedding_lookup_step(in_inference_mode=False)[0].weight.grad is not None
    return "a"


exercise("05.4", why="The lookup ran in inference mode, so features has no history, and a "
                     "clone of a tensor without history has none either: nothing links the "
                     "loss back to emb.weight. Look the table up outside inference_mode to "
                     "train it.",
         hints=(Hint(lambda: "b",
                     "Check emb.weight.is_inference() after the step: entering the mode "
                     "changes no tensor that existed before."),
                Hint(lambda: "c",
                     "A clone made with recording on, of a tensor that requires grad, is "
                     "recorded and passes gradients back. Does features require grad?")))(
    why_the_table_gets_no_grad)
