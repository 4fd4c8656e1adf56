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

The network (:class:`ResidualNet`): ``stem`` Linear(4 -> 8), one pre-activation residual
``block`` (``h + scale * fc2(relu(fc1(relu(h))))``) and a ``head`` Linear(8 -> 3) giving the
logits of 3 classes, trained with cross-entropy and SGD (lr 0.1) on a fixed batch of 16.
"""

import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

SEED = 0
LR = 0.1


class Block(nn.Module):
    """A pre-activation residual block: ``h + scale * fc2(relu(fc1(relu(h))))``."""

    def __init__(self, width=8):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.scale = nn.Parameter(torch.tensor(1.0))

    def branch(self, h):
        return self.fc2(torch.relu(self.fc1(torch.relu(h))))

    def forward(self, h):
        return h + self.scale * self.branch(h)


class ResidualNet(nn.Module):
    """stem -> residual block -> ReLU -> head: 4 features in, 3 class logits out."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(4, 8)
        self.block = Block(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(torch.relu(self.block(self.stem(x))))


def residual_net(seed=SEED):
    """A fresh :class:`ResidualNet` whose weights depend only on ``seed``."""
    torch.manual_seed(seed)
    return ResidualNet()


def bug_batch(seed=SEED):
    """A fixed batch ``(x, y)``: 16 inputs of 4 features, 16 labels in {0, 1, 2}."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 4, generator=generator)
    y = torch.randint(0, 3, (16,), generator=generator)
    return x, y


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
    namespace = dict(globals())
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


STEM = {"stem.weight", "stem.bias"}
EVERY = ["stem.weight", "stem.bias", "block.scale", "block.fc1.weight", "block.fc1.bias",
         "block.fc2.weight", "block.fc2.bias", "head.weight", "head.bias"]


# ---------------------------------------------------------------- the correct step


@bug("none", "no bug (the correct step)", fix="", causes={})
def correct_step():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


# ---------------------------------------------------------------- no gradient at all


@bug("frozen", "stem frozen (left over from fine-tuning)",
     fix="model.stem.requires_grad_(True)", causes=dict.fromkeys(STEM, "frozen"))
def frozen_stem():
    model, (x, y) = residual_net(), bug_batch()
    model.stem.requires_grad_(False)               # BUG: still frozen from an earlier phase
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("unused", "a second head that is never called",
     fix="delete model.aux (or use it in the loss)", patch="pass  # no model.aux",
     causes={"aux.weight": "unused", "aux.bias": "unused"})
def unused_head():
    model, (x, y) = residual_net(), bug_batch()
    model.aux = nn.Linear(8, 3)                    # BUG: an auxiliary head the step never calls
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("no_grad", "stem run under torch.no_grad()",
     fix="h = model.stem(x)", causes=dict.fromkeys(STEM, "no_grad"))
def stem_under_no_grad():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        with torch.no_grad(): h = model.stem(x)   # BUG: copied from the evaluation code
        loss = F.cross_entropy(model.head(torch.relu(model.block(h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("inference_mode", "stem run under torch.inference_mode()",
     fix="h = model.stem(x)",
     causes=dict.fromkeys(STEM, "inference_mode"))
def stem_under_inference_mode():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        with torch.inference_mode(): h = model.stem(x)  # BUG: a "fast" feature extractor
        loss = F.cross_entropy(model.head(torch.relu(model.block(h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("detach", "stem output detached", fix="h = model.stem(x)  # no .detach()",
     causes=dict.fromkeys(STEM, "detached"))
def detached_stem():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = model.stem(x).detach()                 # BUG: copied from logging code
        loss = F.cross_entropy(model.head(torch.relu(model.block(h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("item", "residual scale read with .item()",
     fix="s = model.block.scale.clamp(min=0)", causes={"block.scale": "detached"})
def scale_through_item():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = model.stem(x)
        s = max(model.block.scale.item(), 0.0)    # BUG: a Python float has no history
        h = h + s * model.block.branch(h)
        loss = F.cross_entropy(model.head(torch.relu(h)), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("argmax", "loss computed from argmax predictions",
     fix="loss = F.cross_entropy(model(x), y)", causes=dict.fromkeys(EVERY, "detached"),
     error="does not require grad and does not have a grad_fn")
def loss_from_argmax():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        predicted = model(x).argmax(dim=1)         # integer labels: no gradient
        loss = (predicted != y).float().mean()     # BUG: the error rate is not differentiable
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("non_leaf", "class prior moved with .to() after requires_grad=True",
     fix="prior = torch.zeros(3, dtype=torch.float64, requires_grad=True)",
     causes={"prior": "non_leaf"}, fixed_causes={"prior": "not_in_optimizer"})
def non_leaf_prior():
    model, (x, y) = residual_net(), bug_batch()
    prior = torch.zeros(3, requires_grad=True).to(torch.float64)  # BUG: .to() makes a copy
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x) + prior, y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer, {"prior": prior})


@bug("backward_inputs", "backward(inputs=...) lists only the head",
     fix="loss.backward()  # no inputs=", causes={n: "detached" for n in EVERY
                                                  if not n.startswith("head.")})
def backward_head_only():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward(inputs=list(model.head.parameters()))  # BUG: from a head-only phase
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


# ---------------------------------------------------------------- a gradient, but no step


@bug("not_in_optimizer", "stem left out of the optimizer",
     fix="trained = list(model.parameters())",
     causes=dict.fromkeys(STEM, "not_in_optimizer"))
def stem_not_in_optimizer():
    model, (x, y) = residual_net(), bug_batch()
    trained = [*model.block.parameters(), *model.head.parameters()]  # BUG: no model.stem
    optimizer = torch.optim.SGD(trained, lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("replaced", "head replaced after the optimizer was built",
     fix='optimizer.add_param_group({"params": model.head.parameters()})',
     patch='model.head = nn.Linear(8, 3); '
           'optimizer.add_param_group({"params": model.head.parameters()})',
     causes={"head.weight": "not_in_optimizer", "head.bias": "not_in_optimizer"})
def head_replaced():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    model.head = nn.Linear(8, 3)                   # BUG: the optimizer holds the old head

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("lr0", "learning rate 0", fix="optimizer = torch.optim.SGD(model.parameters(), lr=0.1)",
     causes=dict.fromkeys(EVERY, "not_moved"))
def zero_learning_rate():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # BUG: a learning rate of 0

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("dead_relu", "dead ReLU units after fc1",
     fix="model.block.fc1.bias.zero_()  # re-initialise, then lower the learning rate",
     causes=dict.fromkeys(["block.fc1.weight", "block.fc1.bias", "block.fc2.weight"],
                          "zero_grad"))
def dead_relu():
    model, (x, y) = residual_net(), bug_batch()
    with torch.no_grad():
        model.block.fc1.bias.fill_(-10.0)          # BUG: as after one far too large step
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


# ---------------------------------------------------------------- in-place errors


@bug("inplace_relu", "ReLU(inplace=True) after sigmoid",
     fix="act = nn.ReLU()", causes=None,
     error="modified by an inplace operation", line="h = act(h)")
def inplace_relu():
    model, (x, y) = residual_net(), bug_batch()
    act = nn.ReLU(inplace=True)                    # BUG: in place after an op that saves
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = torch.sigmoid(model.stem(x))           # sigmoid saves its output for backward
        h = act(h)
        loss = F.cross_entropy(model.head(torch.relu(model.block(h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("inplace_add", "out += h after a ReLU",
     fix="out = out + h", causes=None,
     error="modified by an inplace operation", line="out += h")
def inplace_residual_add():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = model.stem(x)
        out = torch.relu(model.block(h))           # relu saves its output for backward
        out += h                                   # BUG: edits that output in place
        loss = F.cross_entropy(model.head(out), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)


@bug("inplace_mask", "x[mask] = 0 on a saved tensor",
     fix="gate = gate * (gate >= 0.1)", causes=None,
     error="modified by an inplace operation", line="gate[gate < 0.1] = 0")
def inplace_mask():
    model, (x, y) = residual_net(), bug_batch()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        h = model.stem(x)
        gate = torch.sigmoid(h)                    # sigmoid saves its output for backward
        gate[gate < 0.1] = 0                       # BUG: sparsify in place
        loss = F.cross_entropy(model.head(torch.relu(model.block(gate * h))), y)
        loss.backward()
        optimizer.step()
        return loss
    return Planted(model, step, optimizer)
