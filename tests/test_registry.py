"""The registry's contract: what every registered mechanism must bring.

A lesson adds a mechanism module, a notebook twin, a lesson row and a test file; everything else
(explorer, quiz, truth table, comparison, benchmarks) reads the registry. This file checks, for
every mechanism in ``helpers.registry.MECHANISMS``, that it brings all of that and that the
views built from it work:

- its module is ``helpers/mechanisms/<name>.py``;
- its notebook is a slug of ``helpers.lessons.LESSONS`` with both ``notebooks/<slug>.ipynb``
  and the twin ``notebooks/sources/<slug>.py``;
- it has its own test file ``tests/test_mechanism_<name>.py``;
- every option combination runs and gives one state per parameter;
- the exercises its module registers are numbered ``NN.k`` after its notebook and are asked in
  that notebook's twin;
- its explorer and quiz build and follow a control, checked against a fresh
  ``mechanism.run(...)`` put through ``helpers.grad_table`` (not the explorer's cache).

Notebook 09's patterns (``helpers.patterns.PATTERNS``) meet the same contract in their own
terms: a module ``helpers/patterns/<name>.py``, lesson 09 with its twin, a run by name in
tests/test_patterns.py, every variant run, exercises ``09.k`` asked in the twin, and the
pattern explorer and quiz checked against a fresh ``run_pattern``.

Each check is a function that raises ``AssertionError``; a throwaway mechanism registered by
the last tests shows that the checks fail when a piece is missing.
"""

import re
from pathlib import Path

import pytest

import helpers
import helpers.mechanisms  # noqa: F401  (registers every mechanism)
from helpers.exercises import EXERCISES, exercise
from helpers.lessons import LESSONS
from helpers.registry import MECHANISMS, Mechanism, Option, get_mechanism, register

ROOT = Path(__file__).resolve().parent.parent
GRAD_STATES = {"None", "zeros", "values"}

# ----------------------------------------------------------------- the checks


def module_of(mechanism):
    """The module that defines ``mechanism``'s step (where the mechanism is written)."""
    return mechanism.step.__module__


def check_module(mechanism):
    expected = f"helpers.mechanisms.{mechanism.name}"
    assert module_of(mechanism) == expected, (
        f"mechanism {mechanism.name!r} is defined in {module_of(mechanism)}, expected {expected}")
    path = ROOT / "helpers" / "mechanisms" / f"{mechanism.name}.py"
    assert path.is_file(), f"no {path.relative_to(ROOT)}"


def check_notebook(mechanism):
    slugs = [item.slug for item in LESSONS]
    assert mechanism.notebook in slugs, (
        f"mechanism {mechanism.name!r}: notebook {mechanism.notebook!r} is not a lesson slug "
        f"(helpers/lessons.py): {slugs}")
    for path in (ROOT / "notebooks" / f"{mechanism.notebook}.ipynb",
                 ROOT / "notebooks" / "sources" / f"{mechanism.notebook}.py"):
        assert path.is_file(), f"mechanism {mechanism.name!r}: no {path.relative_to(ROOT)}"


def check_test_file(mechanism):
    path = ROOT / "tests" / f"test_mechanism_{mechanism.name}.py"
    assert path.is_file(), f"mechanism {mechanism.name!r}: no {path.relative_to(ROOT)}"


def check_combinations(mechanism):
    """Every combination runs (errors PyTorch raises are caught into the outcome) and gives one
    state per parameter of the network the step trained."""
    combos = list(mechanism.combinations())
    count = 1
    for option in mechanism.options:
        assert option.default in option.choices
        count *= len(option.choices)
    assert len(combos) == count and mechanism.defaults in combos
    for combo in combos:
        outcome = mechanism.run(**combo)
        where = f"{mechanism.name} {combo}"
        assert outcome.mechanism == mechanism.name and outcome.options == combo, where
        assert list(outcome.params) == list(outcome.tensors) and outcome.params, where
        for name, state in outcome.params.items():
            assert state.name == name, where
            assert state.grad in GRAD_STATES, f"{where}: {name} grad {state.grad!r}"
            assert (state.grad_norm is None) == (state.grad == "None"), f"{where}: {name}"
            assert state.requires_grad == outcome.tensors[name].requires_grad, f"{where}: {name}"


def check_exercises(mechanism):
    """The exercises defined in the mechanism's module: ``NN.k`` after its notebook's number,
    each asked in that notebook's twin with ``check("NN.k", ...)``."""
    number = mechanism.notebook[:2]
    twin = ROOT / "notebooks" / "sources" / f"{mechanism.notebook}.py"
    text = twin.read_text() if twin.is_file() else ""
    for key, item in EXERCISES.items():
        if item.expected.__module__ != module_of(mechanism):
            continue
        assert re.fullmatch(rf"{number}\.\d+", key), (
            f"exercise {key!r} of {module_of(mechanism)} is not numbered after notebook "
            f"{mechanism.notebook} ({number}.k)")
        assert re.search(rf'check\(\s*"{re.escape(key)}"', text), (
            f"exercise {key!r} is not asked in {twin.relative_to(ROOT)}")


def expected_views(mechanism, state):
    """(table HTML, graph HTML) of ``state``, from fresh runs of the registry."""
    outcome = mechanism.run(**state)
    baseline = get_mechanism("control")
    alone = mechanism.name == baseline.name and state == baseline.defaults
    graph = helpers.draw(outcome, beside=None if alone else baseline.run()).html()
    return helpers.grad_table(outcome)._repr_html_(), graph


def non_default_states(mechanism):
    """The defaults with one option set to another value: one state per (option, value)."""
    for option in mechanism.options:
        for value in option.choices:
            if value != option.default:
                yield option, value, {**mechanism.defaults, option.name: value}


def check_explorer(mechanism):
    explorer = helpers.explore(mechanism.name)
    try:
        assert list(explorer.controls) == [o.name for o in mechanism.options]
        for option in mechanism.options:
            values = [value for _, value in explorer.controls[option.name].options]
            assert values == list(option.choices), f"{mechanism.name}.{option.name}: {values}"
        assert explorer.options == mechanism.defaults
        assert (explorer.table.value, explorer.graph.value) == expected_views(
            mechanism, mechanism.defaults), f"{mechanism.name}: the explorer's first view"
        for option, value, state in non_default_states(mechanism):
            explorer.controls[option.name].value = value  # as a learner would
            assert explorer.options == state
            table, graph = expected_views(mechanism, state)
            assert explorer.table.value == table, f"{mechanism.name} {state}: table"
            assert explorer.graph.value == graph, f"{mechanism.name} {state}: graph"
            explorer.controls[option.name].value = option.default
        assert explorer.options == mechanism.defaults
    finally:
        explorer.close()


def check_quiz(mechanism):
    """At the defaults and at each one-option change: ticking the grads that are None (read
    from a fresh run) is marked right, any other ticking wrong."""
    for state in [mechanism.defaults, *(s for _, _, s in non_default_states(mechanism))]:
        outcome = mechanism.run(**state)
        answer = {name for name, p in outcome.params.items() if p.grad == "None"}
        check_quiz_marks(helpers.predict(mechanism.name, **state), answer,
                         f"{mechanism.name} {state}")


def check_quiz_marks(quiz, answer, where):
    """``quiz`` marks ``answer`` right and another ticking wrong, and names the answer."""
    try:
        boxes = list(quiz.boxes)
        assert answer <= set(boxes), (f"{where}: the answer {sorted(answer)} cannot be ticked "
                                      f"with the boxes {boxes}")
        quiz.choose(answer)
        assert quiz.check() is True and "Right!" in quiz.feedback.value, where
        listed = ", ".join(name for name in boxes if name in answer) or "none of them"
        assert f" {listed}. " in quiz.feedback.value, (where, quiz.feedback.value)
        quiz.choose(answer ^ {boxes[-1]})
        assert quiz.check() is False and "Not quite." in quiz.feedback.value, where
    finally:
        quiz.close()


# ----------------------------------------------------------------- every registered mechanism

NAMES = sorted(MECHANISMS)
# Each check, with the mechanisms known to fail it today and the error they fail with.
MECHANISM_CHECKS = [check_module, check_notebook, check_test_file, check_combinations,
                    check_exercises, check_explorer, check_quiz]


def mechanism_cases():
    """(name, check) for every mechanism and check."""
    return [pytest.param(name, check, id=f"{check.__name__[len('check_'):]}-{name}")
            for check in MECHANISM_CHECKS for name in NAMES]


@pytest.mark.parametrize("name, check", mechanism_cases())
def test_mechanism_contract(name, check, require_tool):
    if check is check_explorer:
        require_tool("dot")  # the graph is compared as SVG
    check(MECHANISMS[name])


def test_every_mechanism_module_registers_a_mechanism():
    modules = {module_of(m).rsplit(".", 1)[1] for m in MECHANISMS.values()}
    files = {p.stem for p in (ROOT / "helpers" / "mechanisms").glob("*.py")} - {"__init__"}
    assert files == modules


# ----------------------------------------------------------------- every pattern (notebook 09)

PATTERN_NOTEBOOK = "09_patterns"


def check_pattern_module(item):
    expected = f"helpers.patterns.{item.name}"
    assert item.body.__module__ == expected, (
        f"pattern {item.name!r} is defined in {item.body.__module__}, expected {expected}")
    assert (ROOT / "helpers" / "patterns" / f"{item.name}.py").is_file()


def check_pattern_lesson_and_tests(item):
    lessons = {lesson.slug: lesson for lesson in LESSONS}
    assert PATTERN_NOTEBOOK in lessons
    twin = ROOT / "notebooks" / "sources" / f"{PATTERN_NOTEBOOK}.py"
    assert (ROOT / "notebooks" / f"{PATTERN_NOTEBOOK}.ipynb").is_file() and twin.is_file()
    tests = (ROOT / "tests" / "test_patterns.py").read_text()
    assert f'run_pattern("{item.name}"' in tests, (
        f"pattern {item.name!r} is not run by name in tests/test_patterns.py")


def check_pattern_variants(item):
    """Every variant runs and gives one grad state per parameter of its models."""
    from helpers import patterns

    assert list(item.variants) == [patterns.CORRECT, *item.mistakes]
    for variant in item.variants:
        result = patterns.run_pattern(item.name, None if variant == patterns.CORRECT else variant)
        where = f"{item.name}/{variant}"
        assert result.pattern == item.name and result.variant == variant, where
        assert list(result.grads) == list(result.params) and result.params, where
        assert set(result.grads.values()) <= GRAD_STATES, where
        assert result.reached <= set(result.params), where
        modules = {name.split(".", 1)[0] for name in result.params}
        assert set(item.must_reach) | set(item.must_not_reach) <= modules, where


def check_pattern_exercises(item):
    twin = (ROOT / "notebooks" / "sources" / f"{PATTERN_NOTEBOOK}.py").read_text()
    for key, exercise_ in EXERCISES.items():
        if exercise_.expected.__module__ == item.body.__module__:
            assert re.fullmatch(rf"{PATTERN_NOTEBOOK[:2]}\.\d+", key), (item.name, key)
            assert re.search(rf'check\(\s*"{re.escape(key)}"', twin), (item.name, key)


def check_pattern_explorer(item):
    """Opening on the pattern, then choosing each variant: the panes show a fresh run's."""
    from helpers import patterns

    explorer = patterns.explore(item.name)
    try:
        assert explorer.options == {"pattern": item.name, "variant": patterns.CORRECT}
        assert [v for _, v in explorer.controls["variant"].options] == list(item.variants)
        for variant in [*item.variants[1:], item.variants[0]]:
            explorer.controls["variant"].value = variant  # as a learner would
            result = patterns.run_pattern(item.name,
                                          None if variant == patterns.CORRECT else variant)
            where = f"{item.name}/{variant}"
            assert explorer.table.value == result.table()._repr_html_(), where
            assert explorer.graph.value == result.draw().html(), where
            assert f'data-gfl-pattern="{item.name}"' in explorer.summary.value, where
            assert f'data-gfl-variant="{variant}"' in explorer.summary.value, where
            verdict = "gradients flow as intended" if result.ok else "broken: "
            assert verdict in explorer.summary.value, where
    finally:
        explorer.close()


def check_pattern_quiz(item):
    """For each variant: the modules whose parameters the guarded tensor reaches (from a fresh
    run) are marked right, another set wrong."""
    from helpers import patterns

    for variant in item.variants:
        mistake = None if variant == patterns.CORRECT else variant
        result = patterns.run_pattern(item.name, mistake)
        answer = {name.split(".", 1)[0] for name in result.reached}
        quiz = patterns.predict(item.name, mistake)
        modules = list(dict.fromkeys(name.split(".", 1)[0] for name in result.params))
        assert list(quiz.boxes) == modules, (item.name, variant, list(quiz.boxes))
        check_quiz_marks(quiz, answer, f"{item.name}/{variant}")


def pattern_names():
    from helpers import patterns

    return list(patterns.PATTERNS)


PATTERN_CHECKS = [check_pattern_module, check_pattern_lesson_and_tests, check_pattern_variants,
                  check_pattern_exercises, check_pattern_explorer, check_pattern_quiz]


@pytest.mark.parametrize("check", PATTERN_CHECKS, ids=lambda f: f.__name__[len("check_"):])
@pytest.mark.parametrize("name", pattern_names())
def test_pattern_contract(name, check, require_tool):
    from helpers import patterns

    if check is check_pattern_explorer:
        require_tool("dot")  # the graph is compared as SVG
    check(patterns.PATTERNS[name])


# ----------------------------------------------------------------- the checks can fail

PROBE = "contract_probe"


def probe_step(ctx, scale=1.0):
    """A plain SGD step of the toy net with the loss scaled by ``scale``."""
    import torch

    optimizer = torch.optim.SGD(ctx.net.parameters(), lr=0.1)
    optimizer.zero_grad()
    (scale * ctx.loss_of(ctx.net(ctx.x))).backward()
    optimizer.step()


@pytest.fixture
def probe():
    """A throwaway mechanism in this test module, with no module, twin or test file of its own
    and an exercise numbered for another notebook; removed from the registries afterwards."""
    mechanism = register(Mechanism(
        name=PROBE, title="Contract probe", step=probe_step,
        options=(Option("scale", {1.0: "1", 0.0: "0"}, 1.0, "Loss scale"),),
        notebook="99_nowhere", in_comparison=False))

    @exercise("98.1", why="a probe")
    def probe_exercise():
        return 1

    try:
        yield mechanism
    finally:
        MECHANISMS.pop(PROBE, None)
        EXERCISES.pop("98.1", None)


def test_contract_fails_for_a_mechanism_missing_its_pieces(probe):
    with pytest.raises(AssertionError, match="is defined in"):
        check_module(probe)
    with pytest.raises(AssertionError, match="not a lesson slug"):
        check_notebook(probe)
    with pytest.raises(AssertionError, match="no tests/test_mechanism_contract_probe.py"):
        check_test_file(probe)
    with pytest.raises(AssertionError, match="'98.1'.*not numbered after notebook 99_nowhere"):
        check_exercises(probe)


def test_contract_fails_for_a_lesson_without_its_twin(probe, monkeypatch):
    # A real lesson slug whose twin is missing: pretend notebooks/sources has no such file.
    lesson_probe = Mechanism(name=PROBE, title="Contract probe", step=probe_step,
                             notebook="03_detach")
    real_is_file = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda self: (
        False if self.name == "03_detach.py" else real_is_file(self)))
    with pytest.raises(AssertionError, match="no notebooks/sources/03_detach.py"):
        check_notebook(lesson_probe)


def test_the_views_checks_pass_for_a_well_formed_probe(probe, require_tool):
    # The same checks pass when the pieces they look at are there: they can pass, and fail.
    require_tool("dot")
    check_combinations(probe)
    check_explorer(probe)
    check_quiz(probe)
    assert helpers.run(PROBE, scale=0.0).params["l1.weight"].grad == "zeros"
