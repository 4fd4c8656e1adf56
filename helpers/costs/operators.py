"""Operators: which kernels a function ran, e.g. whether a Transformer took its fast path.

Deterministic: names from the profiler's trace, whatever the timings.
"""

import contextlib

import torch

from .quiet import quiet_prototype_notice
from .trace import trace_events

FAST_PATH_OPERATOR = "aten::_transformer_encoder_layer_fwd"


def operators_run(function, *args):
    """The names of the operators ``function(*args)`` ran (``"aten::addmm"``, ...), as a set.

    From the profiler's trace (:func:`~helpers.costs.trace.trace_events`), so it is
    deterministic: it shows *which* kernels ran, for instance whether a Transformer layer took
    its fused fast path (``"aten::_transformer_encoder_layer_fwd"``), whatever the timings.
    """
    with quiet_prototype_notice():
        events = trace_events(function, *args)
    return {event["name"] for event in events if event.get("cat") == "cpu_op"}


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
