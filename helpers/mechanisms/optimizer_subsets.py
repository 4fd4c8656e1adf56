"""optimizer_subsets: which parameters the optimizer holds, and how a layer is kept fixed (06).

An optimizer moves only the parameters it was given, and it reads their ``.grad``, never their
``requires_grad``; the four optimizers here skip a parameter whose ``.grad`` is ``None`` (every
built-in one but LBFGS leaves such a parameter alone, see :mod:`helpers.optimizers`). So a
parameter left out of the optimizer still gets a gradient (the backward cost is paid) that
``optimizer.zero_grad()`` never clears, and a frozen parameter the optimizer still holds is moved
by weight decay, and by momentum or Adam's moments built up earlier, once its grad is zeros
instead of ``None``.

The step: build the optimizer over the chosen parameters and train for ``WARMUP_STEPS`` (so
momentum and Adam's moments exist), then treat the layer meant to stay fixed and train for
``STEPS_AFTER`` more steps. "changed by step" measures only those later steps.
"""

import torch

from ..exercises import Hint, exercise
from ..outcome import grad_state
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_loss, toy_net

WARMUP_STEPS = 3
STEPS_AFTER = 3
MOMENTUM = 0.9
WEIGHT_DECAY = 0.01

PARAMS_CHOICES = {
    "all": "all parameters",
    "l2": "only l2",
    "l1": "only l1",
    "lr0": "all, l1 at lr=0",
}
OPTIMIZER_CHOICES = {
    "sgd": "SGD",
    "momentum": "SGD momentum=0.9",
    "adam": "Adam",
    "adamw": "AdamW weight_decay=0.01",
}
EXCLUDED_CHOICES = {
    "alone": "left alone",
    "frozen": "requires_grad_(False); p.grad = None",
    "zeros": "requires_grad_(False); p.grad.zero_()",
}


def param_groups(net, params):
    """What the optimizer gets: every parameter, one layer, or both with l1's group at lr=0."""
    if params == "all":
        return [{"params": list(net.parameters())}]
    if params == "lr0":  # discriminative learning rates, here with the lowest one: 0
        return [{"params": list(net.l1.parameters()), "lr": 0.0},
                {"params": list(net.l2.parameters())}]
    return [{"params": list(getattr(net, params).parameters())}]


def make_optimizer_of_kind(kind, groups, lr=LEARNING_RATE):
    """SGD, SGD with momentum, Adam or AdamW (with weight decay) over ``groups``."""
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if kind == "momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=MOMENTUM)
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=WEIGHT_DECAY)


def fixed_layer(net, params):
    """The layer meant to stay fixed: l2 when the optimizer gets only l1, otherwise l1.

    With ``params="all"`` the optimizer still holds it: only the freezing keeps it fixed.
    """
    return net.l2 if params == "l1" else net.l1


def freeze_and_clear(layer, grads="none"):
    """``requires_grad_(False)`` on ``layer``, then clear its grads (freezing alone keeps them):
    ``p.grad = None`` or, with ``grads="zeros"``, zeros (``zero_grad(set_to_none=False)``)."""
    layer.requires_grad_(False)
    layer.zero_grad(set_to_none=grads == "none")


def train_steps(ctx, optimizer, steps, set_to_none=True, before_step=None):
    """``steps`` iterations of the loop body: zero_grad, forward, backward, step."""
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=set_to_none)
        ctx.loss_of(ctx.net(ctx.x)).backward()
        if before_step is not None:
            before_step()
        optimizer.step()


class PassCounter:
    """Counts, per parameter, the backward passes summed in its ``.grad`` since it was cleared.

    A ``Tensor.register_hook`` runs before each pass's gradient is added: if ``.grad`` is then
    ``None`` or zeros, the count restarts at 1, otherwise it grows by 1.
    """

    def __init__(self, net):
        self.counts = {}
        for name, p in net.named_parameters():
            p.register_hook(self._hook(name, p))

    def _hook(self, name, p):
        def hook(grad):
            cleared = p.grad is None or not torch.any(p.grad)
            self.counts[name] = 1 if cleared else self.counts.get(name, 0) + 1
        return hook

    def describe(self, name, p):
        """``None``, ``zeros`` or ``values (k passes)``."""
        state = grad_state(p.grad)
        if state != "values":
            return state
        k = self.counts.get(name, 0)
        return f"values ({k} pass{'' if k == 1 else 'es'})"


def held_lr(optimizer, p):
    """The learning rate ``optimizer`` uses for ``p``, or ``None`` if it does not hold ``p``."""
    for group in optimizer.param_groups:
        if any(q is p for q in group["params"]):
            return group["lr"]
    return None


def state_text(optimizer, p):
    """What ``optimizer`` keeps for ``p`` (besides the step count): "-" when it does not hold it."""
    if held_lr(optimizer, p) is None:
        return "-"
    keys = [k for k in optimizer.state.get(p, {}) if k != "step"]
    return ", ".join(keys) or "empty"


def note_before_step(ctx, optimizer, counter):
    """Table columns, taken just before the last ``optimizer.step()``."""
    named = dict(ctx.net.named_parameters())
    ctx.note("optimizer", {n: "not held" if held_lr(optimizer, p) is None
                           else f"lr {held_lr(optimizer, p):g}" for n, p in named.items()})
    ctx.note("optimizer state", {n: state_text(optimizer, p) for n, p in named.items()})
    ctx.note("grad before step", {n: counter.describe(n, p) for n, p in named.items()})


def optimizer_subsets_step(ctx, params="l2", optimizer="adam", excluded="alone"):
    """Warm-up steps, then keep one layer fixed (or not), then more steps: what moves?"""
    counter = PassCounter(ctx.net)
    opt = make_optimizer_of_kind(optimizer, param_groups(ctx.net, params))
    train_steps(ctx, opt, WARMUP_STEPS)  # earlier training: momentum / Adam moments now exist
    if excluded != "alone":
        freeze_and_clear(fixed_layer(ctx.net, params),
                         grads="zeros" if excluded == "zeros" else "none")
    ctx.start_measuring()  # "changed by step" counts from here
    set_to_none = excluded != "zeros"  # the "zeros" loop uses zero_grad(set_to_none=False)
    train_steps(ctx, opt, STEPS_AFTER - 1, set_to_none)
    train_steps(ctx, opt, 1, set_to_none,
                before_step=lambda: note_before_step(ctx, opt, counter))


HELD = {"all": "all parameters", "l2": "L2 only", "l1": "L1 only", "lr0": "all, L1 at lr=0"}
OPTIMIZER_NAMES = {"sgd": "SGD", "momentum": "SGD momentum", "adam": "Adam", "adamw": "AdamW"}


def caption(options):
    """The step in words: "Adam over L2 only, nothing frozen", "SGD over all parameters, L1
    frozen, grads zeros"."""
    fixed = "L2" if options["params"] == "l1" else "L1"
    kept = {"alone": "nothing frozen", "frozen": f"{fixed} frozen, grads None",
            "zeros": f"{fixed} frozen, grads zeros"}[options["excluded"]]
    return f"{OPTIMIZER_NAMES[options['optimizer']]} over {HELD[options['params']]}, {kept}"


PREDICTIONS = {
    "params=l2, optimizer=adam, excluded=alone":
        "backward() has never heard of the optimizer: every parameter that requires grad and "
        "feeds the loss gets a gradient, l1 included. Leaving l1 out of the optimizer only means "
        "that nothing applies its gradient, and that optimizer.zero_grad() never clears it: "
        "l1's .grad adds up over all six passes.",
}

OPTIMIZER_SUBSETS = register(Mechanism(
    name="optimizer_subsets",
    title="Optimizer parameter subsets and freezing",
    step=optimizer_subsets_step,
    options=(
        Option("params", PARAMS_CHOICES, "l2",
               "Which parameters the optimizer gets (for the warm-up and after it)"),
        Option("optimizer", OPTIMIZER_CHOICES, "adam", "Which optimizer"),
        Option("excluded", EXCLUDED_CHOICES, "alone",
               "After warm-up, what happens to the layer meant to stay fixed (l1; l2 when the "
               "optimizer gets only l1)"),
    ),
    notebook="06_optimizer_subsets",
    summary="A parameter left out of the optimizer still gets (accumulating) gradients but does "
            "not move; a frozen parameter with zero grads is still moved by momentum, Adam and "
            "weight decay if the optimizer holds it (and, after earlier steps, by LBFGS even with "
            "grads None).",
    predictions=PREDICTIONS,
    caption=caption,
))


# ---- exercises -----------------------------------------------------------------------------

def _misplaced_zero_grad():
    """Weights-only SGD, zero_grad() between backward() and step(): (names with a grad after
    backward(), names whose grad is None when step() runs)."""
    net = toy_net()
    x, y = toy_batch()
    held = [net.l1.weight, net.l2.weight]
    optimizer = torch.optim.SGD(held, lr=LEARNING_RATE)
    toy_loss(net(x), y).backward()
    filled = {name for name, p in net.named_parameters() if p.grad is not None}
    optimizer.zero_grad()
    none = {name for name, p in net.named_parameters() if p.grad is None}
    return filled, none


@exercise("06.1", why="optimizer.zero_grad() ran after backward(): it cleared (to None, the "
                      "default set_to_none=True) the grads of what the optimizer holds, the two "
                      "weights, so step() found None and skipped them. The biases are not in the "
                      "optimizer: their grads survive, and nothing applies them. Clear before "
                      "backward(), not after.",
          hints=(Hint(lambda: "a", "Print the grads just before step(): l2.weight.grad is "
                                   "already None there, so step() did not do it."),
                 Hint(lambda: "c", "Print l2.weight.grad right after backward(): it holds "
                                   "values.")))
def _cause_of_misplaced_zero_grad():
    """"b" if backward() filled all four and the misplaced zero_grad() emptied exactly the
    parameters the optimizer holds; "?" otherwise (the test then fails)."""
    filled, none = _misplaced_zero_grad()
    return "b" if filled == set(PARAM_NAMES) and none == {"l1.weight", "l2.weight"} else "?"


def _adamw_steps(steps, grad="zeros", set_to_none=True):
    """06.2: a frozen 2.0 under a fresh AdamW(lr=0.1, weight_decay=0.5), its grad zeros (or
    ``None``), after ``steps`` iterations of ``step(); zero_grad(set_to_none=...)``."""
    p = torch.nn.Parameter(torch.tensor(2.0))
    optimizer = torch.optim.AdamW([p], lr=0.1, weight_decay=0.5)
    p.requires_grad_(False)
    p.grad = torch.zeros(()) if grad == "zeros" else None
    for _ in range(steps):
        optimizer.step()
        optimizer.zero_grad(set_to_none=set_to_none)
    return float(p)


@exercise("06.2", why="The first step sees a grad of zeros, not None: AdamW decays p by "
                      "1 - lr * weight_decay = 0.95 (with zero grads and no history Adam's own "
                      "update is 0). Then zero_grad() (default set_to_none=True) makes the grad "
                      "None, and AdamW skips p in the next two steps, decay included: "
                      "2.0 * 0.95 = 1.9.",
          hints=(Hint(lambda: _adamw_steps(3, set_to_none=False),
                      "That is what zero_grad(set_to_none=False) would give: zeros on every "
                      "step. The default zero_grad() sets the grad to None; what does AdamW do "
                      "with a None grad?"),
                 Hint(lambda: _adamw_steps(3, grad=None),
                      "That is what a None grad from the start gives. Before the first step "
                      "the grad is zeros, not None: AdamW does not skip p then, and its weight "
                      "decay needs no gradient.")))
def _adamw_decay_of_zero_grad():
    return _adamw_steps(3)


def _changed_in_last_two(set_to_none=False, freeze_bias_early=True):
    """SGD momentum over all; l1.bias frozen before training, l2.bias after 2 steps; 2 more
    steps with zero_grad(set_to_none=...): the names changed in those last 2 steps."""
    net = toy_net()
    x, y = toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, momentum=0.9)
    if freeze_bias_early:
        net.l1.bias.requires_grad_(False)
    for step in range(4):
        if step == 2:
            net.l2.bias.requires_grad_(False)
            before = {name: p.detach().clone() for name, p in net.named_parameters()}
        optimizer.zero_grad(set_to_none=set_to_none)
        toy_loss(net(x), y).backward()
        optimizer.step()
    return {name for name, p in net.named_parameters() if not torch.equal(before[name], p)}


@exercise("06.3", why="l1.weight and l2.weight train. l2.bias was frozen after two steps: "
                      "zero_grad(set_to_none=False) leaves it a grad of zeros, not None, so SGD "
                      "does not skip it, and the momentum buffer from the first two steps keeps "
                      "moving it. l1.bias was frozen before its first backward(): its .grad was "
                      "never filled, set_to_none=False has nothing to zero, it stays None, and "
                      "SGD skips it.",
          hints=(Hint(lambda: _changed_in_last_two(freeze_bias_early=False),
                      "Look at l1.bias: it was frozen before any backward(). What is in its "
                      ".grad, and what does zero_grad(set_to_none=False) do to that?"),
                 Hint(lambda: _changed_in_last_two(set_to_none=True),
                      "That would be the default zero_grad(). Here l2.bias's grad is zeros, not "
                      "None, and SGD keeps a momentum buffer for it from the first two steps.")))
def _moved_after_freezing_with_zero_grads():
    return _changed_in_last_two()
