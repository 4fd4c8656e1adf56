"""The detach mechanism (notebook 03_detach) against what plain PyTorch does."""

import pytest
import torch

import helpers
from helpers.exercises import EXERCISES, check
from helpers.mechanisms.detach import forward_cut
from helpers.toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_loss, toy_net


def plain_step(cut):
    """One SGD step of the toy net with .detach() at ``cut``, written out in plain torch."""
    net = toy_net()
    x, y = toy_batch()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    error = None
    hidden = net.l1(x)
    if cut == "l1":
        hidden = hidden.detach()
    out = net.l2(torch.relu(hidden))
    if cut == "l2":
        out = out.detach()
    loss = torch.nn.functional.mse_loss(out, y)
    try:
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                if p.grad is not None:
                    p -= LEARNING_RATE * p.grad
    except RuntimeError as exc:
        error = exc
    return net, before, error


@pytest.mark.parametrize("cut", ["none", "l1", "l2"])
def test_every_cut_matches_plain_pytorch(cut):
    outcome = helpers.run("detach", cut=cut)
    net, before, error = plain_step(cut)
    for name, p in net.named_parameters():
        got = outcome.params[name]
        assert got.requires_grad is p.requires_grad is True
        if p.grad is None:
            assert got.grad == "None" and got.grad_norm is None
        else:
            assert torch.any(p.grad) and got.grad == "values"
            assert got.grad_norm == pytest.approx(float(p.grad.norm()))
        assert got.changed == (not torch.equal(before[name], p.detach()))
    if error is None:
        assert outcome.error is None
    else:
        assert outcome.error.kind == type(error).__name__ == "RuntimeError"
        assert "does not require grad and does not have a grad_fn" in str(error)
        assert "does not require grad and does not have a grad_fn" in outcome.error.message
        assert "Nothing the loss depends on requires grad" in outcome.error.explanation


def test_expected_pattern_by_cut():
    """The lesson in one place: which grads are None for each cut."""
    assert helpers.run("detach", cut="none").grads_none() == []
    assert helpers.run("detach", cut="l1").grads_none() == ["l1.weight", "l1.bias"]
    assert helpers.run("detach", cut="l2").grads_none() == list(PARAM_NAMES)
    assert helpers.get_mechanism("detach").defaults == {"cut": "l1"}


def test_cut_after_l1_leaves_l2_gradient_unchanged():
    grads = {}
    for where in ("none", "l1"):
        net = toy_net()
        x, y = toy_batch()
        h = net.l1(x)
        h = h.detach() if where == "l1" else h
        torch.nn.functional.mse_loss(net.l2(torch.relu(h)), y).backward()
        grads[where] = net.l2.weight.grad, net.l2.bias.grad
    assert torch.equal(grads["none"][0], grads["l1"][0])
    assert torch.equal(grads["none"][1], grads["l1"][1])


def test_forward_cut_values_and_flags():
    net = toy_net()
    x, _ = toy_batch()
    reference = net(x)
    for where in ("none", "l1", "l2"):
        out = forward_cut(net, x, where)
        assert torch.equal(out, reference)  # a cut never changes the forward values
        assert out.requires_grad == (where != "l2")
    with pytest.raises(ValueError, match="where must be one of"):
        forward_cut(net, x, "relu")


def test_cut_after_l1_records_l1_but_not_the_relu():
    # what the caption "L1 recorded, then cut off" says, and why the ReLU is missing
    net = toy_net()
    x, _ = toy_batch()
    h = net.l1(x)
    assert h.grad_fn is not None                       # L1 was recorded ...
    assert torch.relu(h.detach()).grad_fn is None      # ... the ReLU after the cut was not
    assert helpers.run("detach", cut="l1").grads_none() == ["l1.weight", "l1.bias"]


def test_the_original_graph_still_works_after_detach():
    net = toy_net()
    x, y = toy_batch()
    h = net.l1(x)
    toy_loss(net.l2(torch.relu(h.detach())), y).backward()
    assert net.l1.bias.grad is None
    h.sum().backward()
    assert torch.equal(net.l1.bias.grad, torch.full((3,), float(len(x))))
    assert torch.equal(net.l1.weight.grad, x.sum(0).expand(3, 4))


def test_caption_and_prediction_for_every_cut():
    mechanism = helpers.get_mechanism("detach")
    captions = {cut: mechanism.describe(cut=cut) for cut in ("none", "l1", "l2")}
    assert len(set(captions.values())) == 3
    assert all(0 < len(c) <= 60 for c in captions.values())
    assert captions["l1"].startswith("detach after L1")
    assert captions["l2"].startswith("detach after L2")
    # "the loss is cut off": the loss of a cut after L2 has no grad_fn
    assert helpers.run("detach", cut="l2").loss.grad_fn is None
    for cut in captions:
        why = mechanism.why(cut=cut)
        assert why and not why.startswith(("l1.weight", "All four", "None of them"))


def detached_weight_step():
    """03.1's code, in plain torch: L2 by hand with its weight detached."""
    net = toy_net()
    x, y = toy_batch()
    w = net.l2.weight.detach()
    out = torch.relu(net.l1(x)) @ w.T + net.l2.bias
    torch.nn.functional.mse_loss(out, y).backward()
    return net, w


def test_exercise_03_1():
    net, w = detached_weight_step()
    plain = toy_net()
    x, y = toy_batch()
    torch.nn.functional.mse_loss(plain(x), y).backward()
    # c is true: w has no history, and l2.weight alone is left without a gradient
    assert w.grad_fn is None and not w.requires_grad
    assert [n for n, p in net.named_parameters() if p.grad is None] == ["l2.weight"]
    # a is false: w shares l2.weight's memory
    assert w.data_ptr() == net.l2.weight.data_ptr()
    # b is false: L1, computed before the detach, gets exactly its plain-step gradient
    assert torch.equal(net.l1.weight.grad, plain.l1.weight.grad)
    assert EXERCISES["03.1"].expected() == "c"
    assert check("03.1", "c")
    for letter in ("a", "b"):
        verdict = check("03.1", letter)
        assert not verdict and "c: w" not in repr(verdict)
    assert "data_ptr" in repr(check("03.1", "a"))
    assert "l1.weight.grad would be None too" in repr(check("03.1", "b"))
    assert not check("03.1", ...)


def bootstrap_grad(detach):
    net = toy_net()
    x, y = toy_batch()
    prediction = net(x)
    target = y + 0.5 * (net(x).detach() if detach else net(x))
    toy_loss(prediction, target).backward()
    return net.l2.bias.grad.clone()


def test_exercise_03_2():
    right, wrong = bootstrap_grad(True), bootstrap_grad(False)
    assert check("03.2", right)
    verdict = check("03.2", wrong)
    assert not verdict and "not held fixed" in repr(verdict)
    # the claim in the solution: without detach the gradient is half the size here
    assert torch.allclose(wrong, 0.5 * right)


def test_exercise_03_3():
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    w.data.mul_(10)
    assert w._version == 0  # the solution's claim: .data did not bump w's version counter
    loss.backward()
    assert check("03.3", w.grad)
    assert torch.equal(w.grad, torch.tensor([20.0, 40.0, 60.0]))
    verdict = check("03.3", torch.tensor([2.0, 4.0, 6.0]))  # the true gradient at w
    assert not verdict and "true gradient" in repr(verdict) and "ten times" not in repr(verdict)
    # the claim in the solution: the same edit through detach() makes backward raise
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    w.detach().mul_(10)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        loss.backward()


def test_exercises_registered_with_hints():
    assert {"03.1", "03.2", "03.3"} <= set(EXERCISES)
    for key in ("03.1", "03.2", "03.3"):
        assert EXERCISES[key].hints, key


def test_a_cut_stops_one_path_not_the_layers_before_it():
    # l1 is computed before the cut, but its output also reaches the loss without a cut:
    # it gets exactly the gradient of that other path.
    net = toy_net()
    x, y = toy_batch()
    h = net.l1(x)
    loss = toy_loss(net.l2(torch.relu(h.detach())), y) + h.pow(2).mean()
    loss.backward()
    other_path = torch.autograd.grad(net.l1(x).pow(2).mean(), net.l1.weight)[0]
    assert torch.equal(net.l1.weight.grad, other_path)
    # So the texts must not promise that everything before a cut gets no gradient.
    mechanism = helpers.get_mechanism("detach")
    module_doc = helpers.mechanisms.detach.__doc__
    for text in (mechanism.summary, module_doc):
        assert "everything computed before the cut gets no gradient" not in text
        assert "other path" in text or "another way" in text
