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
    # The registry's "in graph" column says which parameters have an AccumulateGrad node
    # (graph labels are the graph module's business and are not checked here).
    for frozen in ("l1", "l2"):
        column = helpers.run("requires_grad", frozen=frozen).params
        assert {n for n in NAMES if column[n].extra["in graph"] == "no"} == FROZEN_NAMES[frozen]


def test_caption_and_prediction_for_every_option():
    mechanism = helpers.get_mechanism("requires_grad")
    captions = set()
    for frozen in FROZEN_NAMES:
        caption = mechanism.describe(frozen=frozen)
        assert caption and len(caption) <= 60, caption
        captions.add(caption)
        why = mechanism.why(frozen=frozen)
        assert why and "l2.weight and l2.bias" not in why  # the folded answer lists the names
    assert len(captions) == len(FROZEN_NAMES)
    assert mechanism.describe(frozen="none") == "plain step"
    assert "requires_grad_(False)" in mechanism.describe(frozen="l1")
    # "L1 not recorded" / "L2 still recorded": what the frozen layer leaves in the graph
    x, y = plain_batch()
    for frozen, recorded in (("l1", False), ("l2", True)):
        net = plain_net()
        for name, p in net.named_parameters():
            p.requires_grad = name not in FROZEN_NAMES[frozen]
        layer = net.l1 if frozen == "l1" else net.l2
        hidden = torch.relu(net.l1(x))
        out = layer(x) if frozen == "l1" else layer(hidden)
        assert (out.grad_fn is not None) == recorded
        assert ("still recorded" in mechanism.describe(frozen=frozen)) == recorded
        assert ("not recorded" in mechanism.describe(frozen=frozen)) == (not recorded)


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
    wrong = check("02.1", {"l1.weight", "l1.bias"})      # the whole layer frozen
    assert not wrong and "does l1.bias still require grad?" in repr(wrong)
    assert check("02.2", "a")
    for letter in ("b", "c"):
        verdict = check("02.2", letter)
        assert not verdict and "Try it" in repr(verdict) and "a: the" not in repr(verdict)
    assert "only then run the forward pass" in repr(check("02.2", "b"))
    assert "does requires_grad_(True) touch" in repr(check("02.2", "c"))
    assert check("02.3", 4)
    assert "counts every parameter" in repr(check("02.3", 19))
    assert "counts l1's numbers" in repr(check("02.3", 15))
    assert "Right." in repr(check("02.3", 4)) and "Not yet." in repr(check("02.3", 3))
    assert not check("02.1", ...)
    assert "Not answered yet" in repr(check("02.1", ...))
    for key in ("02.1", "02.2", "02.3"):
        assert EXERCISES[key].hints, key


def test_exercise_expectations_from_plain_pytorch():
    x, y = plain_batch()
    net = plain_net()
    net.l1.weight.requires_grad = False
    nn.functional.mse_loss(net(x), y).backward()
    assert EXERCISES["02.1"].expected() == {n for n, p in net.named_parameters() if p.grad is None}
    assert EXERCISES["02.3"].expected() == 3 * 1 + 1


def l2_bias_grad(unfreeze_before_forward):
    """02.2's step: freeze l2.bias, unfreeze it before or after the forward pass, backward."""
    net, (x, y) = plain_net(), plain_batch()
    net.l2.bias.requires_grad = False
    if unfreeze_before_forward:
        net.l2.bias.requires_grad = True
    loss = nn.functional.mse_loss(net(x), y)
    net.l2.bias.requires_grad = True
    loss.backward()
    return net.l2.bias.grad


def test_exercise_02_2_statements():
    # a: unfrozen after the forward pass, the grad stays None (the others get theirs) ...
    assert l2_bias_grad(unfreeze_before_forward=False) is None
    # ... b is false: unfrozen before the forward pass, it gets a gradient ...
    assert l2_bias_grad(unfreeze_before_forward=True) is not None
    # ... c is false: requires_grad_ leaves a grad it holds alone.
    net, (x, y) = plain_net(), plain_batch()
    nn.functional.mse_loss(net(x), y).backward()
    held = net.l2.bias.grad
    net.l2.bias.requires_grad_(False)
    net.l2.bias.requires_grad_(True)
    assert net.l2.bias.grad is held
    assert EXERCISES["02.2"].expected() == "a"
