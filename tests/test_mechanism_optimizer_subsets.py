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


def plain_expected_06_1():
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)
    nn.functional.mse_loss(net(x), y).backward()
    optimizer.step()
    optimizer.zero_grad()
    return {n for n, p in net.named_parameters() if p.grad is not None}


def plain_expected_06_3():
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
    for p in net.l2.parameters():
        p.requires_grad = False
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(3):
        optimizer.zero_grad(set_to_none=False)
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
    return {n for (n, p), b in zip(net.named_parameters(), before) if not torch.equal(b, p)}


@pytest.mark.parametrize("key,solution,wrong", [
    ("06.1", {"l1.weight", "l1.bias"}, set()),
    ("06.2", 2.0 * 0.95 ** 3, 2.0),
    ("06.3", set(NAMES), {"l1.weight", "l1.bias"}),
])
def test_exercises(key, solution, wrong):
    assert check(key, solution)
    assert not check(key, wrong)
    assert not check(key, ...)


def test_exercise_expectations_are_what_pytorch_does():
    assert plain_expected_06_1() == {"l1.weight", "l1.bias"} == EXERCISES["06.1"].expected()
    assert plain_expected_06_3() == set(NAMES) == EXERCISES["06.3"].expected()
    assert EXERCISES["06.2"].expected() == pytest.approx(2.0 * 0.95 ** 3, rel=1e-6)


def test_requires_grad_false_does_not_clear_grads_so_the_06_1_text_must_not_say_so():
    # Plain PyTorch: freezing keeps the grads l1 already has; model.zero_grad() clears them.
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)
    nn.functional.mse_loss(net(x), y).backward()
    optimizer.zero_grad()
    for p in net.l1.parameters():
        p.requires_grad = False
    assert all(p.grad is not None and p.grad.any() for p in net.l1.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.l1.parameters())
    why = EXERCISES["06.1"].why
    assert "model.zero_grad() clears them" in why
    assert "requires_grad_(False) deals with" not in why
    assert "requires_grad_(False) does not" in why


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
