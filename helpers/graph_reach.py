"""Which nodes of a drawing the loss reaches, which its layers recorded but cut off, and which
layer made each node. Keyed by ``str(id(...))``, the names torchviz gives its nodes."""

from .autograd_walk import backward_nodes, reachable_leaves

CUT_NOTE = "(recorded, cut off from the loss)"


def _unique(tensors):
    """``tensors`` without repeats (by identity), in order."""
    kept = []
    for tensor in tensors:
        if not any(tensor is other for other in kept):
            kept.append(tensor)
    return kept


class Reach:
    """The loss's graph and what the layer ``calls`` (:class:`~helpers.layer_calls.LayerCall`)
    recorded outside it.

    A layer's output is *cut off* when its node is not in the loss's graph and no backward pass
    ran through it (an earlier pass whose backward ran, say a warm-up step, is not cut off: it
    is simply over). The walked nodes are held here, so each keeps its ``id`` while torchviz
    draws them.
    """

    def __init__(self, loss, calls=()):
        self.calls = tuple(calls)
        self.held = list(backward_nodes(loss))
        in_loss = {id(node) for node in self.held}
        self.leaves = reachable_leaves(loss)
        cut = [c for c in self.calls
               if c.node is not None and not c.backward_ran and id(c.node) not in in_loss]
        self.cut_outputs = _unique(c.output for c in cut)
        cut_nodes = [n for n in backward_nodes(*self.cut_outputs) if id(n) not in in_loss]
        self.held += cut_nodes
        self.cut_ids = {str(id(node)) for node in cut_nodes}
        self.leaf_ids = {str(id(leaf)) for leaf in self.leaves}
        self.layers = {str(id(c.node)): c.layer for c in self.calls if c.node is not None}

    def reaches_leaf(self, tensor):
        """True when the loss's graph has an ``AccumulateGrad`` node for ``tensor``."""
        return any(tensor is leaf for leaf in self.leaves)

    def op_label(self, raw, label):
        """(label, cut off?) for the backward node torchviz calls ``raw``: a layer's node is
        prefixed with the layer ("L1 AddmmBackward0"), and noted when it is cut off."""
        layer = self.layers.get(raw)
        text = f"{layer} {label}" if layer else label
        if raw not in self.cut_ids:
            return text, False
        return (f"{text}\n{CUT_NOTE}" if layer else text), True

    def unrecorded(self):
        """(layer, why) for each layer that ran but recorded nothing in any of its calls."""
        by_layer = {}
        for call in self.calls:
            by_layer.setdefault(call.layer, []).append(call)
        for layer, calls in by_layer.items():
            if all(c.node is None for c in calls):
                yield layer, "; ".join(dict.fromkeys(c.why_not for c in calls))
