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
# # 07 · Manual gradient edits: changing `.grad` before the step
#
# Between `loss.backward()` and `optimizer.step()` the gradients are ordinary tensors in
# `p.grad`, and the step uses whatever you leave there.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/07_manual_grad_edits.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/07_manual_grad_edits.ipynb)

# %% [markdown]
# **What you will learn**
# - where gradient edits go, and what zero, `None`, scale, clip and mask do to the step;
# - the two hooks, `Tensor.register_hook` and `register_post_accumulate_grad_hook`, and what
#   each can and cannot do;
# - what `clip_grad_norm_` returns, and which gradients it skips.
#
# **Prerequisites**: [01 · zero_grad](01_zero_grad.ipynb) (gradients accumulate) and
# [06 · Optimizer parameter subsets](06_optimizer_subsets.ipynb) (zeros are not `None`).
#
# **Time**: 10 minutes for the core; about 40 more for the "Going deeper" sections.

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

x, y = helpers.toy_batch()
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# After `backward()`, and before `step()`, this loop drops the first layer's gradients:
#
# ```python
# loss.backward()
# for p in net.l1.parameters():
#     p.grad = None
# optimizer.step()          # plain SGD: no momentum, no weight decay
# ```
#
# Which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` will have `.grad` equal to `None`
# after the step? And which will the step move? Decide, then tick your answer and press the
# button.

# %%
helpers.predict("manual_grad_edits", edit="set_none", layer="l1", how="direct")

# %% [markdown]
# ## The mechanism in code
# `backward()` fills `p.grad`; `step()` reads it. One edit of each kind, in between:

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

optimizer.zero_grad()
loss = helpers.toy_loss(net(x), y)
loss.backward()
before = {name: p.grad.clone() for name, p in net.named_parameters()}

# --- edits: .grad is filled, no parameter has moved yet ---
net.l1.weight.grad[:, 0] = 0       # mask: l1's weights on input feature 0 stay put
net.l1.bias.grad = None            # drop: step() will skip l1.bias
net.l2.weight.grad.mul_(0.5)       # scale
net.l2.bias.grad.zero_()           # zero: a tensor of zeros, not None

start = {name: p.detach().clone() for name, p in net.named_parameters()}
optimizer.step()

for name, p in net.named_parameters():
    after = "None" if p.grad is None else f"{p.grad.norm():.4f}"
    moved = (p.detach() - start[name]).norm()
    print(f"{name:10} grad norm {before[name].norm():.4f} -> {after:6}  step moved it {moved:.4f}")
assert torch.equal(net.l1.weight.grad[:, 1:], before["l1.weight"][:, 1:])
assert not net.l1.weight.grad[:, 0].any()
assert torch.equal(net.l1.weight[:, 0].detach(), start["l1.weight"][:, 0])
assert net.l1.bias.grad is None and torch.equal(net.l1.bias.detach(), start["l1.bias"])
assert torch.equal(net.l2.weight.grad, 0.5 * before["l2.weight"])
assert not net.l2.bias.grad.any() and torch.equal(net.l2.bias.detach(), start["l2.bias"])
assert not any(p.grad.requires_grad for p in net.parameters() if p.grad is not None)

# %% [markdown]
# ## Explorer
# Choose an edit, the layer it applies to, and how it is done: directly after `backward()`,
# in a `Tensor.register_hook`, or in a `register_post_accumulate_grad_hook`. The table shows
# each gradient before and after the edit and how far `optimizer.step()` (SGD, lr 0.1) moved
# the parameter. It starts at a common edit in real code: clip all the gradients.

# %%
helpers.explore("manual_grad_edits")

# %% [markdown]
# ## Why
# After a plain `backward()`, `.grad` is a tensor that does not require grad: edit it as you
# like, and `step()` reads whatever it holds. Plain SGD moves a zeroed grad by `lr * 0` and
# skips a `None` one, so both edits leave `l1` in place and `l2` takes its usual step.
# With momentum or weight decay, zeros and `None` part ways
# ([06 · Optimizer parameter subsets](06_optimizer_subsets.ipynb)).

# %%
zeroed = helpers.run("manual_grad_edits", edit="zero", layer="l1", how="direct")
dropped = helpers.run("manual_grad_edits", edit="set_none", layer="l1", how="direct")
for name in helpers.PARAM_NAMES:
    print(f"{name:10} zero_(): grad {zeroed.params[name].grad:6} moved "
          f"{zeroed.params[name].changed!s:5} | = None: grad {dropped.params[name].grad:6} "
          f"moved {dropped.params[name].changed}")
for name in ("l1.weight", "l1.bias"):
    assert zeroed.params[name].grad == "zeros" and not zeroed.params[name].changed
    assert dropped.params[name].grad == "None" and not dropped.params[name].changed
for name in ("l2.weight", "l2.bias"):
    assert zeroed.params[name].changed and dropped.params[name].changed

# %% [markdown]
# ## Recap
# - Edits go between `backward()` and `step()`, and the step uses whatever `.grad` holds:
#   plain SGD moves zeros by nothing and skips `None`.
# - `register_hook` replaces the incoming gradient (returning `None` keeps it);
#   `register_post_accumulate_grad_hook` edits `.grad` after it is updated and must return
#   `None`.
# - `clip_grad_norm_` scales all the gradients together, skips `None`, and returns the norm
#   before clipping.
#
# [Next: 08 · Compare them all](08_compare_all.ipynb)

# %% [markdown]
# ## Going deeper: clipping (about 5 minutes)
# Clipping rescales all the gradients together so that their combined norm is at most
# `max_norm`. It returns the norm it measured, *before* clipping:

# %%
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()

total = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.25)
after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters()]))
print(f"norm before clipping (returned): {total:.4f}   after: {after:.4f}")
unclipped = torch.linalg.vector_norm(torch.cat([g.flatten() for g in before.values()]))
assert torch.allclose(total, unclipped) and abs(after.item() - 0.25) < 1e-5

# %% [markdown]
# **`clip_grad_norm_` skips `None` gradients**, and returns the total norm of the others, so
# it is safe on a model with frozen or dropped parameters.

# %%
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()
net.l2.bias.grad = None
others = [before[n] for n in ("l1.weight", "l1.bias", "l2.weight")]

total = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.25)
print(f"returned {total:.4f}; l2.bias.grad is still {net.l2.bias.grad}")
assert torch.allclose(total, torch.linalg.vector_norm(torch.cat([t.flatten() for t in others])))
assert net.l2.bias.grad is None

# %% [markdown]
# **A hook sees one tensor, so it clips one tensor.** Clipping inside a hook can only bound
# each tensor's own norm: small tensors are left alone, and the combined norm can end up
# larger than `max_norm`. In the explorer, the direct clip is the global one.

# %%
direct = helpers.run("manual_grad_edits", edit="clip", layer="both", how="direct")
hooked = helpers.run("manual_grad_edits", edit="clip", layer="both", how="hook")
combined = lambda outcome: sum(p.grad_norm ** 2 for p in outcome.params.values()) ** 0.5
print(f"combined norm after clipping: direct {combined(direct):.4f}, "
      f"per-tensor hook {combined(hooked):.4f}")
assert abs(combined(direct) - 0.25) < 1e-5
assert all(p.grad_norm <= 0.25 + 1e-6 for p in hooked.params.values())
assert combined(hooked) > 0.4
assert hooked.params["l2.weight"].grad_norm == control.params["l2.weight"].grad_norm

# %% [markdown]
# ## Going deeper: hooks (about 10 minutes)
# The same edits can run *during* `backward()`, as hooks on the parameters:
# - `p.register_hook(fn)`: `fn(grad)` gets the gradient on its way into `p.grad` and may return
#   a replacement;
# - `p.register_post_accumulate_grad_hook(fn)`: `fn(p)` runs after `p.grad` is updated and
#   edits it in place or sets `p.grad = None`. It must return `None`.
#
# Both return a handle: call `.remove()` when the hook should stop.

# %%
net = helpers.toy_net()

handle_1 = net.l2.weight.register_hook(lambda grad: grad * 0.5)

def drop_grad(p):
    p.grad = None

handle_2 = net.l1.bias.register_post_accumulate_grad_hook(drop_grad)

helpers.toy_loss(net(x), y).backward()   # both hooks run in here
handle_1.remove()
handle_2.remove()
print({name: "None" if p.grad is None else f"{p.grad.norm():.4f}"
       for name, p in net.named_parameters()})
assert torch.equal(net.l2.weight.grad, 0.5 * before["l2.weight"])
assert net.l1.bias.grad is None
assert torch.equal(net.l1.weight.grad, before["l1.weight"])

# %% [markdown]
# **A tensor hook cannot set `.grad` to `None`.** A hook registered with `register_hook`
# returns either a new gradient or `None`, and `None` means "keep the gradient as it is". To
# drop a gradient, set `p.grad = None` after `backward()` or in a post-accumulate hook.

# %%
net = helpers.toy_net()
net.l1.weight.register_hook(lambda grad: None)
helpers.toy_loss(net(x), y).backward()
print("l1.weight.grad is None:", net.l1.weight.grad is None)
assert torch.equal(net.l1.weight.grad, before["l1.weight"])
via_hook = helpers.run("manual_grad_edits", edit="set_none", layer="l1", how="hook")
via_post = helpers.run("manual_grad_edits", edit="set_none", layer="l1", how="post_hook")
assert via_hook.grads_none() == [] and via_post.grads_none() == ["l1.weight", "l1.bias"]

# %% [markdown]
# **`register_hook` edits each incoming gradient; the post-accumulate hook edits the running
# total.** The difference shows when gradients accumulate over two backward passes. Halving
# with `register_hook` gives `0.5 g + 0.5 g = g`; halving `.grad` after each pass gives
# `0.5 (0.5 g + g) = 0.75 g`. During the first pass the tensor hook runs while `p.grad` is
# still `None`: it really runs *before* accumulation.

# %%
g = before["l2.bias"]
seen = []

net = helpers.toy_net()
def halve_incoming(grad):
    seen.append(net.l2.bias.grad)           # .grad as it is while the hook runs
    return grad * 0.5
net.l2.bias.register_hook(halve_incoming)
for _ in range(2):
    helpers.toy_loss(net(x), y).backward()
by_hook = net.l2.bias.grad.clone()

net = helpers.toy_net()
def halve_total(p):
    p.grad.mul_(0.5)
net.l2.bias.register_post_accumulate_grad_hook(halve_total)
for _ in range(2):
    helpers.toy_loss(net(x), y).backward()
by_post_hook = net.l2.bias.grad.clone()

print(f"register_hook: {(by_hook / g).item():.2f} g   post-accumulate hook: "
      f"{(by_post_hook / g).item():.2f} g   .grad inside the first hook call: {seen[0]}")
assert torch.equal(by_hook, g) and torch.equal(by_post_hook, 0.75 * g)
assert seen[0] is None

# %% [markdown]
# **A hook on one parameter does not change what the other parameters receive.** A
# parameter's gradient ends at its own `.grad`. A hook on an *intermediate* tensor is
# different: what it returns flows on to every layer before it.

# %%
net = helpers.toy_net()
net.l2.weight.register_hook(lambda grad: torch.zeros_like(grad))
helpers.toy_loss(net(x), y).backward()
assert not net.l2.weight.grad.any()
assert torch.equal(net.l1.weight.grad, before["l1.weight"])

net = helpers.toy_net()
h = net.l1(x)
h.register_hook(lambda grad: torch.zeros_like(grad))   # h is not a leaf
helpers.toy_loss(net.l2(torch.relu(h)), y).backward()
print("l1.weight.grad all zero:", not net.l1.weight.grad.any(),
      "| l2.weight.grad all zero:", not net.l2.weight.grad.any())
assert not net.l1.weight.grad.any() and net.l1.bias.grad is not None
assert torch.equal(net.l2.weight.grad, before["l2.weight"])

# %% [markdown]
# **Non-leaf tensors do not keep `.grad`.** `h` above is computed, not created by you: after
# `backward()` its `.grad` is `None`, and reading it warns. Call `h.retain_grad()` before
# `backward()` to keep it.

# %%
net = helpers.toy_net()
h = net.l1(x)
helpers.toy_loss(net.l2(torch.relu(h)), y).backward()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    grad_of_h = h.grad
print("h.grad:", grad_of_h, "| warning:", str(caught[0].message).split(". ")[0])
assert grad_of_h is None and issubclass(caught[0].category, UserWarning)
assert "not a leaf Tensor" in str(caught[0].message)

net = helpers.toy_net()
h = net.l1(x)
h.retain_grad()
helpers.toy_loss(net.l2(torch.relu(h)), y).backward()
print("after retain_grad(): h.grad shape:", tuple(h.grad.shape), "| h.is_leaf:", h.is_leaf)
assert h.grad is not None and h.grad.shape == h.shape and not h.is_leaf

# %% [markdown]
# ## Going deeper: the truth table (about 4 minutes)
# Every edit, on `l1`, `l2` or both, done each of the three ways: 45 rows, and none raises.
# (A layer's state here depends only on the edit made to that layer, so the `l1` and `l2` rows
# also tell you what a mix of two different edits would show. There is no "no edit" row: that
# step is the plain step drawn above.) Three rows are worth finding first: `set_none` with
# `hook` gives `values`, not `None`.

# %%
table = helpers.truth_table("manual_grad_edits")
assert len(table.rows) == 5 * 3 * 3 == 45
assert not any(row[-1] for row in table.rows)  # the error column is empty
cells = {tuple(row[:3]): row[3:7] for row in table.rows}
for edit, _, how in cells:                     # both = l1's row for l1, l2's row for l2
    both = cells[edit, "both", how]
    assert both[:2] == cells[edit, "l1", how][:2] and both[2:] == cells[edit, "l2", how][2:]
table

# %% [markdown]
# The truth table shows only *states*. Scale, clip and mask all leave `values`; the norms tell
# them apart. Here each edit and each way, on both layers, before the step. For zero, scale
# and mask the three ways give the same gradients; `set_none` and `clip` are where they differ.

# %%
norms = helpers.edit_norms_table("both")
by_edit = {}
for row in norms.rows:
    by_edit.setdefault(row[0], []).append(row[2:])
assert all(ways[0] == ways[1] == ways[2] for edit, ways in by_edit.items()
           if edit in ("zero", "scale", "mask"))
assert all(len({tuple(w) for w in by_edit[edit]}) > 1 for edit in ("set_none", "clip"))
norms

# %% [markdown]
# ## Going deeper: pitfalls (about 8 minutes)
# **A manual update that forgets `None` gradients.** A manual step (which runs under
# `torch.no_grad()`, as [04 · torch.no_grad](04_no_grad.ipynb) shows) meets `p.grad = None`
# after an edit that drops a gradient, and the arithmetic raises a `TypeError` from Python.
# The loop has already updated `l1.weight`, the parameter before `l1.bias`, when it raises:
# the step is half done.

# %%
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()
net.l1.bias.grad = None
start = {name: p.detach().clone() for name, p in net.named_parameters()}
try:
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.1 * p.grad
except TypeError as e:
    print(type(e).__name__ + ":", e)
    assert "NoneType" in str(e)
else:
    raise AssertionError("expected a TypeError")
moved = [name for name, p in net.named_parameters() if not torch.equal(p.detach(), start[name])]
print("moved before the error:", moved)
assert moved == ["l1.weight"]

# %% [markdown]
# Fix: skip `None` grads, as SGD does. (Shown on a fresh step: rerunning the update on the
# `net` above would move `l1.weight` a second time.)

# %%
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()
net.l1.bias.grad = None
l1_bias = net.l1.bias.detach().clone()
with torch.no_grad():
    for p in net.parameters():
        if p.grad is not None:
            p -= 0.1 * p.grad
print("l1.bias unchanged:", torch.equal(net.l1.bias.detach(), l1_bias))
assert torch.equal(net.l1.bias.detach(), l1_bias)

# %% [markdown]
# **A post-accumulate hook written as a lambda.** `p.grad.mul_(0.5)` returns the tensor, so the
# lambda returns it too, and PyTorch insists the hook return `None`:

# %%
net = helpers.toy_net()
net.l2.bias.register_post_accumulate_grad_hook(lambda p: p.grad.mul_(0.5))
try:
    helpers.toy_loss(net(x), y).backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "post accumulate grad hooks should return None" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Fix: a `def` without a `return`, like `halve_total` above.

# %%
net = helpers.toy_net()
net.l2.bias.register_post_accumulate_grad_hook(halve_total)
helpers.toy_loss(net(x), y).backward()
print("l2.bias.grad == 0.5 g:", torch.equal(net.l2.bias.grad, 0.5 * g))
assert torch.equal(net.l2.bias.grad, 0.5 * g)

# %% [markdown]
# **A hook that is never removed.** A hook stays on the tensor, and runs in each later
# `backward()`, until you remove it: a one-off edit silently becomes permanent.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
handle = net.l2.bias.register_hook(lambda grad: grad * 0)   # meant for step 1 only
grad_sums = []
for step in range(2):
    optimizer.zero_grad()
    loss = helpers.toy_loss(net(x), y)
    loss.backward()
    grad_sums.append(net.l2.bias.grad.abs().sum().item())
    optimizer.step()
print("sum of |l2.bias.grad| in step 1 and step 2:", grad_sums)
assert grad_sums == [0.0, 0.0]

# %% [markdown]
# Fix: keep the handle and call `handle.remove()` when the edit should stop.

# %%
handle.remove()
optimizer.zero_grad()
helpers.toy_loss(net(x), y).backward()
print("after remove(): l2.bias.grad is non-zero:", bool(net.l2.bias.grad.any()))
assert net.l2.bias.grad.abs().sum().item() > 0

# %% [markdown]
# **Clipping after `step()`.** The step has already used the unclipped gradient; clipping
# afterwards only changes a `.grad` that the next `zero_grad()` will throw away.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
start = net.l2.bias.detach().clone()
helpers.toy_loss(net(x), y).backward()
optimizer.step()
torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.25)   # too late
print(f"l2.bias moved by {(net.l2.bias - start).abs().item():.4f}  (unclipped: 0.1 * |g| = "
      f"{0.1 * g.abs().item():.4f})")
assert torch.allclose(net.l2.bias.detach(), start - 0.1 * g)

# %% [markdown]
# Fix: the order is `backward()`, edit, `step()`, as in the core of this notebook.
#
# **`backward()` on a loss per example.** To weight or mask examples, you may keep the loss
# unreduced; `backward()` then needs to know how to combine the elements:

# %%
net = helpers.toy_net()
per_example = nn.functional.mse_loss(net(x), y, reduction="none")   # shape (8, 1)
try:
    per_example.backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "grad can be implicitly created only for scalar outputs" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Fix: reduce it to a scalar yourself, or pass a `gradient` with one weight per element.
# Weights of `1/8` give the same gradient as the mean loss:

# %%
per_example.backward(gradient=torch.full_like(per_example, 1 / 8))
print("same l2.bias.grad as the mean loss:", torch.allclose(net.l2.bias.grad, g))
assert torch.allclose(net.l2.bias.grad, g)

# %% [markdown]
# ## Going deeper: where it is used (about 5 minutes)
# **Gradient clipping for RNNs.** Backpropagation through many time steps can make gradients
# explode; clipping their total norm before each step keeps updates bounded. The returned norm
# is what people log to spot explosions.

# %%
torch.manual_seed(0)
rnn, head = nn.RNN(input_size=4, hidden_size=8, batch_first=True), nn.Linear(8, 1)
params = list(rnn.parameters()) + list(head.parameters())
optimizer = torch.optim.SGD(params, lr=0.05)
sequences, targets = torch.randn(16, 20, 4), torch.randn(16, 1)

norms = []
for step in range(5):
    optimizer.zero_grad()
    output, _ = rnn(sequences)
    loss = nn.functional.mse_loss(head(output[:, -1]), targets)
    loss.backward()
    norms.append(torch.nn.utils.clip_grad_norm_(params, max_norm=0.25).item())
    optimizer.step()
print("norms before clipping:", [round(n, 3) for n in norms])
clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
assert clipped.item() <= 0.25 + 1e-5 and min(norms) > 0.25  # every step was clipped

# %% [markdown]
# **Masking frozen rows of an embedding.** Keep some rows fixed (say, pretrained vectors for
# special tokens) while the others train: a hook zeroes their rows of the gradient on every
# backward pass.

# %%
torch.manual_seed(0)
embedding = nn.Embedding(10, 4)
frozen_rows = torch.tensor([0, 1])
row_mask = torch.ones(10, 1)
row_mask[frozen_rows] = 0
embedding.weight.register_hook(lambda grad: grad * row_mask)

optimizer = torch.optim.SGD(embedding.parameters(), lr=0.1)
start = embedding.weight.detach().clone()
tokens = torch.tensor([[0, 1, 2, 3], [1, 4, 5, 0]])
for step in range(3):
    optimizer.zero_grad()
    embedding(tokens).pow(2).sum().backward()
    optimizer.step()
moved = (embedding.weight.detach() - start).abs().sum(dim=1)
print("rows moved:", [i for i in range(10) if moved[i] > 0])
assert torch.equal(embedding.weight[frozen_rows].detach(), start[frozen_rows])
assert [i for i in range(10) if moved[i] > 0] == [2, 3, 4, 5]

# %% [markdown]
# The mask gives the frozen rows a gradient of *zeros*, not `None` (a hook cannot drop part of
# a tensor). Plain SGD leaves them alone, but weight decay moves them whatever their gradient:

# %%
decayed = nn.Embedding(10, 4)
decayed.weight.register_hook(lambda grad: grad * row_mask)
kept = decayed.weight.detach().clone()
optimizer = torch.optim.SGD(decayed.parameters(), lr=0.1, weight_decay=0.01)
decayed(tokens).pow(2).sum().backward()
optimizer.step()
print("frozen rows moved under weight decay:",
      not torch.equal(decayed.weight[frozen_rows].detach(), kept[frozen_rows]))
assert not torch.equal(decayed.weight[frozen_rows].detach(), kept[frozen_rows])

# %% [markdown]
# **Custom update rules.** A manual step `p -= lr * p.grad` under `torch.no_grad()` does what
# plain SGD's `step()` does (the same update, up to float rounding), and it can do anything
# else with `p.grad`:

# %%
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()
with torch.no_grad():
    for p in net.parameters():
        if p.grad is not None:
            p -= 0.1 * p.grad

reference = helpers.toy_net()
helpers.toy_loss(reference(x), y).backward()
torch.optim.SGD(reference.parameters(), lr=0.1).step()
same = all(torch.allclose(a, b) for a, b in zip(net.parameters(), reference.parameters()))
print("manual step == optimizer.step():", same)
assert same and all(p.is_leaf and p.requires_grad for p in net.parameters())

# %% [markdown]
# Here sign-SGD, which moves each weight by a fixed step against the sign of its gradient:

# %%
net = helpers.toy_net()
losses = []
for step in range(20):
    net.zero_grad()
    loss = helpers.toy_loss(net(x), y)
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= 0.01 * p.grad.sign()
    losses.append(loss.item())
print(f"loss: {losses[0]:.4f} -> {losses[-1]:.4f}")
assert losses[-1] < losses[0]

# %% [markdown]
# ## Going deeper: exercises (about 12 minutes)
# **07.1** After this code, which parameters have `.grad` equal to `None`? Answer with a set of
# names (possibly empty).
#
# ```python
# net = helpers.toy_net()
#
# def clear(grad):                 # a tensor hook
#     net.l1.weight.grad = None
# net.l1.weight.register_hook(clear)
#
# def drop(p):                     # a post-accumulate hook
#     p.grad = None
# net.l2.bias.register_post_accumulate_grad_hook(drop)
#
# helpers.toy_loss(net(x), y).backward()
# ```

# %%
answer = ...  # e.g. {"l1.weight"}
helpers.check("07.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# Only `l2.bias`. The tensor hook on `l1.weight` runs *before* the gradient is accumulated:
# `.grad` is still `None` then, so clearing it does nothing, and the hook returns `None`, which
# keeps the incoming gradient. The post-accumulate hook sets `l2.bias.grad = None` after it was
# filled.
# </details>
#
# **07.2** A post-accumulate hook halves `net.l2.bias.grad` (`p.grad.mul_(0.5)`), and you run
# **three** backward passes on the same batch without clearing. What is the final
# `l2.bias.grad` divided by the gradient `g` of one plain pass? Answer with a number. (Work it
# out on paper, then check it in code.)

# %%
answer = ...  # e.g. 1.5
helpers.check("07.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `0.875`. After pass 1 the hook leaves `0.5 g`; pass 2 adds `g` and halves: `0.75 g`; pass 3 adds `g`
# and halves once more. (With `register_hook` halving each incoming gradient it would be
# `3 × 0.5 g`.)
# </details>
#
# **07.3** On a fresh `helpers.toy_net()`: one `backward()` of the toy loss, clip all gradients
# together to a norm of 0.25, then a manual SGD step with learning rate 0.1. What is
# `net.l2.bias` afterwards? Answer with the tensor (`.detach()` it).

# %%
answer = ...  # your code here, e.g. net.l2.bias.detach()
helpers.check("07.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# net = helpers.toy_net()
# helpers.toy_loss(net(x), y).backward()
# torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.25)
# with torch.no_grad():
#     for p in net.parameters():
#         p -= 0.1 * p.grad
# answer = net.l2.bias.detach()
# ```
# </details>
#
# **07.4** Why is `w.grad` `None` after this code, while `b.grad` holds values? You wanted to
# clip `w.grad` before a manual step.
#
# ```python
# torch.manual_seed(0)
# w = torch.randn(4, 1, requires_grad=True) * 0.1   # a small random start
# b = torch.zeros(1, requires_grad=True)
# helpers.toy_loss(x @ w + b, y).backward()
# ```
#
# - (a) A hook dropped it.
# - (b) `w` does not require grad.
# - (c) `w` is not a leaf: `* 0.1` made it the result of an operation, and autograd fills
#   `.grad` for leaves.
#
# Answer `"a"`, `"b"` or `"c"`.

# %%
answer = ...  # "a", "b" or "c"
helpers.check("07.4", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `"c"`. The leaf is the unnamed `randn(...)` tensor; `w` is computed from it. Create the leaf
# last, `w = (torch.randn(4, 1) * 0.1).requires_grad_()`, or call `w.retain_grad()` before
# `backward()`.
# </details>
#
# ## Further reading
# - [`torch.Tensor.register_hook`](https://pytorch.org/docs/stable/generated/torch.Tensor.register_hook.html)
# - [`torch.Tensor.register_post_accumulate_grad_hook`](https://pytorch.org/docs/stable/generated/torch.Tensor.register_post_accumulate_grad_hook.html)
# - [`torch.nn.utils.clip_grad_norm_`](https://pytorch.org/docs/stable/generated/torch.nn.utils.clip_grad_norm_.html)
# - [`torch.Tensor.retain_grad`](https://pytorch.org/docs/stable/generated/torch.Tensor.retain_grad.html)
# - [Autograd mechanics: backward hooks](https://pytorch.org/docs/stable/notes/autograd.html#backward-hooks-execution)
# - [How to save memory by fusing the optimizer step into the backward pass](https://pytorch.org/tutorials/intermediate/optimizer_step_in_backward_tutorial.html)
