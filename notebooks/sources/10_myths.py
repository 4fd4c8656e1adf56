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
#   `no_grad` and `inference_mode` hold, and the few lines of code that decide each one;
# - three probes that settle such claims in your own code: `grad_fn`, `data_ptr()` and the
#   bytes saved for backward;
# - how to measure a speed claim honestly: several runs, interleaved, a median, a ratio to a
#   baseline from the same run, and no promise about the number.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb). Each claim links to the notebook
# that teaches its mechanism in full; this one only decides the claim.
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
# The same `L1 -> ReLU -> L2` network as in every notebook, its batch of 8 examples and its
# mean-squared-error loss. Here is the graph of one plain training step. Most claims below are
# about when this graph gets built, and what it keeps alive.

# %%
from helpers import costs, myths

net = helpers.toy_net()
x, y = helpers.toy_batch()
helpers.draw(helpers.run("control"))

# %% [markdown]
# ## Predict first
# Eight claims you will meet in tutorials, answers and code reviews. Before you scroll on, mark
# each one: true, false, or it depends.

# %%
myths.claims()

# %% [markdown]
# Claim 3 as a question about the toy net. The previous iteration's `backward()` filled every
# `.grad`; this iteration calls `model.zero_grad()` and then, with no backward in between,
# `optimizer.step()`:
#
# ```python
# net.zero_grad()
# optimizer.step()
# ```
#
# Which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` have `.grad` equal to `None` at the
# step? Decide before you scroll on. With a live kernel, tick your answer and press the button.

# %%
helpers.predict("zero_grad", clear="model", passes=0,
                why="All four: model.zero_grad() sets .grad to None by default, exactly as "
                    "optimizer.zero_grad() does. If you ticked none, you expected zeros: "
                    "that is claim 3, and it is false.")

# %% [markdown]
# ## How a claim is tested here
# Three probes decide most claims. Each is one line you can use in your own code:
# - `out.grad_fn`: `None` means autograd recorded nothing that produced `out`;
# - `a.data_ptr() == b.data_ptr()`: the two tensors start at the same memory (compare the
#   addresses; there is no need to print them);
# - `costs.saved_tensor_bytes(function, exclude=model)`: the bytes autograd keeps for backward
#   while `function` runs, not counting the model's own weights. It counts tensors, so it gives
#   the same number on every run.

# %%
out = net(x)
print("recorded:", out.grad_fn is not None)
print("detach() on the same memory:", out.detach().data_ptr() == out.data_ptr())
print("saved for backward:", costs.saved_tensor_bytes(net, x, exclude=net), "bytes")

# %%
assert out.grad_fn is not None and out.detach().data_ptr() == out.data_ptr()
assert costs.saved_tensor_bytes(net, x, exclude=net) == (8 * 4 + 8 * 3) * 4  # x, ReLU output

# %% [markdown]
# ## Explorer
# One claim has switches worth clicking: claim 6, about optimizers and frozen parameters. The
# step trains 3 steps, freezes `l1`, then trains 3 more; "changed by step" covers only those
# last 3. It starts with SGD with momentum and `l1` frozen with its grads zeroed. Switch the
# freezing to `requires_grad_(False)` alone (grads `None`), then try the other optimizers. With
# a live kernel, click and watch.

# %%
helpers.explore("optimizer_subsets", params="all", optimizer="momentum", excluded="zeros")

# %% [markdown]
# ## Truth table
# All the verdicts at once, readable without a kernel. The cells below decide each one on the
# PyTorch installed here, so an upgrade that changes the behaviour fails the notebook's tests.

# %%
myths.table()

# %% [markdown]
# ## What happened and why
# Each claim below is a heading, then its verdict, then the cells that decide it.
#
# ### The costs, measured once
# Claims 2 and 8 are about cost, so first the measurement. `costs.mode_costs` runs the same
# forward pass four ways: in grad mode, under `no_grad`, under `inference_mode`, and in grad
# mode followed by `.detach()` on the output. For each it reports:
# - the **time**: the median over several runs, with the four modes timed in turns (a change in
#   the machine's load hits all four), as a ratio to grad mode measured in the same run; each
#   mode is entered before its clock starts, and what entering and leaving it costs is a column
#   of its own;
# - the **peak memory** the forward allocates, from the profiler;
# - the bytes **saved for backward**, beyond the weights.
#
# Two networks: the toy net (100 forwards per timed run), where each op is tiny, and the larger
# MLP (`costs.larger_mlp()`: four `Linear(1024, 1024)` + ReLU layers, a batch of 64), where the
# matrix products dominate. Times vary from run to run and machine to machine: the next two
# cells' outputs are not checked, and nothing in this notebook asserts a time. The memory
# numbers do not vary; the claims below assert them.

# %% tags=["nbval-ignore-output"]
measured = {
    "toy net": costs.mode_costs(net, x, times=100, repeats=21),
    "larger MLP": costs.mode_costs(costs.larger_mlp(), batch=64, repeats=21),
}
myths.cost_table(measured)

# %% tags=["nbval-ignore-output"]
import matplotlib.pyplot as plt

myths.cost_chart(measured)
plt.show()

# %% [markdown]
# ### Myth 1: "`detach()` copies the tensor"

# %%
myths.verdict("detach_copies")

# %% [markdown]
# Same memory, and the same version counter: an in-place edit through one shows in the other,
# and `backward()` notices it, because the loss saved `out` (notebook 03 has the details). A
# copy needs `.clone()`.

# %%
out = net(x)
loss = helpers.toy_loss(out, y)           # the loss saves out for its backward
d = out.detach()
d.zero_()                                 # edit the detached tensor in place
c = out.detach().clone()
print("same memory:", d.data_ptr() == out.data_ptr(), "| out is now all zeros:",
      torch.equal(out, torch.zeros_like(out)))
print("detach().clone() on the same memory:", c.data_ptr() == out.data_ptr())
try:
    loss.backward()
except RuntimeError as e:
    print("backward():", type(e).__name__ + ":", str(e).split(":")[0])
    assert "modified by an inplace operation" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %%
assert d.data_ptr() == out.data_ptr() and torch.equal(out, torch.zeros_like(out))
assert c.data_ptr() != out.data_ptr()

# %% [markdown]
# ### Myth 2: "`no_grad` is faster than `detach` because `detach` copies"

# %%
myths.verdict("no_grad_beats_detach")

# %% [markdown]
# Myth 1 disposed of the "because". What does differ is *when* autograd stops. Detaching the
# output after the forward cannot undo the work: the graph was built, and the activations were
# saved, while the forward ran. The memory measured above says so to the byte, on both
# networks.

# %%
for network, result in measured.items():
    print(network)
    for mode, m in result["modes"].items():
        print(f"  {mode:15} saved for backward {m['saved_bytes']:>9,} B   "
              f"peak {m['peak_bytes']:>9,} B")

# %%
for result in measured.values():
    modes = result["modes"]
    assert modes["detach after"]["saved_bytes"] == modes["grad mode"]["saved_bytes"] > 0
    assert modes["detach after"]["peak_bytes"] == modes["grad mode"]["peak_bytes"]
    assert modes["no_grad"]["saved_bytes"] == 0
mlp = measured["larger MLP"]["modes"]
assert mlp["grad mode"]["saved_bytes"] == 5 * 64 * 1024 * 4  # input + 4 ReLU outputs, floats
assert mlp["no_grad"]["peak_bytes"] < mlp["grad mode"]["peak_bytes"]

# %% [markdown]
# So `no_grad` is cheaper in memory, for a reason that has nothing to do with copying. In time,
# for these two networks the same operators run with autograd on and off, and only the
# bookkeeping differs: the ratios in the table above give its size on this machine, in this
# run. Some layers go further. A Transformer encoder in `eval()` runs a fused "fast path" only
# when autograd is off, so detaching its output afterwards is too late for that as well. The
# profiler says which operators ran, without any timing; notebook 04 ("Going deeper") times the
# difference.

# %%
def operators(mode, model, inputs):
    return costs.operators_run(costs.forward_in_mode(mode, model, inputs))


same_operators = all(operators(mode, model, inputs) == operators("grad mode", model, inputs)
                     for mode in ["no_grad", "inference_mode"]
                     for model, inputs in [(net, x), (costs.larger_mlp(), torch.randn(64, 1024))])
encoder = costs.transformer_encoder()     # 2 layers, eval(); 16 sequences, half padding
src, pad = costs.padded_batch()
fast_path = {mode: costs.fast_path_ran(costs.forward_in_mode(mode, encoder, (src, None, pad)))
             for mode in costs.FORWARD_MODES}
print("toy net and MLP, same operators with autograd on and off:", same_operators)
print("Transformer encoder, fast path taken:", fast_path)

# %%
assert same_operators
assert fast_path == {"grad mode": False, "no_grad": True, "inference_mode": True,
                     "detach after": False}

# %% [markdown]
# ### Myth 3: "`model.zero_grad()` zeros in place, `optimizer.zero_grad()` sets `None`"

# %%
myths.verdict("zero_grad_differ")

# %% [markdown]
# The four calls, each after a backward pass on a fresh toy net (the same four calls notebook
# 01's exercise uses). What is `l1.weight.grad` afterwards?

# %%
after = {}
for label, call in helpers.ZERO_GRAD_CALLS.items():
    model = helpers.toy_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    helpers.toy_loss(model(x), y).backward()
    grad = model.l1.weight.grad
    call(model, optimizer)
    now = model.l1.weight.grad
    after[label] = "None" if now is None else f"zeros: {not now.any()}, same tensor: {now is grad}"
    print(f"{label:40} -> {after[label]}")

# %%
assert after["model.zero_grad()"] == after["optimizer.zero_grad()"] == "None"
assert (after["model.zero_grad(set_to_none=False)"]
        == after["optimizer.zero_grad(set_to_none=False)"] == "zeros: True, same tensor: True")

# %% [markdown]
# What does differ is scope. With an optimizer over `l2` only, `optimizer.zero_grad()` leaves
# `l1`'s gradient where it is; `model.zero_grad()` clears every parameter of the model.

# %%
model = helpers.toy_net()
optimizer = torch.optim.SGD(model.l2.parameters(), lr=0.1)
helpers.toy_loss(model(x), y).backward()
optimizer.zero_grad()
by_optimizer = [name for name, p in model.named_parameters() if p.grad is None]
model.zero_grad()
by_model = [name for name, p in model.named_parameters() if p.grad is None]
print("None after optimizer.zero_grad():", by_optimizer)
print("None after model.zero_grad():    ", by_model)

# %%
assert by_optimizer == ["l2.weight", "l2.bias"]
assert by_model == list(helpers.PARAM_NAMES)

# %% [markdown]
# ### Myth 4: "`requires_grad=False` replaces `no_grad` for inference"

# %%
myths.verdict("requires_grad_replaces_no_grad")

# %% [markdown]
# Freeze every parameter of the toy net and feed it a plain batch: nothing is recorded and
# nothing is saved, as under `no_grad`. So far the claim holds.

# %%
frozen = helpers.toy_net().requires_grad_(False)
out = frozen(x)
print("grad_fn:", out.grad_fn, "| saved for backward:",
      costs.saved_tensor_bytes(frozen, x, exclude=frozen), "bytes")

# %%
assert out.grad_fn is None and costs.saved_tensor_bytes(frozen, x, exclude=frozen) == 0

# %% [markdown]
# Now let the input require grad, as it does when you compute a saliency map or an adversarial
# example against a frozen model. Autograd records again: the gradient must reach the input
# through the frozen layers, so the ReLU output is saved. Under `no_grad` nothing is recorded,
# whatever requires grad. A model frozen only in part, as in fine-tuning, records too.

# %%
x_grad = x.clone().requires_grad_()


def frozen_under_no_grad():
    with torch.no_grad():
        return frozen(x_grad)


out = frozen(x_grad)
print("frozen, input requires grad:", type(out.grad_fn).__name__, "|",
      costs.saved_tensor_bytes(frozen, x_grad, exclude=frozen), "bytes saved")
print("the same under no_grad:     ", frozen_under_no_grad().grad_fn, "|",
      costs.saved_tensor_bytes(frozen_under_no_grad, exclude=frozen), "bytes saved")

# %%
assert out.grad_fn is not None
assert costs.saved_tensor_bytes(frozen, x_grad, exclude=frozen) == 8 * 3 * 4  # ReLU output
assert frozen_under_no_grad().grad_fn is None
assert costs.saved_tensor_bytes(frozen_under_no_grad, exclude=frozen) == 0
half_frozen = helpers.toy_net()
half_frozen.l1.requires_grad_(False)
assert half_frozen(x).grad_fn is not None

# %% [markdown]
# Freezing also changes the model, until someone unfreezes it: see the pitfalls. Notebook 02
# teaches freezing.

# %% [markdown]
# ### Myth 5: "`eval()` turns off autograd"

# %%
myths.verdict("eval_stops_autograd")

# %%
model = helpers.toy_net()
model.eval()
out = model(x)
print("training:", model.training, "| grad enabled:", torch.is_grad_enabled(),
      "| grad_fn:", type(out.grad_fn).__name__)
helpers.toy_loss(out, y).backward()
print("grads after backward:", [p.grad is not None for p in model.parameters()])

# %%
assert not model.training and torch.is_grad_enabled() and out.grad_fn is not None
assert all(p.grad is not None for p in model.parameters())

# %% [markdown]
# Notebook 04 shows the other half: under `no_grad` a Dropout layer in training mode still
# drops. The two switches are independent, and evaluation code wants both.

# %% [markdown]
# ### Myth 6: "Optimizers skip frozen parameters"

# %%
myths.verdict("optimizers_skip_frozen")

# %% [markdown]
# The optimizer holds every parameter. After one step, `l1` is frozen, but the loop clears
# with `set_to_none=False`, so `l1.weight.grad` is a tensor of zeros, not `None`.

# %%
model = helpers.toy_net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
helpers.toy_loss(model(x), y).backward()
optimizer.step()

model.l1.requires_grad_(False)           # frozen ...
optimizer.zero_grad(set_to_none=False)   # ... but its grad is zeros, not None
before = model.l1.weight.detach().clone()
helpers.toy_loss(model(x), y).backward()
optimizer.step()
print("requires_grad:", model.l1.weight.requires_grad,
      "| grad all zeros:", not model.l1.weight.grad.any(),
      "| moved:", not torch.equal(model.l1.weight, before))

# %%
assert not model.l1.weight.requires_grad and not model.l1.weight.grad.any()
assert not torch.equal(model.l1.weight, before)      # the momentum buffer moved it

# %% [markdown]
# The same with four optimizers, using the registry's `optimizer_subsets` step (the explorer's
# step: 3 steps, freeze `l1`, 3 more). Frozen with grads `None`, `l1` stays put with these four;
# frozen with grads zeroed, it moves whenever the optimizer has something besides the gradient:
# momentum, Adam's moments, weight decay. "Grads `None` keep it still" does not hold for every
# optimizer: LBFGS moves it. Notebook 06 runs every built-in optimizer and teaches the whole
# picture.

# %%
moved = {}
for optimizer_name in ["sgd", "momentum", "adam", "adamw"]:
    for freezing in ["frozen", "zeros"]:
        outcome = helpers.run("optimizer_subsets", params="all", optimizer=optimizer_name,
                              excluded=freezing)
        moved[optimizer_name, freezing] = outcome.params["l1.weight"].changed
print("l1 moved?   with grads None   with grads zeroed")
for name in ["sgd", "momentum", "adam", "adamw"]:
    print(f"{name:12}{moved[name, 'frozen']!s:18}{moved[name, 'zeros']}")

# %%
assert not any(moved[name, "frozen"] for name in ["sgd", "momentum", "adam", "adamw"])
assert moved["momentum", "zeros"] and moved["adam", "zeros"] and moved["adamw", "zeros"]
assert not moved["sgd", "zeros"]  # plain SGD: zero grad, no state, no decay: no move

# %% [markdown]
# ### Myth 7: "`inference_mode` cannot be mixed with grad-enabled code"

# %%
myths.verdict("inference_mode_isolated")

# %% [markdown]
# A tensor made in inference mode, used outside it by code that records. Reading it is fine:
# `w + f` is recorded and `backward()` reaches `w`, because an addition saves nothing for
# backward.

# %%
w = torch.ones(3, requires_grad=True)
with torch.inference_mode():
    f = torch.arange(3.0)
(w + f).sum().backward()
print("f is an inference tensor:", f.is_inference(), "| w.grad:", w.grad.tolist())

# %%
assert f.is_inference() and torch.equal(w.grad, torch.ones(3))

# %% [markdown]
# What is refused is *saving* an inference tensor for backward (or editing one in place outside
# the mode). A
# `Linear` layer saves its input to compute its weight's gradient, so L2 refuses features that
# L1 made in inference mode. The fix beside it: `.clone()` outside the mode makes a normal
# tensor.

# %%
model = helpers.toy_net()
with torch.inference_mode():
    features = torch.relu(model.l1(x))
try:
    model.l2(features)
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).split(". ")[0])
    assert "Inference tensors cannot be saved for backward" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

helpers.toy_loss(model.l2(features.clone()), y).backward()   # the fix: a normal copy
print("l2 trains:", model.l2.weight.grad is not None)

# %%
assert model.l2.weight.grad is not None and model.l1.weight.grad is None
try:
    f.add_(1)                                # editing an inference tensor in place
except RuntimeError as e:
    assert "Inplace update to inference tensor outside InferenceMode" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# And inside the block, `torch.inference_mode(False)` records again (notebook 05 has the rest
# of the rules).

# %%
with torch.inference_mode():
    with torch.inference_mode(False):
        r = w * 2
print("recorded inside inference_mode(False):", type(r.grad_fn).__name__)
assert r.requires_grad and r.grad_fn is not None and not r.is_inference()

# %% [markdown]
# ### Myth 8: "`inference_mode` is much faster than `no_grad`"

# %%
myths.verdict("inference_mode_much_faster")

# %% [markdown]
# Memory first. In the measurements above, `inference_mode` saves what `no_grad` saves, to the
# byte, on both networks: nothing for backward, and the same peak.

# %%
for network, result in measured.items():
    modes = result["modes"]
    print(f"{network:10}  peak: no_grad {modes['no_grad']['peak_bytes']:>7,} B, "
          f"inference_mode {modes['inference_mode']['peak_bytes']:>7,} B")

# %%
for result in measured.values():
    modes = result["modes"]
    assert modes["inference_mode"]["peak_bytes"] == modes["no_grad"]["peak_bytes"]
    assert modes["inference_mode"]["saved_bytes"] == modes["no_grad"]["saved_bytes"] == 0

# %% [markdown]
# Time. The ratios in the table and the chart above are this run's, on this machine; run the
# measuring cell again and they move, so nothing here asserts them. Compare the two modes'
# ratios with how much they move between runs: on a busy machine (a shared runner, Binder) the
# noise alone can be larger than any difference between them. What is stable is the reason:
# inference mode skips per-tensor bookkeeping (version counters, view tracking), a cost per op,
# not per number. So a gain can show where each op is tiny, as in the toy net, and even there it
# may be too small to see; where the matrix products dominate, as in the larger MLP, it is lost
# in the noise. (Layers that switch kernels when autograd is off, such as the Transformer's fast
# path, switch under both modes alike: see myth 2.) Expect "slightly faster at best", not "much
# faster", and choose `inference_mode` for the rules it enforces on the tensors it makes, not
# for speed; notebook 05 shows those rules, and where they stop.
#
# ## Pitfalls
# ### Code that expects `.grad` to be a tensor after `zero_grad()`
# Code written when `zero_grad()` left zeros adds into `.grad` by hand right after clearing: a
# hand-made penalty, a custom accumulation. Believing claim 3, you switch to `model.zero_grad()`
# to "keep the zeros". Both calls leave `None`.

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

# %% [markdown]
# Fix: ask for the zeros with `set_to_none=False` in place of the plain call (or handle `None`:
# `p.grad = penalty if p.grad is None else p.grad + penalty`). It zeros only the grads that
# exist: a `.grad` that is already `None`, as on a fresh model, stays `None`.

# %%
model = helpers.toy_net()
helpers.toy_loss(model(x), y).backward()
model.zero_grad(set_to_none=False)                # zeros, in the same tensors
for p in model.parameters():
    p.grad.add_(0.01 * p.detach().sign())
assert all(torch.equal(p.grad, 0.01 * p.detach().sign()) for p in model.parameters())

fresh = helpers.toy_net()
fresh.zero_grad(set_to_none=False)
assert all(p.grad is None for p in fresh.parameters())

# %% [markdown]
# ### Freezing the model to evaluate it, then training it
# Believing claim 4, an evaluation helper freezes the model instead of using `no_grad`. Nobody
# unfreezes it, and the next training step has nothing to backward through.

# %%
def evaluate_by_freezing(model):
    model.requires_grad_(False)
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

# %% [markdown]
# Fix: evaluate under `no_grad`, which leaves every flag as it found it.

# %%
@torch.no_grad()
def evaluate_without_recording(model):
    return helpers.toy_loss(model(x), y).item()


model = helpers.toy_net()
evaluate_without_recording(model)
helpers.toy_loss(model(x), y).backward()
assert all(p.requires_grad and p.grad is not None for p in model.parameters())

# %% [markdown]
# ## Where it is used
# The verdicts at work in one fine-tuning loop: freeze before building the optimizer, and give
# it only what trains (claim 6); clear with the default `zero_grad()` (claim 3); evaluate with
# `eval()` *and* a mode that records nothing (claims 4 and 5); use `inference_mode` there
# because its result is only a number that never feeds training (claim 7), not for speed
# (claim 8).

# %%
model = helpers.toy_net()
model.l1.requires_grad_(False)                                   # freeze first ...
trainable = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(trainable, lr=0.1)                 # ... then build the optimizer
l1_before = model.l1.weight.detach().clone()

for step in range(5):
    optimizer.zero_grad()                                        # .grad becomes None
    helpers.toy_loss(model(x), y).backward()
    optimizer.step()

model.eval()
with torch.inference_mode():
    eval_loss = helpers.toy_loss(model(x), y).item()
model.train()
print(f"loss before: {helpers.toy_loss(helpers.toy_net()(x), y).item():.4f}, "
      f"after 5 steps: {eval_loss:.4f}")

# %%
assert len(trainable) == 2 and model.l1.weight.grad is None
assert torch.equal(model.l1.weight, l1_before)                   # weight decay never saw it
assert eval_loss < helpers.toy_loss(helpers.toy_net()(x), y).item()
assert model.training and torch.is_grad_enabled()

# %% [markdown]
# ## Exercises
# **10.1** Which of these leave `out.grad_fn` equal to `None`? Each starts from a fresh
# `net = helpers.toy_net()` and `x, _ = helpers.toy_batch()`. Answer with a set of letters.
#
# - (a) `net.eval(); out = net(x)`
# - (b) `with torch.no_grad(): out = net(x)`
# - (c) `net.requires_grad_(False); out = net(x)`
# - (d) `net.requires_grad_(False); out = net(x.requires_grad_())`
# - (e) `out = net(x).detach()`

# %%
answer = ...  # e.g. {"a", "d"}
helpers.check("10.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"b", "c", "e"}`. `eval()` changes layers, not recording (a). A frozen model records as soon
# as its input requires grad (d). In (e) the forward was recorded, but the detached result has
# no history.
# </details>
#
# **10.2** The larger MLP, `mlp = costs.larger_mlp()`, on a batch of 16 rows,
# `inputs = torch.randn(16, 1024)`. How many bytes does one forward save for backward, not
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
# `(327680, 0, 0, 327680)`. Grad mode keeps the input (for the first weight's gradient) and
# the four ReLU outputs, each 16 × 1024 floats of 4 bytes: 5 × 65,536. Detaching the output
# afterwards saves nothing: it all happened during the forward. `no_grad` and
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

# %% [markdown]
# ## Recap
# - The mechanisms are simpler than the myths: `detach()` shares memory, `eval()` only changes
#   layers, both `zero_grad()`s set `None`, and optimizers go by `.grad`, not `requires_grad`
#   (with grads `None` the built-in ones skip a parameter, except LBFGS: notebook 06).
# - Where autograd stops decides the memory: `no_grad` and `inference_mode` save the same;
#   detaching afterwards saves nothing; freezing saves it only if nothing else requires grad.
# - Measure time in the same run, in turns, as a median ratio to a baseline; assert only what
#   is stable (bytes, pointers, flags).
#
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
