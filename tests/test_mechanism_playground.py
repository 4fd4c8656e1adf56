"""The playground mechanism (notebook 08): every combination against plain PyTorch."""

import contextlib
import itertools

import pytest
import torch
from torch import nn

import helpers
from helpers.mechanisms import (inference_mode, manual_grad_edits, no_grad, optimizer_subsets,
                                playground, requires_grad, zero_grad)

NAMES = ("l1.weight", "l1.bias", "l2.weight", "l2.bias")
KNOBS = {
    "freeze": ("none", "l1", "l2"),
    "no_grad": ("none", "l1"),
    "inference": ("no", "yes"),
    "detach": ("none", "l1"),
    "optimizer": ("all", "l2", "l1"),
    "edit": ("none", "set_none"),
}
COMBINATIONS = [dict(zip(KNOBS, values)) for values in itertools.product(*KNOBS.values())]


def plain_step(freeze, no_grad, inference, detach, optimizer, edit):
    """The combination written out in plain PyTorch, independent of the helpers."""
    torch.manual_seed(0)
    l1, l2 = nn.Linear(4, 3), nn.Linear(3, 1)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=generator), torch.randn(8, 1, generator=generator)
    layers = {"l1": l1, "l2": l2}
    params = {"l1.weight": l1.weight, "l1.bias": l1.bias, "l2.weight": l2.weight,
              "l2.bias": l2.bias}
    if freeze != "none":
        for p in layers[freeze].parameters():
            p.requires_grad = False
    held = set(NAMES) if optimizer == "all" else {f"{optimizer}.weight", f"{optimizer}.bias"}
    before = {n: p.detach().clone() for n, p in params.items()}
    error, loss = None, None
    try:
        outer = torch.no_grad() if no_grad == "l1" else contextlib.nullcontext()
        inner = torch.inference_mode() if inference == "yes" else contextlib.nullcontext()
        with outer, inner:
            h = torch.relu(l1(x))
        if detach == "l1":
            h = h.detach()
        loss = ((l2(h) - y) ** 2).mean()
        loss.backward()
        if edit == "set_none":
            l1.weight.grad = None
            l1.bias.grad = None
        with torch.no_grad():
            for name in held:
                if params[name].grad is not None:
                    params[name] -= 0.1 * params[name].grad
    except RuntimeError as exc:
        error = str(exc)
    return params, before, loss, error


def label(combination):
    return "-".join(combination.values())


@pytest.mark.parametrize("combination", COMBINATIONS, ids=label)
def test_every_combination_matches_plain_pytorch(combination):
    outcome = helpers.run("playground", **combination)
    params, before, loss, error = plain_step(**combination)
    assert (outcome.error is None) == (error is None), (outcome.error, error)
    if error is not None:
        assert outcome.error.message == error.splitlines()[0]
        assert outcome.error.explanation != "PyTorch refused this combination."
    if loss is not None:
        assert outcome.loss.item() == pytest.approx(loss.item(), abs=1e-7)
    for name, p in params.items():
        got = outcome.params[name]
        assert got.requires_grad == p.requires_grad
        expected_state = "None" if p.grad is None else (
            "zeros" if not torch.any(p.grad) else "values")
        assert got.grad == expected_state, name
        if p.grad is not None:
            assert got.grad_norm == pytest.approx(p.grad.norm().item(), rel=1e-6)
        assert got.changed == (not torch.equal(before[name], p.detach())), name
        assert torch.allclose(outcome.tensors[name].detach(), p.detach())
        in_optimizer = combination["optimizer"] in ("all", name.split(".")[0])
        assert got.extra["in optimizer"] == ("yes" if in_optimizer else "no")


def test_notes_say_which_parameters_reach_the_graph():
    cut = helpers.run("playground", detach="l1")
    assert [cut.params[n].extra["in graph"] for n in NAMES] == ["no", "no", "yes", "yes"]
    plain = helpers.run("playground")
    assert all(plain.params[n].extra["in graph"] == "yes" for n in NAMES)


def test_defaults_are_the_plain_training_step():
    outcome, control = helpers.run("playground"), helpers.run("control")
    for name in NAMES:
        assert outcome.params[name].grad_norm == control.params[name].grad_norm
        assert outcome.params[name].changed and control.params[name].changed


def test_step_composes_the_sibling_building_blocks():
    # Not re-implemented: the very functions of the sibling mechanisms.
    assert playground.freeze_layers is requires_grad.freeze_layers
    assert playground.note_in_graph is requires_grad.note_in_graph
    assert playground.layer_forward is no_grad.layer_forward
    assert playground.first_half is inference_mode.first_half
    assert playground.param_groups is optimizer_subsets.param_groups
    assert playground.held_lr is optimizer_subsets.held_lr
    assert playground.clear_grads is zero_grad.clear_grads
    assert playground.edit_grads_directly is manual_grad_edits.edit_grads_directly


def test_options_come_from_the_registry_and_cover_every_combination():
    mechanism = helpers.get_mechanism("playground")
    assert {o.name: tuple(o.choices) for o in mechanism.options} == KNOBS
    assert mechanism.notebook == "08_compare_all"
    table = helpers.truth_table("playground")
    assert len(table.rows) == len(COMBINATIONS) == 144


def test_caption_says_plain_step_or_each_changed_option():
    mechanism = helpers.get_mechanism("playground")
    assert mechanism.describe() == "plain step"
    assert mechanism.describe(freeze="l1", detach="l1", optimizer="l2") == (
        "L1 frozen; detach after L1; optimizer holds only l2")
    for combination in COMBINATIONS:   # one phrase per changed option, in option order
        changed = [k for k in KNOBS if combination[k] != KNOBS[k][0]]
        text = mechanism.describe(**combination)
        assert len(text.split("; ")) == max(1, len(changed)), combination
        assert (text == "plain step") == (not changed)


def test_predictions_name_the_grads_that_come_back_none():
    """Each registered explanation starts with the answer a fresh run gives."""
    mechanism = helpers.get_mechanism("playground")
    assert mechanism.predictions
    for key, why in mechanism.predictions.items():
        options = dict(item.split("=") for item in key.split(", "))
        none = helpers.run("playground", **options).grads_none()
        if not none:
            assert why.startswith("None of them:"), key
        elif len(none) == 4:
            assert why.startswith("All four."), key
        else:
            assert why.startswith(" and ".join(none)), key
    # the quiz of notebook 08 reads it from the registry
    assert "moves nothing" in mechanism.why(no_grad="l1", optimizer="l1")


def test_exercises_accept_solutions_and_reject_wrong_answers():
    assert helpers.check("08.1", {"l1.weight", "l2.weight", "l2.bias"})
    wrong = helpers.check("08.1", {"l2.weight", "l2.bias"})   # "frozen never moves"
    assert not wrong and "without weight_decay" in repr(wrong)
    wrong = helpers.check("08.1", set(NAMES))                  # "weight decay moves l1.bias"
    assert not wrong and "skips a parameter whose .grad is None" in repr(wrong)
    assert not helpers.check("08.1", set())
    assert helpers.check("08.2", set())
    assert "is l1 in this optimizer" in repr(helpers.check("08.2", {"l1.weight", "l1.bias"}))
    assert "when L2 is frozen" in repr(helpers.check("08.2", {"l2.weight", "l2.bias"}))
    assert helpers.check("08.3", "b")
    assert "param_groups" in repr(helpers.check("08.3", "a"))
    assert "without optimizer.zero_grad()" in repr(helpers.check("08.3", "c"))
    assert "Not answered yet" in repr(helpers.check("08.1", ...))


def test_exercise_08_1_frozen_weight_with_a_zero_grad_moves_under_weight_decay():
    net = helpers.toy_net()
    x, y = helpers.toy_batch()
    net.l1.requires_grad_(False)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0.1)
    w0, b0 = net.l1.weight.detach().clone(), net.l1.bias.detach().clone()
    optimizer.zero_grad()
    helpers.toy_loss(net(x), y).backward()
    net.l1.weight.grad = torch.zeros_like(net.l1.weight)
    optimizer.step()
    assert torch.allclose(net.l1.weight, w0 - 0.1 * 0.1 * w0)   # decay only
    assert torch.equal(net.l1.bias, b0)                          # grad None: skipped


def test_exercise_08_2_frozen_l2_in_the_optimizer_moves_nothing():
    l1, l2 = nn.Linear(4, 3), nn.Linear(3, 1)
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    l2.requires_grad_(False)
    optimizer = torch.optim.SGD(l2.parameters(), lr=0.1)
    before = [p.detach().clone() for p in [*l1.parameters(), *l2.parameters()]]
    ((l2(torch.relu(l1(x))) - y) ** 2).mean().backward()
    optimizer.step()
    assert l1.weight.grad is not None and l2.weight.grad is None   # flows through frozen L2
    after = [*l1.parameters(), *l2.parameters()]
    assert all(torch.equal(b, a) for b, a in zip(before, after))


def test_exercise_08_3_freezing_after_building_the_optimizer():
    l1, l2 = nn.Linear(4, 3), nn.Linear(3, 1)
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    optimizer = torch.optim.SGD([*l1.parameters(), *l2.parameters()], lr=0.1)
    l1.requires_grad_(False)
    ((l2(torch.relu(l1(x))) - y) ** 2).mean().backward()    # no zero_grad: still None
    assert l1.weight.grad is None and l2.weight.grad is not None
    assert any(p is l1.weight for p in optimizer.param_groups[0]["params"])   # still held


def test_inference_inplace_explanation_says_the_value_is_written_before_the_error():
    # PyTorch writes the new values, then raises: "cannot be modified in place" would be false.
    from helpers.errors import explain

    with torch.inference_mode():
        t = torch.zeros(3)
    with pytest.raises(RuntimeError) as info:
        t.add_(1)
    assert torch.equal(t, torch.ones(3))       # the edit happened before the error
    caught = explain(info.value)
    assert "Inplace update to inference tensor outside InferenceMode" in caught.message
    assert "only after writing the new values" in caught.explanation
    with torch.inference_mode():
        t.add_(1)                               # allowed inside a later inference_mode block
    assert torch.equal(t, torch.full((3,), 2.0))
    assert "inside a later inference_mode block the edit is allowed" in caught.explanation
