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
# # 04 · torch.no_grad: not recording
#
# Code inside `with torch.no_grad():` runs, but autograd records nothing: no graph, no saved
# activations, no gradients for what happened there.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/04_no_grad.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/04_no_grad.ipynb)

# %% [markdown]
# **What you will learn**
# - what a result computed under `no_grad` looks like (`requires_grad`, `grad_fn`);
# - which parameters lose their gradient when part of the forward runs there;
# - how to write an evaluation pass.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb).
#
# **Time**: 10 minutes for the core; about 35 more for the "Going deeper" sections.

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
# Only the first layer runs under `no_grad`:
#
# ```python
# with torch.no_grad():
#     h = net.l1(x)
# loss = helpers.toy_loss(net.l2(torch.relu(h)), y)
# loss.backward()
# ```
#
# Which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` will have `.grad` equal to `None`?
# Decide, then tick your answer and press the button.

# %%
helpers.predict("no_grad", no_grad_over="l1")

# %% [markdown]
# ## The mechanism in code
# Wrap the lines you do not want recorded. The usual case is a whole evaluation pass.
# (`model.eval()` is a different switch that evaluation needs as well: see "Going deeper".)

# %%
net = helpers.toy_net()
net.eval()
with torch.no_grad():
    out = net(x)
net.train()

print("out.requires_grad:", out.requires_grad, "| out.grad_fn:", out.grad_fn)
assert out.requires_grad is False and out.grad_fn is None

# %% [markdown]
# The block can also wrap part of a forward pass, as in the question:

# %%
net = helpers.toy_net()
with torch.no_grad():
    h = net.l1(x)                      # not recorded
out = net.l2(torch.relu(h))            # recorded: l2's parameters require grad
helpers.toy_loss(out, y).backward()

print("h.grad_fn:", h.grad_fn, "| relu(h).grad_fn:", torch.relu(h).grad_fn,
      "| out.grad_fn:", type(out.grad_fn).__name__)
print({name: None if p.grad is None else "values" for name, p in net.named_parameters()})
assert h.grad_fn is None and torch.relu(h).grad_fn is None and out.grad_fn is not None
assert net.l1.weight.grad is None and net.l1.bias.grad is None
assert net.l2.weight.grad is not None and net.l2.bias.grad is not None

# %% [markdown]
# ## Explorer
# Choose which part of the forward runs under `no_grad`: nothing, L1, L2 or the whole forward.
# The table and the graph beside the plain step's follow your choice.

# %%
helpers.explore("no_grad")

# %% [markdown]
# ## Why
# An operation is recorded only when recording is on and one of its inputs requires grad.
# Under `no_grad`, L1's output `h` gets no `grad_fn`. The ReLU after the block is not recorded
# either: its input does not require grad. So nothing links the loss back to L1's parameters,
# their `.grad` stays `None` and SGD skips them. L2 is recorded as usual; the forward values
# are the same, so its gradients are exactly those of the plain step.

# %%
l1_only = helpers.run("no_grad", no_grad_over="l1")
assert l1_only.grads_none() == ["l1.weight", "l1.bias"]
assert not l1_only.params["l1.weight"].changed and l1_only.params["l2.weight"].changed
assert torch.equal(l1_only.loss, control.loss)                 # the same forward values
for name in ("l2.weight", "l2.bias"):
    assert torch.equal(l1_only.tensors[name].grad, control.tensors[name].grad)
print("checked: L1's grads are None, L2's equal the plain step's")
helpers.draw(l1_only, beside=control)

# %% [markdown]
# ## Recap
# - Under `torch.no_grad()` new results have no `grad_fn`: what runs there gets no gradient.
# - Parameters used only there keep `.grad` `None`; recorded layers train as usual.
# - Evaluate with `model.eval()` *and* `no_grad`.
#
# [Next: 05 · torch.inference_mode](05_inference_mode.ipynb)

# %% [markdown]
# ## Going deeper: the other choices (about 3 minutes)
# Every choice of the explorer at once. `*` marks a parameter the SGD step changed.

# %%
helpers.truth_table("no_grad")

# %% [markdown]
# **L2 under `no_grad` is as bad as everything under `no_grad`.** L1 *was* recorded, but the
# output comes out of L2 with no `grad_fn`, so the loss depends on nothing recorded and
# `backward()` raises. Recording L1 was work done for nothing.

# %%
net = helpers.toy_net()
h = net.l1(x)
with torch.no_grad():
    out = net.l2(torch.relu(h))
loss = helpers.toy_loss(out, y)
print("h:", type(h.grad_fn).__name__, "| out:", out.grad_fn, "| loss:", loss.grad_fn)
assert h.grad_fn is not None and loss.grad_fn is None
try:
    loss.backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "does not require grad and does not have a grad_fn" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# To train L1 but not L2, freeze L2 instead ([02 · requires_grad_(False)](02_requires_grad.ipynb)):
# L2 is still recorded, so gradients flow *through* it to L1.

# %%
net = helpers.toy_net()
net.l2.requires_grad_(False)
helpers.toy_loss(net(x), y).backward()
print({name: None if p.grad is None else "values" for name, p in net.named_parameters()})
assert net.l1.weight.grad is not None and net.l2.weight.grad is None

# %% [markdown]
# **The whole forward under `no_grad`: nothing to backward.** The loss has no `grad_fn`, so
# there is no graph to draw; the helpers catch the error and explain it.

# %%
l2_only = helpers.run("no_grad", no_grad_over="l2")
everything = helpers.run("no_grad", no_grad_over="all")
for outcome in (l2_only, everything):
    assert outcome.grads_none() == list(helpers.PARAM_NAMES)
    assert outcome.loss.grad_fn is None
    assert "does not require grad" in outcome.error.message
print(everything.error)
helpers.draw(everything, beside=control)

# %% [markdown]
# ## Going deeper: what `no_grad` does to tensors (about 5 minutes)
# **04.1** Try this first. What are `z.requires_grad`, `v.requires_grad` and `u.requires_grad`
# after this code? Answer with a tuple of three booleans.
#
# ```python
# w = torch.ones(3, requires_grad=True)
# with torch.no_grad():
#     z = w * 2
#     v = w[:2]
#     with torch.enable_grad():
#         u = z * 3
# ```

# %%
answer = ...  # e.g. (True, True, True)
helpers.check("04.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `(False, True, False)`: `z` is a new result computed under `no_grad`. `v` is a view of `w`,
# and views keep `w`'s flag (with no `grad_fn`). `enable_grad` turns recording back on for its
# own block, but an op is recorded only if one of its inputs requires grad, and `z` does not,
# so `u` does not either. The cells below show each rule.
# </details>
#
# **`no_grad` changes new results, not existing tensors.** The parameters keep
# `requires_grad=True`: `no_grad` freezes nothing. A tensor made there with
# `requires_grad=True`, or a new `nn.Parameter`, still requires grad.

# %%
from torch import nn

net = helpers.toy_net()
with torch.no_grad():
    h = net.l1(x)
    weight_flag = net.l1.weight.requires_grad
    made = torch.zeros(3, requires_grad=True)
    param = nn.Parameter(torch.zeros(3))
print("result h:", h.requires_grad, h.grad_fn)
print("l1.weight inside the block:", weight_flag)
print("torch.zeros(3, requires_grad=True) inside:", made.requires_grad)
print("new nn.Parameter inside:", param.requires_grad)
assert not h.requires_grad and h.grad_fn is None
assert weight_flag and made.requires_grad and param.requires_grad

# %% [markdown]
# **A view is the exception.** A view of a tensor that requires grad (`w[0]`, `w.t()`,
# `w.view(-1)`, and `w.reshape(-1)` when it returns a view) keeps `requires_grad=True`, yet has
# no `grad_fn`: it is linked to nothing. A backward through such a view fills no gradient
# anywhere, and editing it in place after the block, with recording on, raises. A computed
# result (`w * 1`) or `w.detach()` does not require grad.

# %%
w = torch.ones(2, 3, requires_grad=True)
with torch.no_grad():
    made_here = {"w * 1": w * 1, "w.detach()": w.detach(), "w[0]": w[0], "w.t()": w.t(),
                 "w.view(-1)": w.view(-1), "w.reshape(-1)": w.reshape(-1)}
for name, t in made_here.items():
    print(f"{name:14} view: {t._base is w!s:5}  requires_grad: {t.requires_grad!s:5}  "
          f"grad_fn: {t.grad_fn}")

row = made_here["w[0]"]
row.sum().backward()                       # runs, but reaches nothing
print("after backward through w[0]: w.grad", w.grad, "| view's grad", row.grad)
try:
    made_here["w.t()"].mul_(2)             # in place, recording on again
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).split(".")[0])
    assert "A view was created in no_grad mode and is being modified inplace" in str(e)
else:
    raise AssertionError("expected a RuntimeError")
for name, t in made_here.items():
    assert t.grad_fn is None
    assert t.requires_grad == (t._base is w)                # views only
assert [name for name, t in made_here.items() if t.requires_grad] == [
    "w[0]", "w.t()", "w.view(-1)", "w.reshape(-1)"]
assert w.grad is None and row.grad is None

# %% [markdown]
# **`enable_grad` switches recording back on inside `no_grad`; `@torch.no_grad()` works as a
# decorator; `set_grad_enabled(flag)` chooses with a boolean.** Each restores the previous mode
# when its block or function ends.

# %%
w = torch.ones(3, requires_grad=True)
with torch.no_grad():
    a = w * 2
    with torch.enable_grad():
        b = w * 2
print("under no_grad:", a.requires_grad, "| under enable_grad inside it:", b.requires_grad)
assert not a.requires_grad and b.requires_grad


@torch.no_grad()
def doubled(t):
    return t * 2


print("decorated function's result requires grad:", doubled(w).requires_grad)
assert not doubled(w).requires_grad
assert torch.is_grad_enabled()  # back on after the call

for training in (True, False):
    with torch.set_grad_enabled(training):
        c = w * 2
    assert c.requires_grad == training
assert torch.is_grad_enabled()  # each block restored the mode it found

# %% [markdown]
# ## Going deeper: `eval()` is not `no_grad` (about 3 minutes)
# `model.eval()` changes how layers such as Dropout and BatchNorm behave; it does not stop
# recording. `no_grad` stops recording; it does not change Dropout. Evaluation code wants both.
# The toy net has no Dropout, so here is a small model that does.

# %%
torch.manual_seed(0)
dropnet = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1))

dropnet.eval()                           # eval only: still recorded
out_eval = dropnet(x)
print("eval(), no no_grad:   grad_fn", type(out_eval.grad_fn).__name__)

dropnet.train()
with torch.no_grad():                    # no_grad only: Dropout still drops
    first, second = dropnet(x), dropnet(x)
print("no_grad in train():   same output twice?", torch.equal(first, second))

dropnet.eval()
with torch.no_grad():                    # both: deterministic and not recorded
    first, second = dropnet(x), dropnet(x)
print("eval() and no_grad:   same output twice?", torch.equal(first, second),
      "| grad_fn", first.grad_fn)
assert out_eval.grad_fn is not None
dropnet.train()
with torch.no_grad():
    assert not torch.equal(dropnet(x), dropnet(x))
dropnet.eval()
with torch.no_grad():
    assert torch.equal(dropnet(x), dropnet(x)) and dropnet(x).grad_fn is None

# %% [markdown]
# **An evaluation loop with `eval()` but without `no_grad`** records every forward, and
# summing the losses keeps every batch's graph, and its saved activations, alive.
# `costs.saved_tensor_bytes` counts the bytes autograd keeps for backward (the memory
# section below explains how). By hand: per batch, `x` (8 × 4), the ReLU output (8 × 3), and
# the loss's two inputs, the output and the target (8 × 1 each), all 4-byte floats.

# %%
from helpers import costs

net = helpers.toy_net()
batches = [helpers.toy_batch(seed) for seed in range(4)]


def eval_total_loss():
    net.eval()
    total = 0
    for xb, yb in batches:
        total = total + helpers.toy_loss(net(xb), yb)
    return total


total = eval_total_loss()
kept = costs.saved_tensor_bytes(eval_total_loss, exclude=net)
print("total.grad_fn:", type(total.grad_fn).__name__, "| bytes kept for backward:", kept)
assert total.grad_fn is not None
assert kept == len(batches) * (8 * 4 + 8 * 3 + 8 * 1 + 8 * 1) * 4

# %% [markdown]
# Fix: run it under `no_grad` (and take `.item()` if you only want the number).

# %%
eval_total_loss_fixed = torch.no_grad()(eval_total_loss)  # the decorator, applied by hand
total = eval_total_loss_fixed()
fixed_bytes = costs.saved_tensor_bytes(eval_total_loss_fixed, exclude=net)
print("total.grad_fn:", total.grad_fn, "| bytes kept for backward:", fixed_bytes)
assert total.grad_fn is None and fixed_bytes == 0

# %% [markdown]
# ## Going deeper: in-place updates of parameters (about 2 minutes)
# Updating a parameter in place while autograd records is refused: the parameter is a leaf
# that requires grad.

# %%
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()
try:
    for p in net.parameters():
        p -= 0.1 * p.grad
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "a leaf Variable that requires grad is being used in an in-place operation" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Under `no_grad` it is allowed. That is how a manual SGD step and an EMA (exponential moving
# average) of the weights are written; an optimizer's `step()` does the same for you.

# %%
net = helpers.toy_net()
ema = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()
before = net.l1.weight.detach().clone()
with torch.no_grad():
    for p in net.parameters():
        p -= 0.1 * p.grad                       # manual SGD
    for e, p in zip(ema.parameters(), net.parameters()):
        e.mul_(0.99).add_(p, alpha=0.01)        # EMA
print("l1.weight moved:", not torch.equal(net.l1.weight, before),
      "| still a leaf that requires grad:", net.l1.weight.is_leaf and net.l1.weight.requires_grad)
assert torch.equal(net.l1.weight, before - 0.1 * net.l1.weight.grad)
assert net.l1.weight.requires_grad and net.l1.weight.grad_fn is None  # still a leaf

# %% [markdown]
# ## Going deeper: pitfalls and where it is used (about 3 minutes)
# **A `@torch.no_grad()` helper called on the training path.** A prediction helper decorated
# for evaluation, reused for the training loss, gives a loss with nothing to backward.

# %%
@torch.no_grad()
def predict(model, inputs):
    return model(inputs)


net = helpers.toy_net()
try:
    helpers.toy_loss(predict(net, x), y).backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "does not require grad and does not have a grad_fn" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Fix: call the model directly when you need gradients; keep the decorated helper for
# evaluation.
#
# Where it is used:
# - **Evaluation loops and metrics**: `model.eval()` plus `no_grad`, then back to `train()`.
# - **EMA of the weights** and **manual updates**: in-place edits of parameters.
# - **Teacher forward passes** (distillation, target networks): the teacher only supplies
#   targets; the student trains.
# - **Serving**: the same, often with `torch.inference_mode()` (next notebook).

# %%
@torch.no_grad()
def evaluate(model, batches):
    """Mean loss over batches, in eval mode, without recording; restores the mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for xb, yb in batches:
        total += helpers.toy_loss(model(xb), yb).item() * len(xb)
        count += len(xb)
    model.train(was_training)
    return total / count


@torch.no_grad()
def ema_update(ema_model, model, decay=0.99):
    """ema = decay * ema + (1 - decay) * current, in place, for every parameter."""
    for ema_p, p in zip(ema_model.parameters(), model.parameters()):
        ema_p.lerp_(p, 1 - decay)


student, teacher = helpers.toy_net(seed=1), helpers.toy_net(seed=2)
ema = helpers.toy_net(seed=1)
optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
for xb, _ in batches:
    with torch.no_grad():
        target = teacher(xb)                       # teacher: no graph
    optimizer.zero_grad()
    helpers.toy_loss(student(xb), target).backward()
    optimizer.step()
    ema_update(ema, student)

with torch.no_grad():
    held_out = [(x, teacher(x))]
print(f"student's mean loss against the teacher: {evaluate(student, held_out):.4f}")
assert all(p.grad is None for p in teacher.parameters())
assert all(p.grad is not None for p in student.parameters())
assert student.training and torch.is_grad_enabled()
assert not torch.equal(ema.l1.weight, student.l1.weight)

# %% [markdown]
# ## Going deeper: what `no_grad` saves in memory (about 3 minutes)
# To compute gradients later, autograd keeps some tensors from the forward pass: a `Linear`
# keeps its input (for its weight's gradient), a ReLU keeps its output. `costs.saved_tensor_bytes`
# counts them with `torch.autograd.graph.saved_tensors_hooks`, so the number is exact and the
# same on every run. With `exclude=net` it leaves out the network's own weights: autograd keeps a
# reference to `l2.weight`, but the weights exist anyway, so they are not *extra* memory.
#
# By hand, for the toy net's forward in grad mode: the input `x` (8 × 4 floats) and the ReLU
# output (8 × 3 floats; L2 keeps the same tensor), at 4 bytes a float. Under `no_grad`: nothing.

# %%
net = helpers.toy_net()


def forward_no_grad():
    with torch.no_grad():
        net(x)


toy_bytes = {
    "grad mode": costs.saved_tensor_bytes(net, x, exclude=net),
    "no_grad": costs.saved_tensor_bytes(forward_no_grad, exclude=net),
    "grad mode, then .detach()": costs.saved_tensor_bytes(lambda: net(x).detach(), exclude=net),
}
for mode, n in toy_bytes.items():
    print(f"{mode:27s} {n:5d} bytes saved for backward")
FLOAT = 4  # bytes
assert toy_bytes["grad mode"] == (8 * 4 + 8 * 3) * FLOAT
assert toy_bytes["no_grad"] == 0
assert toy_bytes["grad mode, then .detach()"] == toy_bytes["grad mode"]

# %% [markdown]
# The last line matters: calling `.detach()` on the output *after* the forward does not undo the
# cost. The graph was built and the activations were saved while the forward ran; `no_grad` is
# cheaper because it never does that work (why that is not about copying:
# [03 · detach](03_detach.ipynb)).
#
# The toy net is tiny. A larger MLP (`costs.larger_mlp(width=512)`: four `Linear(512, 512)` +
# ReLU layers, then `Linear(512, 1)`) saves its input and each ReLU output: 5 tensors of
# batch × 512 floats. The saving grows with the batch.

# %%
mlp = costs.larger_mlp(width=512)


def mlp_forward_no_grad(inputs):
    with torch.no_grad():
        mlp(inputs)


for batch in (64, 512):
    inputs = torch.randn(batch, 512)
    grad_bytes = costs.saved_tensor_bytes(mlp, inputs, exclude=mlp)
    no_grad_bytes = costs.saved_tensor_bytes(mlp_forward_no_grad, inputs, exclude=mlp)
    print(f"batch {batch:3d}: grad mode {grad_bytes / 2**20:5.2f} MiB, "
          f"no_grad {no_grad_bytes} bytes")
    assert grad_bytes == 5 * batch * 512 * FLOAT and no_grad_bytes == 0

# %% [markdown]
# ## Going deeper: exercises (about 10 minutes)
# **04.2** The toy net on a batch of 20 rows, `inputs = torch.randn(20, 4)`, with L1 under
# `no_grad` as in the core. How many bytes does this forward save for backward, not counting
# the network's own weights? Count by hand, then check with `costs.saved_tensor_bytes`. Answer
# with an int.
#
# ```python
# def forward():
#     with torch.no_grad():
#         h = net.l1(inputs)
#     net.l2(torch.relu(h))
# ```

# %%
answer = ...  # e.g. 100
helpers.check("04.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `240`: L1 and the ReLU record nothing (the ReLU's input does not require grad). L2 is
# recorded because `l2.weight` requires grad, and it keeps its input, the ReLU output
# (20 × 3 floats × 4 bytes), for `l2.weight`'s gradient. `costs.saved_tensor_bytes(forward,
# exclude=net)` agrees.
# </details>
#
# **04.3** Make `ema = copy.deepcopy(net)` of a fresh `helpers.toy_net()`. Train `net` one step:
# loss on the toy batch, `backward()`, `torch.optim.SGD(net.parameters(), lr=0.1).step()`. Then
# update the EMA in place with decay 0.9: `ema_p = 0.9 * ema_p + 0.1 * p` for every parameter.
# Answer with `ema.l1.weight`.

# %%
answer = ...  # e.g. ema.l1.weight
helpers.check("04.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# import copy
# net = helpers.toy_net()
# ema = copy.deepcopy(net)
# optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
# helpers.toy_loss(net(x), y).backward()
# optimizer.step()
# with torch.no_grad():                 # in-place edits of parameters: no_grad
#     for ema_p, p in zip(ema.parameters(), net.parameters()):
#         ema_p.mul_(0.9).add_(p, alpha=0.1)
# answer = ema.l1.weight
# ```
#
# Without the `no_grad` block, `mul_` raises the leaf Variable error. The result equals
# `w0 - 0.01 * grad`: nine tenths of the old weight plus one tenth of the stepped one.
# </details>
#
# **04.4** Why is `l1.weight.grad` `None` after this step, while `l1.bias.grad` has values?
#
# ```python
# net = helpers.toy_net()
# with torch.no_grad():
#     w = net.l1.weight / net.l1.weight.norm(dim=1, keepdim=True)   # unit-length rows
# h = torch.relu(x @ w.t() + net.l1.bias)
# helpers.toy_loss(net.l2(h), y).backward()
# ```
#
# - **a**: `w` is a copy of the weight, and a copy never passes a gradient back.
# - **b**: `w` was computed under `no_grad`, so it has no `grad_fn`: nothing links the loss
#   back to `l1.weight`.
# - **c**: `torch.relu` blocks the gradient of the weight but not of the bias.
#
# Answer with a letter.

# %%
answer = ...  # e.g. "a"
helpers.check("04.4", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `"b"`. The division ran under `no_grad`, so `w` is a new result with no history. `l1.bias`
# is added outside the block, where recording is on, so it gets its gradient. To train the
# weight through the normalization, compute `w` outside `no_grad`.
# </details>

# %% [markdown]
# ## Going deeper: what `no_grad` saves in time (about 6 minutes)
# Time depends on the machine and its load, and varies from run to run. So it is measured here,
# in this run, and never promised. For the toy net and the MLP the same operators run in both
# modes (the profiler lists them: `costs.operators_run`); `no_grad` only skips the bookkeeping.

# %%
modes = ("grad mode", "no_grad")


def ops_in(mode, model, inputs):
    return costs.operators_run(costs.forward_in_mode(mode, model, inputs))


same_ops = {name: ops_in("grad mode", model, inputs) == ops_in("no_grad", model, inputs)
            for name, model, inputs in [("toy net", net, x),
                                        ("larger MLP", mlp, torch.randn(64, 512))]}
print("same operators in both modes:", same_ops)
assert all(same_ops.values())

# %% [markdown]
# `costs.mode_times` times the two modes in turns (so a change in load hits both) and prints
# the median ratio, `no_grad`'s time over grad mode's in the same round: below 1 means `no_grad`
# was faster. Each timed run enters the mode first and then starts the clock: entering and
# leaving `no_grad` has a cost of its own (printed on its own line), which would blur the
# comparison for a forward as small as the toy net's. The toy net's operations are so small
# that bookkeeping is a large share of their time: there is room for a gain. The larger
# MLP's time goes into matrix products: there is little. Run the cell a few times: on a
# machine shared with other programs the ratio moves from run to run, at times by more
# than any gain.

# %% tags=["nbval-ignore-output"]
toy_times = costs.mode_times(net, x, modes, times=20, repeats=21)
mlp_times = costs.mode_times(mlp, torch.randn(64, 512), modes, repeats=9)
print(f"toy net, batch 8 (20 forwards per run): no_grad / grad mode = "
      f"{toy_times['no_grad']['ratio']:.2f}")
print(f"larger MLP, batch 64:                   no_grad / grad mode = "
      f"{mlp_times['no_grad']['ratio']:.2f}")
print(f"entering and leaving no_grad once: {costs.context_seconds('no_grad') * 1e6:.1f} µs "
      "(kept out of the times above)")
print("(measured in this run; it varies)")

# %% [markdown]
# **When `no_grad` changes the kernels.** For the networks above `no_grad` skips bookkeeping
# and nothing else. Not every layer works that way. `nn.MultiheadAttention`,
# `nn.TransformerEncoderLayer` and `nn.TransformerEncoder` have a fused "fast path" that PyTorch
# takes only under conditions its documentation lists; among them: the module is in `eval()`,
# and autograd is off (`no_grad`, `inference_mode`) or nothing involved requires grad. Given a
# padding mask, the encoder also packs the batch into a nested tensor and skips the padded
# tokens. So here `no_grad` changes *which kernels run*.
#
# The profiler shows it without any timing: the fused layer is the operator
# `aten::_transformer_encoder_layer_fwd` (`costs.fast_path_ran` looks for it), fused attention
# alone is `aten::_native_multi_head_attention`. The encoder below has 2 layers of width 128
# and a batch of 8 sequences of 64 tokens, the last half of each one padding.

# %%
encoder = costs.transformer_encoder()            # 2 layers, d_model 128, 4 heads, in eval()
src, pad = costs.padded_batch(batch=8)           # (8, 64, 128) tokens; pad: True = padding


def encode():
    return encoder(src, src_key_padding_mask=pad)


def encode_no_grad():
    with torch.no_grad():
        return encode()


fast = {"grad mode, eval()": costs.fast_path_ran(encode),
        "no_grad, eval()": costs.fast_path_ran(encode_no_grad)}
encoder.train()
fast["no_grad, train()"] = costs.fast_path_ran(encode_no_grad)
encoder.eval()
encoder.requires_grad_(False)
fast["grad mode, eval(), all frozen"] = costs.fast_path_ran(encode)
encoder.requires_grad_(True)
for case, taken in fast.items():
    print(f"{case:30} fast path: {taken}")

attention = nn.MultiheadAttention(128, 4, batch_first=True).eval()   # self-attention alone


def attend():
    return attention(src, src, src, key_padding_mask=pad, need_weights=False)


def attend_no_grad():
    with torch.no_grad():
        return attend()


fused_attention = {label: "aten::_native_multi_head_attention" in costs.operators_run(run)
                   for label, run in [("grad mode", attend), ("no_grad", attend_no_grad)]}
print("MultiheadAttention, fused kernel:", fused_attention)
assert fast == {"grad mode, eval()": False, "no_grad, eval()": True,
                "no_grad, train()": False, "grad mode, eval(), all frozen": True}
assert fused_attention == {"grad mode": False, "no_grad": True}

# %% [markdown]
# The padded tokens show it too: on the fast path they are skipped and come back as exact
# zeros, while the real tokens get the same values as on the ordinary path (up to float
# rounding). `costs.fastpath(False)` turns the fast path off for a block with PyTorch's switch
# `torch.backends.mha.set_fastpath_enabled` (new in PyTorch 2.3; on older versions this cell
# checks the first half only).

# %%
with torch.no_grad():
    fast_out = encode()
print("fast path, padded tokens all zero:", bool((fast_out[pad] == 0).all()))
assert torch.equal(fast_out[pad], torch.zeros_like(fast_out[pad]))
if costs.has_fastpath_switch():
    with torch.no_grad(), costs.fastpath(False):
        slow_out = encode()
    print("fast path off, padded tokens all zero:", bool((slow_out[pad] == 0).all()))
    assert (slow_out[pad] != 0).any()
    assert torch.allclose(fast_out[~pad], slow_out[~pad], atol=1e-5)

# %% [markdown]
# Now the time, with the fast path on and off, each setting against grad mode measured in the
# same rounds (a median of several rounds; it varies from run to run). With the fast path off,
# expect a modest saving at most, from bookkeeping alone, as for the MLP. With it on,
# `no_grad` runs fused kernels on half the tokens. The cell times on one thread
# (`costs.torch_threads(1)`), which a machine shared with other programs disturbs less.

# %% tags=["nbval-ignore-output"]
settings = (True, False) if costs.has_fastpath_switch() else (True,)
for enabled in settings:
    with costs.fastpath(enabled), costs.torch_threads(1):
        times = costs.mode_times(encoder, (src, None, pad), modes, repeats=9, warmup=2)
    print(f"fast path {'on ' if enabled else 'off'}: no_grad / grad mode = "
          f"{times['no_grad']['ratio']:.2f}   (grad mode: "
          f"{times['grad mode']['median'] * 1000:.1f} ms per forward)")
print("(measured in this run; it varies)")

# %% [markdown]
# So "`no_grad` only skips bookkeeping" holds for plain layers, not in general. For a model with
# attention, evaluation under `no_grad` (or `inference_mode`) *and* `eval()` can take a fraction
# of the time the same forward takes with autograd on; how large a fraction depends on the model,
# the padding and the machine, so measure it as above.
#
# ## Further reading
# - [torch.no_grad](https://pytorch.org/docs/stable/generated/torch.no_grad.html)
# - [torch.enable_grad](https://pytorch.org/docs/stable/generated/torch.enable_grad.html) and
#   [torch.set_grad_enabled](https://pytorch.org/docs/stable/generated/torch.set_grad_enabled.html)
# - [Autograd mechanics: locally disabling gradient computation](https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation)
# - [Hooks for saved tensors](https://pytorch.org/tutorials/intermediate/autograd_saved_tensors_hooks_tutorial.html)
# - [nn.TransformerEncoderLayer](https://pytorch.org/docs/stable/generated/torch.nn.TransformerEncoderLayer.html)
#   (the fast path's conditions) and
#   [torch.backends.mha](https://pytorch.org/docs/stable/backends.html#torch-backends-mha)
#
# [Next: 05 · torch.inference_mode](05_inference_mode.ipynb)
