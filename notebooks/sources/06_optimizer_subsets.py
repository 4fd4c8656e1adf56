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
# An optimizer updates the parameters you hand it, from their `.grad`: no built-in one looks at
# `requires_grad`.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/06_optimizer_subsets.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/06_optimizer_subsets.ipynb)

# %% [markdown]
# **What you will learn**
# - how to give the optimizer some of the parameters, or a learning rate per group;
# - why a parameter left out of the optimizer still gets a gradient;
# - the trap: a frozen parameter whose grad is zeros, not `None`, can still move.
#
# **Prerequisites**: [01 · zero_grad](01_zero_grad.ipynb) and
# [02 · requires_grad_(False)](02_requires_grad.ipynb).
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
# `L1 -> ReLU -> L2`, as in every notebook. Here `l1` plays a pretrained *body* and `l2` the
# *head* you fine-tune. The graph of one plain training step:

# %%
x, y = helpers.toy_batch()
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# You fine-tune only the head: the optimizer is `torch.optim.Adam(net.l2.parameters())`, and
# `l1` still requires grad. After six training steps, each starting with
# `optimizer.zero_grad()`, which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` have `.grad`
# equal to `None`? Decide, then tick your answer and press the button.

# %%
helpers.predict("optimizer_subsets", params="l2", optimizer="adam", excluded="alone")

# %% [markdown]
# ## The mechanism in code
# Three ways to keep the body `l1` fixed while the head `l2` trains:

# %%
net = helpers.toy_net()

# 1. Give the optimizer only the head.
head_only = torch.optim.Adam(net.l2.parameters(), lr=0.1)

# 2. Also freeze the body, so that backward() computes no gradient for it.
net.l1.requires_grad_(False)

# 3. Or (another copy) keep every parameter in the optimizer, in groups with their own lr.
other = helpers.toy_net()
grouped = torch.optim.AdamW([
    {"params": other.l1.parameters(), "lr": 0.0},  # body: lr 0 (0.01: fine-tune it gently)
    {"params": other.l2.parameters()},             # head: the default lr below
], lr=0.1, weight_decay=0.01)

held = head_only.param_groups[0]["params"]
print("head_only holds:", [n for n, p in net.named_parameters() if any(p is q for q in held)])
print("grouped learning rates:", [g["lr"] for g in grouped.param_groups])
assert len(held) == 2 and held[0] is net.l2.weight and held[1] is net.l2.bias
assert [g["lr"] for g in grouped.param_groups] == [0.0, 0.1]
assert not any(p.requires_grad for p in net.l1.parameters())

# %% [markdown]
# ## Explorer
# Choose which parameters the optimizer holds, which optimizer, and what happens to the layer
# meant to stay fixed. The optimizer first trains 3 warm-up steps, so momentum and Adam's
# moments exist; `changed by step` counts only the 3 steps after. Try *all parameters* with
# *requires_grad_(False); p.grad.zero_()*, then click through the optimizers.

# %%
helpers.explore("optimizer_subsets")

# %% [markdown]
# ## Why
# `backward()` fills `.grad` for every parameter that requires grad and feeds the loss; it has
# never heard of your optimizer. `step()` updates the parameters it holds, from their `.grad`
# and its own state (momentum, Adam's moments). Adam skips a `None` grad, but zeros are a
# gradient like any other: with momentum, Adam's running mean or weight decay, a frozen
# parameter whose grad is zeros can keep moving. The cell shows both halves.

# %%
net = helpers.toy_net()
optimizer = torch.optim.Adam(net.l2.parameters(), lr=0.1)   # the head only
body = net.l1.weight.detach().clone()
for _ in range(6):
    optimizer.zero_grad()
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
print("left out:  l1.weight.grad is None:", net.l1.weight.grad is None,
      "| l1.weight moved:", not torch.equal(net.l1.weight, body))
assert net.l1.weight.grad is not None and torch.equal(net.l1.weight, body)

net = helpers.toy_net()
optimizer = torch.optim.Adam(net.parameters(), lr=0.1)      # everything
for step in range(6):
    if step == 3:                                           # freeze the body after 3 steps
        net.l1.requires_grad_(False)
        body = net.l1.weight.detach().clone()
    optimizer.zero_grad(set_to_none=False)                  # grads become zeros, not None
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
print("frozen, zero grads:  l1.weight.grad all zero:", not net.l1.weight.grad.any(),
      "| l1.weight moved:", not torch.equal(net.l1.weight, body))
assert not net.l1.weight.grad.any() and not torch.equal(net.l1.weight, body)

# %% [markdown]
# ## Recap
# - `backward()` gives a gradient to every parameter that requires grad and feeds the loss;
#   the optimizer updates the ones it holds, from their `.grad`.
# - Left out of the optimizer, a parameter still costs backward work and keeps a grad that
#   `optimizer.zero_grad()` does not clear; `requires_grad_(False)` saves the work.
# - Zero grads still let momentum, Adam and weight decay move a frozen parameter: keep it out
#   of the optimizer, or leave its grad `None` (enough for every built-in optimizer but LBFGS).
#
# [Next: 07 · Manual gradient edits](07_manual_grad_edits.ipynb)

# %% [markdown]
# ## Going deeper: the scenario, left out and frozen (about 8 minutes)
# Every table below runs the explorer's scenario. The optimizer (over the parameters `params`
# names) trains 3 warm-up steps. Then the layer meant to stay fixed (`l1`, or `l2` when the
# optimizer gets only `l1`) is left alone, frozen with `requires_grad_(False)` and its grads
# cleared (`p.grad = None`), or frozen with its grads zeroed (the loop then uses
# `zero_grad(set_to_none=False)`). Then 3 more steps. The extra columns are taken just before
# the last `optimizer.step()`:
# - `optimizer`: the learning rate the optimizer uses for the parameter, or "not held";
# - `optimizer state`: what the optimizer keeps for it (`momentum_buffer`, Adam's `exp_avg`,
#   `exp_avg_sq`);
# - `grad before step`: `None`, zeros, or values summed over *k* backward passes.
#
# The default, Adam over the head with the body left alone, agrees with the plain loop of the
# "Why" cell: `l1` has a gradient and did not move; `l2` moved.

# %%
head = helpers.run("optimizer_subsets")
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
helpers.grad_table(head)

# %% [markdown]
# **A left-out gradient piles up.** `optimizer.zero_grad()` clears only what the optimizer
# holds ([01 · zero_grad](01_zero_grad.ipynb) shows the scope), so `l1`'s grad holds all 6
# passes (3 warm-up, 3 measured), `l2`'s only the last one. A parameter that requires grad but
# does not feed the loss keeps `None`.

# %%
print({name: head.params[name].extra["grad before step"] for name in helpers.PARAM_NAMES})
assert head.params["l1.weight"].extra["grad before step"] == "values (6 passes)"
assert head.params["l2.weight"].extra["grad before step"] == "values (1 pass)"

unused = torch.nn.Parameter(torch.ones(2))  # requires grad, but the loss does not use it
helpers.toy_loss(net(x), y).backward()
assert unused.requires_grad and unused.grad is None

# %% [markdown]
# **Freezing as well saves the work.** With `l1.requires_grad_(False)`, and `l1` the first
# layer (its input `x` does not require grad), autograd records none of `l1`'s operations
# ([02 · requires_grad_(False)](02_requires_grad.ipynb)): backward never visits it. Freezing
# does not clear a grad the body already holds, so the explorer's *frozen* choice also sets
# `p.grad = None`; from then on the grad stays `None`.

# %%
frozen_body = helpers.run("optimizer_subsets", params="l2", excluded="frozen")
net = helpers.toy_net()
helpers.toy_loss(net(x), y).backward()     # the body left out: its grad fills up
net.l1.requires_grad_(False)
print("after requires_grad_(False): l1.weight.grad is None:", net.l1.weight.grad is None,
      "| l1's output has a grad_fn:", net.l1(x).grad_fn is not None)
assert net.l1.weight.grad is not None      # freezing kept the old grad...
for p in net.l1.parameters():
    p.grad = None                          # ...so the frozen choice clears it too
helpers.toy_loss(net(x), y).backward()
assert net.l1.weight.grad is None and net.l1(x).grad_fn is None
assert frozen_body.grads_none() == ["l1.weight", "l1.bias"]
helpers.draw(frozen_body, beside=control)

# %% [markdown]
# ## Going deeper: the truth table (about 3 minutes)
# All 48 combinations. Each cell is the grad state after the last step; `*` marks a parameter
# the 3 measured steps moved. Look for the `all` rows with `zeros`: the frozen `l1` still
# moves under momentum, Adam and AdamW.

# %%
table = helpers.truth_table("optimizer_subsets")
assert len(table.rows) == 4 * 4 * 3 == 48
table

# %% [markdown]
# ## Going deeper: zeros are not `None` (about 8 minutes)
# A frozen parameter whose grad is a tensor of zeros is not skipped. Plain SGD moves it by
# `lr * 0`, which is nothing. But SGD with momentum moves it by the velocity built up before
# the freeze, Adam by its running mean `exp_avg` from earlier steps, and weight decay (SGD's,
# Adam's or AdamW's) on every step, zero gradient or not.

# %%
moved = {kind: helpers.run("optimizer_subsets", params="all", optimizer=kind,
                           excluded="zeros").params["l1.weight"].changed
         for kind in ("sgd", "momentum", "adam", "adamw")}
print("frozen l1 with zero grads moved:", moved)
assert moved == {"sgd": False, "momentum": True, "adam": True, "adamw": True}

# %% [markdown]
# Autograd is not the culprit: in the trap, `backward()` gives the frozen `l1` no gradient (its
# grad stays the zeros the loop left), yet `optimizer.step()`, which still holds `l1`, moves
# it.

# %%
trap = helpers.run("optimizer_subsets", params="all", optimizer="momentum", excluded="zeros")
assert trap.params["l1.weight"].grad == "zeros" and trap.params["l1.weight"].changed
assert not trap.params["l1.weight"].requires_grad
helpers.grad_table(trap)

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
# **With grads `None`, Adam skips the frozen parameter, and its state survives.** Freezing does
# not delete what the optimizer stored. While the grad is `None` Adam does not touch the state:
# its `exp_avg` and step count for `l1` stay as the warm-up left them, ready to be used again
# if you unfreeze (and to bite if the grad ever becomes zeros).

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
# **The two fixes, in a loop that clears with `set_to_none=False`** (older code, or code that
# reuses the grad tensors). The "Why" cell froze the body in such a loop and it kept drifting.
# Either the default `zero_grad()` (grads become `None`) or an optimizer rebuilt over what
# still trains stops it, here with AdamW.

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


drifts = {"as written": fine_tune(set_to_none=False, fresh_optimizer=False),
          "zero_grad()": fine_tune(set_to_none=True, fresh_optimizer=False),
          "trainable-only optimizer": fine_tune(set_to_none=False, fresh_optimizer=True)}
print({fix: f"{drift:.4f}" for fix, drift in drifts.items()})
assert drifts["as written"] > 0
assert drifts["zero_grad()"] == 0 and drifts["trainable-only optimizer"] == 0

# %% [markdown]
# ## Going deeper: every built-in optimizer (about 6 minutes)
# **Optimizers look at `.grad`, not at `requires_grad`.** A frozen parameter that somehow has a
# gradient is updated like any other, here by plain SGD.

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
# The table runs every optimizer `torch.optim` exports (found by the helper, so one added in a
# later PyTorch is checked too), with its default options, through the scenario: 3 steps on the
# whole toy net, freeze `l1`, 3 more steps; did `l1` move? The last column gives the same
# `.grad` with `requires_grad` on and off: each optimizer moves the parameter by the same
# amount both times.
#
# With grads `None`, only **LBFGS** moves the frozen `l1`. It keeps one search direction over
# all its parameters, built from earlier gradients; a `None` grad counts as zeros there, and
# the remembered direction still moves `l1`. A parameter frozen before the first step has no
# such history, and no built-in optimizer moves it. With zero grads, several move it, among them Adam,
# AdamW and LBFGS; plain SGD does not. Fix for LBFGS: keep frozen parameters out of the
# optimizer.

# %%
from helpers import optimizers

survey = optimizers.survey()
none_movers = optimizers.names_where(survey, "frozen after warm-up, grad None", "moves")
zero_movers = optimizers.names_where(survey, "frozen after warm-up, grad zeros", "moves")
assert (optimizers.names_where(survey, "requires_grad ignored", "yes")
        == list(optimizers.builtin_optimizers()))
assert none_movers == ["LBFGS"]
assert optimizers.names_where(survey, "frozen from the start, grad None", "moves") == []
assert {"Adam", "AdamW", "LBFGS"} <= set(zero_movers) and "SGD" not in zero_movers
survey

# %% [markdown]
# **A learning rate of 0 stops the update, not the work.** In the explorer's `lr0` rows the
# body stays in the optimizer with `lr=0`. It gets gradients every step and the optimizer
# keeps its state for it (momentum buffer, Adam's moments; plain SGD keeps none), but it does
# not move under the explorer's four optimizers, AdamW included: decoupled weight decay is
# scaled by the learning rate too (`p *= 1 - lr * weight_decay`).

# %%
lr0 = helpers.run("optimizer_subsets", params="lr0", optimizer="adamw", excluded="alone")
for kind in ("sgd", "momentum", "adam", "adamw"):
    for excluded in ("alone", "frozen", "zeros"):
        outcome = helpers.run("optimizer_subsets", params="lr0", optimizer=kind,
                              excluded=excluded)
        assert not outcome.params["l1.weight"].changed and outcome.params["l2.weight"].changed
        state = outcome.params["l1.weight"].extra["optimizer state"]
        assert state == {"sgd": "empty", "momentum": "momentum_buffer"}.get(
            kind, "exp_avg, exp_avg_sq")
assert lr0.params["l1.weight"].extra["optimizer"] == "lr 0"
assert lr0.params["l1.weight"].grad == "values"
helpers.grad_table(lr0)

# %% [markdown]
# Over every built-in optimizer (the survey's `lr=0` column): `lr=0` holds the parameters still
# in all of them but **Rprop**, which clamps its per-weight step size to at least `1e-6` and so
# still moves; `SparseAdam` refuses `lr=0` outright.

# %%
lr0_column = dict(zip(survey.column("optimizer"), survey.column("lr=0")))
print({name: cell for name, cell in lr0_column.items() if cell != "stays"})
assert optimizers.names_where(survey, "lr=0", "moves") == ["Rprop"]
assert all(cell in ("stays", "moves") or cell.startswith("refuses")
           for cell in lr0_column.values())
assert lr0_column["SparseAdam"] == "refuses: Invalid learning rate: 0.0"

# %% [markdown]
# ## Going deeper: pitfalls (about 5 minutes)
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
# ## Going deeper: where it is used (about 3 minutes)
# **Fine-tuning a head.** Freeze the pretrained body and give the optimizer only the parameters
# that train. With both, the body costs no backward work and cannot drift, whatever
# `zero_grad` does.
#
# **Discriminative learning rates.** Fine-tune the whole model, but the body with a smaller
# learning rate than the head (one parameter group per part). An `lr` of 0 holds a group still
# while keeping it in the optimizer (in every built-in optimizer but Rprop, which still moves,
# and SparseAdam, which refuses `lr=0`: see "every built-in optimizer" above), for example
# until a schedule raises it.

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
# ## Going deeper: exercises (about 10 minutes)
# **06.1** Why is `l2.weight.grad` `None` when `step()` runs below, while `l2.bias.grad` holds
# values?
#
# ```python
# net = helpers.toy_net()
# optimizer = torch.optim.SGD([net.l1.weight, net.l2.weight], lr=0.1)   # weights only
# loss = helpers.toy_loss(net(x), y)
# loss.backward()
# optimizer.zero_grad()
# optimizer.step()
# ```
#
# - (a) `step()` sets the grads of the parameters it updates to `None`.
# - (b) `zero_grad()` ran after `backward()` and cleared the grads of what the optimizer holds.
# - (c) `backward()` computes no gradient for a weight the optimizer holds.
#
# Answer `"a"`, `"b"` or `"c"`.

# %%
answer = ...  # e.g. "a"
helpers.check("06.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `"b"`. `optimizer.zero_grad()` (default `set_to_none=True`) sets the grads of the two weights
# it holds to `None`, so `step()` skips them. The biases are not in the optimizer: their grads
# survive, and nothing applies them. Call `zero_grad()` before `backward()`.
# </details>
#
# **06.2** A parameter holds the value `2.0`, the optimizer is
# `torch.optim.AdamW([p], lr=0.1, weight_decay=0.5)` with no earlier steps, and `p` is frozen
# with `p.grad = torch.zeros(())`. What is `p` after this loop? Answer with a float.
#
# ```python
# for _ in range(3):
#     optimizer.step()
#     optimizer.zero_grad()
# ```

# %%
answer = ...  # e.g. 1.5
helpers.check("06.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `1.9`, that is `2.0 * 0.95`. The first step sees a grad of zeros, not `None`: AdamW multiplies
# `p` by `1 - lr * weight_decay = 0.95` (with zero grads and no history its Adam update is 0).
# Then `optimizer.zero_grad()` (default `set_to_none=True`) sets the grad to `None`, and AdamW
# skips `p` in the next two steps, decay included. With `zero_grad(set_to_none=False)` the
# answer would be `2.0 * 0.95 ** 3`.
# </details>
#
# **06.3** SGD with `momentum=0.9` holds all four parameters. Which of them changed during the
# last two iterations? Answer with a set of names.
#
# ```python
# net = helpers.toy_net()
# optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
# net.l1.bias.requires_grad_(False)            # frozen before training starts
# for step in range(4):
#     if step == 2:
#         net.l2.bias.requires_grad_(False)    # frozen after two steps
#     optimizer.zero_grad(set_to_none=False)
#     helpers.toy_loss(net(x), y).backward()
#     optimizer.step()
# ```

# %%
answer = ...  # e.g. {"l2.weight"}
helpers.check("06.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# Both weights train. `l2.bias` moves too: its grad is zeros, not `None`, and the momentum
# buffer from the first two steps keeps moving it. `l1.bias` stays: it was frozen before its
# first `backward()`, so its grad was never filled, `set_to_none=False` has nothing to zero,
# and SGD skips a `None` grad.
# </details>
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
