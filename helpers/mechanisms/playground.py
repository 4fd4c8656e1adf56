"""playground: combine the mechanisms in one step (notebook 08_compare_all).

Each option is an independent knob, and each knob is one sibling mechanism's own building block:

- ``freeze``: :func:`helpers.mechanisms.requires_grad.freeze_layers`
  (``requires_grad_(False)``);
- ``no_grad``: :func:`helpers.mechanisms.no_grad.layer_forward` runs L1 + ReLU under
  ``torch.no_grad()``;
- ``inference``: :func:`helpers.mechanisms.inference_mode.first_half` runs L1 + ReLU under
  ``torch.inference_mode()`` (inside the ``no_grad`` block when both are on);
- ``detach``: ``.detach()`` on L1's output (the cut of :mod:`helpers.mechanisms.detach`);
- ``optimizer``: the parameter groups of :func:`helpers.mechanisms.optimizer_subsets.param_groups`
  (every parameter, only l2 or only l1), plain SGD;
- ``edit``: :func:`helpers.mechanisms.manual_grad_edits.edit_grads_directly` on l1's grads
  between ``backward()`` and ``step()``;

and the step clears the grads first with :func:`helpers.mechanisms.zero_grad.clear_grads`.

With every knob at "none" the step is the plain training step. Some combinations raise (a loss
with nothing to differentiate; an inference tensor that L2 must save): the error is caught and
explained, as everywhere in the series.
"""

import torch

from ..exercises import exercise
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, PARAM_NAMES, toy_batch, toy_loss, toy_net
from .inference_mode import first_half
from .manual_grad_edits import edit_grads_directly, edited_params
from .no_grad import layer_forward
from .optimizer_subsets import held_lr, param_groups
from .requires_grad import freeze_layers, note_in_graph
from .zero_grad import clear_grads

FREEZE_CHOICES = {"none": "nothing frozen", "l1": "freeze l1", "l2": "freeze l2"}
NO_GRAD_CHOICES = {"none": "no", "l1": "on L1 + ReLU"}
INFERENCE_CHOICES = {"no": "no", "yes": "on L1 + ReLU"}
DETACH_CHOICES = {"none": "no", "l1": "after L1"}
OPTIMIZER_CHOICES = {"all": "all parameters", "l2": "only l2", "l1": "only l1"}
EDIT_CHOICES = {"none": "no edit", "set_none": "l1 grads set to None"}


def playground_forward(net, x, no_grad="none", inference="no", detach="none"):
    """The toy forward with L1 + ReLU optionally under no_grad and/or inference_mode, and its
    output optionally detached, before L2."""
    def first(inputs):  # L1 + ReLU, in inference mode if asked (notebook 05's building block)
        return first_half(net, inputs, "l1" if inference == "yes" else "none")

    hidden = layer_forward(first, x, no_grad == "l1")  # notebook 04's building block
    if detach == "l1":
        hidden = hidden.detach()  # notebook 03's cut
    return net.l2(hidden)


def playground_step(ctx, freeze="none", no_grad="none", inference="no", detach="none",
                    optimizer="all", edit="none"):
    """Freeze, build the optimizer over a subset, clear, forward, backward, edit, step."""
    net = ctx.net
    freeze_layers(net, freeze)
    opt = torch.optim.SGD(param_groups(net, optimizer), lr=LEARNING_RATE)
    ctx.note("in optimizer", {n: "yes" if held_lr(opt, p) is not None
                              else "no" for n, p in net.named_parameters()})
    clear_grads(net, opt, "optimizer")
    loss = ctx.loss_of(playground_forward(net, ctx.x, no_grad, inference, detach))
    note_in_graph(ctx, loss)
    loss.backward()
    if edit != "none":
        edit_grads_directly(edited_params(net, "l1"), edit)
    opt.step()


PLAYGROUND = register(Mechanism(
    name="playground",
    title="Playground: combine the mechanisms",
    step=playground_step,
    options=(
        Option("freeze", FREEZE_CHOICES, "none", "requires_grad_(False) on a layer (02)"),
        Option("no_grad", NO_GRAD_CHOICES, "none", "Run L1 + ReLU under torch.no_grad() (04)"),
        Option("inference", INFERENCE_CHOICES, "no",
               "Run L1 + ReLU under torch.inference_mode() (05)"),
        Option("detach", DETACH_CHOICES, "none", "Call .detach() on L1's output (03)"),
        Option("optimizer", OPTIMIZER_CHOICES, "all", "Which parameters SGD is given (06)"),
        Option("edit", EDIT_CHOICES, "none",
               "Set l1's grads to None between backward() and step() (07)"),
    ),
    notebook="08_compare_all",
    summary="Mechanisms combine: with the plain SGD used here, a parameter moves only if it "
            "gets a gradient and the optimizer holds it (not every optimizer skips a None "
            "grad: LBFGS does not, notebook 06). Some mixes leave nothing to differentiate, or "
            "feed L2 an inference tensor: those raise.",
))


# --- Exercises of notebook 08_compare_all ---------------------------------------------------
# Each computes the expected answer with plain PyTorch.

@exercise("08.1", why="SGD does not look at requires_grad, only at .grad: it skips l1.bias "
                      "(grad None) but not l1.weight, whose grad of zeros gets weight decay "
                      "added (0.1 * weight), so the frozen weight moves; l2 trains as usual. "
                      "{l2.weight, l2.bias} would be right without the weight decay, or with "
                      "the grad left None.")
def _moved_with_l1_frozen_and_a_zero_grad_under_weight_decay():
    net = toy_net()
    x, y = toy_batch()
    net.l1.requires_grad_(False)
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, weight_decay=0.1)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    optimizer.zero_grad()
    toy_loss(net(x), y).backward()
    net.l1.weight.grad = torch.zeros_like(net.l1.weight)
    optimizer.step()
    return {n for n, p in net.named_parameters() if not torch.equal(before[n], p)}


@exercise("08.2", why="Under no_grad, L1 and the ReLU save nothing. L2 saves its input, the "
                      "ReLU output (32 x 3 floats = 384 bytes); the MSE loss saves the output "
                      "and the target (32 x 1 floats each = 256 bytes): 640 bytes. 160 is the "
                      "matrix's count for the batch of 8; 1152 would also count x (512 bytes), "
                      "which L1 keeps only when it is recorded.")
def _saved_bytes_l1_under_no_grad():
    from ..costs import saved_tensor_bytes

    net = toy_net()
    x, y = torch.zeros(32, 4), torch.zeros(32, 1)   # the values do not change the bytes

    def forward():
        with torch.no_grad():
            hidden = torch.relu(net.l1(x))
        toy_loss(net.l2(hidden), y)
    return saved_tensor_bytes(forward, exclude=net)


@exercise("08.3", why="BatchNorm updates its statistics in train() whatever the gradient mode: "
                      "the no_grad, the inference_mode and the plain forward count, the forward "
                      "in eval() does not: 3. 1 or 2 would mean no_grad or inference_mode "
                      "stopped the update (they only switch recording); 4 would mean eval() "
                      "did not.")
def _batchnorm_batches_tracked():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.Linear(8, 1))
    x, _ = toy_batch()
    with torch.no_grad():
        model(x)
    model.eval()
    model(x)
    model.train()
    with torch.inference_mode():
        model(x)
    model(x)
    return int(model[1].num_batches_tracked)


__all__ = ["PLAYGROUND", "playground_forward", "playground_step", "PARAM_NAMES"]
