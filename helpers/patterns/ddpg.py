"""Pattern 6: a DDPG update on replay batches: the critic, then the actor, then the targets."""

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..outcome import grad_state
from .core import SEED, pattern
from .ema import update_average

GAMMA, TAU, DDPG_UPDATES = 0.9, 0.1, 2


def q_value(critic, states, actions):
    """The critic's Q(state, action): it reads the two side by side."""
    return critic(torch.cat([states, actions], 1))


def policy(actor, states):
    """The actor's action for ``states``, squashed into (-1, 1)."""
    return torch.tanh(actor(states))


def ddpg_parts(seed=SEED):
    """DDPG's four networks and two replay batches.

    An actor Linear(3 -> 1) (tanh on top), a critic Linear(4 -> 1) of (state, action), their
    target copies (plain ``deepcopy``: their parameters require grad), and two batches from a
    replay buffer, each ``(states, actions, rewards, next_states)``.
    """
    torch.manual_seed(seed)
    actor, critic = nn.Linear(3, 1), nn.Linear(4, 1)
    actor_target, critic_target = copy.deepcopy(actor), copy.deepcopy(critic)
    g = torch.Generator().manual_seed(seed)
    batches = [(torch.randn(8, 3, generator=g), torch.rand(8, 1, generator=g) * 2 - 1,
                torch.randn(8, 1, generator=g), torch.randn(8, 3, generator=g))
               for _ in range(DDPG_UPDATES)]
    return actor, critic, actor_target, critic_target, batches


def ddpg_target(critic_target, actor_target, rewards, next_states, gamma=GAMMA):
    """The critic's regression target r + gamma * Q'(s', mu'(s')) (call it under no_grad)."""
    return rewards + gamma * q_value(critic_target, next_states, policy(actor_target, next_states))


@pattern("ddpg", "A DDPG update (critic, then actor, on replay batches)",
         guarded="critic_loss", must_reach=["critic"],
         must_not_reach=["actor", "actor_target", "critic_target"],
         mistakes={"zero_after_step": "each optimizer clears its grads after its step",
                   "target_graph": "target built without torch.no_grad() (target copies "
                                   "require grad)"},
         predictions={"correct": "The buffer's actions and the target, built under no_grad, carry"
                                 " no history: critic_loss reaches the critic only.",
                      "zero_after_step": "The graph is the same, the critic only. What goes wrong"
                                         " is the .grad it adds to: the actor's backward left "
                                         "gradients on the critic, and clearing after each step "
                                         "leaves them there for the critic's next backward.",
                      "target_graph": "Without no_grad the target is recorded through both target"
                                      " networks, so critic_loss reaches the critic, the "
                                      "actor_target and the critic_target."})
def ddpg_step(rec, mistake):
    """The critic regresses Q(s, a) for replay-buffer actions on a target built under
    torch.no_grad(); the actor's loss -Q(s, actor(s)) also fills the critic's .grad, so each
    optimizer clears its grads just before its own backward. Cleared after the step instead, the
    critic's next update adds the actor's leftovers; a target with a graph makes backward run
    through both target networks, whose .grad piles up.
    """
    actor, critic, actor_target, critic_target, batches = ddpg_parts()
    rec.track(actor=actor, critic=critic, actor_target=actor_target, critic_target=critic_target)
    actor_opt = rec.optimizer("actor_opt", actor)
    critic_opt = rec.optimizer("critic_opt", critic)
    late = mistake == "zero_after_step"       # each optimizer clears after its step instead
    for states, actions, rewards, next_states in batches:
        # critic update: regress Q(s, a) of the buffer's actions on a fixed target
        with torch.set_grad_enabled(mistake == "target_graph"):    # correct: no_grad
            target = ddpg_target(critic_target, actor_target, rewards, next_states)
        if not late:
            critic_opt.zero_grad()
        rec.facts["critic grad before its backward"] = grad_state(critic.weight.grad)
        critic_loss = F.mse_loss(q_value(critic, states, actions), target)
        rec.guard(critic_loss)
        own = torch.autograd.grad(critic_loss, list(critic.parameters()), retain_graph=True)
        critic_loss.backward()
        rec.snapshot()
        key = "the critic's gradient is its own loss's alone"
        rec.checks[key] = rec.checks.get(key, True) and all(
            torch.allclose(p.grad, g) for p, g in zip(critic.parameters(), own))
        critic_opt.step()
        # actor update: move the actor's action towards a higher Q. Late: the critic clears
        # after its step; else the actor clears just before its backward.
        (critic_opt if late else actor_opt).zero_grad()
        (-q_value(critic, states, policy(actor, states)).mean()).backward()  # fills both .grad
        actor_opt.step()
        if late:
            actor_opt.zero_grad()
        rec.facts["critic grad after the actor's step"] = grad_state(critic.weight.grad)
        # soft update of the target networks, under no_grad (like the EMA of pattern 3)
        with torch.no_grad():
            update_average(actor_target, actor, 1 - TAU)
            update_average(critic_target, critic, 1 - TAU)
