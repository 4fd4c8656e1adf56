"""helpers.check: right, not yet, and a specific hint for a known wrong answer."""

import pytest
import torch

from helpers.exercises import EXERCISES, Hint, check, exercise, same


@pytest.fixture
def throwaway():
    """An exercise registered for one test, with a hint for the answer that forgets zero_grad."""
    key = "99.9"

    def two_backwards(zero_between):
        w = torch.ones(2, requires_grad=True)
        (w * 3).sum().backward()
        if zero_between:
            w.grad = None
        (w * 3).sum().backward()
        return w.grad

    exercise(key, why="The grad of the second backward alone is 3 per element.",
             hints=(Hint(lambda: two_backwards(False), "That is both backwards added up."),))(
        lambda: two_backwards(True))
    yield key
    del EXERCISES[key]


def test_right_answer_says_right_and_why(throwaway):
    verdict = check(throwaway, torch.tensor([3.0, 3.0]))
    assert verdict and repr(verdict).startswith("[99.9] Right.")
    assert "3 per element" in repr(verdict)


def test_known_wrong_answer_gets_its_hint_not_the_answer(throwaway):
    verdict = check(throwaway, torch.tensor([6.0, 6.0]))  # forgot to clear between backwards
    assert not verdict
    assert "both backwards added up" in repr(verdict)
    assert "3 per element" not in repr(verdict)


def test_other_wrong_answer_gets_the_explanation(throwaway):
    verdict = check(throwaway, torch.tensor([1.0, 1.0]))
    assert not verdict and "Not yet." in repr(verdict) and "3 per element" in repr(verdict)


def test_unanswered_and_unknown_keys():
    assert "Not answered yet" in repr(check("00.1", ...))
    with pytest.raises(ValueError, match="valid: 00.1"):
        check("99.0", 1)


def test_every_hint_targets_a_wrong_answer():
    """A hint whose 'wrong' answer is in fact right would hide the right verdict."""
    check("00.1", ...)  # imports every module that registers exercises
    for item in EXERCISES.values():
        expected = item.expected()
        for hint in item.hints:
            assert not same(hint.wrong(), expected), (item.key, hint.text)
