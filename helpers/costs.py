"""Measuring what gradient control saves: bytes saved for backward, and run time.

Saved-tensor bytes are deterministic (counted with ``saved_tensors_hooks``); times vary, so they
are reported as medians of several runs and as ratios to a baseline measured in the same run.
"""

import statistics
import time

import torch
from torch import nn


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
    skip = {storage.data_ptr() for storage in _storages(exclude)}
    seen = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[(storage.data_ptr(), storage.nbytes())] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function(*args)
    return sum(seen.values())


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


def median_seconds(function, repeats=7, warmup=2):
    """Median, min and max wall time of ``function()`` over ``repeats`` runs, after warm-up."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def larger_mlp(width=1024, depth=4, seed=0):
    """A bigger Linear/ReLU stack for cost measurements (the toy net is too small to time)."""
    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 1))
