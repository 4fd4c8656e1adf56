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
# # 02 · requires_grad_(False): freezing layers
#
# `requires_grad_(False)` turns parameters into constants: `backward()` leaves their `.grad` at
# `None`, so a plain optimizer step does not move them, and autograd records no operation whose
# inputs are all constants.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/02_requires_grad.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/02_requires_grad.ipynb)

# %% [markdown]
# **What you will learn**
# - how to freeze a layer, and why the optimizer should get only the parameters that train;
# - why a frozen *first* layer vanishes from the graph, while a frozen *later* layer stays in
#   it and still passes gradients back to the layers before it;
# - what happens when everything is frozen;
# - what freezing does *not* do: stop graph recording elsewhere (`torch.no_grad()` does that)
#   or switch Dropout and BatchNorm to evaluation behaviour (`model.eval()` does that).
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb) (reading the graph and the gradient
# table).
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
# The same `L1 -> ReLU -> L2` network as everywhere in the series, the same batch, and the graph
# of one plain training step, where all four parameters get a gradient.

# %%
net = helpers.toy_net()
x, y = helpers.toy_batch()
control = helpers.run("control")
print(net)
helpers.draw(control)

# %% [markdown]
# ## Predict first
# We freeze the *last* layer, `l2`, with `net.l2.requires_grad_(False)`, and run one training
# step. Which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` will have `.grad` equal to
# `None` afterwards? Note that every gradient for `l1` has to travel back *through* `l2`.
# Decide before you scroll on. With a live kernel, tick your answer and press the button.

# %%
helpers.predict("requires_grad", frozen="l2",
                why="Only the frozen l2.weight and l2.bias stay None. l2's operation is still "
                "recorded because its input (the ReLU output) requires grad, so the gradient "
                "flows through l2 into l1.")

# %% [markdown]
# ## The mechanism in code
# Freeze a whole layer with `Module.requires_grad_(False)` (one tensor:
# `tensor.requires_grad_(False)`), then give the optimizer only what still trains.

# %%
net = helpers.toy_net()
net.l2.requires_grad_(False)                      # freeze l2.weight and l2.bias
trainable = [p for p in net.parameters() if p.requires_grad]
optimizer = torch.optim.SGD(trainable, lr=0.1)    # only the trainable parameters

optimizer.zero_grad()
loss = helpers.toy_loss(net(x), y)
loss.backward()
optimizer.step()

for name, p in net.named_parameters():
    print(f"{name:10} requires_grad={p.requires_grad!s:5}  grad is None: {p.grad is None}")

# %% [markdown]
# The helpers run the same step on a fresh network. The extra column `in graph` says whether
# the parameter has an `AccumulateGrad` node in the loss's graph: the node through which
# `backward()` writes into `.grad`.

# %%
frozen_l2 = helpers.run("requires_grad", frozen="l2")
helpers.grad_table(frozen_l2)

# %%
assert frozen_l2.grads_none() == ["l2.weight", "l2.bias"]
for name, p in net.named_parameters():
    assert frozen_l2.params[name].requires_grad == p.requires_grad
    assert (frozen_l2.params[name].grad == "None") == (p.grad is None)
assert [frozen_l2.params[n].extra["in graph"] for n in helpers.PARAM_NAMES] == \
    ["yes", "yes", "no", "no"]

# %% [markdown]
# ## Explorer
# Choose which layer is frozen. The table and the graph (right, beside the plain step) follow.
# It starts with `l1` frozen; compare it with `l2` frozen, then freeze both.

# %%
helpers.explore("requires_grad", frozen="l1")

# %% [markdown]
# ## Truth table
# Every choice at once. `*` marks a parameter the step changed.

# %%
helpers.truth_table("requires_grad")

# %% [markdown]
# ## What happened and why
# **1. A parameter frozen on a fresh network keeps `.grad` `None`, and the step does not move
# it.** `backward()` never writes to a tensor that does not require grad (even one frozen after
# the forward pass, whose graph was built while it still required grad), so there is nothing
# for the optimizer to apply. (Freezing does not clear a grad the parameter already holds: see
# the pitfall *Freezing in the middle of training* below.)

# %%
net = helpers.toy_net()
net.l1.requires_grad_(False)
l1_before = net.l1.weight.detach().clone()
optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
helpers.toy_loss(net(x), y).backward()
optimizer.step()
assert net.l1.weight.grad is None and net.l1.bias.grad is None
assert net.l2.weight.grad is not None and net.l2.bias.grad is not None
assert torch.equal(net.l1.weight, l1_before)

late = helpers.toy_net()
loss = helpers.toy_loss(late(x), y)        # graph recorded while l1 requires grad
late.l1.requires_grad_(False)              # frozen between forward and backward
loss.backward()
assert late.l1.weight.grad is None and late.l2.weight.grad is not None

# %% [markdown]
# **2. A frozen first layer vanishes from the graph.** Autograd records an operation only if at
# least one of its inputs requires grad. `l1` sees the batch `x` (no grad) and its own frozen
# weights (no grad), so nothing about `l1` or the ReLU after it is recorded. The first recorded
# operation is `l2`'s.
#
# To see it, we walk the graph ourselves: start at `loss.grad_fn` and follow `next_functions`.

# %%
def node_names(loss):
    """Names of the backward nodes reachable from ``loss.grad_fn``."""
    names, stack = [], [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None:
            names.append(type(node).__name__)
            stack += [fn for fn, _ in node.next_functions]
    return names


net = helpers.toy_net()
net.l1.requires_grad_(False)
hidden = torch.relu(net.l1(x))
loss = helpers.toy_loss(net.l2(hidden), y)
print(f"hidden.requires_grad: {hidden.requires_grad} | hidden.grad_fn: {hidden.grad_fn}")
print(sorted(node_names(loss)))

# %%
assert hidden.grad_fn is None and not hidden.requires_grad
assert sorted(node_names(loss)) == ["AccumulateGrad", "AccumulateGrad", "AddmmBackward0",
                                    "MseLossBackward0", "TBackward0"]

# %% [markdown]
# The drawing says the same: one `AddmmBackward0` (from `l2`), no `ReluBackward0`, and `l1`'s
# parameters drawn apart as grey dashed boxes marked "not in graph".

# %%
frozen_l1 = helpers.run("requires_grad", frozen="l1")
helpers.draw(frozen_l1, beside=control)

# %%
outline = repr(helpers.draw(frozen_l1))
print(outline)
assert outline.count("AddmmBackward0") == 1 and "ReluBackward0" not in outline
assert outline.count("AccumulateGrad") == 2
assert "l1.weight (3, 4) grad: None (not in graph)" in outline
assert "l1.bias (3) grad: None (not in graph)" in outline

# %% [markdown]
# **3. A frozen later layer stays in the graph and passes gradients through.** `l2`'s input is
# the ReLU output, which requires grad (it depends on `l1`'s trainable weights). So `l2`'s
# `AddmmBackward0` is recorded. What is missing is the branch to `l2`'s own parameters: no
# `AccumulateGrad` for `l2.bias`, no `TBackward0` and `AccumulateGrad` for `l2.weight`. Below,
# the inputs of that node: `None` where a frozen parameter's branch would have been.

# %%
def l2_node_inputs(frozen):
    net = helpers.toy_net()
    if frozen:
        net.l2.requires_grad_(False)
    loss = helpers.toy_loss(net(x), y)
    addmm = loss.grad_fn.next_functions[0][0]   # the node of l2's matmul
    return type(addmm).__name__, [type(fn).__name__ if fn else None
                                  for fn, _ in addmm.next_functions]


print(f"nothing frozen: {l2_node_inputs(frozen=False)}")
print(f"l2 frozen:      {l2_node_inputs(frozen=True)}")

# %%
assert l2_node_inputs(frozen=False) == ("AddmmBackward0",
                                        ["AccumulateGrad", "ReluBackward0", "TBackward0"])
assert l2_node_inputs(frozen=True) == ("AddmmBackward0", [None, "ReluBackward0", None])

# %% [markdown]
# The gradient that reaches `l1` through the frozen `l2` is exactly the one it gets when
# nothing is frozen: freezing `l2` changes what `l2` receives, not what it passes on.

# %%
free, frozen = helpers.toy_net(), helpers.toy_net()
frozen.l2.requires_grad_(False)
helpers.toy_loss(free(x), y).backward()
helpers.toy_loss(frozen(x), y).backward()
assert torch.equal(frozen.l1.weight.grad, free.l1.weight.grad)
assert torch.equal(frozen.l1.bias.grad, free.l1.bias.grad)
assert frozen.l2.weight.grad is None and frozen.l2.bias.grad is None
print(f"l1.weight grad identical with and without l2 frozen: "
      f"{torch.equal(frozen.l1.weight.grad, free.l1.weight.grad)}")

# %% [markdown]
# In the drawing, `l2`'s `AddmmBackward0` is still there, between the ReLU and the loss; `l2`'s
# own parameters are grey, dashed and "not in graph".

# %%
helpers.draw(frozen_l2, beside=control)

# %%
outline = repr(helpers.draw(frozen_l2))
print(outline)
assert outline.count("AddmmBackward0") == 2 and outline.count("ReluBackward0") == 1
assert outline.count("AccumulateGrad") == 2
assert "l2.weight (1, 3) grad: None (not in graph)" in outline
assert "l2.bias (1) grad: None (not in graph)" in outline
assert "l1.weight (3, 4) grad: values" in outline

# %% [markdown]
# **4. With everything frozen, `backward()` raises.** Nothing the loss depends on requires
# grad, so nothing was recorded: the loss has no `grad_fn`, and there is no graph to run
# backward through.

# %%
net = helpers.toy_net()
net.requires_grad_(False)
loss = helpers.toy_loss(net(x), y)
print(f"loss.requires_grad: {loss.requires_grad} | loss.grad_fn: {loss.grad_fn}")
try:
    loss.backward()
except RuntimeError as e:
    message = str(e).splitlines()[0]
    print(f"{type(e).__name__}: {message}")
assert loss.grad_fn is None
assert "element 0 of tensors does not require grad and does not have a grad_fn" in message

# %% [markdown]
# A learner following *The mechanism in code* meets another error first: the optimizer over
# the trainable parameters gets an empty list and refuses, before any forward pass. The
# explorer and the truth table follow that recipe, so this is the error they show (the pitfall
# *Building an optimizer when everything is frozen* below has the fix):

# %%
frozen_both = helpers.run("requires_grad", frozen="both")
print(frozen_both.error)
assert frozen_both.error.kind == "ValueError"
assert frozen_both.error.message == "optimizer got an empty parameter list"
assert frozen_both.loss is None and frozen_both.grads_none() == list(helpers.PARAM_NAMES)

# %% [markdown]
# **5. Freezing is not `no_grad`.** Freezing only changes the flag of the parameters you froze.
# Any other tensor that requires grad is still tracked: the differentiable operations it flows
# into are recorded (a boolean or integer result, as from `>` or `argmax`, never is). Here the
# whole network is frozen, but the input requires grad (as when you ask which input pixels
# matter, a saliency map): a full graph is built and `backward()` works.

# %%
net = helpers.toy_net()
net.requires_grad_(False)
x_in = x.clone().requires_grad_(True)
loss = helpers.toy_loss(net(x_in), y)
loss.backward()
print(f"loss.grad_fn: {type(loss.grad_fn).__name__} | x_in.grad shape: {tuple(x_in.grad.shape)}")
assert loss.grad_fn is not None and x_in.grad is not None
assert all(p.grad is None for p in net.parameters())
assert not (x_in > 0).requires_grad and not x_in.argmax().requires_grad

# %% [markdown]
# `torch.no_grad()` is the tool that stops recording: inside it, nothing gets a `grad_fn`, even
# with every parameter and the input requiring grad. For a whole evaluation pass, use it
# (notebook 04).

# %%
net = helpers.toy_net()
with torch.no_grad():
    out = net(x_in)
print(f"requires_grad: {out.requires_grad} | grad_fn: {out.grad_fn}")
assert out.grad_fn is None and not out.requires_grad
assert x_in.requires_grad and all(p.requires_grad for p in net.parameters())

# %% [markdown]
# **6. Freezing is not `eval()`, and `eval()` is not `no_grad`.** `model.eval()` sets
# `training=False` on every submodule, which changes the layers that read it (Dropout,
# BatchNorm, ...). It does not stop recording: the output still has a `grad_fn` and
# `backward()` still fills every gradient.

# %%
net = helpers.toy_net()
net.eval()
out = net(x)
helpers.toy_loss(out, y).backward()
print(f"training: {net.training} | grad_fn: {type(out.grad_fn).__name__}")
assert not any(m.training for m in net.modules())
assert out.grad_fn is not None
assert all(p.grad is not None for p in net.parameters())

# %% [markdown]
# The other way round, freezing does not touch Dropout: a frozen module in training mode still
# drops (zeroes) random entries and scales the rest by `1 / (1 - p)`. `eval()` turns that off;
# freezing does not.

# %%
torch.manual_seed(0)
dropout = torch.nn.Dropout(p=0.5)
dropout.requires_grad_(False)
ones = torch.ones(8)
in_training = dropout(ones)
dropout.eval()
in_eval = dropout(ones)
print(f"train mode: {in_training.tolist()}")
print(f"eval mode:  {in_eval.tolist()}")
assert set(in_training.tolist()) == {0.0, 2.0}
assert torch.equal(in_eval, ones)

# %% [markdown]
# Evaluation mode and gradient mode are independent switches. Inference code usually wants both:
# `model.eval()` *and* `with torch.no_grad():`.
#
# **7. Freezing and the optimizer.** SGD skips a parameter whose `.grad` is `None`; it never
# looks at `requires_grad`. So a parameter frozen before training and given to SGD still does
# not move, even with momentum and weight decay, as long as its grad stays `None`.

# %%
net = helpers.toy_net()
net.l1.requires_grad_(False)
l1_before = net.l1.weight.detach().clone()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
for _ in range(3):
    optimizer.zero_grad()
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
assert net.l1.weight.grad is None
assert torch.equal(net.l1.weight, l1_before)

# %% [markdown]
# With default options, every built-in optimizer leaves a parameter frozen before the first
# step alone. Frozen *mid-training* with grads `None`, one still moves it: LBFGS, whose search
# direction remembers earlier gradients
# ([06 · Optimizer parameter subsets](06_optimizer_subsets.ipynb), section 6, has the whole
# table).

# %%
from helpers import optimizers

survey = optimizers.survey()
print("move a parameter frozen mid-training (grad None):",
      optimizers.names_where(survey, "frozen after warm-up, grad None", "moves"))
assert optimizers.names_where(survey, "frozen from the start, grad None", "moves") == []
assert optimizers.names_where(survey, "frozen after warm-up, grad None", "moves") == ["LBFGS"]

# %% [markdown]
# So give the optimizer only the trainable parameters: it says what trains, and it does not
# depend on the frozen grads staying `None` (the first pitfall below shows when they don't) or
# on the optimizer skipping them.
#
# Leaving a parameter out of the optimizer is not freezing either: autograd still computes its
# gradient (you pay for it), it just is not applied. To save the work too, also call
# `requires_grad_(False)`.

# %%
net = helpers.toy_net()
l1_before = net.l1.weight.detach().clone()
optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)   # l1 left out, but not frozen
helpers.toy_loss(net(x), y).backward()
optimizer.step()
print(f"l1.weight.grad computed: {net.l1.weight.grad is not None}")
assert net.l1.weight.grad is not None and net.l1.weight.grad.abs().sum() > 0
assert torch.equal(net.l1.weight, l1_before)

# %% [markdown]
# ## Pitfalls
# ### `model.requires_grad = False` freezes nothing
# On a module, `requires_grad` without the underscore and parentheses is just a new Python
# attribute. No error, no effect: every parameter still requires grad.

# %%
net = helpers.toy_net()
net.requires_grad = False                       # wrong: sets an unused attribute
print([p.requires_grad for p in net.parameters()])
assert all(p.requires_grad for p in net.parameters())

# %% [markdown]
# Fix: call the method, `requires_grad_(False)`, on the module (or set the flag on each
# parameter).

# %%
net = helpers.toy_net()
net.requires_grad_(False)                       # right: the method, on every parameter
print([p.requires_grad for p in net.parameters()])
assert not any(p.requires_grad for p in net.parameters())

# %% [markdown]
# ### Freezing in the middle of training, with zeroed grads and momentum
# Freezing does not clear a gradient the parameter already has. Here `l1` trained for one step
# with momentum, then is frozen. `zero_grad(set_to_none=False)` leaves it a tensor of zeros
# instead of `None`, so the optimizer does not skip it: momentum keeps moving the "frozen"
# layer.

# %%
def train_then_freeze_l1(set_to_none, only_trainable):
    """One step on everything, freeze l1, one more step. Did l1 move in the second step?"""
    net = helpers.toy_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
    net.l1.requires_grad_(False)                # freeze l1 from now on
    assert net.l1.weight.grad is not None       # freezing kept the old gradient
    if only_trainable:                          # a fresh optimizer with what still trains
        optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad],
                                    lr=0.1, momentum=0.9)
    optimizer.zero_grad(set_to_none=set_to_none)
    frozen_at = net.l1.weight.detach().clone()
    helpers.toy_loss(net(x), y).backward()
    optimizer.step()
    return not torch.equal(net.l1.weight, frozen_at)


moved = train_then_freeze_l1(set_to_none=False, only_trainable=False)
print(f"frozen l1 moved: {moved}")
assert moved

# %% [markdown]
# Fix: keep frozen grads `None` (the default `zero_grad()` does; enough for SGD here, not for
# LBFGS), or better, give the optimizer only the parameters that train.

# %%
moved_none_grads = train_then_freeze_l1(set_to_none=True, only_trainable=False)
moved_trainable_only = train_then_freeze_l1(set_to_none=False, only_trainable=True)
print(f"moved with zero_grad(): {moved_none_grads} | "
      f"moved with only trainable params: {moved_trainable_only}")
assert not moved_none_grads and not moved_trainable_only

# %% [markdown]
# ### A frozen backbone's BatchNorm still learns its statistics
# `requires_grad_(False)` freezes weights, not running statistics. In training mode, BatchNorm
# updates `running_mean` and `running_var` on every forward pass, frozen or not.

# %%
torch.manual_seed(0)
backbone = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
backbone.requires_grad_(False)
stats_before = backbone[1].running_mean.clone()
var_before = backbone[1].running_var.clone()
backbone(x)
print(f"running_mean changed: {not torch.equal(backbone[1].running_mean, stats_before)}")
assert not torch.equal(backbone[1].running_mean, stats_before)
assert not torch.equal(backbone[1].running_var, var_before)

# %% [markdown]
# Fix: put the frozen part in evaluation mode too, and again after every `model.train()`
# (which switches every submodule back to training mode).

# %%
backbone.eval()
stats_before = backbone[1].running_mean.clone()
backbone(x)
print(f"running_mean changed: {not torch.equal(backbone[1].running_mean, stats_before)}")
assert torch.equal(backbone[1].running_mean, stats_before)
backbone.train()                                # model.train() reaches every submodule,
assert backbone[1].training                     # so BatchNorm is back in training mode

# %% [markdown]
# ### Freezing an intermediate result
# Only leaf tensors (parameters, inputs) have a flag you can switch off. An activation computed
# from trainable weights cannot be "frozen" in place:

# %%
net = helpers.toy_net()
hidden = torch.relu(net.l1(x))
try:
    hidden.requires_grad_(False)
except RuntimeError as e:
    message = str(e).splitlines()[0]
    print(f"{type(e).__name__}: {message}")
assert "you can only change requires_grad flags of leaf variables" in message

# %% [markdown]
# Fix: `detach()` gives a tensor with the same values and no history, so nothing behind it gets
# a gradient from what follows (notebook 03).

# %%
cut = hidden.detach()
helpers.toy_loss(net.l2(cut), y).backward()
print(f"l1.weight.grad: {net.l1.weight.grad} | l2.weight.grad shape: {tuple(net.l2.weight.grad.shape)}")
assert not cut.requires_grad and net.l1.weight.grad is None and net.l2.weight.grad is not None

# %% [markdown]
# ### Building an optimizer when everything is frozen
# Filtering for trainable parameters when there are none gives the optimizer an empty list, and
# it refuses at once:

# %%
net = helpers.toy_net()
net.requires_grad_(False)
try:
    torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
except ValueError as e:
    message = str(e)
    print(f"{type(e).__name__}: {message}")
assert message == "optimizer got an empty parameter list"

# %% [markdown]
# Fix: leave something to train (a new head, below). For evaluation only, use
# `net.eval()` with `torch.no_grad()` and no optimizer at all.

# %% [markdown]
# ## Where it is used
# **Transfer learning.** A pretrained network (the *backbone*) is frozen and kept in evaluation
# mode; only a new *head* trains. Here `l1` plays the backbone and `l2` the head.

# %%
net = helpers.toy_net()
net.l1.requires_grad_(False)                    # freeze the backbone
net.l1.eval()                                   # and its Dropout/BatchNorm, if it had any
optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
backbone_start = net.l1.weight.detach().clone()
losses = []
for _ in range(30):
    optimizer.zero_grad()
    loss = helpers.toy_loss(net(x), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print(f"loss: {losses[0]:.4f} -> {losses[-1]:.4f}")
assert losses[-1] < losses[0]
assert torch.equal(net.l1.weight, backbone_start)

# %% [markdown]
# A common second stage unfreezes the backbone and adds it to the optimizer with a smaller
# learning rate (`add_param_group`), so it fine-tunes gently.

# %%
net.l1.requires_grad_(True)
net.l1.train()
optimizer.add_param_group({"params": net.l1.parameters(), "lr": 0.01})
optimizer.zero_grad()
helpers.toy_loss(net(x), y).backward()
optimizer.step()
print(f"backbone moved: {not torch.equal(net.l1.weight, backbone_start)}")
assert not torch.equal(net.l1.weight, backbone_start)

# %% [markdown]
# ## Exercises
# **02.1** Freeze a single tensor instead of a layer: `net.l1.weight.requires_grad_(False)` on a
# fresh toy network, then `backward()`. Which parameters have `.grad` equal to `None`? Answer
# with a set of names.

# %%
answer = ...  # e.g. {"l2.bias"}
helpers.check("02.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"l1.weight"}`. Freezing works per tensor. `l1`'s operation is still recorded because
# `l1.bias` requires grad, so `l1.bias`, `l2.weight` and `l2.bias` all get gradients.
# </details>
#
# **02.2** Freeze only `l2.weight` (`net.l2.weight.requires_grad_(False)`, `l2.bias` still
# trains). How many `AccumulateGrad` nodes does the loss's graph have? Answer with an integer
# (walk `loss.grad_fn.next_functions` as `node_names` does above).

# %%
answer = ...  # e.g. 3
helpers.check("02.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `3`: one each for `l1.weight`, `l1.bias` and `l2.bias`. `l2`'s `AddmmBackward0` is there;
# only the frozen `l2.weight` has no `AccumulateGrad` node (and no `TBackward0` before it).
# </details>
#
# **02.3** Freeze `l1` (the "backbone"). How many numbers does the network still train, that is
# `sum(p.numel() for p in net.parameters() if p.requires_grad)`? Answer with an integer.

# %%
answer = ...  # e.g. 19
helpers.check("02.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `4`: `l2.weight` has 1 x 3 numbers and `l2.bias` 1. Printing this count after freezing is a
# quick check that you froze what you meant to.
# </details>

# %% [markdown]
# ## Recap
# - `requires_grad_(False)` stops `backward()` writing a parameter's `.grad` (`None` unless it
#   held one before); give the optimizer only the parameters that still train.
# - Autograd records an operation only if an input requires grad: a frozen first layer leaves
#   no trace, a frozen later layer stays in the graph and passes gradients back.
# - Freezing is neither `no_grad` (other tensors are still tracked) nor `eval()` (Dropout and
#   BatchNorm keep training behaviour); inference usually wants `eval()` and `no_grad()`.
#
# ## Further reading
# - [`torch.Tensor.requires_grad_`](https://pytorch.org/docs/stable/generated/torch.Tensor.requires_grad_.html)
# - [`torch.nn.Module.requires_grad_`](https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.requires_grad_)
# - [Autograd mechanics: locally disabling gradient computation](https://pytorch.org/docs/stable/notes/autograd.html#locally-disabling-gradient-computation)
# - [`torch.optim.Optimizer.add_param_group`](https://pytorch.org/docs/stable/generated/torch.optim.Optimizer.add_param_group.html)
# - [Transfer learning tutorial](https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html)
#
# [Next: 03 · detach](03_detach.ipynb)
