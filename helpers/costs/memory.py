"""Memory: the bytes autograd saves for backward, and the CPU allocator's peak."""

import torch
from torch import nn

from .trace import trace_events


class SavedBytes:
    """Counts the bytes autograd saves for backward while entered, forward by forward.

    ``with SavedBytes(exclude=model) as saved: ...`` installs ``saved_tensors_hooks`` that note
    each saved tensor's storage. A tensor saved twice (or a view of one already saved) counts
    once per forward: bytes are counted per storage. ``exclude`` is a module, a tensor, or a
    list of them; their storages (of a module: its parameters and buffers) are not counted.

    A step may run several forwards (warm-up, accumulation): :meth:`ending` wraps the function
    that closes one (a step's loss function) so that each call starts a new count.
    :attr:`totals` lists the bytes of each forward; :attr:`last` is the last forward's.
    """

    def __init__(self, exclude=()):
        self.skip = {storage.data_ptr() for storage in _storages(exclude)}
        self.forwards = [{}]

    def pack(self, tensor):
        """The pack hook: note ``tensor``'s storage in the current forward, keep the tensor."""
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.skip:
            self.forwards[-1][(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return tensor

    def ending(self, function):
        """``function`` wrapped so that each call, once it returns, ends the current forward."""
        def wrapper(*args, **kwargs):
            result = function(*args, **kwargs)
            self.forwards.append({})
            return result
        return wrapper

    @property
    def totals(self):
        """Bytes saved by each forward, in order; the open one only if it saved anything (a
        forward that raised before its loss was computed)."""
        ended = [sum(forward.values()) for forward in self.forwards[:-1]]
        return ended + ([sum(self.forwards[-1].values())] if self.forwards[-1] else [])

    @property
    def last(self):
        """Bytes saved by the last forward (0 if nothing was recorded)."""
        return self.totals[-1] if self.totals else 0

    def __enter__(self):
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda tensor: tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        return self._hooks.__exit__(*exc)


def saved_tensor_bytes(function, *args, exclude=()):
    """Bytes of the tensors autograd saves for backward while ``function(*args)`` runs.

    A tensor saved twice (or a view of one already saved) counts once: bytes are counted per
    storage. ``exclude`` is a module, a tensor, or a list of them; storages of those tensors (of
    a module: its parameters and buffers) are not counted. Autograd saves references to the
    weights themselves (a Linear whose input requires grad saves ``weight.t()``), but the weights
    exist whether or not autograd records, so ``exclude=model`` gives the *extra* memory kept
    alive for backward: activations, plus any input the graph holds on to.
    Counted while ``function`` runs, so it is deterministic: no allocator or timing involved.
    """
    with SavedBytes(exclude) as saved:
        function(*args)
    return saved.last


def _storages(items):
    """The untyped storages of ``items``: a module (parameters and buffers), a tensor, or a list."""
    if isinstance(items, (nn.Module, torch.Tensor)):
        items = [items]
    for item in items:
        if isinstance(item, nn.Module):
            for tensor in [*item.parameters(), *item.buffers()]:
                yield tensor.untyped_storage()
        elif isinstance(item, torch.Tensor):
            yield item.untyped_storage()
        else:
            raise TypeError(f"exclude takes modules and tensors, not {type(item).__name__}")


def peak_memory_bytes(function, *args):
    """Peak bytes PyTorch's CPU allocator holds while ``function(*args)`` runs, above the start.

    CPU has no ``torch.cuda.max_memory_allocated``; this uses the profiler instead
    (``torch.profiler.profile(profile_memory=True)``), which records every allocation and free
    of the CPU allocator with its size and the allocator's total after it. Its public Chrome
    trace export carries those records ("[memory]" events, ``Bytes`` and ``Total Allocated``);
    the largest total minus the total before the first record is returned. It counts tensor
    storage only: not Python objects, not the process's RSS, and not memory a library (MKL,
    oneDNN) allocates on its own. Sizes do not depend on timing, so for a given function and
    inputs the result is deterministic. ``function``'s return value is dropped inside the
    measured window, so it counts towards the peak but not after. Public API only
    (:func:`~helpers.costs.trace.trace_events`): private profiler event methods differ between
    torch versions.
    """
    events = trace_events(function, *args, profile_memory=True)
    cpu = 0  # the trace's "Device Type" of the CPU
    records = [event["args"] for event in sorted(
        (e for e in events if e.get("name") == "[memory]"
         and e.get("args", {}).get("Device Type") == cpu),
        key=lambda e: float(e["ts"]))]  # stable: records with one time keep the trace's order
    if not records:
        return 0
    start = records[0]["Total Allocated"] - records[0]["Bytes"]
    return max(0, max(record["Total Allocated"] for record in records) - start)
