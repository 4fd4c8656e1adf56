"""Pattern 4: knowledge distillation from a fixed teacher."""

import torch
from torch import nn
from torch.nn import functional as F

from .core import SEED, batch, pattern

TEMPERATURE = 2.0


def distill_parts(seed=SEED):
    """A teacher (Linear 4->6, ReLU, Linear 6->3), a student Linear(4 -> 3), and inputs."""
    torch.manual_seed(seed)
    teacher = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    student = nn.Linear(4, 3)
    x, _, _ = batch(seed)
    return teacher, student, x


def distillation_loss(student_logits, teacher_logits, temperature=TEMPERATURE):
    """KL divergence between the softened distributions, times T**2 (Hinton et al.)."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature ** 2


@pattern("distillation", "Knowledge distillation from a fixed teacher", guarded="loss",
         must_reach=["student"], must_not_reach=["teacher"],
         mistakes={"teacher_graph": "teacher forward with autograd recording"},
         predictions={"correct": "The teacher runs under no_grad, so its logits are constants: "
                                 "loss reaches the student only.",
                      "teacher_graph": "With the teacher recorded, loss reaches the teacher as "
                                       "well: backward fills the teacher's .grad, although the "
                                       "optimizer holds the student only."})
def distillation_step(rec, mistake):
    """Run the teacher under torch.no_grad(): its outputs are targets. With a graph, backward
    also fills the teacher's .grad (paid for, never used, and never cleared by the student's
    optimizer).
    """
    teacher, student, x = distill_parts()
    rec.track(teacher=teacher, student=student)
    optimizer = rec.optimizer("optimizer", student)
    teacher.eval()
    with torch.set_grad_enabled(mistake is not None):   # correct: no_grad
        teacher_logits = teacher(x)
    optimizer.zero_grad()
    loss = distillation_loss(student(x), teacher_logits)
    rec.guard(loss)
    loss.backward()
    rec.snapshot()
    optimizer.step()
