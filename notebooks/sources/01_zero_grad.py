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
# - why a second `backward()` doubles `.grad`, and a third triples it;
# - that `optimizer.zero_grad()` and `model.zero_grad()` both leave `.grad` as `None` by
#   default, and what `set_to_none=False` does instead;
# - the real difference between the two: which parameters they clear;
# - how to accumulate gradients on purpose over several small batches.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb) (the toy network, the gradient table).
#
# **Time**: about 25 minutes.

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
# The same `L1 -> ReLU -> L2` network as in every notebook, with its fixed batch of 8 examples
# and a mean-squared-error loss. Here is the graph of one plain training step.

# %%
net = helpers.toy_net()
x, y = helpers.toy_batch()
print(net)
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# A training loop is in its second iteration. The first iteration's `backward()` left a gradient
# in all four `.grad`s. The optimizer was built with **only `net.l2.parameters()`**; `l1` still
# requires grad. Now the loop calls `optimizer.zero_grad()`, and then (before any new backward)
# `optimizer.step()`.
#
# Which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` have `.grad` equal to `None`? Decide
# before you scroll on. With a live kernel, tick your answer and press the button.

# %%
helpers.predict("zero_grad", clear="optimizer", passes=0, optimizer_has="l2",
                why="optimizer.zero_grad() sets .grad to None (not zeros), and only for the "
                    "parameters the optimizer holds: l1's stale gradient is untouched.")

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

print(f"loss at the second step: {loss.item():.4f}")

# %% [markdown]
# Each iteration starts from `None`, so after `backward()` every `.grad` holds exactly this
# batch's gradient, never a leftover from the last one.

# %%
fresh = torch.autograd.grad(helpers.toy_loss(net(x), y), list(net.parameters()))
optimizer.zero_grad()
helpers.toy_loss(net(x), y).backward()
assert all(torch.equal(p.grad, g) for p, g in zip(net.parameters(), fresh))

# %% [markdown]
# ## Explorer
# Each run of the explorer is **one iteration that starts where the previous one stopped**:
# a `backward()` has already left a gradient, called **g1**, in every `.grad`. Then:
#
# 1. `clear`: no clearing, `optimizer.zero_grad()`, `model.zero_grad()`,
#    `optimizer.zero_grad(set_to_none=False)`, or a loop `p.grad = None`;
# 2. `passes`: 0 to 3 forward+backward passes on the batch;
# 3. `optimizer.step()` with an SGD optimizer that holds all parameters, or only `l2`'s
#    (`optimizer_has`).
#
# The table shows each grad right after clearing (`None`, `zeros` or stale `values`), then as
# a multiple of g1 before the step, then whether the step moved the parameter. Clearing never
# changes the graph: the drawing stays the same and only the `grad:` labels follow the options.

# %%
helpers.explore("zero_grad")

# %% [markdown]
# Here is the question from *Predict first*, drawn beside the plain step. The graph is the same
# (with 0 passes it is the previous iteration's graph); only the `grad:` labels differ: `l2`'s
# grads were set to `None`, `l1` still holds its stale gradient.

# %%
predicted = helpers.run("zero_grad", clear="optimizer", passes=0, optimizer_has="l2")
helpers.draw(predicted, beside=control)

# %%
import re

def structure(outcome):
    """The drawn graph with the title line and the grad labels removed."""
    lines = repr(helpers.draw(outcome)).splitlines()[1:]
    return [re.sub(r" grad: \w+", "", line) for line in lines]

assert predicted.grads_none() == ["l2.weight", "l2.bias"]
for options in helpers.get_mechanism("zero_grad").combinations():  # all 40 of them
    assert structure(helpers.run("zero_grad", **options)) == structure(control)

# %% [markdown]
# ## Truth table
# Every combination at once: the grad state of each parameter after the step, with `*` where
# the step moved it.

# %%
helpers.truth_table("zero_grad")

# %% [markdown]
# The truth table says `values` whether a grad holds one g1 or four. This second table counts:
# each cell is the grad before `optimizer.step()` in units of g1 (for `l1.weight` and
# `l2.weight`; where they differ, both are given).

# %%
helpers.multiples_table()

# %% [markdown]
# ## What happened and why
# **1. `backward()` adds into `.grad`.** Two passes on the same batch give twice the gradient
# of one, three give three times, and so on, up to float rounding: `.grad` is a running sum,
# and each addition rounds. Here 2 and 3 passes match `k × g1` bit for bit, 6 passes do not:
# compare gradients with `torch.allclose`, not `torch.equal`.

# %%
net = helpers.toy_net()
grads = []
for _ in range(6):
    helpers.toy_loss(net(x), y).backward()
    grads.append(net.l2.weight.grad.clone())

g1 = grads[0]
for k in (2, 3, 6):
    print(f"{k} passes: {grads[k - 1]} | equal to {k} × g1: {torch.equal(grads[k - 1], k * g1)}"
          f" | close: {torch.allclose(grads[k - 1], k * g1)}")
assert all(torch.allclose(g, k * g1) for k, g in enumerate(grads, start=1))
assert torch.equal(grads[1], 2 * g1) and torch.equal(grads[2], 3 * g1)
assert not torch.equal(grads[5], 6 * g1)  # bit for bit fails: float rounding

# %% [markdown]
# The explorer shows the same: with no clearing, the stale g1 plus one pass is `2 × g1`.

# %%
doubled = helpers.run("zero_grad", clear="nothing", passes=1)
helpers.grad_table(doubled)

# %%
assert all(p.extra["grad vs g1"] == "2 × g1" for p in doubled.params.values())
assert helpers.run("zero_grad", clear="optimizer", passes=3).params["l1.bias"].extra[
    "grad vs g1"] == "3 × g1"

# %% [markdown]
# **2. Both `zero_grad()`s set `.grad` to `None` by default.** A popular claim says
# "`model.zero_grad()` zeros the gradients in place, `optimizer.zero_grad()` sets them to `None`".
# That is false: since PyTorch 2.0 both take `set_to_none=True` by default, and both leave `None`.

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
# **3. `set_to_none=False` zeros the same tensor in place.** The `.grad` object stays; its values
# become 0. Neither form is "the old style": both exist, and the default is `None`.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
helpers.toy_loss(net(x), y).backward()
old_grad = net.l1.weight.grad
optimizer.zero_grad(set_to_none=False)
print("same tensor object:", net.l1.weight.grad is old_grad)
print(net.l1.weight.grad)
assert net.l1.weight.grad is old_grad and not old_grad.any()

# %% [markdown]
# **4. A `p.grad = None` loop does what `model.zero_grad()` does by default.** Same scope (every
# parameter of the model), same result, in every combination of the explorer.

# %%
for passes in (0, 1, 2, 3):
    for holds in ("all", "l2"):
        by_loop = helpers.run("zero_grad", clear="loop", passes=passes, optimizer_has=holds)
        by_model = helpers.run("zero_grad", clear="model", passes=passes, optimizer_has=holds)
        assert repr(by_loop) == repr(by_model)
print("loop == model.zero_grad() in all 8 combinations")

# %% [markdown]
# **5. The real difference is scope.** `model.zero_grad()` clears every parameter of the module;
# `optimizer.zero_grad()` clears only the parameters that optimizer was given. A trainable
# parameter outside the optimizer is never cleared, so it keeps accumulating, iteration after
# iteration, in a real loop with real steps.

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
# The explorer's version of the same lesson: with only `l2` in the optimizer, `l1` is one g1
# ahead of `l2` after every number of passes.

# %%
scoped = helpers.run("zero_grad", clear="optimizer", passes=2, optimizer_has="l2")
helpers.grad_table(scoped)

# %%
assert scoped.params["l1.weight"].extra["grad vs g1"] == "3 × g1"
assert scoped.params["l2.weight"].extra["grad vs g1"] == "2 × g1"
assert [p.changed for p in scoped.params.values()] == [False, False, True, True]
in_g1 = lambda k: {0: "None", 1: "g1"}.get(k, f"{k} × g1")
for passes in (0, 1, 2, 3):                # one g1 ahead after every number of passes
    got = helpers.run("zero_grad", clear="optimizer", passes=passes, optimizer_has="l2")
    assert got.params["l1.weight"].extra["grad vs g1"] == in_g1(passes + 1)
    assert got.params["l2.weight"].extra["grad vs g1"] == in_g1(passes)

# %% [markdown]
# **6. `None` and zeros both stop a plain SGD step; leftovers do not.** With no backward after
# clearing, SGD skips every parameter whose grad is `None`, and a zero gradient moves
# nothing in plain SGD. Without clearing, `step()` happily applies the previous iteration's
# gradient again.

# %%
for clear in ("optimizer", "zeros", "nothing"):
    outcome = helpers.run("zero_grad", clear=clear, passes=0)
    moved = [name for name, p in outcome.params.items() if p.changed]
    print(f"{clear:9} grads: {outcome.params['l1.weight'].grad:6}  moved by step: {moved}")
assert not any(p.changed for p in helpers.run("zero_grad", clear="optimizer", passes=0)
               .params.values())
assert not any(p.changed for p in helpers.run("zero_grad", clear="zeros", passes=0)
               .params.values())
assert all(p.changed for p in helpers.run("zero_grad", clear="nothing", passes=0)
           .params.values())

# %% [markdown]
# In SGD, zeros and `None` part ways once the update uses more than the gradient: momentum from
# earlier steps, or weight decay, which adds `weight_decay * p` and needs no state at all.
# With either, a parameter whose grad is zeros still moves; with `None`, SGD skips it.

# %%
for options in ({"momentum": 0.9}, {"weight_decay": 0.01}):
    for set_to_none in (False, True):
        net = helpers.toy_net()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, **options)
        helpers.toy_loss(net(x), y).backward()
        if "momentum" in options:
            optimizer.step()                  # builds up momentum; weight decay needs no step
        optimizer.zero_grad(set_to_none=set_to_none)
        before = net.l1.weight.detach().clone()
        optimizer.step()                      # no backward since clearing
        moved = not torch.equal(net.l1.weight, before)
        grad = "None" if net.l1.weight.grad is None else "zeros"
        state = "state kept" if any(optimizer.state.values()) else "no state"
        print(f"SGD {options} ({state}): l1.weight.grad {grad:5} -> moved by step: {moved}")
        assert moved == (not set_to_none)
        assert any(optimizer.state.values()) == ("momentum" in options)

# %% [markdown]
# Keeping state is not what matters, but what the update does with a zero gradient. Adagrad,
# RMSprop and Adadelta keep state for every parameter, yet they divide the gradient by it: a
# zero grad still moves nothing ([06](06_optimizer_subsets.ipynb) has every optimizer).

# %%
for cls in (torch.optim.Adagrad, torch.optim.RMSprop, torch.optim.Adadelta):
    net = helpers.toy_net()
    optimizer = cls(net.parameters())
    for _ in range(3):                        # earlier steps: state built up
        optimizer.zero_grad()
        helpers.toy_loss(net(x), y).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=False)
    before = net.l1.weight.detach().clone()
    optimizer.step()
    kept = [k for k in optimizer.state[net.l1.weight] if k != "step"]
    print(f"{cls.__name__:8} state {kept}: zero grad moved l1.weight: "
          f"{not torch.equal(net.l1.weight, before)}")
    assert kept and torch.equal(net.l1.weight, before)

# %% [markdown]
# ## Pitfalls
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

# %% [markdown]
# **Code that expects a tensor of zeros.** Since `zero_grad()` leaves `None`, code that reads
# `.grad` right after clearing (logging a norm, say) meets `None`.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
helpers.toy_loss(net(x), y).backward()
optimizer.zero_grad()
try:
    print(net.l1.weight.grad.norm())
except AttributeError as e:
    print(type(e).__name__ + ":", e)
    assert "'NoneType' object has no attribute 'norm'" in str(e)
else:
    raise AssertionError("expected an AttributeError")

# %% [markdown]
# Fix: skip `None` grads, as PyTorch's SGD does (claim 6), or clear with
# `set_to_none=False` if the code really needs a tensor there.

# %%
norms = {n: (None if p.grad is None else p.grad.norm().item()) for n, p in net.named_parameters()}
print(norms)
assert all(v is None for v in norms.values())

# %% [markdown]
# ## Where it is used
# **The standard training loop**: `optimizer.zero_grad()` at the top of every iteration, as in
# *The mechanism in code* above. Use `model.zero_grad()` instead when some
# trainable parameters are not in that optimizer (several optimizers, a layer added later).
#
# **Deliberate accumulation**: when a batch does not fit in memory, run k small batches, each loss
# divided by k, and step once. For a mean loss over independent examples, split into
# equal-sized micro-batches, the accumulated gradient is the gradient of the big batch (up to
# float rounding). The two conditions matter: see below.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
k = 4  # 4 micro-batches of 2 examples = the batch of 8

optimizer.zero_grad()
for xb, yb in zip(x.split(2), y.split(2)):
    loss = helpers.toy_loss(net(xb), yb) / k  # scale so the sum is a mean
    loss.backward()                          # adds into .grad
accumulated = [p.grad.clone() for p in net.parameters()]
optimizer.step()
optimizer.zero_grad()

# %%
whole = helpers.toy_net()
helpers.toy_loss(whole(x), y).backward()
for a, p in zip(accumulated, whole.parameters()):
    assert torch.allclose(a, p.grad, atol=1e-7)
print("accumulated over 4 micro-batches == gradient of the whole batch (to float precision)")

# %% [markdown]
# Without the `/ k` the accumulated gradient is k times too large; with plain SGD that is the
# same as a k times larger learning rate.

# %%
unscaled = helpers.toy_net()
for xb, yb in zip(x.split(2), y.split(2)):
    helpers.toy_loss(unscaled(xb), yb).backward()
assert torch.allclose(unscaled.l1.weight.grad, k * whole.l1.weight.grad, atol=1e-6)

# %% [markdown]
# **Unequal micro-batches** (a last batch that is smaller): dividing by k weights each
# micro-batch equally, so the examples of the small one count more. Weight each micro-batch's
# mean loss by its share of the examples, `n_i / N`, instead.

# %%
def accumulated(weight_of):
    """l1.weight.grad after micro-batches of 3 and 5 examples, each mean loss weighted."""
    net = helpers.toy_net()
    for xb, yb in zip(x.split([3, 5]), y.split([3, 5])):
        (helpers.toy_loss(net(xb), yb) * weight_of(len(xb))).backward()
    return net.l1.weight.grad

by_k, by_share = accumulated(lambda n: 1 / 2), accumulated(lambda n: n / len(x))
print(f"1/k: close {torch.allclose(by_k, whole.l1.weight.grad)} | n_i/N: close "
      f"{torch.allclose(by_share, whole.l1.weight.grad)}")
assert not torch.allclose(by_k, whole.l1.weight.grad)
assert torch.allclose(by_share, whole.l1.weight.grad)

# %% [markdown]
# **BatchNorm** breaks the equality: in training mode it normalises each
# micro-batch with that micro-batch's own mean and variance, so the examples are no longer
# independent. The same 4 x 2 accumulation on a small net with a BatchNorm layer:

# %%
def bn_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3),
                               torch.nn.ReLU(), torch.nn.Linear(3, 1))

big, small = bn_net(), bn_net()
helpers.toy_loss(big(x), y).backward()
for xb, yb in zip(x.split(2), y.split(2)):
    (helpers.toy_loss(small(xb), yb) / 4).backward()
close = torch.allclose(small[0].weight.grad, big[0].weight.grad)
print(f"BatchNorm net: accumulated == whole batch (allclose): {close}")
assert not close

# %% [markdown]
# ## Exercises
# **01.1** The optimizer holds only `net.l2.parameters()`. Each iteration runs
# `optimizer.zero_grad()`, a forward pass and `backward()` on the same batch, with no `step()`.
# After 3 iterations, `net.l1.weight.grad` is how many times one pass's gradient? Answer with an
# int.

# %%
answer = ...  # e.g. 1
helpers.check("01.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `3`: `optimizer.zero_grad()` only clears `l2`. `l1` is never cleared, so each of the three
# backward passes adds one more gradient.
# </details>
#
# **01.2** Which of these calls leave `.grad` as `None`? Answer with a set of the strings
# `"optimizer.zero_grad()"`, `"model.zero_grad()"`, `"optimizer.zero_grad(set_to_none=False)"`,
# `"model.zero_grad(set_to_none=False)"`.

# %%
answer = ...  # e.g. {"model.zero_grad(set_to_none=False)"}
helpers.check("01.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"optimizer.zero_grad()", "model.zero_grad()"}`: both default to `set_to_none=True`.
# </details>
#
# **01.3** Accumulate the gradient of the toy batch over 4 micro-batches of 2 examples, so that
# `net.l1.weight.grad` equals the gradient of the whole batch. Fill in the line in the loop,
# then pass `net.l1.weight.grad` as the answer.

# %%
net = helpers.toy_net()
for xb, yb in zip(x.split(2), y.split(2)):
    loss = helpers.toy_loss(net(xb), yb)
    ...  # your line: backward on the right loss

answer = ...  # net.l1.weight.grad
helpers.check("01.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `(loss / 4).backward()` in the loop, then `answer = net.l1.weight.grad`. Each micro-batch loss
# is a mean over 2 examples; dividing by 4 makes the sum of the four a mean over all 8.
# </details>

# %% [markdown]
# ## Recap
# - `backward()` adds into `.grad`: clear before it, or the gradients double, triple, ...
# - `optimizer.zero_grad()` and `model.zero_grad()` both set `.grad` to `None` by default;
#   `set_to_none=False` zeros the same tensor. They differ in scope: the optimizer clears only
#   its own parameters.
# - Accumulating on purpose is fine: k equal small batches, each loss divided by k, one step
#   (unequal sizes: weight by `n_i / N`; BatchNorm breaks the equality).
#
# ## Further reading
# - [`torch.optim.Optimizer.zero_grad`](https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.zero_grad.html)
# - [`torch.nn.Module.zero_grad`](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.zero_grad)
# - [Zeroing out gradients in PyTorch (recipe)](https://pytorch.org/tutorials/recipes/recipes/zeroing_out_gradients.html)
# - [Autograd mechanics](https://pytorch.org/docs/stable/notes/autograd.html)
#
# [Next: 02 · requires_grad_(False): freezing layers](02_requires_grad.ipynb)
