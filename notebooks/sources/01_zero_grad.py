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
# # 01 · zero_grad: clearing gradients
#
# `backward()` adds into `.grad`; clearing decides what it adds to, and for which parameters.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/01_zero_grad.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/01_zero_grad.ipynb)

# %% [markdown]
# **What you will learn**
# - why a second `backward()` doubles `.grad`;
# - what `zero_grad()` leaves in `.grad` by default, and what `set_to_none=False` changes;
# - the real difference between `optimizer.zero_grad()` and `model.zero_grad()`: scope;
# - how to accumulate gradients on purpose over several small batches.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb) (the toy network, the gradient
# table, `AccumulateGrad`).
#
# **Time**: 10 minutes for the core; about 30 more for the "Going deeper" sections.

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
# The same `L1 -> ReLU -> L2` network, batch and loss as in every notebook. The graph of one
# plain training step:

# %%
x, y = helpers.toy_batch()
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# A training loop is in its second iteration. The first iteration's `backward()` left a gradient
# in all four `.grad`s. The optimizer was built with **only `net.l2.parameters()`**; `l1` still
# requires grad. Now the loop calls `optimizer.zero_grad()`, and then (before any new backward)
# `optimizer.step()`.
#
# Which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` have `.grad` equal to `None`? Decide,
# then tick your answer and press the button.

# %%
helpers.predict("zero_grad", clear="optimizer", passes=0, optimizer_has="l2")

# %% [markdown]
# ## The mechanism in code
# Clear, forward, backward, step. The clearing line comes **before** `backward()`, because
# `backward()` adds to whatever `.grad` already holds.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

for step in range(2):
    optimizer.zero_grad()              # .grad = None for every parameter the optimizer holds
    loss = helpers.toy_loss(net(x), y)  # forward
    loss.backward()                    # adds this batch's gradient into .grad
    optimizer.step()                   # p -= lr * p.grad

fresh = torch.autograd.grad(helpers.toy_loss(net(x), y), list(net.parameters()))
optimizer.zero_grad()
helpers.toy_loss(net(x), y).backward()
print("after clearing, .grad holds exactly this batch's gradient:",
      all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), fresh)))
assert all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), fresh))

# %% [markdown]
# ## Explorer
# Each run is **one iteration that starts where the previous one stopped**: a `backward()` has
# already left a gradient, **g1**, in every `.grad`. Then it clears (`clear`), runs 0 to 3
# forward+backward `passes`, and calls `optimizer.step()` with an SGD optimizer that holds all
# parameters or only `l2`'s (`optimizer_has`). The table shows each grad right after clearing,
# then as a multiple of g1 before the step.

# %%
helpers.explore("zero_grad")

# %% [markdown]
# ## Why
# `backward()` adds into `.grad` (that is what `AccumulateGrad` does): without clearing, one
# more pass on the same batch doubles it. `zero_grad()` sets `.grad` to `None` by default, and
# `optimizer.zero_grad()` only for the parameters the optimizer holds: `l2`'s, in the question.
# `l1` keeps its stale gradient.

# %%
predicted = helpers.run("zero_grad", clear="optimizer", passes=0, optimizer_has="l2")
doubled = helpers.run("zero_grad", clear="nothing", passes=1)
assert predicted.grads_none() == ["l2.weight", "l2.bias"]
assert predicted.params["l1.weight"].extra["grad vs g1"] == "g1"
assert all(p.extra["grad vs g1"] == "2 × g1" for p in doubled.params.values())
helpers.grad_table(predicted)

# %% [markdown]
# ## Recap
# - `backward()` adds into `.grad`: clear before it, or old gradients pile up.
# - `zero_grad()` leaves `None` by default; `set_to_none=False` leaves zeros.
# - `optimizer.zero_grad()` clears only its own parameters; `model.zero_grad()` clears all.
#
# [Next: 02 · requires_grad_(False): freezing layers](02_requires_grad.ipynb)

# %% [markdown]
# ## Going deeper: the truth table and the graph (about 4 minutes)
# Every combination at once: the grad state of each parameter after the step, with `*` where
# the step moved it.

# %%
helpers.truth_table("zero_grad")

# %% [markdown]
# The truth table says `values` whether a grad holds one g1 or four. This table counts: each
# cell is the grad before `optimizer.step()` in units of g1 (for `l1.weight` and `l2.weight`;
# where they differ, both are given).

# %%
helpers.multiples_table()

# %% [markdown]
# Clearing never changes the graph: drawn beside the plain step, the question's graph differs
# only in its `grad:` labels and their colours (with 0 passes it is the previous iteration's
# graph). The cell checks the outline for all 40 combinations.

# %%
import re


def structure(outcome):
    """The drawn graph with the title line and the grad labels removed."""
    lines = repr(helpers.draw(outcome)).splitlines()[1:]
    return [re.sub(r" grad: \w+", "", line) for line in lines]


for options in helpers.get_mechanism("zero_grad").combinations():
    assert structure(helpers.run("zero_grad", **options)) == structure(control)
helpers.draw(predicted, beside=control)

# %% [markdown]
# ## Going deeper: what backward() adds and what zero_grad() leaves (about 8 minutes)
# **`.grad` is a running sum.** Two passes on the same batch give twice one pass's gradient,
# three give three times, up to float rounding: each addition rounds. Here 2 and 3 passes
# match `k × g1` bit for bit, 6 passes do not: compare gradients with `torch.allclose`.

# %%
net = helpers.toy_net()
grads = []
for _ in range(6):
    helpers.toy_loss(net(x), y).backward()
    grads.append(net.l2.weight.grad.clone())

g1 = grads[0]
for k in (2, 3, 6):
    print(f"{k} passes: equal to {k} × g1: {torch.equal(grads[k - 1], k * g1)}"
          f" | close: {torch.allclose(grads[k - 1], k * g1)}")
assert all(torch.allclose(g, k * g1) for k, g in enumerate(grads, start=1))
assert torch.equal(grads[1], 2 * g1) and torch.equal(grads[2], 3 * g1)
assert not torch.equal(grads[5], 6 * g1)  # bit for bit fails: float rounding

# %% [markdown]
# **Both `zero_grad()`s set `.grad` to `None` by default.** A popular claim says
# "`model.zero_grad()` zeros the gradients in place, `optimizer.zero_grad()` sets them to
# `None`". That is false: since PyTorch 2.0 both default to `set_to_none=True`.

# %%
import inspect

for method in (torch.optim.Optimizer.zero_grad, torch.nn.Module.zero_grad):
    default = inspect.signature(method).parameters["set_to_none"].default
    print(f"{method.__qualname__}: set_to_none={default}")
    assert default is True

# %%
for how in ("optimizer", "model"):
    net = helpers.toy_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    helpers.toy_loss(net(x), y).backward()
    if how == "optimizer":
        optimizer.zero_grad()
    else:
        net.zero_grad()
    print(f"after {how}.zero_grad():", [p.grad for p in net.parameters()])
    assert all(p.grad is None for p in net.parameters())

# %% [markdown]
# **`set_to_none=False` zeros the same tensor in place**, in both methods. The `.grad` object
# stays; its values become 0. That was the default before PyTorch 2.0; both forms still exist,
# and the default is now `None`.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
helpers.toy_loss(net(x), y).backward()
old_grad = net.l1.weight.grad
optimizer.zero_grad(set_to_none=False)
print("same tensor object:", net.l1.weight.grad is old_grad,
      "| all zeros:", not old_grad.any())
assert net.l1.weight.grad is old_grad and not old_grad.any()
helpers.toy_loss(net(x), y).backward()
kept = [p.grad for p in net.parameters()]
net.zero_grad(set_to_none=False)  # the module's method: the same in place
assert all(p.grad is g and not g.any() for p, g in zip(net.parameters(), kept))

# %% [markdown]
# **A `p.grad = None` loop does what `model.zero_grad()` does by default**: same scope (every
# parameter of the model), same result, in every combination of the explorer.

# %%
for passes in (0, 1, 2, 3):
    for holds in ("all", "l2"):
        by_loop = helpers.run("zero_grad", clear="loop", passes=passes, optimizer_has=holds)
        by_model = helpers.run("zero_grad", clear="model", passes=passes, optimizer_has=holds)
        assert repr(by_loop) == repr(by_model)
print("loop == model.zero_grad() in all 8 combinations")

# %% [markdown]
# **The real difference is scope.** `model.zero_grad()` clears every parameter of the module;
# `optimizer.zero_grad()` only the parameters that optimizer was given. A trainable parameter
# outside the optimizer is never cleared by it: in a real loop with real steps, it keeps
# accumulating, iteration after iteration.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)  # l1 left out, still requires grad
l1_before = net.l1.weight.detach().clone()
l1_each_iteration = []
for step in range(3):
    optimizer.zero_grad()
    loss = helpers.toy_loss(net(x), y)
    l1_each_iteration.append(torch.autograd.grad(loss, net.l1.weight, retain_graph=True)[0])
    loss.backward()
    optimizer.step()

print("l1.weight.grad norm:", round(net.l1.weight.grad.norm().item(), 4),
      "| this iteration's alone:", round(l1_each_iteration[-1].norm().item(), 4))
assert torch.allclose(net.l1.weight.grad, sum(l1_each_iteration))
assert torch.equal(net.l1.weight, l1_before)  # not in the optimizer: never moved
net.zero_grad()
assert all(p.grad is None for p in net.parameters())  # the model's method reaches l1 too

# %% [markdown]
# **`None` and zeros both stop a plain SGD step; leftovers do not.** With no backward after
# clearing, SGD skips every parameter whose grad is `None`, and a zero gradient moves nothing
# in plain SGD. Without clearing, `step()` applies the previous iteration's gradient again.
# (With momentum, weight decay or Adam, zeros and `None` part ways:
# [06 · Optimizer parameter subsets](06_optimizer_subsets.ipynb).)

# %%
for clear in ("optimizer", "zeros", "nothing"):
    outcome = helpers.run("zero_grad", clear=clear, passes=0)
    moved = [name for name, p in outcome.params.items() if p.changed]
    print(f"{clear:9} grads: {outcome.params['l1.weight'].grad:6}  moved by step: {moved}")
    assert moved == (list(helpers.PARAM_NAMES) if clear == "nothing" else [])

# %% [markdown]
# ## Going deeper: pitfalls (about 3 minutes)
# **Clearing between `backward()` and `step()`.** The gradient is gone before the optimizer sees
# it, so nothing learns, and nothing complains.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
before = [p.detach().clone() for p in net.parameters()]
helpers.toy_loss(net(x), y).backward()
optimizer.zero_grad()  # wrong place
optimizer.step()
assert all(torch.equal(p, b) for p, b in zip(net.parameters(), before))
print("nothing moved")

# %% [markdown]
# Fix: clear first (or right after `step()`), then forward, backward, step.

# %%
optimizer.zero_grad()
helpers.toy_loss(net(x), y).backward()
optimizer.step()
assert not any(torch.equal(p, b) for p, b in zip(net.parameters(), before))
print("all four parameters moved")

# %% [markdown]
# **Accumulating by calling `backward()` twice on one loss.** The first `backward()` frees the
# graph's saved tensors, so the second one fails.

# %%
net = helpers.toy_net()
loss = helpers.toy_loss(net(x), y)
loss.backward()
try:
    loss.backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "Trying to backward through the graph a second time" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Fix: each backward gets its own forward pass (that is what every "pass" in the explorer is).

# %%
net = helpers.toy_net()
for _ in range(2):
    helpers.toy_loss(net(x), y).backward()  # new forward, new graph each time
assert torch.equal(net.l2.weight.grad, 2 * g1)
print("two forward+backward passes: l2.weight.grad == 2 × g1")

# %% [markdown]
# ## Going deeper: accumulating on purpose (about 3 minutes)
# When a batch does not fit in memory, run k small batches, each loss divided by k, and step
# once. For a mean loss over independent examples, split into equal-sized micro-batches, the
# accumulated gradient is the gradient of the big batch (up to float rounding). Unequal sizes
# and BatchNorm break this: [12 · Gradient control at scale](12_at_scale.ipynb).

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
k = 2  # 2 micro-batches of 4 examples = the batch of 8

optimizer.zero_grad()
for xb, yb in zip(x.split(4), y.split(4)):
    loss = helpers.toy_loss(net(xb), yb) / k  # scale so the sum is a mean
    loss.backward()                          # adds into .grad
accumulated = [p.grad.clone() for p in net.parameters()]
optimizer.step()

whole = helpers.toy_net()
helpers.toy_loss(whole(x), y).backward()
assert all(torch.allclose(a, p.grad, atol=1e-7) for a, p in zip(accumulated, whole.parameters()))
print("accumulated over 2 micro-batches == gradient of the whole batch (to float precision)")

# %% [markdown]
# ## Going deeper: exercises (about 12 minutes)
# **01.1** The optimizer holds only `net.l1.parameters()`. A loop runs 5 iterations of
# `optimizer.zero_grad()`, forward, `backward()`, `optimizer.step()`. After the loop,
# `net.l2.bias.grad` is the sum of how many iterations' gradients? Answer with an int.

# %%
answer = ...  # e.g. 0
helpers.check("01.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `5`: `optimizer.zero_grad()` clears only `l1`. `l2` is never cleared, so each of the five
# backward passes adds its gradient into `l2.bias.grad`.
# </details>
#
# **01.2** What does each `.grad` hold after this code? Answer with a dict from parameter name
# to `"None"`, `"zeros"` or `"values"`.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.l1.parameters(), lr=0.1)
helpers.toy_loss(net(x), y).backward()
optimizer.zero_grad(set_to_none=False)
net.l2.zero_grad()

answer = ...  # e.g. {"l1.weight": "values", "l1.bias": "values", "l2.weight": ..., ...}
helpers.check("01.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `l1`'s grads are `"zeros"`: the optimizer holds them and `set_to_none=False` zeros them in
# place. `l2`'s are `"None"`: `net.l2.zero_grad()` defaults to `set_to_none=True`, like
# `optimizer.zero_grad()`.
# </details>
#
# **01.3** These 4 micro-batches of 2 examples use a *sum* loss (`reduction="sum"`). Scale
# each loss so that `net.l1.weight.grad` ends up equal to the gradient of the whole batch's
# *mean* loss: fill in the line in the loop, then pass `net.l1.weight.grad` as the answer.

# %%
net = helpers.toy_net()
for xb, yb in zip(x.split(2), y.split(2)):
    loss = torch.nn.functional.mse_loss(net(xb), yb, reduction="sum")
    ...  # your line: backward on the scaled loss

answer = ...  # net.l1.weight.grad
helpers.check("01.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `(loss / 8).backward()`, then `answer = net.l1.weight.grad`: the four sums add up to the sum
# over all 8 examples, and the mean divides that sum by 8. (`/ 4` would be right for four
# *mean* losses.)
# </details>
#
# **01.4** Why is `net.l1.weight.grad` `None` where this loop logs it? Answer with a letter:
# - `"a"`: `l1` is not in the optimizer, so `backward()` skipped it;
# - `"b"`: `optimizer.step()` used the gradient up and reset it;
# - `"c"`: `optimizer.zero_grad()` ran before the logging line.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
logged = []
for step in range(3):
    loss = helpers.toy_loss(net(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    logged.append(net.l1.weight.grad)  # meant to log this step's gradient
print("logged:", logged)

answer = ...  # "a", "b" or "c"
helpers.check("01.4", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `"c"`: `zero_grad()` sets `.grad` to `None` by default. Clearing after the step is fine for
# training (the next `backward()` fills `.grad` again), but read the gradient between
# `backward()` and `zero_grad()`.
# </details>

# %% [markdown]
# ## Going deeper: further reading (about 1 minute)
# - [`torch.optim.Optimizer.zero_grad`](https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.zero_grad.html)
# - [`torch.nn.Module.zero_grad`](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.zero_grad)
# - [Zeroing out gradients in PyTorch (recipe)](https://pytorch.org/tutorials/recipes/recipes/zeroing_out_gradients.html)
# - [Autograd mechanics](https://pytorch.org/docs/stable/notes/autograd.html)
#
# [Next: 02 · requires_grad_(False): freezing layers](02_requires_grad.ipynb)
