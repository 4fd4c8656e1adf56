"""The broken step of notebook 11_debugging's predict-first question, and its repair.

A head replaced after the optimizer was built, and L1 run under ``torch.no_grad()``;
``version="fixed"`` is the repaired step. Outside notebook 08's comparison.
"""

import torch

from ..registry import Mechanism, Option, register
from ..toy import LEARNING_RATE

VERSIONS = {"broken": "as written", "fixed": "fixed"}


def broken_step(ctx, version="broken"):
    """The predict-first step of notebook 11 (``"broken"``) or its repair (``"fixed"``)."""
    net, x = ctx.net, ctx.x
    if version == "broken":
        optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
        net.l2 = torch.nn.Linear(3, 1)           # a fresh head, after the optimizer was built
        ctx.start_measuring()                     # "changed" compares with the new head
        with torch.no_grad():                     # meant: "do not train L1" (it never says so)
            hidden = torch.relu(net.l1(x))
    else:
        net.l2 = torch.nn.Linear(3, 1)
        ctx.start_measuring()
        optimizer = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
        hidden = torch.relu(net.l1(x))
    optimizer.zero_grad()
    ctx.loss_of(net.l2(hidden)).backward()
    optimizer.step()


BROKEN = register(Mechanism(
    name="broken",
    title="A broken training step",
    step=broken_step,
    options=(Option("version", VERSIONS, "broken", "The step as written, or fixed"),),
    notebook="11_debugging",
    summary="L1 under no_grad gets no gradient; the replaced head gets one, but the optimizer "
            "holds the old head, so it never moves.",
    in_comparison=False,
    predictions={
        "version=broken": "L1 ran under no_grad, so autograd recorded nothing there: l1.weight "
                          "and l1.bias keep .grad None. The new head gets a gradient, but "
                          "nothing moves: the optimizer was built before net.l2 was replaced and "
                          "holds the old head. Read on: the doctor finds both.",
    },
    caption=lambda o: ("the step as written: L1 under no_grad, head replaced after the optimizer"
                       if o["version"] == "broken" else "the step fixed"),
))
