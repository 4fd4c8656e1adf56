"""Debugging (notebook 11_debugging): broken training steps, and the gradient doctor on them.

Two entries, both outside notebook 08's comparison (``in_comparison=False``):

- ``broken_step``: the predict-first step on the toy net: a head replaced after the optimizer
  was built, and L1 run under ``torch.no_grad()``; ``version="fixed"`` is the repaired step.
- ``debugging``: one step of a bug from :mod:`helpers.bugs` planted into the small residual
  network (the step swaps the toy net for that model), for the registry's views and benchmarks.
"""

import torch

from .. import bugs
from ..exercises import exercise
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, toy_batch, toy_loss, toy_net

VERSIONS = {"broken": "as written", "fixed": "fixed"}


def broken_step(ctx, version="broken"):
    """The predict-first step of notebook 11 (``"broken"``) or its repair (``"fixed"``)."""
    net, x = ctx.net, ctx.x
    if version == "broken":
        optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
        net.l2 = torch.nn.Linear(3, 1)           # a fresh head, after the optimizer was built
        ctx.start_measuring()                     # "changed" compares with the new head
        with torch.no_grad():                     # meant: "do not train L1" (it never says so)
            hidden = torch.relu(net.l1(x))
    else:
        net.l2 = torch.nn.Linear(3, 1)
        ctx.start_measuring()
        optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
        hidden = torch.relu(net.l1(x))
    optimizer.zero_grad()
    loss = ctx.loss_of(net.l2(hidden))
    loss.backward()
    optimizer.step()


BROKEN_STEP = register(Mechanism(
    name="broken_step",
    title="A broken training step",
    step=broken_step,
    options=(Option("version", VERSIONS, "broken", "The step as written, or fixed"),),
    notebook="11_debugging",
    summary="L1 under no_grad gets no gradient; the replaced head gets one, but the optimizer "
            "holds the old head, so it never moves.",
    in_comparison=False,
))

BUG_CHOICES = {name: item.label for name, item in bugs.BUGS.items()}


class _BackwardWatcher(torch.overrides.TorchFunctionMode):
    """Remembers the tensor ``backward()`` is called on, even if the call then raises."""

    loss = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.backward:
            self.loss = args[0]
        return func(*args, **(kwargs or {}))


def debugging_step(ctx, bug="none"):
    """One step of bug ``bug`` (:mod:`helpers.bugs`) on its own model instead of the toy net."""
    planted = bugs.plant(bug)
    ctx.net = planted.model
    ctx.notes = {name: {} for name, _ in ctx.net.named_parameters()}
    ctx.start_measuring()
    watcher = _BackwardWatcher()
    try:
        with watcher:
            planted.step()
    finally:
        ctx.loss = watcher.loss  # drawn even when backward() raised


DEBUGGING = register(Mechanism(
    name="debugging",
    title="Plant a bug in a small residual network",
    step=debugging_step,
    options=(Option("bug", BUG_CHOICES, "none", "The mistake planted into the step"),),
    notebook="11_debugging",
    summary="Each bug stops some parameters from training; the gradient doctor names which "
            "and why.",
    in_comparison=False,
))


# --- Exercises of notebook 11_debugging ----------------------------------------------------

def _diagnosed_causes(build):
    """``{name: cause}`` for the parameters of ``build()``'s step that will not train."""
    from ..doctor import diagnose

    model, step, optimizer = build()
    causes = diagnose(model, step, optimizer).causes
    return {name: cause for name, cause in causes.items() if cause != "ok"}


def numpy_round_trip():
    """Exercise 11.1's step: L1's output scaled in NumPy and brought back."""
    net, (x, y) = toy_net(), toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

    def step():
        optimizer.zero_grad()
        hidden = torch.relu(net.l1(x))
        hidden = torch.from_numpy(hidden.detach().numpy() * 2)
        loss = toy_loss(net.l2(hidden), y)
        loss.backward()
        optimizer.step()
        return loss
    return net, step, optimizer


def warm_up_from_zero():
    """Exercise 11.2's step: a linear warm-up whose first learning rate is 0."""
    net, (x, y) = toy_net(), toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: epoch / 10)

    def step():
        optimizer.zero_grad()
        loss = toy_loss(net(x), y)
        loss.backward()
        optimizer.step()
        return loss
    step.scheduler = scheduler  # the learner calls scheduler.step() after each epoch
    return net, step, optimizer


def decorated_features():
    """Exercise 11.3's step: a feature function decorated with @torch.no_grad()."""
    net, (x, y) = toy_net(), toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

    @torch.no_grad()
    def features(inputs):
        return torch.relu(net.l1(inputs))

    def step():
        optimizer.zero_grad()
        loss = toy_loss(net.l2(features(x)), y)
        loss.backward()
        optimizer.step()
        return loss
    return net, step, optimizer


@exercise("11.1", why="torch.from_numpy() makes a new tensor with no history, so the NumPy "
                      "round trip cuts the graph: l1.weight and l1.bias are 'detached'. Not "
                      "'no_grad': grad mode was on while L1 ran; the cut came after it.")
def numpy_round_trip_causes():
    return _diagnosed_causes(numpy_round_trip)


@exercise("11.2", why="LambdaLR sets lr = 0.1 * lambda(0) = 0 when it is built, so the first "
                      "step moves nothing: all four parameters are 'not_moved'. If you answered "
                      "{} (nothing wrong), you read lr=0.1 in SGD(...); print "
                      "optimizer.param_groups[0]['lr'] after building the scheduler.")
def warm_up_from_zero_causes():
    return _diagnosed_causes(warm_up_from_zero)


@exercise("11.3", why="@torch.no_grad() turns grad mode off for the whole call of "
                      "features(), so L1 ran with grad mode off: l1.weight and l1.bias are "
                      "'no_grad'. Not 'detached': nothing was cut after L1; autograd never "
                      "recorded it.")
def decorated_features_causes():
    return _diagnosed_causes(decorated_features)
