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
# # 03 · detach: cutting the graph
#
# `t.detach()` gives you the same numbers without their history: `backward()` stops there, so
# what was computed before the cut gets no gradient through it, only along other paths to the
# loss.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/03_detach.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/03_detach.ipynb)

# %% [markdown]
# **What you will learn**
# - which gradients come back `None` when you cut the graph after L1 or after L2, and why;
# - that `detach()` is not a copy: it shares storage and the version counter with the original;
# - `detach().clone()` for a real copy, `.detach().numpy()`, and why `.data` is a trap;
# - where `detach()` is the right tool: targets built from model outputs, truncated
#   backpropagation through time, GANs and actor-critic.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb) (reading the graph and the gradient
# table). [02 · requires_grad_(False)](02_requires_grad.ipynb) helps: an operation is recorded
# only if one of its inputs requires grad.
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
# The same `L1 -> ReLU -> L2` network as in every notebook, with the same batch of 8 examples
# and a mean-squared-error loss. Here is the graph of the plain training step.

# %%
x, y = helpers.toy_batch()
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# This time the forward pass detaches L1's output before the ReLU:
#
# ```python
# out = net.l2(torch.relu(net.l1(x).detach()))
# ```
#
# After `backward()`, which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` will have `.grad`
# equal to `None`? Decide before you scroll on. With a live kernel, tick your answer and press
# the button.

# %%
helpers.predict("detach", cut="l1",
                why="backward() walks the graph from the loss and stops at the detached "
                    "tensor, so it never reaches L1: l1.weight and l1.bias keep .grad None. "
                    "L2 comes after the cut and gets its gradient as usual.")

# %% [markdown]
# ## The mechanism in code
# One call in the forward pass. The rest of the loop body is unchanged.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

optimizer.zero_grad()
hidden = net.l1(x).detach()          # same numbers, no history: the graph is cut here
out = net.l2(torch.relu(hidden))
loss = helpers.toy_loss(out, y)
loss.backward()                      # stops at the cut: nothing reaches L1
optimizer.step()                     # SGD skips parameters whose .grad is None

print({name: None if p.grad is None else "values" for name, p in net.named_parameters()})

# %%
assert net.l1.weight.grad is None and net.l1.bias.grad is None
assert net.l2.weight.grad is not None and net.l2.bias.grad is not None

# %% [markdown]
# ## Explorer
# The one control says where the forward pass calls `.detach()`: nowhere, after L1 (before the
# ReLU), or after L2 (on the network's output). Each choice redraws the gradient table and the
# graph, beside the plain step's graph. With a live kernel, click and watch.
#
# There is no "after the ReLU" choice: cutting just after the ReLU gives exactly the same
# gradients as cutting just before it (shown below).

# %%
helpers.explore("detach")

# %% [markdown]
# ## Truth table
# Every choice at once, readable without a kernel. `*` marks a parameter the step changed.

# %%
helpers.truth_table("detach")

# %% [markdown]
# ## What happened and why
# **In this chain, layers before the cut get no gradient; layers after it get exactly the
# gradient they get without a cut.** The forward values are the same numbers either way, and
# `backward()` runs the same path from the loss down to the cut. (A layer before the cut that
# also reaches the loss another way still gets a gradient along that way: see the bootstrapped
# target below.)

# %%
cut_l1 = helpers.run("detach", cut="l1")
assert cut_l1.grads_none() == ["l1.weight", "l1.bias"]
for name in ["l2.weight", "l2.bias"]:
    assert torch.equal(cut_l1.tensors[name].grad, control.tensors[name].grad)
helpers.grad_table(cut_l1)

# %% [markdown]
# **The graph is pruned, and the ReLU is gone with L1.** The ReLU's only input is the detached
# tensor, which does not require grad, so the ReLU was not recorded at all. L1's parameters are
# drawn as "not in graph".

# %%
graph = helpers.draw(cut_l1, beside=control)
outline = repr(helpers.draw(cut_l1))
assert "ReluBackward0" not in outline
assert "l1.weight (3, 4) grad: None (not in graph)" in outline
graph

# %% [markdown]
# **A detached tensor has no history.** It holds the same values, does not require grad, has
# no `grad_fn`, and counts as a leaf.

# %%
h = net.l1(x)
d = h.detach()
print("h:", h.requires_grad, type(h.grad_fn).__name__)
print("d:", d.requires_grad, d.grad_fn, d.is_leaf)
assert torch.equal(d, h)
assert h.grad_fn is not None and d.grad_fn is None
assert not d.requires_grad and d.is_leaf

# %% [markdown]
# **Myth: "`detach()` copies the tensor".** It does not. Many tutorials say it does; PyTorch's
# own docs say the result shares storage with the original. Both tensors point at the same
# memory, so an in-place edit of one changes the other.

# %%
h = net.l1(x)
d = h.detach()
print("same memory:", d.data_ptr() == h.data_ptr())
assert d.data_ptr() == h.data_ptr()

d[0, 0] = 100.0                      # edit the detached tensor in place ...
print("h[0, 0] is now", h[0, 0].item())
assert h[0, 0].item() == 100.0       # ... and the original changed too

# %% [markdown]
# They share more than memory: they share the **version counter**, the number autograd bumps on
# every in-place edit. Autograd uses it to notice that a tensor it saved for backward has
# changed since (the pitfall below).

# %%
h = net.l1(x)
d = h.detach()
print("versions before:", h._version, d._version)
d.mul_(2)
print("versions after: ", h._version, d._version)
assert h._version == d._version == 1

# %% [markdown]
# **`detach().clone()` is a copy.** New memory, its own version counter: editing it leaves the
# original alone.

# %%
h = net.l1(x)
c = h.detach().clone()
print("same memory:", c.data_ptr() == h.data_ptr())
c[0, 0] = 100.0
assert c.data_ptr() != h.data_ptr()
assert h[0, 0].item() != 100.0 and h._version == 0
assert not c.requires_grad and c.grad_fn is None

# %% [markdown]
# **Cutting just after the ReLU is the same as cutting just before it.** The gradients are
# equal, because nothing between the two cut points has parameters. That is why the explorer
# has no "after ReLU" choice.

# %%
grads = {}
for where in ["before relu", "after relu"]:
    net = helpers.toy_net()
    if where == "before relu":
        out = net.l2(torch.relu(net.l1(x).detach()))
    else:
        out = net.l2(torch.relu(net.l1(x)).detach())
    helpers.toy_loss(out, y).backward()
    grads[where] = [p.grad for p in net.parameters()]
before, after = grads["before relu"], grads["after relu"]
assert before[0] is None and after[0] is None and before[1] is None and after[1] is None
assert torch.equal(before[2], after[2]) and torch.equal(before[3], after[3])

# %% [markdown]
# **Cutting after L2 leaves nothing to differentiate.** The loss depends only on the detached
# output, which does not require grad, so `backward()` raises. The registry catches the error
# and explains it. This is what happens when you detach the prediction instead of the target.

# %%
cut_l2 = helpers.run("detach", cut="l2")
print(cut_l2.error)
assert cut_l2.error.kind == "RuntimeError"
assert "does not require grad and does not have a grad_fn" in cut_l2.error.message
assert cut_l2.grads_none() == list(helpers.PARAM_NAMES)
assert not any(p.changed for p in cut_l2.params.values())

# %% [markdown]
# The forward pass did record L1, the ReLU and L2, but that graph ends at the detached output.
# The loss is not connected to it: its graph is the loss alone.

# %%
assert cut_l2.loss.grad_fn is None and not cut_l2.loss.requires_grad
helpers.draw(cut_l2, beside=control)

# %% [markdown]
# **Myth: "`no_grad()` is cheaper than `detach()` because `detach()` copies".** `detach()`
# copies nothing (shown above). The real difference is *when* you stop autograd. Detaching the
# output *after* the forward pass comes too late: autograd already recorded the graph and kept
# tensors saved for backward. Under `torch.no_grad()` it saves nothing. We count the bytes
# autograd saved for backward during each forward pass, not counting the weights (they exist
# anyway).

# %%
net = helpers.toy_net()


def forward_then_detach():
    return net(x).detach()


def forward_under_no_grad():
    with torch.no_grad():
        return net(x)


detached_bytes = helpers.costs.saved_tensor_bytes(forward_then_detach, exclude=net)
no_grad_bytes = helpers.costs.saved_tensor_bytes(forward_under_no_grad, exclude=net)
print("saved for backward, forward then detach():", detached_bytes, "bytes")
print("saved for backward, forward under no_grad():", no_grad_bytes, "bytes")
assert detached_bytes > 0 and no_grad_bytes == 0
assert net(x).grad_fn is not None    # the forward pass recorded a graph before detach()
assert torch.equal(forward_then_detach(), forward_under_no_grad())

# %% [markdown]
# Notebook 04 is about `torch.no_grad()`; it measures this saving on a larger network too.
#
# **`.detach().numpy()` shares memory too.** The NumPy array is a view of the tensor's memory.

# %%
t = torch.zeros(3, requires_grad=True)
a = t.detach().numpy()
print("same memory:", a.__array_interface__["data"][0] == t.data_ptr())
a[0] = 7.0
print("t[0] is now", t[0].item())
assert a.__array_interface__["data"][0] == t.data_ptr()
assert t[0].item() == 7.0

# %% [markdown]
# ## Pitfalls
# ### An in-place edit of a detached tensor breaks a later backward
# You detach the hidden activations to log them, and centre them in place. Because the detached
# tensor shares memory and version counter with the ReLU's output, which autograd saved for
# backward, `backward()` then refuses to run.

# %%
net = helpers.toy_net()
activations = torch.relu(net.l1(x))
loss = helpers.toy_loss(net.l2(activations), y)

logged = activations.detach()
logged -= logged.mean()              # in place: also changes `activations`

try:
    loss.backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "modified by an inplace operation" in str(e)
    assert "is at version 1; expected version 0" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# **Fix:** take a real copy with `detach().clone()` (or write `logged = logged - logged.mean()`,
# which makes a new tensor). Now `backward()` runs and the gradients are the plain step's.

# %%
net = helpers.toy_net()
activations = torch.relu(net.l1(x))
loss = helpers.toy_loss(net.l2(activations), y)

logged = activations.detach().clone()
logged -= logged.mean()              # edits the copy only
other = activations.detach()
other = other - other.mean()         # the other fix: a new tensor, no in-place edit
assert activations._version == 0     # neither fix touched the saved activations

loss.backward()
for name, p in net.named_parameters():
    assert torch.equal(p.grad, control.tensors[name].grad)

# %% [markdown]
# ### `.data`: the same edit, a silently wrong gradient
# Old code uses `.data` where new code uses `detach()`. `.data` also shares memory, but it
# escapes the version check. The same edit now raises nothing, and `backward()` returns a wrong
# gradient: L2's weight gradient is computed from the edited activations.

# %%
net = helpers.toy_net()
activations = torch.relu(net.l1(x))
loss = helpers.toy_loss(net.l2(activations), y)

logged = activations.data            # no version check
logged -= logged.mean()

loss.backward()                      # no error ...
wrong = net.l2.weight.grad
right = control.tensors["l2.weight"].grad
print("with .data:", wrong)
print("correct:   ", right)
assert not torch.allclose(wrong, right)  # ... and a wrong gradient

# %% [markdown]
# **Fix:** use `detach()`, which would have raised the error above instead of training on a
# wrong gradient, and `detach().clone()` when you want to edit the values.
#
# ### `.numpy()` on a tensor that requires grad

# %%
w = helpers.toy_net().l1.weight
try:
    w.numpy()
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "Can't call numpy() on Tensor that requires grad" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# **Fix:** `w.detach().numpy()`, as the message says. Remember that it shares memory with `w`;
# add `.copy()` if you will change the array.

# %%
array = w.detach().numpy()
assert array.shape == (3, 4)
assert array.__array_interface__["data"][0] == w.data_ptr()

# %% [markdown]
# ## Where it is used
# ### Targets built from the model's own output
# Bootstrapped targets (Q-learning, self-distillation) are computed by the network being
# trained. Detach them, so the loss moves the prediction towards the target and not the other
# way round.
#
# Here every layer of the network was computed before the cut, yet every parameter gets a
# gradient: through the prediction `net(x)`, the path without a cut. The gradient is exactly
# the one a constant target would give: `detach()` stopped one path, not the layers on it.

# %%
net = helpers.toy_net()
next_x = x.flip(0)                   # stand-in for the next states
reward, gamma = y, 0.9

target = reward + gamma * net(next_x).detach()
loss = helpers.toy_loss(net(x), target)
loss.backward()
print({name: None if p.grad is None else "values" for name, p in net.named_parameters()})
assert not target.requires_grad
assert all(p.grad is not None for p in net.parameters())

constant = torch.tensor(target.tolist())          # the same numbers, never part of a graph
reference = helpers.toy_net()
helpers.toy_loss(reference(x), constant).backward()
for p, q in zip(net.parameters(), reference.parameters()):
    assert torch.equal(p.grad, q.grad)

# %% [markdown]
# ### Truncated backpropagation through time
# A recurrent network carries its hidden state across a long sequence. Detaching the state at
# the start of each chunk stops `backward()` at the chunk's edge, and each chunk's graph is
# freed after its backward.

# %%
torch.manual_seed(0)
cell = torch.nn.RNNCell(4, 3)
sequence = torch.randn(12, 1, 4)


def train_in_chunks(detach, chunk=4):
    h = torch.zeros(1, 3)
    for start in range(0, len(sequence), chunk):
        if detach:
            h = h.detach()           # the cut: the next backward stops here
        loss = 0
        for step in range(start, start + chunk):
            h = cell(sequence[step], h)
            loss = loss + h.pow(2).mean()
        loss.backward()


train_in_chunks(detach=True)         # runs

try:
    train_in_chunks(detach=False)
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0][:60], "...")
    assert "Trying to backward through the graph a second time" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Without the cut, the second chunk's graph reaches back into the first chunk, whose saved
# tensors the first `backward()` already freed.
#
# ### Feeding one network's output to another: GAN and actor-critic
# When the discriminator trains on the generator's output, detach it: the discriminator's loss
# must not put gradients into the generator. The same holds for a critic trained on the action
# an actor has just produced.

# %%
torch.manual_seed(0)
generator = torch.nn.Linear(2, 4)
discriminator = torch.nn.Linear(4, 1)
bce = torch.nn.BCEWithLogitsLoss()

fake = generator(torch.randn(8, 2))
d_loss = bce(discriminator(fake.detach()), torch.zeros(8, 1))  # discriminator step
d_loss.backward()
assert all(p.grad is None for p in generator.parameters())      # generator untouched
assert all(p.grad is not None for p in discriminator.parameters())

d_loss = bce(discriminator(fake), torch.zeros(8, 1))            # forgot detach()
d_loss.backward()
assert all(p.grad is not None for p in generator.parameters())  # leaked into the generator

# %% [markdown]
# In an on-policy actor-critic, whose critic learns from the action the actor has just
# produced, the critic's loss leaks into the actor in the same way unless the action is
# detached. (DDPG's critic learns from a replay buffer's actions, which carry no history;
# notebook 09 shows its step and its own classic mistake.)

# %%
torch.manual_seed(0)
actor = torch.nn.Linear(4, 2)
critic = torch.nn.Linear(4 + 2, 1)
states, returns = torch.randn(8, 4), torch.randn(8, 1)

action = actor(states)
critic_loss = torch.nn.functional.mse_loss(critic(torch.cat([states, action], 1)), returns)
critic_loss.backward()
assert all(p.grad is not None for p in actor.parameters())      # leaked into the actor

actor.zero_grad()
critic.zero_grad()
critic_loss = torch.nn.functional.mse_loss(
    critic(torch.cat([states, action.detach()], 1)), returns)
critic_loss.backward()
assert all(p.grad is None for p in actor.parameters())          # with detach(): none

# %% [markdown]
# ## Exercises
# **03.1** Two paths from L1, one of them cut. On a fresh network (`helpers.toy_net()`):
#
# ```python
# h = torch.relu(net.l1(x))
# helpers.toy_loss(net.l2(h + h.detach()), y).backward()
# ```
#
# Which parameters have `.grad` equal to `None`? Answer with a set of names (possibly empty).

# %%
answer = ...  # e.g. {"l2.bias"}
helpers.check("03.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `set()`: none. Backward stops at `h.detach()`, but the other path, through `h`, still reaches
# L1, so L1 gets a gradient along it, as in the bootstrapped target above.
# </details>
#
# **03.2** A bootstrapped target: the toy network should move `net(x)` towards
# `y + 0.5 * net(x)`, with the target held fixed. Write the loss on a fresh network
# (`helpers.toy_net()`), call `backward()`, and answer with `net.l2.bias.grad`.

# %%
answer = ...  # e.g. net.l2.bias.grad
helpers.check("03.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# net = helpers.toy_net()
# target = y + 0.5 * net(x).detach()
# helpers.toy_loss(net(x), target).backward()
# answer = net.l2.bias.grad
# ```
# Without `.detach()` the gradient also flows through the target, and the answer is half as big.
# </details>
#
# **03.3** The `.data` trap on a single tensor. Predict `w.grad` first, then run it to check:
#
# ```python
# w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
# loss = (w * w).sum()
# w.data.mul_(10)
# loss.backward()
# ```
#
# Answer with a tensor.

# %%
answer = ...  # e.g. torch.tensor([0.0, 0.0, 0.0])
helpers.check("03.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `torch.tensor([20.0, 40.0, 60.0])`. The true gradient of the loss at the `w` it was computed
# with is `2 * w = [2, 4, 6]`. `w * w` saved `w` for backward, `.data` changed it to `[10, 20,
# 30]` without bumping the version counter, and backward used the new values: ten times too
# big, and no error. With `w.detach().mul_(10)` backward raises instead.
# </details>

# %% [markdown]
# ## Recap
# - `detach()` cuts one path of the graph: in a chain, layers before the cut get `.grad`
#   `None` (a layer that reaches the loss another way still gets a gradient); cut after the last
#   layer and `backward()` has nothing to run through.
# - `detach()` is not a copy: it shares memory and the version counter. Use `detach().clone()`
#   for a copy; avoid `.data`, which can give wrong gradients silently.
# - Detach targets, carried RNN states, and one network's output fed to another; to skip the
#   graph for a whole forward pass, use `torch.no_grad()` instead.
#
# ## Further reading
# - [`torch.Tensor.detach`](https://pytorch.org/docs/stable/generated/torch.Tensor.detach.html)
# - [Autograd mechanics: in-place operations and locally disabling gradients](https://pytorch.org/docs/stable/notes/autograd.html)
# - [`torch.Tensor.clone`](https://pytorch.org/docs/stable/generated/torch.Tensor.clone.html)
# - [`torch.Tensor.numpy`](https://pytorch.org/docs/stable/generated/torch.Tensor.numpy.html)
# - [DCGAN tutorial (uses `fake.detach()`)](https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html)
#
# [Next: 04 · torch.no_grad](04_no_grad.ipynb)
