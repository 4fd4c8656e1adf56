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
# # 06 · Optimizer parameter subsets: what the optimizer moves
#
# An optimizer moves only the parameters you give it, and it reads their `.grad`, never their
# `requires_grad`. Leaving a layer out, freezing it and giving it a learning rate of 0 are
# three different things, with different costs and one nasty trap.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/06_optimizer_subsets.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/06_optimizer_subsets.ipynb)

# %% [markdown]
# **What you will learn**
# - how to give the optimizer only some parameters, or per-group learning rates;
# - why a parameter left out of the optimizer still gets its gradient computed, and why that
#   gradient keeps piling up;
# - the trap: a frozen parameter whose grad is zeros (not `None`) is still moved by momentum,
#   Adam and weight decay;
# - that optimizer state (momentum, Adam's moments) survives freezing.
#
# **Prerequisites**: [01 · zero_grad](01_zero_grad.ipynb) and
# [02 · requires_grad_(False)](02_requires_grad.ipynb).
#
# **Time**: about 30 minutes.

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
# `L1 -> ReLU -> L2` as everywhere in the series. In this notebook `l1` plays the pretrained
# *body* and `l2` the *head* you fine-tune. Below, its four parameters and the graph of one plain
# training step.

# %%
net = helpers.toy_net()
x, y = helpers.toy_batch()
for name, p in net.named_parameters():
    print(f"{name:10} shape {tuple(p.shape)}")
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# You fine-tune only the head: the optimizer is `torch.optim.Adam(net.l2.parameters())`.
# `l1` is left alone (it still requires grad). After a few training steps, each starting with
# `optimizer.zero_grad()`, which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` have `.grad`
# equal to `None`? Decide before you scroll on. With a live kernel, tick your answer and press
# the button.

# %%
helpers.predict("optimizer_subsets", params="l2", optimizer="adam", excluded="alone",
                why="None of them. backward() does not know about the optimizer: every "
                "parameter the loss depends on that requires grad gets a gradient. Leaving "
                "l1 out of the optimizer only means nobody applies it (or clears it).")

# %% [markdown]
# ## The mechanism in code
# Three ways to keep the body `l1` fixed while the head `l2` trains. Each is one or two lines.

# %%
net = helpers.toy_net()

# 1. Give the optimizer only the head.
head_only = torch.optim.Adam(net.l2.parameters(), lr=0.1)

# 2. Also freeze the body, so backward() does not compute its gradients at all.
net.l1.requires_grad_(False)

# 3. Or (another copy) keep every parameter in the optimizer, in groups with their own lr.
other = helpers.toy_net()
grouped = torch.optim.AdamW([
    {"params": other.l1.parameters(), "lr": 0.0},  # body: lr 0 (0.01: fine-tune it gently)
    {"params": other.l2.parameters()},             # head: the default lr below
], lr=0.1, weight_decay=0.01)

print("head_only holds:", [name for name, p in net.named_parameters()
                           if any(p is q for q in head_only.param_groups[0]["params"])])
print("grouped learning rates:", [g["lr"] for g in grouped.param_groups])

# %%
held = head_only.param_groups[0]["params"]
assert len(held) == 2 and held[0] is net.l2.weight and held[1] is net.l2.bias
assert [g["lr"] for g in grouped.param_groups] == [0.0, 0.1]
assert not any(p.requires_grad for p in net.l1.parameters())

# %% [markdown]
# **The scenario every table below runs.** The optimizer (over the parameters `params` names)
# trains for 3 *warm-up* steps, so momentum and Adam's moments exist. Then the layer meant to
# stay fixed (`l1`, or `l2` when the optimizer gets only `l1`) is left alone, frozen with
# `requires_grad_(False)` and its grads cleared (`p.grad = None`), or frozen with its grads
# zeroed (the loop then uses `zero_grad(set_to_none=False)`). Then 3 more steps.
# **"changed by step" counts only those 3 steps.** The extra columns are taken just before the
# last `optimizer.step()`:
# - `optimizer`: the learning rate the optimizer uses for the parameter, or "not held";
# - `optimizer state`: what the optimizer keeps for it (`momentum_buffer`, Adam's `exp_avg`,
#   `exp_avg_sq`);
# - `grad before step`: `None`, zeros, or values summed over *k* backward passes.
#
# Here is the default: Adam over the head only, the body left alone.

# %%
head = helpers.run("optimizer_subsets")
helpers.grad_table(head)

# %% [markdown]
# The same scenario in plain PyTorch agrees: `l1` has a gradient and did not move; `l2` moved.

# %%
net = helpers.toy_net()
optimizer = torch.optim.Adam(net.l2.parameters(), lr=0.1)
for step in range(6):                      # 3 warm-up steps, then 3 measured ones
    if step == 3:
        start = {name: p.detach().clone() for name, p in net.named_parameters()}
    optimizer.zero_grad()
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
for name, p in net.named_parameters():
    assert head.params[name].grad == "values" and p.grad is not None
    assert head.params[name].changed == (not torch.equal(start[name], p))
    assert head.params[name].grad_norm == p.grad.norm().item()
print({name: head.params[name].changed for name in helpers.PARAM_NAMES})

# %% [markdown]
# ## Explorer
# Three controls: which parameters the optimizer gets, which optimizer, and what happens to the
# layer meant to stay fixed. Try this: set `params` to *all parameters* and `excluded` to
# *requires_grad_(False); p.grad.zero_()*, then click through the optimizers. Watch
# `changed by step` for `l1`.

# %%
helpers.explore("optimizer_subsets")

# %% [markdown]
# ## Truth table
# All 48 combinations. Each cell is the grad state after the last step; `*` marks a parameter
# the 3 measured steps moved. The rows to look for: `all` with `zeros`, where a frozen `l1`
# with zero grads still moves under momentum, Adam and AdamW.

# %%
table = helpers.truth_table("optimizer_subsets")
assert len(table.rows) == 4 * 4 * 3 == 48
table

# %% [markdown]
# ## What happened and why
# **1. Left out of the optimizer, a parameter still gets a gradient, and does not move.**
# `backward()` computes a gradient for every parameter that requires grad and that the loss
# depends on (an unused one keeps `None`); it has never heard of your optimizer. You pay for
# that work, and nothing uses the result.

# %%
net = helpers.toy_net()
body_start = net.l1.weight.detach().clone()
optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)
optimizer.zero_grad()
helpers.toy_loss(net(x), y).backward()
optimizer.step()
print("l1.weight.grad is None:", net.l1.weight.grad is None,
      "| l1.weight moved:", not torch.equal(net.l1.weight, body_start))
assert net.l1.weight.grad is not None and net.l1.weight.grad.abs().sum() > 0
assert torch.equal(net.l1.weight, body_start)

unused = torch.nn.Parameter(torch.ones(2))  # requires grad, but the loss does not use it
helpers.toy_loss(net(x), y).backward()
assert unused.requires_grad and unused.grad is None

# %% [markdown]
# **2. `optimizer.zero_grad()` clears only what the optimizer holds, so a left-out gradient
# keeps adding up.** Below, `torch.autograd.grad` gives each pass's own gradient (without
# touching `.grad`), so we can compare: after 3 iterations, `l1.weight.grad` is the sum of all
# three. `model.zero_grad()` clears every parameter of the module.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)
own = []
for _ in range(3):
    optimizer.zero_grad()
    loss = helpers.toy_loss(net(x), y)
    own.append(torch.autograd.grad(loss, net.l1.weight, retain_graph=True)[0])
    loss.backward()
    optimizer.step()
print(f"norm of one pass: {own[-1].norm():.4f} | norm of l1.weight.grad: "
      f"{net.l1.weight.grad.norm():.4f}")
assert torch.allclose(net.l1.weight.grad, own[0] + own[1] + own[2])
assert not torch.allclose(net.l1.weight.grad, own[-1])

net.zero_grad()                            # the module clears all four
assert all(p.grad is None for p in net.parameters())

# %% [markdown]
# The table counts it too: in the default scenario `l1`'s grad holds all 6 passes (3 warm-up,
# 3 measured), `l2`'s only the last one.

# %%
print({name: head.params[name].extra["grad before step"] for name in helpers.PARAM_NAMES})
assert head.params["l1.weight"].extra["grad before step"] == "values (6 passes)"
assert head.params["l2.weight"].extra["grad before step"] == "values (1 pass)"

# %% [markdown]
# **3. Freezing as well saves the work.** `l1.requires_grad_(False)` stops `backward()` from
# writing to the body's grads, and because `l1` is the first layer (its input `x` does not
# require grad), none of its operations are recorded: its parameters are "not in graph" and
# backward never visits them. Freezing does not clear a grad the body already holds (here, 3
# warm-up passes): the explorer's `frozen` choice also sets `p.grad = None`, and from then on
# the grad stays `None`.

# %%
frozen_body = helpers.run("optimizer_subsets", params="l2", excluded="frozen")
helpers.draw(frozen_body, beside=control)

# %%
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()     # the body left out: its grad fills up
net.l1.requires_grad_(False)
print("after requires_grad_(False), l1.weight.grad is None:", net.l1.weight.grad is None)
assert net.l1.weight.grad is not None      # freezing kept the old grad...
for p in net.l1.parameters():
    p.grad = None                          # ...so the frozen choice clears it too
helpers.toy_loss(net(x), y).backward()
assert net.l1.weight.grad is None          # and backward() leaves it None

outline = repr(helpers.draw(frozen_body))
print(outline)
assert "l1.weight (3, 4) grad: None (not in graph)" in outline
assert "l1.bias (3) grad: None (not in graph)" in outline
assert outline.count("AddmmBackward0") == 1 and "ReluBackward0" not in outline
assert frozen_body.grads_none() == ["l1.weight", "l1.bias"]

# %% [markdown]
# Freezing a *later* layer (`params` = only `l1`, so `l2` is the one kept fixed) still records
# `l2`'s operation: the gradient has to flow through it to reach `l1`. `l2` gets no gradient,
# `l1` trains.

# %%
frozen_head = helpers.run("optimizer_subsets", params="l1", excluded="frozen")
outline = repr(helpers.draw(frozen_head))
assert outline.count("AddmmBackward0") == 2 and "ReluBackward0" in outline
assert frozen_head.grads_none() == ["l2.weight", "l2.bias"]
assert frozen_head.params["l1.weight"].changed and not frozen_head.params["l2.weight"].changed
helpers.grad_table(frozen_head)

# %% [markdown]
# **4. Optimizers look at `.grad`, never at `requires_grad`.** A frozen parameter that somehow
# has a gradient is updated like any other, here by plain SGD.

# %%
w = torch.nn.Parameter(torch.ones(3))
optimizer = torch.optim.SGD([w], lr=0.1)
w.requires_grad_(False)
w.grad = torch.ones(3)                     # a leftover gradient on a frozen parameter
optimizer.step()
print("requires_grad:", w.requires_grad, "| value after the step:",
      [round(v, 4) for v in w.tolist()])
assert not w.requires_grad and torch.allclose(w, torch.full((3,), 0.9))

# %% [markdown]
# Not only SGD: every optimizer `torch.optim` exports (found by the helper, so one added in a
# later PyTorch is checked too) moves a parameter with the same `.grad` by exactly the same
# amount whether `requires_grad` is `True` or `False`. Section 6 shows the whole table.

# %%
from helpers import optimizers

survey = optimizers.survey()
print(f"{len(optimizers.builtin_optimizers())} optimizers; requires_grad ignored by:",
      optimizers.names_where(survey, "requires_grad ignored", "yes"))
assert (optimizers.names_where(survey, "requires_grad ignored", "yes")
        == list(optimizers.builtin_optimizers()))

# %% [markdown]
# **5. The trap: zeros are not `None`.** If a frozen parameter's grad is a tensor of zeros,
# the optimizer does not skip it. Plain SGD then moves it by `lr * 0`, which is nothing. But:
# - SGD with momentum moves it by the velocity it built up before the freeze;
# - Adam moves it by its running mean `exp_avg`, which only decays;
# - weight decay (SGD's, Adam's or AdamW's) moves it on every step, zero gradient or not.
#
# The table rows with `params=all` and `excluded=zeros` show it: the frozen `l1` moves under
# each of the explorer's optimizers except plain SGD.

# %%
moved = {kind: helpers.run("optimizer_subsets", params="all", optimizer=kind,
                           excluded="zeros").params["l1.weight"].changed
         for kind in ("sgd", "momentum", "adam", "adamw")}
print("frozen l1 with zero grads moved:", moved)
assert moved == {"sgd": False, "momentum": True, "adam": True, "adamw": True}

# %%
trap = helpers.run("optimizer_subsets", params="all", optimizer="momentum", excluded="zeros")
helpers.grad_table(trap)

# %% [markdown]
# Autograd is not the culprit: the graph of the trap is the graph of a frozen body, `l1` not in
# it at all. The only difference is what `.grad` holds when `optimizer.step()` looks at it.

# %%
outline = repr(helpers.draw(trap))
assert "l1.weight (3, 4) grad: zeros (not in graph)" in outline
assert outline.count("AddmmBackward0") == 1
helpers.draw(trap, beside=control)

# %% [markdown]
# Keeping the body out of the optimizer is the other fix: in every `l2` row of the truth table
# the body stays put, whichever optimizer and whatever its grads hold.

# %%
for kind in ("sgd", "momentum", "adam", "adamw"):
    for excluded in ("alone", "frozen", "zeros"):
        outcome = helpers.run("optimizer_subsets", params="l2", optimizer=kind,
                              excluded=excluded)
        assert not outcome.params["l1.weight"].changed and not outcome.params["l1.bias"].changed
        assert outcome.params["l1.weight"].extra["optimizer"] == "not held"
print("l1 out of the optimizer: moved in none of the 12 l2 rows")

# %% [markdown]
# The same in plain code, with Adam: train everything 3 steps, freeze `l1`, and keep clearing
# with `zero_grad(set_to_none=False)`.

# %%
net = helpers.toy_net()
optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
for _ in range(3):
    optimizer.zero_grad()
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
net.l1.requires_grad_(False)               # freeze the body...
frozen_at = net.l1.weight.detach().clone()
for _ in range(3):
    optimizer.zero_grad(set_to_none=False)  # ...but its grads are zeros, not None
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
print("l1.weight.grad is zeros:", not net.l1.weight.grad.any(),
      "| l1.weight moved:", not torch.equal(net.l1.weight, frozen_at))
assert not net.l1.weight.grad.any() and not torch.equal(net.l1.weight, frozen_at)

# %% [markdown]
# Momentum and Adam need history for this: with no earlier steps, zero grads leave their state
# at zero and the parameter still. Weight decay needs none: SGD's and Adam's add
# `weight_decay * p` to the zero grad, and a fresh AdamW shrinks a zero-grad parameter by
# exactly `1 - lr * weight_decay` per step. A `None` grad makes AdamW skip the parameter
# entirely, decay included (no state is even created).

# %%
def one_step(make_optimizer, grad):
    """One step of a fresh optimizer on a frozen parameter with the given grad."""
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(4))
    start = p.detach().clone()
    optimizer = make_optimizer([p])
    p.requires_grad_(False)
    p.grad = grad
    optimizer.step()
    return start, p.detach(), optimizer.state[p]


lines = []
for name, make in [("momentum", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
                   ("adam", lambda ps: torch.optim.Adam(ps, lr=0.1))]:
    start, after, _ = one_step(make, torch.zeros(4))
    lines.append(f"fresh {name}, zero grad: moved {not torch.equal(start, after)}")
    assert torch.equal(start, after)
decaying = [("SGD weight_decay", lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.5)),
            ("Adam weight_decay", lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=0.5))]
for name, make in decaying:
    start, after, _ = one_step(make, torch.zeros(4))
    lines.append(f"fresh {name}, zero grad: moved {not torch.equal(start, after)}")
    assert not torch.equal(start, after)

adamw = lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.5)
start, after, state = one_step(adamw, torch.zeros(4))
lines.append(f"fresh AdamW, zero grad: after == before * (1 - 0.1 * 0.5): "
             f"{torch.equal(after, start * (1 - 0.1 * 0.5))}")
assert torch.equal(after, start * (1 - 0.1 * 0.5)) and len(state) > 0
start, after, state = one_step(adamw, None)
lines.append(f"fresh AdamW, grad None: moved {not torch.equal(start, after)}, state {dict(state)}")
print("\n".join(lines))
assert torch.equal(after, start) and len(state) == 0

# %% [markdown]
# **6. With grads `None`, Adam skips the frozen parameter, and its state survives.**
# Freezing does not delete what the optimizer stored. While the grad is `None` Adam does not
# touch the state at all: its `exp_avg` and step count for `l1` stay as the warm-up left them,
# ready to be used again if you unfreeze (and to bite if the grad ever becomes zeros).

# %%
net = helpers.toy_net()
optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
for _ in range(3):
    optimizer.zero_grad()
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
net.l1.requires_grad_(False)
kept = optimizer.state[net.l1.weight]["exp_avg"].clone()
for _ in range(3):
    optimizer.zero_grad()                  # default: set_to_none=True
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
steps_l1 = int(optimizer.state[net.l1.weight]["step"])
steps_l2 = int(optimizer.state[net.l2.weight]["step"])
print(f"Adam steps counted: l1 {steps_l1}, l2 {steps_l2}")
assert net.l1.weight.grad is None
assert torch.equal(optimizer.state[net.l1.weight]["exp_avg"], kept)
assert (steps_l1, steps_l2) == (3, 6)

# %% [markdown]
# **Every built-in optimizer but one leaves a parameter with a `None` grad alone.** The table
# runs each optimizer
# `torch.optim` exports, with its default options, through this notebook's scenario: 3 steps
# on the whole toy net, freeze `l1`, 3 more steps, and asks whether `l1` moved. With grads
# `None`, only **LBFGS** moves it. LBFGS keeps one search direction over all its parameters,
# built from the gradients of earlier steps; a `None` grad counts as zeros there, and the
# remembered direction still moves `l1`. A parameter frozen before the first step has no such
# history, and no optimizer moves it. With zero grads, several move it, among them Adam,
# AdamW and LBFGS (section 5 shows why); plain SGD does not. The `lr=0` column belongs to
# section 7.
#
# Fix for LBFGS (and the safe habit for all): keep frozen parameters out of the optimizer.

# %%
none_movers = optimizers.names_where(survey, "frozen after warm-up, grad None", "moves")
zero_movers = optimizers.names_where(survey, "frozen after warm-up, grad zeros", "moves")
assert none_movers == ["LBFGS"]
assert optimizers.names_where(survey, "frozen from the start, grad None", "moves") == []
assert {"Adam", "AdamW", "LBFGS"} <= set(zero_movers) and "SGD" not in zero_movers
survey

# %% [markdown]
# **7. A learning rate of 0 stops the update (not the work), except in Rprop.** In the `lr0`
# rows the body stays in the optimizer with `lr=0`. It gets gradients every step and the
# optimizer keeps its state for it (momentum buffer, Adam's moments; plain SGD keeps none), but
# it does not move under the explorer's four optimizers, even AdamW: decoupled weight decay is scaled by the learning rate too
# (`p *= 1 - lr * weight_decay`).

# %%
lr0 = helpers.run("optimizer_subsets", params="lr0", optimizer="adamw", excluded="alone")
helpers.grad_table(lr0)

# %%
for kind in ("sgd", "momentum", "adam", "adamw"):
    for excluded in ("alone", "frozen", "zeros"):
        outcome = helpers.run("optimizer_subsets", params="lr0", optimizer=kind,
                              excluded=excluded)
        assert not outcome.params["l1.weight"].changed and outcome.params["l2.weight"].changed
        state = outcome.params["l1.weight"].extra["optimizer state"]
        assert state == {"sgd": "empty", "momentum": "momentum_buffer"}.get(
            kind, "exp_avg, exp_avg_sq")
assert lr0.params["l1.weight"].extra["optimizer"] == "lr 0"
assert lr0.params["l1.weight"].extra["optimizer state"] == "exp_avg, exp_avg_sq"
assert lr0.params["l1.weight"].grad == "values"

# %% [markdown]
# Over every built-in optimizer (the `lr=0` column of the table in section 6): `lr=0` holds the
# parameters still in all of them but **Rprop**, which clamps its per-weight step size to at
# least `1e-6` and so still moves; `SparseAdam` refuses `lr=0` outright.

# %%
lr0_column = dict(zip(survey.column("optimizer"), survey.column("lr=0")))
print({name: cell for name, cell in lr0_column.items() if cell != "stays"})
assert optimizers.names_where(survey, "lr=0", "moves") == ["Rprop"]
assert all(cell in ("stays", "moves") or cell.startswith("refuses")
           for cell in lr0_column.values())
assert lr0_column["SparseAdam"] == "refuses: Invalid learning rate: 0.0"

# %% [markdown]
# ## Pitfalls
# ### Freezing mid-training with `set_to_none=False`
# Some training loops clear with `zero_grad(set_to_none=False)` (older code, or code that wants
# to reuse the grad tensors). Freeze the body in such a loop and it keeps drifting: section 5.
# The learner meets it as a "frozen" layer whose weights still change:

# %%
def fine_tune(set_to_none, fresh_optimizer):
    """3 steps on everything with AdamW, freeze l1, 3 more steps. How far did l1 move?"""
    net = helpers.toy_net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.01)
    for step in range(6):
        if step == 3:
            net.l1.requires_grad_(False)
            frozen_at = net.l1.weight.detach().clone()
            if fresh_optimizer:            # rebuild it over what still trains
                optimizer = torch.optim.AdamW(
                    [p for p in net.parameters() if p.requires_grad], lr=0.1,
                    weight_decay=0.01)
        optimizer.zero_grad(set_to_none=set_to_none)
        helpers.toy_loss(net(x), y).backward()
        optimizer.step()
    return (net.l1.weight - frozen_at).abs().max().item()


drift = fine_tune(set_to_none=False, fresh_optimizer=False)
print(f"largest change of the frozen l1.weight: {drift:.4f}")
assert drift > 0

# %% [markdown]
# Fix: give the optimizer only what still trains, or keep the default `zero_grad()` (grads
# become `None`, which every built-in optimizer but LBFGS leaves alone). With AdamW either one
# alone is enough.

# %%
fixed_by_none = fine_tune(set_to_none=True, fresh_optimizer=False)
fixed_by_subset = fine_tune(set_to_none=False, fresh_optimizer=True)
print(f"with zero_grad(): {fixed_by_none} | with a trainable-only optimizer: {fixed_by_subset}")
assert fixed_by_none == 0 and fixed_by_subset == 0

# %% [markdown]
# ### The same parameter in two groups
# A quick way to write per-group learning rates is to list everything, then add the body again
# with its own rate. PyTorch refuses:

# %%
net = helpers.toy_net()
try:
    torch.optim.SGD([{"params": net.parameters()},
                     {"params": net.l1.parameters(), "lr": 0.01}], lr=0.1)
except ValueError as e:
    message = str(e).splitlines()[0]
    print(type(e).__name__ + ":", message)
assert "some parameters appear in more than one parameter group" in message

# %% [markdown]
# Fix: each parameter goes in exactly one group. Split by module (or by name).

# %%
optimizer = torch.optim.SGD([{"params": net.l1.parameters(), "lr": 0.01},
                             {"params": net.l2.parameters()}], lr=0.1)
print([(len(g["params"]), g["lr"]) for g in optimizer.param_groups])
assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.1]

# %% [markdown]
# ### Unfreezing a layer that was only left out
# Gradual unfreezing adds the body to the optimizer after a while (`add_param_group`). Take a
# loop that clears at the *end* of each iteration (backward, step, `zero_grad()`). If the body
# was only left out, not frozen, its grad has been adding up since the start, and the first
# step after adding it applies all of it at once.

# %%
def unfreeze_after(steps, clear_first):
    """Train the head for `steps`, add the body, run one more iteration.
    Returns the body's grad norm at that step and how far the step moved it."""
    net = helpers.toy_net()
    optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)
    for _ in range(steps):
        helpers.toy_loss(net(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()              # clears the head only
    if clear_first:
        net.zero_grad()                    # the module clears everything, l1 included
    optimizer.add_param_group({"params": net.l1.parameters()})
    before = net.l1.weight.detach().clone()
    helpers.toy_loss(net(x), y).backward()
    grad_norm = net.l1.weight.grad.norm().item()
    optimizer.step()
    optimizer.zero_grad()
    return grad_norm, (net.l1.weight - before).norm().item()


stale = unfreeze_after(5, clear_first=False)
print(f"stale: grad norm {stale[0]:.4f}, step size {stale[1]:.4f}")

# %% [markdown]
# Fix: clear with `model.zero_grad()` before adding the body (or keep the body frozen with
# `requires_grad_(False)` while it is out, so no grad piles up). The first step then uses one
# pass's gradient. (A loop that clears at the *start* of each iteration is safe here by luck:
# its first `optimizer.zero_grad()` after `add_param_group` clears the body too.)

# %%
fresh = unfreeze_after(5, clear_first=True)
print(f"fresh: grad norm {fresh[0]:.4f}, step size {fresh[1]:.4f}")
assert stale[0] > 3 * fresh[0] and stale[1] > 3 * fresh[1]

net = helpers.toy_net()                    # the start-clearing loop, right after adding l1:
optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)
helpers.toy_loss(net(x), y).backward()
optimizer.add_param_group({"params": net.l1.parameters()})
optimizer.zero_grad()                      # now also clears l1
assert net.l1.weight.grad is None

# %% [markdown]
# ## Where it is used
# **Fine-tuning a head.** Freeze the pretrained body and give the optimizer only the parameters
# that train. With both, the body costs no backward work and cannot drift, whatever
# `zero_grad` does.
#
# **Discriminative learning rates.** Fine-tune the whole model, but the body with a smaller
# learning rate than the head (one parameter group per part). An `lr` of 0 holds a group still
# while keeping it in the optimizer (in every built-in optimizer but Rprop, which still moves,
# and SparseAdam, which refuses `lr=0`: section 7), for example until a schedule raises it.

# %%
net = helpers.toy_net()
net.l1.requires_grad_(False)                                   # fine-tune the head only
optimizer = torch.optim.AdamW((p for p in net.parameters() if p.requires_grad), lr=0.1)
body = net.l1.weight.detach().clone()
for _ in range(20):
    optimizer.zero_grad()
    loss = helpers.toy_loss(net(x), y)
    loss.backward()
    optimizer.step()
print(f"head only: loss {loss.item():.4f}, body moved: {not torch.equal(net.l1.weight, body)}")
assert torch.equal(net.l1.weight, body)

# %%
net.l1.requires_grad_(True)                                    # then everything, gently
optimizer = torch.optim.AdamW([{"params": net.l1.parameters(), "lr": 0.01},
                               {"params": net.l2.parameters(), "lr": 0.1}])
for _ in range(20):
    optimizer.zero_grad()
    loss_all = helpers.toy_loss(net(x), y)
    loss_all.backward()
    optimizer.step()
print(f"all, body at lr 0.01: loss {loss_all.item():.4f}")
assert loss_all.item() < loss.item() and not torch.equal(net.l1.weight, body)

# %% [markdown]
# ## Exercises
# **06.1** The optimizer is `torch.optim.SGD(net.l2.parameters(), lr=0.1)`. After one
# iteration (`zero_grad`, forward, backward, `step`) you call `optimizer.zero_grad()` once more.
# Which parameters still have a `.grad` that is not `None`? Answer with a set of names.

# %%
answer = ...  # e.g. {"l2.bias"}
helpers.check("06.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"l1.weight", "l1.bias"}`. `optimizer.zero_grad()` clears only the parameters the optimizer
# holds. `l1` still requires grad, so `backward()` filled its grads, and nothing cleared them.
# </details>
#
# **06.2** A parameter holds the value `2.0`, the optimizer is
# `torch.optim.AdamW([p], lr=0.1, weight_decay=0.5)` with no earlier steps, and `p` is frozen
# with `p.grad = torch.zeros(())`. What is `p` after 3 calls to `optimizer.step()`? Answer with
# a float.

# %%
answer = ...  # e.g. 1.5
helpers.check("06.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `2.0 * 0.95 ** 3`, about `1.7148`. AdamW multiplies by `1 - lr * weight_decay = 0.95` on every
# step when the grad is not `None`; with zero grads and no history its Adam update is 0. With
# `p.grad = None` the answer would be `2.0`.
# </details>
#
# **06.3** SGD with `momentum=0.9` over all parameters trains 3 steps. Then the *head* is
# frozen, `net.l2.requires_grad_(False)`, and 3 more iterations each start with
# `optimizer.zero_grad(set_to_none=False)`. Which parameters changed during those 3 iterations?
# Answer with a set of names.

# %%
answer = ...  # e.g. {"l2.weight"}
helpers.check("06.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# All four. `l1` still trains. `l2`'s grads are zeros, not `None`, so the optimizer does not
# skip it, and the momentum buffer from the first 3 steps keeps moving it. With the default
# `zero_grad()` only `l1.weight` and `l1.bias` would change.
# </details>

# %% [markdown]
# ## Recap
# - An optimizer moves only what it holds and never reads `requires_grad`; every built-in one
#   but LBFGS leaves a parameter whose `.grad` is `None` alone.
# - Left out of the optimizer, a parameter still gets its gradient computed, and the grad piles
#   up (`optimizer.zero_grad()` does not clear it); `requires_grad_(False)` saves the work.
# - A frozen parameter with zero grads is moved by momentum, Adam and weight decay: keep it
#   out of the optimizer, or (not with LBFGS) freeze with grads `None`.
#
# ## Further reading
# - [`torch.optim`: per-parameter options](https://pytorch.org/docs/stable/optim.html#per-parameter-options)
# - [`torch.optim.Optimizer.zero_grad`](https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.zero_grad.html)
# - [`torch.optim.Optimizer.add_param_group`](https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.add_param_group.html)
# - [`torch.optim.SGD`](https://pytorch.org/docs/stable/generated/torch.optim.SGD.html),
#   [`torch.optim.Adam`](https://pytorch.org/docs/stable/generated/torch.optim.Adam.html),
#   [`torch.optim.AdamW`](https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html)
#   (each page shows the update, with the weight decay term)
# - [`torch.nn.Module.requires_grad_`](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.requires_grad_)
#
# [Next: 07 · Manual gradient edits](07_manual_grad_edits.ipynb)
