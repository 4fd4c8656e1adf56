"""Pattern 9: an on-policy actor-critic update, the critic trained on the live action."""

import torch
from torch import nn
from torch.nn import functional as F

from ..outcome import grad_state
from .core import SEED, pattern
from .ddpg import policy, q_value


def actor_critic_parts(seed=SEED):
    """An actor Linear(3 -> 1) (tanh on top), a critic Linear(4 -> 1), states, returns."""
    torch.manual_seed(seed)
    actor, critic = nn.Linear(3, 1), nn.Linear(4, 1)
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(8, 3, generator=g)
    return actor, critic, states, torch.randn(8, 1, generator=g)


@pattern("actor_critic", "An on-policy actor-critic update (critic on the live action)",
         guarded="critic_loss",
         must_reach=["critic"], must_not_reach=["actor"],
         mistakes={"no_detach": "critic trained on the actor's action without detach()",
                   "no_clear": "critic's grads not cleared after the actor's step"},
         predictions={"correct": "The critic's loss uses the action detached: it reaches the "
                                 "critic only.",
                      "no_detach": "The live action carries the actor's history, so critic_loss "
                                   "reaches the actor too, through a graph the actor's backward "
                                   "already freed: this backward fails.",
                      "no_clear": "The graph is the same, the critic only. The mistake is in "
                                  ".grad: the actor's backward left gradients on the critic, and "
                                  "without clearing them the critic's update adds them in."})
def actor_critic_step(rec, mistake):
    """On-policy: the critic learns Q of the action the actor just produced. The actor's
    backward goes through the critic and leaves gradients on it: clear them before the critic's
    update. The critic's loss uses that action detached, so it does not reach the actor.
    """
    actor, critic, states, returns = actor_critic_parts()
    rec.track(actor=actor, critic=critic)
    actor_opt = rec.optimizer("actor_opt", actor)
    critic_opt = rec.optimizer("critic_opt", critic)
    action = policy(actor, states)
    # actor step: move the action towards a higher Q
    actor_opt.zero_grad()
    (-q_value(critic, states, action).mean()).backward()   # fills the actor's AND critic's .grad
    actor_opt.step()
    rec.facts["critic grad after the actor's step"] = grad_state(critic.weight.grad)
    # critic step: regress Q(s, a) on the returns
    if mistake != "no_clear":
        critic_opt.zero_grad()
    rec.facts["critic grad before its backward"] = grad_state(critic.weight.grad)
    rec.checks["the critic's grads are clear before its backward"] = all(
        p.grad is None for p in critic.parameters())
    action_in = action if mistake == "no_detach" else action.detach()
    critic_loss = F.mse_loss(q_value(critic, states, action_in), returns)
    rec.guard(critic_loss)
    critic_loss.backward()
    rec.snapshot()
    critic_opt.step()
