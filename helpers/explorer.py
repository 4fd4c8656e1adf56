"""The explorer: one widget over anything with options and a run, redrawn on every change.

An explorer shows a *subject* (see :class:`Subject`): a mechanism of the registry
(``explore("zero_grad")``) or notebook 09's patterns (``helpers.patterns.explore("gan")``). The
subject lists its options (one control each; an option's choices may depend on the values of the
options before it) and renders the panes (HTML) under the controls for a state of the options.

Uses only ipywidgets API shared by 7.7 (Colab) and 8, but for the tooltip's name: see
:func:`tooltip`. Callbacks are plain methods, so tests drive an explorer by setting
``explorer.controls[name].value`` and reading a pane, e.g. ``explorer.table.value``.
"""

from functools import lru_cache

import ipywidgets as widgets

from .graph import draw
from .grad_table import grad_table
from .registry import Mechanism, cached_outcome, get_mechanism

BASELINE = "control"


def tooltip(widget_class, text):
    """Keyword arguments that set ``text`` as ``widget_class``'s hover text, without a warning.

    ipywidgets 8 calls it ``tooltip`` (and deprecates ``description_tooltip``); 7.x calls it
    ``description_tooltip`` and ignores ``tooltip`` with a DeprecationWarning (Colab has 7.7.1).
    """
    name = "tooltip" if "tooltip" in widget_class.class_trait_names() else "description_tooltip"
    return {name: text}


def labelled_choices(option):
    """(label, value) pairs of an option, as a selection widget takes them."""
    return tuple((str(label), choice) for choice, label in option.choices.items())


def offered(control):
    """The (label, value) pairs a selection widget offers now."""
    return tuple(tuple(pair) for pair in control.options)


def control_for(option, value, dropdown=False):
    """A ToggleButtons (few choices) or Dropdown (many, or ``dropdown``) for one option."""
    choices = labelled_choices(option)
    style = {"description_width": "initial"}
    if len(choices) <= 4 and not dropdown:  # buttons as wide as their labels: no label cut short
        return widgets.ToggleButtons(options=choices, value=value, description=option.name,
                                     **tooltip(widgets.ToggleButtons, option.description),
                                     style={**style, "button_width": "auto"})
    return widgets.Dropdown(options=choices, value=value, description=option.name,
                            **tooltip(widgets.Dropdown, option.description), style=style)


class Subject:
    """What an explorer shows. Subclasses set the class attributes and the four methods."""

    panes = ()          # names of the HTML panes under the controls, top to bottom
    heading = ""        # HTML above the controls ("" for none)
    dropdowns = False   # every control a Dropdown, however few its choices

    def options_for(self, values):
        """The options (registry ``Option``s), in order, given the current ``values``."""
        raise NotImplementedError

    def resolve(self, **values):
        """Every option's value: defaults, overridden by ``values``, each checked."""
        raise NotImplementedError

    def render(self, values):
        """The panes' HTML for the state ``values``, a tuple in the order of ``panes``."""
        raise NotImplementedError

    def describe(self, values):
        """The explorer's repr in the state ``values``."""
        raise NotImplementedError

    def key(self):
        """What tells this subject from another of its class (render's cache key)."""
        return ()

    def __eq__(self, other):
        return type(other) is type(self) and other.key() == self.key()

    def __hash__(self):
        return hash((type(self), self.key()))


@lru_cache(maxsize=None)
def render(subject, options_items):
    """The panes' HTML of ``subject`` in one option state; cached (every step is
    deterministic), so a state shown before redraws at once."""
    return tuple(subject.render(dict(options_items)))


class MechanismSubject(Subject):
    """A mechanism's options above its gradient table and graph (beside the plain step's)."""

    panes = ("table", "graph")

    def __init__(self, mechanism):
        self.mechanism = get_mechanism(mechanism)
        # data-gfl-mechanism: which mechanism this widget shows (read by tests/test_browser.py).
        self.heading = (f'<span data-gfl-mechanism="{self.mechanism.name}">'
                        f"<b>{self.mechanism.title}</b> &mdash; change a control; the table "
                        "and the graph (right, beside the plain step) follow.</span>")

    def options_for(self, values):
        return self.mechanism.options

    def resolve(self, **values):
        return self.mechanism.resolve(**values)

    def key(self):
        return self.mechanism.name

    def render(self, values):
        outcome = cached_outcome(self.mechanism.name, tuple(values.items()))
        is_baseline = self.mechanism.name == BASELINE and values == self.mechanism.defaults
        beside = None if is_baseline else cached_outcome(BASELINE, ())  # not beside itself
        return grad_table(outcome)._repr_html_(), draw(outcome, beside=beside).html()

    def describe(self, values):
        shown = "".join(f", {k}={v!r}" for k, v in values.items())
        return f"Explorer({self.mechanism.name!r}{shown})"


class Explorer(widgets.VBox):
    """Controls for a subject's options above its panes; each change redraws the panes.

    Each pane is an HTML widget in ``explorer.panes`` and an attribute of the same name
    (``explorer.table``). When a change alters the choices an option offers, that option goes
    back to its default.
    """

    def __init__(self, subject, **initial):
        is_mechanism = isinstance(subject, (str, Mechanism))
        self.subject = MechanismSubject(subject) if is_mechanism else subject
        values = self.subject.resolve(**initial)
        self.controls = {o.name: control_for(o, values[o.name], self.subject.dropdowns)
                         for o in self.subject.options_for(values)}
        self.panes = {name: widgets.HTML() for name in self.subject.panes}
        for name, pane in self.panes.items():
            setattr(self, name, pane)
        heading = [widgets.HTML(self.subject.heading)] if self.subject.heading else []
        super().__init__([*heading, *self.controls.values(), *self.panes.values()])
        self.add_class("gfl-explorer")
        self._quiet = False
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.refresh()

    @property
    def mechanism(self):
        """The mechanism shown (None when the subject is not a mechanism)."""
        return getattr(self.subject, "mechanism", None)

    @property
    def options(self):
        """The current value of every option."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values):
        """Set controls as a learner would (options not named keep their values), then redraw."""
        self._apply(values)

    def refresh(self):
        for pane, text in zip(self.panes.values(),
                              render(self.subject, tuple(self.options.items()))):
            pane.value = text

    def _settle(self, given):
        """The state after ``given``: other options keep their values unless their choices
        changed with it (then their default); checked by the subject."""
        state = {**self.options, **given}
        for index, name in enumerate(self.controls):
            option = self.subject.options_for(state)[index]
            if name not in given and labelled_choices(option) != offered(self.controls[name]):
                state[name] = option.default
        return self.subject.resolve(**state)

    def _apply(self, given):
        state = self._settle(given)
        self._quiet = True   # one redraw at the end, not one per control
        try:
            for option in self.subject.options_for(state):
                control = self.controls[option.name]
                if labelled_choices(option) != offered(control):
                    control.options = labelled_choices(option)
                control.value = state[option.name]
        finally:
            self._quiet = False
        self.refresh()

    def _on_change(self, change):
        if not self._quiet:
            self._apply({})

    def __repr__(self):
        return self.subject.describe(self.options)


def explore(mechanism, **initial):
    """An :class:`Explorer` for ``mechanism``, starting at its defaults or ``initial``."""
    return Explorer(mechanism, **initial)
