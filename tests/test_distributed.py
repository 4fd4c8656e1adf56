"""helpers.distributed (notebook 12_at_scale): real gloo processes, results checked here.

The expectations are single-process computations written out in this file. One run of the real
scenarios serves every test of it (on Linux the processes are forked; one test runs them with
"spawn", where each imports PyTorch, which takes seconds).
"""

import multiprocessing
import socket

import pytest
import torch
from torch.nn import functional as F

from helpers import distributed
from helpers.toy import PARAM_NAMES, toy_batch, toy_net

REAL = ["average_gradients", "accumulate_without_no_sync", "accumulate_with_no_sync",
        "frozen_layer", "unused_default", "unused_find", "unused_static"]


def require_gloo():
    ok, why = distributed.available()
    if not ok:
        if distributed.in_ci():
            pytest.fail(f"torch.distributed cannot run: {why} (CI=true)", pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="module")
def ddp():
    require_gloo()
    result = distributed.run(REAL, timeout=300)
    assert not multiprocessing.active_children()
    return result


def big_batch_grads(freeze_l1=False):
    net = toy_net()
    if freeze_l1:
        net.l1.requires_grad_(False)
    x, y = toy_batch()
    F.mse_loss(net(x), y).backward()
    return {n: p.grad for n, p in net.named_parameters()}


def half_batch_grads(rank):
    net = toy_net()
    x, y = toy_batch()
    rows = slice(4 * rank, 4 * rank + 4)
    F.mse_loss(net(x[rows]), y[rows]).backward()
    return {n: p.grad for n, p in net.named_parameters()}


def test_free_port_is_bindable():
    port = distributed.free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_unknown_scenario_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: average_gradients"):
        distributed.run(["average"])
    with pytest.raises(ValueError, match="unknown scenario"):
        distributed.run([])


def test_without_gloo_skips_or_fails_under_ci(monkeypatch):
    monkeypatch.setattr(distributed, "available", lambda: (False, "no gloo in this build"))
    monkeypatch.setenv("CI", "false")
    skipped = distributed.run(["average_gradients"])
    assert skipped.skipped == "no gloo in this build" and skipped["average_gradients"] == []
    assert "skipped: no gloo in this build" in repr(skipped)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(RuntimeError, match="CI=true"):
        distributed.run(["average_gradients"])


def test_two_ranks_each_report(ddp):
    assert len(ddp["average_gradients"]) == distributed.WORLD_SIZE == 2
    assert "2 processes (gloo, 127.0.0.1)" in repr(ddp)
    with pytest.raises(ValueError, match="was not run"):
        ddp["diagnose_step"]


def test_gradients_are_averaged_across_ranks(ddp):
    big = big_batch_grads()
    for rank, result in enumerate(ddp["average_gradients"]):
        own = half_batch_grads(rank)
        for name in PARAM_NAMES:
            assert torch.allclose(result["alone"][name], own[name], atol=1e-7)
            assert torch.allclose(result["ddp"][name], big[name], atol=1e-6)
            # the mean of the two halves' gradients, computed here
            mean = (half_batch_grads(0)[name] + half_batch_grads(1)[name]) / 2
            assert torch.allclose(result["ddp"][name], mean, atol=1e-6)


def test_no_sync_skips_all_but_one_all_reduce(ddp):
    k = distributed.MICRO_BATCHES
    big = big_batch_grads()
    for without, with_ in zip(ddp["accumulate_without_no_sync"], ddp["accumulate_with_no_sync"]):
        assert without["all_reduces"] == k == 4
        assert with_["all_reduces"] == 1
        for name in PARAM_NAMES:
            assert torch.allclose(without["ddp"][name], big[name], atol=1e-6)
            assert torch.allclose(with_["ddp"][name], big[name], atol=1e-6)


def test_frozen_parameters_are_left_out(ddp):
    big = big_batch_grads(freeze_l1=True)
    for result in ddp["frozen_layer"]:
        assert result["bucket_elements"] == [3 + 1]  # l2.weight (1 x 3) and l2.bias
        assert result["ddp"]["l1.weight"] is None and result["ddp"]["l1.bias"] is None
        for name in ["l2.weight", "l2.bias"]:
            assert torch.allclose(result["ddp"][name], big[name], atol=1e-6)


def test_unused_parameter_raises_on_the_second_iteration(ddp):
    for rank, result in enumerate(ddp["unused_default"]):
        assert result["failed_at"] == 2 and result["failed_in"] == "forward"
        assert "Expected to have finished reduction in the prior iteration" in result["error"]
        assert "find_unused_parameters=True" in result["error"]
        own = half_batch_grads(rank)  # iteration 1 was never all-reduced
        for name in PARAM_NAMES:
            assert torch.allclose(result["grads"][0]["net." + name], own[name], atol=1e-7)


@pytest.mark.parametrize("scenario", ["unused_find", "unused_static"])
def test_unused_parameter_fixes(ddp, scenario):
    big = big_batch_grads()
    for result in ddp[scenario]:
        assert result["failed_at"] is None and len(result["grads"]) == 2
        for grads in result["grads"]:
            assert grads["spare.weight"] is None and grads["spare.bias"] is None
            for name in PARAM_NAMES:
                assert torch.allclose(grads["net." + name], big[name], atol=1e-6)


def test_a_failing_process_is_reported_and_nothing_is_left_running(capfd):
    require_gloo()
    with pytest.raises(RuntimeError, match="distributed run failed") as caught:
        distributed.run(["fails_on_purpose"], timeout=300)
    assert "rank 1 fails on purpose" in str(caught.value)
    assert not multiprocessing.active_children()
    out, err = capfd.readouterr()
    assert "fails on purpose" not in out + err  # the children's output went to the log


def test_timeout_stops_the_processes():
    require_gloo()
    with pytest.raises(RuntimeError, match="did not finish within 3 s"):
        distributed.run(["hangs"], timeout=3)
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("platform, method", [("linux", "fork"), ("darwin", "spawn"),
                                              ("win32", "spawn")])
def test_start_method_forks_only_on_linux(monkeypatch, platform, method):
    monkeypatch.setattr(distributed.sys, "platform", platform)
    assert distributed.start_method() == method


def test_unknown_start_method_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: 'fork', 'spawn'"):
        distributed.run(["frozen_layer"], method="forkserver")


def test_spawn_gives_the_same_results():
    """The start method used off Linux: fresh interpreters that import everything."""
    require_gloo()
    result = distributed.run(["frozen_layer"], method="spawn", timeout=300)
    assert not multiprocessing.active_children()
    big = big_batch_grads(freeze_l1=True)
    for rank_result in result["frozen_layer"]:
        assert rank_result["bucket_elements"] == [3 + 1]
        assert rank_result["ddp"]["l1.weight"] is None
        for name in ["l2.weight", "l2.bias"]:
            assert torch.allclose(rank_result["ddp"][name], big[name], atol=1e-6)
