"""helpers.costs: the one measurement notebooks 04, 05, 10 and `make bench` share.

No timing thresholds: clocks are replaced by fake ones where a number is checked, and real
timings are checked only for their structure (keys, a baseline's ratio of exactly 1). Bytes and
operator names are deterministic, and each expectation is counted by hand or taken from plain
PyTorch, never from the helper under test.
"""

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import costs

FLOAT = 4  # bytes per float32
ROOT = Path(__file__).resolve().parent.parent


def plain_net():
    """The toy net rebuilt by hand: Linear(4, 3), ReLU, Linear(3, 1), seed 0."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))


def plain_batch():
    return torch.randn(8, 4, generator=torch.Generator().manual_seed(0))


class FakeClock:
    """A perf_counter that returns 0, 1, 2, ... and notes the grad mode at each reading."""

    def __init__(self):
        self.now = -1.0
        self.modes = []

    def __call__(self):
        self.now += 1.0
        self.modes.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(time, "perf_counter", fake)
    return fake


# ----- forward_in_mode: the forwards in the mode, the clock inside it ---------------------------

def test_forward_in_mode_runs_each_mode():
    net = plain_net()
    x = plain_batch()
    calls = []
    net.register_forward_hook(lambda module, args, out: calls.append(
        (torch.is_grad_enabled(), torch.is_inference_mode_enabled(), out.grad_fn is not None)))
    for mode in costs.FORWARD_MODES:
        seconds = costs.forward_in_mode(mode, net, x, times=2)()
        assert isinstance(seconds, float) and seconds >= 0
    assert calls == [(True, False, True)] * 2 + [(False, False, False)] * 2 + \
        [(False, True, False)] * 2 + [(True, False, True)] * 2
    assert costs.FORWARD_MODES == ("grad mode", "no_grad", "inference_mode", "detach after")
    with pytest.raises(ValueError, match="unknown mode 'eval'; valid: grad mode, no_grad"):
        costs.forward_in_mode("eval", net, x)


def test_forward_in_mode_reads_the_clock_inside_the_mode(clock):
    """Entering and leaving the mode happen outside the timed region (the old helpers timed
    `with torch.no_grad(): model(x)` as a whole)."""
    net = plain_net()
    seconds = costs.forward_in_mode("no_grad", net, plain_batch(), times=3)()
    assert clock.modes == [(False, False), (False, False)]    # both readings inside no_grad
    assert seconds == 1.0                                       # one tick: start, stop
    clock.modes.clear()
    costs.forward_in_mode("inference_mode", net, plain_batch())()
    assert clock.modes == [(False, True), (False, True)]


def test_forward_in_mode_takes_positional_arguments_as_a_tuple():
    seen = []

    def model(a, b, c):
        seen.append((a, b, c))
        return torch.zeros(1)

    costs.forward_in_mode("no_grad", model, (1, None, 3))()
    assert seen == [(1, None, 3)]


def test_detach_after_detaches_the_output_of_a_recorded_forward():
    outputs = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(2))

        def forward(self, x):
            out = self.w * x
            outputs.append(out)
            return out

    costs.forward_in_mode("detach after", Recorder(), torch.ones(2))()
    assert outputs[0].grad_fn is not None          # the forward itself was recorded


# ----- timers and interleaving ------------------------------------------------------------------

def test_timed_runs_once_and_returns_the_clock_difference(clock):
    calls = []
    assert costs.timed(lambda: calls.append(1))() == 1.0
    assert calls == [1]


def test_interleaved_ratios_with_fixed_timers():
    calls = []

    def timer(name, seconds):
        def run():
            calls.append(name)
            return seconds.pop(0)
        return run

    # warm-up (1 round), then 4 rounds; per round the long one takes 3x, 2x, 4x, 3x the short
    short = [9.0, 1.0, 2.0, 1.0, 2.0]
    long = [9.0, 3.0, 4.0, 4.0, 6.0]
    result = costs.interleaved_ratios({"short": timer("short", short),
                                       "long": timer("long", long)},
                                      baseline="short", repeats=4, warmup=1)
    assert result["short"] == {"ratio": 1.0, "median": 1.5, "min": 1.0, "max": 2.0}
    assert result["long"] == {"ratio": 3.0, "median": 4.0, "min": 3.0, "max": 6.0}
    # warm-up in order, then rounds that start with a different timer each time
    assert calls == ["short", "long", "short", "long", "long", "short", "short", "long",
                     "long", "short"]
    with pytest.raises(ValueError, match="baseline 'x' is not one of a"):
        costs.interleaved_ratios({"a": lambda: 1.0}, baseline="x")


def test_context_seconds_divides_by_the_entries(clock):
    assert costs.context_seconds("no_grad", entries=4, repeats=3) == 1.0 / 4
    with pytest.raises(ValueError, match="unknown mode 'off'"):
        costs.context_seconds("off")


def test_mode_times_structure():
    net = plain_net()
    result = costs.mode_times(net, plain_batch(), modes=("grad mode", "no_grad"),
                              baseline="no_grad", times=2, repeats=3, warmup=1)
    assert list(result) == ["grad mode", "no_grad"]
    assert result["no_grad"]["ratio"] == 1.0                   # x / x, exactly
    for stats in result.values():
        assert 0 < stats["min"] <= stats["median"] <= stats["max"]
    with pytest.raises(ValueError, match="unknown mode 'eval'"):
        costs.mode_times(net, plain_batch(), modes=("eval",))
    with pytest.raises(ValueError, match="baseline 'inference_mode'"):
        costs.mode_times(net, plain_batch(), modes=("grad mode",), baseline="inference_mode")


# ----- memory -----------------------------------------------------------------------------------

def test_peak_memory_bytes_counts_allocations_by_hand():
    assert costs.peak_memory_bytes(lambda: torch.ones(1000)) == 1000 * FLOAT

    def two_alive_then_one():
        a = torch.ones(100)
        b = torch.ones(50)
        del a, b
        return torch.ones(120)

    assert costs.peak_memory_bytes(two_alive_then_one) == 150 * FLOAT
    assert costs.peak_memory_bytes(lambda: None) == 0


def test_peak_memory_bytes_uses_no_private_profiler_api():
    """`start_ns()` arrived in torch 2.4 and `torch._C` is private: notebooks 05 and 10 failed on
    2.2 and 2.3. The helper reads the profiler's public event list only."""
    modules = sorted(Path(costs.__file__).parent.glob("*.py"))
    assert {path.stem for path in modules} >= {"__init__", "memory", "operators", "timing"}
    for path in modules:
        source = path.read_text(encoding="utf-8")
        for private in ("start_ns", "kineto_results", "torch._C", "_KinetoEvent"):
            assert private not in source, (path.name, private)


def test_mode_memory_by_hand():
    width, depth, batch = 64, 3, 8
    mlp = costs.larger_mlp(width=width, depth=depth)
    inputs = torch.randn(batch, width, generator=torch.Generator().manual_seed(0))
    memory = costs.mode_memory(mlp, inputs)
    activation = batch * width * FLOAT
    # grad mode keeps the input and every hidden ReLU output; its peak holds the earlier ReLU
    # outputs plus the last Linear output and its ReLU; without recording, one layer's input
    # and output are alive at once
    recorded = {"saved_bytes": (depth + 1) * activation, "peak_bytes": (depth + 1) * activation}
    unrecorded = {"saved_bytes": 0, "peak_bytes": 2 * activation}
    assert memory == {"grad mode": recorded, "no_grad": unrecorded,
                      "inference_mode": unrecorded, "detach after": recorded}
    toy = costs.mode_memory(plain_net(), plain_batch(), modes=("grad mode", "no_grad"))
    # x (8x4) and the ReLU output (8x3) are saved; the peak is L1's and the ReLU's outputs
    assert toy == {"grad mode": {"saved_bytes": (32 + 24) * FLOAT, "peak_bytes": 48 * FLOAT},
                   "no_grad": {"saved_bytes": 0, "peak_bytes": 48 * FLOAT}}


def test_mode_costs_is_a_plain_dict_with_memory_by_hand():
    width, depth, batch = 64, 3, 8
    mlp = costs.larger_mlp(width=width, depth=depth)
    result = costs.mode_costs(mlp, batch=batch, repeats=3, warmup=1)
    assert json.loads(json.dumps(result)) == result
    assert result["baseline"] == "grad mode" and result["batch"] == batch
    assert result["repeats"] == 3 and result["forwards_per_run"] == 1
    modes = result["modes"]
    assert list(modes) == list(costs.FORWARD_MODES)
    activation = batch * width * FLOAT
    assert modes["grad mode"]["saved_bytes"] == modes["detach after"]["saved_bytes"] == \
        (depth + 1) * activation
    assert modes["no_grad"]["peak_bytes"] == modes["inference_mode"]["peak_bytes"] == \
        2 * activation
    assert modes["grad mode"]["time_ratio"] == 1.0
    for m in modes.values():
        assert set(m) == {"time_ratio", "median_seconds", "context_seconds", "peak_bytes",
                          "saved_bytes"}
        assert m["time_ratio"] > 0 and m["median_seconds"] > 0 and m["context_seconds"] > 0


def test_mode_costs_default_is_the_larger_mlp_on_a_batch_of_64():
    result = costs.mode_costs(repeats=1, warmup=0)
    assert result["batch"] == 64
    assert result["modes"]["grad mode"]["saved_bytes"] == 5 * 64 * 1024 * FLOAT


def toy_forward_bytes(batch):
    """Bytes one forward + MSE loss of the toy net saves beyond its weights, from the shapes:
    L1 saves its input x (batch x 4), ReLU its output (batch x 3, which L2 saves too: the same
    storage, counted once), the loss the output and the target (batch x 1 each)."""
    return (batch * 4 + batch * 3 + batch + batch) * FLOAT


def test_saved_tensor_bytes_by_hand():
    net = plain_net()
    x = plain_batch()
    assert costs.saved_tensor_bytes(net, x, exclude=net) == (8 * 4 + 8 * 3) * FLOAT
    assert costs.saved_tensor_bytes(lambda: net(x).sum().backward(), exclude=net) == \
        (8 * 4 + 8 * 3) * FLOAT                                  # backward frees, bytes stay
    with torch.no_grad():
        assert costs.saved_tensor_bytes(net, x, exclude=net) == 0


def test_saved_tensor_bytes_counts_a_storage_once_and_excludes_by_storage():
    a = torch.ones(10, requires_grad=True)
    w = torch.ones(10, requires_grad=True)

    def two_products():
        return (a * w).sum() + (a[:5] * w[:5]).sum()    # each saves both factors; views too

    # the storages of a and w, 10 floats each, once each (not 10 + 10 + 5 + 5 floats)
    assert costs.saved_tensor_bytes(two_products) == 20 * FLOAT
    assert costs.saved_tensor_bytes(two_products, exclude=w) == 10 * FLOAT
    assert costs.saved_tensor_bytes(two_products, exclude=[w, a]) == 0
    with pytest.raises(TypeError, match="exclude takes modules and tensors, not int"):
        costs.saved_tensor_bytes(two_products, exclude=[3])


def test_saved_bytes_per_forward_of_a_step():
    """What notebook 08's matrix counts: each loss ends a forward; ``last`` is the last one."""
    net = plain_net()
    saved = costs.SavedBytes(exclude=net)
    loss_of = saved.ending(nn.functional.mse_loss)
    batches = [torch.randn(batch, 4, generator=torch.Generator().manual_seed(batch))
               for batch in (8, 5, 3)]
    with saved:
        for x in batches:
            loss_of(net(x), torch.zeros(len(x), 1)).backward()
    assert saved.totals == [toy_forward_bytes(8), toy_forward_bytes(5), toy_forward_bytes(3)]
    assert saved.last == toy_forward_bytes(3)
    assert net(batches[0]).grad_fn is not None                  # hooks removed on exit
    assert saved.totals == [toy_forward_bytes(8), toy_forward_bytes(5), toy_forward_bytes(3)]


def test_saved_bytes_last_is_the_open_forward_if_it_saved_anything():
    net = plain_net()
    saved = costs.SavedBytes(exclude=net)
    assert saved.totals == [] and saved.last == 0               # nothing recorded yet
    loss_of = saved.ending(nn.functional.mse_loss)
    x = plain_batch()
    with saved:
        loss = loss_of(net(x), torch.zeros(8, 1))
        assert loss.grad_fn is not None                         # ending returns the result
        with torch.no_grad():
            loss_of(net(x), torch.zeros(8, 1))                  # a forward that saves nothing
    assert saved.totals == [toy_forward_bytes(8), 0] and saved.last == 0
    with saved:
        net(x[:2])                                              # a forward without its loss
    # L1 saves the view x[:2], which keeps all of x's storage (8 x 4) alive; ReLU its 2 x 3
    assert saved.totals == [toy_forward_bytes(8), 0, (8 * 4 + 2 * 3) * FLOAT]
    assert saved.last == (8 * 4 + 2 * 3) * FLOAT


def test_every_costs_name_used_outside_the_package_is_there():
    """Notebooks, tools, tests and helpers reach costs as ``costs.<name>`` or
    ``from helpers.costs import <names>``; each name must still be offered by the package."""
    used = set()
    files = [*ROOT.glob("notebooks/sources/*.py"), *ROOT.glob("tools/*.py"),
             *ROOT.glob("tests/*.py"), *ROOT.glob("helpers/**/*.py")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bcosts\.([A-Za-z]\w*)", text))
        for names in re.findall(r"from helpers\.costs import ([\w, ]+)", text):
            used |= {name.strip() for name in names.split(",")}
    used -= {"py"}                                              # helpers/costs.py in texts
    assert {"saved_tensor_bytes", "mode_costs", "larger_mlp", "fastpath"} <= used
    assert sorted(name for name in used if not hasattr(costs, name)) == []


# ----- the Transformer fast path: which kernels run, a deterministic observable ----------------

def small_encoder():
    return costs.transformer_encoder(d_model=16, heads=2, layers=1)


def test_padded_batch():
    src, mask = costs.padded_batch(batch=3, tokens=6, d_model=16, padded=0.5)
    assert src.shape == (3, 6, 16) and mask.dtype == torch.bool
    assert mask.tolist() == [[False] * 3 + [True] * 3] * 3       # padding at the end


def test_operators_run_names_aten_operators():
    a = torch.ones(2, 2)
    ops = costs.operators_run(lambda: torch.mm(a, a))
    assert "aten::mm" in ops and "aten::addmm" not in ops


def test_profiling_frees_its_recording_without_waiting_for_the_garbage_collector():
    """torch.profiler.profile refers to itself; unless the helpers drop its recorder, every
    measurement keeps its whole recording (megabytes for a Transformer forward) alive until the
    collector's next full pass, which a notebook kernel rarely runs."""
    import gc

    a = torch.ones(64, 64)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        costs.operators_run(lambda: torch.mm(a, a))
        costs.peak_memory_bytes(lambda: torch.mm(a, a))
        gc.collect()
        recorders = [o for o in gc.garbage if isinstance(o, torch.autograd.profiler.profile)]
        events = [o for o in gc.garbage if type(o).__name__ == "FunctionEvent"]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert recorders == [] and events == []


@pytest.mark.parametrize("mode,expected", [("grad mode", False), ("no_grad", True),
                                           ("inference_mode", True), ("detach after", False)])
def test_fast_path_only_with_autograd_off(mode, expected):
    encoder = small_encoder()
    src, mask = costs.padded_batch(batch=2, tokens=8, d_model=16)
    assert costs.fast_path_ran(costs.forward_in_mode(mode, encoder, (src, None, mask))) is expected


def test_fast_path_conditions_documented_by_pytorch():
    encoder = small_encoder()
    src, mask = costs.padded_batch(batch=2, tokens=8, d_model=16)

    def forward(context=contextlib.nullcontext):
        def run():
            with context():
                return encoder(src, src_key_padding_mask=mask)
        return run

    # nothing requires grad: the fast path even in grad mode
    encoder.requires_grad_(False)
    assert costs.fast_path_ran(forward())
    encoder.requires_grad_(True)
    # training mode: never, even with autograd off
    encoder.train()
    assert not costs.fast_path_ran(forward(torch.no_grad))
    encoder.eval()
    if costs.has_fastpath_switch():
        with costs.fastpath(False):
            assert not costs.fast_path_ran(forward(torch.no_grad))
        assert torch.backends.mha.get_fastpath_enabled()        # restored
        # the nested tensor skips padding: padded positions come back exactly zero
        with torch.no_grad():
            fast = encoder(src, src_key_padding_mask=mask)
            with costs.fastpath(False):
                slow = encoder(src, src_key_padding_mask=mask)
        assert torch.equal(fast[mask], torch.zeros_like(fast[mask]))
        assert slow[mask].abs().sum() > 0
        assert torch.allclose(fast[~mask], slow[~mask], atol=1e-5)


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with costs.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_fastpath_without_the_switch(monkeypatch):
    monkeypatch.setattr(costs.operators, "has_fastpath_switch", lambda: False)
    with costs.fastpath(True):
        pass
    with pytest.raises(RuntimeError, match=r"set_fastpath_enabled \(added in 2.3\)"):
        with costs.fastpath(False):
            pass


def test_fast_path_output_carries_no_warning():
    """The fast path's nested tensor makes PyTorch warn once per process about a prototype API;
    the helpers keep that notice out of the notebooks' outputs. In a fresh process, so that the
    warning has not been spent by an earlier test."""
    code = ("import torch; from helpers import costs\n"
            "encoder = costs.transformer_encoder(d_model=16, heads=2, layers=1)\n"
            "src, mask = costs.padded_batch(batch=2, tokens=8, d_model=16)\n"
            "run = costs.forward_in_mode('no_grad', encoder, (src, None, mask))\n"
            "assert costs.fast_path_ran(run)\n"
            "run()\n")
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr
