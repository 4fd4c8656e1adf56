"""Activation checkpointing (notebook 12_at_scale) against plain PyTorch written out here."""

import itertools
import warnings

import pytest
import torch
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

import helpers
from helpers.exercises import check
from helpers.toy import PARAM_NAMES, toy_batch, toy_net


def plain_checkpoint_grads(use_reentrant, input_grad):
    net = toy_net()
    x, y = toy_batch()
    if input_grad == "yes":
        x.requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = checkpoint(lambda t: torch.relu(net.l1(t)), x, use_reentrant=use_reentrant)
    F.mse_loss(net.l2(h), y).backward()
    return {n: p.grad for n, p in net.named_parameters()}


@pytest.mark.parametrize("use_reentrant,input_grad",
                         list(itertools.product([True, False], ["no", "yes"])))
def test_checkpoint_matches_plain_pytorch(use_reentrant, input_grad):
    outcome = helpers.run("checkpoint", use_reentrant=use_reentrant, input_grad=input_grad)
    grads = plain_checkpoint_grads(use_reentrant, input_grad)
    none = [n for n in PARAM_NAMES if grads[n] is None]
    assert outcome.grads_none() == none
    assert none == (["l1.weight", "l1.bias"] if use_reentrant and input_grad == "no" else [])
    plain = toy_net()
    x, y = toy_batch()
    F.mse_loss(plain(x), y).backward()
    for name, p in plain.named_parameters():  # checkpointing never changes a gradient it gives
        if grads[name] is not None:
            assert torch.allclose(grads[name], p.grad, atol=1e-7)


def test_checkpoint_step_emits_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        helpers.get_mechanism("checkpoint").run(use_reentrant=True, input_grad="no")


def test_exercise_12_2():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4),
                                torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh()),
                                torch.nn.Linear(4, 1))
    model[0].requires_grad_(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hidden = checkpoint(model[1], model[0](torch.tensor([1, 5, 7])), use_reentrant=True)
    model[2](hidden).sum().backward()
    none = {n for n, p in model.named_parameters() if p.grad is None}
    assert none == {"0.weight", "1.0.weight", "1.0.bias"}
    assert check("12.2", none)
    assert not check("12.2", {"0.weight"})
