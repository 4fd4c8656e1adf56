"""The inference_mode mechanism, its notebook's claims and exercises, and peak_memory_bytes.

Every expectation is computed here with plain PyTorch (or counted by hand), never by calling
the helper under test.
"""

import contextlib

import pytest
import torch
from torch import nn

import helpers
from helpers.costs import larger_mlp, peak_memory_bytes
from helpers.exercises import check
from helpers.mechanisms.inference_mode import memory_by_mode, time_ratios
from helpers.toy import PARAM_NAMES, toy_batch, toy_net

FLOAT = 4  # bytes per float32
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


def test_peak_memory_bytes_counts_allocations_by_hand():
    assert peak_memory_bytes(lambda: torch.ones(1000)) == 1000 * FLOAT

    def two_alive_then_one():
        a = torch.ones(100)
        b = torch.ones(50)
        del a, b
        return torch.ones(120)

    assert peak_memory_bytes(two_alive_then_one) == 150 * FLOAT
    assert peak_memory_bytes(lambda: None) == 0


def test_memory_by_mode_against_hand_counts():
    mlp = larger_mlp()
    x = torch.randn(64, 1024, generator=torch.Generator().manual_seed(0))
    memory = memory_by_mode(mlp, x)
    activation = 64 * 1024 * FLOAT
    # grad mode keeps the input and the 4 ReLU outputs; the peak holds those 4 ReLU outputs
    # and the Linear output the last ReLU reads; without recording, one input and one output.
    assert memory["grad mode"] == {"saved": 5 * activation, "peak": 5 * activation}
    assert memory["no_grad"] == memory["inference_mode"] == {"saved": 0, "peak": 2 * activation}
    toy = memory_by_mode(toy_net(), toy_batch()[0])
    # x (8x4) and the ReLU output (8x3) are saved; the peak is L1's and the ReLU's outputs
    assert toy["grad mode"] == {"saved": (32 + 24) * FLOAT, "peak": 48 * FLOAT}
    assert toy["no_grad"] == toy["inference_mode"] == {"saved": 0, "peak": 48 * FLOAT}


def test_time_ratios_shape():
    ratios = time_ratios(toy_net(), toy_batch()[0], times=2, repeats=1, rounds=1)
    assert set(ratios) == {"grad mode", "no_grad", "inference_mode"}
    assert ratios["no_grad"] == 1.0 and all(r > 0 for r in ratios.values())


def test_quiz_and_explorer():
    quiz = helpers.predict("inference_mode", part="l1", clone="no")
    quiz.choose(["l1.weight", "l1.bias"])
    assert quiz.check() is False and "Not quite" in quiz.feedback.value
    quiz.choose(list(PARAM_NAMES))
    assert quiz.check() is True
    explorer = helpers.explore("inference_mode")
    assert "Inference tensors cannot be saved" in explorer.table.value
    explorer.controls["clone"].value = "yes"
    assert "Inference tensors cannot be saved" not in explorer.table.value
    assert explorer.outcome().grads_none() == ["l1.weight", "l1.bias"]


@pytest.mark.parametrize("key,right,wrong", [
    ("05.1", (False, True), (True, True)),
    ("05.2", False, True),
    ("05.3", {"b"}, {"b", "c"}),
])
def test_exercises(key, right, wrong):
    assert bool(check(key, right)) is True and "Right." in repr(check(key, right))
    assert bool(check(key, wrong)) is False and "Not yet." in repr(check(key, wrong))
    assert bool(check(key, ...)) is False and "Not answered yet" in repr(check(key, ...))


def test_exercise_answers_from_plain_pytorch():
    with torch.inference_mode():
        t = torch.ones(2)
        inside = t.clone()
    assert (t.clone().is_inference(), inside.is_inference()) == (False, True)
    net = toy_net()
    with torch.inference_mode():
        features = torch.relu(net.l1(toy_batch()[0]))
    assert features.detach().is_inference()
    with pytest.raises(RuntimeError):
        net.l2(features.detach())
    net.l2(features.clone()).sum().backward()
    assert net.l2.weight.grad is not None
