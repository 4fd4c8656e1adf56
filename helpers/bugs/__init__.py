"""A catalogue of broken training steps on a small residual network (notebook 11_debugging).

Each bug is a training step as a learner writes it, with one mistake planted. The API:

- ``BUGS``: bug name -> :class:`Bug` (``name``, ``label``, ``fix`` in one line, ``causes``:
  parameter name -> the cause the gradient doctor should report, for every parameter that is
  not ``"ok"``, or ``None`` (not claimed: the in-place errors, where the error is the
  diagnosis); ``error``: a fragment of the error PyTorch raises, or ``None``; ``line``: for an
  in-place error, the text of the line that edits the saved tensor; ``fixed_causes``: what is
  still not ``"ok"`` after the fix, usually ``{}``).
- ``plant(name, fixed=False)`` -> :class:`Planted` (``model``, ``step``, ``optimizer``,
  ``tensors``): a fresh model with the bug planted, ready for ``helpers.diagnose(p.model,
  p.step, p.optimizer, tensors=p.tensors)``. ``step()`` runs one training step and returns the
  loss. ``fixed=True`` runs the same code with its one ``# BUG`` line replaced by the fix.
- ``source(name)``: the code of the bug's builder, to show in the notebook.
- ``expected_causes(name)``: every parameter's expected cause (``"ok"`` filled in).

The claimed causes are checked without the doctor in tests/test_bugs.py (module hooks, a walk
of the loss's graph, ``.grad`` and values before and after, optimizer membership).

Modules: ``catalogue`` (the registry and what reads it), ``model`` (the network, its batch and
the correct step), and the bugs by kind: ``no_gradient``, ``no_step``, ``in_place``. They are
imported in that order, which is the order of ``BUGS`` (and of notebook 11's dropdown). The
doctor names the learner's lines as ``file.py:LINE``, so notebook 11's stored outputs hold line
numbers of these modules: an edit that moves a bug's lines means rebuilding notebook 11.
"""

from .catalogue import BUGS, Bug, Planted, bug, expected_causes, get_bug, param_names, plant, source
from .model import EVERY, LR, SEED, STEM, Block, ResidualNet, bug_batch, residual_net
from . import no_gradient, no_step, in_place  # noqa: E402,F401  (register the bugs, in order)

__all__ = ["BUGS", "Bug", "Planted", "bug", "expected_causes", "get_bug", "param_names",
           "plant", "source", "EVERY", "LR", "SEED", "STEM", "Block", "ResidualNet",
           "bug_batch", "residual_net"]
