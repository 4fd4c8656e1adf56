"""manual_grad_edits: every combination against what plain PyTorch does.

Expected gradients are derived here from the plain gradient ``g`` of one ordinary backward pass,
with the rules PyTorch documents (a tensor hook's return value replaces the incoming gradient,
``None`` keeps it; a post-accumulate hook edits ``.grad`` after it is updated), written out as
plain tensor arithmetic, never by calling the module under test.
"""

import itertools
import math
import warnings

import pytest
import torch
from torch import nn

import helpers
import helpers.mechanisms  # noqa: F401  (registers the mechanism and its exercises)
from helpers.exercises import EXERCISES, check
from helpers.outcome import StepContext
from helpers.registry import get_mechanism
from helpers.toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_loss, toy_net

NAME = "manual_grad_edits"
EDITS = ["zero", "set_none", "scale", "clip", "mask"]
LAYERS = ["l1", "l2", "both"]
HOWS = ["direct", "hook", "post_hook"]
COMBOS = list(itertools.product(EDITS, LAYERS, HOWS))


def plain_grads():
    net = toy_net()
    x, y = toy_batch()
    toy_loss(net(x), y).backward()
    return {n: p.grad.clone() for n, p in net.named_parameters()}, \
        {n: p.detach().clone() for n, p in toy_net().named_parameters()}


G, P0 = plain_grads()


def expected_grads(edit, layer, how):
    """name -> expected .grad before the step (a tensor or None)."""
    chosen = [n for n in PARAM_NAMES if layer == "both" or n.startswith(layer + ".")]
    out = {n: G[n].clone() for n in PARAM_NAMES}
    if edit == "clip" and how == "direct":
        total = math.sqrt(sum(float((G[n] ** 2).sum()) for n in chosen))
        coef = min(1.0, 0.25 / (total + 1e-6))
    for n in chosen:
        g = G[n]
        if edit == "zero":
            out[n] = torch.zeros_like(g)
        elif edit == "set_none":
            out[n] = g.clone() if how == "hook" else None  # a tensor hook cannot drop .grad
        elif edit == "scale":
            out[n] = 0.5 * g
        elif edit == "clip":
            if how == "direct":
                out[n] = coef * g
            else:  # a hook sees one tensor: each is clipped on its own
                out[n] = g * min(1.0, 0.25 / (float(g.norm()) + 1e-6))
        elif edit == "mask" and g.dim() == 2:
            masked = g.clone()
            masked[:, 0] = 0.0
            out[n] = masked
    return out


def state(t):
    if t is None:
        return "None"
    return "values" if bool(t.abs().sum() > 0) else "zeros"


def close(a, b):
    return torch.allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("edit,layer,how", COMBOS)
def test_every_combination_matches_plain_pytorch(edit, layer, how):
    expected = expected_grads(edit, layer, how)
    outcome = helpers.run(NAME, edit=edit, layer=layer, how=how)
    assert outcome.error is None
    for n in PARAM_NAMES:
        p = outcome.params[n]
        assert p.requires_grad
        assert p.grad == state(expected[n]), n
        # plain SGD without momentum: a parameter moves exactly when its grad has values
        assert p.changed == (expected[n] is not None and bool(expected[n].abs().sum() > 0)), n
        if expected[n] is None:
            assert p.grad_norm is None
        else:
            assert abs(p.grad_norm - float(expected[n].norm())) < 1e-5, n
        assert p.extra["grad before edit"] == f"values |{float(G[n].norm()):.4f}|"
    # the exact tensors, and the parameters after the step
    ctx = StepContext()
    get_mechanism(NAME).step(ctx, edit=edit, layer=layer, how=how)
    for n, param in ctx.net.named_parameters():
        if expected[n] is None:
            assert param.grad is None
            assert torch.equal(param.detach(), P0[n])
        else:
            assert close(param.grad, expected[n]), n
            assert close(param.detach(), P0[n] - LEARNING_RATE * expected[n]), n
        assert not param._backward_hooks, "hooks must be removed after the step"
        assert not getattr(param, "_post_accumulate_grad_hooks", None)


def test_every_combination_makes_an_edit_so_no_control_is_idle():
    # A "no edit" choice made layer and how irrelevant (9 repeated rows); the plain step is the
    # control drawn beside every explorer instead.
    assert "none" not in get_mechanism(NAME).option("edit").choices
    for combination in get_mechanism(NAME).combinations():
        outcome = helpers.run(NAME, **combination)
        edited = [n for n in PARAM_NAMES if outcome.params[n].extra["edit"] != "-"]
        assert edited == [n for n in PARAM_NAMES
                          if combination["layer"] == "both" or n.startswith(combination["layer"])]


def test_zero_scale_and_mask_agree_across_the_three_ways():
    table = helpers.truth_table(NAME)
    for edit in EDITS:
        for layer in LAYERS:
            rows = [r[3:] for r in table.rows if r[0] == edit and r[1] == layer]
            assert len(rows) == 3
            same = all(row == rows[0] for row in rows)
            grads = [expected_grads(edit, layer, how) for how in HOWS]
            expected_same = all(
                (a[n] is None) == (b[n] is None) and (a[n] is None or close(a[n], b[n]))
                for a in grads for b in grads for n in PARAM_NAMES)
            if edit in ("zero", "scale", "mask"):
                assert expected_same
            # the state table shows the difference for set_none (hook keeps the grad); clip's
            # difference is in the norms only
            if edit == "set_none":
                assert not same
            else:
                assert same


def test_combinations_cover_the_options():
    mech = get_mechanism(NAME)
    assert sorted(tuple(c.values()) for c in mech.combinations()) == sorted(COMBOS)
    assert mech.defaults == {"edit": "clip", "layer": "both", "how": "direct"}
    assert mech.notebook == "07_manual_grad_edits"


def test_truth_table_rows():
    table = helpers.truth_table(NAME)
    assert len(table.rows) == 45
    row = dict(zip(table.columns, next(r for r in table.rows
                                       if r[:3] == ["set_none", "l1", "hook"])))
    assert row["grad l1.weight"] == "values *"  # the hook returned None: grad kept
    row = dict(zip(table.columns, next(r for r in table.rows
                                       if r[:3] == ["set_none", "l1", "post_hook"])))
    assert row["grad l1.weight"] == "None" and row["grad l2.weight"] == "values *"
    assert all(r[-1] == "" for r in table.rows)  # no combination raises


# ---- plain PyTorch facts the notebook teaches -----------------------------------------------

def test_tensor_hook_returning_none_keeps_grad_and_post_hook_can_drop_it():
    x, y = toy_batch()
    net = toy_net()
    net.l1.weight.register_hook(lambda g: None)
    toy_loss(net(x), y).backward()
    assert torch.equal(net.l1.weight.grad, G["l1.weight"])
    net = toy_net()

    def drop(p):
        p.grad = None
    net.l1.weight.register_post_accumulate_grad_hook(drop)
    toy_loss(net(x), y).backward()
    assert net.l1.weight.grad is None


def test_hook_vs_post_hook_under_accumulation():
    x, y = toy_batch()
    net = toy_net()
    net.l2.bias.register_hook(lambda g: g * 0.5)
    for _ in range(2):
        toy_loss(net(x), y).backward()
    assert torch.equal(net.l2.bias.grad, G["l2.bias"])
    net = toy_net()

    def halve(p):
        p.grad.mul_(0.5)
    net.l2.bias.register_post_accumulate_grad_hook(halve)
    for _ in range(2):
        toy_loss(net(x), y).backward()
    assert torch.equal(net.l2.bias.grad, 0.75 * G["l2.bias"])


def test_post_hook_must_return_none_and_needs_a_leaf():
    x, y = toy_batch()
    net = toy_net()
    net.l2.bias.register_post_accumulate_grad_hook(lambda p: p.grad.mul_(0.5))
    with pytest.raises(RuntimeError, match="post accumulate grad hooks should return None"):
        toy_loss(net(x), y).backward()
    with pytest.raises(RuntimeError, match="cannot be registered on non-leaf tensors"):
        toy_net().l1(x).register_post_accumulate_grad_hook(lambda t: None)


def test_clip_grad_norm_skips_none_and_returns_total_norm_before_clipping():
    x, y = toy_batch()
    net = toy_net()
    toy_loss(net(x), y).backward()
    net.l1.weight.grad = None
    total = math.sqrt(sum(float((G[n] ** 2).sum()) for n in PARAM_NAMES if n != "l1.weight"))
    returned = nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.25)
    assert abs(float(returned) - total) < 1e-5
    assert net.l1.weight.grad is None
    after = math.sqrt(sum(float((p.grad ** 2).sum()) for p in net.parameters()
                          if p.grad is not None))
    assert abs(after - 0.25) < 1e-5


def test_manual_update_needs_no_grad():
    x, y = toy_batch()
    net = toy_net()
    toy_loss(net(x), y).backward()
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                           "in an in-place operation"):
        for p in net.parameters():
            p -= 0.1 * p.grad
    net = toy_net()
    toy_loss(net(x), y).backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
    for n, p in net.named_parameters():
        assert close(p.detach(), P0[n] - 0.1 * G[n])
        assert p.is_leaf and p.requires_grad


def test_non_leaf_grad_is_none_with_warning_unless_retained():
    x, y = toy_batch()
    net = toy_net()
    h = net.l1(x)
    toy_loss(net.l2(torch.relu(h)), y).backward()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert h.grad is None
    assert any("not a leaf Tensor" in str(w.message) for w in caught)
    h = net.l1(x)
    h.retain_grad()
    toy_loss(net.l2(torch.relu(h)), y).backward()
    assert h.grad is not None and h.grad.shape == (8, 3)


def test_errors_explained():
    from helpers.errors import explain
    p = torch.ones(2, requires_grad=True)
    p.register_post_accumulate_grad_hook(lambda t: t.grad * 2)
    with pytest.raises(RuntimeError) as info:
        p.sum().backward()
    assert "return None" in explain(info.value).explanation


# ---- explorer, quiz, exercises --------------------------------------------------------------

def test_exercises_solutions_pass_wrong_answers_fail():
    assert {"07.1", "07.2", "07.3", "07.4"} <= set(EXERCISES)
    assert check("07.1", {"l2.bias"})
    assert not check("07.1", {"l1.weight", "l2.bias"})
    assert check("07.2", 0.875)
    assert not check("07.2", 0.75) and not check("07.2", 1.5)
    total = math.sqrt(sum(float((G[n] ** 2).sum()) for n in PARAM_NAMES))
    solution = P0["l2.bias"] - 0.1 * G["l2.bias"] * (0.25 / (total + 1e-6))
    assert check("07.3", solution)
    assert not check("07.3", P0["l2.bias"] - 0.1 * G["l2.bias"])
    unanswered = check("07.3", ...)
    assert not unanswered and "Not answered yet" in repr(unanswered)
    assert "Right." in repr(check("07.2", 0.875)) and "Not yet." in repr(check("07.2", 1.5))


def test_07_1_a_tensor_hook_that_clears_grad_runs_too_early_to_drop_it():
    x, y = toy_batch()
    net = toy_net()
    seen = []

    def clear(grad):
        seen.append(net.l1.weight.grad)
        net.l1.weight.grad = None
    net.l1.weight.register_hook(clear)
    nn.functional.mse_loss(net(x), y).backward()
    assert seen == [None] and torch.equal(net.l1.weight.grad, G["l1.weight"])
    assert EXERCISES["07.1"].expected() == {"l2.bias"}


def test_07_4_w_is_a_non_leaf_whose_grad_stays_none():
    x, y = toy_batch()
    torch.manual_seed(0)
    w = torch.randn(4, 1, requires_grad=True) * 0.1
    b = torch.zeros(1, requires_grad=True)
    nn.functional.mse_loss(x @ w + b, y).backward()
    assert w.requires_grad and not w.is_leaf and b.grad is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert w.grad is None
    assert any("not a leaf Tensor" in str(item.message) for item in caught)
    assert EXERCISES["07.4"].expected() == "c"
    assert check("07.4", "c") and not check("07.4", "b") and not check("07.4", "a")


@pytest.mark.parametrize("key,wrong,phrase", [
    ("07.1", {"l1.weight", "l2.bias"}, "returns None?"),
    ("07.1", set(), "what does drop leave there?"),
    ("07.2", 1.5, "as a tensor hook would"),
    ("07.2", 0.75, "two passes"),
    ("07.3", P0["l2.bias"] - 0.1 * G["l2.bias"], "unclipped step"),
    ("07.4", "b", "w.requires_grad"),
    ("07.4", "a", "no hook"),
])
def test_common_wrong_answers_get_their_hint(key, wrong, phrase):
    verdict = repr(check(key, wrong))
    assert verdict.startswith(f"[{key}] Not yet.") and phrase in verdict


def test_prediction_of_the_notebook_question_matches_the_run():
    options = {"edit": "set_none", "layer": "l1", "how": "direct"}
    outcome = helpers.run(NAME, **options)
    assert outcome.grads_none() == ["l1.weight", "l1.bias"]
    assert [n for n, p in outcome.params.items() if p.changed] == ["l2.weight", "l2.bias"]
    why = get_mechanism(NAME).why(**options)
    assert "l1 does not move" in why and "l2 takes its usual step" in why


def test_caption_says_what_each_combination_does():
    mech = get_mechanism(NAME)
    captions = {mech.describe(**c) for c in mech.combinations()}
    assert len(captions) == 45  # every combination has its own title
    assert mech.describe() == "clip all grads to total norm 0.25 after backward()"
    # a tensor hook cannot drop .grad, and the caption says so where the run shows it
    for layer in LAYERS:
        text = mech.describe(edit="set_none", layer=layer, how="hook")
        assert "(grads kept)" in text
        assert helpers.run(NAME, edit="set_none", layer=layer, how="hook").grads_none() == []
        assert "to None" in mech.describe(edit="set_none", layer=layer, how="post_hook")
    # hooks clip each tensor on its own: the caption says so, and the direct clip says "total"
    assert "on its own" in mech.describe(edit="clip", how="hook")
    assert "total norm" in mech.describe(edit="clip", how="direct")
    for combo in mech.combinations():
        text = mech.describe(**combo)
        assert {"direct": "after backward()", "hook": "register_hook",
                "post_hook": "post-accumulate hook"}[combo["how"]] in text


def test_edit_column_says_a_tensor_hook_cannot_drop_the_grad():
    outcome = helpers.run(NAME, edit="set_none", layer="l1", how="hook")
    assert outcome.params["l1.weight"].extra["edit"] == "hook returns None: grad kept"
    assert outcome.params["l2.weight"].extra["edit"] == "-"
    assert outcome.grads_none() == []


def test_edit_norms_table():
    table = helpers.edit_norms_table()
    assert len(table.rows) == 15
    row = dict(zip(table.columns, next(r for r in table.rows if r[:2] == ["scale", "direct"])))
    assert row["l2.bias"] == f"values |{0.5 * float(G['l2.bias'].norm()):.4f}|"
    row = dict(zip(table.columns, next(r for r in table.rows if r[:2] == ["set_none", "hook"])))
    assert row["l1.weight"] == f"values |{float(G['l1.weight'].norm()):.4f}|"
