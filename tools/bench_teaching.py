"""`make bench` section: the measurements notebooks 04, 05 and 10 print.

The same helper calls (``helpers.costs``) as the notebooks; bytes are deterministic, times and
ratios are the median of several runs with min and max. No budget: these numbers are what the
notebooks teach, recorded here so a reader can see how they vary.
"""

from bench_common import load_average, loads, markdown_table, spread, with_range

TITLE = "Teaching measurements (notebooks 04, 05, 10)"
MLP_WIDTH = 512  # costs.larger_mlp(width=512), as notebooks 04, 05 and 10 build it


def measure(quick=False):
    """What notebooks 04, 05 and 10 print, from the same helper calls, ``runs`` times."""
    import torch

    import helpers
    from helpers import costs

    runs = 3 if quick else 7
    load_before = load_average()
    net = helpers.toy_net()
    x, _ = helpers.toy_batch()
    mlp = costs.larger_mlp(width=MLP_WIDTH)
    mlp_x = torch.randn(64, MLP_WIDTH, generator=torch.Generator().manual_seed(0))

    def no_grad_of(model, inputs):
        def run():
            with torch.no_grad():
                model(inputs)
        return run

    # 04 (deterministic): bytes saved for backward, weights excluded.
    saved_04 = {
        "toy net, grad mode": costs.saved_tensor_bytes(net, x, exclude=net),
        "toy net, no_grad": costs.saved_tensor_bytes(no_grad_of(net, x), exclude=net),
        "toy net, grad mode then .detach()": costs.saved_tensor_bytes(
            lambda: net(x).detach(), exclude=net),
    }
    for batch in (64, 512):
        inputs = torch.randn(batch, MLP_WIDTH)
        saved_04[f"larger MLP batch {batch}, grad mode"] = costs.saved_tensor_bytes(
            mlp, inputs, exclude=mlp)
        saved_04[f"larger MLP batch {batch}, no_grad"] = costs.saved_tensor_bytes(
            no_grad_of(mlp, inputs), exclude=mlp)

    # 04 (varies): no_grad / grad mode median-time ratio, timed in turns, as the notebook does.
    def ratio_04(model, inputs, repeats, times=1):
        timed = costs.mode_times(model, inputs, modes=("grad mode", "no_grad"), times=times,
                                 repeats=repeats)
        return timed["no_grad"]["ratio"]

    toy_04 = "toy net, batch 8 (20 forwards per run, 21 rounds)"
    mlp_04 = "larger MLP, batch 64 (9 rounds)"
    ratios_04 = {toy_04: [], mlp_04: []}
    # 05: memory (deterministic) and time relative to no_grad (varies).
    modes_05 = ("grad mode", "no_grad", "inference_mode")
    memory_05 = {name: {mode: {"saved": m["saved_bytes"], "peak": m["peak_bytes"]}
                        for mode, m in costs.mode_memory(model, inputs, modes_05).items()}
                 for name, model, inputs in (("toy net", net, x), ("larger MLP", mlp, mlp_x))}
    ratios_05 = {"toy net (200 forwards per run)": [], "larger MLP": []}
    # 10: costs.mode_costs() as notebook 10 calls it, on both networks.
    costs_10 = {"toy net (100 forwards per run)": [], "larger MLP, batch 64": []}
    for _ in range(runs):
        ratios_04[toy_04].append(ratio_04(net, x, 21, times=20))
        ratios_04[mlp_04].append(ratio_04(mlp, torch.randn(64, MLP_WIDTH), 9))
        toy = {mode: r["ratio"] for mode, r in costs.mode_times(
            helpers.toy_net(), x, modes_05, baseline="no_grad", times=200, repeats=9).items()}
        big = {mode: r["ratio"] for mode, r in costs.mode_times(
            mlp, mlp_x, modes_05, baseline="no_grad", repeats=9).items()}
        ratios_05["toy net (200 forwards per run)"].append(toy)
        ratios_05["larger MLP"].append(big)
        costs_10["toy net (100 forwards per run)"].append(
            costs.mode_costs(net, x, times=100, repeats=9))
        costs_10["larger MLP, batch 64"].append(costs.mode_costs(mlp, batch=64, repeats=9))

    return {
        "runs": runs,
        "saved_04": saved_04,
        "ratios_04": {k: spread(v) for k, v in ratios_04.items()},
        "memory_05": memory_05,
        "ratios_05": {net_name: {mode: spread([r[mode] for r in values]) for mode in modes_05}
                      for net_name, values in ratios_05.items()},
        "costs_10": {net_name: summarise_mode_costs(values)
                     for net_name, values in costs_10.items()},
        "load": [load_before, load_average()],
    }


def summarise_mode_costs(runs):
    """Several :func:`helpers.costs.mode_costs` results -> per mode: median/min/max of the time
    and the ratio, the (deterministic) bytes, and whether the bytes agreed in every run."""
    summary = {"setup": {k: v for k, v in runs[0].items() if k != "modes"}, "modes": {}}
    for mode in runs[0]["modes"]:
        per_run = [run["modes"][mode] for run in runs]
        summary["modes"][mode] = {
            "median_seconds": spread([r["median_seconds"] for r in per_run]),
            "time_ratio": spread([r["time_ratio"] for r in per_run]),
            "peak_bytes": per_run[0]["peak_bytes"],
            "saved_bytes": per_run[0]["saved_bytes"],
            "deterministic": all((r["peak_bytes"], r["saved_bytes"]) ==
                                 (per_run[0]["peak_bytes"], per_run[0]["saved_bytes"])
                                 for r in per_run),
        }
    return summary


def ratio(stats):
    return with_range(stats, lambda v: f"{v:.2f}")


def render(te, results):
    """(Markdown lines, budget rows, notes): no budget here."""
    lines = ["The numbers these notebooks print, from the same helper calls (`helpers.costs`). "
             f"Bytes are deterministic; times and ratios are the median of {te['runs']} runs, "
             "with min–max. A time ratio within a few percent of 1 (or whose min–max straddles "
             "1) is noise, not a speed-up.", "",
             "### 04 no_grad: bytes saved for backward (weights excluded)", "",
             markdown_table(["forward", "bytes"],
                            [[k, f"{v:,}"] for k, v in te["saved_04"].items()]), "",
             "### 04 no_grad: time, no_grad / grad mode (below 1: no_grad faster)", "",
             markdown_table(["model", "ratio: median (min–max)"],
                            [[k, ratio(v)] for k, v in te["ratios_04"].items()]), "",
             "### 05 inference_mode: memory of one forward (`costs.mode_memory`)", "",
             markdown_table(["model", "mode", "saved for backward (B)", "peak (B)"],
                            [[net_name, mode, f"{v['saved']:,}", f"{v['peak']:,}"]
                             for net_name, by_mode in te["memory_05"].items()
                             for mode, v in by_mode.items()], align="llrr"), "",
             "### 05 inference_mode: time relative to no_grad (`costs.mode_times`; lower is "
             "faster)", "",
             markdown_table(["model", *te["ratios_05"]["larger MLP"]],
                            [[net_name, *(ratio(s) for s in by_mode.values())]
                             for net_name, by_mode in te["ratios_05"].items()]), "",
             "### 10 myths: one forward in each mode (`costs.mode_costs`, as the notebook "
             "calls it)", "",
             "Time per run of the forward(s), ratio to grad mode timed in the same rounds "
             "(below 1: faster than grad mode), peak bytes allocated, bytes saved for backward "
             "beyond the weights.", ""]
    rows = [[net_name, mode, with_range(v["median_seconds"], lambda s: f"{s * 1000:.2f}"),
             ratio(v["time_ratio"]), f"{v['peak_bytes']:,}", f"{v['saved_bytes']:,}"]
            for net_name, summary in te["costs_10"].items()
            for mode, v in summary["modes"].items()]
    lines += [markdown_table(["model", "mode", "ms per run", "time / grad mode", "peak (B)",
                              "saved (B)"], rows, align="llrrrr"), ""]
    setups = {k: s["setup"] for k, s in te["costs_10"].items()}
    lines += ["Runs: " + "; ".join(f"{k}: batch {s['batch']}, {s['forwards_per_run']} "
                                   f"forward(s) per run, {s['repeats']} rounds"
                                   for k, s in setups.items()) + ".", ""]
    if not all(v["deterministic"] for s in te["costs_10"].values()
               for v in s["modes"].values()):
        lines += ["**Peak or saved bytes differed between runs** (they should not).", ""]
    lines += [f"Load average before/after: {loads(*te['load'])}.", ""]
    return lines, [], []
