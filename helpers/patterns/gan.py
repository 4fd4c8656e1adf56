"""Pattern 5: one GAN training step, the discriminator's then the generator's."""

import torch
from torch import nn
from torch.nn import functional as F

from .core import SEED, pattern


def gan_parts(seed=SEED):
    """A generator Linear(2 -> 3), a discriminator Linear(3 -> 1), noise (8, 2), real (8, 3)."""
    torch.manual_seed(seed)
    generator = nn.Linear(2, 3)
    discriminator = nn.Linear(3, 1)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(8, 2, generator=g)
    real = torch.randn(8, 3, generator=g) + 2.0
    return generator, discriminator, noise, real


@pattern("gan", "A GAN training step", guarded="d_loss",
         must_reach=["discriminator"], must_not_reach=["generator"],
         mistakes={"no_detach": "discriminator trained on fake without detach()"},
         predictions={"correct": "fake.detach() has no history, so d_loss reaches the "
                                 "discriminator only.",
                      "no_detach": "fake carries the generator's history, so without "
                                   "detach() d_loss reaches the generator as well as the "
                                   "discriminator."})
def gan_step(rec, mistake):
    """The discriminator's step uses fake.detach(), so d_loss does not reach the generator.
    Without it d_loss fills the generator's .grad and frees its graph, and the generator's own
    backward then fails.
    """
    generator, discriminator, noise, real = gan_parts()
    rec.track(generator=generator, discriminator=discriminator)
    g_opt = rec.optimizer("g_opt", generator)
    d_opt = rec.optimizer("d_opt", discriminator)
    ones, zeros = torch.ones(8, 1), torch.zeros(8, 1)
    fake = generator(noise)
    # discriminator step
    d_opt.zero_grad()
    fake_in = fake if mistake == "no_detach" else fake.detach()
    d_loss = (F.binary_cross_entropy_with_logits(discriminator(real), ones)
              + F.binary_cross_entropy_with_logits(discriminator(fake_in), zeros))
    rec.guard(d_loss)
    d_loss.backward()
    rec.snapshot()
    d_opt.step()
    # generator step
    g_opt.zero_grad()
    g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
    g_loss.backward()
    g_opt.step()
