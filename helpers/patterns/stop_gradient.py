"""Exercise 09.5: a stop-gradient on the wrong branch (why is the encoder's grad None?).

A BYOL-style step: the target comes from a slowly moving copy of the encoder under
``torch.no_grad()``, the online branch runs the encoder and a predictor. Here a ``.detach()``
also landed on the online branch, so the encoder gets no gradient. The expected answer is found
by running the step with each suspect removed, not written down.
"""

import contextlib
import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..exercises import Hint, exercise
from .core import SEED, sgd

CAUSES = {"a": "the .detach() on the online branch",
          "b": "the torch.no_grad() block around the target branch",
          "c": "an optimizer that holds only the predictor's parameters"}


def stop_gradient_parts(seed=SEED):
    """An encoder Linear(4 -> 4), a predictor Linear(4 -> 4), the encoder's frozen copy (the
    target encoder), and two views of a batch, each (8, 4)."""
    torch.manual_seed(seed)
    encoder, predictor = nn.Linear(4, 4), nn.Linear(4, 4)
    target_encoder = copy.deepcopy(encoder).requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    view1, view2 = torch.randn(2, 8, 4, generator=generator)
    return encoder, predictor, target_encoder, view1, view2


def encoder_grad(no_grad_target=True, detach_online=True, predictor_only=True):
    """``encoder.weight.grad`` after the exercise's step, with any suspect switched off."""
    encoder, predictor, target_encoder, view1, view2 = stop_gradient_parts()
    optimizer = sgd(predictor) if predictor_only else sgd(encoder, predictor)
    with torch.no_grad() if no_grad_target else contextlib.nullcontext():
        target = target_encoder(view2)
    features = encoder(view1)
    online = predictor(features.detach() if detach_online else features)
    optimizer.zero_grad()
    (-F.cosine_similarity(online, target).mean()).backward()
    return encoder.weight.grad


def causes_of_none():
    """The suspects whose removal alone gives the encoder a gradient."""
    assert encoder_grad() is None
    switched = {"a": {"detach_online": False}, "b": {"no_grad_target": False},
                "c": {"predictor_only": False}}
    return {letter for letter, change in switched.items() if encoder_grad(**change) is not None}


@exercise("09.5", why="The .detach() on the online branch cuts the only path from the loss to "
                      "the encoder (a). The no_grad() block covers the target encoder, a "
                      "separate copy; the optimizer decides what moves, not what gets a "
                      "gradient.",
          hints=(Hint(lambda: "b", "Take the torch.no_grad() block away and run again: "
                                   "encoder.weight.grad stays None. That block runs the target "
                                   "encoder, a separate copy; look at the online branch."),
                 Hint(lambda: "c", "Build the optimizer over both modules and run again: "
                                   "encoder.weight.grad stays None. backward() fills .grad "
                                   "for what it reaches, whatever the optimizer holds.")))
def why_encoder_grad_is_none():
    """Exercise 09.5: the one letter whose removal gives the encoder a gradient."""
    (letter,) = causes_of_none()
    return letter
