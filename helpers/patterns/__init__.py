"""Gradient flow in real training code: nine small runnable patterns (notebook 09_patterns).

Each pattern is one training step of a few tiny models, written as real code would write it,
with a rule about where gradients may flow: a *guarded* tensor (usually a loss) whose graph must
reach some modules and must not reach others. ``run_pattern(name)`` runs the correct step;
``run_pattern(name, mistake)`` runs it with one classic mistake. The :class:`PatternResult`
says which parameters the guarded tensor reaches (walking its autograd graph), the ``.grad`` of
every parameter just after the backward that matters, what the step changed, the error PyTorch
raised if any, and pattern-specific checks. It draws itself (``.draw()``) and tabulates itself
(``.table()``).

One module per pattern, registered in ``PATTERNS`` in the order imported below; each also has a
public function, e.g. ``gan_step(correct=False)``. ``predict``, ``explore`` and
``summary_table`` (in ``views``) show them all. ``stop_gradient`` holds exercise 09.5.
"""

from ..autograd_walk import count_nodes, reachable_leaves
from .core import (CORRECT, PATTERNS, Pattern, PatternResult, Recorder, get_pattern,
                   reached_by, role_of, run_pattern)
from .fine_tune import fine_tune_step, transfer_parts
from .truncated_bptt import rnn_parts, truncated_bptt_step
from .ema import ema_pair, ema_step
from .distillation import distill_parts, distillation_loss, distillation_step
from .gan import gan_parts, gan_step
from .ddpg import ddpg_parts, ddpg_step, ddpg_target
from .shared_trunk import shared_trunk_step, trunk_parts
from .stopped_branch import skip_parts, stopped_branch_step
from .actor_critic import actor_critic_parts, actor_critic_step
from .stop_gradient import stop_gradient_parts
from .views import PatternSubject, explore, predict, summary_table, variant_choices

__all__ = [
    "CORRECT", "PATTERNS", "Pattern", "PatternResult", "Recorder", "get_pattern", "reached_by",
    "role_of", "run_pattern", "count_nodes", "reachable_leaves",
    "transfer_parts", "rnn_parts", "ema_pair", "distill_parts", "distillation_loss",
    "gan_parts", "ddpg_parts", "ddpg_target", "trunk_parts", "skip_parts", "actor_critic_parts",
    "stop_gradient_parts",
    "fine_tune_step", "truncated_bptt_step", "ema_step", "distillation_step", "gan_step",
    "ddpg_step", "shared_trunk_step", "stopped_branch_step", "actor_critic_step",
    "PatternSubject", "explore", "predict", "summary_table", "variant_choices",
]
