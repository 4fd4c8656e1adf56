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


def test_graph_drops_l1_after_cut():
    outline = repr(helpers.draw(helpers.run("detach", cut="l1")))
    assert "l1.weight (3, 4) grad: None (not in graph)" in outline
    assert "ReluBackward0" not in outline  # relu of a detached tensor is not recorded
    assert "l2.weight (1, 3) grad: values" in outline


def test_exercise_03_1():
    # two paths from L1, one cut: L1 still gets a gradient along the other
    net = toy_net()
    x, y = toy_batch()
    h = torch.relu(net.l1(x))
    toy_loss(net.l2(h + h.detach()), y).backward()
    assert all(p.grad is not None for p in net.parameters())
    assert check("03.1", set())
    assert check("03.1", [])
    wrong = check("03.1", {"l1.weight", "l1.bias"})      # the chain's answer
    assert not wrong and "{l1.weight, l1.bias} is the answer for a chain" in repr(wrong)
    assert not check("03.1", {"l1.weight", "l1.bias", "l2.weight", "l2.bias"})
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
    assert not check("03.2", wrong)
    # the claim in the solution: without detach the gradient is half the size here
    assert torch.allclose(wrong, 0.5 * right)


def test_exercise_03_3():
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    w.data.mul_(10)
    loss.backward()
    assert check("03.3", w.grad)
    assert torch.equal(w.grad, torch.tensor([20.0, 40.0, 60.0]))
    assert not check("03.3", torch.tensor([2.0, 4.0, 6.0]))  # the true gradient at w
    # the claim in the solution: the same edit through detach() makes backward raise
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    w.detach().mul_(10)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        loss.backward()


def test_exercises_registered():
    assert {"03.1", "03.2", "03.3"} <= set(EXERCISES)


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
