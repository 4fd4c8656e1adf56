"""The ``dot`` started ahead of time (helpers/dot_process.py, issue 14): the same SVG bytes as
graphviz's one-shot ``pipe`` for every graph the explorers draw, and every failure handed to the
one-shot path (which behaves as before).

Expectations come from graphviz's own ``Source(...).pipe``, run here, not from the module.
"""

import itertools
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import graphviz
import pytest

from conftest import require_tool
from helpers import dot_process, graph
from helpers.graph import draw
from helpers.patterns import PATTERNS
from helpers.registry import MECHANISMS, cached_outcome, get_mechanism

ROOT = Path(__file__).resolve().parents[1]
SMALL = "digraph {\n  a -> b\n}\n"
WARNS = 'digraph {\n  a [shape=gfl_no_such_shape]\n}\n'  # dot warns, then draws a box
BAD = "digraph {\n  a -> \n}\n"  # a syntax error


@pytest.fixture(autouse=True)
def needs_dot():
    require_tool("dot")
    yield
    dot_process.close()  # no test leaves a waiting process (or a fake one) to the next


def expected(source):
    """graphviz's one-shot SVG document of ``source``, as svg_from_dot ran it before."""
    return graphviz.Source(source).pipe(format="svg", encoding="utf-8")


def trimmed(document):
    return document[document.index("<svg"):]


def drawn_sources(per_mechanism=3):
    """DOT sources the explorers draw: the first states of every mechanism (beside the plain
    step, as the explorer draws them, and alone) and every pattern, plain and with its first
    mistake. Each graph gets a fresh ``dot`` run with graphviz's own command, so a sample of
    each kind of graph stands for the rest (every state would take minutes)."""
    get_mechanism("control")  # registers every mechanism
    baseline = cached_outcome("control", ())
    sources = set()
    for name, mechanism in sorted(MECHANISMS.items()):
        for values in itertools.islice(mechanism.combinations(), per_mechanism):
            outcome = cached_outcome(name, tuple(mechanism.resolve(**values).items()))
            sources.add(draw(outcome, beside=baseline).source)
            sources.add(draw(outcome).source)
    for item in PATTERNS.values():
        for mistake in [None, *item.mistakes][:2]:
            sources.add(item.run(mistake).draw().source)
    return sorted(sources)


def test_explorer_graphs_are_the_same_bytes_as_the_one_shot_path():
    sources = drawn_sources()
    assert len(sources) > 50
    graph.svg_from_dot.cache_clear()
    wrong = []
    for index, source in enumerate(sources):
        want = expected(source)
        got = dot_process.render(source)  # the waiting process, not the fallback
        # the first few also as the explorers call it: through the cache, trimmed
        called = index >= 20 or graph.svg_from_dot(source) == trimmed(want)
        if got != want or not called:
            titles = [line.strip() for line in source.splitlines() if "#bbbbbb" in line]
            wrong.append(("no SVG: " if got is None else "") + titles[-1])
    assert not wrong, f"{len(wrong)} of {len(sources)} graphs differ, e.g. {wrong[:3]}"


def test_a_killed_process_is_replaced_and_the_next_render_is_right():
    assert dot_process.render(SMALL) == expected(SMALL)
    killed = dot_process._SPARE.pid
    assert killed is not None  # the next render's dot waits
    os.kill(killed, signal.SIGKILL)
    other = SMALL.replace("b", "c")
    assert dot_process.svg(other) == expected(other)
    assert dot_process._SPARE.pid not in (None, killed)
    assert dot_process.render(SMALL) == expected(SMALL)  # the new process works


def test_bad_dot_raises_graphvizs_error_and_the_next_render_works(capfd):
    with pytest.raises(graphviz.CalledProcessError) as want:
        expected(BAD)
    graph.svg_from_dot.cache_clear()
    with pytest.raises(graphviz.CalledProcessError) as got:
        graph.svg_from_dot(BAD)
    assert got.value.returncode == want.value.returncode
    assert got.value.stderr == want.value.stderr
    assert "syntax error in line 3" in str(got.value)  # dot meets the "}" there
    assert dot_process.render(BAD) is None  # the waiting process cannot, so one-shot raised
    capfd.readouterr()
    other = SMALL.replace("b", "d")
    assert dot_process.render(SMALL) == expected(SMALL)
    assert graph.svg_from_dot(other) == trimmed(expected(other))
    assert capfd.readouterr() == ("", "")


def test_a_warning_is_shown_once_as_before_and_the_svg_is_the_same(capfd):
    want = expected(WARNS)
    before = capfd.readouterr().err  # what graphviz's one-shot path prints
    assert "gfl_no_such_shape" in before
    assert dot_process.svg(WARNS) == want
    assert capfd.readouterr().err == before  # the same warning, once: none from the process


def test_two_threads_rendering_at_once_each_get_their_own_graph():
    sources = [f"digraph {{\n  t{i} -> u{i}\n  t{i} -> v{i}\n}}\n" for i in range(12)]
    want = {source: expected(source) for source in sources}
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(dot_process.render, sources + sources[::-1]))
    assert got == [want[s] for s in sources + sources[::-1]]


@pytest.mark.parametrize("command", [
    [sys.executable, "-c", "import time; time.sleep(60)"],  # hangs: killed after TIMEOUT
    [sys.executable, "-c", "print('<svg>not a graph')"],  # exits 0 with no SVG
    [sys.executable, "-c", "import sys; sys.exit(3)"],  # fails
    ["gfl-no-such-dot-program"],  # not installed
], ids=["hung", "garbage", "fails", "missing"])
def test_a_broken_process_falls_back_to_the_one_shot_path(monkeypatch, command):
    dot_process.close()
    monkeypatch.setattr(dot_process, "COMMAND", command)
    monkeypatch.setattr(dot_process, "TIMEOUT", 0.5)
    assert dot_process.render(SMALL) is None
    assert dot_process.svg(SMALL) == expected(SMALL)  # the real dot, one-shot
    dot_process.close()
    monkeypatch.undo()
    assert dot_process.render(SMALL) == expected(SMALL)  # a real dot waits again


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_starts_its_own_process_and_leaves_the_parents_alone():
    assert dot_process.render(SMALL) == expected(SMALL)
    parent_dot = dot_process._SPARE.pid
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: draw, report, leave without running the parent's atexit
        try:
            ok = dot_process.render(SMALL) == expected(SMALL)
            ok = ok and dot_process._SPARE.pid not in (None, parent_dot)
            dot_process.close()
            os.write(write_end, b"ok" if ok else b"wrong")
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    assert os.read(read_end, 10) == b"ok"
    os.close(read_end)
    assert dot_process._SPARE.pid == parent_dot  # the child did not kill the parent's dot
    assert dot_process.render(SMALL) == expected(SMALL)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="reads /proc")
def test_the_waiting_process_does_not_outlive_the_python_that_started_it():
    # The child keeps a copy of its dot's stdin open in a `sleep`, so that dot would keep
    # waiting after Python exits if the atexit hook did not kill it.
    script = (
        "import os, subprocess, sys\n"
        "from helpers import dot_process\n"
        f"assert dot_process.render({SMALL!r})\n"
        "spare = dot_process._SPARE._proc\n"
        "sleeper = subprocess.Popen(['sleep', '30'], pass_fds=[spare.stdin.fileno()],\n"
        "                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(spare.pid, sleeper.pid)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    pid, sleeper = map(int, done.stdout.split())
    time.sleep(0.2)
    os.kill(sleeper, signal.SIGKILL)
    status = Path(f"/proc/{pid}/status")
    alive = status.exists() and "State:\tZ" not in status.read_text() \
        and Path(f"/proc/{pid}/comm").read_text().strip() == "dot"
    assert not alive, f"dot {pid} still runs after its Python exited"
