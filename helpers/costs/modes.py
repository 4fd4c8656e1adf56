"""One forward in each gradient mode: what notebooks 04, 05, 10 and ``make bench`` measure.

:func:`forward_in_mode` is one forward in a mode, its clock started after the mode is entered;
:func:`mode_times`, :func:`mode_memory` and :func:`mode_costs` measure it in every mode.
"""

import contextlib
import statistics
import time

import torch

from .memory import peak_memory_bytes, saved_tensor_bytes
from .models import larger_mlp
from .quiet import quiet_prototype_notice
from .timing import interleaved_ratios, timed

MODES = {
    "grad mode": contextlib.nullcontext,       # recorded
    "no_grad": torch.no_grad,
    "inference_mode": torch.inference_mode,
    "detach after": contextlib.nullcontext,    # recorded, then the output is detached
}
FORWARD_MODES = tuple(MODES)


def _check(modes):
    """Raise a ValueError naming the valid modes if one of ``modes`` is not one."""
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise ValueError(f"unknown mode {unknown[0]!r}; valid: {', '.join(FORWARD_MODES)}")


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
    memory measurements (:func:`~helpers.costs.saved_tensor_bytes`,
    :func:`~helpers.costs.peak_memory_bytes`).
    """
    _check([mode])
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    context = MODES[mode]
    detach = mode == "detach after"

    def run():
        with quiet_prototype_notice(), context():
            start = time.perf_counter()
            for _ in range(times):
                if detach:
                    model(*args).detach()
                else:
                    model(*args)
            return time.perf_counter() - start
    return run


def context_seconds(mode, entries=1000, repeats=7):
    """Median seconds to enter and leave ``mode`` once, with nothing inside (it varies).

    What :func:`forward_in_mode` keeps out of its clock, reported on its own: the median over
    ``repeats`` runs of ``entries`` empty ``with`` blocks, divided by ``entries``.
    """
    _check([mode])
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

    One :func:`forward_in_mode` timer per mode, run by
    :func:`~helpers.costs.interleaved_ratios` against ``baseline`` (one of ``modes``). Returns
    mode -> {"ratio", "median", "min", "max"}: the ratio is the median per-round time over the
    baseline's (below 1: faster than the baseline); seconds are per run of ``times`` forwards,
    the mode's entry and exit not included.
    """
    _check(modes)
    return interleaved_ratios({mode: forward_in_mode(mode, model, inputs, times)
                               for mode in modes}, baseline, repeats=repeats, warmup=warmup)


def mode_memory(model, inputs, modes=FORWARD_MODES):
    """Per mode, for one forward: ``saved_bytes`` (autograd keeps for backward, the model's own
    weights not counted) and ``peak_bytes`` (:func:`~helpers.costs.peak_memory_bytes`).
    Deterministic."""
    return {mode: {"saved_bytes": int(saved_tensor_bytes(forward_in_mode(mode, model, inputs),
                                                         exclude=model)),
                   "peak_bytes": int(peak_memory_bytes(forward_in_mode(mode, model, inputs)))}
            for mode in modes}


def mode_costs(model=None, inputs=None, batch=64, repeats=15, warmup=3, times=1):
    """What a forward of ``model(inputs)`` costs in each of :data:`FORWARD_MODES`: a plain dict.

    Default: :func:`~helpers.costs.larger_mlp` on a seeded batch of ``batch`` rows. Per mode:

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
