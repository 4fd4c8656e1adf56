"""Decide one cause per parameter, the first that applies in ``CAUSES`` order, with its fix."""

import torch

CAUSES = ("frozen", "unused", "inference_mode", "no_grad", "detached", "non_leaf",
          "not_in_optimizer", "zero_grad", "not_moved", "ok")

MEANING = {
    "frozen": "requires_grad is False, so backward() never fills its .grad",
    "unused": "no operation in the step used it",
    "inference_mode": "it was used only inside torch.inference_mode()",
    "no_grad": "it was used only while grad mode was off (torch.no_grad())",
    "detached": "it was used with grad on, but no gradient reached it from the loss",
    "non_leaf": "it is not a leaf tensor, so backward() does not keep its .grad",
    "not_in_optimizer": "it has a gradient, but the optimizer does not hold this tensor",
    "zero_grad": "its gradient is all zeros",
    "not_moved": "it is in the optimizer with a non-zero gradient, but the step left it unchanged",
    "ok": "it got a gradient and the step used it",
}

FIX = {
    "frozen": "Unfreeze it with p.requires_grad_(True) if it should train.",
    "unused": "Use it in the forward pass (is the layer called?), or remove it from the model.",
    "inference_mode": "Run the forward pass that feeds the loss outside torch.inference_mode().",
    "no_grad": "Run the forward pass that feeds the loss outside torch.no_grad() (with "
               "torch.utils.checkpoint, pass use_reentrant=False).",
    "detached": "Remove the cut between it and the loss: detach(), .data, .item(), NumPy, or a "
                "non-differentiable op such as argmax or a comparison.",
    "non_leaf": "Create it with requires_grad=True on the target device and dtype, or wrap it in "
                "nn.Parameter after moving it.",
    "not_in_optimizer": "Build the optimizer after the final parameters exist, and give it "
                        "every parameter that should train (or add_param_group).",
    "zero_grad": "Find what zeroes it: dead ReLUs (check the pre-activations), a mask, an output "
                 "the loss does not depend on, or a zero-gradient op (round, sign, floor).",
    "not_moved": "Call optimizer.step() after backward() with a learning rate above 0.",
    "ok": "Nothing to fix.",
}


def grad_state(grad):
    """``"None"``, ``"zeros"`` or ``"values"``."""
    return grad_states([grad])[0]


def strided(grad):
    """``grad`` as a strided tensor with the same norms: a sparse gradient's stored values."""
    if grad is None or grad.layout == torch.strided:
        return grad
    if grad.is_sparse:  # nn.Embedding(sparse=True): coalesce sums repeated indices
        return grad.coalesce().values()
    return grad.to_dense()


FEW = 16  # up to this many scalars, item() each is cheaper than stack + tolist


def floats(scalars):
    """Python floats of 0-dim tensors: one ``item()`` each for a few, one ``stack`` for many."""
    if len(scalars) <= FEW:
        return [s.item() for s in scalars]
    return torch.stack(scalars).tolist()


def largest_abs(tensors):
    """The largest absolute value of each of ``tensors`` (0.0 for an empty one), one reduction."""
    full = [t for t in tensors if t.numel()]  # the infinity norm of an empty tensor raises
    found = floats(torch._foreach_norm(full, float("inf"))) if full else []
    if len(full) == len(tensors):
        return found
    found = iter(found)
    return [next(found) if t.numel() else 0.0 for t in tensors]


def grad_states(grads, norms=None):
    """:func:`grad_state` of each of ``grads``, with one reduction for all of them.

    ``norms``: their 2-norms when already known (``None`` for a ``None`` grad). A 2-norm other
    than 0 (NaN included) already shows a value other than 0; only a 2-norm of 0, which also
    comes from values so small that their squares underflow, needs the largest-value check.
    """
    if norms is None:
        norms = [0.0] * len(grads)  # not known: check every gradient
    check = [strided(g) for g, n in zip(grads, norms) if g is not None and n == 0]
    largest = iter(largest_abs(check))
    return ["None" if g is None else ("zeros" if n == 0 and next(largest) == 0 else "values")
            for g, n in zip(grads, norms)]


class Facts:
    """What the step did, gathered by :func:`~helpers.doctor.run.diagnose` for :func:`decide`."""

    def __init__(self, recorder, reached, backward_ran, optimizers, error_before_step):
        self.recorder = recorder
        self.received = set()  # ids of leaves that got a gradient in the step
        self.reached = reached  # ids of leaves some backward call's graph reached (inputs kept)
        self.nodes = set().union(*(c.nodes for c in recorder.backward_calls)) \
            if recorder.backward_calls else set()
        self.leaves = set().union(*(c.leaves for c in recorder.backward_calls)) \
            if recorder.backward_calls else set()
        self.backward_ran = backward_ran
        self.optimizers = optimizers  # list of optimizers
        self.holders = holders(optimizers)
        self.stepped = {id(opt) for opt, _ in recorder.steps}
        self.error_before_step = error_before_step


def holders(optimizers):
    """id(tensor) -> ``(index, group)``: where each tensor sits in ``optimizers`` (identity)."""
    found = {}
    for index, opt in enumerate(optimizers):
        for group in opt.param_groups:
            for p in group["params"]:
                found.setdefault(id(p), (index, group))
    return found


def _detached_detail(tensor, use, facts):
    if any(c.failed and id(tensor) in c.leaves for c in facts.recorder.backward_calls):
        return "backward() raised an error before its gradient arrived.", \
            "Fix the error first (see .error)."
    if not facts.backward_ran:
        return "The step never called backward() (or autograd.grad), so no gradient was made.", \
            "Call loss.backward() in the step."
    if id(tensor) in facts.leaves or (tensor.grad_fn is not None
                                      and tensor.grad_fn in facts.nodes):
        return ("Its graph reaches the loss, but backward(inputs=...) or torch.autograd.grad "
                "left it out, so .grad was not filled."), \
            "List it in inputs=, or update it from the gradients autograd.grad returns."
    if use.cut_by:
        cuts = ", ".join(f"`{name}`" for name in use.cut_by)
        return f"It was used with grad on, but only through {cuts}, which returns no graph.", \
            FIX["detached"]
    cuts = [c for c in facts.recorder.cuts if c.mode == "grad"][:3]
    seen = "; cuts seen in this step: " + "; ".join(map(str, cuts)) if cuts else ""
    return ("Its results do not reach the loss: a later detach()/.item()/non-differentiable "
            f"op cut them, or the loss ignores them{seen}."), FIX["detached"]


def _not_moved_detail(tensor, index, group, facts):
    opt = facts.optimizers[index]
    if id(opt) not in facts.stepped:
        if facts.error_before_step:
            return "An error stopped the step before this optimizer's step() ran.", \
                "Fix the error (see .error); step() never ran."
        if any(id(tensor.grad) in grads and found.item()
               for grads, found in facts.recorder.unscaled):
            return ("optimizer.step() did not run: a GradScaler skips it when the scaled "
                    "gradients hold inf or NaN (it then lowers its scale)."), \
                ("Rare skips are normal; if every step is skipped, find the inf/NaN in the "
                 "loss or the gradients.")
        return "This optimizer's step() was never called in the step.", FIX["not_moved"]
    if group.get("lr") == 0:
        return "Its parameter group's learning rate is 0.", \
            "Give its group a learning rate above 0."
    return "step() ran but did not change it (an update too small to change the value?).", \
        FIX["not_moved"]


def _filled_before_step(tensor, facts):
    """Whether a backward() that reached ``tensor`` finished before its optimizer's step()."""
    before = facts.recorder.step_seq.get(id(tensor), 0)
    return any(c.kind == "backward" and not c.failed and c.seq < before
               and id(tensor) in c.leaves and (c.inputs is None or id(tensor) in c.inputs)
               for c in facts.recorder.backward_calls)


def decide(tensor, facts, grad, moved, requires_grad_before):
    """``(cause, detail, fix)`` for one tensor: the first cause of ``CAUSES`` that applies.

    ``grad``: the grad state at the end of the step (see :func:`grad_states`).
    """
    use = facts.recorder.uses.get(id(tensor))
    used = use is not None and bool(use.grad_on or use.grad_off or use.inference)
    received = id(tensor) in facts.received
    frozen = not use.required_grad if used else not (requires_grad_before
                                                     and tensor.requires_grad)
    if frozen and not received:
        return "frozen", MEANING["frozen"] + ".", FIX["frozen"]
    leaf = tensor.is_leaf
    if not received:  # a gradient arrived: whatever the recorder saw, it is connected
        if not used:
            return "unused", MEANING["unused"] + ".", FIX["unused"]
        if not use.grad_on and use.inference and not use.grad_off:
            return "inference_mode", MEANING["inference_mode"] + ".", FIX["inference_mode"]
        if not use.grad_on:
            if use.function is not None and not use.plain_off:
                name = use.function
                return "no_grad", (f"it was used only inside {name}.forward (a custom "
                                   "autograd.Function runs forward with grad mode off), and "
                                   "autograd gives gradients only to the inputs of "
                                   f"{name}.apply."), \
                    (f"Pass it to {name}.apply(...) as an input and return its gradient from "
                     "backward().")
            return "no_grad", MEANING["no_grad"] + ".", FIX["no_grad"]
        if leaf:
            return ("detached", *_detached_detail(tensor, use, facts))
    if not leaf:
        if tensor.grad_fn is None or tensor.grad_fn not in facts.nodes:
            return ("detached", *_detached_detail(tensor, use, facts))
        return "non_leaf", MEANING["non_leaf"] + " (moving a leaf with .to()/.double(), or " \
            "computing from it, makes a new non-leaf tensor).", FIX["non_leaf"]
    found = facts.holders.get(id(tensor))
    if facts.optimizers and found is None and not moved:
        return "not_in_optimizer", MEANING["not_in_optimizer"] + " (compared by identity).", \
            FIX["not_in_optimizer"]
    recorder = facts.recorder
    at_step = recorder.grad_at_step.get(id(tensor)) if found is not None else None
    state = at_step or grad
    if (at_step in ("None", "zeros") and grad == "values" and not moved
            and not _filled_before_step(tensor, facts)):
        return "not_moved", ("optimizer.step() ran before backward() gave it a gradient, so the "
                             "step had nothing to apply."), \
            "Call loss.backward() before optimizer.step()."
    if state == "None":
        if any(c.failed and id(tensor) in c.leaves for c in facts.recorder.backward_calls):
            return "zero_grad", ("Its .grad was cleared, and the backward() that would fill it "
                                 "again raised an error (see .error)."), "Fix the error first."
        when = "before optimizer.step() ran" if at_step else "before the step ended"
        return "zero_grad", (f"backward() filled its .grad, then it was set back to None {when}"
                             " (zero_grad() after backward()?)."), \
            "Call zero_grad() before backward(), not between backward() and step()."
    if state == "zeros":
        after, seq = recorder.grad_after_backward.get(id(tensor), (None, 0))
        if at_step and after == "values" and seq < recorder.step_seq.get(id(tensor), 0):
            return "zero_grad", ("backward() gave it a non-zero gradient, but it was all zeros "
                                 "when optimizer.step() ran: code between the two zeroed it."), \
                ("Check what runs between backward() and step(): clip_grad_norm_ needs "
                 "max_norm > 0, zero_grad() belongs before backward(), and a hook or edit of "
                 ".grad must not zero it.")
        detail = ("its gradient was all zeros when optimizer.step() ran." if at_step
                  else MEANING["zero_grad"] + ".")
        return "zero_grad", detail, FIX["zero_grad"]
    if found is not None and not moved:
        return ("not_moved", *_not_moved_detail(tensor, *found, facts))
    return "ok", MEANING["ok"] + ".", FIX["ok"]
