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
# `t.detach()` gives you the same numbers without their history, so `backward()` stops there.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/03_detach.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/03_detach.ipynb)

# %% [markdown]
# **What you will learn**
# - which gradients come back `None` when you cut the graph after L1 or after L2, and why;
# - that a cut stops one path, not the layers before it, and leaves the original graph working;
# - in Going deeper: `detach()` is not a copy (`detach().clone()` is), why `.data` is a trap,
#   and where `detach()` is the right tool.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb) (the graph and the gradient table).
# [02 · requires_grad_(False)](02_requires_grad.ipynb) helps: an operation is recorded only if
# one of its inputs requires grad.
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
# one plain training step.

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
# equal to `None`? Decide, then tick your answer and press the button.

# %%
helpers.predict("detach", cut="l1")

# %% [markdown]
# ## The mechanism in code
# One call in the forward pass; the rest of the loop body is unchanged.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
l1_before = net.l1.weight.tolist() + net.l1.bias.tolist()

optimizer.zero_grad()
hidden = net.l1(x).detach()          # same numbers, no history: the graph is cut here
out = net.l2(torch.relu(hidden))
loss = helpers.toy_loss(out, y)
loss.backward()                      # stops at the cut
optimizer.step()                     # SGD skips parameters whose .grad is None

print({name: None if p.grad is None else "values" for name, p in net.named_parameters()})
assert net.l1.weight.grad is None and net.l1.bias.grad is None
assert net.l2.weight.grad is not None and net.l2.bias.grad is not None
assert net.l1.weight.tolist() + net.l1.bias.tolist() == l1_before   # the step skipped L1

# %% [markdown]
# ## Explorer
# Choose where the forward pass calls `.detach()`: nowhere, after L1 (before the ReLU), or
# after L2 (on the network's output). The gradient table and the graph, beside the plain
# step's, follow.

# %%
helpers.explore("detach")

# %% [markdown]
# ## Why
# `backward()` walks back from the loss along the recorded operations. A detached tensor has
# no `grad_fn`, so the walk stops there. In this chain L1 reaches the loss only through the
# cut, so L1's `.grad` stays `None`, while L2, after the cut, gets exactly its plain-step
# gradient. The cut does not touch the original tensor's history: it keeps its `grad_fn`, and
# a backward through it still reaches L1.

# %%
net = helpers.toy_net()
h = net.l1(x)
d = h.detach()                                          # same values, no history
helpers.toy_loss(net.l2(torch.relu(d)), y).backward()
print(f"d.grad_fn: {d.grad_fn} | after backward through d, l1.bias.grad: {net.l1.bias.grad}")
assert net.l1.weight.grad is None and net.l1.bias.grad is None
h.sum().backward()                                      # the original graph still works
print(f"h.grad_fn: {type(h.grad_fn).__name__} | after h.sum().backward(), "
      f"l1.bias.grad: {net.l1.bias.grad}")
assert torch.equal(d, h) and d.grad_fn is None and not d.requires_grad
assert all(torch.equal(net.get_parameter(n).grad, control.tensors[n].grad)
           for n in ["l2.weight", "l2.bias"])                # L2: the plain-step gradient
assert torch.equal(net.l1.bias.grad, torch.full((3,), 8.0))   # one per example of the batch

# %% [markdown]
# `h.sum()` adds `l1.bias` once per example, so its gradient is the batch size, 8, for each of
# the three units: check it by hand.
#
# ## Recap
# - `t.detach()` returns the same values without history: `backward()` stops there, and a
#   layer whose only path to the loss runs through the cut keeps `.grad` `None`.
# - A cut stops one path, not the layers before it: another path to the loss still brings a
#   gradient, and the original tensor keeps its graph.
# - Cut after the last layer and the loss has no graph: `backward()` raises.
#
# [Next: 04 · torch.no_grad](04_no_grad.ipynb) stops recording altogether.

# %% [markdown]
# ## Going deeper: what the cut leaves out (about 3 minutes)
# **Cut after L1.** L1's operation was recorded, but the loss cannot reach it: the drawing
# shows it cut off. The ReLU's only input is the detached tensor, which does not require grad,
# so the ReLU was not recorded at all.

# %%
cut_l1 = helpers.run("detach", cut="l1")
assert cut_l1.grads_none() == ["l1.weight", "l1.bias"]
assert torch.relu(d).grad_fn is None and h.grad_fn is not None
helpers.draw(cut_l1, beside=control)

# %% [markdown]
# **Cut after L2.** The loss depends only on the detached output, which does not require grad,
# so `backward()` raises: this is what happens when you detach the prediction instead of the
# target. The forward pass did record L1, the ReLU and L2, but the loss is not connected to
# them.

# %%
cut_l2 = helpers.run("detach", cut="l2")
print(cut_l2.error)
assert cut_l2.error.kind == "RuntimeError"
assert "does not require grad and does not have a grad_fn" in cut_l2.error.message
assert cut_l2.grads_none() == list(helpers.PARAM_NAMES)
assert cut_l2.loss.grad_fn is None and not any(p.changed for p in cut_l2.params.values())
out = helpers.toy_net()(x)
assert out.grad_fn is not None and out.detach().grad_fn is None   # recorded, then cut off
helpers.draw(cut_l2, beside=control)

# %% [markdown]
# ## Going deeper: `detach()` does not copy (about 5 minutes)
# "A new tensor" is easy to read as "a copy", but PyTorch's own docs say the result shares
# storage with the original. Both tensors point at the same memory, so an in-place edit of one
# changes the other.

# %%
net = helpers.toy_net()
h = net.l1(x)
d = h.detach()
print("same memory:", d.data_ptr() == h.data_ptr())
d[0, 0] = 100.0                      # edit the detached tensor in place ...
print("h[0, 0] is now", h[0, 0].item())
assert d.data_ptr() == h.data_ptr()
assert h[0, 0].item() == 100.0       # ... and the original changed too

# %% [markdown]
# They also share the **version counter**, a number that an in-place operation on either
# tensor bumps. Autograd uses it to notice that a tensor it saved for backward has changed
# since (the pitfall below).

# %%
h = net.l1(x)
d = h.detach()
print("versions before:", h._version, d._version)
d.mul_(2)
print("versions after: ", h._version, d._version)
assert h._version == d._version == 1

# %% [markdown]
# **`detach().clone()` is a copy**: new memory and its own version counter, so editing it
# leaves the original alone. `.detach().numpy()`, on the other hand, shares memory too: the
# NumPy array is a view of the tensor's memory (add `.copy()` if you will change it).

# %%
h = net.l1(x)
c = h.detach().clone()
c[0, 0] = 100.0
a = h.detach().numpy()
print("clone, same memory:", c.data_ptr() == h.data_ptr(),
      "| numpy, same memory:", a.__array_interface__["data"][0] == h.data_ptr())
assert c.data_ptr() != h.data_ptr() and h[0, 0].item() != 100.0 and h._version == 0
assert not c.requires_grad and c.grad_fn is None
assert a.__array_interface__["data"][0] == h.data_ptr()

# %% [markdown]
# `.numpy()` alone refuses a tensor that requires grad, and the message names the fix:

# %%
try:
    net.l1.weight.numpy()
except RuntimeError as e:
    message = str(e).splitlines()[0]
    print(f"{type(e).__name__}: {message}")
assert "Can't call numpy() on Tensor that requires grad" in message

# %% [markdown]
# So `torch.no_grad()` does not save memory by avoiding a copy: what a late `detach()` cannot
# undo is the graph the forward pass already recorded. [04 · torch.no_grad](04_no_grad.ipynb)
# measures that.
#
# ## Going deeper: in-place edits and the `.data` trap (about 5 minutes)
# You detach the hidden activations to log them, and centre them in place. The detached
# tensor shares memory and version counter with the ReLU's output, which autograd saved for
# backward, so `backward()` refuses to run.

# %%
net = helpers.toy_net()
activations = torch.relu(net.l1(x))
loss = helpers.toy_loss(net.l2(activations), y)

logged = activations.detach()
logged -= logged.mean()              # in place: also changes `activations`

try:
    loss.backward()
except RuntimeError as e:
    message = str(e)
    print(type(e).__name__ + ":", message.splitlines()[0])
assert "modified by an inplace operation" in message
assert "is at version 1; expected version 0" in message

# %% [markdown]
# **Fix:** take a real copy with `detach().clone()`, or write `logged = logged - logged.mean()`,
# which makes a new tensor. Now `backward()` runs and the gradients are the plain step's.

# %%
net = helpers.toy_net()
activations = torch.relu(net.l1(x))
loss = helpers.toy_loss(net.l2(activations), y)

logged = activations.detach().clone()
logged -= logged.mean()              # edits the copy only
other = activations.detach()
other = other - other.mean()         # the other fix: a new tensor, no in-place edit

loss.backward()
same = all(torch.equal(p.grad, control.tensors[n].grad) for n, p in net.named_parameters())
print(f"activations untouched: {activations._version == 0} | plain-step gradients: {same}")
assert activations._version == 0 and same

# %% [markdown]
# **`.data`: the same edit, a silently wrong gradient.** Old code uses `.data` where new code
# uses `detach()`. `.data` also shares memory, but it escapes the version check: the same edit
# raises nothing, and `backward()` computes L2's weight gradient from the edited activations.

# %%
net = helpers.toy_net()
activations = torch.relu(net.l1(x))
out = net.l2(activations)
loss = helpers.toy_loss(out, y)

logged = activations.data            # no version check
logged -= logged.mean()

loss.backward()                      # no error ...
wrong = net.l2.weight.grad
right = control.tensors["l2.weight"].grad
print("with .data:", wrong)
print("correct:   ", right)
assert not torch.allclose(wrong, right)  # ... and a wrong gradient
from_edited = 2 * (out - y).T @ activations / len(y)   # MSE's rule, with the edited values
assert torch.allclose(wrong, from_edited)

# %% [markdown]
# **Fix:** use `detach()`, which raises the error above instead of training on a wrong
# gradient, and `detach().clone()` when you want to edit the values.
#
# ## Going deeper: where it is used (about 5 minutes)
# **Targets built from the model's own output.** Bootstrapped targets (Q-learning,
# self-distillation) can come from the network being trained. Detach them, so the loss moves
# the prediction towards the target and not the other way round.
#
# Every layer was computed before the cut here, yet every parameter gets a gradient: through
# the prediction `net(x)`, the path without a cut. It is exactly the gradient a constant target
# gives: `detach()` stopped one path, not the layers on it.

# %%
net = helpers.toy_net()
next_x = x.flip(0)                   # stand-in for the next states
reward, gamma = y, 0.9

target = reward + gamma * net(next_x).detach()
loss = helpers.toy_loss(net(x), target)
loss.backward()

constant = torch.tensor(target.tolist())          # the same numbers, never part of a graph
reference = helpers.toy_net()
helpers.toy_loss(reference(x), constant).backward()
same = all(torch.equal(p.grad, q.grad) for p, q in zip(net.parameters(), reference.parameters()))
print({name: None if p.grad is None else "values" for name, p in net.named_parameters()},
      f"| same as a constant target: {same}")
assert not target.requires_grad and all(p.grad is not None for p in net.parameters())
assert same

# %% [markdown]
# **Truncated backpropagation through time.** A recurrent network carries its hidden state
# across a long sequence. Detaching the state at the start of each chunk stops `backward()` at
# the chunk's edge, and each chunk's graph is freed after its backward.

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
    message = str(e)
    print(type(e).__name__ + ":", message.splitlines()[0])
assert "Trying to backward through the graph a second time" in message

# %% [markdown]
# Without the cut, the second chunk's graph reaches back into the first chunk, whose saved
# tensors the first `backward()` already freed.
#
# **GANs.** When the discriminator trains on the generator's output, detach it: the
# discriminator's loss must not put gradients into the generator. More patterns, actor-critic
# among them: [09 · Patterns from real training code](09_patterns.ipynb).

# %%
torch.manual_seed(0)
generator = torch.nn.Linear(2, 4)
discriminator = torch.nn.Linear(4, 1)
bce = torch.nn.BCEWithLogitsLoss()

fake = generator(torch.randn(8, 2))
bce(discriminator(fake.detach()), torch.zeros(8, 1)).backward()   # discriminator step
untouched = all(p.grad is None for p in generator.parameters())
bce(discriminator(fake), torch.zeros(8, 1)).backward()            # forgot detach()
leaked = all(p.grad is not None for p in generator.parameters())
print(f"with detach(), generator grads None: {untouched} | without, leaked: {leaked}")
assert untouched and leaked
assert all(p.grad is not None for p in discriminator.parameters())

# %% [markdown]
# ## Going deeper: exercises (about 10 minutes)
# **03.1** Why is `l2.weight.grad` `None` after this step, while `l1.weight.grad` is not?
#
# ```python
# net = helpers.toy_net()
# w = net.l2.weight.detach()
# out = torch.relu(net.l1(x)) @ w.T + net.l2.bias    # L2 written out by hand
# helpers.toy_loss(out, y).backward()
# ```
#
# - **a** `detach()` made `w` a copy of the weight, and `backward()` wrote into the copy.
# - **b** A `detach()` stops the gradient of every layer before it in the network.
# - **c** `w` has no history, and `l2.weight` reaches the loss only through `w`, so
#   `backward()` stops before it.
#
# Answer with a letter; run the code to test your choice.

# %%
answer = ...  # "a", "b" or "c"
helpers.check("03.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# **c**. `w` shares memory with `l2.weight` (so **a** is false), and L1's path to the loss
# runs through the matmul's other input, without a cut: `l1.weight.grad` is L1's plain-step
# gradient (so **b** is false).
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
#
# ## Further reading
# - [`torch.Tensor.detach`](https://pytorch.org/docs/stable/generated/torch.Tensor.detach.html)
# - [Autograd mechanics: in-place operations and locally disabling gradients](https://pytorch.org/docs/stable/notes/autograd.html)
# - [`torch.Tensor.clone`](https://pytorch.org/docs/stable/generated/torch.Tensor.clone.html)
# - [`torch.Tensor.numpy`](https://pytorch.org/docs/stable/generated/torch.Tensor.numpy.html)
# - [d2l: Automatic differentiation, detaching computation](https://d2l.ai/chapter_preliminaries/autograd.html)
# - [DCGAN tutorial (uses `fake.detach()`)](https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html)
#
# [Next: 04 · torch.no_grad](04_no_grad.ipynb)
