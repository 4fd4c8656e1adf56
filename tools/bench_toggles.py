"""`make bench` section: toggle latency of the explorers (issue 7).

For every mechanism, option and choice, the time from setting an explorer control's ``.value``
to the explorer holding its new graph and table (synchronous in the kernel; driven as
tests/test_helpers.py drives it). Cold = every render cache cleared first; warm = a state this
explorer has shown before. p50/p95 (plus min/max) over all runs, and where a cold render's time
goes. Budgets: cold p95 <= 50 ms, warm p95 <= 5 ms.
"""

import time

from bench_common import busy_note, latency_summary, load_average, loads, markdown_table, ms

TITLE = "Toggle latency"
BUDGET_COLD_P95_MS = 50.0
BUDGET_WARM_P95_MS = 5.0


def clear_render_caches():
    from helpers import explorer, graph, registry

    explorer.render.cache_clear()
    registry.cached_outcome.cache_clear()
    graph.svg_from_dot.cache_clear()


def toggle_cases(mechanism):
    """(option, start, choice) for every choice of every option: a change from ``start``
    (the default, or for the default itself the next choice) to ``choice``."""
    for option in mechanism.options:
        for choice in option.choices:
            start = option.default
            if choice == option.default:
                start = next(c for c in option.choices if c != choice)
            yield option.name, start, choice


def timed_change(explorer, option, value):
    """Seconds from ``control.value = value`` to the explorer holding its new graph and table."""
    from helpers.explorer import render

    start = time.perf_counter()
    explorer.controls[option].value = value
    shown = tuple(pane.value for pane in explorer.panes.values())
    elapsed = time.perf_counter() - start
    expected = render(explorer.subject, tuple(explorer.options.items()))
    if explorer.options[option] != value or shown != expected:
        raise RuntimeError(f"{explorer!r}: the change to {option}={value!r} was not shown")
    return elapsed


def measure_toggles(cold_repeats, warm_repeats):
    """Per (mechanism, option): cold and warm latencies (seconds) over all choices and runs."""
    import helpers
    from helpers.registry import MECHANISMS, get_mechanism

    get_mechanism("control")  # imports every mechanism module
    results = {}
    for name in sorted(MECHANISMS):
        mechanism = MECHANISMS[name]
        explorer = helpers.explore(name)
        for option, start, choice in toggle_cases(mechanism):
            row = results.setdefault((name, option), {"cold": [], "warm": [], "choices": 0})
            row["choices"] += 1
            for _ in range(cold_repeats):
                explorer.set(**{**mechanism.defaults, option: start})  # untimed
                clear_render_caches()
                row["cold"].append(timed_change(explorer, option, choice))
                for _ in range(warm_repeats):
                    explorer.controls[option].value = start  # a state shown before: untimed
                    row["warm"].append(timed_change(explorer, option, choice))
        explorer.close()
    return results


def cold_breakdown(repeats):
    """Where a cold render's time goes: medians (seconds) per stage over every option state.

    Stages as a mechanism explorer renders a state (MechanismSubject.render): the two training steps (the state's and the
    baseline's), the torchviz walk into Diagrams, Graphviz ``dot`` (a subprocess), the table.
    Plus ``dot`` alone on an empty graph: the cost of starting the program.
    """
    import graphviz

    import helpers
    from helpers import graph
    from helpers.explorer import BASELINE
    from helpers.registry import MECHANISMS, cached_outcome, get_mechanism

    get_mechanism(BASELINE)  # imports every mechanism module
    stages = {"steps": [], "torchviz + diagram": [], "dot": [], "table": [], "total": []}
    for name in sorted(MECHANISMS):
        mechanism = MECHANISMS[name]
        for option, _, choice in toggle_cases(mechanism):
            items = tuple({**mechanism.defaults, option: choice}.items())
            for _ in range(repeats):
                clear_render_caches()
                t0 = time.perf_counter()
                outcome = cached_outcome(name, items)
                baseline = cached_outcome(BASELINE, ())
                t1 = time.perf_counter()
                plain = name == BASELINE and dict(items) == MECHANISMS[BASELINE].defaults
                view = graph.draw(outcome, beside=None if plain else baseline)  # as render()
                t2 = time.perf_counter()
                view.html()
                t3 = time.perf_counter()
                helpers.grad_table(outcome)._repr_html_()
                t4 = time.perf_counter()
                for stage, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                    stages[stage].append(seconds)
    empty = []
    for _ in range(max(5, repeats * 5)):
        t0 = time.perf_counter()
        graphviz.Source("digraph {}\n").pipe(format="svg")
        empty.append(time.perf_counter() - t0)
    result = {stage: latency_summary(values) for stage, values in stages.items()}
    result["dot, empty graph"] = latency_summary(empty)
    return result


def measure(quick=False):
    cold_repeats, warm_repeats = (2, 5) if quick else (5, 10)
    load_before = load_average()
    results = measure_toggles(cold_repeats, warm_repeats)
    breakdown = cold_breakdown(1 if quick else 2)
    everything = {"cold": [v for r in results.values() for v in r["cold"]],
                  "warm": [v for r in results.values() for v in r["warm"]]}
    return {"cold_repeats": cold_repeats, "warm_repeats": warm_repeats,
            "rows": {f"{m}.{o}": {"choices": r["choices"], "cold": latency_summary(r["cold"]),
                                  "warm": latency_summary(r["warm"])}
                     for (m, o), r in results.items()},
            "all": {kind: latency_summary(values) for kind, values in everything.items()},
            "breakdown": breakdown, "load": [load_before, load_average()]}



def _row(name, choices, cold, warm):
    return [name, choices, cold["n"], ms(cold["p50"]), ms(cold["p95"]),
            f"{ms(cold['min'])}–{ms(cold['max'])}", warm["n"], ms(warm["p50"], 3),
            ms(warm["p95"], 3), f"{ms(warm['min'], 3)}–{ms(warm['max'], 3)}"]


def render(t, results):
    """(Markdown lines, budget rows, notes on budgets that do not hold)."""
    cold, warm = t["all"]["cold"], t["all"]["warm"]
    cold_ok = cold["p95"] * 1000 <= BUDGET_COLD_P95_MS
    warm_ok = warm["p95"] * 1000 <= BUDGET_WARM_P95_MS
    budgets = [("Toggle, cold p95", f"<= {BUDGET_COLD_P95_MS:g} ms", f"{ms(cold['p95'])} ms",
                cold_ok),
               ("Toggle, warm p95", f"<= {BUDGET_WARM_P95_MS:g} ms", f"{ms(warm['p95'], 2)} ms",
                warm_ok)]
    rows = [_row(name, r["choices"], r["cold"], r["warm"]) for name, r in t["rows"].items()]
    rows.append(_row("**all**", sum(r["choices"] for r in t["rows"].values()), cold, warm))
    lines = ["From setting an explorer control's `.value` to the explorer holding the new "
             "graph and table (`helpers.explore(name)`, in the kernel, as the tests drive it). "
             "Every choice of every option is reached from the option's default (the default "
             "itself from the next choice). **Cold**: `render`, `cached_outcome` and "
             f"`svg_from_dot` caches cleared first, {t['cold_repeats']} runs per choice: the "
             "first time a learner sees that state (including the plain step shown beside "
             f"it). **Warm**: the same state again, {t['warm_repeats']} times per cold run. "
             "Milliseconds.", "",
             markdown_table(["mechanism.option", "choices", "cold n", "cold p50", "cold p95",
                             "cold min–max", "warm n", "warm p50", "warm p95", "warm min–max"],
                            rows), "",
             "Where a cold render's time goes (each option state once or twice, caches "
             "cleared; ms):", "",
             markdown_table(["stage", "n", "p50", "p95", "min–max"],
                            [[stage, s["n"], ms(s["p50"]), ms(s["p95"]),
                              f"{ms(s['min'])}–{ms(s['max'])}"]
                             for stage, s in t["breakdown"].items()]), "",
             f"Load average before/after: {loads(*t['load'])}.", ""]
    notes = []
    if not cold_ok:
        b = t["breakdown"]
        notes.append(
            f"Cold toggle p95 is {ms(cold['p95'])} ms (p50 {ms(cold['p50'])} ms). Of a cold "
            f"render (p50 {ms(b['total']['p50'])} ms), Graphviz `dot` takes "
            f"{ms(b['dot']['p50'])} ms (p95 {ms(b['dot']['p95'])}; starting `dot` on an empty "
            f"graph alone takes {ms(b['dot, empty graph']['p50'])} ms), the two training steps "
            f"{ms(b['steps']['p50'])} ms, the torchviz walk {ms(b['torchviz + diagram']['p50'])}"
            f" ms, the table {ms(b['table']['p50'])} ms." + busy_note(results))
    if not warm_ok:
        notes.append(f"Warm toggle p95 is {ms(warm['p95'], 2)} ms: a warm toggle is a cache "
                     "hit, so the time is ipywidgets' trait machinery." + busy_note(results))
    return lines, budgets, notes
