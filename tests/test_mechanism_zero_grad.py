"""The zero_grad mechanism against what plain PyTorch does (notebook 01)."""

import inspect
import itertools

import pytest
import torch
from torch import nn

import helpers
from helpers.exercises import EXERCISES, check
from helpers.mechanisms.zero_grad import in_units_of, multiples_table
from plain_toy import NAMES, Net, plain_batch, plain_net  # noqa: F401

CLEARS = ("nothing", "optimizer", "model", "zeros", "loop")
PASSES = (0, 1, 2, 3)
HOLDS = ("all", "l2")


def plain_iteration(clear, passes, holds):
    """By hand: a backward leaves grads, clear, ``passes`` backwards, SGD step."""
    net, (x, y) = plain_net(), plain_batch()
    params = net.parameters() if holds == "all" else [net.l2.weight, net.l2.bias]
    optimizer = torch.optim.SGD(params, lr=0.1)
    nn.functional.mse_loss(net(x), y).backward()
    g1 = {n: p.grad.clone() for n, p in net.named_parameters()}
    stale = {n: p.grad for n, p in net.named_parameters()}
    if clear == "optimizer":
        optimizer.zero_grad()
    elif clear == "model":
        net.zero_grad()
    elif clear == "zeros":
        optimizer.zero_grad(set_to_none=False)
    elif clear == "loop":
        for p in net.parameters():
            p.grad = None
    after_clear = {n: p.grad for n, p in net.named_parameters()}
    after_clear_state = {n: "None" if g is None else ("zeros" if not g.any() else "values")
                         for n, g in after_clear.items()}
    same_object = {n: after_clear[n] is stale[n] for n in NAMES}
    for _ in range(passes):
        nn.functional.mse_loss(net(x), y).backward()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    optimizer.step()
    return net, g1, before, after_clear_state, same_object


def expected_multiple(clear, passes, holds, name):
    """From the facts: how many g1 a parameter's grad holds before the step (None: -1)."""
    in_optimizer = holds == "all" or name.startswith("l2")
    cleared = clear in ("model", "loop") or (clear in ("optimizer", "zeros") and in_optimizer)
    if not cleared:
        return passes + 1
    if passes == 0 and clear != "zeros":
        return -1
    return passes


COMBINATIONS = list(itertools.product(CLEARS, PASSES, HOLDS))


@pytest.mark.parametrize("clear,passes,holds", COMBINATIONS)
def test_every_option_matches_plain_pytorch(clear, passes, holds):
    outcome = helpers.run("zero_grad", clear=clear, passes=passes, optimizer_has=holds)
    net, g1, before, after_clear, _ = plain_iteration(clear, passes, holds)
    assert outcome.error is None
    for name, p in net.named_parameters():
        got = outcome.params[name]
        assert got.requires_grad is True
        multiple = expected_multiple(clear, passes, holds, name)
        # The facts' prediction and plain PyTorch agree ...
        if multiple == -1:
            assert p.grad is None
        else:
            assert torch.allclose(p.grad, multiple * g1[name])
        # ... and so does the mechanism.
        assert got.grad == ("None" if p.grad is None else
                            "zeros" if not p.grad.any() else "values")
        assert got.extra["grad after clearing"] == after_clear[name]
        assert got.extra["grad vs g1"] == {-1: "None", 0: "zeros", 1: "g1"}.get(
            multiple, f"{multiple} × g1")
        if p.grad is None:
            assert got.grad_norm is None
        else:
            assert got.grad_norm == pytest.approx(p.grad.norm().item(), abs=1e-7)
        moved = not torch.equal(before[name], p.detach())
        assert got.changed == moved
        in_optimizer = holds == "all" or name.startswith("l2")
        assert moved == (in_optimizer and multiple > 0)


def test_backward_adds_up_to_float_rounding():
    net, (x, y) = plain_net(), plain_batch()
    grads = []
    for _ in range(6):
        nn.functional.mse_loss(net(x), y).backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters()})
    for name in NAMES:
        for k in range(1, 7):
            assert torch.allclose(grads[k - 1][name], k * grads[0][name])
        assert torch.equal(grads[1][name], 2 * grads[0][name])  # g + g = 2g: exact
    # ... but not bit for bit in general (fact 43): 6 passes on the toy already differ.
    assert not all(torch.equal(grads[5][n], 6 * grads[0][n]) for n in NAMES)


def test_both_zero_grads_default_to_none_and_false_zeroes_in_place():
    for method in (torch.optim.Optimizer.zero_grad, nn.Module.zero_grad):
        assert inspect.signature(method).parameters["set_to_none"].default is True
    x, y = plain_batch()
    for call in (lambda net, opt: opt.zero_grad(), lambda net, opt: net.zero_grad()):
        net = plain_net()
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        nn.functional.mse_loss(net(x), y).backward()
        call(net, opt)
        assert all(p.grad is None for p in net.parameters())
    net = plain_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    nn.functional.mse_loss(net(x), y).backward()
    old = [p.grad for p in net.parameters()]
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is g and not g.any() for p, g in zip(net.parameters(), old))
    *_, same_object = plain_iteration("zeros", 0, "all")
    assert all(same_object.values())


def test_optimizer_zero_grad_scope_only_its_parameters():
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)
    nn.functional.mse_loss(net(x), y).backward()
    g1 = net.l1.weight.grad.clone()
    optimizer.zero_grad()
    assert net.l2.weight.grad is None and torch.equal(net.l1.weight.grad, g1)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_in_units_of():
    g = torch.tensor([0.5, -1.25])
    assert in_units_of(None, g) == "None"
    assert in_units_of(torch.zeros(2), g) == "zeros"
    assert in_units_of(g.clone(), g) == "g1"
    assert in_units_of(g + g + g, g) == "3 × g1"
    assert in_units_of(g * 0.5, g) == "other"
    # a running sum of six g is not 6 * g bit for bit, yet it is six passes' worth
    g = torch.tensor([0.1, 0.7, 1.3])
    total = torch.zeros(3)
    for _ in range(6):
        total += g
    assert not torch.equal(total, 6 * g)
    assert in_units_of(total, g) == "6 × g1"


def test_truth_table_rows():
    table = helpers.truth_table("zero_grad")
    assert len(table.rows) == len(COMBINATIONS) == 40
    rows = {tuple(r[:3]): r[3:] for r in table.rows}
    assert rows[("optimizer", "0", "l2")][:4] == ["values", "values", "None", "None"]
    assert rows[("model", "0", "l2")][:4] == ["None"] * 4
    assert rows[("zeros", "0", "all")][:4] == ["zeros"] * 4
    assert rows[("nothing", "0", "all")][:4] == ["values *"] * 4
    assert rows[("optimizer", "2", "l2")][:4] == ["values", "values", "values *", "values *"]
    assert all(r[-1] == "" for r in table.rows)


def test_multiples_table():
    table = multiples_table()
    rows = {tuple(r[:2]): r[2:] for r in table.rows}
    assert rows[("all", "nothing")] == ["g1", "2 × g1", "3 × g1", "4 × g1"]
    assert rows[("all", "optimizer")] == ["None", "g1", "2 × g1", "3 × g1"]
    assert rows[("all", "zeros")] == ["zeros", "g1", "2 × g1", "3 × g1"]
    assert rows[("l2", "optimizer")] == ["g1 (l1) | None (l2)", "2 × g1 (l1) | g1 (l2)",
                                         "3 × g1 (l1) | 2 × g1 (l2)", "4 × g1 (l1) | 3 × g1 (l2)"]
    assert rows[("l2", "model")] == rows[("all", "model")]
    # The caption's claim: each bias is the same multiple as its weight.
    for clear, passes, holds in COMBINATIONS:
        outcome = helpers.run("zero_grad", clear=clear, passes=passes, optimizer_has=holds)
        for layer in ("l1", "l2"):
            assert (outcome.params[f"{layer}.weight"].extra["grad vs g1"]
                    == outcome.params[f"{layer}.bias"].extra["grad vs g1"])


def accumulate_sum_micro_batches(scale):
    """The exercise 01.3 pattern by hand: 4 micro-batches of 2 rows, each sum loss * scale."""
    net, (x, y) = plain_net(), plain_batch()
    for xb, yb in zip(x.split(2), y.split(2)):
        (((net(xb) - yb) ** 2).sum() * scale).backward()
    return net.l1.weight.grad


def l2_bias_after_l1_only_loop(clear_all):
    """Exercise 01.1 by hand: 5 iterations, optimizer over l1 only; returns l2.bias.grad and
    each iteration's own l2.bias gradient."""
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.SGD(net.l1.parameters(), lr=0.1)
    each = []
    for _ in range(5):
        if clear_all:
            for p in net.parameters():
                p.grad = None
        else:
            optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        each.append(torch.autograd.grad(loss, net.l2.bias, retain_graph=True)[0])
        loss.backward()
        optimizer.step()
    return net.l2.bias.grad, each


def test_exercise_01_1_l2_sums_all_five_iterations():
    grad, each = l2_bias_after_l1_only_loop(clear_all=False)
    assert torch.allclose(grad, sum(each))
    assert not torch.allclose(grad, sum(each[1:]))  # the iterations differ: l1 moves
    assert EXERCISES["01.1"].expected() == 5
    assert check("01.1", 5)
    grad, each = l2_bias_after_l1_only_loop(clear_all=True)
    assert torch.allclose(grad, each[-1])
    verdict = check("01.1", 1)  # what clearing every parameter would give
    assert not verdict and "model.zero_grad()" in repr(verdict)


def test_exercise_01_2_mixed_clearing():
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.SGD(net.l1.parameters(), lr=0.1)
    nn.functional.mse_loss(net(x), y).backward()
    optimizer.zero_grad(set_to_none=False)
    net.l2.zero_grad()
    expected = {"l1.weight": "zeros", "l1.bias": "zeros", "l2.weight": "None", "l2.bias": "None"}
    assert {n: "None" if p.grad is None else "zeros" if not p.grad.any() else "values"
            for n, p in net.named_parameters()} == expected
    assert check("01.2", expected)
    myth = check("01.2", dict.fromkeys(NAMES, "zeros"))
    assert not myth and "set_to_none=True" in repr(myth)
    untouched = check("01.2", {**expected, "l1.weight": "values", "l1.bias": "values"})
    assert not untouched and "fills them with 0" in repr(untouched)


def test_exercise_01_3_sum_losses_need_one_over_n():
    full = plain_net()
    x, y = plain_batch()
    nn.functional.mse_loss(full(x), y).backward()
    right = accumulate_sum_micro_batches(1 / 8)
    assert torch.allclose(right, full.l1.weight.grad, atol=1e-7)
    assert torch.equal(EXERCISES["01.3"].expected(), full.l1.weight.grad)
    assert check("01.3", right)
    per_micro_batch = check("01.3", accumulate_sum_micro_batches(1 / 4))
    assert not per_micro_batch and "These are sums" in repr(per_micro_batch)
    unscaled = check("01.3", accumulate_sum_micro_batches(1.0))
    assert not unscaled and "not the mean" in repr(unscaled)
    assert not check("01.3", accumulate_sum_micro_batches(1 / 2))


def test_exercise_01_4_zero_grad_before_logging():
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    nn.functional.mse_loss(net(x), y).backward()
    after_backward = net.l1.weight.grad.clone()
    optimizer.step()
    assert torch.equal(net.l1.weight.grad, after_backward)  # step() leaves .grad alone
    optimizer.zero_grad()
    assert net.l1.weight.grad is None
    assert check("01.4", "c")
    for wrong in ("a", "b"):
        verdict = check("01.4", wrong)
        assert not verdict and "net.l1.weight.grad" in repr(verdict)
    assert "built from net.parameters()" in repr(check("01.4", "a"))
    assert "step() reads .grad" in repr(check("01.4", "b"))
    verdict = check("01.1", ...)
    assert bool(verdict) is False and "Not answered yet" in repr(verdict)
    assert all(EXERCISES[k].hints for k in ("01.1", "01.2", "01.3", "01.4"))


# ----- predict-first texts and captions ----------------------------------------------------


def test_captions_differ_for_every_combination():
    mechanism = helpers.get_mechanism("zero_grad")
    captions = [mechanism.describe(**o) for o in mechanism.combinations()]
    assert len(set(captions)) == len(captions) == 40
    assert mechanism.describe(clear="optimizer", passes=0, optimizer_has="l2") == (
        "optimizer.zero_grad(), no backward; optimizer holds only l2")
    assert mechanism.describe(clear="zeros", passes=2) == (
        "zero_grad(set_to_none=False), 2 backward passes; optimizer holds all parameters")


# A prediction key -> (the grads that are None, the multiple of g1 a text names, and whose).
PREDICTED = {
    ("optimizer", 1, "all"): ([], None),
    ("nothing", 1, "all"): ([], ("2 × g1", NAMES)),
    ("model", 1, "all"): ([], None),
    ("zeros", 1, "all"): ([], None),
    ("loop", 1, "all"): ([], None),
    ("optimizer", 0, "all"): (list(NAMES), None),
    ("optimizer", 2, "all"): ([], ("2 × g1", NAMES)),
    ("optimizer", 3, "all"): ([], ("3 × g1", NAMES)),
    ("optimizer", 1, "l2"): ([], ("2 × g1", ("l1.weight", "l1.bias"))),
    ("optimizer", 0, "l2"): (["l2.weight", "l2.bias"], None),
    ("model", 0, "all"): (list(NAMES), None),
}


@pytest.mark.parametrize("clear,passes,holds", list(PREDICTED))
def test_predictions_match_the_step(clear, passes, holds):
    """Each registered predict-first text exists, and the grads it explains (None, or the
    multiple of g1 it names) are what plain PyTorch gives."""
    mechanism = helpers.get_mechanism("zero_grad")
    why = mechanism.why(clear=clear, passes=passes, optimizer_has=holds)
    none, multiple = PREDICTED[(clear, passes, holds)]
    net, *_ = plain_iteration(clear, passes, holds)
    assert [n for n, p in net.named_parameters() if p.grad is None] == none
    outcome = helpers.run("zero_grad", clear=clear, passes=passes, optimizer_has=holds)
    assert outcome.grads_none() == none
    if multiple is not None:
        text, names = multiple
        assert f"({text})" in why
        k = int(text.split()[0])
        for name in names:
            assert expected_multiple(clear, passes, holds, name) == k


def test_registered_predictions_are_exactly_the_tested_ones():
    mechanism = helpers.get_mechanism("zero_grad")
    assert len(mechanism.predictions) == len(PREDICTED)
    for clear, passes, holds in PREDICTED:
        mechanism.why(clear=clear, passes=passes, optimizer_has=holds)
