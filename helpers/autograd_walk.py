"""The one walk over an autograd graph: every reader of ``next_functions`` goes through here."""


def backward_nodes(*roots):
    """Every backward node reachable from ``roots``, each once, depth first.

    A root is a tensor (its ``grad_fn`` is the start; ``None`` or a tensor without history
    reaches nothing) or an autograd node.
    """
    stack = [getattr(root, "grad_fn", root) for root in reversed(roots) if root is not None]
    seen = set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        yield node
        stack.extend(fn for fn, _ in node.next_functions)


def reachable_leaves(*roots):
    """The leaf tensors ``backward()`` from ``roots`` would write a ``.grad`` into, in walk order.

    They are the tensors of the ``AccumulateGrad`` nodes the walk meets.
    """
    leaves = (getattr(node, "variable", None) for node in backward_nodes(*roots))
    return [leaf for leaf in leaves if leaf is not None]


def count_nodes(*roots, kind=None):
    """How many backward nodes ``roots`` reach; only those of type ``kind`` when it is given."""
    return sum(kind is None or type(node).__name__ == kind for node in backward_nodes(*roots))
