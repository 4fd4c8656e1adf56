"""Timing: run timers in turns and report medians and ratios to a baseline (they vary)."""

import contextlib
import statistics
import time

import torch


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
    it took (:func:`~helpers.costs.forward_in_mode`, or :func:`timed` around any function);
    ``baseline`` is one of the names. Each round runs every timer once, starting with a
    different one each round (so none always runs first), and divides each time by the
    baseline's time *in that round*: a burst of load that hits one round hits numerator and
    denominator alike. Returns name -> {"ratio": median of the per-round ratios, "median":
    median seconds, "min", "max"}. It still varies from run to run.
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
