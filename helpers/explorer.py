"""The explorer: widget controls built from a mechanism's options, redrawing graph and table.

Uses only ipywidgets API shared by 7.7 (Colab) and 8, but for the tooltip's name: see
:func:`tooltip`. Callbacks are plain methods, so tests drive an explorer by setting
``explorer.controls[name].value`` and reading ``.table.value``.
"""

from functools import lru_cache

import ipywidgets as widgets

from .graph import draw
from .grad_table import grad_table
from .registry import cached_outcome, get_mechanism

BASELINE = "control"


def tooltip(widget_class, text):
    """Keyword arguments that set ``text`` as ``widget_class``'s hover text, without a warning.

    ipywidgets 8 calls it ``tooltip`` (and deprecates ``description_tooltip``); 7.x calls it
    ``description_tooltip`` and ignores ``tooltip`` with a DeprecationWarning (Colab has 7.7.1).
    """
    name = "tooltip" if "tooltip" in widget_class.class_trait_names() else "description_tooltip"
    return {name: text}


def control_for(option, value):
    """A ToggleButtons (few choices) or Dropdown (many) for one option."""
    choices = [(str(label), choice) for choice, label in option.choices.items()]
    style = {"description_width": "initial"}
    if len(choices) <= 4:  # buttons as wide as their labels, so no label is cut short
        return widgets.ToggleButtons(options=choices, value=value, description=option.name,
                                     **tooltip(widgets.ToggleButtons, option.description),
                                     style={**style, "button_width": "auto"})
    return widgets.Dropdown(options=choices, value=value, description=option.name,
                            **tooltip(widgets.Dropdown, option.description), style=style)


@lru_cache(maxsize=None)
def render(mechanism_name, options_items):
    """(graph HTML, table HTML) for one option state; cached, so a repeat toggle is instant."""
    outcome = cached_outcome(mechanism_name, options_items)
    baseline = cached_outcome(BASELINE, ())
    is_baseline = (mechanism_name == BASELINE
                   and dict(options_items) == get_mechanism(BASELINE).defaults)
    beside = None if is_baseline else baseline  # no plain step beside the plain step
    return draw(outcome, beside=beside).html(), grad_table(outcome)._repr_html_()


class Explorer(widgets.VBox):
    """Controls for one mechanism above its gradient table and graph (beside the control's)."""

    def __init__(self, mechanism, **initial):
        self.mechanism = get_mechanism(mechanism)
        values = self.mechanism.resolve(**initial)
        self.controls = {o.name: control_for(o, values[o.name]) for o in self.mechanism.options}
        self.table = widgets.HTML()
        self.graph = widgets.HTML()
        # data-gfl-mechanism: which mechanism this widget shows (read by tests/test_browser.py).
        heading = widgets.HTML(f'<span data-gfl-mechanism="{self.mechanism.name}">'
                               f"<b>{self.mechanism.title}</b> &mdash; change a control; the "
                               "table and the graph (right, beside the plain step) follow.</span>")
        super().__init__([heading, *self.controls.values(), self.table, self.graph])
        self.add_class("gfl-explorer")
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.refresh()

    @property
    def options(self):
        return {name: control.value for name, control in self.controls.items()}

    def outcome(self):
        """The outcome the explorer shows now."""
        return cached_outcome(self.mechanism.name, tuple(self.options.items()))

    def set(self, **values):
        """Set controls as a learner would; each change redraws."""
        for name, value in self.mechanism.resolve(**{**self.options, **values}).items():
            self.controls[name].value = value

    def refresh(self):
        self.graph.value, self.table.value = render(self.mechanism.name,
                                                    tuple(self.options.items()))

    def _on_change(self, change):
        self.refresh()

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"Explorer({self.mechanism.name!r}{', ' if options else ''}{options})"


def explore(mechanism, **initial):
    """An :class:`Explorer` for ``mechanism``, starting at its defaults or ``initial``."""
    return Explorer(mechanism, **initial)
