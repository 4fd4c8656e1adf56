"""Debugging (notebook 11_debugging): a bug from :mod:`helpers.bugs` planted into the small
residual network (the step swaps the toy net for that model), and the gradient doctor on it.

Outside notebook 08's comparison (``in_comparison=False``). The predict-first step of notebook
11 is its own mechanism, ``broken`` (:mod:`helpers.mechanisms.broken`).
"""

import torch

from .. import bugs
from ..exercises import Hint, exercise
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, toy_batch, toy_loss, toy_net

BUG_CHOICES = {name: item.label for name, item in bugs.BUGS.items()}


def planted_param_names(options):
    """The parameters of the model bug ``options["bug"]`` runs on (some bugs add a module),
    found without touching the global random state."""
    with torch.random.fork_rng():
        return tuple(name for name, _ in bugs.plant(options["bug"]).model.named_parameters())


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
    param_names=planted_param_names,
    caption=lambda o: "no bug planted" if o["bug"] == "none" else f"bug: {BUG_CHOICES[o['bug']]}",
))


# --- Exercises of notebook 11_debugging ----------------------------------------------------

def _diagnosed_causes(build):
    """``{name: cause}`` for the parameters of ``build()``'s step that will not train."""
    from ..doctor import diagnose

    model, step, optimizer = build()
    causes = diagnose(model, step, optimizer).causes
    return {name: cause for name, cause in causes.items() if cause != "ok"}


def sgd_loop_step(optimizer, compute_loss):
    """The loop body of every exercise step: zero_grad, ``compute_loss()``, backward, step."""
    def step():
        optimizer.zero_grad()
        loss = compute_loss()
        loss.backward()
        optimizer.step()
        return loss
    return step


def numpy_round_trip():
    """Exercise 11.1's step: L1's output scaled in NumPy and brought back."""
    net, (x, y) = toy_net(), toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

    def compute_loss():
        hidden = torch.relu(net.l1(x))
        hidden = torch.from_numpy(hidden.detach().numpy() * 2)
        return toy_loss(net.l2(hidden), y)
    return net, sgd_loop_step(optimizer, compute_loss), optimizer


def warm_up_from_zero():
    """Exercise 11.2's step: a linear warm-up whose first learning rate is 0."""
    net, (x, y) = toy_net(), toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: epoch / 10)
    step = sgd_loop_step(optimizer, lambda: toy_loss(net(x), y))
    step.scheduler = scheduler  # the learner calls scheduler.step() after each epoch
    return net, step, optimizer


def decorated_features():
    """Exercise 11.3's step: a feature function decorated with @torch.no_grad()."""
    net, (x, y) = toy_net(), toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

    @torch.no_grad()
    def features(inputs):
        return torch.relu(net.l1(inputs))
    return net, sgd_loop_step(optimizer, lambda: toy_loss(net.l2(features(x)), y)), optimizer


@exercise("11.1", why="torch.from_numpy() makes a new tensor with no history, so the NumPy "
                      "round trip cuts the graph: l1.weight and l1.bias are 'detached'. Not "
                      "'no_grad': grad mode was on while L1 ran; the cut came after it.",
          hints=(Hint(lambda: {name: "no_grad" for name in numpy_round_trip_causes()},
                      "Not no_grad: grad mode was on while L1 ran, and autograd recorded it. "
                      "Look at what happens after L1: which call makes a tensor with no "
                      "history?"),))
def numpy_round_trip_causes():
    return _diagnosed_causes(numpy_round_trip)


@exercise("11.2", why="LambdaLR sets lr = 0.1 * lambda(0) = 0 when it is built, so the first "
                      "step moves nothing: all four parameters are 'not_moved'. If you answered "
                      "{} (nothing wrong), you read lr=0.1 in SGD(...); print "
                      "optimizer.param_groups[0]['lr'] after building the scheduler.",
          hints=(Hint(dict, "Every grad is filled, but did anything move? Print "
                            "optimizer.param_groups[0]['lr'] right after the scheduler is "
                            "built."),))
def warm_up_from_zero_causes():
    return _diagnosed_causes(warm_up_from_zero)


@exercise("11.3", why="@torch.no_grad() turns grad mode off for the whole call of "
                      "features(), so L1 ran with grad mode off: l1.weight and l1.bias are "
                      "'no_grad'. Not 'detached': nothing was cut after L1; autograd never "
                      "recorded it.",
          hints=(Hint(lambda: {name: "detached" for name in decorated_features_causes()},
                      "Nothing calls detach(): look at the line above def features. What does "
                      "a decorator do to every call of the function?"),))
def decorated_features_causes():
    return _diagnosed_causes(decorated_features)
