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
# autograd graph and the gradient table. Notebooks 01-07 each change one thing about this step.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/00_start_here.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/00_start_here.ipynb)

# %% [markdown]
# **What you will learn**
# - what one training step does to `.grad` and to the parameters;
# - how to read an autograd graph drawn by torchviz, and the gradient table;
# - how to use the explorer and the truth table that every notebook has.
#
# **Prerequisites**: Python; a first look at `torch.nn.Linear` and a training loop.
#
# **Time**: about 15 minutes.

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
# Every notebook starts from the same network: `L1 -> ReLU -> L2`, 4 inputs, 3 hidden units,
# 1 output, seeded so it starts from the same weights each time, and a fixed batch of 8 examples
# with a mean-squared-error loss.

# %%
net = helpers.toy_net()
x, y = helpers.toy_batch()
print(net)
print("parameters:", [name for name, _ in net.named_parameters()])
print("batch:", tuple(x.shape), "->", tuple(y.shape))

# %%
assert [name for name, _ in net.named_parameters()] == list(helpers.PARAM_NAMES)
assert all(p.requires_grad for p in net.parameters())

# %% [markdown]
# A freshly built network has no gradients yet: `.grad` starts as `None` and is filled by the
# first `backward()`.

# %%
assert all(p.grad is None for p in net.parameters())
loss = helpers.toy_loss(net(x), y)
loss.backward()
assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())
print("every .grad filled, each with its parameter's shape:",
      all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters()))
try:
    net.l1.bias.grad = torch.zeros(2)        # PyTorch refuses a .grad of another shape
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).split(".")[0])
    assert "attempting to assign a gradient of size" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# ## Predict first
# In the plain training step (clear the grads, forward, backward, `optimizer.step()`), which of
# `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` will have `.grad` equal to `None` afterwards?
# Decide before you scroll on. With a live kernel, tick your answer and press the button.

# %%
helpers.predict("control", why="Every parameter requires grad and the loss depends on all of "
                "them, so backward() fills every .grad.")

# %% [markdown]
# ## The step in code
# This is the loop body the notebooks start from; notebooks 01-07 each change one thing in it.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

optimizer.zero_grad()              # clear last step's gradients
loss = helpers.toy_loss(net(x), y)  # forward: autograd records the graph
loss.backward()                    # backward: fills p.grad for every parameter
optimizer.step()                   # update: p -= lr * p.grad

print(f"loss before the step: {loss.item():.4f}")

# %% [markdown]
# The helpers run exactly this step on a fresh network and report what happened to each
# parameter. This is the **gradient table**: `grad` is `None` (no gradient at all), `zeros` (a
# tensor of zeros) or `values`; `changed by step` says whether `optimizer.step()` moved the
# parameter.

# %%
control = helpers.run("control")
helpers.grad_table(control)

# %%
for name, p in net.named_parameters():
    assert control.params[name].grad == "values" and control.params[name].changed
    assert abs(control.params[name].grad_norm - p.grad.norm().item()) < 1e-6

# %% [markdown]
# ## Reading the graph
# torchviz draws the graph autograd recorded, read from top (parameters) to bottom (loss):
# - **blue boxes** are leaf tensors that require grad: `backward()` will fill their `.grad`;
# - **grey boxes** are backward functions, one per recorded operation (`AddmmBackward0` is a
#   `Linear` layer, `ReluBackward0` the ReLU, `TBackward0` the weight's transpose);
#   `AccumulateGrad` is where a gradient is added into a leaf's `.grad`;
# - the **green box** is the loss, where `backward()` starts;
# - a **grey dashed box** is a parameter whose `.grad` stays `None`; "not in graph" means no
#   recorded operation used it. (None appear in the plain step; later notebooks are full of them.)

# %%
helpers.draw(control)

# %% [markdown]
# The picture is the graph itself: every `Linear` left an `AddmmBackward0` node, and each
# parameter reaches the loss through an `AccumulateGrad` node.

# %%
names = []
node, stack = control.loss.grad_fn, [control.loss.grad_fn]
while stack:
    node = stack.pop()
    names.append(type(node).__name__)
    stack += [fn for fn, _ in node.next_functions if fn is not None]
assert names.count("AddmmBackward0") == 2 and names.count("ReluBackward0") == 1
assert names.count("AccumulateGrad") == 4

# %% [markdown]
# ## Explorer
# Each notebook has an explorer: controls from the mechanism's options, the gradient table, and
# the graph drawn beside the plain step's graph. Here the options are gentle: skip
# `optimizer.step()`, or let the input batch `x` require grad too. With a live kernel, click and
# watch the table and the graph.

# %%
helpers.explore("control")

# %% [markdown]
# ## Truth table
# The explorer needs a running kernel. The truth table shows every combination at once, so it
# reads the same on GitHub, in print and in the tests. `*` marks a parameter the step changed.

# %%
helpers.truth_table("control")

# %% [markdown]
# ## What happened and why
# **Skipping `optimizer.step()` leaves the gradients but not the update.** `backward()` computes
# gradients and leaves the parameters alone; in this step only `optimizer.step()` changes them.

# %%
no_step = helpers.run("control", optimizer_step="no")
assert all(p.grad == "values" and not p.changed for p in no_step.params.values())

# %% [markdown]
# **An input that requires grad joins the graph without changing the parameters' gradients.**
# It appears as one more blue leaf; the four parameter gradients are the same numbers.

# %%
with_input = helpers.run("control", input_grad="yes")
for name in helpers.PARAM_NAMES:
    assert torch.equal(with_input.tensors[name].grad, control.tensors[name].grad)
assert "leaf tensor (8, 4)" in repr(helpers.draw(with_input))
assert "leaf tensor" not in repr(helpers.draw(control))
helpers.draw(with_input, beside=control)

# %% [markdown]
# **`.backward()` adds into `.grad`; it does not overwrite.** That is why every loop clears the
# gradients first (notebook 01 is all about this).

# %%
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()
first = net.l1.weight.grad.clone()
helpers.toy_loss(net(x), y).backward()
assert torch.equal(net.l1.weight.grad, 2 * first)

# %% [markdown]
# ## Pitfall: asking for a mechanism or option that does not exist
# The helpers check the mechanism and option names you pass and say which ones are valid,
# instead of failing somewhere deep.

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
# ## Where it is used
# The four lines of the step are the body of a typical PyTorch training loop:
#
# ```python
# for x, y in loader:
#     optimizer.zero_grad()
#     loss = loss_fn(model(x), y)
#     loss.backward()
#     optimizer.step()
# ```

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
# ## Exercises
# **00.1** After `loss.backward()` on a fresh toy network, what is the shape of
# `net.l1.weight.grad`? Answer with a tuple.

# %%
answer = ...  # e.g. (2, 5)
helpers.check("00.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `(3, 4)`: `.grad` has its parameter's shape (PyTorch refuses to assign one of another
# shape), and `l1.weight` is 3 × 4 because `l1` maps 4 inputs to 3 units (`print(net)` shows
# `in_features=4, out_features=3`). If you answered `(4, 3)`: `nn.Linear` stores its weight
# as (out, in).
# </details>
#
# **00.2** Which parameters does the plain step leave with a `.grad` of `None`? Answer with a
# set of names (possibly empty).

# %%
answer = ...  # e.g. {"l1.bias"}
helpers.check("00.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `set()`: every parameter requires grad and the loss depends on all of them.
# </details>

# %% [markdown]
# ## Recap
# - One step is: clear grads, forward (records the graph), backward (fills `.grad`), step.
# - The graph shows which parameters the loss reaches; the table shows `None`, zeros or values.
# - Explorer for clicking, truth table for the whole picture at once.
#
# ## Further reading
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
# Each open notebook keeps its own kernel (a Python process holding PyTorch, a few hundred MB).
# When you finish a notebook, shut its kernel down: *Kernel > Shut Down Kernel* in JupyterLab,
# or the *Running Terminals and Kernels* panel in the left sidebar. On Binder and under
# `make lab`, a kernel idle for 15 minutes is shut down for you.
#
# [Next: 01 · zero_grad](01_zero_grad.ipynb)
