"""Activation checkpointing of the toy net's first block (notebook 12_at_scale).

``torch.utils.checkpoint.checkpoint(block, x, use_reentrant=...)`` runs ``block = relu(l1(x))``
without keeping its activations and recomputes them in backward. With ``use_reentrant=True`` and
no input that requires grad, the output does not require grad: l1's parameters get no gradient,
silently here because the loss still depends on l2 (fact 46). ``use_reentrant=False`` records
the block as usual.
"""

import warnings

import torch
from torch.utils.checkpoint import checkpoint

from ..exercises import Hint, exercise
from ..outcome import params_with_grad_none
from ..registry import Mechanism, Option, register

REENTRANT = {True: "use_reentrant=True", False: "use_reentrant=False"}
INPUTS = {"no": "x plain", "yes": "x.requires_grad_()"}
NO_INPUT_GRAD = "None of the inputs have requires_grad=True"  # PyTorch's warning, reentrant only


def checkpointed_forward(net, x, use_reentrant):
    """``net.l2(relu(net.l1(x)))`` with ``relu(l1(.))`` checkpointed.

    PyTorch's warning for a reentrant checkpoint whose inputs do not require grad is silenced
    here (notebook 12 shows it on its own); any other warning passes through.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=NO_INPUT_GRAD)
        hidden = checkpoint(lambda t: torch.relu(net.l1(t)), x, use_reentrant=use_reentrant)
    return net.l2(hidden)


def checkpoint_step(ctx, use_reentrant=True, input_grad="no"):
    """zero_grad, a forward with L1 + ReLU checkpointed, backward, step."""
    x = ctx.x.requires_grad_(True) if input_grad == "yes" else ctx.x
    ctx.note("checkpointed", {"l1.weight": "yes", "l1.bias": "yes",
                              "l2.weight": "no", "l2.bias": "no"})
    ctx.sgd_step(lambda: checkpointed_forward(ctx.net, x, use_reentrant))


CHECKPOINT = register(Mechanism(
    name="checkpoint",
    title="Activation checkpointing of L1 + ReLU",
    step=checkpoint_step,
    options=(
        Option("use_reentrant", REENTRANT, True, "Which checkpoint implementation"),
        Option("input_grad", INPUTS, "no", "Does the block's input x require grad?"),
    ),
    notebook="12_at_scale",
    summary="use_reentrant=True with no input that requires grad: the block's parameters get no "
            "gradient. use_reentrant=False, or an input that requires grad, trains them.",
    in_comparison=False,
    predictions={
        "use_reentrant=True, input_grad=no":
            "The reentrant checkpoint runs the block without recording it and returns an output "
            "that requires grad only if one of its inputs does. x does not, so backward never "
            "enters the block: l1.weight and l1.bias stay None, with no error, because the loss "
            "still reaches l2.",
    },
    caption=lambda o: (f"checkpoint(use_reentrant={o['use_reentrant']}) over L1 + ReLU, "
                       + ("x requires grad" if o["input_grad"] == "yes" else "plain x")),
))


# --- Exercises of notebook 12_at_scale ------------------------------------------------------

@exercise("12.2", why="The embedding is frozen, so its output does not require grad; the "
                      "reentrant checkpoint then returns a tensor that does not require grad "
                      "either, and backward never reaches the block: 0.weight (frozen) and "
                      "1.0.weight, 1.0.bias (inside the checkpoint) stay None. Only the head, "
                      "2.weight and 2.bias, gets gradients.",
          hints=(Hint(lambda: {"0.weight"},
                      "The frozen embedding, yes; but what does a reentrant checkpoint return "
                      "when none of its inputs requires grad?"),))
def frozen_embedding_reentrant_checkpoint():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4),
                                torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh()),
                                torch.nn.Linear(4, 1))
    model[0].requires_grad_(False)
    tokens = torch.tensor([1, 5, 7])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=NO_INPUT_GRAD)
        hidden = checkpoint(model[1], model[0](tokens), use_reentrant=True)
    model[2](hidden).sum().backward()
    return params_with_grad_none(model)
