"""Popular claims about PyTorch gradient control, with their verdicts (notebook 10_myths).

:data:`MYTHS` is the list as data: the claim, the verdict (true, false or it depends), one line
on why, and the notebook that teaches the mechanism. Notebook 10 shows each verdict with
:func:`verdict` and all of them with :func:`table`; its cells decide each claim on the installed
PyTorch, and ``tests/test_myths.py`` checks that the notebook's headings are these claims.
:func:`cost_table` and :func:`cost_chart` present :func:`helpers.costs.mode_costs` results.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import costs
from .costs.chart import BarPanel, Chart
from .exercises import Hint, exercise
from .grad_table import Table
from .lessons import lesson
from .toy import toy_batch, toy_net

VERDICTS = ("true", "false", "it depends")


@dataclass(frozen=True)
class Myth:
    """One claim and its verdict. Displays as the verdict (Markdown in a notebook)."""

    key: str
    claim: str        # Markdown: code in backticks
    verdict: str      # one of VERDICTS
    reason: str       # one line, Markdown
    notebook: str     # the notebook that teaches the mechanism, e.g. "03_detach"

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")
        if lesson(self.notebook).slug != self.notebook:  # lesson() names the valid ones
            raise ValueError(f"notebook {self.notebook!r}: give its slug, "
                             f"{lesson(self.notebook).slug!r}")

    @property
    def link(self):
        """Markdown link to the teaching notebook, e.g. ``[03 · detach](03_detach.ipynb)``."""
        return lesson(self.notebook).link()

    def _repr_markdown_(self):
        return f"**Verdict: {self.verdict}.** {self.reason} *Taught in {self.link}.*"

    def __repr__(self):
        return (f"Verdict: {self.verdict}. {plain(self.reason)} "
                f"(taught in {self.notebook})")


def plain(markdown):
    """Markdown without the backticks, for plain-text and HTML table cells."""
    return markdown.replace("`", "")


MYTHS = (
    Myth("detach_copies",
         "`detach()` copies the tensor",
         "false",
         "It returns a tensor on the same memory, with the same version counter, minus the "
         "history. `detach().clone()` is the copy.",
         "03_detach"),
    Myth("no_grad_beats_detach",
         "`no_grad` is faster than `detach` because `detach` copies",
         "false",
         "`detach()` copies nothing. `no_grad` is cheaper because it never records the graph "
         "nor saves activations, and some layers (the Transformer fast path, timed in 04) "
         "run faster kernels with autograd off; detaching after the forward is too late for "
         "any of it.",
         "03_detach"),
    Myth("zero_grad_differ",
         "`model.zero_grad()` zeros in place, `optimizer.zero_grad()` sets `None`",
         "false",
         "Both set `.grad` to `None` by default (since PyTorch 2.0); both zero in place with "
         "`set_to_none=False`. They differ in scope: the model's parameters or the optimizer's.",
         "01_zero_grad"),
    Myth("requires_grad_replaces_no_grad",
         "`requires_grad=False` replaces `no_grad` for inference",
         "it depends",
         "Only if no parameter and no input requires grad: then nothing is recorded. One "
         "tensor that requires grad and the graph is back; `no_grad` covers the whole block "
         "and leaves the model as it was.",
         "02_requires_grad"),
    Myth("eval_stops_autograd",
         "`eval()` turns off autograd",
         "false",
         "`eval()` changes how Dropout and BatchNorm behave; recording goes on and `backward()` "
         "still works. Evaluation wants `eval()` and `no_grad` together.",
         "04_no_grad"),
    Myth("optimizers_skip_frozen",
         "Optimizers skip frozen parameters",
         "false",
         "Optimizers go by `.grad`, not `requires_grad`. Frozen with zero grads, a parameter is "
         "moved by momentum, Adam and weight decay; with grads `None` the built-in optimizers "
         "skip it, except LBFGS, which moves it.",
         "06_optimizer_subsets"),
    Myth("inference_mode_isolated",
         "`inference_mode` cannot be mixed with grad-enabled code",
         "false",
         "Grad-mode code can use inference tensors as long as autograd need not save them nor "
         "edit them in place; `.clone()` makes a normal tensor, and `inference_mode(False)` "
         "records inside the block.",
         "05_inference_mode"),
    Myth("inference_mode_much_faster",
         "`inference_mode` is much faster than `no_grad`",
         "false",
         "It saves exactly the memory `no_grad` saves. The time it saves is per-op bookkeeping: "
         "small, and lost in the noise once the arithmetic dominates. Measure it.",
         "05_inference_mode"),
)

_BY_KEY = {myth.key: myth for myth in MYTHS}
if len(_BY_KEY) != len(MYTHS):
    raise ValueError("two myths share a key")


def verdict(key):
    """The :class:`Myth` called ``key``; in a notebook it displays as its verdict."""
    if key not in _BY_KEY:
        raise ValueError(f"unknown myth {key!r}; valid: {', '.join(_BY_KEY)}")
    return _BY_KEY[key]


class Claims:
    """The numbered claims without their verdicts: the list to predict from."""

    def _repr_markdown_(self):
        return "\n".join(f"{i}. {m.claim}" for i, m in enumerate(MYTHS, 1))

    def __repr__(self):
        return "\n".join(f"{i}. {plain(m.claim)}" for i, m in enumerate(MYTHS, 1))


def claims():
    """The claims, numbered, without verdicts (for a predict-first list)."""
    return Claims()


def table():
    """Every claim with its verdict, reason and teaching notebook, as a :class:`Table`."""
    rows = [[i, plain(m.claim), m.verdict, plain(m.reason), m.notebook]
            for i, m in enumerate(MYTHS, 1)]
    return Table(["#", "claim", "verdict", "why", "taught in"], rows)


# --- costs: presenting helpers.costs.mode_costs results -----------------------------------------

def _size(n):
    if n >= 2**20:
        return f"{n / 2**20:.2f} MiB"
    if n >= 2**10:
        return f"{n / 2**10:.1f} KiB"
    return f"{n} B"


def cost_table(measured):
    """A :class:`Table` of ``{network name: costs.mode_costs(...) result}``, one row per mode.

    The time column varies from run to run; the memory columns do not.
    """
    rows = []
    for network, result in measured.items():
        for mode, m in result["modes"].items():
            rows.append([network, mode, f"{m['time_ratio']:.2f}",
                         f"{m['context_seconds'] * 1e6:.1f} µs", _size(m["peak_bytes"]),
                         _size(m["saved_bytes"])])
    return Table(["network", "mode", "time / grad mode", "enter + leave mode", "peak memory",
                  "saved for backward"], rows,
                 caption="time: median of interleaved runs of the forwards alone (the mode is "
                         "entered before the clock starts), as a ratio to grad mode in the same "
                         "run; enter + leave mode: one empty with block, timed apart. Both "
                         "vary. Memory: one forward (it does not vary)")


def cost_chart(measured, memory_of=None):
    """Bar charts (inline SVG, no matplotlib): time ratios of every network (left); the memory
    of one (right).

    ``measured`` maps a network name to a :func:`helpers.costs.mode_costs` result;
    ``memory_of`` names the network whose peak and saved bytes are drawn (default: the last).
    """
    memory_of = memory_of or list(measured)[-1]
    modes = list(costs.FORWARD_MODES)
    timing = BarPanel("Time: median ratio to grad mode (varies)", modes,
                      {network: [result["modes"][mode]["time_ratio"] for mode in modes]
                       for network, result in measured.items()},
                      "time / grad mode (this run)", reference=1.0)
    result = measured[memory_of]["modes"]
    memory = BarPanel(f"Memory of one forward, {memory_of}", modes,
                      {label: [result[mode][column] / 2**20 for mode in modes]
                       for column, label in (("peak_bytes", "peak memory"),
                                             ("saved_bytes", "saved for backward"))}, "MiB")
    return Chart([timing, memory])


# --- exercises (notebook 10_myths) ---------------------------------------------------------------

def _grad_fn_scenarios(misreading=None):
    """Exercise 10.1's five ways of computing ``out``, each run on a fresh toy net and batch.

    ``misreading`` (a letter) swaps that scenario for what a common misreading of it expects,
    run for real: (c) as if detaching the input cut the forward, (d) as if ``enable_grad()``
    recorded even with nothing requiring grad, (e) as if ``no_grad`` covered the whole forward.
    """
    def a(net, x):
        net.l1.requires_grad_(False)
        return net(x)

    def b(net, x):
        with torch.inference_mode():
            return net(x)

    def c(net, x):
        return net(x.detach())

    def d(net, x):
        net.requires_grad_(False)
        with torch.enable_grad():
            return net(x)

    def e(net, x):
        with torch.no_grad():
            h = torch.relu(net.l1(x))
        return net.l2(h)

    misread = {"c": lambda net, x: net(x).detach(),
               "d": lambda net, x: net(x),
               "e": lambda net, x: b(net, x)}
    scenarios = {"a": a, "b": b, "c": c, "d": d, "e": e}
    if misreading is not None:
        scenarios[misreading] = misread[misreading]
    return scenarios


def _letters_without_grad_fn(misreading=None):
    """The scenarios of exercise 10.1 whose ``out`` has no ``grad_fn`` (``misreading``: see
    :func:`_grad_fn_scenarios`)."""
    letters = set()
    for letter, scenario in _grad_fn_scenarios(misreading).items():
        x, _ = toy_batch()
        if scenario(toy_net(), x).grad_fn is None:
            letters.add(letter)
    return letters


@exercise("10.1", why="Only (b) and (d) leave no grad_fn. Inference mode records nothing (b). "
                      "enable_grad() turns recording on, but an op is recorded only when one of "
                      "its inputs requires grad, and in (d) nothing does. In (a) L2's weights "
                      "still require grad; in (c) the input had no history to cut; in (e) only "
                      "L1 ran under no_grad, and L2 ran after the block.",
          hints=(Hint(lambda: _letters_without_grad_fn("c"),
                      "Look again at (c): x has no history, so x.detach() changes nothing; the "
                      "parameters require grad, so the forward is recorded."),
                 Hint(lambda: _letters_without_grad_fn("d"),
                      "Look again at (d): enable_grad() turns recording on, but an op is "
                      "recorded only when one of its inputs requires grad. Does anything here?"),
                 Hint(lambda: _letters_without_grad_fn("e"),
                      "Look again at (e): the no_grad block ends before L2 runs, and L2's weights "
                      "require grad.")))
def _no_grad_fn():
    return _letters_without_grad_fn()


def _saved_bytes(modes=costs.FORWARD_MODES, batch=16):
    """Bytes the larger MLP (width 512) saves for backward on ``batch`` rows, one number per
    mode."""
    mlp = costs.larger_mlp(width=512)
    inputs = torch.randn(batch, 512, generator=torch.Generator().manual_seed(0))
    return tuple(costs.saved_tensor_bytes(costs.forward_in_mode(mode, mlp, inputs), exclude=mlp)
                 for mode in modes)


@exercise("10.2", why="Grad mode keeps the input and the 4 ReLU outputs, 16 x 512 floats each: "
                      "5 * 16 * 512 * 4 = 163,840 bytes. detach() afterwards comes too late: "
                      "the forward has already saved them; no_grad and inference_mode save none.",
          hints=(Hint(lambda: _saved_bytes(["grad mode", "no_grad", "inference_mode",
                                            "no_grad"]),
                      "The last one is too low: .detach() runs after the forward, when the "
                      "activations are already saved."),))
def _saved_bytes_batch_16():
    return _saved_bytes()


def _inference_target_losses():
    """Exercise 10.3's three losses of ``out`` against a target ``t`` made in inference mode."""
    return {"a": lambda out, t: F.mse_loss(out, t),
            "b": lambda out, t: ((out - t) ** 2).mean(),
            "c": lambda out, t: F.mse_loss(out, t.clone())}


def _losses_that_train(in_inference_mode=True):
    """The letters of exercise 10.3 whose loss runs backward; the target made in inference mode
    (or, for a hint, under no_grad: an ordinary tensor)."""
    x, y = toy_batch()
    teacher, student = toy_net(seed=1), toy_net()
    with torch.inference_mode() if in_inference_mode else torch.no_grad():
        target = teacher(x)
    works = set()
    for letter, loss in _inference_target_losses().items():
        try:
            loss(student(x), target).backward()
            works.add(letter)
        except RuntimeError:
            pass
    return works


@exercise("10.3", why="mse_loss saves its target for backward, and an inference tensor cannot be "
                      "saved (a). Subtraction saves nothing, so (b) trains; .clone() outside the "
                      "mode makes a normal tensor (c).",
          hints=(Hint(lambda: _losses_that_train(in_inference_mode=False),
                      "With an ordinary target all three would run. This one is an inference "
                      "tensor: which loss has to save it for backward?"),
                 Hint(lambda: _losses_that_train() - {"b"},
                      "Look again at (b): a subtraction saves nothing for backward, and the "
                      "square saves the difference, which is a normal tensor.")))
def _losses_that_train_from_inference_target():
    return _losses_that_train()


def _normalise_step(decorated=True, probe_clone=False):
    """Exercise 10.4's step: ``net.l1.weight.grad`` after it (``decorated``: ``normalise`` under
    ``@torch.inference_mode()``). ``probe_clone`` returns whether ``h.clone()`` has history."""
    def normalise(t):
        return (t - t.mean(0)) / t.std(0)

    if decorated:
        normalise = torch.inference_mode()(normalise)
    x, y = toy_batch()
    net = toy_net()
    h = torch.relu(net.l1(x))
    if probe_clone:
        return h.clone().grad_fn is not None
    F.mse_loss(net.l2(normalise(h).clone()), y).backward()
    assert net.l2.weight.grad is not None
    return net.l1.weight.grad


def _why_l1_grad_is_none():
    """The true statement among exercise 10.4's three, each decided by running the step."""
    assert _normalise_step() is None
    true = {"a": _normalise_step(decorated=False) is not None,    # history lost in the call
            "b": not _normalise_step(probe_clone=True),            # clone drops history?
            "c": _normalise_step(decorated=False) is None}         # no gradient through it?
    (letter,) = [key for key, holds in true.items() if holds]
    return letter


exercise("10.4", why="Inside the decorated call nothing is recorded, so normalise(h) has no "
                     "grad_fn and the loss cannot reach L1 (a). .clone() is recorded like any "
                     "op, and without the decorator L1 gets a gradient through the "
                     "normalisation.",
         hints=(Hint(lambda: "b", "Run h.clone().grad_fn: clone() is recorded like any other "
                                  "op. The history was lost before the clone."),
                Hint(lambda: "c", "Remove the decorator and run the step again: "
                                  "net.l1.weight.grad has values, so the normalisation passes "
                                  "a gradient.")))(_why_l1_grad_is_none)


__all__ = ["VERDICTS", "Myth", "MYTHS", "plain", "verdict", "claims", "table", "cost_table",
           "cost_chart"]
