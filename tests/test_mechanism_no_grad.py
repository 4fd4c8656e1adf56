"""The no_grad mechanism, its notebook's exercises, and the saved-bytes measurement it uses.

Every expectation is computed here with plain PyTorch (or counted by hand), never by calling
the helper under test.
"""

import contextlib
from pathlib import Path

import pytest
import torch
from torch import nn

import helpers
from helpers.costs import larger_mlp, saved_tensor_bytes
from helpers.exercises import EXERCISES, check
from helpers.toy import PARAM_NAMES, toy_batch, toy_net

OVER = ["none", "l1", "l2", "all"]
FLOAT = 4  # bytes per float32


def maybe_no_grad(flag):
    return torch.no_grad() if flag else contextlib.nullcontext()


def plain_step(over):
    """The step written out in plain torch: (net, before, error message, hidden, output)."""
    net = toy_net()
    x, y = toy_batch()
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    optimizer.zero_grad()
    with maybe_no_grad(over in ("l1", "all")):
        hidden = net.l1(x)
    with maybe_no_grad(over == "all"):
        activated = torch.relu(hidden)
    with maybe_no_grad(over in ("l2", "all")):
        output = net.l2(activated)
    error = None
    try:
        nn.functional.mse_loss(output, y).backward()
        optimizer.step()
    except RuntimeError as exc:
        error = str(exc)
    return net, before, error, hidden, output


def state(grad):
    if grad is None:
        return "None"
    return "zeros" if not grad.any() else "values"


@pytest.mark.parametrize("over", OVER)
def test_every_option_matches_plain_pytorch(over):
    outcome = helpers.run("no_grad", no_grad_over=over)
    net, before, error, hidden, output = plain_step(over)
    for name, p in net.named_parameters():
        got = outcome.params[name]
        assert got.requires_grad is p.requires_grad is True  # no_grad never changes the flag
        assert got.grad == state(p.grad), name
        assert got.changed == (not torch.equal(before[name], p.detach())), name
        if p.grad is not None:
            assert got.grad_norm == pytest.approx(float(p.grad.norm()))
        layer_output = hidden if name.startswith("l1") else output
        expected_note = ("no grad_fn (requires_grad=False)" if layer_output.grad_fn is None
                         else f"grad_fn {type(layer_output.grad_fn).__name__}")
        assert got.extra["layer output"] == expected_note
        assert got.extra["under no_grad"] == ("yes" if name[:2] in {
            "none": (), "l1": ("l1",), "l2": ("l2",), "all": ("l1", "l2")}[over] else "no")
    if error is None:
        assert outcome.error is None
    else:
        assert outcome.error.kind == "RuntimeError"
        assert outcome.error.message == error.splitlines()[0]
        assert "does not require grad and does not have a grad_fn" in outcome.error.message


def test_expected_pattern_written_out():
    """The lesson in words: L1 only -> L1 grads None, L2 trains; L2 or all -> backward raises."""
    table = {over: helpers.run("no_grad", no_grad_over=over) for over in OVER}
    assert table["none"].grads_none() == [] and table["none"].error is None
    assert table["l1"].grads_none() == ["l1.weight", "l1.bias"] and table["l1"].error is None
    assert table["l1"].params["l2.weight"].changed and not table["l1"].params["l1.weight"].changed
    for over in ("l2", "all"):
        assert table[over].grads_none() == list(PARAM_NAMES)
        assert "element 0 of tensors does not require grad" in table[over].error.message
        assert table[over].loss.grad_fn is None and not table[over].loss.requires_grad


def test_l1_under_no_grad_leaves_l2_gradients_exactly_as_the_plain_step():
    net, _, _, _, _ = plain_step("l1")
    control = toy_net()
    x, y = toy_batch()
    nn.functional.mse_loss(control(x), y).backward()
    assert torch.equal(net.l2.weight.grad, control.l2.weight.grad)
    assert torch.equal(net.l2.bias.grad, control.l2.bias.grad)
    assert net.l1.weight.grad is None and net.l1.bias.grad is None


def test_l2_case_recorded_l1_but_nothing_reaches_the_loss():
    _, _, error, hidden, output = plain_step("l2")
    assert type(hidden.grad_fn).__name__ == "AddmmBackward0"
    assert output.grad_fn is None and error is not None


def test_graph_draws_nothing_recorded_where_no_grad_ran():
    """Whole forward: no backward node at all. L1 only: L2's addmm is the only one (L1 and the
    ReLU after it recorded nothing, unlike detach, which records L1 and cuts it off)."""
    whole = repr(helpers.draw(helpers.run("no_grad", no_grad_over="all")))
    assert "Backward" not in whole
    l1 = repr(helpers.draw(helpers.run("no_grad", no_grad_over="l1")))
    assert l1.count("AddmmBackward0") == 1 and "ReluBackward0" not in l1


def test_captions_say_what_was_recorded():
    """Each caption, checked against what plain PyTorch recorded for that choice."""
    mechanism = helpers.get_mechanism("no_grad")
    captions = {over: mechanism.describe(no_grad_over=over) for over in OVER}
    assert captions == {
        "none": "plain step (nothing under no_grad)",
        "l1": "L1 under no_grad: L1 and the ReLU record nothing",
        "l2": "L2 under no_grad: L1 recorded, L2 records nothing",
        "all": "whole forward under no_grad: nothing recorded",
    }
    _, _, _, hidden, output = plain_step("l1")
    assert hidden.grad_fn is None and torch.relu(hidden).grad_fn is None
    _, _, _, hidden, output = plain_step("l2")
    assert hidden.grad_fn is not None and output.grad_fn is None
    _, _, _, hidden, output = plain_step("all")
    assert hidden.grad_fn is None and output.grad_fn is None
    for over in OVER:  # the drawing's title is the caption
        outline = repr(helpers.draw(helpers.run("no_grad", no_grad_over=over)))
        assert outline.splitlines()[0] == captions[over]


def test_every_combination_has_a_prediction_and_the_notebook_shows_none():
    mechanism = helpers.get_mechanism("no_grad")
    for combo in mechanism.combinations():
        assert mechanism.why(**combo)
    twin = (Path(__file__).resolve().parent.parent / "notebooks" / "sources"
            / "04_no_grad.py").read_text()
    assert 'helpers.predict("no_grad", no_grad_over="l1")' in twin and "why=" not in twin


def test_registered_with_its_notebook():
    mechanism = helpers.get_mechanism("no_grad")
    assert mechanism.notebook == "04_no_grad"
    assert [c["no_grad_over"] for c in mechanism.combinations()] == OVER
    rows = helpers.truth_table("no_grad").rows
    assert [row[0] for row in rows] == OVER
    assert rows[1][1:5] == ["None", "None", "values *", "values *"]


# Explorer and quiz -----------------------------------------------------------------------

# Saved-tensor bytes ------------------------------------------------------------------------

def test_saved_bytes_toy_net_hand_count():
    net = toy_net()
    x, _ = toy_batch()
    # Grad mode saves: x (8x4) for l1.weight's grad, the ReLU output (8x3, once, though both
    # ReLU's backward and l2's addmm keep it), and l2.weight.t() (a parameter, 1x3).
    activations = (8 * 4 + 8 * 3) * FLOAT
    assert saved_tensor_bytes(net, x, exclude=net) == activations == 224
    assert saved_tensor_bytes(net, x) == activations + 3 * FLOAT
    assert saved_tensor_bytes(net, x, exclude=[net, x]) == 8 * 3 * FLOAT

    def under_no_grad():
        with torch.no_grad():
            net(x)

    assert saved_tensor_bytes(under_no_grad, exclude=net) == 0
    assert saved_tensor_bytes(lambda: net(x).detach(), exclude=net) == activations


def test_saved_bytes_larger_mlp_hand_count():
    width, depth, batch = 64, 3, 16
    mlp = larger_mlp(width=width, depth=depth)
    x = torch.randn(batch, width)
    # The input and each ReLU output are saved (each ReLU output also feeds the next Linear).
    assert saved_tensor_bytes(mlp, x, exclude=mlp) == (depth + 1) * batch * width * FLOAT
    weights = sum(m.weight.numel() for m in mlp if isinstance(m, nn.Linear)
                  and m is not mlp[0]) * FLOAT  # first Linear: its input needs no grad
    assert saved_tensor_bytes(mlp, x) == (depth + 1) * batch * width * FLOAT + weights


def test_saved_bytes_exclude_rejects_other_types():
    with pytest.raises(TypeError, match="modules and tensors"):
        saved_tensor_bytes(lambda: None, exclude=["net"])


# Exercises -------------------------------------------------------------------------------

def test_exercise_04_1():
    # z: a new result under no_grad; v: a view of w (keeps the flag); u: enable_grad on,
    # but its input z does not require grad.
    assert check("04.1", (False, True, False))
    assert not check("04.1", (False, True, True))    # "enable_grad records everything"
    assert not check("04.1", (False, False, False))  # "nothing made under no_grad requires grad"
    assert not check("04.1", ...)


def test_exercise_04_2():
    # L1 and the ReLU record nothing; L2 keeps its input, the ReLU output (20 x 3 floats).
    assert check("04.2", 20 * 3 * FLOAT)
    net = toy_net()
    inputs = torch.randn(20, 4)

    def forward():
        with torch.no_grad():
            hidden = net.l1(inputs)
        net.l2(torch.relu(hidden))

    assert saved_tensor_bytes(forward, exclude=net) == 20 * 3 * FLOAT
    for wrong, hint in [((20 * 4 + 20 * 3) * FLOAT, "whole forward in grad mode"),
                        (0, "L2 runs outside the block"),
                        ((8 * 4 + 8 * 3) * FLOAT, "toy batch of 8 rows")]:
        assert not check("04.2", wrong) and hint in repr(check("04.2", wrong))
    assert "Not yet." in repr(check("04.2", 1000))


def test_exercise_04_3():
    net = toy_net()
    x, y = toy_batch()
    w0 = net.l1.weight.detach().clone()
    nn.functional.mse_loss(net(x), y).backward()
    # EMA 0.9 * w0 + 0.1 * (w0 - 0.1 g) = w0 - 0.01 g
    expected = w0 - 0.01 * net.l1.weight.grad
    assert check("04.3", expected)
    assert not check("04.3", w0)
    assert not check("04.3", w0 - 0.1 * net.l1.weight.grad)
    assert EXERCISES["04.3"].why


def test_exercise_04_1_hints():
    assert "what are u's inputs" in repr(check("04.1", (False, True, True)))
    assert "view of w" in repr(check("04.1", (False, False, False)))


def test_exercise_04_4_why_the_weight_grad_is_none():
    net = toy_net()
    x, y = toy_batch()
    with torch.no_grad():
        w = net.l1.weight / net.l1.weight.norm(dim=1, keepdim=True)
    nn.functional.mse_loss(net.l2(torch.relu(x @ w.t() + net.l1.bias)), y).backward()
    assert net.l1.weight.grad is None and net.l1.weight.is_leaf
    assert all(p.grad is not None for n, p in net.named_parameters() if n != "l1.weight")
    # the same lines with the division recorded: the weight gets its gradient (so "b")
    net = toy_net()
    w = net.l1.weight / net.l1.weight.norm(dim=1, keepdim=True)
    nn.functional.mse_loss(net.l2(torch.relu(x @ w.t() + net.l1.bias)), y).backward()
    assert net.l1.weight.grad is not None
    assert check("04.4", "b")
    assert "copy made with recording on" in repr(check("04.4", "a"))
    assert "Look at where w" in repr(check("04.4", "c"))
    assert EXERCISES["04.4"].hints
