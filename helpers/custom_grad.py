"""Three gradient tricks as ``torch.autograd.Function``s, and the same tricks as expressions.

- :class:`STE`: straight-through estimator. Forward rounds to a grid of ``step``; backward
  passes the gradient through unchanged, as if the rounding were the identity.
- :class:`GradReverse`: gradient reversal (domain-adversarial training). Forward is the
  identity; backward multiplies the gradient by ``-lam``.
- :class:`ScaleGrad`: forward is the identity; backward multiplies the gradient by ``scale``
  (slow down or speed up what lies upstream, one branch at a time).

Each has an expression form built from ``detach()`` that gives the same values and gradients:
:func:`ste_expr` and :func:`scale_grad_expr` (reversal is ``scale_grad_expr(x, -lam)``).

Introduced in notebook 13_custom_gradients.
"""

import torch

STEP = 0.25  # the STE's rounding grid


def quantize(x, step=STEP):
    """``x`` rounded to the nearest multiple of ``step`` (no gradient trick: round's own
    gradient is zero almost everywhere)."""
    return torch.round(x / step) * step


class STE(torch.autograd.Function):
    """Round to a grid of ``step`` forward; pass the gradient straight through backward."""

    @staticmethod
    def forward(ctx, x, step=STEP):
        return quantize(x, step)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None  # one gradient per forward input; None for ``step``


class GradReverse(torch.autograd.Function):
    """The identity forward; the gradient times ``-lam`` backward."""

    @staticmethod
    def forward(ctx, x, lam=1.0):
        ctx.lam = lam  # a plain number: kept on ctx (tensors go through save_for_backward)
        return x.clone()  # a new tensor, not x itself or a view of it

    @staticmethod
    def backward(ctx, grad_output):
        return -ctx.lam * grad_output, None


class ScaleGrad(torch.autograd.Function):
    """The identity forward; the gradient times ``scale`` backward."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad_output):
        return ctx.scale * grad_output, None


def ste(x, step=STEP):
    """:class:`STE` applied to ``x``."""
    return STE.apply(x, step)


def grad_reverse(x, lam=1.0):
    """:class:`GradReverse` applied to ``x``."""
    return GradReverse.apply(x, lam)


def scale_grad(x, scale):
    """:class:`ScaleGrad` applied to ``x``."""
    return ScaleGrad.apply(x, scale)


def ste_expr(x, step=STEP):
    """The STE as an expression: the value of ``quantize(x)``, the gradient of ``x``."""
    return x + (quantize(x, step) - x).detach()


def scale_grad_expr(x, scale):
    """``ScaleGrad`` as an expression: the value of ``x`` exactly, the gradient times
    ``scale`` (``x - x.detach()`` is zero but carries ``x``'s gradient)."""
    return x.detach() + scale * (x - x.detach())
