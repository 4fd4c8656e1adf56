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
# # 11 · Why is my gradient None?
#
# When a parameter does not train, `helpers.diagnose(model, step)` runs your training step
# once, watches it, and names the cause for every parameter, with the fix in one line.
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradient-flow-lab/gradient-flow-lab/blob/main/notebooks/11_debugging.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/gradient-flow-lab/gradient-flow-lab/main?urlpath=lab/tree/notebooks/11_debugging.ipynb)

# %% [markdown]
# **What you will learn**
# - the ten causes the gradient doctor reports, and why "is `.grad` `None`?" finds only some;
# - how to run the doctor on your own model and step;
# - each cause reproduced on a small residual network, with its one-line fix;
# - how to find the line behind "modified by an inplace operation";
# - how to read a per-layer gradient-norm chart.
#
# **Prerequisites**: [00 · Start here](00_start_here.ipynb); notebooks 02 to 06 teach five of
# these causes one at a time. It follows [10 · Myths, tested](10_myths.ipynb).
#
# **Time**: 15 minutes for the core; about 40 more for the "Going deeper" sections.

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
# mean-squared-error loss. Here is the graph of one plain training step.

# %%
x, y = helpers.toy_batch()
control = helpers.run("control")
helpers.draw(control)

# %% [markdown]
# ## Predict first
# Someone fine-tunes the toy net with a fresh head, keeping L1 as it is:
#
# ```python
# net = helpers.toy_net()
# optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
# net.l2 = torch.nn.Linear(3, 1)          # a fresh head
#
# optimizer.zero_grad()
# with torch.no_grad():                   # "keep L1 as it is"
#     hidden = torch.relu(net.l1(x))
# loss = helpers.toy_loss(net.l2(hidden), y)
# loss.backward()
# optimizer.step()
# ```
#
# After `backward()`, which of `l1.weight`, `l1.bias`, `l2.weight`, `l2.bias` have `.grad`
# equal to `None`? Which does the step change? Decide, then tick your answer and press the
# button.

# %%
helpers.predict("broken")

# %% [markdown]
# ## The doctor in code
# Put your step, as you wrote it, in a function with no arguments that returns the loss, and
# hand it to `helpers.diagnose` with the model and the optimizer.

# %%
net = helpers.toy_net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
net.l2 = torch.nn.Linear(3, 1)


def step():
    optimizer.zero_grad()
    with torch.no_grad():
        hidden = torch.relu(net.l1(x))
    loss = helpers.toy_loss(net.l2(hidden), y)
    loss.backward()
    optimizer.step()
    return loss


diagnosis = helpers.diagnose(net, step, optimizer)
print(diagnosis)
assert diagnosis.causes == {"l1.weight": "no_grad", "l1.bias": "no_grad",
                            "l2.weight": "not_in_optimizer", "l2.bias": "not_in_optimizer"}

# %% [markdown]
# "Which grads are `None`?" finds L1. The head has a gradient, yet never moves: the optimizer
# holds the old `l2` tensors. One row per parameter:

# %%
assert [p.grad for p in diagnosis.params.values()] == ["None", "None", "values", "values"]
assert not any(p.moved for p in diagnosis.params.values())
diagnosis.table()

# %% [markdown]
# The graph shows modules, not operations, coloured by their parameters' causes, so it stays
# small for a large model.

# %%
outline = repr(diagnosis.draw())
assert "l1: Linear | 2 no_grad" in outline and "l2: Linear | 2 not_in_optimizer" in outline
diagnosis.draw()

# %% [markdown]
# **The fix** says what was meant: freeze L1 (now `frozen` is intended) and build the
# optimizer over the new head.

# %%
net = helpers.toy_net()
net.l2 = torch.nn.Linear(3, 1)
net.l1.requires_grad_(False)
optimizer = torch.optim.SGD(net.l2.parameters(), lr=0.1)

diagnosis = helpers.diagnose(net, step, optimizer)
print(diagnosis)
assert diagnosis.causes == {"l1.weight": "frozen", "l1.bias": "frozen",
                            "l2.weight": "ok", "l2.bias": "ok"}

# %% [markdown]
# ## Explorer
# Plant a bug into a small residual network (`stem -> residual block -> head`) and watch the
# doctor's table and module graph change. `# BUG` marks the line in each bug's code.

# %%
from helpers import bug_lab, bugs

bug_lab.BugLab("frozen")

# %% [markdown]
# ## Truth table
# Every bug at once. Each bug's causes were written by hand in `helpers/bugs/`; the cell
# checks that the doctor agrees.

# %%
for name in bugs.BUGS:
    expected = bugs.expected_causes(name)
    if expected is not None:
        assert bug_lab.diagnosis_of(name).causes == expected, name
bug_lab.bug_table()

# %% [markdown]
# ## What happened and why
# The doctor runs your step, watching every torch call (which parameters it used, in
# which grad mode), the graph behind each `backward()`, and each parameter and `.grad` before
# and after. It reports the first cause that applies:

# %%
bug_lab.causes_table()

# %% [markdown]
# **Diagnosing is not training.** Parameters, `.grad` and optimizer state are restored
# afterwards. Here Adam took one real step first, so there is state to keep.

# %%
optimizer = torch.optim.Adam(net.l2.parameters(), lr=0.01)
step()
values = {name: p.detach().clone() for name, p in net.named_parameters()}
grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
moments = [(s["exp_avg"].clone(), s["exp_avg_sq"].clone()) for s in optimizer.state.values()]

helpers.diagnose(net, step, optimizer)
for name, p in net.named_parameters():
    assert torch.equal(p, values[name])
    assert (p.grad is None) == (name not in grads)
    assert name not in grads or torch.equal(p.grad, grads[name])
assert len(moments) == 2
assert all(torch.equal(m, s["exp_avg"]) and torch.equal(v, s["exp_avg_sq"])
           for (m, v), s in zip(moments, optimizer.state.values()))
assert all(s["step"] == 1 for s in optimizer.state.values())
print("parameters, grads and Adam's state unchanged")

# %% [markdown]
# ## Recap: a checklist for your own model
# - [ ] Run `helpers.diagnose(model, step, optimizer)` on one step; read every row not `ok`.
# - [ ] `.grad` `None`: frozen, unused, `no_grad`/`inference_mode`, a cut (`detach()`,
#   `.item()`, NumPy, argmax), a non-leaf, or `backward(inputs=...)`.
# - [ ] A gradient but no change: not in the optimizer (build it last), zeros (dead ReLUs),
#   or lr 0.
# - [ ] "modified by an inplace operation": write the named edit out of place.
# - [ ] All `ok` but stuck: plot the gradient norm per layer.

# %% [markdown]
# ## Going deeper: no gradient at all (15 minutes)
# Each bug below is planted into a fresh residual network. The cell shows the code, what the
# doctor says, the fix, and what the doctor says once the `# BUG` line is replaced by it.
#
# ### Frozen
# `requires_grad_(False)` left over from an earlier phase ([02](02_requires_grad.ipynb)).

# %%
case = bug_lab.case("frozen")
assert case.broken() == {"stem.weight": "frozen", "stem.bias": "frozen"}
assert case.fixed.of("ok") == list(case.fixed.causes)
case

# %% [markdown]
# ### An unused head
# A layer that is built but never called. It is in `model.parameters()` and in the optimizer,
# so nothing complains.

# %%
case = bug_lab.case("unused")
assert case.broken() == {"aux.weight": "unused", "aux.bias": "unused"}
assert case.diagnosis.error is None and case.diagnosis.params["aux.weight"].optimizer == "lr 0.1"
assert "aux.weight" not in case.fixed.causes
case

# %% [markdown]
# ### `no_grad` and `inference_mode` by accident
# Evaluation code pasted into the training step ([04](04_no_grad.ipynb),
# [05](05_inference_mode.ipynb)). The stem is not recorded. The rest of the network still
# trains: the block and the head use the stem's output as a constant input.

# %%
case = bug_lab.case("no_grad")
assert case.broken() == {"stem.weight": "no_grad", "stem.bias": "no_grad"}
assert not case.fixed.of("no_grad")
case

# %% [markdown]
# With `inference_mode` the stem's output is an inference tensor. This step still runs: the
# block starts with a ReLU, and since nothing it reads requires grad, nothing is recorded or
# saved there.

# %%
case = bug_lab.case("inference_mode")
assert case.broken() == {"stem.weight": "inference_mode", "stem.bias": "inference_mode"}
assert case.diagnosis.error is None
case

# %% [markdown]
# Had the block started with a `Linear`, it would have to save the inference tensor for its
# weight's gradient, and the forward pass raises (notebook 05):

# %%
model, (x3, y3) = bugs.residual_net(), bugs.bug_batch()
with torch.inference_mode():
    h = model.stem(x3)
try:
    model.block.fc1(h)
except RuntimeError as e:
    print(type(e).__name__ + ":", str(e).splitlines()[0])
    assert "Inference tensors cannot be saved for backward" in str(e)
else:
    raise AssertionError("expected a RuntimeError")

# %% [markdown]
# ### A `detach()` or `.item()` in the middle
# Grad mode was on, and the stem ran and was recorded, but its output was cut off from the
# loss ([03](03_detach.ipynb)). The doctor calls this `detached`.

# %%
case = bug_lab.case("detach")
assert case.broken() == {"stem.weight": "detached", "stem.bias": "detached"}
case

# %% [markdown]
# `.item()` turns a tensor into a Python number, which has no history: here the residual
# scale is clamped with Python's `max`. Only `block.scale` loses its gradient, silently; the
# fix clamps with `Tensor.clamp`, which autograd records.

# %%
case = bug_lab.case("item")
assert case.broken() == {"block.scale": "detached"} and case.diagnosis.error is None
case

# %% [markdown]
# ### argmax
# Integer labels have no gradient. A loss computed from `argmax` (here the error rate)
# depends on nothing that requires grad, so `backward()` raises; the doctor shows where the
# graph was cut.

# %%
case = bug_lab.case("argmax")
assert set(case.broken().values()) == {"detached"} and len(case.broken()) == 9
assert "does not require grad and does not have a grad_fn" in case.diagnosis.error
assert "`argmax`" in case.diagnosis.error
case

# %% [markdown]
# ### A leaf made non-leaf by `.to()`
# `torch.zeros(3, requires_grad=True)` is a leaf: `backward()` fills its `.grad`. Converting
# it afterwards (`.to(torch.float64)`, `.double()`) returns a new tensor computed from the
# leaf, and that one keeps no `.grad`.

# %%
case = bug_lab.case("non_leaf")
assert case.broken() == {"prior": "non_leaf"}
assert case.fixed.causes["prior"] == "not_in_optimizer"
case

# %% [markdown]
# After the fix, the doctor finds the next problem: `prior` is a leaf now, but the optimizer
# does not hold it. The step had left it out because an optimizer refuses a non-leaf.
# `retain_grad()` makes a non-leaf keep its `.grad`, and then the optimizer accepts it. That
# trains the copy: the leaf you made stays at zero, and its `.grad` grows at every step.

# %%
leaf = torch.zeros(3, requires_grad=True)
moved = leaf.to(torch.float64)
try:
    torch.optim.SGD([moved], lr=0.1)
except ValueError as e:
    print(type(e).__name__ + ":", e)
    assert "can't optimize a non-leaf Tensor" in str(e)
else:
    raise AssertionError("expected a ValueError")

moved.retain_grad()
copy_optimizer = torch.optim.SGD([moved], lr=0.1)
for _ in range(3):
    copy_optimizer.zero_grad()
    ((moved - 1) ** 2).sum().backward()
    copy_optimizer.step()
print("moved:", moved.detach(), "\nleaf: ", leaf.detach(), " leaf.grad:", leaf.grad)
assert not moved.is_leaf and not leaf.double().is_leaf
assert torch.allclose(moved.detach(), torch.full((3,), 0.488, dtype=torch.float64))
assert torch.equal(leaf.detach(), torch.zeros(3))
assert torch.allclose(leaf.grad, torch.full((3,), -4.88))

# %% [markdown]
# **On a CPU-only machine `.to(device)` hides this bug.** `.to()` returns the tensor itself
# when nothing changes, so `.to("cpu")` on a CPU tensor is still the leaf. It copies when the
# dtype or the device changes ([`Tensor.to`](https://pytorch.org/docs/stable/generated/torch.Tensor.to.html)),
# and the [`is_leaf` documentation](https://pytorch.org/docs/stable/generated/torch.Tensor.is_leaf.html)
# shows that a copy to the GPU is not a leaf: on a GPU the same line gives a non-leaf.

# %%
leaf = torch.zeros(3, requires_grad=True)
print("same tensor:", leaf.to("cpu") is leaf)
assert leaf.to("cpu") is leaf and leaf.to("cpu").is_leaf
assert not leaf.to(torch.float64).is_leaf

# %% [markdown]
# ### `backward(inputs=...)`
# `inputs=` restricts which leaves get `.grad` (notebook 13 has the details). Copied from a
# phase that trained only the head, it silently starves the rest. The graph does reach them;
# the doctor's detail says `inputs=` left them out.

# %%
case = bug_lab.case("backward_inputs")
assert set(case.broken()) == set(bugs.EVERY) - {"head.weight", "head.bias"}
assert "inputs=" in case.diagnosis.params["stem.weight"].detail
case

# %% [markdown]
# ## Going deeper: a gradient, but no step (8 minutes)
# `.grad` is filled in each of these, so checking for `None` finds nothing.
#
# ### A parameter left out of the optimizer, or replaced after it was built
# The optimizer holds tensor objects, compared by identity. A list that misses the stem, or a
# head assigned after the optimizer was built, leaves those parameters out
# ([06](06_optimizer_subsets.ipynb)).

# %%
case = bug_lab.case("not_in_optimizer")
assert case.broken() == {"stem.weight": "not_in_optimizer", "stem.bias": "not_in_optimizer"}
case

# %%
case = bug_lab.case("replaced")
assert case.broken() == {"head.weight": "not_in_optimizer", "head.bias": "not_in_optimizer"}
case

# %% [markdown]
# ### Learning rate 0
# Every gradient is there and `step()` runs, but nothing changes.

# %%
case = bug_lab.case("lr0")
assert set(case.broken().values()) == {"not_moved"} and len(case.broken()) == 9
assert "learning rate is 0" in case.diagnosis.params["stem.weight"].detail
case

# %% [markdown]
# ### Dead ReLUs
# If every pre-activation of a ReLU is negative for every example, the ReLU passes back only
# zeros. Here fc1's bias was pushed to -10, as one far too large step might do. `fc1` gets a
# gradient of zeros, and so does `fc2.weight`, whose input is that ReLU's output (all zeros).
# `fc2.bias` still learns, and the skip connection keeps the stem training.

# %%
case = bug_lab.case("dead_relu")
assert case.broken() == dict.fromkeys(["block.fc1.weight", "block.fc1.bias",
                                       "block.fc2.weight"], "zero_grad")
planted = bugs.plant("dead_relu")
x3, y3 = bugs.bug_batch()
pre_activation = planted.model.block.fc1(torch.relu(planted.model.stem(x3)))
print("largest pre-activation:", round(pre_activation.max().item(), 2))
assert (pre_activation < 0).all()
case

# %% [markdown]
# ## Going deeper: "modified by an inplace operation" (8 minutes)
# Many backward formulas need a tensor from the forward pass: `sigmoid` and `relu`, for
# instance, save their output (the messages below name them). Autograd saves it with its
# version number; every in-place edit bumps the version. If the numbers disagree at `backward()`, it raises. PyTorch's
# message names the tensor's shape and the operation whose output it is, not your line. The doctor
# reruns the step under `torch.autograd.detect_anomaly()` and records each in-place edit, so
# it names both lines.
#
# ### `ReLU(inplace=True)` after an operation that saves its output

# %%
case = bug_lab.case("inplace_relu")
assert "modified by an inplace operation" in case.diagnosis.error
assert "`h = act(h)`" in case.diagnosis.error and "SigmoidBackward0" in case.diagnosis.error
assert case.fixed.error is None
pytorch_says = str(case.diagnosis.exception).split("Hint")[0]
assert "[16, 8]], which is output 0 of Sigmoid," in pytorch_says and ".py" not in pytorch_says
case

# %% [markdown]
# ### `out += h` on a saved tensor
# A residual sum written in place. After a ReLU, which saves its output, it raises.

# %%
case = bug_lab.case("inplace_add")
assert "`out += h" in case.diagnosis.error and "ReluBackward0" in case.diagnosis.error
assert case.fixed.error is None
case

# %% [markdown]
# The same `+=` is fine after an operation whose backward does not need its output, such as
# `BatchNorm1d`:

# %%
bn = torch.nn.BatchNorm1d(8)
h = torch.randn(16, 8, requires_grad=True)
out = bn(h)
out += h
out.sum().backward()
assert h.grad is not None and out._version == 1
print("backward ran; out was edited in place once")

# %% [markdown]
# ### `x[mask] = 0`
# Assigning through a mask is an in-place edit too.

# %%
case = bug_lab.case("inplace_mask")
assert "`gate[gate < 0.1] = 0" in case.diagnosis.error
assert case.fixed.error is None
case

# %% [markdown]
# ## Going deeper: the gradient flow chart (5 minutes)
# When every parameter gets a gradient and moves, training can still stall. Plot the norm of
# each layer's weight gradient after one `backward()`, from the input side to the output
# side. Three 10-layer MLPs of width 32: sigmoid with PyTorch's default initialisation;
# ReLU with weights three times larger than Kaiming's; ReLU with Kaiming's.

# %%
from helpers import grad_flow

norms = {case + ": " + label: grad_flow.layer_grad_norms(
            grad_flow.backward_once(grad_flow.deep_mlp(case)))
         for case, label in grad_flow.CASES.items()}
for label, values in norms.items():
    print(f"{label:38} first layer {list(values.values())[0]:9.2e}   "
          f"last layer {list(values.values())[-1]:9.2e}")
vanishing, exploding, healthy = (list(v.values()) for v in norms.values())
t = torch.linspace(-6, 6, 1201, requires_grad=True)
slope = torch.autograd.grad(torch.sigmoid(t).sum(), t)[0]
assert 0.25 - 1e-6 < slope.max().item() <= 0.25      # the sigmoid's slope, at most 0.25
assert all(a < b for a, b in zip(vanishing, vanishing[1:]))  # each layer back shrinks it
assert vanishing[0] < 1e-6 * vanishing[-1]           # vanishing: 8 orders smaller at the input
assert min(exploding) > 1e6 * max(healthy)           # exploding: every layer enormous
assert max(healthy) < 10 * min(healthy)              # healthy: within a factor of 10

# %% [markdown]
# - **Vanishing**: the sigmoid's slope is at most 0.25, so each layer shrinks the gradient on
#   its way back: the first layer's is a million times smaller than the last one's.
# - **Exploding**: with weights 3 times too large, every layer's gradient is more than a
#   million times the healthy network's largest.
# - **Healthy**: ReLU with Kaiming's initialisation keeps the norms within a factor of 10.

# %%
grad_flow.grad_flow_chart(norms)

# %% [markdown]
# On your own model, `grad_flow.layer_grad_norms(model)` after any `backward()` gives the
# numbers; `grad_flow.grad_flow_chart({"step 1": norms})` draws them.
#
# ## Exercises
# Each exercise is a step on the toy net that does not train as meant. Name every parameter
# that will not train, with the doctor's cause for it: a dict such as
# `{"l2.bias": "frozen"}` (`{}` if nothing is wrong). You may copy the code and run
# `helpers.diagnose` on it after you answer.
#
# **11.1** Why are L1's grads `None`? A step that scales L1's output in NumPy:
#
# ```python
# net = helpers.toy_net()
# optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
#
# def step():
#     optimizer.zero_grad()
#     hidden = torch.relu(net.l1(x))
#     hidden = torch.from_numpy(hidden.detach().numpy() * 2)
#     loss = helpers.toy_loss(net.l2(hidden), y)
#     loss.backward()
#     optimizer.step()
#     return loss
# ```

# %%
answer = ...  # e.g. {"l2.bias": "frozen"}
helpers.check("11.1", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"l1.weight": "detached", "l1.bias": "detached"}`. `torch.from_numpy` makes a new tensor
# with no history, so the graph is cut after L1. Grad mode was on when L1 ran, so it is
# `detached`, not `no_grad`.
# </details>
#
# **11.2** A linear warm-up, the first step of the first epoch:
#
# ```python
# net = helpers.toy_net()
# optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
# scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: epoch / 10)
#
# def step():
#     optimizer.zero_grad()
#     loss = helpers.toy_loss(net(x), y)
#     loss.backward()
#     optimizer.step()
#     return loss
# ```

# %%
answer = ...  # e.g. {"l2.bias": "frozen"}
helpers.check("11.2", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"l1.weight": "not_moved", "l1.bias": "not_moved", "l2.weight": "not_moved",
# "l2.bias": "not_moved"}`. Building `LambdaLR` already sets the learning rate to
# `0.1 * lambda(0) = 0`. Start the warm-up above 0, e.g. `(epoch + 1) / 10`.
# </details>
#
# **11.3** Why are L1's grads `None` this time? A feature function, decorated:
#
# ```python
# net = helpers.toy_net()
# optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
#
# @torch.no_grad()
# def features(inputs):
#     return torch.relu(net.l1(inputs))
#
# def step():
#     optimizer.zero_grad()
#     loss = helpers.toy_loss(net.l2(features(x)), y)
#     loss.backward()
#     optimizer.step()
#     return loss
# ```

# %%
answer = ...  # e.g. {"l2.bias": "frozen"}
helpers.check("11.3", answer)

# %% [markdown]
# <details><summary>Solution</summary>
#
# `{"l1.weight": "no_grad", "l1.bias": "no_grad"}`. The decorator turns grad mode off for the
# whole call, so L1 was never recorded.
# </details>

# %% [markdown]
# ## Further reading
# - [Autograd mechanics: locally disabling gradient computation, in-place operations](https://pytorch.org/docs/stable/notes/autograd.html)
# - [Anomaly detection: `torch.autograd.detect_anomaly`](https://pytorch.org/docs/stable/autograd.html#anomaly-detection)
# - [`torch.Tensor.is_leaf`](https://pytorch.org/docs/stable/generated/torch.Tensor.is_leaf.html) and [`torch.Tensor.retain_grad`](https://pytorch.org/docs/stable/generated/torch.Tensor.retain_grad.html)
# - [`torch.Tensor.backward` (`inputs=`)](https://pytorch.org/docs/stable/generated/torch.Tensor.backward.html)
# - [`torch.optim`: per-parameter options and `add_param_group`](https://pytorch.org/docs/stable/optim.html)
# - [`torch.overrides.TorchFunctionMode`, how the doctor watches each call](https://pytorch.org/docs/stable/notes/extending.html#extending-all-torch-api-with-modes)
#
# [Previous: 10 · Myths, tested](10_myths.ipynb) · [Next: 12 · Gradient control at scale](12_at_scale.ipynb)
