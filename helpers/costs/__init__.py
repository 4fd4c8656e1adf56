"""Measuring what gradient control saves: bytes saved for backward, peak bytes, operators, time.

Saved-tensor bytes are deterministic (counted with ``saved_tensors_hooks``), and so are peak bytes
and the operators that ran (from the profiler); times vary, so they are reported as medians of
several runs and as ratios to a baseline measured in the same run. One measurement serves
notebooks 04, 05, 08, 10, 12 and ``make bench``. The modules, by what they measure:

- :mod:`.memory`: :func:`saved_tensor_bytes`, :class:`SavedBytes` (per forward of a step),
  :func:`peak_memory_bytes`;
- :mod:`.timing`: :func:`timed`, :func:`interleaved_ratios`, :func:`torch_threads`;
- :mod:`.operators`: :func:`operators_run`, the Transformer fast path (:func:`fast_path_ran`,
  :func:`fastpath`);
- :mod:`.modes`: one forward in each gradient mode (:func:`forward_in_mode`,
  :func:`mode_times`, :func:`mode_memory`, :func:`mode_costs`);
- :mod:`.models`: what they run on (:func:`larger_mlp`, :func:`transformer_encoder`,
  :func:`padded_batch`);
- :mod:`.trace`: the profiler's trace of one call, which :mod:`.memory` and :mod:`.operators`
  read; :mod:`.chart`: bar charts as inline SVG (notebook 10's, via ``helpers.myths``).
"""

from .memory import SavedBytes, peak_memory_bytes, saved_tensor_bytes
from .models import larger_mlp, padded_batch, transformer_encoder
from .modes import (FORWARD_MODES, MODES, context_seconds, forward_in_mode, mode_costs,
                    mode_memory, mode_times)
from .operators import (FAST_PATH_OPERATOR, fast_path_ran, fastpath, has_fastpath_switch,
                        operators_run)
from .timing import interleaved_ratios, timed, torch_threads

__all__ = ["SavedBytes", "peak_memory_bytes", "saved_tensor_bytes", "larger_mlp",
           "padded_batch", "transformer_encoder", "FORWARD_MODES", "MODES", "context_seconds",
           "forward_in_mode", "mode_costs", "mode_memory", "mode_times", "FAST_PATH_OPERATOR",
           "fast_path_ran", "fastpath", "has_fastpath_switch", "operators_run",
           "interleaved_ratios", "timed", "torch_threads"]
