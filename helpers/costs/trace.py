"""The profiler's trace of one call, as plain event dicts: what :mod:`.memory` and
:mod:`.operators` read. Public API only (``torch.profiler.profile``, ``export_chrome_trace``)."""

import json
import os
import tempfile

import torch

from .quiet import quiet_stderr_fd


def trace_events(function, *args, profile_memory=False):
    """Run ``function(*args)`` under the CPU profiler; return its Chrome-trace events (dicts).

    Operators are the events with ``"cat": "cpu_op"``; with ``profile_memory=True`` every
    allocation and free of the CPU allocator is a ``"[memory]"`` event. Reading the exported
    trace builds no per-event Python objects (``prof.events()`` builds a tree of them, in
    reference cycles that live until the garbage collector's next full pass). The profile object
    refers to itself too (its action table holds its own bound methods), so once the trace is
    written its recorder is dropped: the recorded data is freed now, not at that pass. The
    profiler's own start/stop lines (kineto writes them to file descriptor 2) are silenced.
    """
    with quiet_stderr_fd(), torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            profile_memory=profile_memory) as prof:
        function(*args)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        prof.export_chrome_trace(path)
        prof.profiler = None  # free the recording now (see above); the trace is on disk
        with open(path, encoding="utf-8") as file:
            trace = json.load(file)
    return trace["traceEvents"] if isinstance(trace, dict) else trace
