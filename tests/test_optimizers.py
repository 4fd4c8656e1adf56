"""helpers/optimizers.py: every built-in optimizer, against plain PyTorch (notebook 06)."""

import pytest
import torch
from torch import nn

from helpers.optimizers import (accepts, builtin_optimizers, ignores_requires_grad, moves,
                                moves_at_lr_zero, names_where, survey)
from plain_toy import plain_batch, plain_net


def test_finds_every_optimizer_class_torch_optim_exports():
    expected = {name for name in dir(torch.optim)
                if isinstance(getattr(torch.optim, name), type)
                and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
                and name != "Optimizer"}
    found = builtin_optimizers()
    assert set(found) == expected
    assert {"SGD", "Adam", "AdamW", "LBFGS", "Rprop", "SparseAdam"} <= set(found)
    assert all(found[name] is getattr(torch.optim, name) for name in found)
    assert torch.optim.Optimizer not in found.values()


def test_only_muon_is_given_two_dimensional_parameters_only():
    bias, weight = torch.zeros(3), torch.zeros(3, 4)
    for name, cls in builtin_optimizers().items():
        assert accepts(cls, weight)
        assert accepts(cls, bias) == (name != "Muon")


def plain_frozen_l1_moves(make, set_to_none, warm_up=3):
    """The scenario by hand for an optimizer needing no closure and no sparse grads."""
    net, (x, y) = plain_net(), plain_batch()
    optimizer = make(net.parameters())
    for _ in range(warm_up):
        optimizer.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
    for p in net.l1.parameters():
        p.requires_grad = False
    before = net.l1.weight.detach().clone()
    for _ in range(3):
        optimizer.zero_grad(set_to_none=set_to_none)
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
    return not torch.equal(before, net.l1.weight.detach())


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Rprop"])
def test_moves_matches_a_plain_loop(name):
    cls = getattr(torch.optim, name)
    for freeze, set_to_none in (("none", True), ("zeros", False)):
        expected = plain_frozen_l1_moves(lambda ps: cls(ps), set_to_none)
        assert moves(cls, freeze)["l1.weight"] == expected, (name, freeze)


def test_lbfgs_moves_a_frozen_parameter_whose_grad_is_none_after_warm_up():
    net, (x, y) = plain_net(), plain_batch()
    optimizer = torch.optim.LBFGS(net.parameters())

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        return loss
    for _ in range(3):
        optimizer.step(closure)
    net.l1.requires_grad_(False)
    before = net.l1.weight.detach().clone()
    optimizer.step(closure)
    assert net.l1.weight.grad is None
    assert not torch.equal(before, net.l1.weight.detach())
    assert moves(torch.optim.LBFGS, "none")["l1.weight"]
    assert not moves(torch.optim.LBFGS, "none", warm_up=0)["l1.weight"]


def test_rprop_moves_at_lr_zero_and_sparse_adam_refuses_it():
    p = nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Rprop([p], lr=0.0)
    p.grad = torch.ones(3)
    optimizer.step()
    assert not torch.equal(p.detach(), torch.ones(3))
    assert moves_at_lr_zero(torch.optim.Rprop) is True
    assert moves_at_lr_zero(torch.optim.SGD) is False
    with pytest.raises(ValueError, match="Invalid learning rate"):
        torch.optim.SparseAdam([nn.Parameter(torch.ones(3))], lr=0.0)
    assert moves_at_lr_zero(torch.optim.SparseAdam).startswith("refuses: Invalid learning rate")


def test_ignores_requires_grad_detects_an_optimizer_that_reads_the_flag():
    class SkipsFrozen(torch.optim.SGD):
        """A made-up optimizer that does read requires_grad."""

        def step(self, closure=None):
            if closure is not None:
                closure()
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is not None and p.requires_grad:
                            p -= group["lr"] * p.grad
    assert not ignores_requires_grad(SkipsFrozen)
    assert ignores_requires_grad(torch.optim.SGD)


def test_moves_rejects_an_unknown_freeze():
    with pytest.raises(ValueError, match="'none' or 'zeros'"):
        moves(torch.optim.SGD, "zeroes")


def test_survey_facts_taught_in_notebook_06():
    table = survey()
    assert table.column("optimizer") == list(builtin_optimizers())
    assert names_where(table, "frozen after warm-up, grad None", "moves") == ["LBFGS"]
    assert names_where(table, "frozen from the start, grad None", "moves") == []
    assert names_where(table, "lr=0", "moves") == ["Rprop"]
    assert names_where(table, "requires_grad ignored", "yes") == list(builtin_optimizers())
    zero_movers = names_where(table, "frozen after warm-up, grad zeros", "moves")
    assert {"Adam", "AdamW", "LBFGS"} <= set(zero_movers) and "SGD" not in zero_movers


NON_DEFAULT = {"weight_decay": 0.1, "momentum": 0.9, "nesterov": True, "amsgrad": True,
               "centered": True, "maximize": True, "decoupled_weight_decay": True}


@pytest.mark.parametrize("name", [n for n in builtin_optimizers() if n != "LBFGS"])
def test_a_none_grad_is_skipped_with_non_default_options_too(name):
    """Notebooks 02, 06, 07 say every built-in optimizer but LBFGS leaves a parameter whose grad
    is None alone; the survey uses defaults, so also try every option above it accepts."""
    import inspect

    cls = builtin_optimizers()[name]
    accepted = inspect.signature(cls.__init__).parameters
    options = {k: v for k, v in NON_DEFAULT.items() if k in accepted}
    if name == "SparseAdam":
        options = {"maximize": True}
    moved = moves(cls, "none", **options)
    assert not moved["l1.weight"] and not moved["l1.bias"], (name, options)
    assert moved["l2.weight"], (name, options)   # the options did not stop training altogether
