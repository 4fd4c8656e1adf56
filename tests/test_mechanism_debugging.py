"""Notebook 11_debugging's helpers: the registry entries, the bug lab, the exercises, the
gradient-flow chart, and the gradient doctor against the bug catalogue (whose causes
tests/test_bugs.py checks without the doctor)."""

import html
from pathlib import Path

import pytest
import torch

import helpers
from helpers import bug_lab, bugs, grad_flow
from helpers.exercises import EXERCISES, check
from helpers.registry import get_mechanism
from helpers.toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_loss, toy_net

NAMES = list(bugs.BUGS)


def test_registered_outside_the_comparison():
    mechanism = get_mechanism("debugging")
    assert mechanism.notebook == "11_debugging" and mechanism.in_comparison is False
    assert list(get_mechanism("debugging").option("bug").choices) == NAMES


@pytest.mark.parametrize("name", ["none", "frozen", "dead_relu", "argmax", "inplace_add"])
def test_debugging_mechanism_runs_the_planted_step(name):
    outcome = helpers.run("debugging", bug=name)
    planted = bugs.plant(name)
    error = None
    try:
        planted.step()
    except RuntimeError as exc:
        error = exc
    assert list(outcome.params) == [n for n, _ in planted.model.named_parameters()]
    for pname, p in planted.model.named_parameters():
        want = "None" if p.grad is None else ("zeros" if not torch.any(p.grad) else "values")
        assert outcome.params[pname].grad == want, pname
    assert (outcome.error is None) == (error is None)
    assert outcome.loss is not None  # computed in every one of these, even where backward raised


@pytest.mark.parametrize("name", NAMES)
def test_the_doctor_agrees_with_the_catalogue(name):
    item = bugs.BUGS[name]
    planted = bugs.plant(name)
    diagnosis = helpers.diagnose(planted.model, planted.step, planted.optimizer,
                                 tensors=planted.tensors)
    expected = bugs.expected_causes(name)
    if expected is not None:
        assert diagnosis.causes == expected
    if item.error is None:
        assert diagnosis.error is None
    else:
        assert item.error in diagnosis.error
    if item.line is not None:  # the explanation names the line that edited the tensor
        assert f"`{item.line}" in diagnosis.error
        source = next(path.name for path in sorted(Path(bugs.__file__).parent.glob("*.py"))
                      if item.line in path.read_text())  # the file the bug's step is written in
        assert f"{source}:" in diagnosis.error


@pytest.mark.parametrize("name", NAMES)
def test_the_doctor_finds_nothing_else_after_the_fix(name):
    planted = bugs.plant(name, fixed=True)
    diagnosis = helpers.diagnose(planted.model, planted.step, planted.optimizer,
                                 tensors=planted.tensors)
    assert diagnosis.error is None
    broken = {n: c for n, c in diagnosis.causes.items() if c != "ok"}
    assert broken == bugs.BUGS[name].fixed_causes


def test_bug_lab_follows_the_dropdown(require_tool):
    require_tool("dot")
    lab = bug_lab.BugLab("frozen")
    assert repr(lab) == "BugLab(bug='frozen')"
    assert 'data-gfl-bug="frozen"' in lab.hook.value
    for name in ["dead_relu", "inplace_mask", "frozen"]:
        lab.control.value = name  # as the widget does when a learner picks
        diagnosis = lab.diagnosis()
        planted = bugs.plant(name)
        assert lab.table.value == diagnosis.table()._repr_html_()
        assert "<svg" in lab.graph.value
        assert bugs.BUGS[name].fix in html.unescape(lab.code.value)
        assert [n for n, _ in planted.model.named_parameters()] == [
            n for n in diagnosis.causes if n not in planted.tensors]
    with pytest.raises(ValueError, match="valid bugs"):
        bug_lab.BugLab("nope")


def test_bug_table_has_a_row_per_bug():
    table = bug_lab.bug_table()
    assert table.column("bug") == [item.label for item in bugs.BUGS.values()]
    said = dict(zip(NAMES, table.column("the doctor says")))
    assert said["none"] == "all ok"
    assert said["frozen"] == "frozen: stem.weight, stem.bias"
    assert said["argmax"].endswith("; the step raised RuntimeError")


# Expected answers written by hand from the code of each exercise (the checks compute theirs
# with the doctor).
ANSWERS = {
    "11.1": {"l1.weight": "detached", "l1.bias": "detached"},
    "11.2": dict.fromkeys(PARAM_NAMES, "not_moved"),
    "11.3": {"l1.weight": "no_grad", "l1.bias": "no_grad"},
}
# The common wrong answer and a phrase of the hint it gets (a hint, not the answer).
COMMON_WRONG = {
    "11.1": ({"l1.weight": "no_grad", "l1.bias": "no_grad"}, "Not no_grad: grad mode was on"),
    "11.2": ({}, "did anything move?"),
    "11.3": ({"l1.weight": "detached", "l1.bias": "detached"}, "Nothing calls detach()"),
}


@pytest.mark.parametrize("key", sorted(ANSWERS))
def test_exercises(key):
    assert EXERCISES[key].expected() == ANSWERS[key]
    assert check(key, ANSWERS[key])
    wrong, hint = COMMON_WRONG[key]
    verdict = check(key, wrong)
    assert not verdict and hint in repr(verdict)
    assert EXERCISES[key].why not in repr(verdict)      # the hint does not give the answer away
    assert not check(key, ...)


def test_warm_up_really_starts_at_zero():
    from helpers.mechanisms.debugging import warm_up_from_zero

    _, step, optimizer = warm_up_from_zero()
    assert optimizer.param_groups[0]["lr"] == 0.0
    step()  # the first epoch, at lr 0
    step.scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_layer_grad_norms_read_each_weight_grad():
    model = grad_flow.backward_once(grad_flow.deep_mlp("healthy", depth=3, width=4))
    norms = grad_flow.layer_grad_norms(model)
    assert list(norms) == ["0", "2", "4"]
    for index, norm in zip([0, 2, 4], norms.values()):
        assert norm == pytest.approx(float(model[index].weight.grad.norm()))
    model[0].weight.grad = None
    assert grad_flow.layer_grad_norms(model)["0"] != grad_flow.layer_grad_norms(model)["0"]


def test_vanishing_exploding_healthy():
    norms = {case: list(grad_flow.layer_grad_norms(
        grad_flow.backward_once(grad_flow.deep_mlp(case))).values()) for case in grad_flow.CASES}
    assert norms["vanishing"][0] < 1e-6 * norms["vanishing"][-1]
    assert all(a < b for a, b in zip(norms["vanishing"], norms["vanishing"][1:]))
    assert min(norms["exploding"]) > 1e6 * max(norms["healthy"])
    assert max(norms["healthy"]) < 10 * min(norms["healthy"])
    with pytest.raises(ValueError, match="case must be one of"):
        grad_flow.deep_mlp("nope")


def test_chart_draws_one_line_per_case_on_a_log_scale():
    chart = grad_flow.grad_flow_chart({"a": {"0": 1.0, "2": 0.1}, "b": {"0": 1.0, "2": 10.0}})
    assert chart.series == {"a": [1.0, 0.1], "b": [1.0, 10.0]}
    svg = chart._repr_svg_()
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 2 + 1  # a: 2 points + key
    # log scale: 0.1 -> 1 and 1 -> 10 are the same height; 10 is above 1, 0.1 below
    assert chart._y(0.1) - chart._y(1.0) == pytest.approx(chart._y(1.0) - chart._y(10.0))
    assert chart._y(10.0) < chart._y(1.0) < chart._y(0.1)
    assert 'role="img"' in svg and "<title>" in svg
    assert "a: 1.0e+00 at layer 1, 1.0e-01 at layer 2" in chart.summary() in svg
    assert repr(chart).splitlines()[1:] == ["  a: 1.00e+00, 1.00e-01", "  b: 1.00e+00, 1.00e+01"]


def test_chart_leaves_a_gap_for_a_missing_gradient():
    nan = float("nan")
    svg = grad_flow.grad_flow_chart({"a": {"0": 1.0, "2": nan, "4": 2.0, "6": 4.0}}).svg()
    assert svg.count("<polyline") == 1          # layers 3-4; layer 1 alone is a point
    assert svg.count("<circle") == 3 + 1        # three points drawn, and the legend's
    with pytest.raises(ValueError, match="nothing to draw"):
        grad_flow.grad_flow_chart({"a": {"0": nan, "2": 0.0}})
