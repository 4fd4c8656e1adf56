"""Gradient Flow Lab helpers: the toy network, the mechanism registry and its views.

Notebooks import only names listed in ``__all__``. The light core below is imported at once;
the rest (larger modules such as the doctor, the comparison or the patterns) loads on first use,
so a kernel holds only what its notebook touches.
"""

import importlib

from .exercises import check
from .explorer import explore
from .graph import draw
from .grad_table import grad_table
from .quiz import predict
from .registry import MECHANISMS, get_mechanism, run
from .toy import PARAM_NAMES, toy_batch, toy_loss, toy_net
from .truth_table import truth_table

# Modules a notebook uses as a namespace (``helpers.costs.saved_tensor_bytes``), loaded lazily.
LAZY_MODULES = ("bug_lab", "bugs", "compare", "costs", "custom_grad", "distributed", "grad_flow",
                "myths", "optimizers", "patterns")
# Single names, loaded lazily: name -> the module (relative to this package) that defines it.
LAZY_NAMES = {
    "diagnose": "doctor",
    "ZERO_GRAD_CALLS": "mechanisms.zero_grad",
    "multiples_table": "mechanisms.zero_grad",
    "edit_norms_table": "mechanisms.manual_grad_edits",
    "accumulation_table": "mechanisms.accumulation",
    "accumulation_distances": "mechanisms.accumulation",
    "format_distance": "mechanisms.accumulation",
    "trick_table": "mechanisms.custom_gradients",
    "graph_legend": "graph",
}

__all__ = ["check", "explore", "draw", "grad_table", "predict", "MECHANISMS", "get_mechanism",
           "run", "PARAM_NAMES", "toy_batch", "toy_loss", "toy_net", "truth_table",
           *LAZY_MODULES, *LAZY_NAMES]
__version__ = "0.1.0"


def __getattr__(name):
    """Load a lazy module or name on first use (PEP 562)."""
    if name in LAZY_MODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in LAZY_NAMES:
        value = getattr(importlib.import_module(f".{LAZY_NAMES[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}; "
                             f"it offers: {', '.join(sorted(__all__))}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
