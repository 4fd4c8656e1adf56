"""Pattern 3: an exponential moving average (EMA) of the weights (and exercise 09.1)."""

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..exercises import Hint, exercise
from .core import SEED, batch, pattern, sgd

EMA_DECAY = 0.9


def ema_pair(seed=SEED):
    """A student Linear(4 -> 1) and its EMA copy (``deepcopy``, frozen), and a batch."""
    torch.manual_seed(seed)
    student = nn.Linear(4, 1)
    ema = copy.deepcopy(student).requires_grad_(False)
    x, y, _ = batch(seed)
    return student, ema, x, y


def update_average(average, model, keep):
    """``average = keep * average + (1 - keep) * model``, parameter by parameter, in place.

    Recorded by autograd unless called under ``torch.no_grad()``.
    """
    for a, p in zip(average.parameters(), model.parameters()):
        a.mul_(keep).add_(p, alpha=1 - keep)


def train_student(student, x, y):
    """One SGD step of the student on ``F.mse_loss(student(x), y)``."""
    optimizer = sgd(student)
    optimizer.zero_grad()
    F.mse_loss(student(x), y).backward()
    optimizer.step()
    return optimizer


@pattern("ema", "An exponential moving average (EMA) of the weights",
         guarded="the EMA model's output", must_reach=[], must_not_reach=["student", "ema"],
         mistakes={"no_no_grad": "EMA update outside torch.no_grad() (frozen copy)",
                   "unfrozen_no_no_grad": "EMA update outside torch.no_grad() (copy not frozen)"},
         predictions={"correct": "The update runs under no_grad, so the EMA weights have no "
                                 "history: the EMA model's output reaches no module.",
                      "no_no_grad": "Outside no_grad the in-place update of the frozen copy is "
                                    "recorded through the student's weights, so the EMA model's "
                                    "output reaches the student.",
                      "unfrozen_no_no_grad": "The step fails before the EMA model's output "
                                             "exists: outside no_grad, an in-place edit of a "
                                             "parameter that requires grad raises. So it reaches "
                                             "nothing."})
def ema_step(rec, mistake):
    """Update the EMA weights in place under torch.no_grad(). Outside it, a copy that requires
    grad refuses the in-place update; a frozen copy accepts it silently and records it, so the
    EMA model gets history back to the student.
    """
    student, ema_model, x, y = ema_pair()
    if mistake == "unfrozen_no_no_grad":
        ema_model.requires_grad_(True)           # a plain deepcopy: parameters require grad
    rec.track(student=student, ema=ema_model)
    optimizer = rec.optimizer("optimizer", student)
    optimizer.zero_grad()
    F.mse_loss(student(x), y).backward()
    rec.snapshot()
    optimizer.step()
    with torch.set_grad_enabled(mistake is not None):   # correct: no_grad
        update_average(ema_model, student, EMA_DECAY)
    rec.checks["the EMA weights have no autograd history"] = all(
        e.grad_fn is None for e in ema_model.parameters())
    rec.guard(F.mse_loss(ema_model(x), y))       # an evaluation of the EMA model


def ema_weight(update_first=False, keep=EMA_DECAY):
    """The EMA's weight after one student step and one update, in the order and decay given."""
    student, ema_model, x, y = ema_pair()
    if not update_first:
        train_student(student, x, y)
    with torch.no_grad():
        update_average(ema_model, student, keep)
    if update_first:
        train_student(student, x, y)
    return ema_model.weight.detach().clone()


@exercise("09.1", why="One SGD step on the student, then, inside torch.no_grad(), "
                      "ema = 0.9 * ema + 0.1 * student for each parameter. The EMA moves a "
                      "tenth of the way towards the updated student. Updating the EMA before "
                      "optimizer.step() averages towards the old student; swapping 0.9 and 0.1 "
                      "moves it nine tenths of the way: both give a different weight.",
          hints=(Hint(lambda: ema_weight(update_first=True),
                      "That EMA averaged the student before its step, so it still equals the "
                      "old weights. Update the EMA after optimizer.step()."),
                 Hint(lambda: ema_weight(keep=1 - EMA_DECAY),
                      "That EMA moved nine tenths of the way to the student: the old EMA keeps "
                      "the weight 0.9, the student gets 0.1.")))
def ema_weight_after_one_step():
    """Exercise 09.1: the EMA's weight after one student step and one update (decay 0.9)."""
    return ema_weight()
