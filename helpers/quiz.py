"""Predict first: one quiz widget. The learner ticks choices, presses the button, reads a verdict.

:class:`Quiz` takes a question, its choices and the right answer (the set of choices to tick).
``predict(mechanism, **options)`` builds one for a mechanism's step: the choices are the
parameters of the step's model (the toy net's four, unless the step swaps in another model), the
answer those whose grads come back ``None``, the explanation the one the registry holds
(``Mechanism.predictions``), so a notebook's source never shows the answer above the question.
Displayed, a quiz adds a folded ``<details>`` below the widget with the answer and why: readers
without a kernel (GitHub, nbviewer, print) open it there. Notebook 09's
pattern quiz (``helpers.patterns.predict``) is the same widget over a pattern's modules.
"""

import html
import json

import ipywidgets as widgets

from .registry import get_mechanism


class Quiz(widgets.VBox):
    """Checkboxes for the choices, a Check button and the verdict.

    ``question`` is HTML (it may carry the ``data-gfl-*`` attributes tests read). ``answer`` is
    the collection of choices to tick, or a function returning it, called at the first check.
    The verdict names the answer after ``reveal`` ("It reaches:"), then says ``why``. ``noun``
    names a choice in errors; ``label`` is the quiz's repr.
    """

    def __init__(self, question, choices, answer, why="", reveal="The answer:", noun="choice",
                 label=None):
        self.choices = list(choices)
        self._answer = answer
        self.why, self.reveal, self.noun = why, reveal, noun
        self.label = label or f"Quiz({self.choices!r})"
        self.boxes = {name: widgets.Checkbox(value=False, description=name, indent=False)
                      for name in self.choices}
        self.button = widgets.Button(description="Check my answer")
        self.feedback = widgets.HTML()
        self.button.on_click(lambda _: self.check())
        super().__init__([widgets.HTML(question), widgets.HBox(list(self.boxes.values())),
                          self.button, self.feedback])
        self.add_class("gfl-quiz")

    @property
    def answer(self):
        """The set of choices to tick."""
        if callable(self._answer):
            self._answer = self._answer()
        return set(self._answer)

    def choose(self, names):
        """Tick exactly ``names``, as a learner would."""
        unknown = set(names) - set(self.choices)
        if unknown:
            raise ValueError(f"unknown {self.noun}(s) {sorted(unknown)}; valid: {self.choices}")
        for name, box in self.boxes.items():
            box.value = name in names

    def check(self):
        """Mark the ticked answer; returns True when it is right."""
        chosen = {name for name, box in self.boxes.items() if box.value}
        answer = self.answer
        right = chosen == answer
        listed = ", ".join(n for n in self.choices if n in answer) or "none of them"
        verdict = "Right!" if right else "Not quite."
        self.feedback.value = (
            f'<div class="gfl-verdict gfl-{"right" if right else "wrong"}">'
            f"<b>{verdict}</b> {html.escape(self.reveal)} {html.escape(listed)}. "
            f"{html.escape(self.why)}</div>")
        return right

    def details_html(self):
        """The answer and why, folded: what a reader without a kernel opens below the quiz."""
        listed = ", ".join(n for n in self.choices if n in self.answer) or "none of them"
        text = " ".join(part for part in (self.reveal, f"{listed}.", self.why) if part)
        return (f'<details class="gfl-answer"><summary>Answer (open after you have '
                f"predicted)</summary><p>{html.escape(text)}</p></details>")

    def _ipython_display_(self):
        from IPython.display import HTML, display

        display(self._repr_mimebundle_(), raw=True)
        display(HTML(self.details_html()))

    def __repr__(self):
        return self.label


def predict(mechanism, **options):
    """A :class:`Quiz`: which parameters' grads come back ``None`` after ``mechanism``'s step?"""
    mechanism = get_mechanism(mechanism)
    options = mechanism.resolve(**options)
    # data-gfl-*: the step this quiz asks about (read by tests/test_browser.py).
    hook = html.escape(json.dumps(options), quote=True)
    choices = mechanism.parameters_under(**options)
    count = "four" if len(choices) == 4 else len(choices)
    question = (f'<span data-gfl-mechanism="{mechanism.name}" data-gfl-options="{hook}">Tick '
                "every parameter whose <code>.grad</code> will be <code>None</code> after the "
                f"step (tick none if you expect all {count} to get a gradient).</span>")
    shown = "".join(f", {k}={v!r}" for k, v in options.items())
    return Quiz(question, choices, lambda: mechanism.run(**options).grads_none(),
                why=mechanism.why(**options),
                reveal="The grads that come back None:", noun="parameter",
                label=f"PredictQuiz({mechanism.name!r}{shown})")
