"""The control (the plain training step every notebook compares with), against plain PyTorch."""

import pytest
import torch

import helpers
from helpers.exercises import EXERCISES, check


def plain_control_step():
    """The control step written out in plain PyTorch, independent of the helpers."""
    torch.manual_seed(0)
    l1, l2 = torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=generator), torch.randn(8, 1, generator=generator)
    params = {"l1.weight": l1.weight, "l1.bias": l1.bias, "l2.weight": l2.weight,
              "l2.bias": l2.bias}
    before = {n: p.detach().clone() for n, p in params.items()}
    loss = ((l2(torch.relu(l1(x))) - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        for p in params.values():
            p -= 0.1 * p.grad
    return params, before, loss


def test_control_outcome_matches_plain_pytorch():
    params, before, loss = plain_control_step()
    outcome = helpers.run("control")
    assert outcome.error is None
    assert outcome.loss.item() == pytest.approx(loss.item(), abs=1e-7)
    assert list(outcome.params) == list(params)
    for name, p in params.items():
        result = outcome.params[name]
        assert result.requires_grad and result.grad == "values" and result.changed
        assert result.grad_norm == pytest.approx(p.grad.norm().item(), rel=1e-6)
        assert torch.allclose(outcome.tensors[name].detach(), p.detach())
        assert not torch.equal(before[name], p.detach())


def test_control_options():
    no_step = helpers.run("control", optimizer_step="no")
    assert all(p.grad == "values" and not p.changed for p in no_step.params.values())
    with_input = helpers.run("control", input_grad="yes")
    plain = helpers.run("control")
    assert [p.grad_norm for p in with_input.params.values()] == \
        [p.grad_norm for p in plain.params.values()]


def test_captions_name_every_option_combination_in_words():
    mechanism = helpers.get_mechanism("control")
    captions = {tuple(o.values()): mechanism.describe(**o) for o in mechanism.combinations()}
    assert captions == {
        ("yes", "no"): "plain step",
        ("no", "no"): "plain step, no optimizer.step()",
        ("yes", "yes"): "plain step, input x requires grad",
        ("no", "yes"): "plain step, no optimizer.step(), input x requires grad",
    }


def test_predictions_agree_with_the_step():
    """Every combination has a predict-first text, and each says what the step did: no grad
    is None (the text says every .grad is filled), and only the step moves parameters."""
    mechanism = helpers.get_mechanism("control")
    for options in mechanism.combinations():
        why = mechanism.why(**options)
        outcome = helpers.run("control", **options)
        assert outcome.grads_none() == []
        assert all(p.changed == (options["optimizer_step"] == "yes")
                   for p in outcome.params.values())
        if options["optimizer_step"] == "no":
            assert "optimizer.step()" in why


# ----- exercises of notebook 00, expectations from plain PyTorch ---------------------------


def test_exercise_00_1_weight_grad_has_the_weights_shape():
    layer = torch.nn.Linear(5, 2)
    layer(torch.randn(7, 5)).pow(2).mean().backward()
    assert tuple(layer.weight.grad.shape) == (2, 5)
    assert check("00.1", (2, 5))
    for wrong, says in (((5, 2), "other way round"), ((7, 2), "output"), ((7, 5), "input")):
        verdict = check("00.1", wrong)
        assert not verdict and says in repr(verdict) and "(2, 5)" not in repr(verdict)


def test_exercise_00_2_sum_loss_bias_gradient_by_hand():
    torch.manual_seed(0)
    l1, l2 = torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=generator), torch.randn(8, 1, generator=generator)
    out = l2(torch.relu(l1(x)))
    ((out - y) ** 2).sum().backward()
    by_hand = (2 * (out - y).sum()).item()
    assert l2.bias.grad.item() == pytest.approx(by_hand, rel=1e-6)
    assert check("00.2", by_hand)
    mean_version = check("00.2", (2 * (out - y).mean()).item())
    assert not mean_version and "gradient of the mean" in repr(mean_version)
    no_two = check("00.2", (out - y).sum().item())
    assert not no_two and "factor 2" in repr(no_two)


def test_exercise_00_3_item_leaves_the_graph():
    torch.manual_seed(0)
    l1, l2 = torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=generator), torch.randn(8, 1, generator=generator)
    scale = torch.nn.Parameter(torch.tensor(2.0))
    loss = ((l2(torch.relu(l1(x))) * scale.item() - y) ** 2).mean()
    loss.backward()
    assert scale.grad is None and scale.requires_grad and scale.is_leaf
    assert l2.bias.grad is not None
    seen, stack = [], [loss.grad_fn]  # every AccumulateGrad's tensor in the loss's graph
    while stack:
        node = stack.pop()
        seen += [node.variable] if hasattr(node, "variable") else []
        stack += [fn for fn, _ in node.next_functions if fn is not None]
    assert any(t is l2.bias for t in seen) and not any(t is scale for t in seen)
    assert check("00.3", "b")
    for wrong in ("a", "c"):
        verdict = check("00.3", wrong)
        assert not verdict and ".item() returns" in repr(verdict)
    assert all(EXERCISES[k].hints for k in ("00.1", "00.2", "00.3"))
