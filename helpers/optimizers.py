"""Every built-in ``torch.optim`` optimizer, and what its step does to a frozen parameter (06).

:func:`builtin_optimizers` finds them (every ``torch.optim.Optimizer`` subclass that
``torch.optim`` exports), so an optimizer added in a later PyTorch is tested too. Each is built
with its defaults (learning rate included) on the toy network. Three need a little help:

- ``LBFGS`` re-evaluates the loss several times per step, so ``step`` gets a closure (every
  optimizer accepts one, so all of them get it);
- ``SparseAdam`` accepts only sparse gradients (as ``nn.Embedding(sparse=True)`` makes): its
  grads are converted with ``to_sparse()`` after each backward;
- ``Muon`` accepts only 2-D parameters: it gets the weights, not the biases.

:func:`survey` runs each one through the scenarios notebook 06 teaches and tabulates what moved.
"""

from functools import lru_cache

import torch

from .grad_table import Table
from .toy import toy_batch, toy_loss, toy_net

WARMUP_STEPS = 3
STEPS_AFTER = 3


def builtin_optimizers():
    """``{name: class}`` of every optimizer ``torch.optim`` exports, sorted by name."""
    found = {}
    for name in getattr(torch.optim, "__all__", dir(torch.optim)):
        obj = getattr(torch.optim, name, None)
        if (isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)
                and obj is not torch.optim.Optimizer):
            found[name] = obj
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def accepts(cls, p):
    """Whether optimizer class ``cls`` takes parameter ``p`` (Muon: 2-D parameters only)."""
    return p.dim() == 2 if cls.__name__ == "Muon" else True


def _sparse_grads(cls):
    return cls.__name__ == "SparseAdam"


def _sparsify(cls, params):
    """SparseAdam refuses dense grads: give it the same gradient as a sparse tensor."""
    if _sparse_grads(cls):
        for p in params:
            if p.grad is not None and not p.grad.is_sparse:
                p.grad = p.grad.to_sparse()


def moves(cls, freeze=None, warm_up=WARMUP_STEPS, steps=STEPS_AFTER, **options):
    """Train the toy net with ``cls`` (defaults, overridden by ``options``) for ``warm_up``
    steps, freeze ``l1`` with ``requires_grad_(False)`` (unless ``freeze`` is ``None``), then
    ``steps`` more steps. Returns ``{parameter name: moved during those last steps}``.

    ``freeze`` also says what the loop's ``zero_grad`` leaves in l1's ``.grad`` after the
    freeze: ``"none"`` (the default ``zero_grad()``) or ``"zeros"`` (``set_to_none=False``).
    """
    if freeze not in (None, "none", "zeros"):
        raise ValueError(f"freeze must be None, 'none' or 'zeros', not {freeze!r}")
    net = toy_net()
    x, y = toy_batch()
    params = [p for p in net.parameters() if accepts(cls, p)]
    optimizer = cls(params, **options)

    def closure(set_to_none):
        def evaluate():
            optimizer.zero_grad(set_to_none=set_to_none)
            loss = toy_loss(net(x), y)
            loss.backward()
            _sparsify(cls, params)
            return loss
        return evaluate

    for _ in range(warm_up):
        optimizer.step(closure(True))
    if freeze is not None:
        net.l1.requires_grad_(False)
    start = {name: p.detach().clone() for name, p in net.named_parameters()}
    for _ in range(steps):
        optimizer.step(closure(freeze != "zeros"))
    return {name: not torch.equal(start[name], p.detach()) for name, p in net.named_parameters()}


def moves_at_lr_zero(cls, steps=STEPS_AFTER):
    """Whether ``steps`` steps of ``cls(lr=0)`` over the whole toy net move any parameter.

    Returns ``True``/``False``, or the optimizer's own message if it refuses ``lr=0``.
    """
    try:
        moved = moves(cls, warm_up=0, steps=steps, lr=0.0)
    except ValueError as e:
        return f"refuses: {e}"
    return any(moved.values())


def update_with_flag(cls, requires_grad, steps=STEPS_AFTER):
    """A (3, 4) parameter, ``requires_grad`` set as given, ``steps`` steps of ``cls`` with the
    same fixed gradient each time: returns the parameter's value before and after."""
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(3, 4))
    grad = torch.randn(3, 4)
    optimizer = cls([p])
    p.requires_grad_(requires_grad)

    def evaluate():
        p.grad = grad.to_sparse() if _sparse_grads(cls) else grad.clone()
        return torch.tensor(1.0)

    start = p.detach().clone()
    for _ in range(steps):
        optimizer.step(evaluate)
    return start, p.detach().clone()


def ignores_requires_grad(cls):
    """Whether ``cls`` moves a parameter, and moves it the same, with ``requires_grad`` True
    or False (given the same ``.grad``)."""
    start, trainable = update_with_flag(cls, True)
    _, frozen = update_with_flag(cls, False)
    return torch.equal(trainable, frozen) and not torch.equal(start, frozen)


def _word(moved):
    return moved if isinstance(moved, str) else ("moves" if moved else "stays")


@lru_cache(maxsize=None)
def survey():
    """Every built-in optimizer, with defaults, through the scenarios of notebook 06.

    Columns: does the step move the frozen ``l1`` when its grad is ``None`` (frozen before the
    first step, or after 3 warm-up steps), when it is zeros (after warm-up); does a group with
    ``lr=0`` move; is ``requires_grad`` ignored (same update with the flag on or off)?
    """
    columns = ["optimizer", "frozen from the start, grad None", "frozen after warm-up, grad None",
               "frozen after warm-up, grad zeros", "lr=0", "requires_grad ignored"]
    rows = []
    for name, cls in builtin_optimizers().items():
        fresh = moves(cls, "none", warm_up=0)
        none = moves(cls, "none")
        zeros = moves(cls, "zeros")
        l1 = lambda moved: moved["l1.weight"] or moved["l1.bias"]
        rows.append([name, _word(l1(fresh)), _word(l1(none)), _word(l1(zeros)),
                     _word(moves_at_lr_zero(cls)), "yes" if ignores_requires_grad(cls) else "no"])
    caption = (f"every torch.optim optimizer, default options: does the frozen l1 move in "
               f"{STEPS_AFTER} steps? ('lr=0': does anything move; Muon holds the weights only, "
               "as it takes 2-D parameters only)")
    return Table(columns, rows, caption=caption)


def names_where(table, column, value):
    """The optimizers whose cell in ``column`` of :func:`survey`'s table is ``value``."""
    return [row[0] for row in table.rows if row[table.columns.index(column)] == value]
