"""Exercises with a ``check`` that says right or wrong, and why.

A notebook's exercise calls ``check("key", answer)``; the expected answer is computed here (from
PyTorch or the registry), so the notebook does not print it and the tests can verify it.
"""

from dataclasses import dataclass
from typing import Callable

import torch

EXERCISES = {}


@dataclass(frozen=True)
class Hint:
    """What to say to one common wrong answer: ``wrong()`` computes that answer (usually by
    running the mistake), so the hint follows PyTorch as the expected answer does."""

    wrong: Callable[[], object]
    text: str


@dataclass(frozen=True)
class Exercise:
    key: str
    expected: Callable[[], object]
    why: str
    hints: tuple = ()

    def hint_for(self, answer):
        """The hint for ``answer`` if it is one of the common wrong answers, else None."""
        return next((hint.text for hint in self.hints if same(answer, hint.wrong())), None)


def exercise(key, why, hints=()):
    """Decorator: register ``function`` (no arguments) as the source of the expected answer.

    ``hints``: :class:`Hint` objects for common wrong answers, each answered specifically.
    """
    def wrap(function):
        if key in EXERCISES:
            raise ValueError(f"exercise {key!r} is registered twice")
        EXERCISES[key] = Exercise(key, function, why, tuple(hints))
        return function
    return wrap


def same(answer, expected):
    """Equality that also understands tensors, floats and collections of names."""
    if isinstance(expected, torch.Tensor):
        return isinstance(answer, torch.Tensor) and answer.shape == expected.shape and \
            torch.allclose(answer, expected)
    if isinstance(expected, float):
        return isinstance(answer, (int, float)) and abs(answer - expected) <= 1e-6 * max(
            1.0, abs(expected))
    if isinstance(expected, (set, frozenset)):
        return isinstance(answer, (set, frozenset, list, tuple)) and set(answer) == expected
    return type(answer) is type(expected) and answer == expected


class Verdict:
    """The result of a check: true when right; shown as the sentence that explains it."""

    def __init__(self, right, message):
        self.right = right
        self.message = message

    def __bool__(self):
        return self.right

    def __repr__(self):
        return self.message


def check(key, answer):
    """Whether ``answer`` is right for exercise ``key``, and why (a :class:`Verdict`)."""
    from . import mechanisms, patterns  # noqa: F401  (exercises live beside their lessons)
    from . import myths  # noqa: F401  (notebook 10's exercises)

    if key not in EXERCISES:
        raise ValueError(f"unknown exercise {key!r}; valid: {', '.join(sorted(EXERCISES))}")
    item = EXERCISES[key]
    if answer is Ellipsis:
        return Verdict(False, f"[{key}] Not answered yet: replace ... with your answer and run "
                              "the cell again.")
    if same(answer, item.expected()):
        return Verdict(True, f"[{key}] Right. {item.why}")
    hint = item.hint_for(answer)
    if hint is not None:  # a known mistake: say what it misses, keep the answer for later
        return Verdict(False, f"[{key}] Not yet. {hint} Try again.")
    return Verdict(False, f"[{key}] Not yet. {item.why}")
