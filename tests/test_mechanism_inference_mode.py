"""The inference_mode mechanism and its notebook's claims and exercises (costs: test_costs.py).

Every expectation is computed here with plain PyTorch (or counted by hand), never by calling
the helper under test.
"""

import contextlib
from pathlib import Path

import pytest
import torch
from torch import nn

import helpers
from helpers.exercises import check
from helpers.toy import PARAM_NAMES, toy_batch, toy_net

COMBINATIONS = [(part, clone) for part in ("none", "l1", "all") for clone in ("no", "yes")]


def mode(flag):
    return torch.inference_mode() if flag else contextlib.nullcontext()


def plain_step(part, clone):
    """The step in plain torch: (net, parameters before, error text or None, loss or None)."""
    net = toy_net()
    x, y = toy_batch()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    optimizer.zero_grad()
    error = loss = None
    try:
        with mode(part in ("l1", "all")):
            h = torch.relu(net.l1(x))
        if part == "l1" and clone == "yes":
            h = h.clone()
        with mode(part == "all"):
            out = net.l2(h)
        if part == "all" and clone == "yes":
            out = out.clone()
        loss = nn.functional.mse_loss(out, y)
        loss.backward()
        optimizer.step()
    except RuntimeError as exc:
        error = str(exc)
    return net, before, error, loss


def state(grad):
    if grad is None:
        return "None"
    return "zeros" if not grad.any() else "values"


@pytest.mark.parametrize("part,clone", COMBINATIONS)
def test_every_combination_matches_plain_pytorch(part, clone):
    outcome = helpers.run("inference_mode", part=part, clone=clone)
    net, before, error, loss = plain_step(part, clone)
    for name, p in net.named_parameters():
        got = outcome.params[name]
        assert got.requires_grad is p.requires_grad is True
        assert got.grad == state(p.grad), name
        assert got.changed == (not torch.equal(before[name], p.detach())), name
        if p.grad is not None:
            assert got.grad_norm == pytest.approx(float(p.grad.norm()))
        inside = part == "all" or (part == "l1" and name.startswith("l1."))
        assert got.extra["in inference_mode"] == ("yes" if inside else "no")
    if error is None:
        assert outcome.error is None
    else:
        assert outcome.error.kind == "RuntimeError"
        assert outcome.error.message == error.strip().splitlines()[0]
    assert (outcome.loss is None) == (loss is None)


def test_the_lesson_in_words():
    """L1 in the mode, no clone: L2's *forward* raises, so no loss and no grads at all."""
    refused = helpers.run("inference_mode", part="l1", clone="no")
    assert "Inference tensors cannot be saved for backward" in refused.error.message
    assert refused.loss is None and refused.grads_none() == list(PARAM_NAMES)
    assert "no loss was computed" in repr(helpers.draw(refused))
    cloned = helpers.run("inference_mode", part="l1", clone="yes")
    assert cloned.error is None and cloned.grads_none() == ["l1.weight", "l1.bias"]
    for part in ("all",):
        for clone in ("no", "yes"):
            whole = helpers.run("inference_mode", part=part, clone=clone)
            assert "does not require grad and does not have a grad_fn" in whole.error.message
            assert whole.loss is not None and whole.loss.grad_fn is None
            assert helpers.draw(whole).diagrams[-1].edges == ()


def test_cloned_l2_gradient_equals_detached_l2_gradient():
    cloned = helpers.run("inference_mode", part="l1", clone="yes")
    net = toy_net()
    x, y = toy_batch()
    nn.functional.mse_loss(net.l2(torch.relu(net.l1(x)).detach()), y).backward()
    assert torch.equal(cloned.tensors["l2.weight"].grad, net.l2.weight.grad)
    assert torch.equal(cloned.tensors["l2.bias"].grad, net.l2.bias.grad)


def test_error_is_raised_in_the_forward_of_l2_not_in_backward():
    net = toy_net()
    x, _ = toy_batch()
    with torch.inference_mode():
        h = torch.relu(net.l1(x))
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        net.l2(h)
    # an op run outside the mode makes a normal tensor, which L2 accepts
    with torch.inference_mode():
        h = net.l1(x)
    assert net.l2(torch.relu(h)).grad_fn is not None


def test_reading_is_fine_saving_is_not():
    w = torch.ones(3, requires_grad=True)
    with torch.inference_mode():
        t = torch.full((3,), 2.0)
    (t + w).sum().backward()
    assert torch.equal(w.grad, torch.ones(3))
    with pytest.raises(RuntimeError, match="cannot be saved for backward"):
        t * w


def test_inplace_outside_the_mode_raises_after_writing():
    """Documents torch 2.13 behaviour the notebook states: the value changes before the error."""
    with torch.inference_mode():
        t = torch.ones(3)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside"):
        t.add_(1)
    assert torch.equal(t, torch.full((3,), 2.0))
    with torch.inference_mode():
        t.add_(1)                          # inside the mode: allowed
    assert torch.equal(t, torch.full((3,), 3.0))


def test_enable_grad_does_not_record_inference_mode_false_does():
    w = torch.ones(3, requires_grad=True)
    with torch.inference_mode(), torch.enable_grad():
        assert torch.is_grad_enabled()
        r = w * 2
    assert not r.requires_grad and r.is_inference()
    with torch.inference_mode():
        with torch.inference_mode(False):
            r = w * 2
            assert not torch.is_inference_mode_enabled()
        assert torch.is_inference_mode_enabled()
    assert r.grad_fn is not None and not r.is_inference()


def test_clone_changes_nothing_when_nothing_ran_in_the_mode():
    """part=none: no tensor was made in inference mode, so clone has nothing to act on; the two
    rows are the same step, graph included (no CloneBackward0 of a normal tensor)."""
    plain = helpers.run("inference_mode", part="none", clone="no")
    cloned = helpers.run("inference_mode", part="none", clone="yes")
    for name in PARAM_NAMES:
        assert torch.equal(plain.tensors[name].grad, cloned.tensors[name].grad)
        assert plain.params[name].changed and cloned.params[name].changed
    drawn = [repr(helpers.draw(outcome)).splitlines() for outcome in (plain, cloned)]
    mechanism = helpers.get_mechanism("inference_mode")
    assert drawn[0][0] == mechanism.describe(part="none", clone="no")
    assert drawn[1][0] == mechanism.describe(part="none", clone="yes")
    assert "nothing to clone" in drawn[1][0] and "nothing to clone" not in drawn[0][0]
    assert drawn[0][1:] == drawn[1][1:]                      # the same graph, title aside
    assert "CloneBackward0" not in repr(helpers.draw(cloned))
    option = helpers.get_mechanism("inference_mode").option("clone")
    assert "No effect when part is 'nothing'" in option.description


def test_not_every_tensor_made_in_the_mode_is_an_inference_tensor():
    """Fact 33: views and detach() of normal tensors, made inside the mode, are normal."""
    normal = torch.ones(4)
    with torch.inference_mode():
        new = normal * 2
        view, detached = normal[:2], normal.detach()
    assert new.is_inference()
    assert not view.is_inference() and not detached.is_inference()


def test_requires_grad_true_made_inside_trains_and_a_module_built_inside_trains_wrongly():
    """Fact 34: an inference leaf still collects .grad; a Linear built inside the mode gets no
    weight gradient outside it, only a bias gradient."""
    with torch.inference_mode():
        w = torch.ones(3, requires_grad=True)
    (w * torch.arange(3.0)).sum().backward()
    assert w.is_inference() and w.is_leaf and torch.equal(w.grad, torch.arange(3.0))
    torch.manual_seed(0)
    with torch.inference_mode():
        layer = nn.Linear(4, 2)
    layer(torch.ones(3, 4)).sum().backward()
    assert layer.weight.grad is None and torch.equal(layer.bias.grad, torch.full((2,), 3.0))


def test_forward_mode_ad_is_off_in_inference_mode_not_in_no_grad():
    """Fact 35."""
    import torch.autograd.forward_ad as fwAD

    tangents = {}
    for name, context in (("no_grad", torch.no_grad), ("inference_mode", torch.inference_mode)):
        with fwAD.dual_level(), context():
            dual = fwAD.make_dual(torch.ones(3), torch.ones(3))
            tangents[name] = fwAD.unpack_dual(dual * 2).tangent
    assert torch.equal(tangents["no_grad"], torch.full((3,), 2.0))
    assert tangents["inference_mode"] is None


def test_quiz_and_explorer():
    """The quiz's answer is every parameter (L2's forward raises); the explorer's table shows
    the error until the clone is switched on."""
    quiz = helpers.predict("inference_mode", part="l1", clone="no")
    quiz.choose(["l1.weight", "l1.bias"])
    assert quiz.check() is False and "Not quite" in quiz.feedback.value
    quiz.choose(list(PARAM_NAMES))
    assert quiz.check() is True
    explorer = helpers.explore("inference_mode")
    assert "Inference tensors cannot be saved" in explorer.table.value
    explorer.controls["clone"].value = "yes"
    assert "Inference tensors cannot be saved" not in explorer.table.value


@pytest.mark.parametrize("key,right,wrong", [
    ("05.1", (True, False, True), (False, False, True)),   # wrong: the view taken as new
    ("05.2", {"b"}, {"b", "c"}),
    ("05.3", (False, True), (False, False)),               # wrong: the view taken as new
])
def test_exercises(key, right, wrong):
    assert bool(check(key, right)) is True and "Right." in repr(check(key, right))
    assert bool(check(key, wrong)) is False and "Not yet." in repr(check(key, wrong))
    assert bool(check(key, ...)) is False and "Not answered yet" in repr(check(key, ...))


def test_exercise_answers_from_plain_pytorch():
    with torch.inference_mode():
        t = torch.ones(4)
        inside = t.clone()
    assert (t.reshape(2, 2).is_inference(), (t + 0).is_inference(),
            inside.is_inference()) == (True, False, True)
    assert check("05.1", (True, False, True))
    w = torch.ones(3, requires_grad=True)
    with torch.inference_mode(), torch.enable_grad():
        r, v = w * 2, w[:2]
    assert not r.requires_grad and r.grad_fn is None
    assert v.requires_grad and v.grad_fn is None and not v.is_inference()
    assert check("05.3", (False, True))
    net = toy_net()
    with torch.inference_mode():
        features = torch.relu(net.l1(toy_batch()[0]))
    assert features.detach().is_inference()
    with pytest.raises(RuntimeError):
        net.l2(features.detach())
    net.l2(features.clone()).sum().backward()
    assert net.l2.weight.grad is not None


def test_captions_say_what_happened_and_every_combination_has_a_prediction():
    mechanism = helpers.get_mechanism("inference_mode")
    captions = {(part, clone): mechanism.describe(part=part, clone=clone)
                for part, clone in COMBINATIONS}
    assert len(set(captions.values())) == len(COMBINATIONS)      # each combination its words
    for (part, clone), caption in captions.items():
        _, _, error, loss = plain_step(part, clone)
        assert mechanism.why(part=part, clone=clone)
        if part == "none":
            assert error is None and caption.startswith("plain step")
        elif part == "l1" and clone == "no":
            assert loss is None and "Inference tensors cannot be saved" in error
            assert "L2's forward refuses" in caption
        elif part == "l1":
            assert error is None and "record nothing, L2 trains" in caption
        else:
            assert loss.grad_fn is None and "nothing recorded" in caption
    twin = (Path(__file__).resolve().parent.parent / "notebooks" / "sources"
            / "05_inference_mode.py").read_text()
    assert "why=" not in twin


def test_exercise_hints_answer_the_common_mistakes():
    assert "it is a view" in repr(check("05.1", (False, False, True)))
    assert "outside the mode" in repr(check("05.1", (True, True, True)))
    assert "inference_mode(False)" in repr(check("05.3", (True, True)))
    assert "view of w" in repr(check("05.3", (False, False)))
    assert "detach().is_inference()" in repr(check("05.2", {"b", "c"}))
    assert "must save its input" in repr(check("05.2", {"a", "b", "c"}))


def test_exercise_05_4_why_the_table_gets_no_grad():
    torch.manual_seed(0)
    emb = nn.Embedding(10, 4)
    net = toy_net()
    _, y = toy_batch()
    with torch.inference_mode():
        features = emb(torch.arange(8))
    nn.functional.mse_loss(net(features.clone()), y).backward()
    assert emb.weight.grad is None and not emb.weight.is_inference()       # not "b"
    assert all(p.grad is not None for p in net.parameters())
    leaf = torch.ones(2, requires_grad=True)
    leaf.clone().sum().backward()
    assert torch.equal(leaf.grad, torch.ones(2))                           # not "c"
    assert check("05.4", "a")
    assert "changes no tensor that existed before" in repr(check("05.4", "b"))
    assert "Does features require grad?" in repr(check("05.4", "c"))
