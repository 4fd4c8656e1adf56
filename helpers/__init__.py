"""Gradient Flow Lab helpers: the toy network, the mechanism registry and its views."""

from .doctor import diagnose
from .exercises import check
from .explorer import explore
from .graph import draw
from .grad_table import grad_table
from .quiz import predict
from .registry import MECHANISMS, get_mechanism, run
from .toy import PARAM_NAMES, toy_batch, toy_loss, toy_net
from .truth_table import truth_table

__all__ = ["check", "diagnose", "explore", "draw", "grad_table", "predict", "MECHANISMS",
           "get_mechanism", "run", "PARAM_NAMES", "toy_batch", "toy_loss", "toy_net", "truth_table"]
__version__ = "0.1.0"
