"""The optimizer_subsets mechanism against what plain PyTorch does (notebook 06)."""

import itertools

import pytest
import torch
from torch import nn

import helpers
from helpers.exercises import EXERCISES, check
from plain_toy import NAMES, Net, plain_batch, plain_net  # noqa: F401

WARMUP, AFTER = 3, 3
PARAMS = ("all", "l2", "l1", "lr0")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
EXCLUDED = ("alone", "frozen", "zeros")


def plain_optimizer(kind, groups):
    return {
        "sgd": lambda: torch.optim.SGD(groups, lr=0.1),
        "momentum": lambda: torch.optim.SGD(groups, lr=0.1, momentum=0.9),
        "adam": lambda: torch.optim.Adam(groups, lr=0.1),
        "adamw": lambda: torch.optim.AdamW(groups, lr=0.1, weight_decay=0.01),
    }[kind]()


def plain_run(params, kind, excluded):
    """The scenario by hand. Also records every backward pass's own gradient."""
    net, (x, y) = plain_net(), plain_batch()
    l1, l2 = list(net.l1.parameters()), list(net.l2.parameters())
    groups = {"all": [{"params": l1 + l2}], "l2": [{"params": l2}], "l1": [{"params": l1}],
              "lr0": [{"params": l1, "lr": 0.0}, {"params": l2}]}[params]
    optimizer = plain_optimizer(kind, groups)
    fixed = net.l2 if params == "l1" else net.l1
    passes = []

    def iteration(set_to_none):
        optimizer.zero_grad(set_to_none=set_to_none)
        loss = nn.functional.mse_loss(net(x), y)
        trainable = [p for p in net.parameters() if p.requires_grad]
        own = torch.autograd.grad(loss, trainable, retain_graph=True)
        passes.append({id(p): g for p, g in zip(trainable, own)})
        loss.backward()

    for _ in range(WARMUP):
        iteration(True)
        optimizer.step()
    if excluded != "alone":
        for p in fixed.parameters():
            p.requires_grad = False
            if excluded == "frozen":
                p.grad = None
            else:
                p.grad.zero_()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for step in range(AFTER):
        iteration(excluded != "zeros")
        if step == AFTER - 1:
            state_before = {n: sorted(k for k in optimizer.state.get(p, {}) if k != "step")
                            for n, p in net.named_parameters()}
            grad_before = {n: None if p.grad is None else p.grad.clone()
                           for n, p in net.named_parameters()}
        optimizer.step()
    return net, optimizer, before, passes, state_before, grad_before


def expected_state(grad):
    if grad is None:
        return "None"
    return "zeros" if torch.count_nonzero(grad) == 0 else "values"


@pytest.mark.parametrize("params,kind,excluded",
                         list(itertools.product(PARAMS, OPTIMIZERS, EXCLUDED)))
def test_every_combination_matches_plain_pytorch(params, kind, excluded):
    outcome = helpers.run("optimizer_subsets", params=params, optimizer=kind, excluded=excluded)
    net, optimizer, before, passes, state_before, grad_before = plain_run(params, kind, excluded)
    assert outcome.error is None
    lrs = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, p in net.named_parameters():
        got = outcome.params[name]
        assert got.requires_grad == p.requires_grad, name
        assert got.grad == expected_state(p.grad), name
        assert got.changed == (not torch.equal(before[name], p.detach())), name
        if p.grad is not None:
            assert got.grad_norm == pytest.approx(p.grad.norm().item(), rel=1e-5)
        # extra columns
        lr = lrs.get(id(p))
        assert got.extra["optimizer"] == ("not held" if lr is None else f"lr {lr:g}")
        assert got.extra["optimizer state"] == (
            "-" if lr is None else ", ".join(state_before[name]) or "empty")
        text = got.extra["grad before step"]
        assert text.split(" ")[0] == expected_state(grad_before[name])
        if text.startswith("values"):
            # "values (k passes)": the grad is exactly the sum of the last k passes' gradients
            k = int(text.split("(")[1].split(" ")[0])
            assert 1 <= k <= len([q for q in passes if id(p) in q])
            own = [q[id(p)] for q in passes if id(p) in q]
            assert torch.allclose(grad_before[name], sum(own[-k:]), atol=1e-6)
            if k < len(own):
                assert not torch.allclose(grad_before[name], sum(own[-k - 1:]), atol=1e-6)


def test_the_trap_rows_are_exactly_the_stateful_optimizers_with_zero_grads():
    moved_frozen = {(params, kind, excluded)
                    for params, kind, excluded in itertools.product(PARAMS, OPTIMIZERS, EXCLUDED)
                    if excluded != "alone"
                    and helpers.run("optimizer_subsets", params=params, optimizer=kind,
                                    excluded=excluded).params["l1.weight"].changed
                    and params != "l1"}
    assert moved_frozen == {("all", k, "zeros") for k in ("momentum", "adam", "adamw")}


def test_left_out_parameters_accumulate_every_pass():
    outcome = helpers.run("optimizer_subsets", params="l2", optimizer="sgd", excluded="alone")
    assert outcome.params["l1.weight"].extra["grad before step"] == "values (6 passes)"
    assert outcome.params["l2.weight"].extra["grad before step"] == "values (1 pass)"
    net, _, _, passes, _, _ = plain_run("l2", "sgd", "alone")
    own = [q[id(net.l1.weight)] for q in passes]
    assert len(own) == 6 and torch.allclose(net.l1.weight.grad, sum(own), atol=1e-6)


def test_adamw_skips_none_grads_and_decays_zero_grads():
    for grad, expected in ((None, 2.0), (torch.zeros(3), 2.0 * (1 - 0.1 * 0.5))):
        p = nn.Parameter(torch.full((3,), 2.0))
        optimizer = torch.optim.AdamW([p], lr=0.1, weight_decay=0.5)
        p.requires_grad_(False)
        p.grad = grad
        optimizer.step()
        assert torch.equal(p.detach(), torch.full((3,), expected))
        assert (len(optimizer.state[p]) == 0) == (grad is None)


def test_change_is_measured_after_the_warm_up_only():
    outcome = helpers.run("optimizer_subsets", params="all", optimizer="sgd", excluded="frozen")
    assert not outcome.params["l1.weight"].changed  # l1 trained in the warm-up, not after
    assert helpers.run("control").params["l1.weight"].changed  # other mechanisms unaffected


def plain_06_1():
    """06.1's code by hand: (names with a grad after backward, names None when step() runs)."""
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.SGD([net.l1.weight, net.l2.weight], lr=0.1)
    nn.functional.mse_loss(net(x), y).backward()
    filled = {n for n, p in net.named_parameters() if p.grad is not None}
    optimizer.zero_grad()
    return filled, {n for n, p in net.named_parameters() if p.grad is None}


def plain_expected_06_3():
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.l1.bias.requires_grad = False
    for step in range(4):
        if step == 2:
            net.l2.bias.requires_grad = False
            before = [p.detach().clone() for p in net.parameters()]
        optimizer.zero_grad(set_to_none=False)
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
    return {n for (n, p), b in zip(net.named_parameters(), before) if not torch.equal(b, p)}


def plain_expected_06_2():
    """06.2 by hand: AdamW, frozen 2.0 with a zero grad, step then default zero_grad(), x3."""
    p = nn.Parameter(torch.tensor(2.0))
    optimizer = torch.optim.AdamW([p], lr=0.1, weight_decay=0.5)
    p.requires_grad = False
    p.grad = torch.zeros(())
    values = []
    for _ in range(3):
        optimizer.step()
        optimizer.zero_grad()
        values.append(p.item())
    assert p.grad is None and values[0] == values[1] == values[2]
    return values[-1]


@pytest.mark.parametrize("key,solution,wrong", [
    ("06.1", "b", "a"),
    ("06.2", 2.0 * 0.95, 2.0),
    ("06.3", {"l1.weight", "l2.weight", "l2.bias"}, set(NAMES)),
])
def test_exercises(key, solution, wrong):
    assert check(key, solution)
    assert not check(key, wrong)
    assert not check(key, ...)


def test_exercise_expectations_are_what_pytorch_does():
    filled, none_at_step = plain_06_1()
    # (b) holds: backward filled all four, the misplaced zero_grad emptied the held weights
    assert filled == set(NAMES) and none_at_step == {"l1.weight", "l2.weight"}
    assert EXERCISES["06.1"].expected() == "b"
    assert plain_expected_06_3() == {"l1.weight", "l2.weight", "l2.bias"}
    assert EXERCISES["06.3"].expected() == plain_expected_06_3()
    assert EXERCISES["06.2"].expected() == pytest.approx(plain_expected_06_2(), rel=1e-6)
    assert plain_expected_06_2() == pytest.approx(2.0 * 0.95, rel=1e-6)


@pytest.mark.parametrize("key,wrong,phrase", [
    ("06.1", "a", "already None"),
    ("06.1", "c", "right after backward()"),
    ("06.2", 2.0, "Before the first step the grad is zeros"),
    ("06.2", 2.0 * 0.95 ** 3, "set_to_none=False"),
    ("06.3", set(NAMES), "Look at l1.bias"),
    ("06.3", {"l1.weight", "l2.weight"}, "momentum buffer"),
])
def test_common_wrong_answers_get_their_hint(key, wrong, phrase):
    verdict = repr(check(key, wrong))
    assert verdict.startswith(f"[{key}] Not yet.") and phrase in verdict


def test_prediction_of_the_notebook_question_matches_the_run():
    mechanism = helpers.get_mechanism("optimizer_subsets")
    options = {"params": "l2", "optimizer": "adam", "excluded": "alone"}
    assert helpers.run("optimizer_subsets", **options).grads_none() == []
    why = mechanism.why(**options)
    assert "l1 included" in why and "six passes" in why
    assert helpers.run("optimizer_subsets", **options).params["l1.weight"].extra[
        "grad before step"] == "values (6 passes)"


def test_caption_names_optimizer_holdings_and_freezing_for_every_combination():
    mechanism = helpers.get_mechanism("optimizer_subsets")
    captions = {}
    for combo in mechanism.combinations():
        text = mechanism.describe(**combo)
        outcome = helpers.run("optimizer_subsets", **combo)
        fixed = "l2" if combo["params"] == "l1" else "l1"
        if combo["excluded"] == "alone":
            assert "nothing frozen" in text
            assert all(p.requires_grad for p in outcome.params.values())
        else:
            grads = "None" if combo["excluded"] == "frozen" else "zeros"
            assert f"{fixed.upper()} frozen, grads {grads}" in text
            assert not outcome.params[f"{fixed}.weight"].requires_grad
            assert outcome.params[f"{fixed}.weight"].grad == grads
        captions[text] = combo
    assert len(captions) == 48  # every combination has its own title
    assert mechanism.describe() == "Adam over L2 only, nothing frozen"
    assert mechanism.describe(params="lr0", optimizer="momentum", excluded="zeros") == (
        "SGD momentum over all, L1 at lr=0, L1 frozen, grads zeros")


def test_frozen_choice_label_names_the_clearing_the_step_does():
    from helpers.mechanisms.optimizer_subsets import EXCLUDED_CHOICES
    # Without the explicit clearing, a frozen layer keeps its warm-up grads (plain PyTorch) ...
    net, (x, y) = plain_net(), plain_batch()
    nn.functional.mse_loss(net(x), y).backward()
    net.l1.requires_grad_(False)
    assert net.l1.weight.grad is not None
    # ... while the step's "frozen" choice leaves None: so its label must say p.grad = None.
    outcome = helpers.run("optimizer_subsets", params="l2", excluded="frozen")
    assert outcome.grads_none() == ["l1.weight", "l1.bias"]
    assert EXCLUDED_CHOICES["frozen"] == "requires_grad_(False); p.grad = None"
    assert EXCLUDED_CHOICES["zeros"] == "requires_grad_(False); p.grad.zero_()"
    zeros = helpers.run("optimizer_subsets", params="l2", excluded="zeros")
    assert zeros.params["l1.weight"].grad == "zeros"


def test_summary_names_the_lbfgs_exception():
    summary = helpers.get_mechanism("optimizer_subsets").summary
    assert "LBFGS" in summary
