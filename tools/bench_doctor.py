"""The gradient doctor's cost for `make bench` (issue 13): diagnosing a step vs the plain step.

For each model, in every round the plain step, the step under an empty ``TorchFunctionMode``
(the floor any recorder of every torch call pays) and ``helpers.diagnose`` of the step are timed
in turns, ``repeats`` times each; the round's ratio is median(diagnose) / median(plain). The
report gives the median ratio over the rounds with min-max, by wall clock and by this thread's
CPU time. Budget: at most 3 x the plain step, judged on CPU time, because on a machine busy with
other programs the wall clock of a sub-millisecond step mostly measures the scheduler (a longer
run is preempted more often); both ratios are reported.
"""

import statistics
import time

from bench_common import markdown_table, spread

TITLE = "The gradient doctor's cost (`helpers.diagnose`, notebook 11)"
BUDGET_RATIO = 3.0


def toy_case():
    import torch

    import helpers

    net = helpers.toy_net()
    x, y = helpers.toy_batch()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step():
        opt.zero_grad()
        loss = helpers.toy_loss(net(x), y)
        loss.backward()
        opt.step()
        return loss
    return "toy net (4 parameter tensors, SGD)", net, step, opt


def mlp_case():
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 512))
    x = torch.randn(64, 512, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = net(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss
    count = sum(p.numel() for p in net.parameters())
    return f"MLP 512-1024-512 ({count:,} parameters, Adam, batch 64)", net, step, opt


def measure(quick=False):
    """Rounds of interleaved timings on the toy net and a 1M-parameter MLP."""
    from torch.overrides import TorchFunctionMode

    import helpers

    class Empty(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    rounds = 3 if quick else 5
    results = {}
    for build, repeats in ((toy_case, 15 if quick else 41), (mlp_case, 3 if quick else 7)):
        name, net, step, opt = build()

        def under_mode(step=step):
            with Empty():
                step()

        kinds = {"plain": step, "empty mode": under_mode,
                 "diagnose": lambda net=net, step=step, opt=opt: helpers.diagnose(net, step, opt)}
        for kind in kinds.values():  # warm-up: first optimizer step, lazy imports
            kind()
        per_round, cpu_per_round = [], []
        for _ in range(rounds):
            times = {kind: [] for kind in kinds}
            cpu = {kind: [] for kind in kinds}
            for _ in range(repeats):
                for kind, run in kinds.items():
                    start, start_cpu = time.perf_counter(), time.thread_time()
                    run()
                    cpu[kind].append(time.thread_time() - start_cpu)
                    times[kind].append(time.perf_counter() - start)
            per_round.append({kind: statistics.median(v) for kind, v in times.items()})
            cpu_per_round.append({kind: statistics.median(v) for kind, v in cpu.items()})
        results[name] = {"rounds": rounds, "repeats": repeats, "per_round": per_round,
                         "cpu_per_round": cpu_per_round}
    return results


def summarise(results):
    """name -> median/min/max of each kind's seconds and of the two ratios to plain."""
    summary = {}
    for name, r in results.items():
        rounds = r["per_round"]
        summary[name] = {
            "plain": spread([x["plain"] for x in rounds]),
            "diagnose": spread([x["diagnose"] for x in rounds]),
            "ratio": spread([x["diagnose"] / x["plain"] for x in rounds]),
            "mode ratio": spread([x["empty mode"] / x["plain"] for x in rounds]),
            "cpu ratio": spread([x["diagnose"] / x["plain"] for x in r["cpu_per_round"]]),
        }
    return summary


def render(results, run=None):
    """(Markdown lines, budget rows, notes on budgets that do not hold) for BENCHMARKS.md;
    ``run`` (the whole bench run) is not needed: CPU time does not count waiting for a core."""
    summary = summarise(results)

    def fmt(s, scale=1000, digits=2):
        return (f"{s['median'] * scale:.{digits}f} ({s['min'] * scale:.{digits}f}–"
                f"{s['max'] * scale:.{digits}f})")

    rows = [[name, fmt(s["plain"]), fmt(s["diagnose"]), fmt(s["ratio"], 1),
             fmt(s["cpu ratio"], 1), fmt(s["mode ratio"], 1)] for name, s in summary.items()]
    some = next(iter(results.values()))
    lines = ["One training step timed plainly, under an empty `TorchFunctionMode` (the dispatch "
             "cost any recorder of every torch call pays, whatever it records), and diagnosed "
             "(recording, graph walks, the state saved and restored). Timed in turns, "
             f"{some['repeats']} times per round on the toy net, median per round; "
             f"{some['rounds']} rounds; median (min–max) over the rounds. The CPU ratio uses "
             "this thread's CPU time (`time.thread_time`) instead of the wall clock: on a "
             "machine busy with other programs, a longer run is more often preempted, which "
             "inflates the wall-clock ratio of a sub-millisecond step; the CPU ratio is the "
             "better estimate of the cost on an idle machine.", "",
             markdown_table(["step", "plain (ms)", "diagnose (ms)", "diagnose / plain",
                             "same, CPU time", "empty mode / plain"], rows, align="lrrrrr"), ""]
    budgets = [(f"Doctor cost: {name.split(' (')[0]}",
                f"<= {BUDGET_RATIO:g} x plain step, CPU time",
                f"{s['cpu ratio']['median']:.1f} x (wall clock {s['ratio']['median']:.1f} x)",
                s["cpu ratio"]["median"] <= BUDGET_RATIO)
               for name, s in summary.items()]
    notes = [f"{name}: diagnosing a step costs {s['cpu ratio']['median']:.1f} x the plain "
             f"step in CPU time (budget {BUDGET_RATIO:g} x)."
             for name, s in summary.items() if s["cpu ratio"]["median"] > BUDGET_RATIO]
    return lines, budgets, notes
