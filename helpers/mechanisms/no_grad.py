"""no_grad: run part (or all) of the forward pass without autograd recording it.

Taught in notebooks/04_no_grad. Inside ``torch.no_grad()`` nothing is recorded and nothing is
saved for backward: new results have ``requires_grad=False`` and no ``grad_fn`` (a view of a
tensor that requires grad keeps the flag, but is linked to nothing). The step below runs
the toy forward with L1, L2, both or neither under ``no_grad`` and then tries the usual
backward and SGD step.
"""

import contextlib
import copy

import torch

from ..costs import saved_tensor_bytes
from ..exercises import Hint, exercise
from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE, toy_batch, toy_net

# Which layers of the toy net run under torch.no_grad() for each option value.
LAYERS_UNDER_NO_GRAD = {"none": (), "l1": ("l1",), "l2": ("l2",), "all": ("l1", "l2")}
# The graph's title for each option value: what was recorded, in words.
CAPTIONS = {
    "none": "plain step (nothing under no_grad)",
    "l1": "L1 under no_grad: L1 and the ReLU record nothing",
    "l2": "L2 under no_grad: L1 recorded, L2 records nothing",
    "all": "whole forward under no_grad: nothing recorded",
}


def layer_forward(layer, inputs, under_no_grad):
    """``layer(inputs)``, run under ``torch.no_grad()`` when ``under_no_grad`` is true."""
    if under_no_grad:
        with torch.no_grad():
            return layer(inputs)
    return layer(inputs)


def describe_result(tensor):
    """How autograd sees a result: ``"grad_fn AddmmBackward0"`` or ``"no grad_fn"``."""
    if tensor.grad_fn is None:
        return f"no grad_fn (requires_grad={tensor.requires_grad})"
    return f"grad_fn {type(tensor.grad_fn).__name__}"


def forward_with_no_grad(ctx, over="l1"):
    """The toy forward L1 -> ReLU -> L2 with the layers named by ``over`` under ``no_grad``.

    ``over`` is "none", "l1", "l2" or "all" ("all" wraps the whole forward in one block, as an
    evaluation loop would). Notes, per parameter, whether its layer ran under ``no_grad`` and
    what autograd recorded for that layer's output.
    """
    under = LAYERS_UNDER_NO_GRAD[over]
    if over == "all":
        with torch.no_grad():
            hidden = ctx.net.l1(ctx.x)
            output = ctx.net.l2(torch.relu(hidden))
    else:
        hidden = layer_forward(ctx.net.l1, ctx.x, "l1" in under)
        output = layer_forward(ctx.net.l2, torch.relu(hidden), "l2" in under)
    for layer, result in (("l1", hidden), ("l2", output)):
        names = (f"{layer}.weight", f"{layer}.bias")
        ctx.note("under no_grad", {n: "yes" if layer in under else "no" for n in names})
        ctx.note("layer output", {n: describe_result(result) for n in names})
    return output


def no_grad_step(ctx, no_grad_over="l1"):
    """zero_grad, forward with some layers under no_grad, backward, SGD step.

    When the output does not depend on anything recorded ("l2", "all"), ``backward()`` raises
    "element 0 of tensors does not require grad and does not have a grad_fn".
    """
    ctx.sgd_step(lambda: forward_with_no_grad(ctx, no_grad_over))


NO_GRAD = register(Mechanism(
    name="no_grad",
    title="torch.no_grad(): do not record this part of the forward",
    step=no_grad_step,
    options=(
        Option("no_grad_over",
               {"none": "nothing", "l1": "L1 only", "l2": "L2 only", "all": "whole forward"},
               "l1", "Which part of the forward runs inside `with torch.no_grad():`?"),
    ),
    notebook="04_no_grad",
    summary="Layers run under no_grad are not recorded: their parameters get no gradient. If "
            "the output itself is computed under no_grad, backward() has nothing to run.",
    predictions={
        "no_grad_over=none": "Nothing ran under no_grad: this is the plain step, and every "
                             "parameter gets a gradient.",
        "no_grad_over=l1": "L1 ran under no_grad, so its output h has no grad_fn: nothing "
                           "links the loss back to l1's parameters. L2 was recorded, so its "
                           "parameters get their usual gradients.",
        "no_grad_over=l2": "L2 ran under no_grad, so the output has no grad_fn: the loss "
                           "depends on nothing recorded and backward() raises before any "
                           "gradient is written. L1 was recorded, but nothing links it to the "
                           "loss.",
        "no_grad_over=all": "The whole forward ran under no_grad: nothing was recorded, the "
                            "loss has no grad_fn and backward() raises. Every grad stays None.",
    },
    caption=lambda o: CAPTIONS[o["no_grad_over"]],
))


# Exercises of notebook 04 ---------------------------------------------------------------

def nesting_flags(record_u_from_w=False):
    """(z, v, u).requires_grad; ``record_u_from_w`` is the mistake "enable_grad records u"."""
    w = torch.ones(3, requires_grad=True)
    with torch.no_grad():
        z = w * 2
        v = w[:2]
        with torch.enable_grad():
            u = (w * 2 if record_u_from_w else z) * 3
    return (z.requires_grad, v.requires_grad, u.requires_grad)


exercise("04.1", why="z = w * 2 is a new result computed under no_grad: it does not require "
                     "grad. v = w[:2] is a view of w, and a view keeps w's flag even under "
                     "no_grad (it has no grad_fn, though). u: enable_grad() turns recording "
                     "back on, but an op is recorded only if an input requires grad, and z "
                     "does not.",
         hints=(Hint(lambda: nesting_flags(record_u_from_w=True),
                     "enable_grad() turns recording on, but what are u's inputs, and does "
                     "either of them require grad?"),
                Hint(lambda: (False, False, False),
                     "v = w[:2] is not a new result: it is a view of w. What does a view "
                     "keep from the tensor it looks into?")))(nesting_flags)


@exercise("04.2", why="L1 and the ReLU record nothing (the ReLU's input does not require "
                      "grad). L2 is recorded, because l2.weight requires grad, and keeps its "
                      "input, the ReLU output: 20x3 floats x 4 bytes = 240 bytes.",
          hints=(
              Hint(lambda: l1_no_grad_saved_bytes(l1_under_no_grad=False),
                   "That is the whole forward in grad mode. With L1 under no_grad, which ops "
                   "are still recorded?"),
              Hint(lambda: 0, "L2 runs outside the block and l2.weight requires grad, so L2 "
                              "is recorded. What must it keep to compute l2.weight's gradient?"),
              Hint(lambda: l1_no_grad_saved_bytes(l1_under_no_grad=False, rows=8),
                   "That is the toy batch of 8 rows in grad mode. Here the batch has 20 rows, "
                   "and L1 runs under no_grad.")))
def l1_no_grad_saved_bytes(l1_under_no_grad=True, rows=20):
    """Bytes the toy forward saves for backward (weights excluded), L1 under no_grad."""
    net = toy_net()
    inputs = torch.randn(rows, 4, generator=torch.Generator().manual_seed(0))

    def forward():
        with torch.no_grad() if l1_under_no_grad else contextlib.nullcontext():
            hidden = net.l1(inputs)
        net.l2(torch.relu(hidden))

    return saved_tensor_bytes(forward, exclude=net)


EMA_HINTS = (Hint(lambda: ema_after_one_step(ema_before_step=True),
                  "That is the starting weight: update the EMA after optimizer.step()."),
             Hint(lambda: ema_after_one_step(copy_instead=True),
                  "That is net's stepped weight: the EMA keeps 0.9 of its own old value."))


@exercise("04.3", hints=EMA_HINTS, why="An EMA update is an in-place edit of parameters that "
          "require grad: it must run under torch.no_grad(). With decay 0.9 after one SGD step "
          "of lr 0.1, the EMA weight is w0 - 0.01 * grad.")
def ema_after_one_step(ema_before_step=False, copy_instead=False):
    """ema.l1.weight after one SGD step of net and an EMA update of decay 0.9."""
    net = toy_net()
    ema = copy.deepcopy(net)
    x, y = toy_batch()
    optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    torch.nn.functional.mse_loss(net(x), y).backward()
    if not ema_before_step:
        optimizer.step()
    with torch.no_grad():
        for ema_p, p in zip(ema.parameters(), net.parameters()):
            if copy_instead:
                ema_p.copy_(p)
            else:
                ema_p.mul_(0.9).add_(p, alpha=0.1)
    return ema.l1.weight.detach().clone()


def normalized_weight_grads_none(under_no_grad=True):
    """Names whose grad is None after the unit-row-normalized L1 step (exercise 04.4)."""
    net = toy_net()
    x, y = toy_batch()
    with torch.no_grad() if under_no_grad else contextlib.nullcontext():
        w = net.l1.weight / net.l1.weight.norm(dim=1, keepdim=True)
    hidden = torch.relu(x @ w.t() + net.l1.bias)
    torch.nn.functional.mse_loss(net.l2(hidden), y).backward()
    return {name for name, p in net.named_parameters() if p.grad is None}


def why_normalized_weight_grad_is_none():
    """The letter of the cause, checked against PyTorch: only l1.weight loses its grad, and
    only because the normalization ran under no_grad."""
    assert normalized_weight_grads_none() == {"l1.weight"}
    assert normalized_weight_grads_none(under_no_grad=False) == set()
    return "b"


exercise("04.4", why="The division ran under no_grad, so w is a new result with no grad_fn: "
                     "nothing links the loss back to l1.weight. l1.bias is added outside the "
                     "block, with recording on, so it gets its gradient.",
         hints=(Hint(lambda: "a",
                     "A copy made with recording on passes gradients back (try "
                     "net.l1.weight.clone() outside the block). What is different here?"),
                Hint(lambda: "c",
                     "The ReLU passes gradients to both: l1.bias gets one. Look at where w "
                     "was computed.")))(why_normalized_weight_grad_is_none)
