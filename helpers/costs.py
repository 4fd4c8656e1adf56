"""Measuring what gradient control saves: bytes saved for backward, and run time.

Saved-tensor bytes are deterministic (counted with ``saved_tensors_hooks``), and so are peak bytes
and the operators that ran (from the profiler); times vary, so they are reported as medians of
several runs and as ratios to a baseline measured in the same run. One measurement serves
notebooks 04, 05, 10 and ``make bench``: :func:`forward_in_mode` (one forward in a gradient
mode, its clock started after the mode is entered), :func:`mode_times`, :func:`mode_memory` and
:func:`mode_costs`.
"""

import contextlib
import statistics
import time
import warnings

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
    (``torch.profiler.profile(profile_memory=True)``), which records every allocation and free
    of the CPU allocator with its size and the allocator's total after it. Its public Chrome
    trace export carries those records ("[memory]" events, ``Bytes`` and ``Total Allocated``);
    the largest total minus the total before the first record is returned. It counts tensor
    storage only: not Python objects, not the process's RSS, and not memory a library (MKL,
    oneDNN) allocates on its own. Sizes do not depend on timing, so for a given function and
    inputs the result is deterministic. ``function``'s return value is dropped inside the
    measured window, so it counts towards the peak but not after. Public API only: private
    profiler event methods differ between torch versions. The profiler's own
    start/stop lines (kineto writes them to file descriptor 2) are silenced.
    """
    import json
    import os
    import tempfile

    with _quiet_stderr_fd(), torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        function(*args)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as file:
            trace = json.load(file)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    cpu = 0  # the trace's "Device Type" of the CPU
    records = [event["args"] for event in sorted(
        (e for e in events if e.get("name") == "[memory]"
         and e.get("args", {}).get("Device Type") == cpu),
        key=lambda e: float(e["ts"]))]  # stable: records with one time keep the trace's order
    if not records:
        return 0
    start = records[0]["Total Allocated"] - records[0]["Bytes"]
    return max(0, max(record["Total Allocated"] for record in records) - start)


def operators_run(function, *args):
    """The names of the operators ``function(*args)`` ran (``"aten::addmm"``, ...), as a set.

    From the profiler's public event list, so it is deterministic: it shows *which* kernels
    ran, for instance whether a Transformer layer took its fused fast path
    (``"aten::_transformer_encoder_layer_fwd"``), whatever the timings.
    """
    with _quiet_stderr_fd(), _quiet_prototype_notice(), torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        function(*args)
    return {event.name for event in prof.events()}


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



class _quiet_prototype_notice:
    """Ignore PyTorch's one-time notice that nested tensors are a prototype API.

    The Transformer fast path converts a padded batch to a nested tensor internally and PyTorch
    then warns once per process; it is about an API this code does not call.
    """

    def __enter__(self):
        self.catcher = warnings.catch_warnings()
        self.catcher.__enter__()
        warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors")

    def __exit__(self, *exc):
        return self.catcher.__exit__(*exc)


# --- one forward in each gradient mode: what notebooks 04, 05, 10 and `make bench` measure -------

MODES = {
    "grad mode": contextlib.nullcontext,       # recorded
    "no_grad": torch.no_grad,
    "inference_mode": torch.inference_mode,
    "detach after": contextlib.nullcontext,    # recorded, then the output is detached
}
FORWARD_MODES = tuple(MODES)


def forward_in_mode(mode, model, inputs, times=1):
    """A no-argument function: run ``model(inputs)`` ``times`` times in ``mode``, return seconds.

    ``mode`` is one of :data:`FORWARD_MODES`: ``"grad mode"`` (recorded), ``"no_grad"``,
    ``"inference_mode"``, or ``"detach after"`` (recorded, then the output is detached: the
    graph was built and the activations saved while the forward ran). ``inputs`` is a tensor or
    a tuple of positional arguments. The function enters the mode, *then* starts the clock, runs
    the forwards, stops the clock and leaves the mode: the seconds it returns are the forwards'
    alone. Entering and leaving a mode costs a few microseconds (:func:`context_seconds`), which
    would blur the comparison for a tiny forward. Each output is dropped at once, so freeing a
    recorded graph is timed with the forward that built it. The same function serves the
    memory measurements (:func:`saved_tensor_bytes`, :func:`peak_memory_bytes`).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(FORWARD_MODES)}")
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    context = MODES[mode]
    detach = mode == "detach after"

    def run():
        with _quiet_prototype_notice(), context():
            start = time.perf_counter()
            for _ in range(times):
                if detach:
                    model(*args).detach()
                else:
                    model(*args)
            return time.perf_counter() - start
    return run


def timed(function):
    """``function`` as a timer: a no-argument function that runs it and returns its seconds."""
    def run():
        start = time.perf_counter()
        function()
        return time.perf_counter() - start
    return run


def interleaved_ratios(timers, baseline, repeats=15, warmup=3):
    """Run several timers in turns; each one's median time ratio to ``baseline``.

    ``timers`` maps a name to a no-argument function that does the work and returns the seconds
    it took (:func:`forward_in_mode`, or :func:`timed` around any function); ``baseline`` is one
    of the names. Each round runs every timer once, starting with a different one each round (so
    none always runs first), and divides each time by the baseline's time *in that round*: a
    burst of load that hits one round hits numerator and denominator alike. Returns name ->
    {"ratio": median of the per-round ratios, "median": median seconds, "min", "max"}. It still
    varies from run to run.
    """
    if baseline not in timers:
        raise ValueError(f"baseline {baseline!r} is not one of {', '.join(timers)}")
    names = list(timers)
    for _ in range(warmup):
        for timer in timers.values():
            timer()
    times = {name: [] for name in names}
    ratios = {name: [] for name in names}
    for index in range(repeats):
        shift = index % len(names)
        seconds = {name: timers[name]() for name in names[shift:] + names[:shift]}
        for name in names:
            times[name].append(seconds[name])
            ratios[name].append(seconds[name] / seconds[baseline])
    return {name: {"ratio": statistics.median(ratios[name]),
                   "median": statistics.median(times[name]),
                   "min": min(times[name]), "max": max(times[name])} for name in names}


def context_seconds(mode, entries=1000, repeats=7):
    """Median seconds to enter and leave ``mode`` once, with nothing inside (it varies).

    What :func:`forward_in_mode` keeps out of its clock, reported on its own: the median over
    ``repeats`` runs of ``entries`` empty ``with`` blocks, divided by ``entries``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(FORWARD_MODES)}")
    context = MODES[mode]

    def enter_and_leave():
        for _ in range(entries):
            with context():
                pass

    runs = [timed(enter_and_leave)() for _ in range(repeats)]
    return statistics.median(runs) / entries


def mode_times(model, inputs, modes=FORWARD_MODES, baseline="grad mode", times=1, repeats=15,
               warmup=3):
    """Time ``times`` forwards of ``model(inputs)`` in each of ``modes``, in turns (it varies).

    One :func:`forward_in_mode` timer per mode, run by :func:`interleaved_ratios` against
    ``baseline`` (one of ``modes``). Returns mode -> {"ratio", "median", "min", "max"}: the
    ratio is the median per-round time over the baseline's (below 1: faster than the baseline);
    seconds are per run of ``times`` forwards, the mode's entry and exit not included.
    """
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise ValueError(f"unknown mode {unknown[0]!r}; valid: {', '.join(FORWARD_MODES)}")
    return interleaved_ratios({mode: forward_in_mode(mode, model, inputs, times)
                               for mode in modes}, baseline, repeats=repeats, warmup=warmup)


def mode_memory(model, inputs, modes=FORWARD_MODES):
    """Per mode, for one forward: ``saved_bytes`` (autograd keeps for backward, the model's own
    weights not counted) and ``peak_bytes`` (:func:`peak_memory_bytes`). Deterministic."""
    return {mode: {"saved_bytes": int(saved_tensor_bytes(forward_in_mode(mode, model, inputs),
                                                         exclude=model)),
                   "peak_bytes": int(peak_memory_bytes(forward_in_mode(mode, model, inputs)))}
            for mode in modes}


def mode_costs(model=None, inputs=None, batch=64, repeats=15, warmup=3, times=1):
    """What a forward of ``model(inputs)`` costs in each of :data:`FORWARD_MODES`: a plain dict.

    Default: :func:`larger_mlp` on a seeded batch of ``batch`` rows. Per mode:

    * ``time_ratio``: from :func:`mode_times` against grad mode: the median over ``repeats``
      rounds (after ``warmup``) of the mode's time over grad mode's time in the same round,
      ``times`` forwards per timed run, the mode's entry and exit outside the clock. Below 1
      means faster than grad mode. It varies from run to run.
    * ``median_seconds``: the median time of one run of ``times`` forwards. It varies.
    * ``context_seconds``: :func:`context_seconds`, entering and leaving the mode once. It varies.
    * ``peak_bytes``, ``saved_bytes``: :func:`mode_memory` of one forward (deterministic).

    Returns ``{"baseline": "grad mode", "repeats", "forwards_per_run", "batch", "modes":
    {mode: {...}}}``, with only str, int and float values (ready for JSON or a table).
    """
    if model is None:
        model = larger_mlp()
    if inputs is None:
        width = next(model.parameters()).shape[1]
        inputs = torch.randn(batch, width, generator=torch.Generator().manual_seed(0))
    timed_modes = mode_times(model, inputs, FORWARD_MODES, "grad mode", times, repeats, warmup)
    memory = mode_memory(model, inputs)
    modes = {mode: {"time_ratio": timed_modes[mode]["ratio"],
                    "median_seconds": timed_modes[mode]["median"],
                    "context_seconds": context_seconds(mode),
                    **memory[mode]} for mode in FORWARD_MODES}
    return {"baseline": "grad mode", "repeats": repeats, "forwards_per_run": times,
            "batch": int(inputs.shape[0]), "modes": modes}


# --- a Transformer encoder: where turning autograd off changes the kernels (notebook 04) --------

def transformer_encoder(d_model=128, heads=4, layers=2, seed=0):
    """A seeded ``nn.TransformerEncoder`` (batch first, feed-forward 4 x ``d_model``), in eval().

    In eval() and with autograd off (or nothing requiring grad), PyTorch runs it on its fused
    "fast path", and skips padded tokens; see :func:`padded_batch` and :func:`fast_path_ran`.
    """
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model,
                                       batch_first=True)
    return nn.TransformerEncoder(layer, layers).eval()


def padded_batch(batch=16, tokens=64, d_model=128, padded=0.5, seed=0):
    """``(src, key_padding_mask)`` for :func:`transformer_encoder`: seeded random tokens, the
    last ``padded`` share of each sequence marked as padding (``True`` in the mask)."""
    src = torch.randn(batch, tokens, d_model, generator=torch.Generator().manual_seed(seed))
    real = tokens - int(tokens * padded)
    mask = torch.arange(tokens).expand(batch, tokens) >= real
    return src, mask


FAST_PATH_OPERATOR = "aten::_transformer_encoder_layer_fwd"


def fast_path_ran(function, *args):
    """Whether ``function(*args)`` ran a Transformer encoder layer on its fused fast path.

    Deterministic: it looks for :data:`FAST_PATH_OPERATOR` among :func:`operators_run`.
    """
    return FAST_PATH_OPERATOR in operators_run(function, *args)


def has_fastpath_switch():
    """Whether this PyTorch has ``torch.backends.mha.set_fastpath_enabled`` (added in 2.3)."""
    return hasattr(getattr(torch.backends, "mha", None), "set_fastpath_enabled")


@contextlib.contextmanager
def fastpath(enabled):
    """Turn the Transformer fast path on or off for a block, then restore the setting.

    Uses ``torch.backends.mha.set_fastpath_enabled``; on a PyTorch without it (before 2.3) the
    fast path is always allowed, so ``fastpath(True)`` does nothing and ``fastpath(False)``
    raises a RuntimeError that says so.
    """
    if not has_fastpath_switch():
        if enabled:
            yield
            return
        raise RuntimeError(f"PyTorch {torch.__version__} has no "
                           "torch.backends.mha.set_fastpath_enabled (added in 2.3)")
    mha = torch.backends.mha
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(bool(enabled))
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


@contextlib.contextmanager
def torch_threads(count):
    """Run a block with ``torch.set_num_threads(count)``, then restore the previous count.

    One thread gives steadier timings on a machine shared with other programs: several
    threads each waiting for a core slow an operator down by more than one thread does.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
