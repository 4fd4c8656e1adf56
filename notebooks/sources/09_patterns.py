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
# # 09 · Patterns from real training code
#
# Real training code has several models and a rule for each loss, *train this module, never
# touch that one*, and you can check the rule before training by listing what the loss's graph
# reaches.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/09_patterns.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/09_patterns.ipynb)

# %% [markdown]
# **What you will learn**
# - to state a training step's rule: which modules a loss must reach, and which it must not;
# - to check the rule before training with `patterns.reached_by`, a walk of the loss's graph;
# - (going deeper) nine patterns from real code, from fine-tuning to DDPG, and what each
#   classic mistake does: an error, a leak of gradients, or a silently wrong update.
#
# **Prerequisites**: [02 · requires_grad_(False)](02_requires_grad.ipynb),
# [03 · detach](03_detach.ipynb) and [04 · torch.no_grad](04_no_grad.ipynb).
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
# In the plain step of the `L1 -> ReLU -> L2` toy network, the loss reaches every parameter.
# The patterns use small models of their own and name each parameter by its module:
# `generator.weight`, `discriminator.bias`.

# %%
from helpers import patterns

control = helpers.run("control")
assert control.grads_none() == []
helpers.draw(control)

# %% [markdown]
# ## Predict first
# A GAN's discriminator step that forgot `.detach()`:
#
# ```python
# fake = generator(noise)
# d_loss = bce(discriminator(real), ones) + bce(discriminator(fake), zeros)  # no detach
# d_loss.backward()
# ```
#
# Which modules' parameters does `d_loss` reach, so that `backward()` fills their `.grad`: the
# generator's, the discriminator's, both? Decide before you scroll on.

# %%
patterns.predict("gan", mistake="no_detach")

# %% [markdown]
# ## The rule in code
# `backward()` fills the `.grad` of the parameters it meets walking back from the loss.
# `patterns.reached_by(loss, named_parameters)` does the same walk without running backward:

# %%
generator, discriminator, noise, real = patterns.gan_parts()
named = {"generator.weight": generator.weight, "discriminator.weight": discriminator.weight}
fake = generator(noise)
with_fake = patterns.reached_by(discriminator(fake).sum(), named)
with_detached = patterns.reached_by(discriminator(fake.detach()).sum(), named)
print("reached through fake:         ", sorted(with_fake))
print("reached through fake.detach():", sorted(with_detached))
assert with_fake == set(named) and with_detached == {"discriminator.weight"}

# %% [markdown]
# `patterns.run_pattern("gan")` runs a whole GAN step, the discriminator's update on
# `fake.detach()`, then the generator's. The table gives each parameter's rule, whether
# `d_loss` reaches it, and its `.grad` just after `d_loss.backward()`.

# %%
gan = patterns.run_pattern("gan")
assert gan.ok and gan.grads_none() == ["generator.weight", "generator.bias"]
gan.table()

# %% [markdown]
# Without `.detach()`, `d_loss` also fills the generator's `.grad` and frees the generator's
# part of the graph, so the generator's own backward through the same `fake` fails.

# %%
gan_broken = patterns.run_pattern("gan", "no_detach")
print(gan_broken.error)
assert gan_broken.grads["generator.weight"] == "values"
assert "Trying to backward through the graph a second time" in gan_broken.error.message
gan_broken.draw(beside=gan)

# %% [markdown]
# ## Explorer
# Nine patterns, each correct and with its classic mistakes: pick one, and the summary, the
# table and the graph follow.

# %%
patterns.explore("gan")

# %% [markdown]
# ## Why
# These steps start from fresh models and clear grads before the backward that matters.
# After it, the parameters with a gradient are exactly those the graph reaches, and every
# other `.grad` is still `None`. So a walk of the graph predicts `backward()`, and checks a
# rule before any step runs.

# %%
checked = [("gan", None), ("gan", "no_detach"), ("fine_tune", None), ("fine_tune", "no_freeze"),
           ("distillation", None), ("distillation", "teacher_graph")]
for name, mistake in checked:
    result = patterns.run_pattern(name, mistake)
    assert {n for n, state in result.grads.items() if state == "values"} == result.reached
    assert all(state == "None" for n, state in result.grads.items() if n not in result.reached)
print(f"filled .grad == reached, in {len(checked)} steps")

# %% [markdown]
# ## Recap
# - Each step has a rule: which modules a loss may train. Write it down.
# - `patterns.reached_by(loss, named_parameters)` lists what `backward()` would fill: check
#   the rule before you trust a training loop.
# - A `.detach()` where one model's output feeds another model's loss keeps that loss out.
#
# Next: [10 · Myths, tested](10_myths.ipynb), or go deeper below.

# %% [markdown]
# ## Going deeper: eight more patterns (about 16 minutes)
# Each pattern shows the lines that matter, then runs the whole step with
# `patterns.run_pattern(name)` (correct) and `patterns.run_pattern(name, mistake)`. The table
# has one row per parameter: the rule, whether the *guarded* tensor's graph reaches it, its
# `.grad` just after the backward that matters, and whether the step changed it.

# %% [markdown]
# ### Fine-tuning a new head
# A pretrained backbone stays fixed; only the new head learns:
#
# ```python
# backbone.requires_grad_(False)
# optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
# loss = F.cross_entropy(head(backbone(x)), labels)
# ```

# %%
fine_tune = patterns.run_pattern("fine_tune")
assert fine_tune.ok
assert fine_tune.grads_none() == ["backbone.0.weight", "backbone.0.bias"]
assert not any(fine_tune.changed[n] for n in ["backbone.0.weight", "backbone.0.bias"])
fine_tune.table()

# %% [markdown]
# The frozen backbone is not even recorded: it is the first layer and its input does not
# require grad, so the graph starts at the head (one `AddmmBackward0`, the head's).

# %%
assert patterns.count_nodes(fine_tune.loss, kind="AddmmBackward0") == 1
no_freeze = patterns.run_pattern("fine_tune", "no_freeze")
assert patterns.count_nodes(no_freeze.loss, kind="AddmmBackward0") == 2
no_freeze.draw(beside=fine_tune)

# %% [markdown]
# **What breaks without it.** Not frozen and handed to the optimizer, the backbone moves: one
# step on a small batch of new data already changes the pretrained weights.

# %%
print(no_freeze.problems())
assert not no_freeze.ok and no_freeze.error is None
assert no_freeze.changed["backbone.0.weight"] and no_freeze.grads["backbone.0.weight"] == "values"

# %% [markdown]
# Leaving the backbone out of the optimizer, without freezing it, keeps the weights still but
# not the work: `backward()` still computes the backbone's gradients.

# %%
optimizer_only = patterns.run_pattern("fine_tune", "optimizer_only")
assert optimizer_only.grads["backbone.0.weight"] == "values"
assert not optimizer_only.changed["backbone.0.weight"]
optimizer_only.table()

# %% [markdown]
# ### Truncated backpropagation through time
# An RNN reads a long sequence in chunks and updates after each one. The hidden state carries
# on; its history must not:
#
# ```python
# for chunk in chunks:
#     h = h.detach()              # cut at the chunk's edge
#     optimizer.zero_grad()
#     loss = 0
#     for x_t, y_t in chunk:
#         h = cell(x_t, h)
#         loss = loss + F.mse_loss(readout(h), y_t)
#     loss.backward()
#     optimizer.step()
# ```
#
# Here the sequence has 4 steps, in chunks of 2. With the cut, the last chunk's graph spans 2
# RNN steps (count the `TanhBackward0` nodes in the graph below).

# %%
bptt = patterns.run_pattern("truncated_bptt")
assert bptt.ok and bptt.facts["RNN steps in the last chunk's graph"] == 2
bptt.draw()

# %% [markdown]
# **What breaks without it.** Without the cut, the second chunk's graph reaches back into the
# first chunk, whose saved tensors the first `backward()` already freed. The second backward
# fails.

# %%
no_cut = patterns.run_pattern("truncated_bptt", "no_detach")
print(no_cut.error)
assert no_cut.facts["RNN steps in the last chunk's graph"] == 4
assert "Trying to backward through the graph a second time" in no_cut.error.message

# %% [markdown]
# ### An EMA of the weights
# A second copy of the model follows the trained one slowly, `ema = 0.9 * ema + 0.1 * student`
# after each step, and is used for evaluation. The update runs under `no_grad`:
#
# ```python
# ema = copy.deepcopy(student).requires_grad_(False)
# ...
# optimizer.step()
# with torch.no_grad():
#     for e, p in zip(ema.parameters(), student.parameters()):
#         e.mul_(0.9).add_(p, alpha=0.1)
# ```
#
# The guarded tensor here is an evaluation of the EMA model: it must reach nothing.

# %%
ema = patterns.run_pattern("ema")
assert ema.ok and ema.reached == set()
assert ema.grads_none() == ["ema.weight", "ema.bias"]
assert ema.changed["ema.weight"]     # moved by the average, not by an optimizer
ema.table()

# %% [markdown]
# The EMA weights are the weighted average of their old values (the student before the step)
# and the student after the step, up to float rounding.

# %%
start, _, _, _ = patterns.ema_pair()
expected = 0.9 * start.weight + 0.1 * ema.models["student"].weight
assert torch.allclose(ema.models["ema"].weight, expected)

# %% [markdown]
# **What breaks without it.** Outside `no_grad`, a copy whose parameters require grad refuses
# the in-place update (a plain `copy.deepcopy` gives such a copy):

# %%
import copy

unfrozen = patterns.run_pattern("ema", "unfrozen_no_no_grad")
print(unfrozen.error)
assert copy.deepcopy(unfrozen.models["student"]).weight.requires_grad
assert "a leaf Variable that requires grad is being used in an in-place operation" in \
    unfrozen.error.message

# %% [markdown]
# A frozen copy is worse: PyTorch accepts the update silently and records it. The EMA weights
# now have a `grad_fn`, and evaluating the EMA model builds a graph back into the student.
# Each further update makes that chain longer (three more, below).

# %%
silent = patterns.run_pattern("ema", "no_no_grad")
assert silent.error is None and not silent.ok
assert silent.models["ema"].weight.grad_fn is not None
assert silent.reached == {"student.weight", "student.bias"}

longer = patterns.run_pattern("ema", "no_no_grad")   # one more update, outside no_grad
e, p = longer.models["ema"].weight, longer.models["student"].weight
updates_before = patterns.count_nodes(e, kind="MulBackward0")
for more in (1, 2, 3):
    e.mul_(0.9).add_(p, alpha=0.1)
    assert patterns.count_nodes(e, kind="MulBackward0") == updates_before + more
silent.draw(beside=ema)

# %% [markdown]
# ### Knowledge distillation
# A fixed teacher's softened outputs are the student's targets. The teacher runs without a
# graph:
#
# ```python
# teacher.eval()
# with torch.no_grad():
#     teacher_logits = teacher(x)
# loss = distillation_loss(student(x), teacher_logits)   # KL divergence at temperature 2
# ```

# %%
distill = patterns.run_pattern("distillation")
assert distill.ok
assert distill.grads_none() == ["teacher.0.weight", "teacher.0.bias", "teacher.2.weight",
                                "teacher.2.bias"]
distill.table()

# %% [markdown]
# **What breaks without it.** With the teacher's graph, `backward()` also runs through the
# teacher and computes gradients for all four teacher parameters, all for nothing, since the
# optimizer holds only the student.

# %%
with_graph = patterns.run_pattern("distillation", "teacher_graph")
assert with_graph.reached >= {"teacher.0.weight", "teacher.2.weight"}
assert all(with_graph.grads[n] == "values" for n in with_graph.params)
assert not with_graph.changed["teacher.0.weight"]
with_graph.draw(beside=distill)

# %% [markdown]
# And nothing clears them: the student's `optimizer.zero_grad()` only touches the student, so
# the teacher's `.grad` keeps adding up step after step.

# %%
with_graph.optimizers["optimizer"].zero_grad()
teacher, student = with_graph.models["teacher"], with_graph.models["student"]
assert teacher[0].weight.grad is not None and student.weight.grad is None

left = teacher[0].weight.grad.clone()                # a second step, teacher still recorded
_, _, x = patterns.distill_parts()
loss = patterns.distillation_loss(student(x), teacher(x))
this_step = torch.autograd.grad(loss, teacher[0].weight, retain_graph=True)[0]
loss.backward()
assert torch.allclose(teacher[0].weight.grad, left + this_step)

# %% [markdown]
# ### The GAN's generator step
# The generator's step, on the other hand, does reach the discriminator: `g_loss` is computed
# through it. That is why the discriminator's step starts with its own `d_opt.zero_grad()`.

# %%
generator, discriminator, noise, real = patterns.gan_parts()
g_loss = torch.nn.functional.binary_cross_entropy_with_logits(
    discriminator(generator(noise)), torch.ones(8, 1))
print(sorted(patterns.reached_by(g_loss, {"generator.weight": generator.weight,
                                          "discriminator.weight": discriminator.weight})))
assert patterns.reached_by(g_loss, {"d": discriminator.weight}) == {"d"}

# %% [markdown]
# ### A DDPG update
# DDPG learns from a replay buffer. The critic learns Q(state, action) for the *buffer's*
# actions, towards a target that slow copies of both networks (the target networks) compute
# under `no_grad`. Then the actor learns actions the critic rates highly, through the critic:
#
# ```python
# with torch.no_grad():
#     next_actions = torch.tanh(actor_target(next_states))
#     target = rewards + gamma * critic_target(torch.cat([next_states, next_actions], 1))
# critic_opt.zero_grad()
# critic_loss = F.mse_loss(critic(torch.cat([states, actions], 1)), target)
# critic_loss.backward()
# critic_opt.step()
# actor_opt.zero_grad()
# actor_loss = -critic(torch.cat([states, torch.tanh(actor(states))], 1)).mean()
# actor_loss.backward()            # fills the actor's AND the critic's .grad
# actor_opt.step()
# # then move both target networks a little towards the trained ones, under no_grad
# ```
#
# The step runs two such updates. The critic's loss reaches the critic only: the buffer's
# actions and the target carry no history. (The actor's `.grad` in the table is left from its
# own backward in the first update; `actor_opt.zero_grad()` clears it before the next one.)

# %%
ddpg = patterns.run_pattern("ddpg")
print(ddpg.facts)
assert ddpg.ok and ddpg.reached == {"critic.weight", "critic.bias"}
assert ddpg.facts["critic grad after the actor's step"] == "values"
assert ddpg.grads["actor.weight"] == "values" and "actor.weight" not in ddpg.reached
ddpg.table()

# %% [markdown]
# **What breaks when each optimizer clears its grads after its step.** The actor's backward
# goes through the critic and fills the critic's `.grad`, which `actor_opt` does not clear.
# Code that calls `zero_grad()` right after each `step()` (a common style) leaves those grads
# in place, and the critic's next backward adds to them. No error: the critic's second update
# follows the gradient of its own loss *plus* the one the actor's backward left behind.

# %%
stale = patterns.run_pattern("ddpg", "zero_after_step")
print(stale.problems())
assert stale.error is None and not stale.ok
assert stale.facts["critic grad before its backward"] == "values"
assert not torch.allclose(stale.models["critic"].weight, ddpg.models["critic"].weight)

# %% [markdown]
# Fix: clear each optimizer just before its own backward, as above. Or freeze the critic
# during the actor's step: the actor's gradient still flows through the critic, but the
# critic's `.grad` is never filled.

# %%
actor, critic, _, _, batches = patterns.ddpg_parts()
states = batches[0][0]
critic.requires_grad_(False)
(-critic(torch.cat([states, torch.tanh(actor(states))], 1)).mean()).backward()
critic.requires_grad_(True)
assert actor.weight.grad is not None and critic.weight.grad is None

# %% [markdown]
# **What breaks without the `no_grad` around the target.** With target networks that require
# grad (a plain `copy.deepcopy`), the critic's loss reaches both of them. The updates do not
# change (the targets are separate copies, so the critic's own gradient is the same), but each
# critic backward also runs through the target networks and fills their `.grad`, which no
# optimizer here ever clears.

# %%
target_graph = patterns.run_pattern("ddpg", "target_graph")
print(sorted(target_graph.reached - ddpg.reached))
assert target_graph.error is None and not target_graph.ok
assert target_graph.reached - ddpg.reached == {
    "actor_target.weight", "actor_target.bias", "critic_target.weight", "critic_target.bias"}
for name in ("actor", "critic"):
    for p, q in zip(target_graph.models[name].parameters(), ddpg.models[name].parameters()):
        assert torch.allclose(p, q)
for name in ("actor_target", "critic_target"):        # still there after the whole step
    assert all(p.grad is not None for p in target_graph.models[name].parameters())
target_graph.draw(beside=ddpg)

# %% [markdown]
# ### A shared trunk with a probe head
# A main head trains the trunk. A second head, a *probe*, reads the trunk's features to
# monitor them (or for an auxiliary output) and must not shape them:
#
# ```python
# features = trunk(x)
# main_loss = F.mse_loss(main_head(features), y)
# probe_loss = F.cross_entropy(probe(features.detach()), labels)
# (main_loss + probe_loss).backward()
# ```

# %%
trunk = patterns.run_pattern("shared_trunk")
assert trunk.ok and trunk.reached == {"probe.weight", "probe.bias"}
assert trunk.grads_none() == []      # every module trains: the trunk through the main loss
assert trunk.checks["the trunk's gradient is the main loss's alone"]
trunk.table()

# %% [markdown]
# **What breaks without it.** No error: the probe's loss reaches the trunk and adds its
# gradient, so the trunk is trained for the probe's task too. The table looks the same
# (every grad has values); only the graph, and the numbers, tell.

# %%
trunk_broken = patterns.run_pattern("shared_trunk", "no_detach")
assert trunk_broken.error is None and not trunk_broken.ok
assert trunk_broken.grads == trunk.grads
assert not torch.allclose(trunk_broken.models["trunk"][0].weight.grad,
                          trunk.models["trunk"][0].weight.grad)
trunk_broken.draw(beside=trunk)

# %% [markdown]
# ### A skip connection with the side branch stopped
# A side branch adds features to the residual stream but must stay fixed, and the stem must
# learn through the skip path only:
#
# ```python
# h = torch.relu(stem(x))
# out = head(h + branch(h).detach())
# ```
#
# **Predict:** someone freezes the branch instead, `branch.requires_grad_(False)`, and writes
# `out = head(h + branch(h))`. Which modules does the branch's output `branch(h)` reach?

# %%
patterns.predict("stopped_branch", mistake="freeze")

# %% [markdown]
# The correct step first:

# %%
skip = patterns.run_pattern("stopped_branch")
assert skip.ok and skip.reached == set()
assert skip.grads_none() == ["branch.weight", "branch.bias"]
skip.table()

# %% [markdown]
# **What breaks without it.** Without `.detach()` the branch trains. With
# `branch.requires_grad_(False)` instead, the grad column is the same as in the correct step:
# the branch gets no gradient. But the branch is still recorded, because its input `h` requires
# grad, and the stem receives gradient through it as well.

# %%
frozen = patterns.run_pattern("stopped_branch", "freeze")
assert frozen.grads == skip.grads
assert frozen.reached == {"stem.weight", "stem.bias"}
assert not torch.allclose(frozen.models["stem"].weight.grad, skip.models["stem"].weight.grad)
assert patterns.run_pattern("stopped_branch", "no_detach").grads["branch.weight"] == "values"
frozen.draw(beside=skip)

# %% [markdown]
# ### An on-policy actor-critic
# Some actor-critic methods train the critic on the action the actor has just produced, not on
# a replay buffer's. Here the critic learns Q(state, action) of that live action, after the
# actor's step:
#
# ```python
# action = torch.tanh(actor(states))
# actor_opt.zero_grad()
# actor_loss = -critic(torch.cat([states, action], 1)).mean()
# actor_loss.backward()            # fills the actor's AND the critic's .grad
# actor_opt.step()
# critic_opt.zero_grad()           # clear what the actor's backward left on the critic
# critic_loss = F.mse_loss(critic(torch.cat([states, action.detach()], 1)), returns)
# critic_loss.backward()
# critic_opt.step()
# ```

# %%
on_policy = patterns.run_pattern("actor_critic")
assert on_policy.ok and on_policy.reached == {"critic.weight", "critic.bias"}
assert on_policy.facts["critic grad before its backward"] == "None"
on_policy.table()

# %% [markdown]
# **What breaks without the `.detach()`.** The live action carries the actor's history, so the
# critic's loss reaches the actor: through an `action` whose graph the actor's backward already
# freed, so this backward fails. (In DDPG the critic's loss uses the buffer's actions, which
# have no history: this leak cannot happen there.)

# %%
live_leak = patterns.run_pattern("actor_critic", "no_detach")
print(live_leak.error)
assert live_leak.reached == {"actor.weight", "actor.bias", "critic.weight", "critic.bias"}
assert "Trying to backward through the graph a second time" in live_leak.error.message
assert "actor.weight" not in ddpg.reached
live_leak.draw(beside=on_policy)

# %% [markdown]
# ## Going deeper: all patterns at once (about 2 minutes)
# Every pattern and variant, readable without a kernel: which modules the guarded tensor
# reaches, and whether the step follows its rule.

# %%
table = patterns.summary_table()
assert table.column("verdict").count("ok") == len(patterns.PATTERNS)
table

# %% [markdown]
# **Three tools, three different cuts.** `torch.no_grad()` records nothing (the teacher, the
# EMA update, DDPG's target). `.detach()` cuts one tensor's history and leaves the rest of the
# graph alone (truncated BPTT, the GAN, the probe, the stopped branch, the on-policy
# actor-critic). `requires_grad_(False)` stops a parameter's own gradient but not the gradient
# flowing through its layer (the frozen branch).

# %%
distill = patterns.run_pattern("distillation")
assert distill.models["teacher"][0].weight.grad is None      # no_grad: teacher not recorded
assert ddpg.models["critic_target"].weight.grad is None     # no_grad: target not recorded
assert skip.reached == set() and frozen.reached != set()    # detach cuts, freezing does not
print("no_grad: nothing recorded; detach: one tensor cut; freezing: flow goes through")

# %% [markdown]
# **A mistake is not always an error.** Five of the mistakes raise; the others run and train
# the wrong thing (or waste work).

# %%
silent_mistakes = [row[:2] for row in table.rows if row[3] == "BROKEN" and
                   not row[4].startswith("error")]
for row in silent_mistakes:
    print(*row, sep=": ")
assert sum(row[4].startswith("error") for row in table.rows) == 5

# %% [markdown]
# ## Going deeper: pitfalls (about 3 minutes)
# Two traps that look like fixes.

# %% [markdown]
# ### `retain_graph=True` does not fix a missing `detach()`
# In truncated BPTT, PyTorch's message suggests `retain_graph=True`. That only trades one
# error for another: the optimizer has changed the weights in place since the first chunk
# saved them, and the graph still spans the whole sequence so far.

# %%
retained = patterns.run_pattern("truncated_bptt", "retain_graph")
print(retained.error.kind + ":", retained.error.message.split(". Hint")[0])
assert "modified by an inplace operation" in retained.error.message
assert retained.facts["RNN steps in the last chunk's graph"] == 4

# %% [markdown]
# In a GAN it silences the error of the core's GAN step, and `d_loss` still reaches the
# generator and fills its `.grad`. What that costs depends on where the generator's grads are
# cleared. In a loop that clears both optimizers once, at the top of the iteration, the
# generator steps on its own gradient *plus* that one: a wrong update, without any error.

# %%
generator, discriminator, noise, real = patterns.gan_parts()
d_opt = torch.optim.SGD(discriminator.parameters(), lr=0.1)
g_opt = torch.optim.SGD(generator.parameters(), lr=0.1)
bce = torch.nn.functional.binary_cross_entropy_with_logits
ones, zeros = torch.ones(8, 1), torch.zeros(8, 1)

d_opt.zero_grad()                    # both cleared once, at the top of the iteration
g_opt.zero_grad()
fake = generator(noise)
d_loss = bce(discriminator(real), ones) + bce(discriminator(fake), zeros)   # no detach()
d_loss.backward(retain_graph=True)   # no error any more ...
d_opt.step()
leaked = generator.weight.grad.clone()   # ... but d_loss filled the generator's .grad
g_loss = bce(discriminator(fake), ones)
own = torch.autograd.grad(g_loss, generator.weight, retain_graph=True)[0]
g_loss.backward()
print("generator's own gradient:   ", own.flatten()[:3])
print("what its step would use now:", generator.weight.grad.flatten()[:3])
assert torch.allclose(generator.weight.grad, own + leaked)
assert not torch.allclose(generator.weight.grad, own)

# %% [markdown]
# With the core's order, `g_opt.zero_grad()` just before the generator's backward, the leaked
# gradient is cleared in time: the generator's update is right, and `d_loss`'s backward through
# the generator was wasted work.

# %%
generator, discriminator, noise, real = patterns.gan_parts()
d_opt = torch.optim.SGD(discriminator.parameters(), lr=0.1)
g_opt = torch.optim.SGD(generator.parameters(), lr=0.1)

fake = generator(noise)
d_opt.zero_grad()
d_loss = bce(discriminator(real), ones) + bce(discriminator(fake), zeros)   # no detach()
d_loss.backward(retain_graph=True)
assert generator.weight.grad is not None     # computed for nothing ...
d_opt.step()
g_opt.zero_grad()                            # ... and cleared here
g_loss = bce(discriminator(fake), ones)
own = torch.autograd.grad(g_loss, generator.weight, retain_graph=True)[0]
g_loss.backward()
assert torch.allclose(generator.weight.grad, own)

# %% [markdown]
# **Fix:** `detach()` where the history should stop: `h = h.detach()` at the start of each
# chunk (truncated BPTT), `fake.detach()` for the discriminator (the GAN). Keep
# `retain_graph=True` for the rare code that means to run backward twice through one graph.

# %% [markdown]
# ### A table of grads cannot see a leak into a trained module
# In the shared trunk and the frozen branch, the correct and the broken step give the same
# `None`/`values` table. Check the graph of the loss that must not leak, as
# `patterns.reached_by` does, or compare the gradient with the one you intend.

# %%
assert trunk_broken.grads == trunk.grads and trunk_broken.reached != trunk.reached
assert frozen.grads == skip.grads and frozen.reached != skip.reached

# %% [markdown]
# ## Going deeper: where it is used (about 2 minutes)
# - **Fine-tuning**: the transfer-learning tutorial's "fixed feature extractor" sets
#   `requires_grad = False` on the pretrained network and optimises only the new layer.
# - **Truncated BPTT**: the word-language-model example in pytorch/examples repackages (detaches)
#   the hidden state before every batch.
# - **EMA**: `torch.optim.swa_utils.AveragedModel` keeps averaged weights of a model; its
#   EMA update (`get_ema_multi_avg_fn`) runs under `no_grad`: its parameters require grad, yet
#   get no history, and it gives the same weights as the EMA above.
# - **Distillation**: the PyTorch knowledge-distillation tutorial runs the teacher under
#   `torch.no_grad()`.
# - **GAN**: the DCGAN tutorial trains the discriminator on `fake.detach()`.
# - **DDPG and TD3**: the critic regresses on replay-buffer actions towards a target computed
#   under `torch.no_grad()`, and the actor learns through the critic; Spinning Up's DDPG also
#   freezes the critic during the actor's step.
# - **Probes and stopped branches**: linear probes that monitor self-supervised features, and
#   stop-gradient in models such as SimSiam and BYOL.

# %%
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

student, _, x, y = patterns.ema_pair()
optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
averaged = AveragedModel(student, multi_avg_fn=get_ema_multi_avg_fn(0.9))
averaged.update_parameters(student)  # the first call copies the weights
torch.nn.functional.mse_loss(student(x), y).backward()
optimizer.step()
averaged.update_parameters(student)  # later calls average, under no_grad
assert all(p.requires_grad and p.grad_fn is None for p in averaged.parameters())
assert torch.allclose(averaged.module.weight, ema.models["ema"].weight)

# %% [markdown]
# ## Going deeper: exercises (about 15 minutes)
# **09.1** EMA. Take `student, ema, x, y = patterns.ema_pair()`. Train the student one step
# (`torch.optim.SGD(student.parameters(), lr=0.1)`, loss `F.mse_loss(student(x), y)`), then
# update the EMA with decay 0.9. Answer with `ema.weight`.

# %%
answer = ...  # e.g. ema.weight
helpers.check("09.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# import torch.nn.functional as F
#
# student, ema, x, y = patterns.ema_pair()
# optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
# optimizer.zero_grad()
# F.mse_loss(student(x), y).backward()
# optimizer.step()
# with torch.no_grad():
#     for e, p in zip(ema.parameters(), student.parameters()):
#         e.mul_(0.9).add_(p, alpha=0.1)
# answer = ema.weight
# ```
# </details>
#
# **09.2** A probe on a shared trunk. Take
# `trunk, main_head, probe, x, y, labels = patterns.trunk_parts()`. Write the summed loss
# `F.mse_loss(main_head(features), y) + F.cross_entropy(probe(...), labels)` so that the probe
# does not train the trunk, call `backward()`, and answer with `trunk[0].weight.grad`.

# %%
answer = ...  # e.g. trunk[0].weight.grad
helpers.check("09.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# features = trunk(x)
# loss = (F.mse_loss(main_head(features), y)
#         + F.cross_entropy(probe(features.detach()), labels))
# loss.backward()
# answer = trunk[0].weight.grad
# ```
# </details>
#
# **09.3** Truncated BPTT. Take `cell, readout, sequence, targets = patterns.rnn_parts()` (4
# time steps, batch 5). Start from `h = torch.zeros(5, 3)` and train in chunks of 2 steps with
# `torch.optim.SGD` over the cell's and the readout's parameters, `lr=0.1`, summing
# `F.mse_loss(readout(h), targets[t])` over each chunk. Answer with `readout.bias` at the end.

# %%
answer = ...  # e.g. readout.bias
helpers.check("09.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# params = list(cell.parameters()) + list(readout.parameters())
# optimizer = torch.optim.SGD(params, lr=0.1)
# h = torch.zeros(5, 3)
# for start in (0, 2):
#     h = h.detach()
#     optimizer.zero_grad()
#     loss = 0
#     for t in (start, start + 1):
#         h = cell(sequence[t], h)
#         loss = loss + F.mse_loss(readout(h), targets[t])
#     loss.backward()
#     optimizer.step()
# answer = readout.bias
# ```
# </details>
#
# **09.4** Fine-tuning without freezing: take `backbone, head, x, labels =
# patterns.transfer_parts()`, one `torch.optim.SGD` over the backbone's and the head's
# parameters, and feed the head the backbone's output detached:
# `F.cross_entropy(head(backbone(x).detach()), labels)`. After `backward()`, which parameters
# have a `.grad` that is not `None`? Answer with a set of names from `backbone.0.weight`,
# `backbone.0.bias`, `head.weight`, `head.bias`.

# %%
answer = ...  # e.g. {"head.weight"}
helpers.check("09.4", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"head.weight", "head.bias"}`. Backward stops at the cut, so it never reaches the backbone,
# although the backbone requires grad and the optimizer holds it: the optimizer decides what
# moves, not what gets a gradient. `backbone.requires_grad_(False)` or running the backbone
# under `torch.no_grad()` give the same grads, and also skip recording the backbone's forward.
# </details>
#
# **09.5** Why is `encoder.weight.grad` `None` after this BYOL-style step? The target comes
# from a frozen copy of the encoder; the online branch should train the encoder and the
# predictor (`F` is `torch.nn.functional`).
#
# ```python
# encoder, predictor, target_encoder, view1, view2 = patterns.stop_gradient_parts()
# optimizer = torch.optim.SGD(predictor.parameters(), lr=0.1)
# with torch.no_grad():
#     target = target_encoder(view2)
# online = predictor(encoder(view1).detach())
# optimizer.zero_grad()
# (-F.cosine_similarity(online, target).mean()).backward()
# ```
#
# - (a) the `.detach()` on the online branch
# - (b) the `torch.no_grad()` block around the target branch
# - (c) the optimizer holds only the predictor's parameters
#
# Answer with one letter. Run the code with one suspect removed at a time to find out.

# %%
answer = ...  # "a", "b" or "c"
helpers.check("09.5", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# (a). The `.detach()` cuts the only path from the loss to the encoder. The `no_grad()` block
# runs the target encoder, a separate copy, and the optimizer decides what moves, not what
# gets a gradient: removing either leaves `encoder.weight.grad` at `None`. Remove the
# `.detach()`: the `no_grad()` block already stops the gradient on the target branch. For the
# encoder to move, not only to get a gradient, the optimizer must hold its parameters too.
# </details>

# %% [markdown]
# ## Further reading
# - [Autograd mechanics: locally disabling gradient computation](https://pytorch.org/docs/stable/notes/autograd.html)
# - [Transfer learning for computer vision](https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html)
# - [Knowledge distillation tutorial](https://pytorch.org/tutorials/beginner/knowledge_distillation_tutorial.html)
# - [DCGAN tutorial](https://pytorch.org/tutorials/beginner/dcgan_faces_tutorial.html)
# - [`torch.optim.swa_utils` (AveragedModel)](https://pytorch.org/docs/stable/optim.html#weight-averaging-swa-and-ema)
# - [`torch.Tensor.detach`](https://pytorch.org/docs/stable/generated/torch.Tensor.detach.html)
#
# [Next: 10 · Myths, tested](10_myths.ipynb)
