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
# # 12 · Gradient control at scale
#
# Micro-batches, several processes, mixed precision, recomputed activations and compiled models
# each change how the gradient is computed: each has a rule to follow, and a classic way to
# get it wrong.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/12_at_scale.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/12_at_scale.ipynb)

# %% [markdown]
# **What you will learn**
# - how to accumulate micro-batches of unequal size so the gradient is the big batch's, and
#   why BatchNorm breaks that;
# - what `DistributedDataParallel` does to `.grad`, on two real processes: averaging,
#   `no_sync()`, frozen and unused parameters;
# - mixed precision with `GradScaler`: unscale before you clip;
# - why a checkpointed block can get no gradient, and what `torch.compile` recompiles when the
#   grad mode changes.
#
# **Prerequisites**: [01 · zero_grad](01_zero_grad.ipynb) (`backward()` adds into `.grad`) and
# [07 · Manual gradient edits](07_manual_grad_edits.ipynb) (clipping).
# [11 · Why is my gradient None?](11_debugging.ipynb) helps.
#
# **Time**: 10 minutes for the core, about 50 more for the "Going deeper" sections.

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
# The same `L1 -> ReLU -> L2` network, batch of 8 examples and mean-squared-error loss as in
# every notebook. The plain step's graph:

# %%
x, y = helpers.toy_batch()
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# To save memory, the forward pass recomputes `L1 -> ReLU` in backward instead of keeping its
# activations (activation checkpointing, the older reentrant variant):
#
# ```python
# hidden = checkpoint(lambda t: torch.relu(net.l1(t)), x, use_reentrant=True)
# out = net.l2(hidden)
# ```
#
# The input `x` is plain data. After `backward()`, which of `l1.weight`, `l1.bias`,
# `l2.weight`, `l2.bias` have `.grad` equal to `None`? Decide, then tick and check.

# %%
helpers.predict("checkpoint", use_reentrant=True, input_grad="no")

# %% [markdown]
# ## The mechanism in code
# A training step as large models run it: micro-batches of unequal size, bfloat16 autocast, a
# gradient scaler, a checkpointed block and clipping. Each comment names the rule.

# %%
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
scaler = torch.amp.GradScaler("cpu")


def block(t):
    return torch.relu(net.l1(t))


optimizer.zero_grad()
for xb, yb in zip(x.split([6, 2]), y.split([6, 2])):         # micro-batches of 6 and 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net.l2(checkpoint(block, xb, use_reentrant=False))  # not the reentrant one
    loss = F.mse_loss(out.float(), yb, reduction="sum") / len(x)  # sum, then / all 8
    scaler.scale(loss).backward()                             # grads arrive scaled
scaler.unscale_(optimizer)                                    # true grads before clipping
torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=5.0)
accumulated = {name: p.grad.clone() for name, p in net.named_parameters()}
scaler.step(optimizer)                                        # skips the step on inf/NaN
scaler.update()
print("gradients for:", ", ".join(accumulated))

# %% [markdown]
# Every parameter got its gradient, and it is the big batch's in full precision to within
# bfloat16's rounding (under 2 %):

# %%
big = helpers.toy_net()
helpers.toy_loss(big(x), y).backward()
for name, p in big.named_parameters():
    gap = ((accumulated[name] - p.grad).norm() / p.grad.norm()).item()
    print(f"{name}: {gap:.1%} from the big batch's gradient")
    assert gap < 0.02

# %% [markdown]
# ## Explorer
# Accumulation is where most silent errors hide. Choose the micro-batch sizes, how each
# micro-batch's loss is scaled, and whether the hidden layer is batch-normalised. The extra
# column is each gradient's distance from the big batch's (`0`: equal up to rounding).

# %%
helpers.explore("accumulation")

# %% [markdown]
# ## Truth table
# Every combination; "largest distance" is the worst of the four parameters.

# %%
helpers.accumulation_table()

# %% [markdown]
# ## What happened and why
# **Each example must weigh `1/N` in the sum `.grad` collects.** A micro-batch mean weighs its
# examples `1/n_i`, so `mean / k` is right only when every `n_i` is `N/k`; `mean × n_i / N` and
# `sum / N` are right in every split of the table. BatchNorm mixes the examples of the batch it
# sees, so none of these scalings undoes per-micro-batch statistics.

# %%
from helpers import accumulation_distances, format_distance

for split, reduction, norm in [("6+2", "mean/k", "none"), ("6+2", "weighted", "none"),
                               ("6+2", "sum/N", "none"), ("4+4", "mean/k", "none"),
                               ("4+4", "sum/N", "batchnorm")]:
    worst = max(accumulation_distances(split, reduction, norm).values())
    print(f"{split:4} {reduction:9} {norm:10} largest distance {format_distance(worst)}")
assert max(accumulation_distances("6+2", "mean/k", "none").values()) > 0.1
assert max(accumulation_distances("6+2", "weighted", "none").values()) < 1e-5
assert max(accumulation_distances("6+2", "sum/N", "none").values()) < 1e-5
assert max(accumulation_distances("4+4", "mean/k", "none").values()) < 1e-5
assert max(accumulation_distances("4+4", "sum/N", "batchnorm").values()) > 0.1

# %% [markdown]
# And the answer to the prediction: with the reentrant checkpoint, L1 gets nothing.

# %%
reentrant = helpers.run("checkpoint", use_reentrant=True, input_grad="no")
assert reentrant.grads_none() == ["l1.weight", "l1.bias"] and reentrant.error is None
assert helpers.run("checkpoint", use_reentrant=False, input_grad="no").grads_none() == []
helpers.grad_table(reentrant)

# %% [markdown]
# ## Recap
# - Accumulate so that every example weighs `1/N`: `sum / N` or `mean × n_i / N`; `mean / k`
#   only for equal micro-batches; BatchNorm breaks the equality.
# - A reentrant checkpoint whose inputs do not require grad leaves its block without
#   gradients; `use_reentrant=False` does not.
# - DDP, mixed precision, checkpointing and `torch.compile` in depth: under "Going deeper".

# %% [markdown]
# ## Going deeper: accumulation per token and per sequence (8 minutes)
# Language models average a loss over tokens, and sequences differ in length. Read the toy
# batch's 8 rows as the tokens of three sequences of lengths 5, 1 and 2, and accumulate one
# micro-batch of 5 tokens and one of 3. Averaging per token over the whole batch (the toy loss)
# and averaging each sequence first are different objectives; each needs its own denominator:
# all tokens, or all sequences, of the *whole* batch.

# %%
lengths = [5, 1, 2]
micro = [[0], [1, 2]]                     # sequence indices in each micro-batch
xs, ys = x.split(lengths), y.split(lengths)


def accumulated_grads(micro_loss):
    net = helpers.toy_net()
    for seqs in micro:
        micro_loss(net, seqs).backward()
    return [p.grad for p in net.parameters()]


def per_token_wrong(net, seqs):           # each micro-batch's token mean / k
    xb, yb = torch.cat([xs[s] for s in seqs]), torch.cat([ys[s] for s in seqs])
    return F.mse_loss(net(xb), yb) / len(micro)


def per_token_right(net, seqs):           # token sum / all 8 tokens
    xb, yb = torch.cat([xs[s] for s in seqs]), torch.cat([ys[s] for s in seqs])
    return F.mse_loss(net(xb), yb, reduction="sum") / len(x)


def per_sequence_right(net, seqs):        # sum of sequence means / all 3 sequences
    return sum(F.mse_loss(net(xs[s]), ys[s]) for s in seqs) / len(lengths)


def big_grads(loss_of):
    net = helpers.toy_net()
    loss_of(net).backward()
    return [p.grad for p in net.parameters()]


per_token = big_grads(lambda net: helpers.toy_loss(net(x), y))
per_sequence = big_grads(lambda net: sum(F.mse_loss(net(a), b) for a, b in zip(xs, ys)) / 3)
close = lambda a, b: all(torch.allclose(g, h, atol=1e-7) for g, h in zip(a, b))
print("token mean / k       == per-token big batch:", close(accumulated_grads(per_token_wrong),
                                                        per_token))
print("token sum / 8        == per-token big batch:", close(accumulated_grads(per_token_right),
                                                        per_token))
print("sequence means / 3   == per-sequence big batch:",
      close(accumulated_grads(per_sequence_right), per_sequence))
print("per-token objective  == per-sequence objective:", close(per_token, per_sequence))
assert not close(accumulated_grads(per_token_wrong), per_token)
assert close(accumulated_grads(per_token_right), per_token)
assert close(accumulated_grads(per_sequence_right), per_sequence)
assert not close(per_token, per_sequence)

# %% [markdown]
# With padding and a mask, the same rule reads: sum the masked token losses and divide by the
# number of real tokens in the whole batch (count them before the first micro-batch).
#
# **BatchNorm, and a norm that does not break it.** LayerNorm normalises each example on its
# own, so accumulation stays equal to the big batch (up to rounding); BatchNorm does not.

# %%
def grads_with(norm_fn, sizes):
    net = helpers.toy_net()
    for xb, yb in zip(x.split(sizes), y.split(sizes)):
        out = net.l2(norm_fn(torch.relu(net.l1(xb))))
        (F.mse_loss(out, yb, reduction="sum") / len(x)).backward()
    return [p.grad for p in net.parameters()]


layer_norm = lambda h: F.layer_norm(h, h.shape[1:])
batch_norm = lambda h: F.batch_norm(h, None, None, training=True)
print("LayerNorm, 4+4 == big batch:", close(grads_with(layer_norm, [4, 4]),
                                           grads_with(layer_norm, [8])))
print("BatchNorm, 4+4 == big batch:", close(grads_with(batch_norm, [4, 4]),
                                           grads_with(batch_norm, [8])))
assert close(grads_with(layer_norm, [4, 4]), grads_with(layer_norm, [8]))
assert not close(grads_with(batch_norm, [4, 4]), grads_with(batch_norm, [8]))

# %% [markdown]
# ## Going deeper: DistributedDataParallel on two real processes (12 minutes)
# `DistributedDataParallel` (DDP) runs one copy of the model per process, each on its own part
# of the batch, and during `backward()` it all-reduces the gradients so every copy ends with
# their mean. The next cell starts two processes on this machine with `torch.multiprocessing`
# and joins them into a process group: the `gloo` backend, 127.0.0.1 and a free port, a timeout
# on the rendezvous and on the whole run. On Linux the processes are forked: each starts as a
# copy of this kernel, with PyTorch already imported. Elsewhere they are spawned: each is a
# fresh interpreter that imports PyTorch first, which takes seconds. Each
# process runs the scenarios named below and sends its results back; the processes are stopped
# and joined whatever happens. (A PyTorch without `gloo` skips the run, says so here, and the
# DDP cells below show nothing; under `CI=true` that is an error instead.)

# %%
from helpers import distributed

ddp = distributed.run(["average_gradients", "accumulate_without_no_sync",
                       "accumulate_with_no_sync", "frozen_layer", "unused_default",
                       "unused_find", "unused_static", "diagnose_step"])
ddp

# %% [markdown]
# Each scenario is a plain function in `helpers/distributed.py`, run in every process with
# its `rank` (0 or 1). Here is the first: each rank takes its half of the batch.

# %%
import inspect

print(inspect.getsource(distributed.average_gradients))

# %% [markdown]
# **After `backward()`, every rank holds the mean of the ranks' gradients, which here (equal
# halves, a mean loss) is the single-process gradient of the whole batch.** Each rank's own
# gradient (without DDP) differs; DDP's is the same on both ranks and equals the big batch's.

# %%
for rank, result in enumerate(ddp["average_gradients"]):
    print(f"rank {rank}: l2.bias grad on its own half {result['alone']['l2.bias'].item():+.4f}, "
          f"after DDP's backward {result['ddp']['l2.bias'].item():+.4f}")
print(f"one process, all 8 examples: {big.l2.bias.grad.item():+.4f}")
for result in ddp["average_gradients"]:
    assert not torch.allclose(result["alone"]["l2.bias"], big.l2.bias.grad)
    for name in result["alone"]:  # the mean of the two ranks' own gradients
        mean = sum(r["alone"][name] for r in ddp["average_gradients"]) / 2
        assert torch.allclose(result["ddp"][name], mean, atol=1e-7)
    for name, p in big.named_parameters():
        assert torch.allclose(result["ddp"][name], p.grad, atol=1e-7)

# %% [markdown]
# **`no_sync()` skips the all-reduce.** Accumulating 4 micro-batches per rank, DDP normally
# all-reduces in every `backward()`. Inside `with model.no_sync():` it only adds into
# `.grad`; the first backward outside the block all-reduces the sum. A communication hook
# (`model.register_comm_hook`) counts the all-reduces, then does DDP's usual one:

# %%
print(inspect.getsource(distributed.counting_allreduce))
print(inspect.getsource(distributed.accumulate))

# %%
k = distributed.MICRO_BATCHES
for name in ["accumulate_without_no_sync", "accumulate_with_no_sync"]:
    print(name, [result["all_reduces"] for result in ddp[name]], "all-reduces per rank")
for without, with_ in zip(ddp["accumulate_without_no_sync"], ddp["accumulate_with_no_sync"]):
    assert without["all_reduces"] == k and with_["all_reduces"] == 1
    assert without["all_reduces"] - with_["all_reduces"] == k - 1
    for name, p in big.named_parameters():  # the same gradient either way
        assert torch.allclose(without["ddp"][name], p.grad, atol=1e-7)
        assert torch.allclose(with_["ddp"][name], p.grad, atol=1e-7)

# %% [markdown]
# (The toy net's gradients fit in one of DDP's buckets, so one all-reduce per synchronised
# backward.)
#
# **Frozen parameters take no part.** DDP registers only parameters that require grad: with
# `l1` frozen, the one bucket it all-reduces holds `l2`'s 3 + 1 numbers, and `l1`'s grads stay
# `None` on every rank.

# %%
frozen = helpers.toy_net()
frozen.l1.requires_grad_(False)
helpers.toy_loss(frozen(x), y).backward()
trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
for rank, result in enumerate(ddp["frozen_layer"]):
    print(f"rank {rank}: bucket sizes {result['bucket_elements']}, "
          f"grads None: {[n for n, g in result['ddp'].items() if g is None]}")
    assert result["bucket_elements"] == [trainable] == [4]
    assert result["ddp"]["l1.weight"] is None and result["ddp"]["l1.bias"] is None
    for name in ["l2.weight", "l2.bias"]:
        assert torch.allclose(result["ddp"][name], dict(frozen.named_parameters())[name].grad,
                              atol=1e-7)

# %% [markdown]
# **A parameter that forward never uses breaks plain DDP.** `ToyWithSpareHead` is the toy net
# plus a layer `spare` that `forward` ignores. DDP waits for a gradient for every parameter
# before it all-reduces a bucket; `spare`'s never comes. The first iteration raises nothing,
# but its bucket is never all-reduced: each rank keeps its own gradient, silently. The second
# forward then raises:

# %%
for rank, result in enumerate(ddp["unused_default"]):
    print(f"rank {rank}: iteration {result['failed_at']} raised")
for result in ddp["unused_default"][:1]:
    print("RuntimeError:", ". ".join(result["error"].split(". ")[:2]) + ". ...")
for result, alone in zip(ddp["unused_default"], ddp["average_gradients"]):
    assert result["failed_at"] == 2 and result["failed_in"] == "forward"
    assert result["error"].startswith("Expected to have finished reduction in the prior "
                                      "iteration before starting a new one")
    first = result["grads"][0]                 # iteration 1: this rank's own gradient
    for name, own in alone["alone"].items():
        assert torch.allclose(first["net." + name], own, atol=1e-7)
    assert not torch.allclose(first["net.l2.bias"], big.l2.bias.grad)

# %% [markdown]
# **Two fixes.** `find_unused_parameters=True` makes DDP, at the end of every forward that
# will synchronise, traverse the autograd graph from the forward's outputs and mark every
# parameter it cannot reach as ready (the docstring and `_post_forward` in
# `torch/nn/parallel/distributed.py`): one extra graph traversal per iteration.
# `static_graph=True` promises that the set of used parameters never changes; DDP learns the
# set in the first iteration instead of searching the graph in every one. Both train the used
# parameters with the big batch's gradient and leave `spare` at `None`.

# %%
for name in ["unused_find", "unused_static"]:
    for rank, result in enumerate(ddp[name]):
        print(f"{name}, rank {rank}: failed at {result['failed_at']}, spare.weight grad "
              f"{result['grads'][1]['spare.weight']}")
        assert result["failed_at"] is None and len(result["grads"]) == 2
        for grads in result["grads"]:
            assert grads["spare.weight"] is None and grads["spare.bias"] is None
            for param, p in big.named_parameters():
                assert torch.allclose(grads["net." + param], p.grad, atol=1e-7)

# %% [markdown]
# Only turn `find_unused_parameters` on when a parameter really goes unused: the traversal
# runs every iteration. Better still, remove the unused parameter, or freeze it.
#
# ## Going deeper: mixed precision (8 minutes)
# Under `torch.autocast("cpu", dtype=torch.bfloat16)` layers like `Linear` compute in
# bfloat16, while the parameters and their gradients stay float32.

# %%
net = helpers.toy_net()
with torch.autocast("cpu", dtype=torch.bfloat16):
    out = net(x)
loss = helpers.toy_loss(out.float(), y)
loss.backward()
print("output:", out.dtype, "| weight:", net.l1.weight.dtype, "| grad:", net.l1.weight.grad.dtype)
assert out.dtype == torch.bfloat16
assert all(p.dtype == p.grad.dtype == torch.float32 for p in net.parameters())
plain_grads = {name: p.grad.clone() for name, p in net.named_parameters()}

# %% [markdown]
# **A `GradScaler` multiplies the loss, so every gradient arrives multiplied too** (by
# `get_scale()`, 65536 to start). It exists for float16, whose small range lets tiny gradients
# round to zero; bfloat16 has float32's range and usually needs no scaler, but the mechanics
# are the same and run on CPU.

# %%
net = helpers.toy_net()
scaler = torch.amp.GradScaler("cpu")
with torch.autocast("cpu", dtype=torch.bfloat16):
    out = net(x)
scaler.scale(helpers.toy_loss(out.float(), y)).backward()
print("scale:", scaler.get_scale())
for name, p in net.named_parameters():
    assert torch.allclose(p.grad, scaler.get_scale() * plain_grads[name])
assert scaler.get_scale() == 2.0 ** 16
for dtype in [torch.float16, torch.bfloat16, torch.float32]:
    info = torch.finfo(dtype)
    print(f"{str(dtype):15} smallest normal {info.tiny:.1e}, largest {info.max:.1e}")
assert torch.finfo(torch.float16).tiny > 1e-5 and torch.finfo(torch.float16).max < 1e5
assert torch.finfo(torch.bfloat16).tiny == torch.finfo(torch.float32).tiny
small = torch.tensor(1e-8)                     # a tiny gradient
print(f"1e-8 in float16: {small.half().item():.2g} | scaled by 65536 first: "
      f"{(small * 2 ** 16).half().item():.2g} | in bfloat16: {small.bfloat16().item():.2g}")
assert small.half() == 0 and (small * 2 ** 16).half() != 0 and small.bfloat16() != 0

# %% [markdown]
# **Unscale before you clip.** `clip_grad_norm_` on scaled gradients measures a norm 65536
# times too large, clips to `max_norm / 65536` in effect, and the step barely moves.
# `scaler.unscale_(optimizer)` first divides the gradients back; `scaler.step` then does not
# divide again.

# %%
def scaled_step(unscale_first, max_norm=0.5):
    net = helpers.toy_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    scaler.scale(helpers.toy_loss(out.float(), y)).backward()
    if unscale_first:
        scaler.unscale_(optimizer)
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
    before = torch.cat([p.detach().flatten() for p in net.parameters()])
    scaler.step(optimizer)
    scaler.update()
    moved = (torch.cat([p.detach().flatten() for p in net.parameters()]) - before).norm()
    return norm.item(), moved.item()


right, wrong = scaled_step(unscale_first=True), scaled_step(unscale_first=False)
print(f"unscale_, then clip: norm seen {right[0]:.3f}, step length {right[1]:.2e}")
print(f"clip, no unscale_:   norm seen {wrong[0]:.0f}, step length {wrong[1]:.2e}")
assert abs(right[1] - 0.1 * 0.5) < 1e-5          # lr × max_norm: clipped as asked
assert abs(wrong[0] / right[0] - 2 ** 16) < 1.0  # the norm it saw was 65536 times too big
assert abs(right[1] / wrong[1] / 2 ** 16 - 1) < 0.02  # its step 65536 times too short
# (within 2 %: a step of 1e-6 on weights near 0.5 is measured with float32 rounding)

# %% [markdown]
# **An inf or NaN in a gradient skips the step.** `scaler.step` checks the unscaled gradients;
# if any is not finite it does not call `optimizer.step()`, and `scaler.update()` halves the
# scale. Here an inf, then a NaN, is forced into one gradient.

# %%
for bad in [float("inf"), float("nan")]:
    net = helpers.toy_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    scaler.scale(helpers.toy_loss(out.float(), y)).backward()
    net.l1.weight.grad[0, 0] = bad                     # an overflow, forced
    before = [p.detach().clone() for p in net.parameters()]
    scaler.step(optimizer)
    scaler.update()
    unchanged = all(torch.equal(p, b) for p, b in zip(net.parameters(), before))
    print(f"{bad} in a gradient: parameters unchanged: {unchanged} | new scale:",
          scaler.get_scale())
    assert unchanged and scaler.get_scale() == 2.0 ** 15

# %% [markdown]
# ## Going deeper: activation checkpointing (8 minutes)
# The reentrant checkpoint even says so, as a warning that is easy to miss in a log:

# %%
import warnings

net = helpers.toy_net()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    hidden = checkpoint(lambda t: torch.relu(net.l1(t)), x, use_reentrant=True)
print("PyTorch says:", str(caught[0].message))
print("hidden.requires_grad:", hidden.requires_grad)
assert "None of the inputs have requires_grad=True" in str(caught[0].message)
assert not hidden.requires_grad
assert "recommended that you use ``use_reentrant=False``" in " ".join(checkpoint.__doc__.split())

# %% [markdown]
# This is the trap of a frozen embedding (or any frozen first layer, as in parameter-efficient
# fine-tuning) followed by checkpointed blocks. Fixes: `use_reentrant=False` (recommended by
# PyTorch), or make the block's input require grad. Every combination of the two:

# %%
helpers.truth_table("checkpoint")

# %% [markdown]
# **What checkpointing saves, measured.** A stack of 8 `Linear(256, 256) -> ReLU` layers on
# 64 rows, split into 1, 2 or 4 checkpointed segments (`use_reentrant=False`). Two numbers,
# both sums of tensor sizes rather than timings, so they are the same on every run: the bytes
# autograd keeps from forward to backward (`costs.saved_tensor_bytes`, weights not counted),
# and the peak of the bytes allocated during forward *and* backward on top of what existed
# before (the weights and their `.grad`; `costs.peak_memory_bytes`, through the profiler).

# %%
from helpers import costs

model = costs.larger_mlp(width=256, depth=8)
inputs = torch.randn(64, 256, generator=torch.Generator().manual_seed(0))


def loss_with(segments):
    if segments == 0:
        return model(inputs).sum()
    h, size = inputs, 16 // segments           # 16 modules: 8 × (Linear, ReLU)
    for start in range(0, 16, size):
        h = checkpoint(model[start:start + size], h, use_reentrant=False)
    return model[16](h).sum()


loss_with(0).backward()                        # allocate the .grad tensors once
model.zero_grad(set_to_none=False)
kept, peak = {}, {}
for segments in [0, 1, 2, 4]:
    kept[segments] = costs.saved_tensor_bytes(lambda: loss_with(segments), exclude=model)
    peak[segments] = costs.peak_memory_bytes(lambda: loss_with(segments).backward())
    print(f"segments: {segments}, kept for backward {kept[segments] / 1024:6.0f} KiB, "
          f"peak {peak[segments] / 1024:6.0f} KiB")
assert kept[1] < kept[2] < kept[4] < kept[0]
assert peak[2] < peak[0] and peak[4] < peak[0]
assert peak[1] >= peak[0]
assert costs.peak_memory_bytes(lambda: loss_with(2).backward()) == peak[2]  # same again

linears = [module for module in model if isinstance(module, torch.nn.Linear)]
calls = {module: 0 for module in linears}


def count_call(module, args):
    calls[module] += 1


hooks = [module.register_forward_pre_hook(count_call) for module in linears]
loss_with(2).backward()                        # 2 checkpointed segments, then the head
for hook in hooks:
    hook.remove()
print("forward calls of each Linear in one step:", [calls[module] for module in linears])
assert [calls[module] for module in linears] == [2] * 8 + [1]  # the head is not checkpointed

# %% [markdown]
# Fewer segments keep less between forward and backward, but backward recomputes a whole
# segment at once: one segment of everything keeps the least and saves nothing at the peak.
# A few segments save at both. The price: each checkpointed layer runs forward twice.
#
# ## Going deeper: `torch.compile` and grad modes (8 minutes)
# A compiled model must give the eager model's outputs and gradients in every grad mode. The
# `aot_eager` backend is used here: TorchDynamo captures the graph and AOTAutograd traces
# forward and backward, but PyTorch's own kernels run them, so no C++ compiler is needed. (The
# default backend, `inductor`, also generates code.)

# %%
eager, compiled_net = helpers.toy_net(), helpers.toy_net()
compiled = torch.compile(compiled_net, backend="aot_eager")
helpers.toy_loss(eager(x), y).backward()
helpers.toy_loss(compiled(x), y).backward()
for (name, p), q in zip(eager.named_parameters(), compiled_net.parameters()):
    assert torch.allclose(p.grad, q.grad, atol=1e-7), name
with torch.no_grad():
    out_no_grad = compiled(x)
with torch.inference_mode():
    out_inference = compiled(x)
print("no_grad:        grad_fn", out_no_grad.grad_fn, "| equal to eager:",
      torch.allclose(out_no_grad, eager(x)))
print("inference_mode: grad_fn", out_inference.grad_fn, "| inference tensor:",
      out_inference.is_inference())
assert out_no_grad.grad_fn is None and torch.allclose(out_no_grad, eager(x))
assert out_inference.is_inference() and torch.allclose(out_inference, eager(x))
assert '"inductor" is the default backend' in torch.compile.__doc__

# %% [markdown]
# Frozen parameters too: with `l1` frozen the compiled model leaves `l1`'s grads `None` and
# gives `l2` the eager gradient.

# %%
eager, compiled_net = helpers.toy_net(), helpers.toy_net()
eager.l1.requires_grad_(False)
compiled_net.l1.requires_grad_(False)
helpers.toy_loss(eager(x), y).backward()
helpers.toy_loss(torch.compile(compiled_net, backend="aot_eager")(x), y).backward()
print({name: None if p.grad is None else "values" for name, p in compiled_net.named_parameters()})
assert compiled_net.l1.weight.grad is None and compiled_net.l1.bias.grad is None
assert torch.allclose(compiled_net.l2.weight.grad, eager.l2.weight.grad, atol=1e-7)

# %% [markdown]
# **What recompiles.** A backend is any function that takes the captured graph; this one
# counts the graphs it is given and runs them as they are (public API: a custom backend).
# TorchDynamo guards each compiled graph on the grad mode and on each parameter's
# `requires_grad`, among other things (`inference_mode` fails a guard of its own: it compiles anew
# although grad mode is off there as under `no_grad`); when a guard fails, it captures a new
# graph.

# %%
graphs = []


def counting_backend(graph_module, example_inputs):
    graphs.append(graph_module)
    return graph_module.forward


torch.compiler.reset()
net = helpers.toy_net()
compiled = torch.compile(net, backend=counting_backend)
seen = {}
for what in ["grad mode", "grad mode again", "no_grad", "no_grad again", "grad mode back",
             "inference_mode", "l1 frozen", "l1 frozen again"]:
    if what == "l1 frozen":
        net.l1.requires_grad_(False)
    mode = torch.no_grad() if what.startswith("no_grad") else (
        torch.inference_mode() if what == "inference_mode" else torch.enable_grad())
    with mode:
        compiled(x)
    seen[what] = len(graphs)
    print(f"{what:16} graphs captured so far: {len(graphs)}")
assert list(seen.values()) == [1, 1, 2, 2, 2, 3, 4, 4]

# %% [markdown]
# Each new grad mode or `requires_grad` setting cost one compilation, once; after that the
# cached graphs were reused, also when switching back, so a loop that alternates training steps
# with `no_grad` evaluation compiles each variant once.
#
# ## Going deeper: the gradient doctor on a DDP step (4 minutes)
# `helpers.diagnose(model, step, optimizer)` from
# [11 · Why is my gradient None?](11_debugging.ipynb) runs a step once, watched, and says why each parameter does or does not train. It runs inside one
# process, so the run above also called it in each rank, on a DDP step of the toy net with `l1`
# frozen (`distributed.diagnose_step`). Rank 0's report:

# %%
doctor = ddp["diagnose_step"]
for result in doctor:
    assert result["error"] == "", result["error"]
    assert result["frozen"]["causes"] == {"module.l1.weight": "frozen", "module.l1.bias": "frozen",
                                          "module.l2.weight": "ok", "module.l2.bias": "ok"}
print(doctor[0]["frozen"]["report"] if doctor else "(skipped)")

# %% [markdown]
# **What it cannot see: the all-reduce.** DDP communicates inside `backward()`, from hooks the
# doctor does not watch, and the doctor looks at one process. On the first step of the
# model with an unused layer, where the bucket was never all-reduced, it rightly calls `spare`
# unused and calls the other parameters `ok`, though each rank trained on its own gradient
# (the two ranks' `l2.bias` gradients differ). Whether gradients were averaged across
# processes is yours to check, for instance with a communication hook like the counter above.

# %%
for rank, result in enumerate(doctor):
    causes = result["spare"]["causes"]
    print(f"rank {rank}: spare.weight {causes['module.spare.weight']}, "
          f"net.l2.bias {causes['module.net.l2.bias']}, "
          f"l2.bias grad {result['spare']['grads']['net.l2.bias'].item():+.4f}")
    assert causes["module.spare.weight"] == causes["module.spare.bias"] == "unused"
    assert causes["module.net.l2.bias"] == "ok"
if doctor:
    assert not torch.allclose(doctor[0]["spare"]["grads"]["net.l2.bias"],
                              doctor[1]["spare"]["grads"]["net.l2.bias"])

# %% [markdown]
# ## Pitfalls
# Each is reproduced above, with its fix:
# - **`loss / k` over micro-batches of unequal size** (the core): the small micro-batch's
#   examples count too much. Use `sum / N` or `mean × n_i / N`.
# - **A parameter unused in forward under DDP**: the first iteration silently keeps each
#   rank's own gradient, the second forward raises "Expected to have finished reduction in the prior
#   iteration". Remove or freeze the parameter, or use `find_unused_parameters=True` or
#   `static_graph=True`.
# - **Clipping scaled gradients**: the norm is 65536 times too big and the step 65536 times
#   too short. Call `scaler.unscale_(optimizer)` first.
# - **A reentrant checkpoint after a frozen layer**: the block gets no gradient, with only a
#   warning. Use `use_reentrant=False`.
#
# ## Where it is used
# Large-model training loops combine all of these in one step, as in "The mechanism in code":
# accumulation to reach a batch size that does not fit in memory, DDP (or its sharded
# relatives) across devices, bfloat16 or float16 autocast, checkpointed Transformer blocks, and
# `torch.compile` for speed. Training libraries turn several of them into settings (Hugging
# Face `TrainingArguments` has `gradient_accumulation_steps`, `bf16` and
# `gradient_checkpointing`); the rules above are what those settings must get right.
#
# ## Exercises
# **12.1** Micro-batches of 6 and 2 examples, each loss a mean (`F.mse_loss(out, y_micro)`).
# The 6-example loss is multiplied by `6 / 8`. By which number must the 2-example loss be
# multiplied so the accumulated gradient is the big batch's? Answer with a float.

# %%
answer = ...  # e.g. 0.5
helpers.check("12.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `0.25`, that is `2 / 8`: each example must weigh `1/8`, and a mean over 2 weighs each `1/2`.
# </details>
#
# **12.2** Why are these grads `None`? A frozen embedding feeds a checkpointed block:
#
# ```python
# torch.manual_seed(0)
# model = torch.nn.Sequential(torch.nn.Embedding(10, 4),
#                             torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh()),
#                             torch.nn.Linear(4, 1))
# model[0].requires_grad_(False)
# hidden = checkpoint(model[1], model[0](torch.tensor([1, 5, 7])), use_reentrant=True)
# model[2](hidden).sum().backward()
# ```
#
# Answer with the set of parameter names (as `model.named_parameters()` gives them) whose
# `.grad` is `None`.

# %%
answer = ...  # e.g. {"2.bias"}
helpers.check("12.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"0.weight", "1.0.weight", "1.0.bias"}`: the frozen embedding, and the block inside the
# reentrant checkpoint, whose input does not require grad. `use_reentrant=False` trains the
# block.
# </details>
#
# **12.3** `scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)`. One step's gradients
# contain an inf; you call `scaler.step(optimizer)` and `scaler.update()`. What does
# `scaler.get_scale()` return now? Answer with a float.

# %%
answer = ...  # e.g. 1024.0
helpers.check("12.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `512.0`: the step is skipped and the scale is multiplied by `backoff_factor` (0.5).
# </details>

# %% [markdown]
# ## Further reading
# - [`DistributedDataParallel`](https://pytorch.org/docs/stable/generated/torch.nn.parallel.DistributedDataParallel.html)
#   and [DDP communication hooks](https://pytorch.org/docs/stable/ddp_comm_hooks.html)
# - [Automatic mixed precision](https://pytorch.org/docs/stable/amp.html) and
#   [AMP examples: gradient clipping](https://pytorch.org/docs/stable/notes/amp_examples.html)
# - [`torch.utils.checkpoint`](https://pytorch.org/docs/stable/checkpoint.html)
# - [`torch.compile`](https://pytorch.org/docs/stable/generated/torch.compile.html) and
#   [custom backends](https://pytorch.org/docs/stable/torch.compiler_custom_backends.html)
#
# [Next: 13 · Writing your own gradients](13_custom_gradients.ipynb)
