"""The catalogue's machinery: :class:`Bug`, :class:`Planted`, the ``BUGS`` registry, the
``@bug`` decorator that fills it, and what reads it (``plant``, ``source``, ``expected_causes``).
"""

import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class Planted:
    """A model with a bug planted, its training step and optimizer, and other named tensors."""

    model: nn.Module
    step: Callable
    optimizer: torch.optim.Optimizer
    tensors: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Bug:
    name: str
    label: str
    fix: str
    causes: dict | None  # parameter name -> cause, for the parameters that are not "ok"
    build: Callable = field(repr=False)
    error: str | None = None  # a fragment of the message PyTorch raises
    line: str | None = None  # in-place errors: the line that edits the saved tensor
    patch: str | None = None  # the line that replaces the `# BUG` line (default: ``fix``)
    fixed_causes: dict = field(default_factory=dict)  # what is still not "ok" after the fix


BUGS = {}


def bug(name, label, fix, causes, error=None, line=None, patch=None, fixed_causes=None):
    """Decorator: register ``build()`` (returns a :class:`Planted`) as bug ``name``."""
    def wrap(build):
        if name in BUGS:
            raise ValueError(f"bug {name!r} is registered twice")
        BUGS[name] = Bug(name, label, fix, causes, build, error, line, patch, fixed_causes or {})
        return build
    return wrap


def get_bug(name):
    """The :class:`Bug` called ``name``; a ValueError lists the valid names."""
    try:
        return BUGS[name]
    except KeyError:
        raise ValueError(f"unknown bug {name!r}; valid bugs: {', '.join(BUGS)}") from None


def plant(name, fixed=False):
    """A fresh model with bug ``name`` planted: a :class:`Planted`.

    ``fixed=True`` runs the same code with the ``# BUG`` line replaced by the fix.
    """
    item = get_bug(name)
    if not fixed or item.name == "none":
        return item.build()
    lines = source(name).splitlines()
    index = next(i for i, line in enumerate(lines) if "# BUG" in line)
    indent = lines[index][:len(lines[index]) - len(lines[index].lstrip())]
    lines[index] = indent + (item.patch or item.fix)
    namespace = dict(item.build.__globals__)  # the names the builder's module gives it
    exec(compile("\n".join(lines), f"<{name}, fixed>", "exec"), namespace)
    return namespace[item.build.__name__]()


def source(name):
    """The code of bug ``name``'s builder (what the learner reads), without the decorator."""
    lines = inspect.getsource(get_bug(name).build).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def "))
    return "\n".join(lines[start:])



def param_names(name):
    """The names of the parameters of bug ``name``'s model, in order."""
    return [n for n, _ in plant(name).model.named_parameters()]


def expected_causes(name):
    """Every parameter of bug ``name``'s model -> expected cause (``None`` if not claimed)."""
    item = get_bug(name)
    if item.causes is None:
        return None
    planted = plant(name)
    names = [n for n, _ in planted.model.named_parameters()] + list(planted.tensors)
    return {n: item.causes.get(n, "ok") for n in names}

