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
# # 02 · requires_grad_(False): freezing layers
#
# `requires_grad_(False)` turns parameters into constants: `backward()` stops writing their
# `.grad`, so an optimizer given only the trainable parameters leaves them alone.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/02_requires_grad.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/02_requires_grad.ipynb)

# %% [markdown]
# **What you will learn**
# - how to freeze a layer, and why the optimizer should get only the parameters that train;
# - why a frozen *first* layer fed the batch leaves no trace in the graph, while a frozen
#   *later* layer stays in it and passes gradients back to the layers before it;
# - what freezing does not do (Going deeper).
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb) (the graph, the gradient table,
# leaf tensors).
#
# **Time**: 10 minutes for the core; about 25 more for the "Going deeper" sections.

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
# The same `L1 -> ReLU -> L2` network, batch and loss as in every notebook, and the graph of
# one plain training step: all four parameters get a gradient.

# %%
x, y = helpers.toy_batch()
control = helpers.run("control")
assert control.grads_none() == []              # all four parameters get a gradient
helpers.draw(control)

# %% [markdown]
# ## Predict first
# We freeze the *last* layer with `net.l2.requires_grad_(False)` and run one training step.
# Which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` will have `.grad` equal to `None`?
# Note that every gradient for `l1` travels back *through* `l2`. Decide, then tick your answer
# and press the button.

# %%
helpers.predict("requires_grad", frozen="l2")

# %% [markdown]
# ## The mechanism in code
# Freeze a layer with `Module.requires_grad_(False)` (one tensor:
# `tensor.requires_grad_(False)`), then give the optimizer only what still trains.

# %%
net = helpers.toy_net()
net.l2.requires_grad_(False)                      # freeze l2.weight and l2.bias
l2_before = net.l2.weight.tolist() + net.l2.bias.tolist()
trainable = [p for p in net.parameters() if p.requires_grad]
optimizer = torch.optim.SGD(trainable, lr=0.1)    # only the trainable parameters

optimizer.zero_grad()
loss = helpers.toy_loss(net(x), y)
loss.backward()
optimizer.step()

for name, p in net.named_parameters():
    print(f"{name:10} requires_grad={p.requires_grad!s:5}  grad is None: {p.grad is None}")
assert [p.grad is None for p in net.parameters()] == [False, False, True, True]
assert net.l2.weight.tolist() + net.l2.bias.tolist() == l2_before   # the step left l2 alone

# %% [markdown]
# ## Explorer
# Choose which layer is frozen: the gradient table and the graph (beside the plain step)
# follow. It starts with `l1` frozen; compare it with `l2` frozen, then freeze both.

# %%
helpers.explore("requires_grad", frozen="l1")

# %% [markdown]
# ## Why
# Autograd records an operation only if at least one of its inputs requires grad. A frozen
# `l1` sees the batch `x` and its own frozen weights: nothing there requires grad, so neither
# `l1` nor the ReLU after it is recorded, and `backward()` has no path to `l1`. A frozen `l2`
# still sees the ReLU output, which requires grad: its operation is recorded and passes back
# to `l1` the same gradient as an unfrozen `l2`. Only the branches to `l2`'s own parameters
# are missing.

# %%
free, first_frozen, last_frozen = helpers.toy_net(), helpers.toy_net(), helpers.toy_net()
first_frozen.l1.requires_grad_(False)
last_frozen.l2.requires_grad_(False)
hidden = torch.relu(first_frozen.l1(x))
out = last_frozen(x)
helpers.toy_loss(out, y).backward()
helpers.toy_loss(free(x), y).backward()
same = all(torch.equal(last_frozen.get_parameter(n).grad, free.get_parameter(n).grad)
           for n in ["l1.weight", "l1.bias"])
print(f"l1 frozen: the ReLU output's grad_fn is {hidden.grad_fn}")
print(f"l2 frozen: its output's grad_fn is {type(out.grad_fn).__name__}; "
      f"l1's grads equal the unfrozen network's: {same}")
assert not x.requires_grad and hidden.grad_fn is None and not hidden.requires_grad
assert type(out.grad_fn).__name__ == "AddmmBackward0" and same
assert last_frozen.l2.weight.grad is None and last_frozen.l2.bias.grad is None

# %% [markdown]
# ## Recap
# - `requires_grad_(False)` stops `backward()` writing a parameter's `.grad` (`None` on a fresh
#   network); give the optimizer only the parameters that still train.
# - Autograd records an operation only if an input requires grad: a frozen first layer fed the
#   batch leaves no trace, a frozen later layer stays in the graph and passes gradients back.
# - Freezing is neither `no_grad` (other tensors are still tracked) nor `eval()` (BatchNorm
#   keeps updating its statistics): see Going deeper.
#
# [Next: 03 · detach](03_detach.ipynb) cuts the graph at one tensor instead.

# %% [markdown]
# ## Going deeper: the graph, node by node (about 3 minutes)
# Look inside `l2`'s node. `loss.grad_fn` is the loss's node; its first input is `l2`'s
# `AddmmBackward0`, whose `next_functions` are where the gradient goes next: `l2.bias`'s
# `AccumulateGrad`, the ReLU's node, and the transpose of `l2.weight`. `None` marks an input
# without a node. With `l1` frozen, the ReLU's output was not recorded. With `l2` frozen, the
# two parameter branches are missing, while the path to the ReLU, and on to `l1`, stays.

# %%
def l2_node_inputs(frozen):
    net = helpers.toy_net()
    if frozen != "nothing":
        net.get_submodule(frozen).requires_grad_(False)
    loss = helpers.toy_loss(net(x), y)
    addmm = loss.grad_fn.next_functions[0][0]   # the node of l2's matmul
    return type(addmm).__name__, [type(fn).__name__ if fn else None
                                  for fn, _ in addmm.next_functions]


for frozen in ["nothing", "l1", "l2"]:
    print(f"{frozen:7} frozen: {l2_node_inputs(frozen)}")
assert l2_node_inputs("nothing") == ("AddmmBackward0",
                                     ["AccumulateGrad", "ReluBackward0", "TBackward0"])
assert l2_node_inputs("l1") == ("AddmmBackward0", ["AccumulateGrad", None, "TBackward0"])
assert l2_node_inputs("l2") == ("AddmmBackward0", [None, "ReluBackward0", None])

# %% [markdown]
# The drawings, frozen `l1` on the left and frozen `l2` on the right: the first has no backward
# node for `l1` or the ReLU; the second keeps both layers' nodes and leaves out only the branches
# to `l2`'s parameters.

# %%
frozen_l1 = helpers.run("requires_grad", frozen="l1")
frozen_l2 = helpers.run("requires_grad", frozen="l2")
assert frozen_l1.grads_none() == ["l1.weight", "l1.bias"]
assert [frozen_l2.params[n].extra["in graph"] for n in helpers.PARAM_NAMES] == \
    ["yes", "yes", "no", "no"]
helpers.draw(frozen_l2, beside=frozen_l1)

# %% [markdown]
# ## Going deeper: everything frozen (about 2 minutes)
# With every parameter frozen, nothing the loss depends on requires grad, so nothing was
# recorded: the loss has no `grad_fn`, and `backward()` raises.

# %%
net = helpers.toy_net()
net.requires_grad_(False)
loss = helpers.toy_loss(net(x), y)
try:
    loss.backward()
except RuntimeError as e:
    message = str(e).splitlines()[0]
    print(f"{type(e).__name__}: {message}")
assert loss.grad_fn is None
assert "element 0 of tensors does not require grad and does not have a grad_fn" in message

# %% [markdown]
# Following *The mechanism in code*, you meet another error first: the optimizer gets an empty
# list of trainable parameters and refuses, before any forward pass. This is the error the
# explorer shows for "freeze l1 and l2".

# %%
try:
    torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
except ValueError as e:
    message = str(e)
    print(f"{type(e).__name__}: {message}")
assert message == "optimizer got an empty parameter list"
assert helpers.run("requires_grad", frozen="both").error.message == message

# %% [markdown]
# Fix: leave something to train (a head, as in *Where it is used* below). To only
# evaluate, you need no optimizer at all: [04 · torch.no_grad](04_no_grad.ipynb) shows how to
# run a forward pass that records nothing.
#
# ## Going deeper: what freezing is not (about 3 minutes)
# **Freezing is not `torch.no_grad()`.** Freezing changes the flag of the parameters you froze.
# Any other tensor that requires grad is still tracked. Here the whole network is frozen, but
# the input requires grad (as when you ask which input features matter, a saliency map): a
# full graph is built and `backward()` fills the input's gradient.

# %%
net = helpers.toy_net()
net.requires_grad_(False)
x_in = x.clone().requires_grad_(True)
loss = helpers.toy_loss(net(x_in), y)
loss.backward()
print(f"loss.grad_fn: {type(loss.grad_fn).__name__} | x_in.grad shape: {tuple(x_in.grad.shape)}")
assert loss.grad_fn is not None and x_in.grad is not None
assert all(p.grad is None for p in net.parameters())

# %% [markdown]
# **Freezing is not `eval()`.** `requires_grad_(False)` freezes weights, not the layers'
# training behaviour: in training mode, a frozen BatchNorm still updates its running
# statistics when it runs forward.

# %%
torch.manual_seed(0)
backbone = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
backbone.requires_grad_(False)
mean_before = backbone[1].running_mean.tolist()
var_before = backbone[1].running_var.tolist()
backbone(x)
changed = backbone[1].running_mean.tolist() != mean_before
print(f"frozen, training mode: running_mean changed: {changed}")
assert changed and backbone[1].running_var.tolist() != var_before

# %% [markdown]
# Fix: put the frozen part in evaluation mode too, and again after every `model.train()`,
# which switches every submodule back to training mode. How `eval()` and `no_grad()` differ
# is [04 · torch.no_grad](04_no_grad.ipynb)'s topic.

# %%
backbone.eval()
mean_before = backbone[1].running_mean.tolist()
backbone(x)
changed = backbone[1].running_mean.tolist() != mean_before
print(f"frozen, eval mode: running_mean changed: {changed}")
assert not changed
backbone.train()                                # model.train() reaches every submodule,
assert all(m.training for m in backbone.modules())  # so BatchNorm is back in training mode

# %% [markdown]
# ## Going deeper: freezing in the middle of training (about 3 minutes)
# Freezing does not clear a gradient the parameter already has. Here `l1` trains for one step
# with momentum, then is frozen. `zero_grad(set_to_none=False)` leaves its grad a tensor of
# zeros instead of `None`, so SGD does not skip it: momentum keeps moving the "frozen" layer.

# %%
def train_then_freeze_l1(set_to_none, only_trainable):
    """One step on everything, freeze l1, one more step. Did l1 move in the second step?"""
    net = helpers.toy_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
    net.l1.requires_grad_(False)                # freeze l1 from now on
    assert net.l1.weight.grad is not None       # freezing kept the old gradient
    if only_trainable:                          # a fresh optimizer with what still trains
        optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad],
                                    lr=0.1, momentum=0.9)
    optimizer.zero_grad(set_to_none=set_to_none)
    if not only_trainable:                      # zero_grad reached l1: None, or zeros
        assert net.l1.weight.grad is None if set_to_none else not net.l1.weight.grad.any()
    frozen_at = net.l1.weight.tolist()
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
    return net.l1.weight.tolist() != frozen_at


moved = train_then_freeze_l1(set_to_none=False, only_trainable=False)
print(f"frozen l1 moved: {moved}")
assert moved

# %% [markdown]
# Fix: keep frozen grads `None` (the default `zero_grad()` does; enough for SGD here), or
# better, give the optimizer only the parameters that train. Which optimizers move a parameter
# whose grad is `None` or zeros: [06 · Optimizer parameter subsets](06_optimizer_subsets.ipynb).

# %%
moved_none_grads = train_then_freeze_l1(set_to_none=True, only_trainable=False)
moved_trainable_only = train_then_freeze_l1(set_to_none=False, only_trainable=True)
print(f"moved with zero_grad(): {moved_none_grads} | "
      f"moved with only trainable params: {moved_trainable_only}")
assert not moved_none_grads and not moved_trainable_only

# %% [markdown]
# ## Going deeper: two more pitfalls (about 2 minutes)
# **`model.requires_grad = False` freezes nothing.** On a module, `requires_grad` without the
# underscore and parentheses is just a new Python attribute: no error, no effect. Call the
# method.

# %%
wrong, right = helpers.toy_net(), helpers.toy_net()
wrong.requires_grad = False                     # wrong: sets an unused attribute
right.requires_grad_(False)                     # right: the method, on every parameter
print(f"attribute: {[p.requires_grad for p in wrong.parameters()]}")
print(f"method:    {[p.requires_grad for p in right.parameters()]}")
assert all(p.requires_grad for p in wrong.parameters())
assert not any(p.requires_grad for p in right.parameters())

# %% [markdown]
# **An intermediate result cannot be frozen.** Only leaf tensors (see
# [00 · Start here](00_start_here.ipynb)) have a flag you can switch off; an activation computed
# from trainable weights refuses. To stop gradients at such a tensor, cut the graph there
# instead: [03 · detach](03_detach.ipynb).

# %%
net = helpers.toy_net()
hidden = torch.relu(net.l1(x))
try:
    hidden.requires_grad_(False)
except RuntimeError as e:
    message = str(e).splitlines()[0]
    print(f"{type(e).__name__}: {message}")
assert not hidden.is_leaf
assert "you can only change requires_grad flags of leaf variables" in message

# %% [markdown]
# ## Going deeper: where it is used (about 2 minutes)
# **Transfer learning.** A pretrained network (the *backbone*) is frozen and kept in evaluation
# mode; only a new *head* trains. Here `l1` plays the backbone and `l2` the head.

# %%
net = helpers.toy_net()
net.l1.requires_grad_(False)                    # freeze the backbone
net.l1.eval()                                   # and its Dropout/BatchNorm, if it had any
optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
backbone_start = net.l1.weight.tolist()
losses = []
for _ in range(30):
    optimizer.zero_grad()
    loss = helpers.toy_loss(net(x), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print(f"loss: {losses[0]:.4f} -> {losses[-1]:.4f}")
assert losses[-1] < losses[0]
assert net.l1.weight.tolist() == backbone_start

# %% [markdown]
# A common second stage unfreezes the backbone and adds it to the optimizer with a smaller
# learning rate (`add_param_group`), so it fine-tunes gently.

# %%
net.l1.requires_grad_(True)
net.l1.train()
optimizer.add_param_group({"params": net.l1.parameters(), "lr": 0.01})
optimizer.zero_grad()
helpers.toy_loss(net(x), y).backward()
optimizer.step()
moved = net.l1.weight.tolist() != backbone_start
print(f"backbone moved: {moved}")
assert moved

# %% [markdown]
# ## Going deeper: exercises (about 10 minutes)
# **02.1** Freeze a single tensor instead of a layer: `net.l1.weight.requires_grad_(False)` on
# a fresh toy network, then `backward()`. Which parameters have `.grad` equal to `None`?
# Answer with a set of names.

# %%
answer = ...  # e.g. {"l2.bias"}
helpers.check("02.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# Only `l1.weight`: freezing works per tensor. `l1`'s operation is still recorded because
# `l1.bias` requires grad, so the other three parameters all get gradients.
# </details>
#
# **02.2** Why is `l2.bias.grad` `None` after this step, although `l2.bias` requires grad when
# `backward()` runs?
#
# ```python
# net = helpers.toy_net()
# net.l2.bias.requires_grad_(False)
# loss = helpers.toy_loss(net(x), y)
# net.l2.bias.requires_grad_(True)        # unfrozen again before backward()
# loss.backward()
# ```
#
# - **a** The forward pass ran while `l2.bias` was frozen, so the graph it recorded has no
#   node that writes into `l2.bias.grad`; unfreezing later does not add one.
# - **b** `backward()` skips a parameter that was frozen at any time during the step.
# - **c** `requires_grad_(True)` resets `.grad` to `None`.
#
# Answer with a letter; run the code (and variations of it) to test your choice.

# %%
answer = ...  # "a", "b" or "c"
helpers.check("02.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# **a**. The flag matters when the operation is recorded. Unfreeze *before* the forward pass
# and `l2.bias` gets its gradient (so **b** is false), and `requires_grad_` leaves `.grad` as
# it is (so **c** is false).
# </details>
#
# **02.3** Freeze `l1` (the "backbone"). How many numbers does the network still train, that
# is `sum(p.numel() for p in net.parameters() if p.requires_grad)`? Answer with an integer.

# %%
answer = ...  # e.g. 19
helpers.check("02.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `4`: `l2.weight` has 1 x 3 numbers and `l2.bias` 1. Printing this count after freezing is a
# quick check that you froze what you meant to.
# </details>
#
# ## Further reading
# - [`torch.Tensor.requires_grad_`](https://pytorch.org/docs/stable/generated/torch.Tensor.requires_grad_.html)
# - [`torch.nn.Module.requires_grad_`](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.requires_grad_)
# - [Autograd mechanics: locally disabling gradient computation](https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation)
# - [`torch.optim.Optimizer.add_param_group`](https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.add_param_group.html)
# - [Transfer learning tutorial](https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html)
#
# [Next: 03 · detach](03_detach.ipynb)
