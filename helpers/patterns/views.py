"""The patterns seen whole: a predict-first quiz, the explorer's subject and the summary table.

The quiz and the explorer are the series' own widgets (:class:`helpers.quiz.Quiz`,
:class:`helpers.explorer.Explorer`), here over a pattern's modules and over every pattern and
variant.
"""

import html

from ..explorer import Explorer, Subject
from ..grad_table import Table
from ..quiz import Quiz
from ..registry import Option
from .core import CORRECT, PATTERNS, get_pattern

START = "gan"  # the pattern an explorer opens on


def hook(name, variant):
    """HTML attributes naming a widget's pattern and variant, for tests to read off the page."""
    return (f'data-gfl-pattern="{html.escape(name, quote=True)}" '
            f'data-gfl-variant="{html.escape(variant, quote=True)}"')


def mistake_of(variant):
    """The mistake a variant runs: None for ``"correct"``."""
    return None if variant in (None, CORRECT) else variant


def variant_choices(name):
    """A pattern's variants, value -> label: ``"correct"`` first, then each mistake."""
    return {CORRECT: CORRECT, **{key: f"mistake: {label}"
                                 for key, label in get_pattern(name).mistakes.items()}}


def predict(name, mistake=None):
    """A :class:`~helpers.quiz.Quiz`: which modules' parameters does the guarded tensor reach?

    The choices are the pattern's modules; the answer, those its guarded tensor reaches in the
    step (correct, or with ``mistake``); the explanation, the pattern's registered prediction
    (``Pattern.predictions``), so the notebook's source never shows the answer.
    """
    item = get_pattern(name)
    why = item.why(mistake)
    result = item.run(mistake)
    # data-gfl-*: the pattern and variant this quiz asks about (read by tests/test_browser.py).
    question = (f"<span {hook(name, result.variant)}>Tick every module whose parameters "
                f"<b>{html.escape(result.guarded)}</b> reaches, so that its backward would fill "
                "their <code>.grad</code> (tick none if you expect it reaches none).</span>")
    return Quiz(question, result.roles, result.reached_roles, why=why, reveal="It reaches:",
                noun="module", label=f"PatternQuiz({name!r}, mistake={mistake!r})")


class PatternSubject(Subject):
    """Every pattern and its variants, for an explorer: summary, table and graph of the step."""

    panes = ("summary", "table", "graph")
    dropdowns = True

    def options_for(self, values):
        name = values.get("pattern", START)
        return (Option("pattern", {key: item.title for key, item in PATTERNS.items()}, START,
                       "Which training pattern runs"),
                Option("variant", variant_choices(name), CORRECT,
                       "The correct step, or the step with one classic mistake"))

    def resolve(self, **values):
        unknown = set(values) - {"pattern", "variant"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; the options are: "
                             "pattern, variant")
        name = values.get("pattern", START)
        variant = values.get("variant", CORRECT)
        if variant not in variant_choices(name):
            raise ValueError(f"pattern {name!r} has no variant {variant!r}; valid variants: "
                             f"{', '.join(repr(v) for v in variant_choices(name))}")
        return {"pattern": name, "variant": variant}

    def render(self, values):
        name, variant = values["pattern"], values["variant"]
        result = get_pattern(name).run(mistake_of(variant))
        verdict = ("gradients flow as intended" if result.ok
                   else "broken: " + "; ".join(result.problems()))
        # data-gfl-*: the pattern and variant shown now (read by tests/test_browser.py).
        summary = (f"<div {hook(name, result.variant)}>"
                   f"<p><b>{html.escape(PATTERNS[name].title)}</b> &mdash; "
                   f"{html.escape(PATTERNS[name].summary)}</p>"
                   f"<p><b>{html.escape(result.label)}</b>: {html.escape(verdict)}</p></div>")
        return summary, result.table()._repr_html_(), result.draw().html()

    def describe(self, values):
        mistake = mistake_of(values["variant"])
        return f"PatternExplorer({values['pattern']!r}, mistake={mistake!r})"


def explore(name=START, mistake=None):
    """An :class:`~helpers.explorer.Explorer` over every pattern, opening on ``name``, correct
    or with ``mistake``."""
    return Explorer(PatternSubject(), pattern=name, variant=mistake or CORRECT)


def summary_table():
    """Every pattern and variant at once: does the flow follow the rule, and what broke."""
    rows = []
    for name, item in PATTERNS.items():
        for variant, label in variant_choices(name).items():
            result = item.run(mistake_of(variant))
            rows.append([name, label.replace("mistake: ", ""),
                         ", ".join(sorted(result.reached_roles)) or "-",
                         "ok" if result.ok else "BROKEN", result.short_problem()])
    return Table(["pattern", "variant", "guarded tensor reaches", "verdict", "what broke"],
                 rows)
