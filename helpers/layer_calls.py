"""What each layer of a network recorded during one step, so its graph can name the layers.

:func:`recording_layers` puts a forward hook on every child module of a network for the length
of a ``with`` block. Each call of a layer becomes a :class:`LayerCall`: the output, when
autograd recorded it (its ``grad_fn`` is then the layer's node in the graph: "L1
AddmmBackward0"), or why it recorded nothing. A backward pass that runs through the output's
node marks the call, so a graph can tell a layer cut off from the loss from an earlier pass
whose backward already ran.
"""

import re
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


@dataclass
class LayerCall:
    """One call of a layer: its label ("L1"), its output if recorded, else why not."""

    layer: str
    output: torch.Tensor | None = None  # kept alive: its graph is drawn after the step
    node: object = None                 # output.grad_fn when the layer returned it
    why_not: str = ""                   # "" when the output was recorded
    backward_ran: list = field(default_factory=list)  # non-empty once a backward ran through it


def layer_label(name):
    """How a graph names the child module ``name``: "l1" -> "L1"; other names as they are."""
    return name.upper() if re.fullmatch(r"l\d+", name) else name


def why_nothing_recorded(module, inputs):
    """Why autograd recorded no node for a call of ``module`` on ``inputs``."""
    if torch.is_inference_mode_enabled():
        return "inference_mode was on"
    if not torch.is_grad_enabled():
        return "grad mode was off"
    used = [t for t in inputs if isinstance(t, torch.Tensor)] + list(module.parameters())
    if not any(t.requires_grad for t in used):
        return "nothing it used requires grad"
    return "its output has no grad_fn"


def _in_backward():
    """True while a backward pass runs (a checkpoint recomputing its forward, say)."""
    current = getattr(torch._C, "_current_graph_task_id", None)  # private; in torch 2.x
    return current is not None and current() != -1


@contextmanager
def recording_layers(net, calls):
    """Append a :class:`LayerCall` to ``calls`` for every call of a child module of ``net``
    in the block (calls made while a backward pass runs are left out); hooks removed after."""

    def hook_for(label, layer):
        def hook(module, inputs, output):
            # a deepcopy of the net copies this hook too: its calls are not ``layer``'s
            if module is not layer or _in_backward() or not isinstance(output, torch.Tensor):
                return
            if output.grad_fn is None:
                calls.append(LayerCall(label, why_not=why_nothing_recorded(module, inputs)))
                return
            call = LayerCall(label, output, output.grad_fn)
            ran = call.backward_ran  # the hook holds the list only: no cycle through the node
            call.node.register_prehook(lambda grads: ran.append(True))
            calls.append(call)
        return hook

    handles = [module.register_forward_hook(hook_for(layer_label(name), module))
               for name, module in net.named_children()]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()
