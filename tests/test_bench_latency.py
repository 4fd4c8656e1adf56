"""tools/bench_latency.py without a browser: its arithmetic on hand-made clicks, its Markdown,
its kernel hook on a stand-in kernel, and that its page scripts parse. No timing is checked."""

import functools
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import bench_latency as bl  # noqa: E402

EPOCH = 1_800_000_000_000.0  # epoch ms of the page's time 0 in the hand-made clicks


def click(t0=100.0, kernel=(110.0, 20.0), mutations=((140.0, "table", 160.0),
                                                     (150.0, "graph", 170.0)),
          recvs=(135.0, 145.0)):
    """A settled click as the page reports it; ``kernel`` = (page start, duration)."""
    return ({"t0": t0, "offset": EPOCH, "recvs": list(recvs), "graph_chars": 900,
             "table_chars": 300,
             "mutations": [{"t": t, "kinds": [kind], "raf": t + 1, "paint": paint}
                           for t, kind, paint in mutations]},
            [(EPOCH + kernel[0], kernel[1])])


def test_breakdown_stages_add_up_to_the_latency():
    raw, spans = click()
    spans.append((EPOCH + 900.0, 5.0))  # a later handler call: another click's, ignored
    parts = bl.breakdown(raw, spans)
    assert parts["latency"] == 50.0  # 150 (last mutation) - 100 (click)
    assert parts["browser -> kernel"] == 10.0
    assert parts["kernel"] == 20.0 and parts["kernel busy"] == 20.0
    assert parts["kernel -> DOM"] == 20.0  # 150 - (110 + 20)
    assert parts["in page"] == 5.0  # 150 - 145, the last receipt before the mutation
    assert parts["paint"] == 20.0  # 170 - 150
    assert parts["on screen"] == 70.0  # 170 - 100
    assert parts["changed"] == ["graph", "table"]
    assert sum(parts[s] for s in bl.STAGES[:3]) == parts["latency"]


def test_breakdown_of_several_handler_calls_spans_first_start_to_last_end():
    raw, spans = click()
    spans.append((EPOCH + 135.0, 2.0))  # a second comm_msg handled before the graph came
    parts = bl.breakdown(raw, spans)
    assert parts["kernel"] == 27.0 and parts["kernel busy"] == 22.0
    assert parts["kernel -> DOM"] == 13.0


def test_transit_is_the_last_message_before_the_mutation():
    raw, spans = click()
    raw["messages"] = [{"direction": "recv", "t": 145.0, "created": 131.0, "chars": 900},
                       {"direction": "send", "t": 101.0, "created": 100.5, "chars": 100},
                       {"direction": "recv", "t": 300.0, "created": 290.0, "chars": 50}]
    parts = bl.breakdown(raw, spans)
    assert parts["transit"] == 14.0 and parts["message chars"] == 900


def test_clear_caches_empties_every_helpers_cache(monkeypatch):
    module = types.ModuleType("helpers.bench_latency_probe")
    calls = []

    @functools.lru_cache(maxsize=None)
    def square(x):
        calls.append(x)
        return x * x

    module.square = square
    monkeypatch.setitem(sys.modules, module.__name__, module)
    square(3)
    exec(compile(bl.CLEAR_CACHES, "<clear>", "exec"), {})
    square(3)
    assert calls == [3, 3] and square.cache_info().currsize == 1


def test_breakdown_without_a_change_is_none():
    raw, spans = click(mutations=())
    assert bl.breakdown(raw, spans) is None


def summary_of(cold, warm):
    clicks = [{"temperature": "cold", "latency": v, "kernel": v / 2} for v in cold]
    clicks += [{"temperature": "warm", "latency": v, "kernel": v / 4} for v in warm]
    return clicks, bl.summarise(clicks)


def test_summary_percentiles_match_numpy():
    cold, warm = list(range(1, 21)), [5.0, 1.0, 3.0]
    _, summary = summary_of(cold, warm)
    assert summary["cold"]["latency"]["p50"] == pytest.approx(np.percentile(cold, 50))
    assert summary["cold"]["latency"]["p95"] == pytest.approx(np.percentile(cold, 95))
    assert summary["warm"]["latency"]["p95"] == pytest.approx(np.percentile(warm, 95))
    assert summary["warm"]["kernel"]["p50"] == pytest.approx(np.median(warm) / 4)
    assert "paint" not in summary["cold"]  # no click carried it
    assert "cleared" not in summary  # no click of that temperature
    assert bl.dominant(summary, "cold") == "kernel"


def test_render_gives_a_verdict_per_budget():
    clicks, _ = summary_of([50.0, 90.0, 300.0], [10.0, 20.0, 30.0])
    for c in clicks:
        c.update(notebook="03_detach.ipynb", explorer="detach", control="cut",
                 choice=f"c{c['latency']}")
    data = {"clicks": clicks + [{"latency": None}], "notebooks": ["03_detach.ipynb"],
            "load": [(0.5, 0.4, 0.3), (0.9, 0.5, 0.3)]}
    lines, budgets, notes = bl.render(data, {"machine": {"cores": 2}})
    text = "\n".join(lines)
    assert "| notebook (explorer) | choices | cold p50 | cold p95 | warm p50 | warm p95 |" in text
    cold_p95, warm_p95 = np.percentile([50, 90, 300], 95), np.percentile([10, 20, 30], 95)
    assert budgets == [("Browser latency p95, cold", "<= 100 ms", f"{cold_p95:.1f} ms", False),
                       ("Browser latency p95, warm", "<= 100 ms", f"{warm_p95:.1f} ms", True)]
    assert len(notes) == 1 and "kernel" in notes[0]
    assert "1 clicks changed neither table nor graph" in text
    assert bl.failure(data) is None
    assert "no click" in bl.failure({"clicks": [{"latency": None}]})


def test_kernel_hook_times_each_comm_msg_call_once():
    calls = []

    class Kernel:
        shell_handlers = {"comm_msg": lambda *args: calls.append(args) or "handled"}

    kernel = Kernel()
    namespace = {"get_ipython": lambda: type("Shell", (), {"kernel": kernel})()}
    for _ in range(2):  # a second run must not wrap the handler twice
        exec(compile(bl.KERNEL_HOOK, "<hook>", "exec"), namespace)
    before = time.time() * 1000
    assert kernel.shell_handlers["comm_msg"]("stream", "idents", "msg") == "handled"
    assert calls == [("stream", "idents", "msg")]
    assert len(kernel._gfl_latency) == 1
    start, duration = kernel._gfl_latency[0]
    assert before - 1 <= start <= time.time() * 1000 and duration >= 0


@pytest.mark.parametrize("name", ["OBSERVER", "EXECUTE"])
def test_page_scripts_parse(name, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found: cannot parse the page script")
    script = tmp_path / f"{name}.js"
    script.write_text(f"const script = ({getattr(bl, name)});\n")
    result = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    if name == "OBSERVER":
        assert "new MutationObserver" in bl.OBSERVER and "requestAnimationFrame" in bl.OBSERVER
