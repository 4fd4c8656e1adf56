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
# One matrix with every mechanism of the series run on the same training step, a playground
# that stacks them, and a guide to which one to use when.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/08_compare_all.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/08_compare_all.ipynb)

# %% [markdown]
# **What you will learn**
# - what each mechanism does to the gradients, the graph, the saved activations and the update;
# - how the mechanisms stack, and which stacks raise;
# - which tool to reach for when.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb); notebooks 01-07 explain each row.
#
# **Time**: 10 minutes for the core; about 30 more for the "Going deeper" sections.

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
# The `L1 -> ReLU -> L2` network and batch of every notebook. Its plain training step is the
# baseline of every comparison here.

# %%
from torch import nn

from helpers import compare, costs

x, y = helpers.toy_batch()
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# Two tools, each fine alone, stacked: L1 runs under `torch.no_grad()`, and the optimizer
# holds only L1's parameters.
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
# And which will the step move? Decide, tick, then open the answer.

# %%
helpers.predict("playground", no_grad="l1", optimizer="l1")

# %% [markdown]
# ## The mechanisms in code
# Each is one line, and they stack:
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
#
# The matrix runs each mechanism's own step at its defaults and a few variants. "vs plain
# step" names what differs from the plain step, gradients and update compared bit for bit:
# some rows change nothing, and clipping changes values without making any grad `None`.

# %%
matrix = compare.matrix()
plain = helpers.run("control")
for row in compare.rows()[1:]:
    outcome = helpers.run(row.mechanism, **dict(row.options))
    same = not outcome.grads_none() and all(
        torch.equal(outcome.tensors[n], plain.tensors[n])
        and torch.equal(outcome.tensors[n].grad, plain.tensors[n].grad) for n in plain.tensors)
    versus = compare.matrix_entry(row.mechanism, "vs plain step", **dict(row.options))
    assert versus == "same as the plain step" if same else versus.startswith("differs: grads")
assert compare.matrix_entry("requires_grad", "vs plain step") == "same as the plain step"
assert helpers.run("manual_grad_edits").grads_none() == []      # clipped, none made None
matrix

# %% [markdown]
# ## Explorer: the playground
# Each control is one mechanism, with its own code from its notebook: freeze a layer, run
# L1 + ReLU under `no_grad` or `inference_mode`, detach L1's output, give the optimizer a
# subset, set l1's grads to `None` before the step. With a live kernel, click and watch the
# table and the graph.

# %%
helpers.explore("playground", freeze="l1", detach="l1")

# %% [markdown]
# ## Why
# **With the plain SGD used here, a parameter moves only if it has a gradient *and* the
# optimizer holds it.** SGD never reads `requires_grad` (it moves a frozen parameter given a
# `.grad` by hand); it skips a parameter whose `.grad` is `None`. So `no_grad` over L1 plus an
# optimizer of L1 moves nothing. The cell checks the rule on all 144 playground combinations.
# Not every optimizer skips a `None` grad: LBFGS, after earlier steps, does not
# ([06](06_optimizer_subsets.ipynb)).

# %%
for combination in helpers.get_mechanism("playground").combinations():
    outcome = helpers.run("playground", **combination)
    for name, p in outcome.params.items():
        held = combination["optimizer"] in ("all", name.split(".")[0])
        assert p.changed == (held and p.grad == "values")
frozen_by_hand = nn.Parameter(torch.ones(2)).requires_grad_(False)
frozen_by_hand.grad = torch.ones(2)                  # a .grad set by hand on a frozen parameter
torch.optim.SGD([frozen_by_hand], lr=0.5).step()
assert torch.equal(frozen_by_hand.detach(), torch.full((2,), 0.5))   # moved all the same
stuck = helpers.run("playground", no_grad="l1", optimizer="l1")
assert not any(p.changed for p in stuck.params.values())
helpers.grad_table(stuck)

# %% [markdown]
# ## Recap
# - Freezing, `no_grad`, `inference_mode` and `detach` all stop gradients, at different costs:
#   `detach` cuts after recording, the others record less.
# - With plain SGD a parameter moves only if it has a gradient and the optimizer holds it;
#   stacked tools can leave nothing to train, or nothing to differentiate.
# - `model.eval()` is a separate switch from all of these:
#   [04 · torch.no_grad](04_no_grad.ipynb).
#
# [Next: 09 · Patterns from real training code](09_patterns.ipynb)

# %% [markdown]
# ## Going deeper: the matrix, row by row (about 6 minutes)
# The rows come from the registry: every mechanism registered for the comparison has one (the
# playground has this page), and a mechanism added later appears without any change here.

# %%
compared = {name for name, m in helpers.MECHANISMS.items() if m.in_comparison}
listed = set(matrix.column("mechanism"))
print("rows for:", ", ".join(sorted(listed)))
assert listed == compared - {"playground"}

# %% [markdown]
# **Freezing L1, `no_grad` over L1, detaching after L1: the same gradients, different costs.**
# In all three, L1's grads stay `None` and L2 gets exactly the plain step's gradients. But
# `detach` cuts the graph *after* L1 ran in grad mode: L1 already saved its input, so the
# forward saves as many bytes for backward as the plain step. Freezing L1 (its input does not
# require grad) and `no_grad` never record L1. The bytes, counted by hand:

# %%
same_grads = [("requires_grad", {"frozen": "l1"}), ("detach", {}), ("no_grad", {})]
FLOAT = 4  # bytes
plain_bytes = (8 * 4 + 8 * 3 + 8 + 8) * FLOAT   # x, ReLU output, loss's output and target
no_l1_bytes = (8 * 3 + 8 + 8) * FLOAT           # the same without x
for name, options in same_grads:
    outcome = helpers.run(name, **options)
    assert outcome.grads_none() == ["l1.weight", "l1.bias"]
    for n in ["l2.weight", "l2.bias"]:
        assert torch.equal(outcome.tensors[n].grad, control.tensors[n].grad)
    print(f"{name} {options}: saved bytes",
          compare.matrix_entry(name, "saved bytes", **options))
assert compare.matrix_entry("control", "saved bytes") == str(plain_bytes)
assert compare.matrix_entry("detach", "saved bytes") == str(plain_bytes)
assert compare.matrix_entry("no_grad", "saved bytes") == str(no_l1_bytes)
assert compare.matrix_entry("requires_grad", "saved bytes", frozen="l1") == str(no_l1_bytes)

# %% [markdown]
# **A frozen *later* layer stays in the graph; a layer under `no_grad` leaves it.** Freezing L2
# removes only its weights' nodes from the graph: its operation is still recorded, to carry the
# gradient back to L1. The small multiples draw each row's graph, titled in words; a yellow
# note lists the backward nodes the plain step's loss reaches and this one's does not.

# %%
net = helpers.toy_net()
net.l2.requires_grad_(False)
out = net.l2(torch.relu(net.l1(x)))
with torch.no_grad():
    h = torch.relu(net.l1(x))
print("frozen L2 output recorded:", out.grad_fn is not None,
      "| L1 under no_grad recorded:", h.grad_fn is not None)
assert out.grad_fn is not None and h.grad_fn is None
frozen_l2 = helpers.run("requires_grad", frozen="l2")
assert frozen_l2.grads_none() == ["l2.weight", "l2.bias"]
assert frozen_l2.params["l1.weight"].grad == "values"        # through the frozen L2
nodes = {label: compare.matrix_entry(name, "reachable nodes", **options) for label, name, options
         in [("control", "control", {}), ("frozen l2", "requires_grad", {"frozen": "l2"}),
             ("no_grad over l1", "no_grad", {})]}
print("reachable backward nodes:", nodes)
assert int(nodes["control"]) > int(nodes["frozen l2"]) > int(nodes["no_grad over l1"])
compare.small_multiples()

# %% [markdown]
# **Stacking ways of taking L1 out of the graph changes nothing more.** Once L1 is out,
# a second way of taking it out has nothing left to do. The cell checks every stack of freezing
# L1, `no_grad` over L1 and detaching after L1 (the other controls at their defaults).

# %%
import itertools

alone = helpers.run("playground", freeze="l1")
for freeze, no_grad, detach in itertools.product(["none", "l1"], repeat=3):
    if (freeze, no_grad, detach) == ("none", "none", "none"):
        continue                                   # the plain step: L1 still in the graph
    stacked = helpers.run("playground", freeze=freeze, no_grad=no_grad, detach=detach)
    for name in helpers.PARAM_NAMES:
        assert stacked.params[name].grad == alone.params[name].grad
        assert stacked.params[name].grad_norm == alone.params[name].grad_norm
helpers.draw(helpers.run("playground", freeze="l1", detach="l1"), beside=control)

# %% [markdown]
# **No row changes Dropout or BatchNorm.** The matrix ran every step a second time with
# `BatchNorm1d` and `Dropout(0.5)` after L1: in every row BatchNorm updated its statistics and
# Dropout dropped, even under `no_grad` and `inference_mode`. A column equal in every row is
# left out, and the caption gives its value. Switching them is `model.eval()`'s job
# ([04](04_no_grad.ipynb)).

# %%
column = compare.full_matrix().column("Dropout / BatchNorm")
print(set(column))
assert set(column) == {"BN stats updated, Dropout dropping"}
assert "Dropout / BatchNorm" not in matrix.columns and "Dropout dropping" in matrix.caption

# %% [markdown]
# ## Going deeper: all 144 playground combinations (about 3 minutes)
# Six controls make 3 × 2 × 2 × 2 × 3 × 2 = 144 combinations, but only ten different outcomes.
# Each outcome appears once, with how many combinations lead to it and which ones; `*` marks a
# parameter the step changed. Two outcomes are errors, each shown once in full.

# %%
groups = compare.outcome_groups("playground")
errors = {row[-1]: int(row[0]) for row in groups.rows if row[-1]}
inference, nothing = (helpers.run("playground", **options).error for options in
                      [{"inference": "yes"}, {"freeze": "l2", "detach": "l1"}])
assert sum(int(n) for n in groups.column("combinations")) == 144 and len(groups.rows) == 10
assert errors == {f"RuntimeError: {inference.message}": 48,      # each error in full, once
                  f"RuntimeError: {nothing.message}": 42}
groups

# %% [markdown]
# ## Going deeper: pitfalls when stacking tools (about 4 minutes)
# The playground's two errors, as they would appear in your code, each with its fix.
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
print("l1.weight.grad is None:", net.l1.weight.grad is None,
      "| l2.weight.grad is None:", net.l2.weight.grad is None)
assert net.l1.weight.grad is not None and net.l2.weight.grad is None

# %% [markdown]
# **`inference_mode` in a training forward.** L2 must save its input to compute its weight's
# gradient, and an inference tensor cannot be saved for backward. `detach()` does not help: the
# detached tensor is still an inference tensor.

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

# %% [markdown]
# Fix: for a frozen feature extractor in training, use `no_grad` (or `clone()` the inference
# output outside the mode, [05](05_inference_mode.ipynb)); keep `inference_mode` for serving.

# %%
net = helpers.toy_net()
with torch.no_grad():
    h = torch.relu(net.l1(x))
helpers.toy_loss(net.l2(h), y).backward()
print("l2.weight.grad is None:", net.l2.weight.grad is None)
assert net.l2.weight.grad is not None and net.l1.weight.grad is None

# %% [markdown]
# ## Going deeper: which one should I use? (about 3 minutes)
# Start from the situation. Each line links to the notebook that explains the tool.

# %%
compare.decision_guide()

# %% [markdown]
# The cell below checks each line's claim on the toy network, and prints what it checked:
# - **Fine-tuning: freeze.** The frozen part gets no gradient and does not move; the rest trains.
# - **Evaluation and serving: `no_grad` or `inference_mode`, with `eval()`.** Neither builds a
#   graph nor saves anything for backward.
# - **Cut one path: `detach`.** No gradient flows back through the cut: here L1, before it,
#   gets none, while L2 trains.
# - **Per-group rules: optimizer subsets.** A parameter left out of the optimizer still gets its
#   gradient (the cost is paid) but does not move.
# - **Custom updates: manual edits.** Setting l1's grads to `None` between `backward()` and
#   `step()` keeps l1 still under SGD, as freezing would, but after paying for its gradient.
# - **Every iteration: `zero_grad()`.** It sets `.grad` to `None` by default (PyTorch 2.0 and
#   later).

# %%
frozen = helpers.run("requires_grad", frozen="l1")
assert frozen.grads_none() == ["l1.weight", "l1.bias"]
assert [p.changed for p in frozen.params.values()] == [False, False, True, True]
print("freeze: l1 gets no grad and stays; l2 trains")

net = helpers.toy_net().eval()
for mode in (torch.no_grad, torch.inference_mode):
    with mode():
        out = net(x)
        saved = costs.saved_tensor_bytes(net, x, exclude=net)
    assert out.grad_fn is None and not out.requires_grad and saved == 0
print("no_grad, inference_mode: no grad_fn, 0 bytes saved for backward")

cut = helpers.run("detach", cut="l1")
assert cut.grads_none() == ["l1.weight", "l1.bias"] and cut.error is None
assert cut.params["l2.weight"].changed
print("detach after L1: L1 gets no grad, L2 trains")

subset = helpers.run("optimizer_subsets", params="l2", optimizer="sgd")
assert subset.params["l1.weight"].grad == "values" and not subset.params["l1.weight"].changed
assert subset.params["l2.weight"].changed
print("optimizer of l2 only: l1 gets a grad but stays")

edited = helpers.run("playground", edit="set_none")
assert edited.grads_none() == ["l1.weight", "l1.bias"]
assert edited.params["l1.weight"].extra["in graph"] == "yes"  # computed, then dropped
assert not edited.params["l1.weight"].changed and edited.params["l2.weight"].changed
print("l1's grads set to None before the step: l1 was in the graph, and stays")

net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
helpers.toy_loss(net(x), y).backward()
optimizer.zero_grad()
assert all(p.grad is None for p in net.parameters())
print("zero_grad(): every .grad is None")

# %% [markdown]
# ## Going deeper: exercises (about 10 minutes)
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
# **08.2** On a fresh network, freeze L2 (`net.l2.requires_grad_(False)`) and give the
# optimizer only L2: `torch.optim.SGD(net.l2.parameters(), lr=0.1)`. Run `zero_grad()`, the
# forward, the loss, `backward()` and `step()` on the toy batch. Which parameters changed?
# Answer with a set of names (possibly empty).

# %%
answer = ...  # e.g. {"l1.weight"}
helpers.check("08.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# None: `set()`. l2 is in the optimizer but frozen, so its `.grad` stays `None` and SGD skips
# it. l1 does get gradients (L2's frozen weights still pass them back), but the optimizer does
# not hold l1.
# </details>
#
# **08.3** Why is `net.l1.weight.grad` `None` after this step, although the optimizer was
# given every parameter?
#
# ```python
# net = helpers.toy_net()
# optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
# net.l1.requires_grad_(False)          # frozen after the optimizer was built
# optimizer.zero_grad()
# helpers.toy_loss(net(x), y).backward()
# optimizer.step()
# ```
#
# - a. Freezing L1 took its parameters out of the optimizer.
# - b. L1 was frozen when the forward ran, so the loss's graph has no path to `l1.weight` and
#   `backward()` fills nothing there; the optimizer still holds it.
# - c. `optimizer.zero_grad()` set it to `None`; without that call it would have a gradient.
#
# Answer with the letter of the true statement.

# %%
answer = ...  # e.g. "a"
helpers.check("08.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `"b"`. `requires_grad` counts when the forward runs, not when the optimizer is built: the
# loss's graph has no `AccumulateGrad` node for l1. `net.l1.weight` is still in
# `optimizer.param_groups[0]["params"]`, and SGD skips it because its `.grad` is `None`.
# </details>

# %% [markdown]
# ## Going deeper: what else `model.eval()` switches (about 3 minutes)
# [04](04_no_grad.ipynb) shows that `eval()` and `no_grad` are separate switches.
# `model.eval()` sets `training = False` on the model
# and on every submodule, and for the classes of `torch.nn` it does nothing else: none of them
# overrides `train()`, which `eval()` calls. A module behaves differently only if its code reads
# that flag. These classes' methods (their own or a parent class's) read `self.training`, on the
# PyTorch you have:

# %%
import functools
import inspect


@functools.cache                             # parent classes are shared: read each once
def mentions_training(klass):
    """True if a method defined in ``klass`` itself mentions self.training."""
    for attr in vars(klass).values():
        method = getattr(attr, "__func__", attr)     # staticmethod, classmethod
        method = getattr(method, "fget", method)     # property
        try:
            if inspect.isfunction(method) and "self.training" in inspect.getsource(method):
                return True
        except (OSError, TypeError):                 # no Python source to read
            pass
    return False


def reads_training_flag(cls):
    """True if a method of ``cls`` or of a parent module class mentions self.training."""
    return any(mentions_training(klass) for klass in cls.__mro__
               if issubclass(klass, nn.Module) and klass is not nn.Module)


readers = sorted(name for name, cls in vars(nn).items()
                 if isinstance(cls, type) and issubclass(cls, nn.Module)
                 and reads_training_flag(cls))
print(", ".join(readers))
assert {"Dropout", "BatchNorm1d", "InstanceNorm1d", "RReLU", "LSTM", "GRU",
        "MultiheadAttention", "TransformerEncoderLayer"} <= set(readers)
assert all(cls.train is nn.Module.train for cls in vars(nn).values()
           if isinstance(cls, type) and issubclass(cls, nn.Module))
assert "self.train(False)" in inspect.getsource(nn.Module.eval)

# %% [markdown]
# Two of them in action, each run twice in `train()` and twice in `eval()`: `nn.RReLU` draws a
# random slope for negative inputs while training and uses a fixed one in `eval()`; a two-layer
# `nn.LSTM(dropout=0.5)` drops between its layers only while training.

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
# ## Further reading
# - [Autograd mechanics: locally disabling gradient computation](https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation)
# - [torch.no_grad](https://pytorch.org/docs/stable/generated/torch.no_grad.html) and
#   [torch.inference_mode](https://pytorch.org/docs/stable/generated/torch.autograd.grad_mode.inference_mode.html)
# - [Module.eval](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.eval)
# - [torch.optim: per-parameter options](https://pytorch.org/docs/stable/optim.html#per-parameter-options)
# - [Hooks for saved tensors](https://pytorch.org/tutorials/intermediate/autograd_saved_tensors_hooks_tutorial.html)
#
# [Next: 09 · Patterns from real training code](09_patterns.ipynb)
