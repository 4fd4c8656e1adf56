"""What one training step did to each parameter of the toy network."""

from dataclasses import dataclass, field

import torch

from .errors import CaughtError, explain
from .layer_calls import recording_layers
from .toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_loss, toy_net


@dataclass(frozen=True)
class ParamOutcome:
    """The state of one parameter after a step."""

    name: str
    requires_grad: bool
    grad: str  # "None", "zeros" or "values"
    grad_norm: float | None
    changed: bool
    extra: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """Everything a view needs about one step: per-parameter results, the loss, the error."""

    mechanism: str
    options: dict
    params: dict  # name -> ParamOutcome
    loss: torch.Tensor | None
    error: CaughtError | None
    tensors: dict  # name -> the parameter tensor, to label graph nodes
    # LayerCall per call of a toy-net layer, in order: what each recorded (graph layer labels)
    recorded: tuple = ()

    def grads_none(self):
        """Names of the parameters whose ``.grad`` is ``None`` after the step."""
        return [name for name, p in self.params.items() if p.grad == "None"]

    def __repr__(self):
        from .grad_table import grad_table

        return repr(grad_table(self))


def grad_state(grad):
    """``"None"``, ``"zeros"`` or ``"values"`` for a ``.grad`` attribute."""
    if grad is None:
        return "None"
    return "zeros" if not torch.any(grad) else "values"


def params_with_grad_none(module):
    """The names of ``module``'s parameters whose ``.grad`` is ``None``, as a set."""
    return {name for name, p in module.named_parameters() if p.grad is None}


def toy_net_after_backward():
    """A fresh toy net after one forward and backward on the toy batch (no step)."""
    net, (x, y) = toy_net(), toy_batch()
    toy_loss(net(x), y).backward()
    return net


class StepContext:
    """A fresh toy net and batch for one step; a mechanism fills in ``loss`` and notes."""

    def __init__(self):
        self.net = toy_net()
        self.x, self.y = toy_batch()
        self.loss = None
        self.notes = {name: {} for name in PARAM_NAMES}
        self.start_measuring()

    def start_measuring(self):
        """Measure "changed by step" from now on (a mechanism calls it after warm-up steps)."""
        self.before = {n: p.detach().clone() for n, p in self.net.named_parameters()}

    def loss_of(self, output):
        """The toy loss of ``output``; remembered so the graph can be drawn."""
        self.loss = toy_loss(output, self.y)
        return self.loss

    def sgd_step(self, forward):
        """The plain loop body on ``net``: zero_grad, ``forward()``, its loss, backward, an SGD
        step. A step that varies only the forward pass is this call."""
        optimizer = torch.optim.SGD(self.net.parameters(), lr=LEARNING_RATE)
        optimizer.zero_grad()
        self.loss_of(forward()).backward()
        optimizer.step()

    def note(self, column, values):
        """Add an extra table column: ``values`` maps parameter name to text."""
        for name, value in values.items():
            self.notes[name][column] = value

    def note_grads(self, column):
        """Record each parameter's grad state now, as an extra column."""
        self.note(column, {n: grad_state(p.grad) for n, p in self.net.named_parameters()})


def run_step(mechanism, options, body):
    """Run ``body(ctx, **options)`` on a fresh toy net and describe what happened.

    An error PyTorch raises is part of the lesson: it is caught and explained, not re-raised.
    That is a RuntimeError from autograd, or a ValueError such as an optimizer's refusal of an
    empty parameter list (option values are checked before the step runs). What each layer of
    ``ctx.net`` recorded is kept in ``Outcome.recorded``, so graphs can name the layers.
    """
    ctx = StepContext()
    error = None
    calls = []
    try:
        with recording_layers(ctx.net, calls):
            body(ctx, **options)
    except (RuntimeError, ValueError) as exc:
        error = explain(exc)
    params = {}
    for name, p in ctx.net.named_parameters():
        params[name] = ParamOutcome(
            name=name,
            requires_grad=p.requires_grad,
            grad=grad_state(p.grad),
            grad_norm=None if p.grad is None else float(p.grad.norm()),
            changed=not torch.equal(ctx.before[name], p.detach()),
            extra=dict(ctx.notes[name]),
        )
    return Outcome(mechanism, dict(options), params, ctx.loss, error,
                   dict(ctx.net.named_parameters()), tuple(calls))
