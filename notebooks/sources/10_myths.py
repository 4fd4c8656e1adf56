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
# # 10 · Myths, tested
#
# Eight things people say about PyTorch gradient control, each run on the PyTorch you have
# installed and given a verdict: true, false or it depends.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/10_myths.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/10_myths.ipynb)

# %% [markdown]
# **What you will learn**
# - which popular claims about `detach`, `zero_grad`, freezing, `eval()`, optimizers,
#   `no_grad` and `inference_mode` hold;
# - three probes that settle such claims in your own code: `grad_fn`, `data_ptr()` and the
#   bytes saved for backward;
# - (going deeper) how to measure a speed claim honestly.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb). Each verdict links to the
# notebook that teaches its mechanism; this one only decides the claim.
#
# **Time**: 10 minutes for the core (myths 1 to 3); about 25 more for the "Going deeper"
# sections (myths 4 to 8).

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
# The `L1 -> ReLU -> L2` network of every notebook, its batch and its loss. Most claims are
# about when this graph gets built, and what it keeps alive.

# %%
from helpers import costs, myths

net = helpers.toy_net()
x, y = helpers.toy_batch()
helpers.draw(helpers.run("control"))

# %% [markdown]
# ## Predict first
# Eight claims from tutorials, answers and code reviews. Mark each one: true, false, or it
# depends.

# %%
myths.claims()

# %% [markdown]
# Claim 3 as a question. The previous iteration's `backward()` filled every `.grad`; this one
# calls `net.zero_grad()`, then `optimizer.step()` with no backward in between. Which of
# `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` have `.grad` equal to `None` at the step?

# %%
helpers.predict("zero_grad", clear="model", passes=0)

# %% [markdown]
# ## The claims in code
# Three probes decide most claims, each one line in your own code: `out.grad_fn` (`None`
# means nothing was recorded), `a.data_ptr() == b.data_ptr()` (they start at the same memory
# address), and `costs.saved_tensor_bytes(...)`, the bytes autograd keeps for backward,
# weights not counted.

# %%
out = net(x)
saved = costs.saved_tensor_bytes(net, x, exclude=net)
print("recorded:", out.grad_fn is not None, "| saved for backward:", saved, "bytes")
assert out.grad_fn is not None
assert saved == (8 * 4 + 8 * 3) * 4      # the input and the ReLU output, float32

# %% [markdown]
# ### Myth 1: "`detach()` copies the tensor"

# %%
myths.verdict("detach_copies")

# %%
d = out.detach()
print("same memory:", d.data_ptr() == out.data_ptr(), "| history:", d.grad_fn)
assert d.data_ptr() == out.data_ptr() and d.grad_fn is None
assert out.detach().clone().data_ptr() != out.data_ptr()   # the copy
d.mul_(1)                                    # an in-place edit through the detached tensor
assert out._version == d._version == 1       # moves the version counter both share

# %% [markdown]
# ### Myth 2: "`no_grad` is faster than `detach` because `detach` copies"

# %%
myths.verdict("no_grad_beats_detach")

# %% [markdown]
# Myth 1 disposed of the "because". What differs is *when* autograd stops: detaching the
# output after the forward comes too late, the activations were already saved.

# %%
saved = {mode: costs.saved_tensor_bytes(costs.forward_in_mode(mode, net, x), exclude=net)
         for mode in costs.FORWARD_MODES}
print("bytes saved for backward:", saved)
assert saved["detach after"] == saved["grad mode"] > 0
assert saved["no_grad"] == saved["inference_mode"] == 0

# %% [markdown]
# ### Myth 3: "`model.zero_grad()` zeros in place, `optimizer.zero_grad()` sets `None`"

# %%
myths.verdict("zero_grad_differ")

# %%
def state(p, before):
    if p.grad is None:
        return "None"
    return "zeros, same tensor" if p.grad is before and not p.grad.any() else "kept"


after = {}
for label, call in helpers.ZERO_GRAD_CALLS.items():
    model = helpers.toy_net()
    optimizer = torch.optim.SGD(model.l2.parameters(), lr=0.1)     # the optimizer holds l2
    helpers.toy_loss(model(x), y).backward()
    before = {name: p.grad for name, p in model.named_parameters()}
    call(model, optimizer)
    after[label] = {name: state(p, before[name]) for name, p in model.named_parameters()}
    print(f"{label:40} l1: {after[label]['l1.weight']:18} l2: {after[label]['l2.weight']}")
assert set(after["model.zero_grad()"].values()) == {"None"}
assert set(after["model.zero_grad(set_to_none=False)"].values()) == {"zeros, same tensor"}
assert after["optimizer.zero_grad()"] == {"l1.weight": "kept", "l1.bias": "kept",
                                          "l2.weight": "None", "l2.bias": "None"}
assert after["optimizer.zero_grad(set_to_none=False)"] == {
    "l1.weight": "kept", "l1.bias": "kept",
    "l2.weight": "zeros, same tensor", "l2.bias": "zeros, same tensor"}

# %% [markdown]
# ## Explorer
# Myth 3's step in notebook 01's explorer. Switch `clear` to
# `optimizer.zero_grad(set_to_none=False)` for zeros, or give the optimizer only `l2`.

# %%
helpers.explore("zero_grad", clear="model", passes=0)

# %% [markdown]
# ## Why
# The myths mix up things PyTorch keeps apart: a tensor's memory and its history (myths 1
# and 2), what `zero_grad()` clears and what it leaves (3), a layer's mode and autograd's (5).
# Every verdict is decided by a cell that runs, so an upgrade that changes the behaviour fails
# this notebook's tests (timings excepted: shown, never asserted). All eight verdicts:

# %%
table = myths.table()
assert table.column("verdict").count("false") == 7 and len(table.rows) == 8
table

# %% [markdown]
# ## Recap
# - `detach()` shares memory; `no_grad` saves memory by not recording, not by avoiding a copy.
# - Both `zero_grad()`s set `.grad` to `None`; they differ in scope.
# - Decide a claim with a probe: `grad_fn`, `data_ptr()`, bytes saved for backward.
#
# Next: [11 · Why is my gradient None?](11_debugging.ipynb), or go deeper below.

# %% [markdown]
# ## Going deeper: myths 4 to 7 (about 5 minutes)
# Each myth gets its verdict and one cell that decides it, with a link to the notebook that
# teaches the mechanism.

# %% [markdown]
# ### Myth 4: "`requires_grad=False` replaces `no_grad` for inference"

# %%
myths.verdict("requires_grad_replaces_no_grad")

# %% [markdown]
# A fully frozen model on a plain batch records nothing. Let the input require grad (a saliency
# map, an adversarial example) and it records again; under `no_grad` nothing is recorded,
# whatever requires grad. Freezing is taught in
# [02 · requires_grad_(False)](02_requires_grad.ipynb).

# %%
frozen = helpers.toy_net().requires_grad_(False)
x_grad = x.clone().requires_grad_()
with torch.no_grad():
    under_no_grad = frozen(x_grad)
print("frozen, plain input:       ", frozen(x).grad_fn)
print("frozen, input requires grad:", type(frozen(x_grad).grad_fn).__name__,
      costs.saved_tensor_bytes(frozen, x_grad, exclude=frozen), "bytes saved")
print("the same under no_grad:     ", under_no_grad.grad_fn)
assert frozen(x).grad_fn is None and costs.saved_tensor_bytes(frozen, x, exclude=frozen) == 0
assert frozen(x_grad).grad_fn is not None and under_no_grad.grad_fn is None
assert costs.saved_tensor_bytes(frozen, x_grad, exclude=frozen) == 8 * 3 * 4  # ReLU output

# %% [markdown]
# ### Myth 5: "`eval()` turns off autograd"

# %%
myths.verdict("eval_stops_autograd")

# %% [markdown]
# A model in `eval()` still records, and `backward()` still fills every `.grad`.
# [04 · torch.no_grad](04_no_grad.ipynb) shows how the two switches differ.

# %%
model = helpers.toy_net().eval()
helpers.toy_loss(model(x), y).backward()
print("training:", model.training,
      "| grads filled:", [p.grad is not None for p in model.parameters()])
assert not model.training and all(p.grad is not None for p in model.parameters())

# %% [markdown]
# ### Myth 6: "Optimizers skip frozen parameters"

# %%
myths.verdict("optimizers_skip_frozen")

# %% [markdown]
# The registry's `optimizer_subsets` step trains 3 steps, freezes `l1`, then trains 3 more.
# Frozen with grads `None`, `l1` stays put with these four optimizers; frozen with grads
# zeroed, it moves whenever the optimizer has momentum, moments or weight decay.
# [06 · Optimizer parameter subsets](06_optimizer_subsets.ipynb) runs every built-in optimizer.

# %%
names = ["sgd", "momentum", "adam", "adamw"]
moved = {(name, freezing): helpers.run("optimizer_subsets", params="all", optimizer=name,
                                       excluded=freezing).params["l1.weight"].changed
         for name in names for freezing in ["frozen", "zeros"]}
print("l1 moved?   with grads None   with grads zeroed")
for name in names:
    print(f"{name:12}{moved[name, 'frozen']!s:18}{moved[name, 'zeros']}")
assert not any(moved[name, "frozen"] for name in names)
assert moved["momentum", "zeros"] and moved["adam", "zeros"] and moved["adamw", "zeros"]
assert not moved["sgd", "zeros"]  # plain SGD: zero grad, no state, no decay: no move
assert helpers.optimizers.moves(torch.optim.LBFGS, freeze="none")["l1.weight"]  # the exception

# %% [markdown]
# ### Myth 7: "`inference_mode` cannot be mixed with grad-enabled code"

# %%
myths.verdict("inference_mode_isolated")

# %% [markdown]
# Grad-mode code may *read* an inference tensor: `w + f` saves nothing for backward. What is
# refused is *saving* one (or editing it in place): L2 saves its input, so it refuses features
# L1 made in inference mode; `.clone()` outside the mode fixes that, and
# `inference_mode(False)` records again inside the block. The rules are in
# [05 · torch.inference_mode](05_inference_mode.ipynb).

# %%
w = torch.ones(3, requires_grad=True)
with torch.inference_mode():
    f = torch.arange(3.0)
    features = torch.relu(net.l1(x))
(w + f).sum().backward()
print("read an inference tensor: w.grad =", w.grad.tolist())
try:
    net.l2(features)
except RuntimeError as e:
    print("saved one:", str(e).split(". ")[0])
    assert "Inference tensors cannot be saved for backward" in str(e)
else:
    raise AssertionError("expected a RuntimeError")
assert net.l2(features.clone()).grad_fn is not None     # the fix: a normal copy
assert f.is_inference() and torch.equal(w.grad, torch.ones(3))
try:
    f.add_(1)                                            # editing one in place: refused
except RuntimeError as e:
    assert "Inplace update to inference tensor outside InferenceMode" in str(e)
else:
    raise AssertionError("expected a RuntimeError")
with torch.inference_mode():
    with torch.inference_mode(False):                    # records again inside the block
        r = w * 2
assert r.grad_fn is not None and not r.is_inference()

# %% [markdown]
# ## Going deeper: myth 8 and measuring time (about 4 minutes)
# A speed claim needs a measurement: several runs, in turns, a median, a ratio to a baseline
# from the same run, and no promise about the number.

# %% [markdown]
# ### Myth 8: "`inference_mode` is much faster than `no_grad`"

# %%
myths.verdict("inference_mode_much_faster")

# %% [markdown]
# `costs.mode_costs` runs one forward four ways (grad mode, `no_grad`, `inference_mode`, grad
# mode then `.detach()`), timed in turns for 9 rounds, and reports the median time as a ratio
# to grad mode in the same run, the peak memory and the bytes saved for backward. Two
# networks: the toy net (tiny ops) and `costs.larger_mlp(width=512)` (four `Linear(512, 512)`
# + ReLU, then `Linear(512, 1)`; batch 64). Times vary, so the next two cells' outputs are not
# checked and nothing asserts a time.

# %% tags=["nbval-ignore-output"]
measured = {
    "toy net": costs.mode_costs(net, x, times=100, repeats=9),
    "larger MLP": costs.mode_costs(costs.larger_mlp(width=512), batch=64, repeats=9),
}
myths.cost_table(measured)

# %% tags=["nbval-ignore-output"]
myths.cost_chart(measured)

# %% [markdown]
# Memory does not vary: `inference_mode` saves exactly what `no_grad` saves, on both networks.

# %%
for network, result in measured.items():
    modes = result["modes"]
    print(f"{network:10}  peak: no_grad {modes['no_grad']['peak_bytes']:>7,} B, "
          f"inference_mode {modes['inference_mode']['peak_bytes']:>7,} B")
    assert modes["inference_mode"]["peak_bytes"] == modes["no_grad"]["peak_bytes"]
    assert modes["inference_mode"]["saved_bytes"] == modes["no_grad"]["saved_bytes"] == 0
    assert modes["detach after"]["peak_bytes"] == modes["grad mode"]["peak_bytes"]

# %% [markdown]
# Time: inference mode skips per-tensor bookkeeping (version counters, view tracking), a cost
# per op, not per number. A gain can show on the toy net's tiny ops; on the MLP it is lost in
# the noise. Some layers switch kernels when autograd is off, under both modes alike: a
# Transformer encoder in `eval()` takes its fused "fast path" under `no_grad` and
# `inference_mode`, not in grad mode, and detaching afterwards is too late for it. The profiler
# says which operators ran, without timing anything.

# %%
encoder = costs.transformer_encoder()     # 2 layers, eval(); 8 sequences, half padding
src, pad = costs.padded_batch(batch=8)
fast_path = {mode: costs.fast_path_ran(costs.forward_in_mode(mode, encoder, (src, None, pad)))
             for mode in costs.FORWARD_MODES}
print("Transformer encoder, fast path taken:", fast_path)
assert fast_path == {"grad mode": False, "no_grad": True, "inference_mode": True,
                     "detach after": False}

# %% [markdown]
# Expect "slightly faster at best", not "much faster": choose `inference_mode` for the rules it
# enforces, not for speed.

# %% [markdown]
# ## Going deeper: pitfalls (about 2 minutes)
# Two bugs that follow from believing myths 3 and 4.

# %% [markdown]
# ### Adding into `.grad` right after `zero_grad()`
# Code from before PyTorch 2.0 adds a penalty into `.grad` right after clearing. Believing
# myth 3, you switch to `model.zero_grad()` to keep the zeros. Both calls leave `None`. Fix:
# `set_to_none=False` (it zeros only grads that exist), or handle `None`.

# %%
model = helpers.toy_net()
helpers.toy_loss(model(x), y).backward()
model.zero_grad()
try:
    for p in model.parameters():
        p.grad.add_(0.01 * p.detach().sign())     # an L1 penalty's gradient, added by hand
except AttributeError as e:
    print(type(e).__name__ + ":", e)
    assert "'NoneType' object has no attribute 'add_'" in str(e)
else:
    raise AssertionError("expected an AttributeError")
helpers.toy_loss(model(x), y).backward()
model.zero_grad(set_to_none=False)                # the fix: zeros, in the same tensors
for p in model.parameters():
    p.grad.add_(0.01 * p.detach().sign())
assert all(torch.equal(p.grad, 0.01 * p.detach().sign()) for p in model.parameters())
fresh = helpers.toy_net()
fresh.zero_grad(set_to_none=False)
assert all(p.grad is None for p in fresh.parameters())   # it zeros only grads that exist

# %% [markdown]
# ### Freezing the model to evaluate it
# Believing myth 4, an evaluation helper freezes the model. Nobody unfreezes it, and the next
# training step has nothing to backward through. Fix: evaluate under `no_grad`, which leaves
# every flag as it found it.

# %%
def evaluate_by_freezing(model):
    model.requires_grad_(False)
    return helpers.toy_loss(model(x), y).item()


@torch.no_grad()
def evaluate_without_recording(model):
    return helpers.toy_loss(model(x), y).item()


model = helpers.toy_net()
evaluate_by_freezing(model)
try:
    helpers.toy_loss(model(x), y).backward()          # the next training step
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "does not require grad and does not have a grad_fn" in str(e)
else:
    raise AssertionError("expected a RuntimeError")
model = helpers.toy_net()
evaluate_without_recording(model)
helpers.toy_loss(model(x), y).backward()
assert all(p.requires_grad and p.grad is not None for p in model.parameters())

# %% [markdown]
# ## Going deeper: exercises (about 15 minutes)
# **10.1** Which of these leave `out.grad_fn` equal to `None`? Each starts from a fresh
# `net = helpers.toy_net()` and `x, _ = helpers.toy_batch()`. Answer with a set of letters.
#
# - (a) `net.l1.requires_grad_(False); out = net(x)`
# - (b) `with torch.inference_mode(): out = net(x)`
# - (c) `out = net(x.detach())`
# - (d) `net.requires_grad_(False)`, then `with torch.enable_grad(): out = net(x)`
# - (e) `with torch.no_grad(): h = torch.relu(net.l1(x))`, then `out = net.l2(h)`

# %%
answer = ...  # e.g. {"a", "c"}
helpers.check("10.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"b", "d"}`. Inference mode records nothing (b). `enable_grad()` turns recording on, but an
# op is recorded only when one of its inputs requires grad, and in (d) nothing does. In (a)
# L2's weights still require grad; in (c) `x` had no history to cut, and the parameters
# require grad; in (e) only L1 ran under `no_grad`, and L2 ran after the block.
# </details>
#
# **10.2** The larger MLP, `mlp = costs.larger_mlp(width=512)`, on a batch of 16 rows,
# `inputs = torch.randn(16, 512)`. How many bytes does one forward save for backward, not
# counting the weights, in each mode of `costs.FORWARD_MODES` (grad mode, `no_grad`,
# `inference_mode`, grad mode then `.detach()`)? Count by hand, then check with
# `costs.saved_tensor_bytes(costs.forward_in_mode(mode, mlp, inputs), exclude=mlp)`. Answer
# with a tuple of four ints, in that order.

# %%
answer = ...  # e.g. (1, 2, 3, 4)
helpers.check("10.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `(163840, 0, 0, 163840)`. Grad mode keeps the input (for the first weight's gradient) and
# the four ReLU outputs, each 16 × 512 floats of 4 bytes: 5 × 32,768. Detaching the output
# afterwards comes too late: the forward has already saved them. `no_grad` and
# `inference_mode` keep nothing.
# </details>
#
# **10.3** A teacher makes targets in inference mode, and a student trains on them
# (`F` is `torch.nn.functional`):
#
# ```python
# teacher, student = helpers.toy_net(seed=1), helpers.toy_net()
# with torch.inference_mode():
#     target = teacher(x)
# loss = ...                     # (a), (b) or (c)
# loss.backward()
# ```
#
# - (a) `F.mse_loss(student(x), target)`
# - (b) `((student(x) - target) ** 2).mean()`
# - (c) `F.mse_loss(student(x), target.clone())`
#
# Which of the three run without an error? Answer with a set of letters.

# %%
answer = ...  # e.g. {"a"}
helpers.check("10.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"b", "c"}`. `F.mse_loss` saves its target for backward, and an inference tensor cannot be
# saved: (a) raises "Inference tensors cannot be saved for backward". In (b) the subtraction
# saves nothing and the square saves the difference, a normal tensor. In (c) the clone, made
# outside the mode, is a normal tensor. `torch.no_grad()` for the teacher would avoid the
# question altogether.
# </details>
#
# **10.4** Why is `net.l1.weight.grad` `None` after this step? Someone decorated a small
# helper, since "statistics need no gradient":
#
# ```python
# @torch.inference_mode()
# def normalise(t):
#     return (t - t.mean(0)) / t.std(0)
#
# net = helpers.toy_net()
# h = torch.relu(net.l1(x))
# out = net.l2(normalise(h).clone())    # clone(): L2 may not save an inference tensor
# helpers.toy_loss(out, y).backward()
# ```
#
# - (a) `normalise` runs in inference mode, so its result has no history back to L1
# - (b) `.clone()` copies the values but not the history
# - (c) normalising by the standard deviation has no gradient
#
# Answer with one letter. Try `h.clone().grad_fn`, and the step without the decorator.

# %%
answer = ...  # e.g. "c"
helpers.check("10.4", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# (a). Inside the decorated call nothing is recorded, so `normalise(h)` has no `grad_fn` and
# the loss cannot reach L1; L2 still trains. `.clone()` is recorded like any other operation
# (`h.clone().grad_fn` is a `CloneBackward0`), and without the decorator L1 gets a gradient
# through the normalisation. Use the decorator only where no gradient must flow.
# </details>

# %% [markdown]
# ## Further reading
# - [Autograd mechanics: locally disabling gradient computation](https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation)
#   (grad modes, `eval()`, inference mode)
# - [`torch.Tensor.detach`](https://pytorch.org/docs/stable/generated/torch.Tensor.detach.html)
# - [`torch.optim.Optimizer.zero_grad`](https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.zero_grad.html)
#   and [`torch.nn.Module.zero_grad`](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.zero_grad)
# - [`torch.inference_mode`](https://pytorch.org/docs/stable/generated/torch.autograd.grad_mode.inference_mode.html)
# - [PyTorch Benchmark recipe](https://pytorch.org/tutorials/recipes/recipes/benchmark.html)
#   (timing code fairly)
#
# ## The series
# 0. [Start here: reading gradients in PyTorch](00_start_here.ipynb)
# 1. [zero_grad: clearing gradients](01_zero_grad.ipynb)
# 2. [requires_grad_(False): freezing layers](02_requires_grad.ipynb)
# 3. [detach: cutting the graph](03_detach.ipynb)
# 4. [torch.no_grad: not recording](04_no_grad.ipynb)
# 5. [torch.inference_mode](05_inference_mode.ipynb)
# 6. [Optimizer parameter subsets: what the optimizer moves](06_optimizer_subsets.ipynb)
# 7. [Manual gradient edits: changing `.grad` before the step](07_manual_grad_edits.ipynb)
# 8. [Compare them all: choosing the right tool](08_compare_all.ipynb)
# 9. [Patterns from real training code](09_patterns.ipynb)
# 10. **Myths, tested** (this notebook)
# 11. [Why is my gradient None?](11_debugging.ipynb)
# 12. [Gradient control at scale](12_at_scale.ipynb)
# 13. [Writing your own gradients](13_custom_gradients.ipynb)
#
# Next: [11 · Why is my gradient None?](11_debugging.ipynb) takes all of this to your own
# model, or go [back to the start: 00 · Start here](00_start_here.ipynb).
