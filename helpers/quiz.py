"""Predict first: the learner ticks which grads will be ``None``; the registry marks it."""

import html
import json

import ipywidgets as widgets

from .registry import get_mechanism
from .toy import PARAM_NAMES


class PredictQuiz(widgets.VBox):
    """Checkboxes for the four parameters, a Check button and the verdict."""

    def __init__(self, mechanism, why="", **options):
        self.mechanism = get_mechanism(mechanism)
        self.options = self.mechanism.resolve(**options)
        self.why = why
        self.boxes = {name: widgets.Checkbox(value=False, description=name, indent=False)
                      for name in PARAM_NAMES}
        self.button = widgets.Button(description="Check my answer")
        self.feedback = widgets.HTML()
        self.button.on_click(lambda _: self.check())
        # data-gfl-*: the step this quiz asks about (read by tests/test_browser.py).
        hook = html.escape(json.dumps(self.options), quote=True)
        question = widgets.HTML(f'<span data-gfl-mechanism="{self.mechanism.name}" '
                                f'data-gfl-options="{hook}">Tick every parameter whose '
                                "<code>.grad</code> will be <code>None</code> after the step "
                                "(tick none if you expect all four to get a gradient).</span>")
        super().__init__([question, widgets.HBox(list(self.boxes.values())), self.button,
                          self.feedback])
        self.add_class("gfl-quiz")

    @property
    def answer(self):
        outcome = self.mechanism.run(**self.options)
        return set(outcome.grads_none())

    def choose(self, names):
        """Tick exactly ``names``, as a learner would."""
        unknown = set(names) - set(PARAM_NAMES)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; valid: {PARAM_NAMES}")
        for name, box in self.boxes.items():
            box.value = name in names

    def check(self):
        """Mark the ticked answer; returns True when it is right."""
        chosen = {name for name, box in self.boxes.items() if box.value}
        answer = self.answer
        right = chosen == answer
        listed = ", ".join(n for n in PARAM_NAMES if n in answer) or "none of them"
        verdict = "Right!" if right else "Not quite."
        self.feedback.value = (
            f'<div class="gfl-verdict gfl-{"right" if right else "wrong"}">'
            f"<b>{verdict}</b> The grads that come back None: {html.escape(listed)}. "
            f"{html.escape(self.why)}</div>")
        return right

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"PredictQuiz({self.mechanism.name!r}{', ' if options else ''}{options})"


def predict(mechanism, why="", **options):
    """A :class:`PredictQuiz` for one step of ``mechanism`` under ``options``."""
    return PredictQuiz(mechanism, why=why, **options)
