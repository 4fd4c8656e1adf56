"""custom_gradients: every trick x insertion point x form against plain autograd.

Expected gradients are computed here from the plain toy net of tests/plain_toy.py with ordinary
autograd and hand-written rules (a reversal multiplies the gradient flowing upstream of the
insertion point by -1, a scaling by SCALE; the STE's upstream gradient is the gradient with
respect to the rounded tensor, handed on unchanged), never by calling helpers.custom_grad.
"""

import itertools

import pytest
import torch
from torch import nn

import helpers
import helpers.mechanisms  # noqa: F401  (registers the mechanism and its exercises)
from helpers.exercises import EXERCISES, check
from helpers.outcome import StepContext
from helpers.registry import get_mechanism
from plain_toy import NAMES, plain_batch, plain_net

NAME = "custom_gradients"
TRICKS = ["none", "ste", "reverse", "scale"]
WHERES = ["after_l1", "after_relu", "after_l2"]
FORMS = ["function", "expression"]
COMBOS = list(itertools.product(TRICKS, WHERES, FORMS))
SCALE, STEP, LR = 0.1, 0.25, 0.1
UPSTREAM = {"after_l1": {"l1.weight", "l1.bias"}, "after_relu": {"l1.weight", "l1.bias"},
            "after_l2": set(NAMES)}


def mse(out, target):
    return ((out - target) ** 2).mean()


def plain_grads():
    net = plain_net()
    x, y = plain_batch()
    mse(net(x), y).backward()
    return {n: p.grad.clone() for n, p in net.named_parameters()}


G = plain_grads()
P0 = {n: p.detach().clone() for n, p in plain_net().named_parameters()}


def round_to_grid(t):
    return torch.floor(t / STEP + 0.5) * STEP  # ties are absent from this batch


def ste_grads(where):
    """Plain autograd in two halves: the loss from the rounded tensor (a new leaf), then its
    gradient handed to the unrounded tensor's graph unchanged (what "straight through" means)."""
    net = plain_net()
    x, y = plain_batch()
    h = net.l1(x)
    stages = {"after_l1": lambda t: net.l2(torch.relu(t)), "after_relu": net.l2,
              "after_l2": lambda t: t}
    before = {"after_l1": h, "after_relu": torch.relu(h), "after_l2": net.l2(torch.relu(h))}
    start = before[where]
    rounded = round_to_grid(start.detach()).requires_grad_()
    mse(stages[where](rounded), y).backward()
    start.backward(rounded.grad)
    return {n: p.grad.clone() for n, p in net.named_parameters()}


def expected_grads(trick, where):
    if trick == "none":
        return dict(G)
    if trick == "ste":
        return ste_grads(where)
    factor = -1.0 if trick == "reverse" else SCALE
    return {n: factor * G[n] if n in UPSTREAM[where] else G[n] for n in NAMES}


def run_step(trick, where, form):
    ctx = StepContext()
    get_mechanism(NAME).step(ctx, trick=trick, where=where, form=form)
    return {n: p for n, p in ctx.net.named_parameters()}


@pytest.mark.parametrize("trick,where,form", COMBOS)
def test_every_combination_matches_plain_autograd(trick, where, form):
    expected = expected_grads(trick, where)
    params = run_step(trick, where, form)
    for n in NAMES:
        assert torch.allclose(params[n].grad, expected[n], rtol=1e-5, atol=1e-7), n
        assert torch.allclose(params[n].detach(), P0[n] - LR * expected[n], rtol=1e-5,
                              atol=1e-7), n
    outcome = helpers.run(NAME, trick=trick, where=where, form=form)
    assert outcome.error is None
    for n in NAMES:
        p = outcome.params[n]
        assert p.grad == "values" and p.changed and p.requires_grad
        assert abs(p.grad_norm - float(expected[n].norm())) < 1e-5
        assert p.extra["plain grad norm"] == f"{float(G[n].norm()):.4f}"
        if trick == "none":
            assert p.extra["position"] == "-" and p.extra["grad vs plain"] == "same"
        else:
            assert p.extra["position"] == ("upstream" if n in UPSTREAM[where] else "downstream")


@pytest.mark.parametrize("where", WHERES)
@pytest.mark.parametrize("form", FORMS)
def test_reversal_is_exactly_minus_plain_upstream_and_plain_downstream(where, form):
    params = run_step("reverse", where, form)
    for n in NAMES:
        want = -G[n] if n in UPSTREAM[where] else G[n]
        assert torch.equal(params[n].grad, want), n


@pytest.mark.parametrize("where", WHERES)
def test_both_forms_give_the_same_gradients(where):
    for trick in ["ste", "reverse", "scale"]:
        a, b = run_step(trick, where, "function"), run_step(trick, where, "expression")
        for n in NAMES:
            assert torch.allclose(a[n].grad, b[n].grad, rtol=1e-6, atol=1e-8), (trick, n)


def test_grad_vs_plain_column():
    def column(**options):
        return {n: p.extra["grad vs plain"]
                for n, p in helpers.run(NAME, **options).params.items()}
    assert column(trick="reverse", where="after_relu") == {
        "l1.weight": "-1 x plain", "l1.bias": "-1 x plain", "l2.weight": "same",
        "l2.bias": "same"}
    assert column(trick="scale", where="after_l2") == {n: "0.1 x plain" for n in NAMES}
    ste = column(trick="ste", where="after_l1")
    assert ste["l1.weight"] == ste["l2.weight"] == "differs"


def test_options_and_registry_entry():
    mech = get_mechanism(NAME)
    assert sorted(tuple(c.values()) for c in mech.combinations()) == sorted(COMBOS)
    assert mech.defaults == {"trick": "reverse", "where": "after_relu", "form": "function"}
    assert mech.notebook == "13_custom_gradients" and mech.in_comparison is False
    with pytest.raises(ValueError, match="valid choices: 'none', 'ste', 'reverse', 'scale'"):
        helpers.run(NAME, trick="flip")


def test_not_in_the_comparison_matrix():
    from helpers.compare import rows
    names = {row.mechanism for row in rows()}
    assert "detach" in names and NAME not in names


def test_truth_table_has_no_none_and_no_error():
    table = helpers.truth_table(NAME)
    assert len(table.rows) == 24
    assert all(row[3:7] == ["values *"] * 4 and row[7] == "" for row in table.rows)


# ---- the Function classes, against their definitions --------------------------------------

def test_functions_forward_and_backward():
    from helpers.custom_grad import (GradReverse, ScaleGrad, STE, scale_grad_expr, ste_expr)
    t = torch.tensor([-0.6, -0.1, 0.1, 0.13, 0.4, 1.0], requires_grad=True)
    upstream = torch.arange(1.0, 7.0)
    for f, value, factor in [
            (lambda t: STE.apply(t, STEP), [-0.5, 0.0, 0.0, 0.25, 0.5, 1.0], 1.0),
            (lambda t: ste_expr(t), [-0.5, 0.0, 0.0, 0.25, 0.5, 1.0], 1.0),
            (lambda t: GradReverse.apply(t, 2.0), t.tolist(), -2.0),
            (lambda t: ScaleGrad.apply(t, 0.3), t.tolist(), 0.3),
            (lambda t: scale_grad_expr(t, 0.3), t.tolist(), 0.3),
            (lambda t: scale_grad_expr(t, -1.0), t.tolist(), -1.0)]:
        out = f(t)
        assert torch.allclose(out, torch.tensor(value))
        (g,) = torch.autograd.grad(out, t, upstream)
        assert torch.allclose(g, factor * upstream)


def test_gradcheck_rejects_the_tricks():
    from helpers.custom_grad import grad_reverse, scale_grad, ste
    t = torch.randn(4, dtype=torch.double, requires_grad=True)
    for f in (ste, grad_reverse, lambda t: scale_grad(t, 0.1)):
        assert torch.autograd.gradcheck(f, (t,), raise_exception=False) is False
    assert torch.autograd.gradcheck(lambda t: scale_grad(t, 1.0), (t,))


# ---- plain PyTorch facts the notebook teaches -----------------------------------------------

def test_gradient_penalty_needs_create_graph():
    def parts():
        torch.manual_seed(0)
        critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        points = torch.randn(6, 2, requires_grad=True)
        return critic, points

    critic, points = parts()
    (g,) = torch.autograd.grad(critic(points).sum(), points)
    assert not g.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        ((g.norm(dim=1) - 1) ** 2).mean().backward()
    critic, points = parts()
    (g,) = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    ((g.norm(dim=1) - 1) ** 2).mean().backward()
    grads = dict(critic.named_parameters())
    assert all(grads[n].grad.any() for n in ["0.weight", "0.bias", "2.weight"])
    assert grads["2.bias"].grad is None  # the input gradient does not depend on it


def test_backward_inputs_and_autograd_grad():
    x, y = plain_batch()
    net = plain_net()
    mse(net(x), y).backward(inputs=[net.l2.weight])
    assert [n for n, p in net.named_parameters() if p.grad is not None] == ["l2.weight"]
    assert torch.allclose(net.l2.weight.grad, G["l2.weight"])
    net = plain_net()
    (g,) = torch.autograd.grad(mse(net(x), y), [net.l1.bias])
    assert torch.allclose(g, G["l1.bias"]) and all(p.grad is None for p in net.parameters())


def test_unused_tensor_raises_in_autograd_grad_but_not_in_backward():
    x, y = plain_batch()
    net, unused = plain_net(), torch.zeros(3, requires_grad=True)
    loss = mse(net(x), y)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        torch.autograd.grad(loss, [net.l1.weight, unused], retain_graph=True)
    assert torch.autograd.grad(loss, [unused], allow_unused=True, retain_graph=True) == (None,)
    loss.backward(inputs=[net.l1.weight, unused])
    assert unused.grad is None and torch.allclose(net.l1.weight.grad, G["l1.weight"])


def test_exercise_13_1_fix_learns_the_limit():
    """The solution's remark: returning (grad_output * (t >= limit)).sum() is the gradient."""
    class Clamp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t, limit):
            ctx.save_for_backward(t, limit)
            return torch.minimum(t, limit)

        @staticmethod
        def backward(ctx, grad_output):
            t, limit = ctx.saved_tensors
            return grad_output * (t < limit), (grad_output * (t >= limit)).sum()

    t = torch.tensor([0.1, 0.7, -0.4, 0.9], dtype=torch.double, requires_grad=True)
    limit = torch.tensor(0.5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(Clamp.apply, (t, limit))


def test_module_hooks():
    x, y = plain_batch()
    net = plain_net()
    net.l2.register_full_backward_pre_hook(lambda m, go: (go[0] * 0.5,))
    mse(net(x), y).backward()
    assert all(torch.allclose(p.grad, 0.5 * G[n]) for n, p in net.named_parameters())
    net = plain_net()
    net.l2.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0.5,))
    mse(net(x), y).backward()
    for n, p in net.named_parameters():
        assert torch.allclose(p.grad, 0.5 * G[n] if n.startswith("l1") else G[n]), n
    # the in-place restriction: outputs and inputs of a hooked module, full hook or pre-hook,
    # refused already in the forward pass
    for index, register in [(0, "register_full_backward_hook"),
                            (0, "register_full_backward_pre_hook"),
                            (1, "register_full_backward_hook")]:
        model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(inplace=True), nn.Linear(3, 1))
        getattr(model[index], register)(lambda m, *grads: None)
        with pytest.raises(RuntimeError, match="is a view and is being modified inplace"):
            model(x)
    model[1] = nn.ReLU()
    mse(model(x), y).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_needs_input_grad_follows_requires_grad_not_the_requested_inputs():
    seen = []

    class Mul(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad_output):
            seen.append(ctx.needs_input_grad)
            a, b = ctx.saved_tensors
            return grad_output * b, grad_output * a

    a, b, c = (torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True),
               torch.ones(2))
    torch.autograd.grad(Mul.apply(a, b).sum(), [a])
    Mul.apply(a, b).sum().backward(inputs=[a])
    Mul.apply(c, b).sum().backward()
    assert seen == [(True, True), (True, True), (False, True)]
    assert b.grad is not None and a.grad is not None and c.grad is None


def test_func_grad_keeps_no_graph_only_with_detached_parameters():
    from torch.func import grad
    w = torch.randn(3, requires_grad=True)
    assert not grad(lambda v: (v ** 3).sum())(w.detach()).requires_grad
    assert grad(lambda v: (v ** 3).sum())(w).requires_grad  # composes with autograd
    assert w.grad is None


def test_per_example_gradients_match_a_loop():
    from torch.func import functional_call, grad, vmap
    x, y = plain_batch()
    net = plain_net()
    params = {n: p.detach() for n, p in net.named_parameters()}
    per = vmap(grad(lambda p, xi, yi: mse(functional_call(net, p, (xi[None],)), yi[None])),
               in_dims=(None, 0, 0))(params, x, y)
    assert all(p.grad is None for p in net.parameters())
    for i in range(len(x)):
        single = plain_net()
        mse(single(x[i:i + 1]), y[i:i + 1]).backward()
        for n, p in single.named_parameters():
            assert torch.allclose(per[n][i], p.grad, atol=1e-6)
    for n in NAMES:
        assert torch.allclose(per[n].mean(0), G[n], atol=1e-6)


# ---- the gradient doctor sees through the tricks ---------------------------------------------

@pytest.mark.parametrize("trick,where,form",
                         [c for c in COMBOS if c[0] != "none"])
def test_diagnose_reports_ok_behind_each_trick(trick, where, form):
    from helpers.mechanisms.custom_gradients import forward_with_trick
    x, y = plain_batch()
    net = plain_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)

    def step():
        optimizer.zero_grad()
        loss = mse(forward_with_trick(net, x, trick, where, form), y)
        loss.backward()
        optimizer.step()
        return loss

    assert helpers.diagnose(net, step, optimizer=optimizer).causes == {n: "ok" for n in NAMES}


def test_diagnose_tells_a_cut_and_a_zero_gradient_apart_from_the_tricks():
    x, y = plain_batch()
    for cut, cause in [(lambda t: t.detach(), "detached"), (round_to_grid, "zero_grad")]:
        net = plain_net()
        optimizer = torch.optim.SGD(net.parameters(), lr=LR)

        def step():
            optimizer.zero_grad()
            loss = mse(net.l2(torch.relu(cut(net.l1(x)))), y)
            loss.backward()
            optimizer.step()
            return loss

        causes = helpers.diagnose(net, step, optimizer=optimizer).causes
        assert causes == {"l1.weight": cause, "l1.bias": cause, "l2.weight": "ok",
                          "l2.bias": "ok"}


# ---- exercises and the graph ---------------------------------------------------------------

def test_exercises_solutions_pass_wrong_answers_fail():
    assert {"13.1", "13.2", "13.3"} <= set(EXERCISES)
    assert check("13.1", {"limit"})
    assert not check("13.1", set()) and not check("13.1", {"limit", "l1.weight"})
    assert "not a zero gradient" in repr(check("13.1", set()))
    # 13.2: reversal x2.0 after L1, scaling x0.1 after the ReLU: (-2.0) * 0.1 upstream of both
    assert check("13.2", -0.2)
    assert not any(check("13.2", a) for a in (0.1, -2.0, 1.0, 0.2))
    # 13.3: d/dw [sum(w**3) + sum(3 w**2)] = 3 w**2 + 6 w, by hand
    torch.manual_seed(0)
    w = torch.randn(3)
    assert check("13.3", 3 * w ** 2 + 6 * w)
    assert not any(check("13.3", a) for a in (6 * w, 3 * w ** 2))


def test_graph_shows_the_function_node_only_in_the_function_form():
    function = repr(helpers.draw(helpers.run(NAME, trick="reverse", form="function")))
    expression = repr(helpers.draw(helpers.run(NAME, trick="reverse", form="expression")))
    assert "GradReverseBackward" in function and "GradReverseBackward" not in expression
    assert "SubBackward0" in expression  # x - x.detach(): the expression's own nodes
