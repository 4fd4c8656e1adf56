"""The requires_grad mechanism against what plain PyTorch does (notebook 02)."""

import pytest
import torch
from torch import nn

import helpers
from helpers.exercises import EXERCISES, check
from helpers.mechanisms.requires_grad import freeze_layers, trainable_parameters
from plain_toy import NAMES, Net, plain_batch, plain_net  # noqa: F401

FROZEN_NAMES = {"none": set(), "l1": {"l1.weight", "l1.bias"}, "l2": {"l2.weight", "l2.bias"},
                "both": set(NAMES)}


def node_names(loss):
    """Names of every backward node reachable from the loss, and the leaves accumulated into."""
    names, leaves, stack, seen = [], [], [loss.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        if hasattr(node, "variable"):
            leaves.append(node.variable)
        stack += [fn for fn, _ in node.next_functions]
    return names, leaves


def plain_frozen_step(frozen):
    """The expected result, by hand, following notebook 02's recipe: freeze, an SGD optimizer
    over what still requires grad, forward, backward, step. Returns the error it meets, if any,
    and (where the recipe stopped early) the error backward() would have raised next."""
    net, (x, y) = plain_net(), plain_batch()
    for name, p in net.named_parameters():
        if name in FROZEN_NAMES[frozen]:
            p.requires_grad = False
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    error, in_graph = None, None
    try:
        optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
        loss = nn.functional.mse_loss(net(x), y)
        _, leaves = node_names(loss)
        in_graph = {n: any(p is leaf for leaf in leaves) for n, p in net.named_parameters()}
        loss.backward()
        optimizer.step()
    except ValueError as exc:
        error = f"ValueError: {exc}"
    return net, before, in_graph, error


@pytest.mark.parametrize("frozen", ["none", "l1", "l2", "both"])
def test_every_option_matches_plain_pytorch(frozen):
    outcome = helpers.run("requires_grad", frozen=frozen)
    net, before, in_graph, error = plain_frozen_step(frozen)
    for name, p in net.named_parameters():
        got = outcome.params[name]
        assert got.requires_grad == p.requires_grad == (name not in FROZEN_NAMES[frozen])
        expected_grad = "None" if p.grad is None else "values"
        assert got.grad == expected_grad
        if p.grad is not None:
            assert got.grad_norm == pytest.approx(p.grad.norm().item(), abs=1e-7)
        assert got.changed == (not torch.equal(before[name], p.detach()))
        if in_graph is None:
            assert "in graph" not in got.extra  # the recipe stopped before any forward
        else:
            assert got.extra["in graph"] == ("yes" if in_graph[name] else "no")
    if frozen == "both":
        assert error == "ValueError: optimizer got an empty parameter list"
        assert f"{outcome.error.kind}: {outcome.error.message}" == error
        assert "every parameter is frozen" in outcome.error.explanation
        assert outcome.loss is None  # the learner's code never reached the forward pass
    else:
        assert error is None and outcome.error is None


def test_with_everything_frozen_backward_would_raise_too():
    # What the notebook shows after the optimizer's refusal: without an optimizer, backward()
    # is the next thing to fail.
    net, (x, y) = plain_net(), plain_batch()
    net.requires_grad_(False)
    loss = nn.functional.mse_loss(net(x), y)
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        loss.backward()


def test_summary_says_what_a_learner_following_the_recipe_meets():
    summary = helpers.get_mechanism("requires_grad").summary
    assert "empty parameter list" in summary


def test_frozen_l2_passes_the_same_gradient_to_l1():
    frozen_net, free_net = plain_net(), plain_net()
    x, y = plain_batch()
    frozen_net.l2.weight.requires_grad = False
    frozen_net.l2.bias.requires_grad = False
    nn.functional.mse_loss(frozen_net(x), y).backward()
    nn.functional.mse_loss(free_net(x), y).backward()
    assert torch.equal(frozen_net.l1.weight.grad, free_net.l1.weight.grad)
    assert torch.equal(frozen_net.l1.bias.grad, free_net.l1.bias.grad)
    outcome = helpers.run("requires_grad", frozen="l2")
    assert outcome.params["l1.weight"].grad_norm == pytest.approx(
        free_net.l1.weight.grad.norm().item(), abs=1e-7)


def test_graph_nodes_frozen_l1_vs_frozen_l2():
    x, y = plain_batch()
    names = {}
    for frozen in ("none", "l1", "l2"):
        net = plain_net()
        for name, p in net.named_parameters():
            p.requires_grad = name not in FROZEN_NAMES[frozen]
        names[frozen], _ = node_names(nn.functional.mse_loss(net(x), y))
    assert names["none"].count("AddmmBackward0") == 2
    assert names["l1"].count("AddmmBackward0") == 1 and "ReluBackward0" not in names["l1"]
    assert names["l2"].count("AddmmBackward0") == 2 and "ReluBackward0" in names["l2"]
    assert names["l1"].count("AccumulateGrad") == names["l2"].count("AccumulateGrad") == 2

    # The drawn outline says the same: frozen parameters are marked "(not in graph)".
    outline_l1 = repr(helpers.draw(helpers.run("requires_grad", frozen="l1")))
    outline_l2 = repr(helpers.draw(helpers.run("requires_grad", frozen="l2")))
    assert outline_l1.count("AddmmBackward0") == 1 and "ReluBackward0" not in outline_l1
    assert outline_l2.count("AddmmBackward0") == 2 and "ReluBackward0" in outline_l2
    for param in ("l1.weight", "l1.bias"):
        assert f"{param} " in outline_l1 and "grad: None (not in graph)" in outline_l1
        assert [line for line in outline_l1.splitlines() if param in line][0].strip().endswith(
            "grad: None (not in graph)")
    for param in ("l2.weight", "l2.bias"):
        assert [line for line in outline_l2.splitlines() if param in line][0].strip().endswith(
            "grad: None (not in graph)")
    assert outline_l2.count("AccumulateGrad") == 2


def test_freeze_and_trainable_parameters_helpers():
    net = plain_net()
    freeze_layers(net, "l1")
    assert [p.requires_grad for p in net.parameters()] == [False, False, True, True]
    assert trainable_parameters(net) == [net.l2.weight, net.l2.bias]
    freeze_layers(net, "both")
    assert trainable_parameters(net) == []


def test_truth_table_rows():
    table = helpers.truth_table("requires_grad")
    assert table.column("frozen") == ["none", "l1", "l2", "both"]
    assert table.column("grad l1.weight") == ["values *", "None", "values *", "None"]
    assert table.column("grad l2.bias") == ["values *", "values *", "None", "None"]
    assert table.column("error")[:3] == ["", "", ""]
    assert table.column("error")[3] == "ValueError: optimizer got an empty parameter list"


def test_exercise_solutions_pass_and_wrong_answers_fail():
    assert check("02.1", {"l1.weight"})
    assert not check("02.1", {"l1.weight", "l1.bias"})
    assert check("02.2", 3)
    assert not check("02.2", 2)  # as if the whole of l2 were frozen
    assert not check("02.2", 4)
    assert check("02.3", 4)
    assert not check("02.3", 16)
    assert "Right." in repr(check("02.3", 4)) and "Not yet." in repr(check("02.3", 3))
    assert not check("02.1", ...)
    assert "Not answered yet" in repr(check("02.1", ...))


def test_exercise_expectations_from_plain_pytorch():
    x, y = plain_batch()
    net = plain_net()
    net.l1.weight.requires_grad = False
    nn.functional.mse_loss(net(x), y).backward()
    assert EXERCISES["02.1"].expected() == {n for n, p in net.named_parameters() if p.grad is None}
    net = plain_net()
    net.l2.weight.requires_grad_(False)
    names, _ = node_names(nn.functional.mse_loss(net(x), y))
    assert EXERCISES["02.2"].expected() == names.count("AccumulateGrad") == 3
    assert EXERCISES["02.3"].expected() == 3 * 1 + 1
