# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 13 · Writing your own gradients
#
# A `torch.autograd.Function` lets you write the backward pass yourself, so the gradient that
# flows back can differ from the derivative of the forward: rounding with a straight-through
# gradient, an identity that reverses gradients, a branch whose gradient is scaled.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/13_custom_gradients.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/13_custom_gradients.ipynb)

# %% [markdown]
# **What you will learn**
# - how to write a `torch.autograd.Function`: `forward`, `backward`, `ctx.save_for_backward`,
#   `ctx.needs_input_grad`, and how to check it with `gradcheck`;
# - three gradient tricks (straight-through estimator, gradient reversal, gradient scaling)
#   and which parameters each one changes;
# - how to choose which tensors get gradients: `backward(inputs=...)`, `torch.autograd.grad`,
#   and `create_graph=True` for a gradient penalty;
# - what module backward hooks see, next to tensor hooks, and per-example gradients with
#   `torch.func`.
#
# **Prerequisites**: [03 · detach](03_detach.ipynb) and
# [07 · Manual gradient edits](07_manual_grad_edits.ipynb) (tensor hooks). It follows
# [12 · Gradient control at scale](12_at_scale.ipynb).
#
# **Time**: 10 minutes for the core; about 45 more for the "Going deeper" sections.

# %% [markdown]
# ## Setup
# On Colab this cell installs what Colab lacks (torchviz and this series' helpers, pinned);
# everywhere else it does nothing. Then it imports and fixes the seed.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install what it lacks, pinned.
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "torchviz==0.0.3",
                    "gradient-flow-lab @ git+https://github.com/gradient-flow-lab/"
                    "gradient-flow-lab@v0.1.0"], check=True)

import torch

import helpers

_ = torch.manual_seed(0)

# %% [markdown]
# ## The shared toy network
# The `L1 -> ReLU -> L2` network of every notebook, its batch of 8 examples and its
# mean-squared-error loss. The plain step: every parameter gets a gradient.

# %%
import warnings

from torch import nn

from helpers import custom_grad, trick_table

x, y = helpers.toy_batch()
control = helpers.run("control")
assert all(p.grad == "values" for p in control.params.values())
helpers.draw(control)

# %% [markdown]
# ## Predict first
# This forward pass rounds L1's output to a grid of 0.25, with a `detach()` inside:
#
# ```python
# h = net.l1(x)
# h = h + (torch.round(h / 0.25) * 0.25 - h).detach()
# loss = helpers.toy_loss(net.l2(torch.relu(h)), y)
# loss.backward()
# ```
#
# Which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` will have `.grad` equal to `None`?
# Decide before you scroll on. With a live kernel, tick your answer and press the button.

# %%
helpers.predict("custom_gradients", trick="ste", where="after_l1", form="expression")

# %% [markdown]
# ## The mechanism in code
# A `Function` has two static methods. `forward` computes the output (autograd records the
# call as one node); `backward` gets the gradient of the loss with respect to the output and
# returns one gradient per input of `forward` (`None` where none is needed). L1's linear map,
# by hand:

# %%
calls = {"x": 0, "weight": 0, "bias": 0}  # how often backward computed each gradient

class LinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)        # tensors backward will need
        return x @ weight.T + bias

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:             # skip inputs that need no grad
            calls["x"] += 1
            grad_x = grad_out @ weight
        if ctx.needs_input_grad[1]:
            calls["weight"] += 1
            grad_weight = grad_out.T @ x
        if ctx.needs_input_grad[2]:
            calls["bias"] += 1
            grad_bias = grad_out.sum(0)
        return grad_x, grad_weight, grad_bias

net, plain = helpers.toy_net(), helpers.toy_net()
h = LinearFn.apply(x, net.l1.weight, net.l1.bias)          # L1, by hand
helpers.toy_loss(net.l2(torch.relu(h)), y).backward()
helpers.toy_loss(plain(x), y).backward()
plain_grads = {n: p.grad.clone() for n, p in plain.named_parameters()}
print("same gradients as nn.Linear:",
      all(torch.allclose(p.grad, plain_grads[n]) for n, p in net.named_parameters()))
print("gradients computed:", calls)
assert all(torch.allclose(p.grad, plain_grads[n]) for n, p in net.named_parameters())
assert calls == {"x": 0, "weight": 1, "bias": 1}  # the batch x needs no gradient

# %% [markdown]
# `gradcheck` compares `backward` with finite differences of `forward`, on double-precision
# inputs:

# %%
inputs = [torch.randn(5, 4, dtype=torch.double, requires_grad=True),
          torch.randn(3, 4, dtype=torch.double, requires_grad=True),
          torch.randn(3, dtype=torch.double, requires_grad=True)]
passed = torch.autograd.gradcheck(LinearFn.apply, inputs)
print("gradcheck:", passed)
assert passed

# %% [markdown]
# Nothing forces `backward` to be the derivative. `GradReverse` (`helpers/custom_grad.py`):
# the identity forward, the negated gradient backward:
#
# ```python
# class GradReverse(torch.autograd.Function):
#     @staticmethod
#     def forward(ctx, x, lam=1.0):
#         ctx.lam = lam                  # not a tensor: a plain attribute
#         return x.clone()
#
#     @staticmethod
#     def backward(ctx, grad_output):
#         return -ctx.lam * grad_output, None
# ```

# %%
net = helpers.toy_net()
out = net.l2(custom_grad.grad_reverse(torch.relu(net.l1(x))))
helpers.toy_loss(out, y).backward()
for n, p in net.named_parameters():
    print(f"{n:10} plain {plain_grads[n].flatten()[0]:+.4f}   reversed {p.grad.flatten()[0]:+.4f}")
assert torch.equal(net.l1.weight.grad, -plain_grads["l1.weight"])
assert torch.equal(net.l1.bias.grad, -plain_grads["l1.bias"])
assert torch.equal(net.l2.weight.grad, plain_grads["l2.weight"])
assert torch.equal(net.l2.bias.grad, plain_grads["l2.bias"])

# %% [markdown]
# ## Explorer
# Choose a trick, where it sits on the `L1 -> ReLU -> L2` path, and its form: a `Function` or a
# `detach()` expression. The table compares each gradient with the plain step's; the graph
# shows a `Function` as one node named after its class.

# %%
helpers.explore("custom_gradients")

# %% [markdown]
# ## Truth table
# Every combination: 24 rows. No trick leaves a gradient at `None`.

# %%
table = helpers.truth_table("custom_gradients")
assert len(table.rows) == 4 * 3 * 2
assert all(cell == "values *" for row in table.rows for cell in row[3:7])
table

# %% [markdown]
# States do not show what a trick did; the ratio to the plain gradient does. Both forms give
# the same table:

# %%
assert trick_table("function").rows == trick_table("expression").rows
trick_table("function")

# %% [markdown]
# ## What happened and why
# `backward()` hands each node the gradient of the loss with respect to its output and passes
# what the node returns on to its inputs. A `Function`'s backward is yours, and autograd
# trusts its values. So a trick changes the gradients of everything *upstream* of it
# (computed before it) and nothing downstream, unless, like the STE, it also changes the
# forward values. No `.grad` is left at `None`: the graph is not cut, only rewritten.

# %%
for row in trick_table("function").rows:           # trick, where, then the four parameters
    trick, where, ratios = row[0], row[1], dict(zip(helpers.PARAM_NAMES, row[2:]))
    upstream = helpers.PARAM_NAMES if where == "after_l2" else ("l1.weight", "l1.bias")
    if trick in ("reverse", "scale"):
        factor = "-1 x plain" if trick == "reverse" else "0.1 x plain"
        assert all(ratios[n] == (factor if n in upstream else "same") for n in ratios)
    if trick == "ste":
        assert ratios["l2.weight"] == "differs"          # the forward values changed
graphs = helpers.draw(helpers.run("custom_gradients", form="expression"),
                      beside=helpers.run("custom_gradients", form="function"))
labels = [[node.label for node in d.nodes] for d in graphs.diagrams]
assert "GradReverseBackward" in labels[0] and "GradReverseBackward" not in labels[1]
graphs

# %% [markdown]
# ## Recap
# - A `Function`'s `backward` returns one gradient per input of `forward`, and autograd trusts
#   its values: it need not be the derivative.
# - A trick rewrites the gradients of what was computed before it; no `.grad` becomes `None`.
# - `gradcheck`, choosing which tensors get gradients, and hooks: under "Going deeper".

# %% [markdown]
# ## Going deeper: `Function` in detail (10 minutes)
# **`gradcheck` fails the tricks, by design.** It checks that `backward` is the derivative of
# `forward`, which is exactly what a trick is not:

# %%
t = torch.randn(5, dtype=torch.double, requires_grad=True)
for name, f in [("ste", custom_grad.ste), ("grad_reverse", custom_grad.grad_reverse),
                ("scale_grad", lambda t: custom_grad.scale_grad(t, 0.1))]:
    ok = torch.autograd.gradcheck(f, (t,), raise_exception=False)
    print(f"gradcheck({name}): {ok}")
    assert ok is False

# %% [markdown]
# **Tensors go through `ctx.save_for_backward`; anything else can be an attribute of `ctx`.**
# Saved tensors are version-checked: after an in-place change to one of them, `backward`
# refuses to run.

# %%
w = torch.randn(3, 4, requires_grad=True)
features = torch.randn(5, 4)                     # the input, saved by forward
out = LinearFn.apply(features, w, torch.zeros(3))
features.add_(1)                                 # changed after it was saved
try:
    out.sum().backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).split(";")[0])
    assert "modified by an inplace operation" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# **`ctx.needs_input_grad` follows `requires_grad`.** Above, `x` was the batch, so backward
# skipped it. Make `x` require grad (as for L2, whose input is L1's output) and it is computed:

# %%
calls.update(x=0, weight=0, bias=0)
x_leaf = x.clone().requires_grad_()
LinearFn.apply(x_leaf, net.l1.weight, net.l1.bias).sum().backward()
print("gradients computed:", calls)
assert calls == {"x": 1, "weight": 1, "bias": 1} and x_leaf.grad.shape == x.shape

# %% [markdown]
# It follows `requires_grad` only: it does not know which tensors `autograd.grad` or
# `backward(inputs=...)` asks for. Ask for the weight alone, and the bias's gradient is still
# computed, then dropped:

# %%
for ask in ("autograd.grad", "backward(inputs=...)"):
    calls.update(x=0, weight=0, bias=0)
    out = LinearFn.apply(x, net.l1.weight, net.l1.bias).sum()
    if ask == "autograd.grad":
        torch.autograd.grad(out, [net.l1.weight])
    else:
        out.backward(inputs=[net.l1.weight])
    print(f"{ask:20} asks for l1.weight only; gradients computed: {calls}")
    assert calls == {"x": 0, "weight": 1, "bias": 1}

# %% [markdown]
# ## Going deeper: the three tricks (10 minutes)
# **The straight-through estimator, two ways.** `custom_grad.ste` is a `Function` whose
# backward returns `grad_output` unchanged; `custom_grad.ste_expr` is the predict-first
# expression. Same values forward, same gradients backward:

# %%
grads = {}
for name, f in [("Function", custom_grad.ste), ("expression", custom_grad.ste_expr)]:
    net = helpers.toy_net()
    h = f(net.l1(x))
    helpers.toy_loss(net.l2(torch.relu(h)), y).backward()
    grads[name] = {n: p.grad for n, p in net.named_parameters()}
    grads[name]["values"] = h.detach()
    print(f"{name:10} values on the grid: {torch.equal(h, torch.round(h / 0.25) * 0.25)}")
assert torch.equal(grads["Function"]["values"], grads["expression"]["values"])
assert torch.equal(grads["Function"]["values"], torch.round(h / 0.25) * 0.25)
assert all(torch.allclose(grads["Function"][n], grads["expression"][n]) for n in grads["Function"])
wide = torch.linspace(-8, 8, 100_001)                 # and equal values far beyond this batch
assert torch.equal(custom_grad.ste(wide), custom_grad.ste_expr(wide))

# %% [markdown]
# Plain rounding (no trick) has a zero gradient almost everywhere: L1 would learn nothing.

# %%
net = helpers.toy_net()
h = custom_grad.quantize(net.l1(x))
helpers.toy_loss(net.l2(torch.relu(h)), y).backward()
print("l1.weight.grad through plain round:", net.l1.weight.grad.abs().sum().item())
assert not net.l1.weight.grad.any()

# %% [markdown]
# The gradient doctor of [11 · Why is my gradient None?](11_debugging.ipynb),
# `helpers.diagnose(model, step, optimizer)`, runs a step and names a cause per parameter.
# Behind each trick, placed where the predict-first code rounds, it reports `ok`: a `Function`
# or a `detach()` inside an expression is not a cut. Behind plain rounding, L1's gradient is
# all zeros (`zero_grad`):

# %%
behind = {"STE": custom_grad.ste, "STE as expression": custom_grad.ste_expr,
          "reversal": custom_grad.grad_reverse,
          "scaling": lambda t: custom_grad.scale_grad(t, 0.1),
          "plain round": custom_grad.quantize}
causes = {}
for name, trick in behind.items():
    net = helpers.toy_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    def step():
        optimizer.zero_grad()
        loss = helpers.toy_loss(net.l2(torch.relu(trick(net.l1(x)))), y)
        loss.backward()
        optimizer.step()
        return loss
    causes[name] = helpers.diagnose(net, step, optimizer=optimizer).causes
    print(f"{name:18} {causes[name]}")

# %%
assert all(cause == "ok" for name in list(behind)[:4] for cause in causes[name].values())
assert causes["plain round"] == {"l1.weight": "zero_grad", "l1.bias": "zero_grad",
                                 "l2.weight": "ok", "l2.bias": "ok"}

# %% [markdown]
# **Scaling one branch.** Two heads share a trunk; `scale_grad` turns one head's influence on
# the trunk down to 0.1 of its gradient, and leaves the head itself alone:

# %%
torch.manual_seed(0)
trunk, head_a, head_b = nn.Linear(4, 3), nn.Linear(3, 1), nn.Linear(3, 1)

def trunk_grads(scale):
    feats = trunk(x)
    loss_a = helpers.toy_loss(head_a(feats), y)
    loss_b = helpers.toy_loss(head_b(custom_grad.scale_grad(feats, scale)), y)
    (from_a,) = torch.autograd.grad(loss_a, trunk.weight, retain_graph=True)
    from_b, head_b_grad = torch.autograd.grad(loss_b, [trunk.weight, head_b.weight])
    return from_a, from_b, head_b_grad

from_a, from_b, head = trunk_grads(1.0)
from_a_scaled, from_b_scaled, head_scaled = trunk_grads(0.1)
print(f"trunk from head B: |plain| {from_b.norm():.4f}  |scaled| {from_b_scaled.norm():.4f}"
      f"   head B itself: {torch.equal(head, head_scaled)}")
assert torch.equal(from_a, from_a_scaled) and torch.allclose(from_b_scaled, 0.1 * from_b)
assert torch.equal(head, head_scaled)

# %% [markdown]
# **Gradient reversal for domain adaptation** (DANN): a domain classifier learns to tell two
# domains apart, while the reversed gradient pushes the feature extractor to make them
# indistinguishable. One backward pass does both: the classifier gets its ordinary gradient,
# the extractor gets it negated and scaled by the reversal's `lam` (0.5 here).

# %%
torch.manual_seed(0)
extractor, domain_head = nn.Linear(4, 3), nn.Linear(3, 1)
domain = torch.tensor([0., 1.] * 4).unsqueeze(1)    # which domain each example comes from
def domain_loss(reverse):
    f = extractor(x)
    f = custom_grad.grad_reverse(f, 0.5) if reverse else f
    return nn.functional.binary_cross_entropy_with_logits(domain_head(f), domain)

plain_f, plain_d = torch.autograd.grad(domain_loss(False), [extractor.weight, domain_head.weight])
rev_f, rev_d = torch.autograd.grad(domain_loss(True), [extractor.weight, domain_head.weight])
print(f"extractor: {plain_f[0, 0]:+.4f} -> {rev_f[0, 0]:+.4f}   "
      f"domain head: {plain_d[0, 0]:+.4f} -> {rev_d[0, 0]:+.4f}")
assert torch.allclose(rev_f, -0.5 * plain_f) and torch.equal(rev_d, plain_d)

# %% [markdown]
# ## Going deeper: which tensors get gradients (10 minutes)
# **`backward(inputs=[...])`** fills the `.grad` of the listed tensors; the other parameters'
# `.grad` stay `None`. **`torch.autograd.grad(loss, [...])`** returns the gradients instead:
# every parameter's `.grad` stays `None`.

# %%
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward(inputs=[net.l2.weight])
print("backward(inputs=[l2.weight]):",
      {n: "None" if p.grad is None else "values" for n, p in net.named_parameters()})
assert [n for n, p in net.named_parameters() if p.grad is not None] == ["l2.weight"]

net = helpers.toy_net()
(g_l1,) = torch.autograd.grad(helpers.toy_loss(net(x), y), [net.l1.weight])
print("autograd.grad returned", tuple(g_l1.shape), "| all .grad still None:",
      all(p.grad is None for p in net.parameters()))
assert all(p.grad is None for p in net.parameters())
assert torch.allclose(g_l1, plain_grads["l1.weight"])

# %% [markdown]
# **`create_graph=True` records the backward pass itself**, so a gradient can be
# differentiated again. For `f(w) = sum(w**3)`: `3 w**2`, then `6 w`.

# %%
w = torch.tensor([1.0, 2.0, -3.0], requires_grad=True)
(first,) = torch.autograd.grad((w ** 3).sum(), w, create_graph=True)
(second,) = torch.autograd.grad(first.sum(), w)
print("first:", first.tolist(), " second:", second.tolist())
assert torch.equal(first.detach(), 3 * w.detach() ** 2) and torch.equal(second, 6 * w.detach())

# %% [markdown]
# **`retain_graph=True` keeps the graph for another pass**; without it the first pass frees
# what the second needs. `create_graph=True` retains the graph too (it is the default of
# `retain_graph` then):

# %%
w = torch.tensor([1.0, 2.0, -3.0], requires_grad=True)
for options in [{}, {"retain_graph": True}, {"create_graph": True}]:
    loss = (w ** 3).sum()
    torch.autograd.grad(loss, w, **options)
    try:
        torch.autograd.grad(loss, w)
        second_pass = "works"
    except RuntimeError as e:
        second_pass = "RuntimeError: " + str(e)[:48] + " ..."
    print(f"first pass with {options or 'nothing'}: second pass {second_pass}")
    assert (second_pass == "works") == bool(options)

# %% [markdown]
# **A gradient penalty (WGAN-GP).** The critic's loss includes the norm of its gradient with
# respect to its input. That gradient depends on the critic's weights, so the penalty's own
# gradient must flow back through it into the weights: `create_graph=True`. (Not into the
# last bias: shifting the output does not change its slope.)

# %%
def critic_and_points():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(6, 2), torch.randn(6, 2) + 2
    mix = torch.rand(6, 1)
    points = (mix * real + (1 - mix) * fake).requires_grad_()
    return critic, real, fake, points

def penalty(critic, points, create_graph):
    (g,) = torch.autograd.grad(critic(points).sum(), points, create_graph=create_graph)
    return ((g.norm(dim=1) - 1) ** 2).mean()

critic, real, fake, points = critic_and_points()
gp = penalty(critic, points, create_graph=True)
gp.backward()
reached = [n for n, p in critic.named_parameters() if p.grad is not None]
print("the penalty's gradient reaches:", reached)
assert reached == ["0.weight", "0.bias", "2.weight"]
assert all(critic.get_parameter(n).grad.any() for n in reached)

# %% [markdown]
# What goes wrong without `create_graph=True` is under Pitfalls below.
#
# ## Going deeper: hooks on modules (8 minutes)
# [Notebook 07](07_manual_grad_edits.ipynb) hooked *tensors*: `p.register_hook` sees one
# parameter's gradient. A *module* hook sees the gradients at the module's boundary:
# - `register_full_backward_pre_hook(fn)`: `fn(module, grad_output)` runs before the module's
#   backward; what it returns replaces `grad_output`, so it changes the module's own parameter
#   gradients and everything upstream;
# - `register_full_backward_hook(fn)`: `fn(module, grad_input, grad_output)` runs once the
#   gradient with respect to the module's *inputs* is computed; what it returns replaces
#   `grad_input`, so only what lies upstream changes. Neither sees the parameters' gradients.

# %%
seen = {}

def halve_grad_output(module, grad_output):             # a backward pre-hook
    seen["pre-hook: grad_output"] = [tuple(g.shape) for g in grad_output]
    return (grad_output[0] * 0.5,)

def halve_grad_input(module, grad_input, grad_output):  # a full backward hook
    seen["hook: grad_input"] = [tuple(g.shape) for g in grad_input]
    return (grad_input[0] * 0.5,)

def ratios_to_plain(net):
    helpers.toy_loss(net(x), y).backward()
    return {n: round(float(p.grad.norm() / plain_grads[n].norm()), 4)
            for n, p in net.named_parameters()}

net = helpers.toy_net()
net.l2.register_full_backward_pre_hook(halve_grad_output)
results = {"pre_hook": ratios_to_plain(net)}

net = helpers.toy_net()
net.l2.register_full_backward_hook(halve_grad_input)
results["hook"] = ratios_to_plain(net)

for name, ratios in results.items():
    print(f"{name:8} on l2, grad / plain: {ratios}")
print("shapes seen:", seen)

# %%
assert results["pre_hook"] == {n: 0.5 for n in helpers.PARAM_NAMES}
assert results["hook"] == {"l1.weight": 0.5, "l1.bias": 0.5, "l2.weight": 1.0, "l2.bias": 1.0}
assert seen == {"pre-hook: grad_output": [(8, 1)], "hook: grad_input": [(8, 3)]}

# %% [markdown]
# On L1, the first layer, `grad_input` is `(None,)`: the module's only input is the batch,
# which needs no gradient. PyTorch warns that the hook then fires as soon as the gradient with
# respect to the outputs is computed.

# %%
net, seen = helpers.toy_net(), []
net.l1.register_full_backward_hook(lambda module, grad_input, grad_output:
                                   seen.append(grad_input))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    helpers.toy_loss(net(x), y).backward()
print("grad_input:", seen[0], "| warning:", str(caught[0].message).split(" since")[0])
assert seen[0] == (None,) and "Full backward hook is firing when gradients are computed with " \
    "respect to module outputs since no inputs require gradients" in str(caught[0].message)

# %% [markdown]
# ## Going deeper: functional gradients (7 minutes)
# `torch.func.grad(f)` returns a function that returns the gradient of `f` with respect to its
# first argument: no `.grad` attribute is touched, and with detached parameters, as here, the
# result carries no graph. `vmap` maps it over the batch dimension: `loss_one` runs once, on
# the whole batch, not in a Python loop. The result: per-example gradients (for DP-SGD, or to
# find the examples that dominate a step).

# %%
from torch.func import functional_call, grad, vmap

net = helpers.toy_net()
params = {n: p.detach() for n, p in net.named_parameters()}
runs = []                                  # one entry per run of loss_one's Python code

def loss_one(params, xi, yi):
    runs.append(tuple(xi.shape))           # inside vmap: one example's shape
    out = functional_call(net, params, (xi.unsqueeze(0),))
    return helpers.toy_loss(out, yi.unsqueeze(0))

per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
print({n: tuple(g.shape) for n, g in per_example.items()}, "| loss_one ran:", runs)
assert runs == [(4,)]                      # once, for all 8 examples
assert all(p.grad is None for p in net.parameters())
assert not any(g.requires_grad for g in per_example.values())

# %% [markdown]
# The same with a loop over the examples and `backward()`, one pass per example; and the
# mean of the per-example gradients is the batch gradient (the loss is a mean):

# %%
loop = {n: [] for n in params}
for i in range(len(x)):
    net.zero_grad()
    helpers.toy_loss(net(x[i:i + 1]), y[i:i + 1]).backward()
    for n, p in net.named_parameters():
        loop[n].append(p.grad.clone())
for n in params:
    assert torch.allclose(per_example[n], torch.stack(loop[n]), atol=1e-6)
    assert torch.allclose(per_example[n].mean(0), plain_grads[n], atol=1e-6)
print("vmap(grad) == loop over examples; their mean == the batch gradient")

# %% [markdown]
# ## Pitfalls
# **A gradient penalty without `create_graph=True`.** The gradient comes back without a graph,
# so the penalty is a constant as far as the critic's weights are concerned. Alone, its
# `backward()` raises:

# %%
critic, real, fake, points = critic_and_points()
gp = penalty(critic, points, create_graph=False)
try:
    gp.backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", e)
    assert "does not require grad and does not have a grad_fn" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# In a real critic loss it is added to the Wasserstein term, and then nothing raises: the
# penalty silently does nothing. The critic's gradients equal those without the penalty.

# %%
def critic_grads(with_penalty, create_graph):
    critic, real, fake, points = critic_and_points()
    loss = critic(fake).mean() - critic(real).mean()
    if with_penalty:
        loss = loss + 10 * penalty(critic, points, create_graph)
    loss.backward()
    return [p.grad for p in critic.parameters()]

without_penalty = critic_grads(False, False)
forgot = critic_grads(True, create_graph=False)
fixed = critic_grads(True, create_graph=True)
print("forgot create_graph == no penalty at all:",
      all(torch.equal(a, b) for a, b in zip(forgot, without_penalty)))
assert all(torch.equal(a, b) for a, b in zip(forgot, without_penalty))
assert not all(torch.allclose(a, b) for a, b in zip(fixed, without_penalty))

# %% [markdown]
# Fix: `create_graph=True` in the `autograd.grad` call, as `fixed` above.
#
# **A module hook and an in-place op.** When they require grad, as in training, a module
# backward hook (full or pre) hands the module's forward views of its inputs and the caller
# views of its outputs. An in-place op on either (here `nn.ReLU(inplace=True)`, common in
# pretrained CNNs where people hook layers for Grad-CAM) is refused, already in the forward
# pass:

# %%
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(inplace=True),
                      nn.Linear(3, 1))
hooks = {"full hook on Linear 2 (output)": lambda: model[2].register_full_backward_hook(
             lambda module, grad_input, grad_output: None),
         "pre-hook on Linear 2 (output)": lambda: model[2].register_full_backward_pre_hook(
             lambda module, grad_output: None),
         "full hook on the ReLU (input)": lambda: model[3].register_full_backward_hook(
             lambda module, grad_input, grad_output: None)}
for name, register in hooks.items():
    handle = register()
    try:
        model(x)                                       # the forward pass alone
    except RuntimeError as e:
        print(f"{name}: {type(e).__name__}: {str(e).split('. ')[0]}")
        assert "BackwardHookFunction is a view and is being modified inplace" in str(e)
    else:
        raise AssertionError("expected a RuntimeError")
    handle.remove()

# %% [markdown]
# Fix: `nn.ReLU(inplace=False)` after, or as, a hooked module.

# %%
model[3] = nn.ReLU(inplace=False)
model[2].register_full_backward_hook(lambda module, grad_input, grad_output: None)
model[3].register_full_backward_hook(lambda module, grad_input, grad_output: None)
helpers.toy_loss(model(x), y).backward()
print("every parameter has a gradient:", all(p.grad is not None for p in model.parameters()))
assert all(p.grad is not None for p in model.parameters())

# %% [markdown]
# **`backward` returning too few gradients.** It must return one per input of `forward`,
# numbers included:

# %%
class Double(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t, factor):
        return t * factor

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * 2          # forgot the None for `factor`

try:
    Double.apply(torch.ones(3, requires_grad=True), 2.0).sum().backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", e)
    assert "returned an incorrect number of gradients (expected 2, got 1)" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Fix: `return grad_output * 2, None`.
#
# **`autograd.grad` on a tensor the loss does not use** raises, where `backward()` would just
# leave its `.grad` at `None`:

# %%
net, unused = helpers.toy_net(), torch.zeros(3, requires_grad=True)
loss = helpers.toy_loss(net(x), y)
try:
    torch.autograd.grad(loss, [net.l1.weight, unused], retain_graph=True)
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).split(". ")[0])
    assert "appears to not have been used in the graph" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Fix: `allow_unused=True`, and expect `None` for that tensor.

# %%
g_w, g_unused = torch.autograd.grad(loss, [net.l1.weight, unused], allow_unused=True,
                                    retain_graph=True)
assert g_unused is None and torch.allclose(g_w, plain_grads["l1.weight"])
loss.backward(inputs=[net.l1.weight, unused])          # backward: no error, .grad stays None
assert unused.grad is None and net.l1.weight.grad is not None

# %% [markdown]
# ## Where it is used
# - **Quantization-aware training, VQ-VAE, binary networks**: the straight-through estimator,
#   so that rounding or picking a code word still passes a gradient.
# - **Domain adaptation (DANN)**: gradient reversal between the features and a domain
#   classifier, as above.
# - **Multi-task and auxiliary losses**: scaling one branch's gradient into a shared trunk.
# - **WGAN-GP, R1 penalties, MAML**: `create_graph=True` for gradients of gradients.
# - **Differential privacy (DP-SGD), data attribution**: per-example gradients with
#   `torch.func`.
# - **Grad-CAM and saliency maps**: module hooks to capture gradients at a layer.

# %% [markdown]
# ## Exercises
# **13.1** Why is a gradient `None` here? A clamp with a learnable limit, as a `Function`.
# After `backward()`, which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias`, `limit` have
# `.grad` equal to `None`? Answer with a set of names (possibly empty).
#
# ```python
# class Clamp(torch.autograd.Function):
#     @staticmethod
#     def forward(ctx, t, limit):
#         ctx.save_for_backward(t, limit)
#         return torch.minimum(t, limit)
#
#     @staticmethod
#     def backward(ctx, grad_output):
#         t, limit = ctx.saved_tensors
#         return grad_output * (t < limit), None
#
# net = helpers.toy_net()
# limit = nn.Parameter(torch.tensor(0.5))
# out = net.l2(Clamp.apply(torch.relu(net.l1(x)), limit))
# helpers.toy_loss(out, y).backward()
# ```

# %%
answer = ...  # e.g. {"l1.weight"}
helpers.check("13.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"limit"}`: `backward` returns `None` as `limit`'s gradient, so nothing reaches it although
# it requires grad. (To learn it, return `(grad_output * (t >= limit)).sum()` for it.)
# </details>
#
# **13.2** Two tricks on one path: `custom_grad.grad_reverse(h, 2.0)` after L1 and
# `custom_grad.scale_grad(a, 0.1)` after the ReLU. `l1.bias.grad` is then a multiple of its
# plain value: which multiple? Answer with a number; then check it in code.

# %%
answer = ...  # e.g. 2.0
helpers.check("13.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `-0.2`. The gradient that reaches L1 passes through both backwards: times 0.1, then times
# -2.0. L2, downstream of both, is unchanged.
# </details>
#
# **13.3** With `torch.manual_seed(0)` and `w = torch.randn(3, requires_grad=True)`: take the
# gradient `g` of `loss = (w ** 3).sum()` with `torch.autograd.grad(..., create_graph=True)`,
# then call `(loss + g.sum()).backward()`, as a loss with a gradient penalty does. What is
# `w.grad`? Answer with the tensor.

# %%
answer = ...  # your code here
helpers.check("13.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# torch.manual_seed(0)
# w = torch.randn(3, requires_grad=True)
# loss = (w ** 3).sum()
# (g,) = torch.autograd.grad(loss, w, create_graph=True)
# (loss + g.sum()).backward()
# answer = w.grad            # 3 * w ** 2 + 6 * w
# ```
# </details>

# %% [markdown]
# ## Further reading
# - [Extending PyTorch: `torch.autograd.Function`](https://pytorch.org/docs/stable/notes/extending.html)
# - [`torch.autograd.Function`](https://pytorch.org/docs/stable/autograd.html#function)
# - [`torch.autograd.gradcheck`](https://pytorch.org/docs/stable/generated/torch.autograd.gradcheck.gradcheck.html)
# - [`torch.autograd.grad`](https://pytorch.org/docs/stable/generated/torch.autograd.grad.html)
#   and [`Tensor.backward`](https://pytorch.org/docs/stable/generated/torch.Tensor.backward.html)
# - [`nn.Module.register_full_backward_hook`](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.register_full_backward_hook)
# - [Per-sample gradients with `torch.func`](https://pytorch.org/tutorials/intermediate/per_sample_grads.html)
#
# Back to [00 · Start here](00_start_here.ipynb) or to the comparison in
# [08 · Compare them all](08_compare_all.ipynb).
