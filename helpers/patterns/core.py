"""What every pattern shares: the registry, the step's recorder and the result it gives.

A pattern's body ``step(rec, mistake)`` builds its models, hands them to the :class:`Recorder`
(``rec.track``), runs one training step and marks the *guarded* tensor (``rec.guard``) and the
moment that matters (``rec.snapshot``). The :class:`Pattern` turns that record into a
:class:`PatternResult`; the body's docstring is the pattern's summary.
"""

import inspect
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..autograd_walk import reachable_leaves
from ..errors import CaughtError, explain
from ..grad_table import Table
from ..graph import GraphView, loss_diagram
from ..outcome import grad_state

SEED = 0
LEARNING_RATE = 0.1
CORRECT = "correct"  # the variant without a mistake (a Dropdown cannot hold None as a value)


# --- Measuring gradient flow ---------------------------------------------------------------

def reached_by(tensor, named_parameters):
    """Names of the parameters (name -> tensor) that ``tensor``'s graph reaches.

    They are the parameters whose ``.grad`` ``tensor.backward()`` would fill, found without
    running backward. A tensor without history reaches none.
    """
    leaves = {id(leaf) for leaf in reachable_leaves(tensor)}
    return {name for name, p in dict(named_parameters).items() if id(p) in leaves}


def named_parameters_of(models):
    """``{"model.param": tensor}`` over a dict of named modules, in order."""
    return {f"{m}.{n}": p for m, module in models.items() for n, p in module.named_parameters()}


def role_of(name):
    """The module a parameter name belongs to: ``"generator.weight"`` -> ``"generator"``."""
    return name.split(".", 1)[0]


def batch(seed=SEED, n=8, features=4, classes=3):
    """A fixed batch: inputs (n, features), regression targets (n, 1), class labels (n,)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=generator)
    y = torch.randn(n, 1, generator=generator)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return x, y, labels


def sgd(*modules):
    """Plain SGD over every parameter of ``modules``."""
    return torch.optim.SGD([p for m in modules for p in m.parameters()], lr=LEARNING_RATE)


# --- Results -------------------------------------------------------------------------------

@dataclass
class PatternResult:
    """What one step of a pattern did, and whether gradients flowed where they should."""

    pattern: str
    mistake: str | None
    guarded: str            # what the guarded tensor is, e.g. "d_loss"
    params: dict            # name -> parameter tensor (every model)
    must_reach: frozenset   # parameter names the guarded tensor must reach
    must_not_reach: frozenset
    reached: frozenset      # parameter names the guarded tensor's graph reaches
    grads: dict             # name -> "None"/"zeros"/"values", just after the key backward
    changed: dict           # name -> bool, over the whole step
    loss: torch.Tensor | None  # what .draw() draws
    error: CaughtError | None
    checks: dict = field(default_factory=dict)  # pattern-specific: description -> bool
    facts: dict = field(default_factory=dict)   # pattern-specific numbers and states
    models: dict = field(default_factory=dict)
    optimizers: dict = field(default_factory=dict)

    @property
    def correct(self):
        """True for the correct variant, False for a mistake."""
        return self.mistake is None

    @property
    def variant(self):
        return CORRECT if self.mistake is None else self.mistake

    @property
    def label(self):
        return CORRECT if self.mistake is None else PATTERNS[self.pattern].mistakes[self.mistake]

    @property
    def roles(self):
        """The modules of the step, in order: ``["generator", "discriminator"]``."""
        return list(dict.fromkeys(role_of(n) for n in self.params))

    @property
    def reached_roles(self):
        """The modules (in order) with a parameter the guarded tensor reaches."""
        return [role for role in self.roles if any(role_of(n) == role for n in self.reached)]

    @property
    def flow_ok(self):
        """The guarded tensor reaches every parameter it must and none it must not."""
        return self.must_reach <= self.reached and not (self.reached & self.must_not_reach)

    @property
    def ok(self):
        """Flow as intended, no error, every check passed."""
        return self.flow_ok and self.error is None and all(self.checks.values())

    def grads_none(self):
        """Names of the parameters whose ``.grad`` was ``None`` just after the key backward."""
        return [name for name, state in self.grads.items() if state == "None"]

    def problems(self):
        """What went wrong, in plain words (empty when ``ok``)."""
        items = []
        if self.error is not None:
            first = self.error.message.split(". ")[0].rstrip(".")
            items.append(f"PyTorch raised {self.error.kind}: {first}. "
                         f"-> {self.error.explanation}")
        leaked = [n for n in self.params if n in self.reached & self.must_not_reach]
        missed = [n for n in self.params if n in self.must_reach - self.reached]
        if leaked:
            items.append(f"{self.guarded} reaches what it must not: {', '.join(leaked)}")
        if missed:
            items.append(f"{self.guarded} does not reach: {', '.join(missed)}")
        items += [f"check failed: {text}" for text, passed in self.checks.items() if not passed]
        return items

    def short_problem(self):
        """The main problem in a few words ("" when ``ok``): an error, a leak or a check."""
        if self.error is not None:
            return "error: " + self.error.message.split(" (")[0].split(":")[0].rstrip(".")
        leaked = sorted({role_of(n) for n in self.reached & self.must_not_reach})
        if leaked:
            return f"{self.guarded} reaches {', '.join(leaked)}"
        failed = [text for text, passed in self.checks.items() if not passed]
        return f"failed: {failed[0]}" if failed else ""

    def rule(self, name):
        if name in self.must_reach:
            return "must be reached"
        if name in self.must_not_reach:
            return "must NOT be reached"
        return ""

    def table(self):
        """One row per parameter: the rule, whether the guarded graph reaches it, its grad."""
        reach = f"in graph of {self.guarded}"
        rows = [[name, self.rule(name), "yes" if name in self.reached else "no",
                 self.grads[name], "yes" if self.changed[name] else "no"]
                for name in self.params]
        caption = f"{PATTERNS[self.pattern].title}: {self.label}"
        return Table(["parameter", "rule", reach, "grad", "changed by step"], rows,
                     caption=caption, notes=self.problems())

    def diagram(self):
        variant = CORRECT if self.correct else f"mistake: {self.label}"
        return loss_diagram(self.loss, self.params, dict(self.grads),
                            title=f"{PATTERNS[self.pattern].title}, {variant}",
                            note=self.error.kind if self.error else "no loss")

    def draw(self, beside=None):
        """The graph of the drawn loss; with ``beside`` (another result) that one on the left."""
        items = [] if beside is None else [beside.diagram()]
        return GraphView(items + [self.diagram()])

    def __repr__(self):
        verdict = "gradients flow as intended" if self.ok else "broken"
        return f"PatternResult({self.pattern!r}, {self.variant!r}): {verdict}\n{self.table()!r}"


class Recorder:
    """Collects what a pattern's step does: the step calls ``track``, ``guard``, ``snapshot``."""

    def __init__(self):
        self.models, self.params, self.before = {}, {}, {}
        self.reached = set()
        self.grads = None
        self.loss = None
        self.checks, self.facts, self.optimizers = {}, {}, {}

    def track(self, **models):
        """The step's modules, by name, before it trains them (their weights are kept)."""
        self.models = models
        self.params = named_parameters_of(models)
        self.before = {n: p.detach().clone() for n, p in self.params.items()}

    def guard(self, tensor, draw=True):
        """``tensor`` is the guarded one: remember what its graph reaches (and draw it)."""
        self.reached = reached_by(tensor, self.params)
        if draw:
            self.loss = tensor

    def snapshot(self):
        """Record every parameter's grad state now (just after the key backward)."""
        self.grads = {n: grad_state(p.grad) for n, p in self.params.items()}

    def optimizer(self, name, *modules):
        """An SGD over ``modules``, kept under ``name`` in the result's ``optimizers``."""
        self.optimizers[name] = sgd(*modules)
        return self.optimizers[name]


# --- The registry --------------------------------------------------------------------------

@dataclass(frozen=True)
class Pattern:
    """One real-world pattern: its rule, its correct step and its classic mistakes."""

    name: str
    title: str
    body: Callable          # body(rec, mistake) runs the step
    guarded: str
    must_reach: tuple       # module names
    must_not_reach: tuple
    mistakes: dict          # mistake key -> label
    summary: str
    predictions: dict = field(default_factory=dict)  # variant -> predict-first explanation

    @property
    def variants(self):
        """``"correct"`` then every mistake key: what the explorer's variant control offers."""
        return [CORRECT, *self.mistakes]

    def check_mistake(self, mistake):
        """``mistake`` itself, or a ValueError naming the valid ones."""
        if mistake is not None and mistake not in self.mistakes:
            raise ValueError(f"pattern {self.name!r} has no mistake {mistake!r}; valid: "
                             f"{', '.join(repr(m) for m in self.mistakes)} (or None)")
        return mistake

    def why(self, mistake=None):
        """The predict-first explanation for the step (correct, or with ``mistake``).

        Kept with the pattern, not in the notebook, so the question's source shows no answer;
        a ValueError names the variants that have one.
        """
        variant = CORRECT if self.check_mistake(mistake) is None else mistake
        if variant not in self.predictions:
            raise ValueError(f"pattern {self.name!r} has no prediction for {variant!r}; "
                             f"registered: {', '.join(map(repr, self.predictions)) or 'none'}")
        return self.predictions[variant]

    def run(self, mistake=None):
        """Run the step (correct, or with ``mistake``) on fresh models: a PatternResult."""
        self.check_mistake(mistake)
        torch.manual_seed(SEED)
        rec, error = Recorder(), None
        try:
            self.body(rec, mistake)
        except RuntimeError as exc:   # what the recorder holds so far survives the error
            error = explain(exc)
        if rec.grads is None:
            rec.snapshot()
        params = rec.params
        expand = lambda roles: frozenset(n for n in params if role_of(n) in roles)  # noqa: E731
        return PatternResult(
            pattern=self.name, mistake=mistake, guarded=self.guarded, params=params,
            must_reach=expand(self.must_reach), must_not_reach=expand(self.must_not_reach),
            reached=frozenset(rec.reached), grads=rec.grads,
            changed={n: not torch.equal(rec.before[n], p.detach()) for n, p in params.items()},
            loss=rec.loss, error=error, checks=dict(rec.checks), facts=dict(rec.facts),
            models=rec.models, optimizers=dict(rec.optimizers))


PATTERNS: "OrderedDict[str, Pattern]" = OrderedDict()


def pattern(name, title, guarded, must_reach, must_not_reach, mistakes, predictions=None):
    """Decorator: register ``body(rec, mistake)`` as a pattern; returns the public function.

    The body's docstring, as one paragraph, is the pattern's summary. ``predictions`` maps a
    variant (``"correct"`` or a mistake key) to its predict-first explanation. The public
    function, ``<name>_step(correct=True, mistake=None)``, runs the pattern.
    """
    def wrap(body):
        if name in PATTERNS:
            raise ValueError(f"pattern {name!r} is registered twice")
        summary = " ".join((inspect.getdoc(body) or "").split())
        unknown = set(predictions or {}) - {CORRECT, *mistakes}
        if unknown:
            raise ValueError(f"pattern {name!r}: predictions for unknown variant(s) "
                             f"{sorted(unknown)}; valid: {CORRECT}, {', '.join(mistakes)}")
        PATTERNS[name] = Pattern(name, title, body, guarded, tuple(must_reach),
                                 tuple(must_not_reach), dict(mistakes), summary,
                                 dict(predictions or {}))

        def public(correct=True, mistake=None):
            if correct and mistake is not None:
                raise ValueError("give a mistake only with correct=False")
            if not correct and mistake is None:
                mistake = next(iter(mistakes))
            return PATTERNS[name].run(mistake)

        public.__name__ = body.__name__
        public.__doc__ = (f"{title}. ``correct=False`` runs a mistake (default "
                          f"{next(iter(mistakes))!r}; choices: {', '.join(mistakes)}).")
        return public
    return wrap


def get_pattern(name):
    """The registered pattern called ``name``; a ValueError lists the valid names."""
    if name not in PATTERNS:
        raise ValueError(f"unknown pattern {name!r}; valid patterns: {', '.join(PATTERNS)}")
    return PATTERNS[name]


def run_pattern(name, mistake=None):
    """Run pattern ``name`` correctly, or with ``mistake``; a :class:`PatternResult`."""
    return get_pattern(name).run(mistake)
