"""The control (the plain training step every notebook compares with), against plain PyTorch."""

import pytest
import torch

import helpers


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
