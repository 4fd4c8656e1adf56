"""manual_grad_edits: change ``.grad`` between ``backward()`` and ``step()``.

Five edits (zero, set to None, scale, clip by norm, mask) on one layer or both, done in one of
three ways:

- ``direct``: after ``backward()``, before ``step()``, on ``p.grad`` itself;
- ``hook``: ``Tensor.register_hook``, which sees the *incoming* gradient before it is added to
  ``.grad`` and may return a replacement (returning ``None`` keeps it unchanged);
- ``post_hook``: ``register_post_accumulate_grad_hook``, which runs after ``.grad`` is updated
  and edits ``p.grad`` in place (it must return ``None``).

Every combination is defined; none raises. Two cannot mean the same thing through a hook, and
the outcome says so in its ``edit`` column:

- "set to None" through ``register_hook``: a hook cannot remove ``.grad``. The hook returns
  ``None``, which PyTorch reads as "keep the gradient": ``.grad`` gets its values.
- "clip by norm" through either hook: a hook sees one tensor, so it clips each tensor to
  ``MAX_NORM`` on its own. The direct edit clips the chosen layers' gradients together
  (``clip_grad_norm_``), which is what training loops do.

Options are one edit plus the layer it applies to (l1, l2 or both), not one edit per layer:
an edit on one layer's parameters never changes another layer's gradients, so a separate edit
per layer would only repeat the 45 rows here in every mix. There is no "no edit" choice: with
no edit, ``layer`` and ``how`` would change nothing, and that step is the control step that
every explorer draws beside its own (its gradients are the "grad before edit" column).

Introduced in notebook 07_manual_grad_edits.
"""

import warnings

import torch
from torch import nn

from ..exercises import Hint, exercise
from ..grad_table import extra_column_table, format_norm
from ..outcome import grad_state, params_with_grad_none
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, toy_batch, toy_loss, toy_net

SCALE = 0.5
MAX_NORM = 0.25
EDITS = {"zero": "zero_()", "set_none": "set to None",
         "scale": f"scale by {SCALE}", "clip": f"clip norm to {MAX_NORM}",
         "mask": "mask column 0"}
LAYERS = {"l1": "l1", "l2": "l2", "both": "both layers"}
HOWS = {"direct": "directly after backward()", "hook": "Tensor.register_hook",
        "post_hook": "register_post_accumulate_grad_hook"}


def edited_params(net, layer):
    """``{name: parameter}`` of the layer(s) the edit applies to."""
    chosen = ("l1", "l2") if layer == "both" else (layer,)
    return {n: p for n, p in net.named_parameters() if n.split(".")[0] in chosen}


def column0_mask(tensor):
    """Ones, with zeros in column 0 of a weight (what input feature / unit 0 feeds in).

    A bias reads no input, so its mask is all ones: masking leaves a bias gradient alone.
    """
    mask = torch.ones_like(tensor)
    if tensor.dim() == 2:
        mask[:, 0] = 0
    return mask


def clip_tensor(grad, max_norm=MAX_NORM):
    """``grad`` scaled down to norm ``max_norm`` if it is larger (clip_grad_norm_'s formula)."""
    return grad * torch.clamp(max_norm / (grad.norm() + 1e-6), max=1.0)


def edit_as_code(edit, how, name, layer="both"):
    """What the edit does to parameter ``name``, as the code a learner would write."""
    weight = name.endswith("weight")
    if edit == "mask" and not weight:
        return "bias: no column 0, kept"
    if how == "direct":
        return {"zero": "p.grad.zero_()", "set_none": "p.grad = None",
                "scale": f"p.grad.mul_({SCALE})",
                "clip": f"clip_grad_norm_({'net' if layer == 'both' else layer}, {MAX_NORM})",
                "mask": "p.grad[:, 0] = 0"}[edit]
    if how == "hook":
        return {"zero": "hook returns zeros", "set_none": "hook returns None: grad kept",
                "scale": f"hook returns g * {SCALE}",
                "clip": f"hook clips this tensor to {MAX_NORM}",
                "mask": "hook returns g * mask"}[edit]
    return {"zero": "post-hook: p.grad.zero_()", "set_none": "post-hook: p.grad = None",
            "scale": f"post-hook: p.grad.mul_({SCALE})",
            "clip": f"post-hook: clip_grad_norm_(p, {MAX_NORM})",
            "mask": "post-hook: p.grad.mul_(mask)"}[edit]


def edit_in_place(p, edit):
    """``edit`` on ``p.grad`` in place (or ``p.grad = None``); "clip" clips this tensor alone."""
    if edit == "zero":
        p.grad.zero_()
    elif edit == "set_none":
        p.grad = None
    elif edit == "scale":
        p.grad.mul_(SCALE)
    elif edit == "clip":
        nn.utils.clip_grad_norm_(p, MAX_NORM)
    elif edit == "mask":
        p.grad.mul_(column0_mask(p.grad))
    else:
        raise ValueError(f"unknown edit {edit!r}; valid: {', '.join(EDITS)}")


def edit_grads_directly(params, edit):
    """The edit on ``p.grad`` of ``params`` (a dict), run between backward() and step().

    "clip" clips the gradients of ``params`` together, by their total norm.
    """
    if edit == "clip":
        nn.utils.clip_grad_norm_(params.values(), MAX_NORM)
        return
    for p in params.values():
        if p.grad is not None:
            edit_in_place(p, edit)


def tensor_hook(edit, seen=None):
    """A ``Tensor.register_hook`` function doing ``edit`` to the incoming gradient.

    It returns the replacement gradient, or ``None`` to keep the gradient as it is: that is
    all a tensor hook can do, so "set to None" keeps the gradient. ``seen`` (a list) collects
    each incoming gradient.
    """
    def hook(grad):
        if seen is not None:
            seen.append(grad.clone())
        if edit == "zero":
            return torch.zeros_like(grad)
        if edit == "scale":
            return grad * SCALE
        if edit == "clip":
            return clip_tensor(grad)
        if edit == "mask":
            return grad * column0_mask(grad)
        return None  # "set_none": PyTorch reads None as "keep the gradient unchanged"
    return hook


def post_accumulate_hook(edit, seen=None):
    """A ``register_post_accumulate_grad_hook`` function doing ``edit`` to ``p.grad``.

    It runs after ``p.grad`` is updated, edits it in place (or sets it to ``None``) and returns
    ``None``, as PyTorch requires. ``seen`` (a list) collects ``p.grad`` as the hook found it.
    """
    def hook(p):
        if seen is not None:
            seen.append(p.grad.clone())
        edit_in_place(p, edit)
    return hook


def install_hooks(params, edit, how, seen=None):
    """Register the edit as hooks on ``params``; returns the handles (``.remove()`` them).

    ``seen`` maps parameter name to a list collecting the gradient each hook found.
    """
    if how == "direct":
        return []
    handles = []
    for name, p in params.items():
        if edit == "mask" and p.dim() != 2:
            continue  # a bias has no column 0: nothing to mask
        log = None if seen is None else seen.setdefault(name, [])
        if how == "hook":
            handles.append(p.register_hook(tensor_hook(edit, log)))
        else:
            handles.append(p.register_post_accumulate_grad_hook(post_accumulate_hook(edit, log)))
    return handles


def state_and_norm(grad):
    """:func:`~helpers.outcome.grad_state`, with the norm when there is a grad:
    ``values |0.3604|``."""
    state = grad_state(grad)
    return state if grad is None else f"{state} |{format_norm(float(grad.norm()))}|"


def manual_grad_edits_step(ctx, edit="clip", layer="both", how="direct"):
    """One SGD step with ``edit`` applied to ``layer``'s gradients, ``how`` as chosen."""
    net = ctx.net
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    optimizer.zero_grad()
    params = edited_params(net, layer)
    seen = {}
    handles = install_hooks(params, edit, how, seen)

    ctx.loss_of(net(ctx.x)).backward()  # hooks, if any, edit during this call
    before = {n: p.grad.clone() if p.grad is not None else None
              for n, p in net.named_parameters()}
    if how == "direct":
        edit_grads_directly(params, edit)
    for handle in handles:
        handle.remove()

    ctx.note("edit", {n: edit_as_code(edit, how, n, layer) if n in params else "-"
                      for n, _ in net.named_parameters()})
    ctx.note("grad before edit", {n: state_and_norm(seen[n][0] if n in seen else before[n])
                                  for n in before})
    ctx.note("grad after edit", {n: state_and_norm(p.grad) for n, p in net.named_parameters()})
    start = {n: p.detach().clone() for n, p in net.named_parameters()}
    optimizer.step()
    ctx.note("step moved p by", {n: f"{float((p.detach() - start[n]).norm()):.4f}"
                                 for n, p in net.named_parameters()})


WHOSE = {"l1": "L1's grads", "l2": "L2's grads", "both": "all grads"}
WAYS = {"direct": "after backward()", "hook": "in a Tensor.register_hook",
        "post_hook": "in a post-accumulate hook"}


def caption(options):
    """The step in words: "clip all grads to total norm 0.25 after backward()"."""
    edit, layer, how = options["edit"], options["layer"], options["how"]
    whose, way = WHOSE[layer], WAYS[how]
    if edit == "set_none" and how == "hook":
        return f"a Tensor.register_hook returning None on {whose} (grads kept)"
    if edit == "clip":
        if how == "direct":
            return f"clip {whose} to total norm {MAX_NORM} {way}"
        each = {"l1": "each of L1's grads", "l2": "each of L2's grads", "both": "each grad"}
        return f"clip {each[layer]} to norm {MAX_NORM} on its own, {way}"
    if edit == "mask":
        weights = {"l1": "L1's weight grad", "l2": "L2's weight grad",
                   "both": "the weight grads"}[layer]
        return f"mask column 0 of {weights} {way}"
    return {"zero": f"zero {whose} {way}", "set_none": f"set {whose} to None {way}",
            "scale": f"scale {whose} by {SCALE} {way}"}[edit]


PREDICTIONS = {
    "edit=set_none, layer=l1, how=direct":
        "backward() filled all four grads; the loop then set l1's to None. SGD's step() skips "
        "a parameter whose .grad is None, so l1 does not move, and l2 takes its usual step.",
}

MANUAL_GRAD_EDITS = register(Mechanism(
    name="manual_grad_edits",
    title="Editing gradients between backward() and step()",
    step=manual_grad_edits_step,
    options=(
        Option("edit", EDITS, "clip", "What to do to the gradients after backward()"),
        Option("layer", LAYERS, "both", "Which layer's parameters the edit applies to"),
        Option("how", HOWS, "direct",
               "Edit .grad directly, or in a hook that runs during backward()"),
    ),
    notebook="07_manual_grad_edits",
    summary="Gradients are ordinary tensors until step(): zero, drop, scale, clip or mask "
            "them in between, directly or with a hook.",
    predictions=PREDICTIONS,
    caption=caption,
))


def edit_norms_table(layer="both"):
    """Every edit x how on ``layer``: each parameter's grad after the edit (state and norm).

    The truth table shows grad *states*; scale, clip and mask all leave "values", so this
    table shows what they did to the norms.
    """
    return extra_column_table("manual_grad_edits", ("edit", "how"), "grad after edit",
                              f"manual_grad_edits, layer={layer}: grad after the edit "
                              "(state |norm|), before step()", layer=layer)


# ---- exercises -----------------------------------------------------------------------------

def _grads_none_after_hooks(tensor_hook_drops=True, post_hook_drops=True):
    """07.1's code; ``tensor_hook_drops=False`` pretends a tensor hook that clears ``.grad``
    and returns None drops it (a common wrong belief), ``post_hook_drops=False`` that the
    post-hook cannot."""
    net, (x, y) = toy_net(), toy_batch()

    def clear(grad):  # a tensor hook: runs before accumulation, returns None
        net.l1.weight.grad = None
    net.l1.weight.register_hook(clear)

    def drop(p):
        p.grad = None
    if post_hook_drops:
        net.l2.bias.register_post_accumulate_grad_hook(drop)
    toy_loss(net(x), y).backward()
    none = params_with_grad_none(net)
    return none if tensor_hook_drops else none | {"l1.weight"}


@exercise("07.1", why="l1.weight's tensor hook runs before accumulation, while .grad is still "
                      "None: clearing it does nothing, and returning None keeps the incoming "
                      "gradient. The post-accumulate hook runs after .grad is filled: its "
                      "p.grad = None leaves l2.bias with None.",
          hints=(Hint(lambda: _grads_none_after_hooks(tensor_hook_drops=False),
                      "A tensor hook runs before .grad is filled: nothing to clear yet. And "
                      "what does PyTorch do when the hook returns None?"),
                 Hint(lambda: _grads_none_after_hooks(post_hook_drops=False),
                      "The post-accumulate hook runs after .grad is filled: what does drop "
                      "leave there?")))
def grads_none_after_hooks_that_drop():
    return _grads_none_after_hooks()


def _l2_bias_ratio(passes, per_pass_hook=False):
    """l2.bias.grad / g after ``passes`` backward passes, halved by a post-accumulate hook
    (or, with ``per_pass_hook``, by a tensor hook on each incoming gradient)."""
    net, (x, y) = toy_net(), toy_batch()
    toy_loss(net(x), y).backward()
    single = net.l2.bias.grad.clone()
    net = toy_net()

    def halve(p):
        p.grad.mul_(0.5)
    if per_pass_hook:
        net.l2.bias.register_hook(lambda grad: grad * 0.5)
    else:
        net.l2.bias.register_post_accumulate_grad_hook(halve)
    for _ in range(passes):
        toy_loss(net(x), y).backward()
    return round(float(net.l2.bias.grad / single), 6)


@exercise("07.2", why="The post-accumulate hook halves the whole .grad after each pass: "
                      "0.5 g, then 0.5 (0.5 g + g) = 0.75 g, then 0.5 (0.75 g + g) = 0.875 g. "
                      "A tensor hook would halve each incoming g instead: 3 x 0.5 g = 1.5 g.",
          hints=(Hint(lambda: _l2_bias_ratio(3, per_pass_hook=True),
                      "That halves each incoming gradient, as a tensor hook would. The "
                      "post-accumulate hook halves the running total after each pass."),
                 Hint(lambda: _l2_bias_ratio(2),
                      "That is two passes; the question runs three.")))
def l2_bias_grad_ratio_after_three_halved_passes():
    return _l2_bias_ratio(3)


def _l2_bias_after_manual_step(clip):
    net, (x, y) = toy_net(), toy_batch()
    toy_loss(net(x), y).backward()
    if clip:
        nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.25)
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
    return net.l2.bias.detach().clone()


@exercise("07.3", why="clip_grad_norm_ over all parameters scales every gradient by "
                      "0.25 / (total norm + 1e-6); the manual step then subtracts 0.1 * grad under "
                      "torch.no_grad().",
          hints=(Hint(lambda: _l2_bias_after_manual_step(clip=False),
                      "That is the unclipped step: clip between backward() and the update."),))
def l2_bias_after_clipped_manual_step():
    return _l2_bias_after_manual_step(clip=True)


def _why_w_grad_is_none():
    """07.4's code, checked: "c" if w is a non-leaf that requires grad, its .grad is None and
    b's is filled; "?" otherwise (the test then fails)."""
    x, y = toy_batch()
    torch.manual_seed(0)
    w = torch.randn(4, 1, requires_grad=True) * 0.1
    b = torch.zeros(1, requires_grad=True)
    toy_loss(x @ w + b, y).backward()
    with warnings.catch_warnings():  # reading a non-leaf's .grad warns
        warnings.simplefilter("ignore")
        w_grad = w.grad
    ok = w_grad is None and w.requires_grad and not w.is_leaf and b.grad is not None
    return "c" if ok else "?"


@exercise("07.4", why="w is not a leaf: it is the result of randn(...) * 0.1, and autograd "
                      "fills .grad only for leaves (the randn tensor got the gradient, and you "
                      "kept no name for it). Create the leaf last: "
                      "w = (torch.randn(4, 1) * 0.1).requires_grad_(), or call w.retain_grad().",
          hints=(Hint(lambda: "b", "Print w.requires_grad: it is True, since an operation on a "
                                   "tensor that requires grad gives one that does too."),
                 Hint(lambda: "a", "There is no hook anywhere in this code. Print w.is_leaf.")))
def why_w_grad_is_none():
    return _why_w_grad_is_none()
