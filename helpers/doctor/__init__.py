"""The gradient doctor: ``diagnose(model, step)`` says why each parameter does or does not train.

It runs the learner's step once under a ``TorchFunctionMode`` recorder (which parameters each
torch call used, in which grad mode, and which calls cut the graph), walks the graph of every
``backward()`` call, reads each ``.grad`` and value before and after, and puts everything back.

Causes, the first that applies (``CAUSES``; ``MEANING`` and ``FIX`` hold the words): frozen,
unused, inference_mode, no_grad, detached, non_leaf, not_in_optimizer, zero_grad, not_moved, ok.
Where a case could fit two words:

- ``detached`` also covers a parameter whose graph reaches the loss but that got no ``.grad``
  because the step never called ``backward()``, or ``backward(inputs=...)`` /
  ``torch.autograd.grad`` left it out; the detail says which.
- ``zero_grad`` judges the gradient ``optimizer.step()`` saw (else the one left at the end): all
  zeros, or set back to ``None`` after ``backward()`` (``zero_grad()`` in the wrong place).
- ``optimizer`` may be one optimizer, a list of them (GAN, actor-critic), or ``None``: then the
  optimizers whose ``step()`` ran are used (and restored); one that never stepped is unknown.
- ``step`` may return one loss or a tuple/list/dict of scalar losses.

Lines are named ``file.py:LINE`` (``cell line N`` for a notebook cell), with the line's code.
"""

from .causes import CAUSES, FIX, MEANING
from .report import Diagnosis
from .run import diagnose

__all__ = ["CAUSES", "FIX", "MEANING", "Diagnosis", "diagnose"]
