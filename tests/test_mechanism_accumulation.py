"""Gradient accumulation (notebook 12_at_scale) against plain PyTorch written out here."""

import itertools

import pytest
import torch
from torch.nn import functional as F

import helpers
from helpers.compare import rows as comparison_rows
from helpers.exercises import EXERCISES, check
from helpers.mechanisms import accumulation
from helpers.toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_net

SIZES = {"8": [8], "4+4": [4, 4], "6+2": [6, 2], "3+3+2": [3, 3, 2]}


def hidden_of(net, x, norm):
    h = torch.relu(net.l1(x))
    if norm == "batchnorm":  # written out: this batch's mean and biased variance, eps 1e-5
        h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5)
    return h


def plain_accumulation(split, reduction, norm):
    """The grads of one accumulated step and of the big batch, in plain torch."""
    x, y = toy_batch()
    big = toy_net()
    ((big.l2(hidden_of(big, x, norm)) - y) ** 2).mean().backward()
    net = toy_net()
    sizes = SIZES[split]
    start = 0
    for n in sizes:
        xb, yb = x[start:start + n], y[start:start + n]
        start += n
        squared = (net.l2(hidden_of(net, xb, norm)) - yb) ** 2
        loss = {"mean": squared.mean(), "mean/k": squared.mean() / len(sizes),
                "weighted": squared.mean() * n / 8, "sum/N": squared.sum() / 8}[reduction]
        loss.backward()
    return ({n: p.grad for n, p in net.named_parameters()},
            {n: p.grad for n, p in big.named_parameters()})


def equal_to_big(split, reduction, norm):
    """The rule the notebook teaches, stated independently of the code under test."""
    if split == "8":
        return True
    if norm == "batchnorm":
        return False
    if reduction in ("weighted", "sum/N"):
        return True
    return reduction == "mean/k" and len(set(SIZES[split])) == 1


COMBINATIONS = list(itertools.product(SIZES, accumulation.REDUCTIONS, accumulation.NORMS))


@pytest.mark.parametrize("split,reduction,norm", COMBINATIONS)
def test_every_combination_matches_plain_pytorch(split, reduction, norm):
    outcome = helpers.run("accumulation", split=split, reduction=reduction, norm=norm)
    accumulated, big = plain_accumulation(split, reduction, norm)
    assert outcome.error is None and outcome.grads_none() == []
    equal = all(torch.allclose(accumulated[n], big[n], atol=1e-6) for n in PARAM_NAMES)
    assert equal == equal_to_big(split, reduction, norm)
    for name in PARAM_NAMES:
        got = outcome.params[name]
        assert got.grad == "values" and got.changed
        assert got.grad_norm == pytest.approx(float(accumulated[name].norm()), rel=1e-4)
        distance = float((accumulated[name] - big[name]).norm() / big[name].norm())
        shown = got.extra[accumulation.COLUMN]
        if distance < 1e-6:
            assert shown == "0"
        elif distance > 1e-3:
            assert shown.endswith("%") and float(shown[:-1]) == pytest.approx(100 * distance,
                                                                             abs=0.06)


def test_step_moves_parameters_by_the_accumulated_gradient():
    outcome = helpers.run("accumulation", split="3+3+2", reduction="sum/N")
    accumulated, _ = plain_accumulation("3+3+2", "sum/N", "none")
    start = toy_net()
    for name, p in start.named_parameters():
        assert torch.allclose(outcome.tensors[name].detach(),
                              p.detach() - LEARNING_RATE * accumulated[name], atol=1e-6)


def test_named_cases():
    assert accumulation.ACCUMULATION.defaults == {"split": "6+2", "reduction": "mean/k",
                                                  "norm": "none"}
    by_hand, big = plain_accumulation("6+2", "mean", "none")
    # "mean, added up" over 6+2: l2.bias gets the two micro-batch means summed, not averaged
    x, y = toy_batch()
    net = toy_net()
    residual = net(x) - y
    expected = 2 * residual[:6].mean() + 2 * residual[6:].mean()
    assert torch.allclose(by_hand["l2.bias"], expected.detach().reshape(1), atol=1e-6)
    assert not torch.allclose(by_hand["l2.bias"], big["l2.bias"])


def test_accumulation_table_rows():
    table = accumulation.accumulation_table()
    assert len(table.rows) == len(COMBINATIONS)
    for row in table.rows:
        split, reduction, norm, distance, same = row
        assert same == ("yes" if equal_to_big(split, reduction, norm) else "no"), row
        assert (distance == "0") == (same == "yes")


def test_not_in_the_comparison_matrix():
    assert accumulation.ACCUMULATION.in_comparison is False
    assert helpers.get_mechanism("checkpoint").in_comparison is False
    names = {row.mechanism for row in comparison_rows()}
    assert "accumulation" not in names and "checkpoint" not in names


def test_bad_choices_name_the_valid_ones():
    with pytest.raises(ValueError, match="valid: 8, 4\\+4, 6\\+2, 3\\+3\\+2"):
        accumulation.sizes_of("5+3")
    with pytest.raises(ValueError, match="valid: mean, mean/k, weighted, sum/N"):
        accumulation.micro_batch_loss(torch.zeros(1), torch.zeros(1), "median", 1, 1)
    with pytest.raises(ValueError, match="valid: none, batchnorm"):
        accumulation.forward_with_norm(toy_net(), toy_batch()[0], "layernorm")
    with pytest.raises(ValueError, match="valid choices"):
        helpers.run("accumulation", split="5+3")


def test_format_distance():
    assert accumulation.format_distance(0.0) == "0"
    assert accumulation.format_distance(3e-6) == "0"
    assert accumulation.format_distance(0.497) == "49.7%"


# --- exercises --------------------------------------------------------------------------------


def test_exercise_12_1():
    x, y = toy_batch()
    big = toy_net()
    F.mse_loss(big(x), y).backward()
    net = toy_net()
    (F.mse_loss(net(x[:6]), y[:6]) * 6 / 8).backward()
    (F.mse_loss(net(x[6:]), y[6:]) * 0.25).backward()
    assert all(torch.allclose(p.grad, q.grad, atol=1e-6)
               for p, q in zip(net.parameters(), big.parameters()))
    assert check("12.1", 0.25) and check("12.1", 2 / 8)
    assert not check("12.1", 0.5) and not check("12.1", ...)


def test_exercise_12_3():
    net = toy_net()
    x, y = toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale(F.mse_loss(net(x), y)).backward()
    net.l2.bias.grad.fill_(float("nan"))  # a NaN instead of an inf: the same rule
    before = [p.detach().clone() for p in net.parameters()]
    scaler.step(optimizer)
    scaler.update()
    assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before))
    assert scaler.get_scale() == 512.0
    assert check("12.3", 512.0)
    assert not check("12.3", 1024.0) and not check("12.3", 2048.0)


def test_scale_grows_after_growth_interval_clean_steps():
    """12.3's explanation: x2 only after growth_interval (2000 by default) clean steps."""
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    assert torch.amp.GradScaler("cpu").get_growth_interval() == 2000
    assert scaler.get_growth_factor() == 2.0 and scaler.get_backoff_factor() == 0.5
    net = toy_net()
    x, y = toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    scales = []
    for _ in range(4):
        optimizer.zero_grad()
        scaler.scale(F.mse_loss(net(x), y)).backward()
        scaler.step(optimizer)
        scaler.update()
        scales.append(scaler.get_scale())
    assert scales == [1024.0, 1024.0, 2048.0, 2048.0]


def test_exercises_registered():
    assert {"12.1", "12.2", "12.3"} <= set(EXERCISES)
