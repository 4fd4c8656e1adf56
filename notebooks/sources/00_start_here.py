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
# # 00 · Start here: reading gradients in PyTorch
#
# One tiny network, one training step, and two ways to see where the gradients went: the
# gradient table and the autograd graph. Notebooks 01-07 each change one thing about this step.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/00_start_here.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/00_start_here.ipynb)

# %% [markdown]
# **What you will learn**
# - what one training step does to `.grad` and to the parameters;
# - four words: leaf, `grad_fn`, `AccumulateGrad`, grad norm;
# - how to read the gradient table, the graph and the explorer.
#
# **Prerequisites**: Python; a first look at `torch.nn.Linear` and a training loop.
#
# **Time**: 10 minutes for the core; about 20 more for the "Going deeper" sections.

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
# The same network in every notebook: `L1 -> ReLU -> L2`, seeded, with a fixed batch of 8
# examples and a mean-squared-error loss.

# %%
net = helpers.toy_net()
x, y = helpers.toy_batch()
print(net)
print("batch:", tuple(x.shape), "->", tuple(y.shape))
assert [name for name, _ in net.named_parameters()] == list(helpers.PARAM_NAMES)

# %% [markdown]
# ## Predict first
# In the plain training step (clear the grads, forward, backward, `optimizer.step()`), which of
# `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` have `.grad` equal to `None` afterwards?
# Decide, then tick your answer and press the button.

# %%
helpers.predict("control")

# %% [markdown]
# ## The step in code
# The loop body every notebook starts from:

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

optimizer.zero_grad()            # clear the last step's gradients
out = net(x)                     # forward: autograd records the graph
loss = helpers.toy_loss(out, y)
loss.backward()                  # backward: fills p.grad
optimizer.step()                 # update: p -= lr * p.grad

print(f"loss before the step: {loss.item():.4f}")

# %% [markdown]
# ## Four words and a gradient by hand
# A **leaf** is a tensor that no recorded operation produced, such as a parameter.
# `backward()` stores gradients in the `.grad` of leaves that require grad.

# %%
print(f"l1.weight is a leaf: {net.l1.weight.is_leaf} | out is a leaf: {out.is_leaf}"
      f" | l1.weight.grad filled: {net.l1.weight.grad is not None}")
assert net.l1.weight.is_leaf and not out.is_leaf
assert all(p.grad is not None for p in net.parameters())

# %% [markdown]
# A tensor made by a recorded operation keeps its backward node in **`grad_fn`**. A leaf has none.

# %%
print("loss.grad_fn:", type(loss.grad_fn).__name__, "| out.grad_fn:", type(out.grad_fn).__name__,
      "| net.l1.weight.grad_fn:", net.l1.weight.grad_fn)
assert type(loss.grad_fn).__name__ == "MseLossBackward0" and net.l1.weight.grad_fn is None

# %% [markdown]
# Each node passes gradients to its inputs' nodes, down to an **`AccumulateGrad`** node for
# each leaf that requires grad, which adds the gradient into the leaf's `.grad`
# ([01](01_zero_grad.ipynb) shows the adding). L2's node feeds `l2.bias`'s:

# %%
nodes = [fn for fn, _ in out.grad_fn.next_functions]
print("out.grad_fn passes gradients to:", [type(fn).__name__ for fn in nodes])
print("the AccumulateGrad node belongs to l2.bias:", nodes[0].variable is net.l2.bias)
assert type(nodes[0]).__name__ == "AccumulateGrad" and nodes[0].variable is net.l2.bias

# %% [markdown]
# **A gradient by hand.** The loss is the mean of `(out - y)²` and `l2.bias` is added
# to every `out`, so its gradient is `2 · mean(out - y)`.

# %%
by_hand = 2 * (out - y).mean()
print(f"by hand: {by_hand.item():.4f} | autograd: {net.l2.bias.grad.item():.4f}")
assert torch.allclose(net.l2.bias.grad, by_hand)

# %% [markdown]
# The **grad norm** condenses a gradient into one number: `p.grad.norm()`, the square root of the
# sum of its squared entries.

# %%
norms = {name: p.grad.norm().item() for name, p in net.named_parameters()}
print({name: round(value, 4) for name, value in norms.items()})
assert all(abs(norms[n] - p.grad.pow(2).sum().sqrt().item()) < 1e-6
           for n, p in net.named_parameters())

# %% [markdown]
# ## The gradient table
# The helpers run the same step on a fresh network and report each parameter: `grad` is
# `None`, `zeros` or `values`; `grad norm` as above; `changed by step` says whether
# `optimizer.step()` moved it.

# %%
control = helpers.run("control")
assert all(abs(control.params[n].grad_norm - norms[n]) < 1e-6 for n in norms)
helpers.grad_table(control)

# %% [markdown]
# ## Reading the graph
# The graph is what autograd recorded. **Arrows point from the inputs to the loss;
# `backward()` sends gradients back against them**, from the loss to each leaf's
# `AccumulateGrad`. `L1`/`L2` name the layer that made a node. A parameter with no
# `AccumulateGrad` node in the loss's graph is "not in graph": `backward()` leaves its `.grad`
# as it was, `None` after `zero_grad()` (none here; the first "Going deeper" section shows
# one).

# %%
assert control.grads_none() == []
display(helpers.draw(control))
helpers.graph_legend()               # the key to every graph of the series

# %% [markdown]
# ## Explorer
# Most notebooks have one: a mechanism's options, its gradient table and its graph (from 01
# on, beside the plain step's). Here: skip `optimizer.step()`, or let `x` require grad. Click
# and watch.

# %%
helpers.explore("control")

# %% [markdown]
# ## Why
# `backward()` follows the graph back from the loss and fills `.grad` at every `AccumulateGrad`
# it reaches. All four parameters require grad and the loss depends on each, so all four get
# values, and `optimizer.step()` moves all four.

# %%
print("grads that are None:", control.grads_none(),
      "| moved by the step:", [n for n, p in control.params.items() if p.changed])
assert all(p.grad == "values" and p.changed for p in control.params.values())

# %% [markdown]
# ## Recap
# - A step: clear grads, forward (records the graph), backward (fills the leaves' `.grad`), step.
# - A gradient reaches a leaf through its `AccumulateGrad` node; without one, `backward()`
#   leaves `.grad` as it was.
# - The table shows `None`, zeros or values and the grad norm; the graph shows why.
#
# [Next: 01 · zero_grad](01_zero_grad.ipynb)

# %% [markdown]
# ## Going deeper: "not in graph" and the options (about 6 minutes)
# **Used, yet not in graph.** Freeze `l2.weight` ([02](02_requires_grad.ipynb) teaches
# freezing). L2's `AddmmBackward0` still uses it: it saved the weight to send gradients on to
# L1. But the weight has no `AccumulateGrad` node (`None` stands where the plain step's
# `TBackward0` led to it), so `backward()` never writes its `.grad`: it stays `None`, or keeps a
# stale value it had (the cell's last lines check this), while L1 still gets gradients
# through L2.

# %%
net = helpers.toy_net()
net.l2.weight.requires_grad_(False)
loss = helpers.toy_loss(net(x), y)
l2_node = loss.grad_fn.next_functions[0][0]
print("L2's node passes gradients to:",
      [type(fn).__name__ if fn is not None else None for fn, _ in l2_node.next_functions])
saved_weight = torch.equal(l2_node._saved_mat2, net.l2.weight.t())
print("it saved l2.weight for backward:", saved_weight)
loss.backward()
print("grad is None:", {n: p.grad is None for n, p in net.named_parameters()})
assert type(l2_node).__name__ == "AddmmBackward0" and l2_node.next_functions[2][0] is None
assert saved_weight and net.l2.weight.grad is None and net.l1.weight.grad is not None
net.l2.weight.grad = stale = torch.ones_like(net.l2.weight)  # a stale value: backward leaves it
helpers.toy_loss(net(x), y).backward()
assert net.l2.weight.grad is stale and torch.equal(stale, torch.ones_like(stale))

# %% [markdown]
# Freezing all of L2 in the helpers' step: a `None` grad has no norm, so the table shows `-`.

# %%
frozen_l2 = helpers.run("requires_grad", frozen="l2")
assert frozen_l2.params["l2.weight"].grad_norm is None
table = helpers.grad_table(frozen_l2)
assert table.column("grad norm")[2:] == ["-", "-"]
table

# %%
assert frozen_l2.grads_none() == ["l2.weight", "l2.bias"]
helpers.draw(frozen_l2, beside=control)

# %% [markdown]
# **Skipping `optimizer.step()`** leaves the gradients but not the update: `backward()` only
# computes gradients; in this step only `optimizer.step()` changes the parameters.

# %%
no_step = helpers.run("control", optimizer_step="no")
print("moved by the step:", [n for n, p in no_step.params.items() if p.changed])
assert all(p.grad == "values" and not p.changed for p in no_step.params.values())

# %% [markdown]
# **An input that requires grad** joins the graph as one more leaf; the four parameter gradients
# are the same numbers.

# %%
with_input = helpers.run("control", input_grad="yes")
for name in helpers.PARAM_NAMES:
    assert torch.equal(with_input.tensors[name].grad, control.tensors[name].grad)
helpers.draw(with_input, beside=control)

# %% [markdown]
# **The truth table** shows every option combination at once, so it reads the same on GitHub,
# in print and in the tests. `*` marks a parameter the step changed.

# %%
helpers.truth_table("control")

# %% [markdown]
# ## Going deeper: the training loop (about 2 minutes)
# The four lines of the step are the body of a typical training loop. The loss goes down:

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
losses = []
for _ in range(20):
    optimizer.zero_grad()
    loss = helpers.toy_loss(net(x), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print(f"loss at step 1: {losses[0]:.4f}, at step 20: {losses[-1]:.4f}")
assert losses[-1] < losses[0]

# %% [markdown]
# ## Going deeper: a wrong name gets a clear error (about 1 minute)
# The helpers check the mechanism and option names you pass and list the valid ones.

# %%
try:
    helpers.explore("freeze")
except ValueError as error:
    print("ValueError:", error)
    assert "valid mechanisms" in str(error)
else:
    raise AssertionError("expected a ValueError")

# %%
try:
    helpers.run("control", optimizer_step="maybe")
except ValueError as error:
    print("ValueError:", error)
    assert "'yes', 'no'" in str(error)
else:
    raise AssertionError("expected a ValueError")

# %% [markdown]
# ## Going deeper: exercises (about 10 minutes)
# **00.1** A layer `torch.nn.Linear(5, 2)` gets a batch of 7 examples, shape `(7, 5)`. After
# `backward()` on a loss of its output, what is the shape of `layer.weight.grad`? Answer with
# a tuple.

# %%
answer = ...  # e.g. (1, 1)
helpers.check("00.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `(2, 5)`: a gradient has its parameter's shape, and `nn.Linear(5, 2)` stores its weight as
# (out_features, in_features). The batch size does not appear in it.
# </details>
#
# **00.2** Replace the mean by a sum: `loss = ((out - y) ** 2).sum()`. Work out
# `l2.bias.grad` by hand from `out` and `y`, as a float, without calling `backward()`.

# %%
net = helpers.toy_net()
out = net(x)
answer = ...  # e.g. (3 * (out - y).max()).item()
helpers.check("00.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `(2 * (out - y).sum()).item()`: each example adds `2 · (out - y)` for it, and a sum does not
# divide by the 8 examples.
# </details>
#
# **00.3** Why is `scale.grad` `None` after this code, while the network's grads have values?
# Answer with a letter:
# - `"a"`: `scale` does not require grad;
# - `"b"`: the loss's graph has no `AccumulateGrad` node for `scale`;
# - `"c"`: `scale` is not a leaf.

# %%
net = helpers.toy_net()
scale = torch.nn.Parameter(torch.tensor(2.0))   # a learnable output scale
loss = helpers.toy_loss(net(x) * scale.item(), y)
loss.backward()
print("scale.grad:", scale.grad, "| l2.bias.grad is None:", net.l2.bias.grad is None)

answer = ...  # "a", "b" or "c"
helpers.check("00.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `"b"`: `scale.item()` is a plain Python number, so the multiplication cannot record `scale`:
# no `AccumulateGrad` node for it in the loss's graph, and `backward()` never reaches it.
# `scale` is a leaf that requires grad. Multiply by the tensor itself: `net(x) * scale`.
# </details>

# %% [markdown]
# ## Going deeper: further reading and the series (about 2 minutes)
# - [A gentle introduction to `torch.autograd`](https://pytorch.org/tutorials/beginner/blitz/autograd_tutorial.html)
# - [Autograd mechanics](https://pytorch.org/docs/stable/notes/autograd.html)
# - [torchviz](https://github.com/szagoruyko/pytorchviz)
#
# ## The series
# 0. **Start here: reading gradients in PyTorch** (this notebook)
# 1. [zero_grad: clearing gradients](01_zero_grad.ipynb)
# 2. [requires_grad_(False): freezing layers](02_requires_grad.ipynb)
# 3. [detach: cutting the graph](03_detach.ipynb)
# 4. [torch.no_grad: not recording](04_no_grad.ipynb)
# 5. [torch.inference_mode](05_inference_mode.ipynb)
# 6. [Optimizer parameter subsets: what the optimizer moves](06_optimizer_subsets.ipynb)
# 7. [Manual gradient edits: changing `.grad` before the step](07_manual_grad_edits.ipynb)
# 8. [Compare them all: choosing the right tool](08_compare_all.ipynb)
# 9. [Patterns from real training code](09_patterns.ipynb)
# 10. [Myths, tested](10_myths.ipynb)
# 11. [Why is my gradient None?](11_debugging.ipynb)
# 12. [Gradient control at scale](12_at_scale.ipynb)
# 13. [Writing your own gradients](13_custom_gradients.ipynb)
#
# **Shutting down.** Each open notebook keeps its own kernel (a Python process holding
# PyTorch, a few hundred MB). When you finish a notebook, shut its kernel down: *Kernel > Shut
# Down Kernel* in JupyterLab, or the *Running Terminals and Kernels* panel in the left sidebar.
# On Binder and under `make lab`, a kernel idle for 15 minutes is shut down for you.
#
# [Next: 01 · zero_grad](01_zero_grad.ipynb)
