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
# # 05 · torch.inference_mode
#
# `torch.inference_mode()` records nothing, as `torch.no_grad()` does, and goes further: the
# tensors it allocates are *inference tensors*, which autograd refuses to save for backward
# later. Use it for code that only predicts.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/05_inference_mode.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/05_inference_mode.ipynb)

# %% [markdown]
# **What you will learn**
# - what an inference tensor is, and how to tell one (`is_inference()`);
# - why L1's output made in inference mode breaks L2's *forward* pass, and how `.clone()` fixes
#   it;
# - when to choose `inference_mode` over `no_grad`.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb) and
# [04 · torch.no_grad](04_no_grad.ipynb): inference mode is built on top of it.
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
# The same `L1 -> ReLU -> L2` network, batch of 8 and mean-squared-error loss as in every
# notebook. Its plain training step:

# %%
x, y = helpers.toy_batch()
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# In this training step, L1 and the ReLU run inside `torch.inference_mode()`; L2, the loss,
# `backward()` and `optimizer.step()` run outside it:
#
# ```python
# with torch.inference_mode():
#     h = torch.relu(net.l1(x))
# out = net.l2(h)
# ```
#
# After the step, which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` will have `.grad`
# equal to `None`? Decide, then tick your answer and press the button.

# %%
helpers.predict("inference_mode", part="l1", clone="no")

# %% [markdown]
# ## The mechanism in code
# The everyday use: predictions that nothing will ever call `backward()` on. (`model.eval()` is
# a separate switch that prediction code wants as well: [04 · torch.no_grad](04_no_grad.ipynb).)

# %%
net = helpers.toy_net()
net.eval()
with torch.inference_mode():
    predictions = net(x)
net.train()

print("requires_grad:", predictions.requires_grad, "| grad_fn:", predictions.grad_fn,
      "| is_inference:", predictions.is_inference())
assert not predictions.requires_grad and predictions.grad_fn is None
assert predictions.is_inference()
assert torch.equal(predictions, net(x).detach())   # the same numbers as in grad mode

# %% [markdown]
# If a tensor made in inference mode must take part in training after all, `.clone()` it
# *outside* the mode: the clone is a normal tensor. Here L1 runs in inference mode (so it does
# not learn) and L2 trains on its cloned output.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

optimizer.zero_grad()
with torch.inference_mode():
    h = torch.relu(net.l1(x))        # an inference tensor
h = h.clone()                        # outside the mode: a normal tensor again
loss = helpers.toy_loss(net.l2(h), y)
loss.backward()
optimizer.step()

print("h.is_inference():", h.is_inference())
print({name: None if p.grad is None else "values" for name, p in net.named_parameters()})
assert not h.is_inference()
assert net.l1.weight.grad is None and net.l1.bias.grad is None
assert net.l2.weight.grad is not None and net.l2.bias.grad is not None

# %% [markdown]
# ## Explorer
# Which part of the forward runs under `torch.inference_mode()` (nothing, L1 + ReLU, or the
# whole forward), and is the tensor it produced cloned outside the mode before use? It starts
# where the question did: switch `clone` on and watch L2 learn again. An error PyTorch raises
# is shown in red under the table.

# %%
helpers.explore("inference_mode")

# %% [markdown]
# ## Why
# To compute its weight's gradient, a `Linear` layer saves its input during the forward pass.
# With L1 and the ReLU in inference mode, that input is an inference tensor, and autograd
# refuses to save one: L2's *forward* raises, before any loss exists, so no parameter gets a
# gradient. A clone made outside the mode is a normal tensor that L2 may save. L1 recorded
# nothing, so only L2 trains.

# %%
refused = helpers.run("inference_mode", part="l1", clone="no")
cloned = helpers.run("inference_mode", part="l1", clone="yes")
print(refused.error)
assert "Inference tensors cannot be saved for backward" in refused.error.message
assert refused.loss is None and refused.grads_none() == list(helpers.PARAM_NAMES)
assert cloned.error is None and cloned.grads_none() == ["l1.weight", "l1.bias"]
assert cloned.params["l2.weight"].changed and cloned.params["l2.bias"].changed
helpers.draw(cloned, beside=control)

# %% [markdown]
# ## Recap
# - `inference_mode()` records nothing, like `no_grad()`, and the tensors it allocates are
#   inference tensors (`is_inference()`).
# - A recorded op that must save an inference tensor raises, in the forward pass; `.clone()`
#   outside the mode gives a normal tensor.
# - Use it for predictions that never come back into training; otherwise use `no_grad()`.
#
# [Next: 06 · Optimizer parameter subsets](06_optimizer_subsets.ipynb)

# %% [markdown]
# ## Going deeper: every combination (about 3 minutes)
# Every combination at once, readable without a kernel. `*` marks a parameter the step changed.
# With `part` = `none`, `clone` has nothing to act on (no tensor was made in inference mode):
# its two rows are the same step.

# %%
table = helpers.truth_table("inference_mode")
none_rows = [row[2:] for row in table.rows if row[0] == "none"]
assert len(none_rows) == 2 and none_rows[0] == none_rows[1]
table

# %% [markdown]
# **With the whole forward in inference mode there is no graph at all**: the loss has no
# `grad_fn`. `backward()` raises the same error as when nothing requires grad, and cloning the
# output does not help: a clone of a tensor with no history has no history either.

# %%
whole = helpers.run("inference_mode", part="all", clone="no")
whole_cloned = helpers.run("inference_mode", part="all", clone="yes")
print(whole.error)
for outcome in (whole, whole_cloned):
    assert "does not require grad and does not have a grad_fn" in outcome.error.message
    assert outcome.loss is not None and outcome.loss.grad_fn is None
    assert outcome.grads_none() == list(helpers.PARAM_NAMES)
helpers.draw(whole, beside=control)

# %% [markdown]
# ## Going deeper: inference tensors (about 11 minutes)
# **Inside the mode nothing is recorded, and the new tensors it computes are inference
# tensors.** Like `no_grad()`, results such as L1's output have `requires_grad=False` and no
# `grad_fn`. Unlike `no_grad()`, they are marked: `is_inference()` is `True`. Tensors that
# existed before (the parameters) are not changed by entering the mode. (Not every tensor made
# inside is an inference tensor: views of normal tensors are not; see "where the rules stop".)

# %%
net = helpers.toy_net()
with torch.inference_mode():
    print("mode on:", torch.is_inference_mode_enabled(), "| grad enabled:",
          torch.is_grad_enabled())
    h = net.l1(x)
with torch.no_grad():
    h_no_grad = net.l1(x)
print("inference_mode result: requires_grad", h.requires_grad, "| is_inference",
      h.is_inference())
print("no_grad result:        requires_grad", h_no_grad.requires_grad, "| is_inference",
      h_no_grad.is_inference())
assert not h.requires_grad and h.grad_fn is None and h.is_inference()
assert not h_no_grad.requires_grad and not h_no_grad.is_inference()
assert net.l1.weight.requires_grad and not net.l1.weight.is_inference()
assert not torch.is_inference_mode_enabled()         # the mode ends with the block

# %% [markdown]
# **What inference tensors leave out: the version counter and view tracking.** Autograd keeps a
# version counter on every normal tensor (bumped by each in-place edit) and remembers which
# tensor a view came from. Inference tensors skip both; that bookkeeping is what inference mode
# saves over `no_grad()`. Asking for the version of an inference tensor is an error. PyTorch has
# no public API for this bookkeeping, so the cell peeks at internal attributes (`_version`,
# `_is_view()`, `_base`), only to look.

# %%
with torch.inference_mode():
    t = torch.ones(4)
    view = t[:2]
normal = torch.ones(4)

print("normal tensor version:", normal._version, "| its slice is a view:", normal[:2]._is_view())
try:
    t._version
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "do not track version counter" in str(e)
else:
    raise AssertionError("expected a RuntimeError")
print("inference slice is a view:", view._is_view(), "| is_inference:", view.is_inference())
assert normal[:2]._is_view() and normal[:2]._base is normal
assert not view._is_view() and view._base is None and view.is_inference()

# %% [markdown]
# **The error comes from L2's forward pass, not from `backward()`.** Holding L1's output is
# fine; `net.l2(h)` raises.

# %%
net = helpers.toy_net()
with torch.inference_mode():
    h = torch.relu(net.l1(x))
try:
    out = net.l2(h)                  # records addmm, which must save h: error
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).split(".")[0])
    assert "Inference tensors cannot be saved for backward" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# **05.1** and **05.2**: try these first, before the cells below answer them.
#
# **05.1** A tensor `t = torch.ones(4)` is made inside `torch.inference_mode()`. What does
# `is_inference()` give for (1) `t.reshape(2, 2)` made outside the mode, (2) `t + 0` made
# outside it, (3) `t.clone()` made inside it? Answer with a tuple of three booleans.

# %%
answer = ...  # e.g. (False, False, False)
helpers.check("05.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `(True, False, True)`. New memory depends on where the op runs: `t + 0` outside the mode is
# a normal tensor, `t.clone()` inside it an inference tensor. `t.reshape(2, 2)` of a contiguous
# `t` is a view, and a view of an inference tensor is one too, wherever it is made.
# </details>
#
# **05.2** `features` were computed with `torch.relu(net.l1(x))` inside inference mode. Outside
# it, which of these let you train L2 (`net.l2(...).sum().backward()`) without an error?
# (a) `features`, (b) `features.clone()`, (c) `features.detach()`. Answer with a set of letters.

# %%
answer = ...  # e.g. {"a", "b", "c"}
helpers.check("05.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"b"}`. `net.l2` saves its input for backward, so it refuses an inference tensor (a). The
# detached tensor is still an inference tensor (c). Only the clone made outside the mode is a
# normal tensor (b).
# </details>

# %% [markdown]
# Had the ReLU run after the block, its output would be a normal tensor (an op run outside the
# mode makes a new normal tensor, even from an inference input) and L2 would have accepted it.
# That is also why `.clone()` is the fix. Views are the exception: a view of an inference
# tensor (a slice, `.detach()`) is an inference tensor wherever it is made.

# %%
with torch.inference_mode():
    h = net.l1(x)
h_relu = torch.relu(h)               # run outside the mode
print("L1 output is_inference:", h.is_inference(), "| ReLU output is_inference:",
      h_relu.is_inference())
assert h.is_inference() and not h_relu.is_inference()
assert net.l2(h_relu).grad_fn is not None      # recorded without complaint
assert h[:2].is_inference() and h.detach().is_inference()   # views made outside the mode

# %% [markdown]
# **The rule is about *saving*, not reading.** Outside the mode an inference tensor can be read
# by ops; reading raises only when a recorded op needs to keep it for backward. Adding it
# to a tensor that requires grad saves nothing (the gradient of `+` needs no inputs);
# multiplying by one does (the gradient of `w * t` is `t`).

# %%
w = torch.ones(3, requires_grad=True)
with torch.inference_mode():
    t = torch.full((3,), 2.0)

total = (t + w).sum()                # recorded, nothing saved: fine
total.backward()
print("grad of w through t + w:", w.grad)
assert torch.equal(w.grad, torch.ones(3))
try:
    t * w                            # recorded, must save t: refused
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).split(".")[0])
    assert "Inference tensors cannot be saved for backward" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# **`.clone()` outside the mode gives a normal tensor; inside, another inference tensor.** A
# clone is new memory, and new tensors made outside the mode are normal tensors. Cloning gives
# L2 the same gradients as the other way to stop L1 learning, `detach()` on L1's output; the
# clone costs one copy of the tensor.

# %%
with torch.inference_mode():
    t = torch.ones(3)
    clone_inside = t.clone()
clone_outside = t.clone()
print("clone inside:", clone_inside.is_inference(), "| clone outside:",
      clone_outside.is_inference())
assert clone_inside.is_inference() and not clone_outside.is_inference()

net = helpers.toy_net()
helpers.toy_loss(net.l2(torch.relu(net.l1(x)).detach()), y).backward()
for name in ("l2.weight", "l2.bias"):
    assert torch.equal(cloned.tensors[name].grad, net.get_parameter(name).grad)
print("checked: L2's gradients after clone() equal those after detach()")

# %% [markdown]
# ## Going deeper: switching recording back on (about 4 minutes)
# **05.3** Try this first. `w = torch.ones(3, requires_grad=True)`. Inside
# `torch.inference_mode()` you open `torch.enable_grad()` and compute `r = w * 2` and
# `v = w[:2]`. What are `r.requires_grad` and `v.requires_grad`? Answer with a tuple of two
# booleans.

# %%
answer = ...  # e.g. (True, False)
helpers.check("05.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `(False, True)`. `enable_grad()` sets `torch.is_grad_enabled()` to `True`, but inside
# inference mode nothing is recorded: `r` is a new tensor with no history.
# `torch.inference_mode(False)` is the switch that records again. `v` is a view of the normal
# tensor `w`: it keeps `w`'s flag, with no `grad_fn` (as a view made under `no_grad` does,
# [04 · torch.no_grad](04_no_grad.ipynb)), and it is not an inference tensor. The cells below
# show the first two rules; "where the rules stop" shows the views.
# </details>

# %% [markdown]
# **`torch.enable_grad()` inside inference mode does not switch recording back on.** It does
# set `torch.is_grad_enabled()` to `True`, which makes this easy to miss: the result still has
# no `grad_fn`, and it is an inference tensor. (Inside `no_grad()`, `enable_grad()` does turn
# recording back on: [04 · torch.no_grad](04_no_grad.ipynb).)

# %%
w = torch.ones(3, requires_grad=True)
with torch.inference_mode():
    with torch.enable_grad():
        print("grad enabled:", torch.is_grad_enabled())
        r = w * 2
print("requires_grad:", r.requires_grad, "| grad_fn:", r.grad_fn, "| is_inference:",
      r.is_inference())
assert not r.requires_grad and r.grad_fn is None and r.is_inference()

# %% [markdown]
# **`torch.inference_mode(False)` nests inside it and records again.** Inside it, new tensors
# are normal tensors and ops on tensors that require grad are recorded; the outer mode comes
# back when the inner block ends.

# %%
with torch.inference_mode():
    with torch.inference_mode(False):
        r = w * 2
        print("inner: inference mode", torch.is_inference_mode_enabled())
    print("outer: inference mode", torch.is_inference_mode_enabled())
print("requires_grad:", r.requires_grad, "| grad_fn:", type(r.grad_fn).__name__,
      "| is_inference:", r.is_inference())
assert r.requires_grad and r.grad_fn is not None and not r.is_inference()
r.sum().backward()
assert torch.equal(w.grad, torch.full((3,), 2.0))

# %% [markdown]
# ## Going deeper: what it saves (about 6 minutes)
# **Memory.** On the two networks below, inference mode saves exactly the memory `no_grad()`
# saves. Two measurements (`costs.mode_memory`), both deterministic:
# - **saved for backward**: bytes of the tensors autograd keeps for `backward()`, not counting
#   the weights (they exist anyway), counted with `saved_tensors_hooks`;
# - **peak**: the most memory PyTorch's CPU allocator held at any moment of the forward pass,
#   above what was held when it started. It comes from the profiler
#   (`profile_memory=True` records every allocation and free), and counts tensor memory only.
#
# On the toy net and on a larger MLP (4 hidden layers of 512 units, a batch of 64):

# %%
from helpers import costs

MODES = ("grad mode", "no_grad", "inference_mode")
mlp = costs.larger_mlp(width=512)
mlp_x = torch.randn(64, 512, generator=torch.Generator().manual_seed(0))
memory = {"toy net": costs.mode_memory(helpers.toy_net(), x, MODES),
          "larger MLP": costs.mode_memory(mlp, mlp_x, MODES)}
for net_name, by_mode in memory.items():
    print(net_name)
    for mode, m in by_mode.items():
        print(f"  {mode:15} saved for backward {m['saved_bytes']:>9,} B   "
              f"peak {m['peak_bytes']:>9,} B")

# %%
for by_mode in memory.values():
    assert by_mode["no_grad"] == by_mode["inference_mode"]       # same saving, to the byte
    assert by_mode["no_grad"]["saved_bytes"] == 0 < by_mode["grad mode"]["saved_bytes"]
# In grad mode the MLP keeps its input and all 4 ReLU outputs (64 x 512 floats each).
activation = 64 * 512 * 4
assert memory["larger MLP"]["grad mode"]["saved_bytes"] == 5 * activation
assert memory["larger MLP"]["grad mode"]["peak_bytes"] == 5 * activation  # 4 ReLU + last Linear
assert memory["larger MLP"]["no_grad"]["peak_bytes"] == 2 * activation    # input + output
toy_peaks = {m["peak_bytes"] for m in memory["toy net"].values()}
assert toy_peaks == {2 * 8 * 3 * 4}        # L1's and the ReLU's outputs, in every mode

# %% [markdown]
# In grad mode the MLP's peak comes at the last ReLU: the four ReLU outputs kept for backward
# (the last one just made) plus the Linear output it is computed from; without recording, only a layer's input and output are alive at once.
# On the toy net the peak is the same in all three modes: it comes at the ReLU, while L1's
# output and the ReLU's output are both alive, whatever the mode. The 96-byte ReLU output kept
# for backward in grad mode does not raise it.
#
# **Time.** Here the honest answer is "little, and not everywhere". Inference mode skips the version
# counter and view bookkeeping per tensor, so any gain is per *op*, not per byte: it can show
# only where each op is tiny and that overhead dominates. The cell below times a forward pass
# in each mode with `costs.mode_times` and prints the ratio to `no_grad`: the modes take turns,
# round after round, each mode entered before its clock starts, and the cell prints the median
# of the per-round ratios. The numbers vary from run to run and machine to machine, so the
# cell checks nothing about them.
#
# Run the cell a few times and compare the two modes' ratios with how much each moves from one
# run to the next. On a machine shared with other programs that movement, which is load and not
# a speed-up, can be larger than any difference between the modes, above all for the larger
# MLP, whose time goes into big matrix products.

# %% tags=["nbval-ignore-output"]
toy_times = costs.mode_times(helpers.toy_net(), x, MODES, baseline="no_grad", times=200,
                             repeats=9)
mlp_times = costs.mode_times(mlp, mlp_x, MODES, baseline="no_grad", repeats=9)
print("time relative to no_grad (lower is faster; it varies)")
for mode in MODES:
    print(f"  {mode:15} toy net {toy_times[mode]['ratio']:.2f}   "
          f"larger MLP {mlp_times[mode]['ratio']:.2f}")

# %% [markdown]
# So choose `inference_mode` for the rules it enforces more than for speed: autograd refuses to
# save the tensors it allocated, and PyTorch refuses in-place edits of them outside the mode.
# The rules have edges ("where the rules stop" shows each): views and `detach()` of normal
# tensors made there are normal tensors, a tensor made there with `requires_grad=True` still
# trains, and a later `inference_mode` block may edit its tensors in place. If the results may
# ever feed training (cached features, targets, a teacher's outputs), `no_grad()` gives the
# same memory saving without the restrictions.

# %% [markdown]
# ## Going deeper: pitfalls (about 5 minutes)
# **Features cached in inference mode, then a head trained on them** is the core's case: the
# head's first forward refuses. Two fixes give the head the same gradients: clone the features
# once, outside the mode, or compute them under `no_grad()` in the first place. `detach()` is
# no fix: the detached tensor is still an inference tensor.

# %%
grads = {}
for fix in ["clone", "no_grad"]:
    net = helpers.toy_net()
    if fix == "clone":
        with torch.inference_mode():
            features = torch.relu(net.l1(x))
        features = features.clone()
    else:
        with torch.no_grad():
            features = torch.relu(net.l1(x))
    helpers.toy_loss(net.l2(features), y).backward()
    grads[fix] = net.l2.weight.grad
print("same head gradient:", torch.equal(grads["clone"], grads["no_grad"]))
assert torch.equal(grads["clone"], grads["no_grad"])

with torch.inference_mode():
    features = torch.relu(helpers.toy_net().l1(x))
print("detach() of an inference tensor is_inference:", features.detach().is_inference())
assert features.detach().is_inference()

# %% [markdown]
# **Editing a result in place after the block.**
# A metric accumulated inside `inference_mode` and divided in place afterwards (a common
# evaluation loop) is refused: inference tensors cannot be changed in place outside the mode.
# Beware: in PyTorch 2.13 the check runs *after* the edit, so the value has already changed
# when the error arrives. Don't catch this error and carry on.

# %%
net = helpers.toy_net()
with torch.inference_mode():
    total_loss = torch.zeros(())
    for _ in range(4):
        total_loss += helpers.toy_loss(net(x), y)
before = total_loss.item()

try:
    total_loss /= 4
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).split(".")[0])
    assert "Inplace update to inference tensor outside InferenceMode" in str(e)
else:
    raise AssertionError("expected a RuntimeError")
print("changed anyway:", total_loss.item() != before)
assert total_loss.item() == before / 4

# %% [markdown]
# Fix: keep the arithmetic out of tensors with `.item()` (a Python float), do the edit inside
# the mode, or clone first.

# %%
net = helpers.toy_net()
with torch.inference_mode():
    total_loss = 0.0
    for _ in range(4):
        total_loss += helpers.toy_loss(net(x), y).item()
mean_loss = total_loss / 4
with torch.inference_mode():
    reference = helpers.toy_loss(net(x), y).item()
print(f"mean loss: {mean_loss:.4f}")
assert abs(mean_loss - reference) < 1e-6

# %% [markdown]
# **Expecting `enable_grad()` to record inside inference mode.**
# A helper that computes an input gradient (a saliency map, a gradient penalty) wraps itself in
# `torch.enable_grad()` so it works when called under `no_grad()`. Called under
# `inference_mode()`, the forward pass inside it is not recorded, and `backward()` finds no
# graph.

# %%
def input_gradient(net, x):
    with torch.enable_grad():
        x = x.clone().requires_grad_(True)
        net(x).sum().backward()
        return x.grad


net = helpers.toy_net()
with torch.no_grad():
    assert input_gradient(net, x).shape == x.shape          # fine under no_grad
try:
    with torch.inference_mode():
        input_gradient(net, x)
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).split(".")[0])
    assert "does not require grad and does not have a grad_fn" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Fix: use `torch.inference_mode(False)` in the helper (it nests, see above), or call the helper
# outside inference mode. Clone the input inside `inference_mode(False)`, so that the clone is a
# normal tensor.

# %%
def input_gradient_fixed(net, x):
    with torch.inference_mode(False), torch.enable_grad():
        x = x.clone().requires_grad_(True)
        net(x).sum().backward()
        return x.grad


net = helpers.toy_net()
with torch.inference_mode():
    g = input_gradient_fixed(net, x)
with torch.no_grad():
    assert torch.equal(g, input_gradient(helpers.toy_net(), x))
print("input gradient shape:", tuple(g.shape))

# %% [markdown]
# ## Going deeper: where it is used (about 2 minutes)
# Serving and bulk inference: code whose outputs leave the model as numbers, labels or files
# and never come back into a training graph. The decorator form covers a whole function.
#
# ```python
# @torch.inference_mode()
# def predict(model, loader):
#     model.eval()
#     return torch.cat([model(xb) for xb, _ in loader])
# ```

# %%
@torch.inference_mode()
def predict(model, batches):
    model.eval()
    return torch.cat([model(xb) for xb in batches])


net = helpers.toy_net()
batches = x.split(4)                         # the toy batch as two batches of 4
bulk = predict(net, batches)
net.train()
print("predictions:", tuple(bulk.shape), "| is_inference:", bulk.is_inference())
assert bulk.is_inference() and bulk.grad_fn is None
assert torch.allclose(bulk, net(x).detach())

# %% [markdown]
# If a prediction must be edited or kept for training later, turn it into a normal tensor once,
# where it leaves the serving code: `bulk.clone()`.

# %%
kept = bulk.clone()
kept[0] = 0.0                                # fine: a normal tensor
print("the clone is_inference:", kept.is_inference(), "| edited in place:", kept[0].item())
assert not kept.is_inference() and bulk[0].item() != 0.0

# %% [markdown]
# ## Going deeper: where the rules stop (about 8 minutes)
# "Everything made in inference mode is an inference tensor that can never reach a graph" is
# how the mode is often described. The cells below find where that description, and a few
# other common ones, stop being true.
#
# **Views and `detach()` of normal tensors made inside the mode are normal tensors.** Only new
# memory allocated in the mode is marked. A slice of a parameter, or a parameter's `detach()`,
# shares the normal tensor's memory and stays a normal tensor. As under `no_grad`
# ([04 · torch.no_grad](04_no_grad.ipynb)), the slice of a parameter still has
# `requires_grad=True`, with no `grad_fn`: it is linked to nothing.

# %%
net = helpers.toy_net()
with torch.inference_mode():
    computed = net.l1.weight * 2                 # new memory: an inference tensor
    row = net.l1.weight[0]                       # a view of a normal tensor
    detached = net.l1.weight.detach()            # also a view
print("computed:", computed.is_inference(), "| view:", row.is_inference(),
      "| detach():", detached.is_inference())
assert computed.is_inference()
assert not row.is_inference() and not detached.is_inference()
assert row.requires_grad and row.grad_fn is None             # keeps the flag, no history
assert not computed.requires_grad and not detached.requires_grad

# %% [markdown]
# **A tensor made with `requires_grad=True` inside the mode trains outside it.** It is an
# inference tensor and a leaf, and `backward()` fills its `.grad`: nothing has to save it,
# because its gradient through `t * w` needs only `t`.

# %%
with torch.inference_mode():
    w = torch.ones(3, requires_grad=True)
t = torch.arange(3.0)
(t * w).sum().backward()
print("is_inference:", w.is_inference(), "| leaf:", w.is_leaf, "| grad:", w.grad.tolist())
assert w.is_inference() and w.is_leaf and torch.equal(w.grad, t)

# %% [markdown]
# **A module built inside the mode trains, wrongly.** Its parameters are inference tensors that
# require grad. Outside the mode, `nn.Linear` uses its weight through the view `weight.t()`,
# and a view of an inference tensor is an inference tensor without history
# (`requires_grad=False`): the weight drops out of the graph and `weight.grad` stays `None`.
# The bias is used directly and gets its gradient. No error, half a layer trained: build
# modules outside `inference_mode`.

# %%
from torch import nn

torch.manual_seed(0)
with torch.inference_mode():
    layer = nn.Linear(4, 2)
layer(x).sum().backward()
print("weight.grad:", layer.weight.grad, "| bias.grad:", layer.bias.grad.tolist(),
      "| weight.t() requires grad:", layer.weight.t().requires_grad)
assert layer.weight.requires_grad and layer.weight.is_inference()
assert not layer.weight.t().requires_grad and layer.weight.t().grad_fn is None
assert layer.weight.grad is None and torch.equal(layer.bias.grad, torch.full((2,), 8.0))

# %% [markdown]
# **Forward-mode AD is off too.** `torch.autograd.forward_ad` carries a tangent along with each
# value. Under `no_grad()` it keeps working (no_grad stops only backward recording); under
# `inference_mode()` the result has no tangent. So the mode is not just "`no_grad()` plus
# inference tensors".

# %%
import torch.autograd.forward_ad as fwAD

tangents = {}
for name, mode in [("no_grad", torch.no_grad), ("inference_mode", torch.inference_mode)]:
    with fwAD.dual_level(), mode():
        dual = fwAD.make_dual(torch.ones(3), torch.ones(3))     # value 1, tangent 1
        tangents[name] = fwAD.unpack_dual(dual * 2).tangent
print(tangents)
assert torch.equal(tangents["no_grad"], torch.full((3,), 2.0))
assert tangents["inference_mode"] is None

# %% [markdown]
# **In-place edits: allowed in a later `inference_mode` block.** Outside the mode an in-place
# edit raises, after writing the value (see the pitfalls). Inside any `inference_mode`
# block, later ones too, it is allowed: the rule is about where the edit runs, not about
# what the tensor went through.

# %%
with torch.inference_mode():
    total = torch.zeros(())
with torch.inference_mode():                     # a later block
    total += 5
print("edited in a later block:", total.item())
assert total.item() == 5.0
try:
    total += 1                                   # outside: refused, but written first
except RuntimeError as e:
    assert "Inplace update to inference tensor outside InferenceMode" in str(e)
else:
    raise AssertionError("expected a RuntimeError")
assert total.item() == 6.0

# %% [markdown]
# And "nothing is recorded" holds even where `torch.is_grad_enabled()` says otherwise: under
# `enable_grad()` inside the mode it is `True`, and still no `grad_fn` appears ("switching
# recording back on" asserts it).

# %% [markdown]
# ## Going deeper: exercises (about 3 minutes)
# **05.4** Why is `emb.weight.grad` `None` after this step, while every parameter of `net` gets
# a gradient?
#
# ```python
# torch.manual_seed(0)
# emb = nn.Embedding(10, 4)                # a learned lookup table: 10 rows of 4 features
# net = helpers.toy_net()
# with torch.inference_mode():
#     features = emb(torch.arange(8))      # looked up once, "for speed"
# helpers.toy_loss(net(features.clone()), y).backward()
# ```
#
# - **a**: the lookup ran in inference mode and recorded nothing; the clone copies the values
#   but has no history, so nothing links the loss back to `emb.weight`.
# - **b**: `emb.weight` became an inference tensor when it was used inside the mode.
# - **c**: a clone never passes a gradient back to the tensor it was made from.
#
# Answer with a letter.

# %%
answer = ...  # "a", "b" or "c"
helpers.check("05.4", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `"a"`. Entering the mode changes no existing tensor, so `emb.weight` stays a normal
# parameter (b is wrong), and a clone made with recording on of a tensor that requires grad
# passes gradients back (c is wrong). Here `features` has no history, and neither has its
# clone. To train the table, look it up outside `inference_mode`.
# </details>

# %% [markdown]
# ## Further reading
# - [`torch.inference_mode`](https://pytorch.org/docs/stable/generated/torch.autograd.grad_mode.inference_mode.html)
# - [Autograd mechanics: locally disabling gradient computation, inference mode](https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation)
# - [`torch.Tensor.is_inference`](https://pytorch.org/docs/stable/generated/torch.Tensor.is_inference.html)
# - [`torch.is_inference_mode_enabled`](https://pytorch.org/docs/stable/generated/torch.is_inference_mode_enabled.html)
# - [CPU memory profiling with `torch.profiler`](https://pytorch.org/tutorials/recipes/recipes/profiler_recipe.html)
#
# [Next: 06 · Optimizer parameter subsets](06_optimizer_subsets.ipynb)

