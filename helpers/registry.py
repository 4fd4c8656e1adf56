"""The registry of mechanisms: each is data that widgets, tables, tests and benchmarks read."""

import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from .outcome import Outcome, run_step
from .toy import PARAM_NAMES


@dataclass(frozen=True)
class Option:
    """One control of a mechanism: its choices (value -> label) and default."""

    name: str
    choices: dict  # value -> short label shown on the widget
    default: object
    description: str = ""

    def __post_init__(self):
        if self.default not in self.choices:
            raise ValueError(f"default {self.default!r} of option {self.name!r} "
                             f"is not one of {list(self.choices)}")


@dataclass(frozen=True)
class Mechanism:
    """A way to control gradients: a name, its options and one training step."""

    name: str
    title: str
    step: Callable  # step(ctx, **options): runs one training step on ctx.net
    options: tuple = ()
    notebook: str = ""
    summary: str = ""
    # False for explorers of the later notebooks (11+) that are not one of the seven
    # switch-like mechanisms: notebook 08's comparison matrix leaves them out.
    in_comparison: bool = True
    # The parameters the step's model has: the toy net's, unless the step swaps in another
    # model; then a function of the resolved options that names them.
    param_names: tuple | Callable = PARAM_NAMES
    # Predict-first explanations, kept here so the notebook's source never shows the answer:
    # prediction_key(options) -> why the grads that come back None are the ones they are.
    predictions: dict = field(default_factory=dict, repr=False, compare=False)
    # The graph's title in words ("detach after L1"), a function of the resolved options;
    # None falls back to "name: option=value, ...".
    caption: Callable | None = field(default=None, repr=False, compare=False)
    defaults: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "defaults", {o.name: o.default for o in self.options})
        valid = {prediction_key(combination) for combination in self.combinations()}
        unknown = sorted(set(self.predictions) - valid)
        if unknown:
            raise ValueError(f"mechanism {self.name!r}: predictions for unknown option states "
                             f"{unknown}; keys look like {sorted(valid)[:3]}")

    def option(self, name):
        for option in self.options:
            if option.name == name:
                return option
        raise ValueError(f"mechanism {self.name!r} has no option {name!r}; "
                         f"its options are: {', '.join(o.name for o in self.options) or 'none'}")

    def resolve(self, **options):
        """The full option dict: defaults, overridden by ``options``, each value checked."""
        resolved = dict(self.defaults)
        for name, value in options.items():
            option = self.option(name)
            if value not in option.choices:
                raise ValueError(f"option {name!r} of mechanism {self.name!r} has no choice "
                                 f"{value!r}; valid choices: "
                                 f"{', '.join(repr(c) for c in option.choices)}")
            resolved[name] = value
        return resolved

    def combinations(self):
        """Every combination of option values, in declaration order."""
        names = [o.name for o in self.options]
        for values in itertools.product(*(o.choices for o in self.options)):
            yield dict(zip(names, values))

    def parameters_under(self, **options):
        """The names of the parameters the step's model has under ``options``."""
        names = self.param_names
        return tuple(names(self.resolve(**options)) if callable(names) else names)

    def why(self, **options):
        """The registered predict-first explanation for the step under ``options`` ("" if none)."""
        return self.predictions.get(prediction_key(self.resolve(**options)), "")

    def describe(self, **options):
        """The step under ``options`` in words: the caption, or ``name: option=value``."""
        resolved = self.resolve(**options)
        if self.caption is not None:
            return self.caption(resolved)
        shown = ", ".join(f"{k}={v}" for k, v in resolved.items())
        return f"{self.name}: {shown}" if shown else self.name

    def run(self, **options) -> Outcome:
        """One step of a fresh toy net under ``options`` (defaults fill the rest)."""
        return run_step(self.name, self.resolve(**options), self.step)


def prediction_key(options):
    """The key of ``Mechanism.predictions`` for resolved ``options``: "a=1, b=x" ("" for none)."""
    return ", ".join(f"{name}={value}" for name, value in options.items())


MECHANISMS: dict = {}


def register(mechanism):
    """Add ``mechanism`` to the registry (names are unique) and return it."""
    if mechanism.name in MECHANISMS:
        raise ValueError(f"mechanism {mechanism.name!r} is registered twice")
    MECHANISMS[mechanism.name] = mechanism
    return mechanism


def get_mechanism(name):
    """The registered mechanism called ``name``; a ValueError lists the valid names."""
    from . import mechanisms  # noqa: F401  (registers every mechanism module)

    if isinstance(name, Mechanism):
        return name
    try:
        return MECHANISMS[name]
    except KeyError:
        raise ValueError(f"unknown mechanism {name!r}; valid mechanisms: "
                         f"{', '.join(sorted(MECHANISMS))}") from None


def run(name, **options) -> Outcome:
    """Run one step of mechanism ``name`` under ``options``."""
    return get_mechanism(name).run(**options)


@lru_cache(maxsize=None)
def cached_outcome(name, options_items):
    """``run(name, **dict(options_items))``, remembered: steps are deterministic."""
    return run(name, **dict(options_items))
