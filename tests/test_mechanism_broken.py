"""The broken step of notebook 11_debugging's predict-first question, against plain PyTorch."""

import pytest
import torch

import helpers
from helpers.registry import get_mechanism
from helpers.toy import LEARNING_RATE, toy_batch, toy_loss, toy_net


def test_registered_outside_the_comparison():
    mechanism = get_mechanism("broken")
    assert mechanism.notebook == "11_debugging" and mechanism.in_comparison is False


def plain_broken_step(fixed):
    net = toy_net()
    x, y = toy_batch()
    if fixed:
        net.l2 = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
        hidden = torch.relu(net.l1(x))
    else:
        optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
        net.l2 = torch.nn.Linear(3, 1)
        with torch.no_grad():
            hidden = torch.relu(net.l1(x))
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    toy_loss(net.l2(hidden), y).backward()
    optimizer.step()
    return net, before


@pytest.mark.parametrize("version", ["broken", "fixed"])
def test_broken_matches_plain_pytorch(version):
    outcome = helpers.run("broken", version=version)
    net, before = plain_broken_step(version == "fixed")
    for name, p in net.named_parameters():
        got = outcome.params[name]
        assert got.grad == ("None" if p.grad is None else "values")
        assert got.changed == (not torch.equal(before[name], p.detach()))
    if version == "broken":
        assert outcome.grads_none() == ["l1.weight", "l1.bias"]
        assert not any(p.changed for p in outcome.params.values())  # l2: not in the optimizer
