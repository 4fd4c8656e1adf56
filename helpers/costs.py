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


def interleaved_seconds(functions, repeats=7, warmup=2):
    """Like :func:`median_seconds` for several functions, timed in turns to compare them.

    ``functions`` maps a name to a no-argument function. Each round runs every function once, in
    order, so a change in machine load during the measurement hits all of them alike; timing
    one function fully before the other would not. Returns name -> {"median", "min", "max"}.
    """
    for _ in range(warmup):
        for function in functions.values():
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: {"median": statistics.median(t), "min": min(t), "max": max(t)}
            for name, t in times.items()}


def larger_mlp(width=1024, depth=4, seed=0):
    """A bigger Linear/ReLU stack for cost measurements (the toy net is too small to time)."""
    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def peak_memory_bytes(function, *args):
    """Peak bytes PyTorch's CPU allocator holds while ``function(*args)`` runs, above the start.

    CPU has no ``torch.cuda.max_memory_allocated``; this uses the profiler instead
    (``torch.autograd.profiler.profile(profile_memory=True)``), which records every allocation
    and free of the CPU allocator with its size. The running sum of those events, in time order,
    is the memory held beyond what existed when ``function`` started; its maximum is returned.
    It counts tensor storage only: not Python objects, not the process's RSS, and not memory a
    library (MKL, oneDNN) allocates on its own. Sizes do not depend on timing, so for a given
    function and inputs the result is deterministic. ``function``'s return value is dropped
    inside the measured window, so it counts towards the peak but not after.
    The profiler's own start/stop lines (kineto writes them to file descriptor 2) are silenced.
    """
    from torch.autograd.profiler import profile

    with _quiet_stderr_fd(), profile(profile_memory=True) as prof:
        function(*args)
    cpu = torch._C._autograd.DeviceType.CPU
    events = sorted((e for e in prof.kineto_results.events()
                     if e.name() == "[memory]" and e.device_type() == cpu),
                    key=lambda e: e.start_ns())
    held = peak = 0
    for event in events:
        held += event.nbytes()
        peak = max(peak, held)
    return peak


class _quiet_stderr_fd:
    """Send file descriptor 2 to /dev/null for a moment (C++ log lines bypass sys.stderr)."""

    def __enter__(self):
        import os
        import sys

        sys.stderr.flush()
        self.saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        import os

        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


def interleaved_ratios(functions, baseline, repeats=15, warmup=3):
    """Time several functions in turns; each one's median time ratio to ``baseline``.

    ``functions`` maps a name to a no-argument function; ``baseline`` is one of the names. Each
    round runs every function once, starting with a different one each round (so none always
    runs first), and divides each time by the baseline's time *in that round*: a burst of load
    that hits one round hits numerator and denominator alike. Returns name -> {"ratio": median
    of the per-round ratios, "median": median seconds, "min", "max"}. It still varies.
    """
    if baseline not in functions:
        raise ValueError(f"baseline {baseline!r} is not one of {', '.join(functions)}")
    names = list(functions)
    for _ in range(warmup):
        for function in functions.values():
            function()
    times = {name: [] for name in names}
    ratios = {name: [] for name in names}
    for index in range(repeats):
        shift = index % len(names)
        seconds = {}
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            functions[name]()
            seconds[name] = time.perf_counter() - start
        for name in names:
            times[name].append(seconds[name])
            ratios[name].append(seconds[name] / seconds[baseline])
    return {name: {"ratio": statistics.median(ratios[name]),
                   "median": statistics.median(times[name]),
                   "min": min(times[name]), "max": max(times[name])} for name in names}


# --- one forward in each gradient mode: the costs notebook 10 and `make bench` report ----------

FORWARD_MODES = ("grad mode", "no_grad", "inference_mode", "detach after")


def forward_in_mode(mode, model, inputs, times=1):
    """A no-argument function that runs ``model(inputs)`` ``times`` times in ``mode``.

    ``mode`` is one of :data:`FORWARD_MODES`: ``"grad mode"`` (recorded), ``"no_grad"``,
    ``"inference_mode"``, or ``"detach after"`` (recorded, then the output is detached: the
    graph was built and the activations saved while the forward ran).
    """
    if mode not in FORWARD_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(FORWARD_MODES)}")

    def run():
        for _ in range(times):
            if mode == "grad mode":
                model(inputs)
            elif mode == "detach after":
                model(inputs).detach()
            elif mode == "no_grad":
                with torch.no_grad():
                    model(inputs)
            else:
                with torch.inference_mode():
                    model(inputs)
    return run


def mode_costs(model=None, inputs=None, batch=64, repeats=15, warmup=3, times=1):
    """What a forward of ``model(inputs)`` costs in each of :data:`FORWARD_MODES`: a plain dict.

    Default: :func:`larger_mlp` on a seeded batch of ``batch`` rows. Per mode:

    * ``time_ratio``: the median, over ``repeats`` rounds (after ``warmup``), of the mode's
      time divided by grad mode's time in the same round; the modes are timed in turns
      (:func:`interleaved_ratios`), ``times`` forwards per timed run. Below 1 means faster
      than grad mode. It varies from run to run.
    * ``median_seconds``: the median time of one run of ``times`` forwards. It varies.
    * ``peak_bytes``: :func:`peak_memory_bytes` of one forward (deterministic).
    * ``saved_bytes``: :func:`saved_tensor_bytes` of one forward, not counting the model's
      own weights (deterministic).

    Returns ``{"baseline": "grad mode", "repeats", "forwards_per_run", "batch", "modes":
    {mode: {...}}}``, with only str, int and float values (ready for JSON or a table).
    """
    if model is None:
        model = larger_mlp()
    if inputs is None:
        width = next(model.parameters()).shape[1]
        inputs = torch.randn(batch, width, generator=torch.Generator().manual_seed(0))
    timed = interleaved_ratios(
        {mode: forward_in_mode(mode, model, inputs, times) for mode in FORWARD_MODES},
        baseline="grad mode", repeats=repeats, warmup=warmup)
    modes = {}
    for mode in FORWARD_MODES:
        once = forward_in_mode(mode, model, inputs)
        modes[mode] = {
            "time_ratio": timed[mode]["ratio"],
            "median_seconds": timed[mode]["median"],
            "peak_bytes": int(peak_memory_bytes(once)),
            "saved_bytes": int(saved_tensor_bytes(once, exclude=model)),
        }
    return {"baseline": "grad mode", "repeats": repeats, "forwards_per_run": times,
            "batch": int(inputs.shape[0]), "modes": modes}
