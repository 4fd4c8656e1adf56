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
# # 08 · Compare them all: choosing the right tool
#
# One page with every mechanism of the series side by side, measured on the same training step,
# a playground that combines them, and a guide to which one to use when.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/08_compare_all.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/08_compare_all.ipynb)

# %% [markdown]
# **What you will learn**
# - what each mechanism does to the gradients, the graph, the saved activations and the update,
#   read from one matrix;
# - how the mechanisms combine, and which combinations raise;
# - that `model.eval()` and gradient control are separate switches;
# - which tool to reach for in fine-tuning, evaluation, serving and custom updates.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb); notebooks 01-07 explain each row.
# This page also works as a summary to come back to.
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
# The same `L1 -> ReLU -> L2` network and batch of 8 examples as in every notebook. This is the
# graph of the plain training step, the baseline every row below is compared with.

# %%
from torch import nn

from helpers import compare, costs

x, y = helpers.toy_batch()
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# Two tools, each fine alone, used together: L1 runs under `torch.no_grad()`, and the optimizer
# is given only L1's parameters.
#
# ```python
# optimizer = torch.optim.SGD(net.l1.parameters(), lr=0.1)
# with torch.no_grad():
#     h = torch.relu(net.l1(x))
# loss_fn(net.l2(h), y).backward()
# optimizer.step()
# ```
#
# Which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` will have `.grad` equal to `None`?
# And which parameters will the step move? Decide before you scroll on. With a live kernel, tick
# your answer and press the button.

# %%
helpers.predict("playground", no_grad="l1", optimizer="l1",
                why="L1 was not recorded, so l1's grads stay None; L2 was recorded, so l2 gets "
                    "gradients. But the optimizer holds only l1, whose grads are None: the step "
                    "moves nothing at all.")

# %% [markdown]
# ## The mechanisms in code
# The comparison runs each mechanism's own training step (the one its notebook explores) at its
# default options, plus a few notable variants, and measures:
#
# - **grad** of each parameter after the step: `None`, `zeros` or `values`;
# - **graph built**: does the loss have a `grad_fn`, and how many backward nodes hang off it;
# - **saved bytes**: what the step's last forward (with its loss) saved for backward,
#   counted with `torch.autograd.graph.saved_tensors_hooks`, the weights left out (they exist
#   anyway);
# - **step moves**: which parameters `optimizer.step()` changed;
# - **Dropout / BatchNorm**: the same step again, with `BatchNorm1d` and `Dropout(0.5)` hooked
#   onto L1's output.
#
# The last row is not a gradient tool at all: the plain step after `model.eval()`.

# %%
compare.matrix()

# %% [markdown]
# The rows come from the registry: every mechanism registered for the comparison has one (the
# playground has this page; explorers of later notebooks that are not a gradient switch opt
# out), and a mechanism added later appears without any change to this page.

# %%
labels = compare.matrix().column("mechanism")
compared = {name for name, m in helpers.MECHANISMS.items() if m.in_comparison}
assert {label.split(" (")[0] for label in labels} - {"model.eval()"} == compared - {"playground"}

# %% [markdown]
# In your own code, the mechanisms are one line each, and they stack:
#
# ```python
# model.l1.requires_grad_(False)                          # 02: freeze
# optimizer = torch.optim.SGD(model.l2.parameters(), lr)  # 06: what the optimizer holds
# optimizer.zero_grad()                                   # 01: clear
# with torch.no_grad():                                   # 04: do not record (05: inference_mode)
#     h = model.l1(x)
# loss = loss_fn(model.l2(torch.relu(h.detach())), y)     # 03: cut a path
# loss.backward()
# torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0) # 07: edit before the step
# optimizer.step()
# ```

# %% [markdown]
# ## Explorer: the playground
# The playground combines the mechanisms in one step. Each control is one mechanism, and each
# is that mechanism's own code from its notebook: freeze a layer, run L1 + ReLU under `no_grad`
# or `inference_mode`, detach L1's output, give the optimizer a subset, set l1's grads to `None`
# before the step. With a live kernel, click and watch the table and the graph.

# %%
helpers.explore("playground", freeze="l1", detach="l1")

# %% [markdown]
# ## Truth table
# Six controls make 3 × 2 × 2 × 2 × 3 × 2 = 144 combinations: too many rows to read. They lead
# to only ten different outcomes. Here is each outcome once, with how many combinations lead to
# it and the first of them. `*` marks a parameter the step changed.

# %%
groups = compare.outcome_groups("playground")
groups

# %%
assert sum(int(n) for n in groups.column("combinations")) == 144 == len(
    helpers.truth_table("playground").rows)
assert len(groups.rows) == 10

# %% [markdown]
# The combinations without `inference_mode` and without the edit, all of them (36 rows). The full
# table is `helpers.truth_table("playground")`.

# %%
no_inference_no_edit = compare.filtered_truth_table("playground", inference="no", edit="none")
assert len(no_inference_no_edit.rows) == 36 == 3 * 2 * 2 * 3
no_inference_no_edit

# %% [markdown]
# ## What happened and why
# **Freezing L1, `no_grad` over L1, detaching after L1: the same gradients, different costs.**
# In all three, L1's grads stay `None` and L2 trains with exactly the gradients of the plain step.
# But `detach` cuts the graph *after* L1 ran in grad mode: L1 already saved its input, so the
# forward saves as many bytes for backward as the plain step. Freezing L1 (its input does not
# require grad) and `no_grad` never record L1.

# %%
same_grads = ["requires_grad (frozen=l1)", "detach", "no_grad"]
steps = {row.label: compare.measure(row).outcome for row in compare.rows()}
for label in same_grads:
    assert [compare.matrix_entry(label, f"grad {n}") for n in helpers.PARAM_NAMES] == \
        ["None", "None", "values", "values"]
    assert compare.matrix_entry(label, "step moves") == "l2.weight, l2.bias"
    for name in ["l2.weight", "l2.bias"]:
        assert torch.equal(steps[label].tensors[name].grad, control.tensors[name].grad)
print({label: compare.matrix_entry(label, "saved bytes") for label in ["control", *same_grads]})

# %%
FLOAT = 4  # bytes
plain_bytes = (8 * 4 + 8 * 3 + 8 + 8) * FLOAT   # x, ReLU output, loss's output and target
no_l1_bytes = (8 * 3 + 8 + 8) * FLOAT           # the same without x
assert compare.matrix_entry("control", "saved bytes") == str(plain_bytes) == "288"
assert compare.matrix_entry("detach", "saved bytes") == str(plain_bytes)
assert compare.matrix_entry("no_grad", "saved bytes") == str(no_l1_bytes) == "160"
assert compare.matrix_entry("requires_grad (frozen=l1)", "saved bytes") == str(no_l1_bytes)

# %% [markdown]
# **A frozen *later* layer stays in the graph; a layer under `no_grad` leaves it.** Freezing L2
# removes its weights' `AccumulateGrad` nodes, but its `AddmmBackward0` stays, to carry the
# gradient back to L1. The small multiples show each row's graph beside the control graph; a
# yellow note lists the backward nodes the control graph has and this one lacks.

# %%
multiples = compare.small_multiples()
multiples

# %%
by_title = {d.title: d for d in multiples.diagrams}
frozen_l2 = compare.pruned(by_title["requires_grad (frozen=l2)"], by_title["control"])
under_no_grad = compare.pruned(by_title["no_grad"], by_title["control"])
print("frozen l2 lacks:", frozen_l2)
print("no_grad over l1 lacks:", under_no_grad)
assert "AddmmBackward0" not in frozen_l2 and "AccumulateGrad x2" in frozen_l2
assert "AddmmBackward0" in under_no_grad and "ReluBackward0" in under_no_grad

# %% [markdown]
# **With the plain SGD of these steps, a parameter moves only if it has a gradient *and* the
# optimizer holds it.** SGD never looks at `requires_grad`: it skips a parameter whose `.grad`
# is `None`, and moves a frozen one that has a `.grad` (last lines of the cell below). That is
# the prediction above: `no_grad` over L1 plus an optimizer of L1 moves nothing. Not every
# optimizer skips a `None` grad: [06](06_optimizer_subsets.ipynb) runs every built-in one, and
# LBFGS moves such a parameter.

# %%
stuck = helpers.run("playground", no_grad="l1", optimizer="l1")
helpers.grad_table(stuck)

# %%
assert stuck.grads_none() == ["l1.weight", "l1.bias"]
assert not any(p.changed for p in stuck.params.values())
for combination in helpers.get_mechanism("playground").combinations():
    outcome = helpers.run("playground", **combination)
    for name, p in outcome.params.items():
        held = combination["optimizer"] in ("all", name.split(".")[0])
        assert p.changed == (held and p.grad == "values")

frozen_by_hand = nn.Parameter(torch.ones(2)).requires_grad_(False)
frozen_by_hand.grad = torch.ones(2)                  # a .grad set by hand on a frozen parameter
torch.optim.SGD([frozen_by_hand], lr=0.5).step()
assert torch.equal(frozen_by_hand.detach(), torch.full((2,), 0.5))   # moved all the same

# %% [markdown]
# **Stacking ways of taking L1 out of the graph changes nothing more.** Freezing L1 *and*
# detaching after it gives the same gradients as either alone: once L1 is out of the graph, a
# second way of taking it out has nothing left to do. The cell checks every stack of freezing
# L1, `no_grad` over L1 and detaching after L1 (the other controls at their defaults).

# %%
import itertools

both = helpers.run("playground", freeze="l1", detach="l1")
alone = helpers.run("playground", freeze="l1")
for freeze, no_grad, detach in itertools.product(["none", "l1"], repeat=3):
    if (freeze, no_grad, detach) == ("none", "none", "none"):
        continue                                   # the plain step: L1 still in the graph
    stacked = helpers.run("playground", freeze=freeze, no_grad=no_grad, detach=detach)
    for name in helpers.PARAM_NAMES:
        assert stacked.params[name].grad == alone.params[name].grad
        assert stacked.params[name].grad_norm == alone.params[name].grad_norm
helpers.draw(both, beside=control)

# %% [markdown]
# **No gradient-control row changes Dropout or BatchNorm; `model.eval()` changes them, and does
# not touch recording.** In every gradient-control row, BatchNorm still updates its running
# statistics and Dropout still drops, exactly as in the plain step, even under `no_grad` and
# `inference_mode`. The `model.eval()` row is the opposite: Dropout off, statistics untouched,
# and the graph is built as usual. (`eval()` switches more than these two: every module that
# reads its `training` flag, see "Going deeper" below.)

# %%
column = compare.matrix().column("Dropout / BatchNorm")
for label, effect in zip(labels, column):
    if label == "model.eval()":
        assert effect == "BN stats untouched, Dropout off"
    else:
        assert effect == "BN stats updated, Dropout dropping"
assert compare.matrix_entry("model.eval()", "graph built") == \
    compare.matrix_entry("control", "graph built")

# %% [markdown]
# The same in five lines of plain PyTorch, on a small model with both layers:

# %%
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                      nn.Linear(8, 1))

with torch.no_grad():                      # gradient control, still in train()
    first, second = model(x), model(x)
print("no_grad in train(): BN batches seen", int(model[1].num_batches_tracked),
      "| outputs differ:", not torch.equal(first, second))

model.eval()                               # eval mode, still recording
out = model(x)
print("eval() without no_grad: output has a grad_fn:", out.grad_fn is not None)

# %%
assert int(model[1].num_batches_tracked) == 2 and not torch.equal(first, second)
assert out.grad_fn is not None and torch.equal(model(x), model(x))
assert int(model[1].num_batches_tracked) == 2  # eval() forwards did not update the statistics

# %% [markdown]
# ## Pitfalls
# The playground's errors are the ones learners meet when they stack tools. Each is caught and
# explained in the table; here they are as they would appear in your code, each with its fix.
#
# **Freezing L2 while L1 is out of the graph.** With L1 under `no_grad` (or detached) and L2
# frozen, nothing the loss depends on requires grad.

# %%
net = helpers.toy_net()
net.l2.requires_grad_(False)
with torch.no_grad():
    h = torch.relu(net.l1(x))
try:
    helpers.toy_loss(net.l2(h), y).backward()
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "does not require grad and does not have a grad_fn" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# Fix: decide which layer should train. To train L1 with L2 fixed, let L1 be recorded: freeze
# L2 and drop the `no_grad`.

# %%
net = helpers.toy_net()
net.l2.requires_grad_(False)
helpers.toy_loss(net(x), y).backward()
assert net.l1.weight.grad is not None and net.l2.weight.grad is None
assert helpers.run("playground", freeze="l2").grads_none() == ["l2.weight", "l2.bias"]

# %% [markdown]
# **`inference_mode` in a training forward.** L2 must save its input to compute its weight's
# gradient, and an inference tensor cannot be saved for backward. `detach()` does not help: the
# detached tensor is still an inference tensor. Every playground combination with
# `inference=yes` raises one of the two errors met so far: this one, or "does not require grad"
# when nothing left in the graph requires grad.

# %%
net = helpers.toy_net()
with torch.inference_mode():
    h = torch.relu(net.l1(x))
assert h.is_inference() and h.detach().is_inference()
try:
    net.l2(h.detach())
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "Inference tensors cannot be saved for backward" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %%
for combination in helpers.get_mechanism("playground").combinations():
    if combination["inference"] == "yes":
        error = helpers.run("playground", **combination).error
        assert error is not None and ("cannot be saved for backward" in error.message
                                      or "does not require grad" in error.message)

# %% [markdown]
# Fix: for a frozen feature extractor in training, use `no_grad` (or `clone()` the inference
# output outside the mode, notebook 05); keep `inference_mode` for serving.

# %%
net = helpers.toy_net()
with torch.no_grad():
    h = torch.relu(net.l1(x))
helpers.toy_loss(net.l2(h), y).backward()
assert net.l2.weight.grad is not None and net.l1.weight.grad is None

# %% [markdown]
# **Believing `model.eval()` stops the graph.** It does not: the loss below has a `grad_fn`, and
# the evaluation pass keeps its activations alive until the loss is dropped. Fix: `eval()` *and*
# `no_grad()` (shown above).

# %%
net = helpers.toy_net().eval()
loss = helpers.toy_loss(net(x), y)
assert loss.grad_fn is not None
assert compare.matrix_entry("model.eval()", "saved bytes") == \
    compare.matrix_entry("control", "saved bytes") == "288"   # as much as a training step
with torch.no_grad():
    assert helpers.toy_loss(net(x), y).grad_fn is None

# %% [markdown]
# ## Which one should I use?
# Start from the situation. Each line links to the notebook that explains the tool; the cells
# after the table check each claim.

# %%
compare.decision_guide()

# %% [markdown]
# **Fine-tuning: freeze.** The frozen part gets no gradient and does not move; the rest trains.

# %%
frozen = helpers.run("requires_grad", frozen="l1")
assert frozen.grads_none() == ["l1.weight", "l1.bias"]
assert [p.changed for p in frozen.params.values()] == [False, False, True, True]

# %% [markdown]
# **Evaluation and serving: `no_grad` or `inference_mode`, with `eval()`.** Neither builds a
# graph nor saves anything for backward.

# %%
net = helpers.toy_net().eval()
for mode in (torch.no_grad, torch.inference_mode):
    with mode():
        out = net(x)
        saved = costs.saved_tensor_bytes(net, x, exclude=net)
    assert out.grad_fn is None and not out.requires_grad and saved == 0
assert compare.matrix_entry("no_grad (no_grad_over=all)", "saved bytes") == "0"

# %% [markdown]
# **Cut one path: `detach`.** No gradient flows back through the cut; here that leaves L1,
# before it, without a gradient, while L2 trains.

# %%
cut = helpers.run("detach", cut="l1")
assert cut.grads_none() == ["l1.weight", "l1.bias"] and cut.error is None

# %% [markdown]
# **Per-group rules: optimizer subsets.** A parameter left out of the optimizer still gets its
# gradient (the cost is paid) but does not move.

# %%
subset = helpers.run("optimizer_subsets", params="l2", optimizer="sgd")
assert subset.params["l1.weight"].grad == "values" and not subset.params["l1.weight"].changed
assert subset.params["l2.weight"].changed

# %% [markdown]
# **Custom updates: manual edits.** Between `backward()` and `step()` gradients are ordinary
# tensors: setting l1's to `None` keeps l1 still under SGD, as freezing would, but after paying
# for its gradient.

# %%
edited = helpers.run("playground", edit="set_none")
assert edited.grads_none() == ["l1.weight", "l1.bias"]
assert edited.params["l1.weight"].extra["in graph"] == "yes"  # computed, then dropped
assert not edited.params["l1.weight"].changed and edited.params["l2.weight"].changed

# %% [markdown]
# **Every iteration: `zero_grad()`.** It sets `.grad` to `None` by default (PyTorch 2.0 and
# later).

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
helpers.toy_loss(net(x), y).backward()
optimizer.zero_grad()
assert all(p.grad is None for p in net.parameters())

# %% [markdown]
# ## Exercises
# **08.1** On a fresh network, freeze L1 (`net.l1.requires_grad_(False)`), build
# `torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0.1)`, run `zero_grad()`, the
# forward, the loss and `backward()` on the toy batch, then set
# `net.l1.weight.grad = torch.zeros_like(net.l1.weight)` before `step()`. Which parameters
# changed? Answer with a set of names (possibly empty).

# %%
answer = ...  # e.g. {"l1.weight"}
helpers.check("08.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"l1.weight", "l2.weight", "l2.bias"}`. SGD does not look at `requires_grad`: it skips
# `l1.bias`, whose grad is `None`, but `l1.weight` has a grad (of zeros), and weight decay adds
# `0.1 * weight` to it, so the frozen weight moves. l2 trains as usual.
# </details>
#
# **08.2** How many bytes does the forward with its loss save for backward (not counting the
# weights) when L1 and the ReLU run under `no_grad`, on a batch of 32 examples instead of 8
# (`x, y = torch.randn(32, 4), torch.randn(32, 1)`)? Count by hand: which tensors does L2 keep,
# which does the MSE loss keep? Answer with an int.

# %%
answer = ...  # e.g. 100
helpers.check("08.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `640`: L2 keeps its input, the ReLU output (32 × 3 floats, 384 bytes); the loss keeps the
# output and the target (32 × 1 floats each, 256 bytes). Four times the `no_grad` row of the
# matrix (160 bytes for 8 examples). Check it with
# `costs.saved_tensor_bytes(forward, exclude=net)`, as in notebook 03.
# </details>
#
# **08.3** A fresh `nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))` runs
# four forwards on the batch: one under `torch.no_grad()`, then one after `model.eval()`, then,
# after `model.train()`, one under `torch.inference_mode()` and a plain one. What is
# `model[1].num_batches_tracked` then? Answer with an int.

# %%
answer = ...  # e.g. 0
helpers.check("08.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `3`: BatchNorm updates its statistics in `train()` whatever the gradient mode, so the
# `no_grad`, the `inference_mode` and the plain forwards count; the forward in `eval()` does not.
# </details>

# %% [markdown]
# ## Going deeper: what else `model.eval()` switches (5 minutes)
# `model.eval()` sets `training = False` on the model and on every submodule, and for the
# classes of `torch.nn` it does nothing else: none of them overrides `train()`, which `eval()`
# calls (your own module could). A module behaves differently only if its code reads that
# flag, and in `torch.nn` that is more than Dropout and BatchNorm. These are the classes whose
# code (their own or a parent class's) reads `self.training`, on the PyTorch you have:

# %%
import inspect


def reads_training_flag(cls):
    """True if the code of ``cls`` or of a parent module class mentions self.training."""
    for klass in cls.__mro__:
        if issubclass(klass, nn.Module) and klass is not nn.Module:
            try:
                if "self.training" in inspect.getsource(klass):
                    return True
            except (OSError, TypeError):     # no Python source to read
                pass
    return False


readers = sorted(name for name, cls in vars(nn).items()
                 if isinstance(cls, type) and issubclass(cls, nn.Module)
                 and reads_training_flag(cls))
print(", ".join(readers))
assert {"Dropout", "BatchNorm1d", "InstanceNorm1d", "RReLU", "LSTM", "GRU",
        "MultiheadAttention", "TransformerEncoderLayer"} <= set(readers)
assert all(not m.training for m in model.modules())    # eval() above reached every submodule
assert all(cls.train is nn.Module.train for cls in vars(nn).values()
           if isinstance(cls, type) and issubclass(cls, nn.Module))
assert "self.train(False)" in inspect.getsource(nn.Module.eval)

# %% [markdown]
# Three of them in action. The first two each run twice in `train()` and twice in `eval()`:
# `nn.RReLU` draws a random slope for negative inputs while training and uses a fixed one in
# `eval()`; a two-layer `nn.LSTM(dropout=0.5)` drops between its layers only while training.

# %%
torch.manual_seed(0)
rrelu = nn.RReLU(lower=0.1, upper=0.3)
lstm = nn.LSTM(4, 4, num_layers=2, dropout=0.5)
negatives, sequence = -torch.ones(6), torch.randn(3, 1, 4)


def two_calls_agree(module, inputs):
    first, second = module(inputs), module(inputs)
    if isinstance(first, tuple):             # an LSTM returns (output, state)
        first, second = first[0], second[0]
    return torch.equal(first, second)


for module, inputs in [(rrelu, negatives), (lstm, sequence)]:
    module.train()
    in_train = two_calls_agree(module, inputs)
    module.eval()
    in_eval = two_calls_agree(module, inputs)
    print(f"{type(module).__name__}: two calls agree in train(): {in_train}, in eval(): {in_eval}")
    assert not in_train and in_eval
assert torch.allclose(rrelu(negatives), torch.full((6,), -0.2))   # eval slope: (0.1 + 0.3) / 2

# %% [markdown]
# The third: `nn.MultiheadAttention` and the Transformer encoder take a fused "fast path" only
# in `eval()`, and only with autograd off or nothing requiring grad, among other conditions
# PyTorch documents (notebook 04 measures what that saves). `nn.TransformerEncoder` reads its
# first layer's flag rather than its own, so the list above misses it; it switches all the same.
# The profiler shows which operators ran, whatever the timings and the CPU: the fused attention
# is `aten::_native_multi_head_attention`, the fused encoder layer
# `aten::_transformer_encoder_layer_fwd`. Each module below runs in five settings.

# %%
torch.manual_seed(0)
encoder = costs.transformer_encoder(d_model=16, heads=2)    # 2 layers, in eval()
attention = nn.MultiheadAttention(16, 2, batch_first=True)
src, pad = costs.padded_batch(batch=4, tokens=10, d_model=16)  # pad: the last 5 tokens
modules = {"MultiheadAttention": (attention, "aten::_native_multi_head_attention",
                                  lambda: attention(src, src, src, need_weights=False)),
           "TransformerEncoder": (encoder, costs.FAST_PATH_OPERATOR,
                                  lambda: encoder(src, src_key_padding_mask=pad))}
settings = {"train(), grad mode": (True, True, False), "train(), no_grad": (True, False, False),
            "eval(), grad mode": (False, True, False), "eval(), no_grad": (False, False, False),
            "eval(), grad mode, all frozen": (False, True, True)}


def fused(name, training, grad, frozen):
    module, operator, call = modules[name]
    module.train(training).requires_grad_(not frozen)
    try:
        with torch.set_grad_enabled(grad):
            return operator in costs.operators_run(call)
    finally:
        module.requires_grad_(True)


for name in modules:
    taken = [setting for setting, args in settings.items() if fused(name, *args)]
    print(f"{name}: fast path in {taken}")
    assert taken == ["eval(), no_grad", "eval(), grad mode, all frozen"]

# %% [markdown]
# The encoder's output shows it too. Given a padding mask, on its fast path it skips the padded
# tokens, and they come back as exact zeros; in `train()`, or with the fast path switched off
# (`torch.backends.mha.set_fastpath_enabled(False)`, here through `costs.fastpath`), they get
# values like any other token.

# %%
padded_zero = {}
for setting, (training, fast) in {"eval(), no_grad": (False, True),
                                  "train(), no_grad": (True, True),
                                  "eval(), no_grad, fast path off": (False, False)}.items():
    encoder.train(training)
    with torch.no_grad(), costs.fastpath(fast):
        out = encoder(src, src_key_padding_mask=pad)
    padded_zero[setting] = bool((out[pad] == 0).all())
encoder.eval()
print(padded_zero)
assert padded_zero == {"eval(), no_grad": True, "train(), no_grad": False,
                       "eval(), no_grad, fast path off": False}

# %% [markdown]
# ## Recap
# - Freeze, `no_grad`, `inference_mode` and `detach` all stop gradients, at different costs:
#   `no_grad` and `inference_mode` skip recording, freezing skips it only where no input
#   requires grad, `detach` cuts after recording; inference tensors cannot be saved for backward.
# - With plain SGD, a parameter moves only if it has a gradient and the optimizer holds it (06
#   covers momentum, weight decay and the other optimizers); stacking tools can leave nothing to
#   train, or nothing to differentiate.
# - `model.eval()` switches every module that reads its `training` flag (Dropout, BatchNorm
#   and more); gradient tools switch recording. Evaluation wants both.
#
# ## Further reading
# - [Autograd mechanics: locally disabling gradient computation](https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation)
# - [torch.no_grad](https://pytorch.org/docs/stable/generated/torch.no_grad.html) and
#   [torch.inference_mode](https://pytorch.org/docs/stable/generated/torch.autograd.grad_mode.inference_mode.html)
# - [Module.eval](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.eval)
# - [torch.optim: per-parameter options](https://pytorch.org/docs/stable/optim.html#per-parameter-options)
# - [Hooks for saved tensors](https://pytorch.org/tutorials/intermediate/autograd_saved_tensors_hooks_tutorial.html)
#
# [Next: 09 · Patterns from real training code](09_patterns.ipynb)
