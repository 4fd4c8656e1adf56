"""`make bench` section: kernel memory, per notebook and over the whole series (issue 14).

Each notebook runs top to bottom in a fresh kernel (nbclient, two kernels at a time, cwd
notebooks/) with one cell appended that reads the kernel's own ``/proc/self/status``: VmHWM, the
peak resident set of the kernel process, and VmRSS, what it still holds at the end; a probe
after every code cell reads VmHWM, so that a peak over budget names the cells that raised it
(:func:`excess_by_cell`). The floor is
the same for a notebook that imports torch and the helpers and builds one optimizer (torch 2.13
imports ``torch._dynamo`` on the first optimizer), measured in the same run. Budget: every
notebook's peak <= 1.2 x the floor's. Beside it, sampled from outside, the highest summed RSS of
the kernel and the processes it starts (notebook 12 spawns workers).

The series: a learner opens the notebooks in order, spending the time each notebook states
("**Time**: about N minutes"; the first number, its core), on Binder, whose Jupyter server
(binder/jupyter/jupyter_server_config.json) shuts a kernel down once it has been idle for
``cull_idle_timeout`` s, checking every ``cull_interval`` s. Model: kernel i holds its measured
peak with children from the moment it opens until ``cull_idle_timeout + cull_interval`` s after the learner
leaves it (the latest it can be culled); the total is the Jupyter server's resident set
(measured: JupyterLab started with that config, idle) plus every kernel alive. Budget < 2 GB.
"""

import json
import re
import socket
import subprocess
import sys
import time

from bench_common import (CORES_IN_BUDGET, NOTEBOOKS, ROOT, WORK, floor_notebook,
                          load_average, loads, markdown_table)

TITLE = "Kernel memory (resident set)"
BUDGET_PEAK_FACTOR = 1.2
BUDGET_SERIES_BYTES = 2e9
SERVER_CONFIG = ROOT / "binder" / "jupyter" / "jupyter_server_config.json"
# Read by the appended cell: the kernel's peak and current resident set.
RSS_CELL = """import json as _json
with open("/proc/self/status") as _file:
    _status = dict(line.split(":", 1) for line in _file if ":" in line)
print(_json.dumps({"peak": int(_status["VmHWM"].split()[0]) * 1024,
                   "end": int(_status["VmRSS"].split()[0]) * 1024}))
"""


# Run after every code cell: the kernel's peak so far (no names left behind, nothing displayed).
PEAK_CELL = ('print(next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") '
             'if line.startswith("VmHWM:")))')


def MB(size):  # noqa: N802  (MB, the unit)
    return f"{size / 1e6:,.0f}"


# ---------------------------------------------------------------- measuring


def tree_rss():
    """Summed resident bytes of this process's descendants (the kernel and whatever it starts)
    and how many there are. Shared pages count once per process, so this is an upper bound."""
    import psutil

    total, count = 0, 0
    for child in psutil.Process().children(recursive=True):
        try:
            total += child.memory_info().rss
            count += 1
        except psutil.Error:  # exited between listing and reading
            pass
    return total, count


def kernel_rss(path, every=0.05):
    """Run the notebook at ``path`` in a fresh kernel; {"peak", "end"} bytes of the kernel
    process, and "tree": the highest summed RSS of the kernel and its child processes (sampled
    every ``every`` s), with "most_processes" of them at once. Raises
    ``nbclient.exceptions.CellExecutionError`` if the notebook fails."""
    import threading

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    cells, first_lines = [], []
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type == "code":
            first_lines.append(next((line for line in cell.source.splitlines() if line), ""))
            cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    nb.cells = cells + [nbformat.v4.new_code_cell(RSS_CELL)]
    highest, stop = [0, 0], threading.Event()

    def sample():
        while not stop.is_set():
            total, count = tree_rss()
            highest[0], highest[1] = max(highest[0], total), max(highest[1], count)
            stop.wait(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        stop.set()
        sampler.join()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    result = json.loads(text.strip().splitlines()[-1])
    probes = [c for c in nb.cells if c.cell_type == "code" and c.source == PEAK_CELL]
    peaks = [int("".join(o.get("text", "") for o in c.outputs).split()[-1]) for c in probes]
    return {**result, "tree": max(highest[0], result["peak"]), "most_processes": highest[1],
            "cells": [[i, line, peak] for i, (line, peak) in enumerate(zip(first_lines, peaks))]}


def excess_by_cell(cells, floor):
    """``[(code cell, first line, bytes)]``, largest first: how far each cell took the kernel's
    peak above both ``floor`` and the peak before it. They add up to peak - floor."""
    found, before = [], 0
    for index, line, peak in cells:
        rise = peak - max(before, floor)
        if rise > 0:
            found.append((index, line, rise))
        before = max(before, peak)
    return sorted(found, key=lambda cell: -cell[2])


def _cells_named(runs, floor, most=2):
    """The cells of a notebook's first run that raised its peak above the floor the most."""
    cells = excess_by_cell(runs[0].get("cells", []), floor)[:most]
    return "; ".join(f"Cell {index} `{line[:50]}` +{MB(rise)} MB" for index, line, rise in cells)


def server_rss(config=SERVER_CONFIG, wait=60):
    """Resident bytes of an idle JupyterLab server started with Binder's config folder."""
    import os

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(config.parent)}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--IdentityProvider.token=bench", f"--ServerApp.root_dir={ROOT}"]
    if os.getuid() == 0:
        command.append("--allow-root")  # as the Makefile's `make lab`
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"JupyterLab did not listen on port {port} within {wait} s")
        time.sleep(3)  # let its extensions finish loading
        with open(f"/proc/{server.pid}/status") as file:
            status = dict(line.split(":", 1) for line in file if ":" in line)
        return int(status["VmRSS"].split()[0]) * 1024
    finally:
        server.terminate()
        server.wait(timeout=30)


def learner_minutes(path):
    """The minutes a notebook says it takes: the first number of its "**Time**:" line."""
    import nbformat

    for cell in nbformat.read(path, as_version=4).cells:
        found = re.search(r"\*\*Time\*\*:\D*(\d+)", cell.source) if cell.cell_type == "markdown" \
            else None
        if found:
            return int(found.group(1))
    raise ValueError(f"{path.name} states no '**Time**: N minutes'")


def cull_window(config=SERVER_CONFIG):
    """(cull_idle_timeout, cull_interval) seconds from Binder's Jupyter server config."""
    settings = json.loads(config.read_text())["MappingKernelManager"]
    return settings["cull_idle_timeout"], settings["cull_interval"]


def _kernel_rss_or_error(path):
    try:
        return kernel_rss(path)
    except Exception as exc:  # a notebook that fails is reported, and the run not written
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # no terminal colours
        return f"{type(exc).__name__}: {plain[-1500:]}"


def _in_subprocess(path):
    """``kernel_rss(path)`` in a fresh Python (this file run as a script), or the error text."""
    result = subprocess.run([sys.executable, __file__, str(path)], capture_output=True,
                            text=True, cwd=ROOT)
    if result.returncode:
        return f"exit code {result.returncode}: {result.stderr[-1500:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(quick=False):
    """Two kernels at a time (a kernel's resident set does not depend on its neighbours)."""
    from concurrent.futures import ThreadPoolExecutor

    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    floor_path = floor_notebook(WORK / "floor_memory.ipynb")
    floor_runs, runs = (2, 1) if quick else (3, 2)
    load_before = load_average()
    jobs = [floor_path] * floor_runs + [path for path in notebooks for _ in range(runs)]
    with ThreadPoolExecutor(CORES_IN_BUDGET) as pool:  # threads that wait on subprocesses
        done = list(pool.map(_in_subprocess, jobs))
    per_notebook, failed, floor = {}, {}, []
    for path, result in zip(jobs, done):
        if isinstance(result, str):
            failed["floor" if path == floor_path else path.name] = result
        elif path == floor_path:
            floor.append(result)
        else:
            per_notebook.setdefault(path.name, []).append(result)
    for name in failed:
        per_notebook.pop(name, None)
    try:
        server, server_error = server_rss(), None
    except Exception as exc:  # reported in the section; the kernels' numbers still stand
        server, server_error = None, f"{type(exc).__name__}: {exc}"
    idle, interval = cull_window()
    return {"floor": floor, "notebooks": per_notebook, "failed": failed, "server": server,
            "server_error": server_error,
            "minutes": {p.name: learner_minutes(p) for p in notebooks},
            "cull_idle_timeout": idle, "cull_interval": interval,
            "load": [load_before, load_average()]}


def failure(data):
    """Why this run must not be written, or None: a notebook failed under nbclient."""
    if data["failed"]:
        return "executing notebooks for their memory failed:\n" + "\n".join(
            f"{name}: {error}" for name, error in data["failed"].items())
    return None


# ---------------------------------------------------------------- the series model


def series_peak(peaks, minutes, window_seconds, server=0):
    """The highest total resident set of a learner's series, and when it is reached.

    ``peaks``: bytes of each kernel, in the order the learner opens the notebooks; ``minutes``:
    the time the learner spends on each; a kernel is alive from the moment its notebook opens
    until ``window_seconds`` after the learner leaves it. The total only rises when a notebook
    opens, so the highest total is at one of those moments. Returns (bytes, index of the
    notebook being opened, how many kernels are alive then)."""
    if len(peaks) != len(minutes) or not peaks:
        raise ValueError("one peak and one time per notebook, at least one notebook")
    opens, t = [], 0.0
    for m in minutes:
        opens.append(t)
        t += m * 60
    ends = [opens[i] + minutes[i] * 60 + window_seconds for i in range(len(peaks))]
    best = None
    for j, now in enumerate(opens):
        alive = [i for i in range(len(peaks)) if opens[i] <= now < ends[i]]
        total = server + sum(peaks[i] for i in alive)
        if best is None or total > best[0]:
            best = (total, j, len(alive))
    return best


def shortest_stay(peaks, window_seconds, server, budget, most=60):
    """The fewest whole minutes per notebook (the same for each) at which the series stays under
    ``budget``; None if even ``most`` minutes is not enough."""
    for m in range(1, most + 1):
        if series_peak(peaks, [m] * len(peaks), window_seconds, server)[0] < budget:
            return m
    return None


# ---------------------------------------------------------------- the report


def _median(values):
    import statistics

    return statistics.median(values)


def render(data, results):
    """(Markdown lines, budget rows, notes on budgets that do not hold)."""
    floor = _median([r["peak"] for r in data["floor"]])
    limit = BUDGET_PEAK_FACTOR * floor
    names = list(data["notebooks"])
    peaks = {name: _median([r["peak"] for r in runs]) for name, runs in data["notebooks"].items()}
    # What the machine holds for a notebook: its kernel, plus the processes the kernel starts.
    trees = {name: max(peaks[name], _median([r["tree"] for r in runs]))
             for name, runs in data["notebooks"].items()}
    rows = []
    for name, runs in data["notebooks"].items():
        values = [r["peak"] for r in runs]
        rows.append([name, MB(peaks[name]), f"{MB(min(values))}–{MB(max(values))}",
                     f"{peaks[name] / floor:.2f}", MB(_median([r["end"] for r in runs])),
                     MB(trees[name]), max(r["most_processes"] for r in runs),
                     data["minutes"][name]])
    over = [name for name in names if peaks[name] > limit]
    worst = max(names, key=lambda name: peaks[name])
    budgets = [("Kernel peak RSS, every notebook",
                f"<= {BUDGET_PEAK_FACTOR:g} x floor ({MB(floor)} MB) = {MB(limit)} MB",
                f"{MB(peaks[worst])} MB ({peaks[worst] / floor:.2f} x, {worst})", not over)]
    idle, interval = data["cull_idle_timeout"], data["cull_interval"]
    window = idle + interval
    server = data["server"] or 0
    order = [trees[name] for name in names]
    stated = [data["minutes"][name] for name in names]
    scenarios = [("the time each notebook states", stated)]
    scenarios += [(f"{m} minutes on each", [m] * len(names)) for m in (10, 5, 2)]
    series_rows, stated_peak = [], None
    for label, minutes in scenarios:
        total, at, alive = series_peak(order, minutes, window, server)
        stated_peak = stated_peak or (total, at, alive)
        series_rows.append([label, f"{sum(minutes)} min", f"{MB(total)} MB",
                            f"opening {names[at]}", alive,
                            "holds" if total < BUDGET_SERIES_BYTES else "**does not hold**"])
    alone = server + max(order)
    series_rows.append(["each kernel shut down on leaving (notebook 00 shows how)", "—",
                        f"{MB(alone)} MB", names[order.index(max(order))], 1,
                        "holds" if alone < BUDGET_SERIES_BYTES else "**does not hold**"])
    total, at, alive = stated_peak
    budgets.append(("Series in order, culled after 15 min idle (stated times)",
                    f"< {BUDGET_SERIES_BYTES / 1e9:g} GB",
                    f"{MB(total)} MB ({alive} kernel{'s' if alive > 1 else ''})",
                    total < BUDGET_SERIES_BYTES))
    stay = shortest_stay(order, window, server, BUDGET_SERIES_BYTES)
    f_end = _median([r["end"] for r in data["floor"]])
    lines = [
        "Resident set (RSS, MB = 10^6 bytes) of each notebook's kernel, run top to bottom in a "
        "fresh kernel (nbclient, two kernels at a time) with one cell appended that reads "
        "`/proc/self/status`: **peak** = VmHWM, the most the kernel process ever held; **end** "
        "= VmRSS after the last cell. A one-line cell after every code cell reads VmHWM too, "
        "so a peak over budget is traced to the cells that raised it. **Floor** = a kernel that imports torch and the helpers "
        "and builds one optimizer (the first optimizer imports `torch._dynamo`), "
        f"{len(data['floor'])} runs in this run: peak {MB(floor)} MB, end {MB(f_end)} MB "
        "(median). Each notebook ran "
        f"{len(next(iter(data['notebooks'].values())))} time(s); the median peak is shown. "
        "**With children** = the highest sum, sampled every 50 ms, of the RSS of the kernel "
        "and every process it started (Graphviz `dot`; notebook 12's worker processes); "
        "**processes** = the most of them alive at once, kernel included. A sum of RSS counts "
        "pages shared between processes (torch's libraries) once per process: an upper bound.",
        "",
        markdown_table(["notebook", "peak MB", "peak min–max", "x floor", "end MB",
                        "with children MB", "processes", "stated minutes"], rows), "",
        f"Budget: every notebook's peak <= {BUDGET_PEAK_FACTOR:g} x the floor = {MB(limit)} MB: "
        + ("holds." if not over else "**does not hold** for " + ", ".join(
            f"{name} ({peaks[name] / floor:.2f} x)" for name in over) + "."), "",
        "### The whole series, in order, on Binder", "",
        f"Model (not a live run): the learner opens notebooks {names[0][:2]} to "
        f"{names[-1][:2]} in order and spends on each the minutes it states (the first number "
        "of its **Time** line, i.e. its core, without the optional sections). A kernel holds "
        "its measured peak with children from the moment its notebook opens until it is "
        "culled; Binder's "
        f"server config culls a kernel idle for {idle} s, checking every {interval} s, so a "
        f"kernel lives at most {window / 60:g} minutes after the learner leaves it (idle "
        "counted from leaving, the latest case). The total adds the Jupyter server: "
        + (f"{MB(server)} MB, measured as JupyterLab's RSS, idle, started with that config."
           if data["server"] else "not measured (" + str(data.get("server_error"))
           + "), counted as 0.")
        + " Holding the peak while idle is an upper bound: the end column shows what each "
        "kernel still held after its last cell, and worker processes end with their cell. "
        "Summed RSS counts shared library pages once per process, another upper bound.", "",
        markdown_table(["learner", "series time", "highest total", "when", "kernels alive",
                        f"< {BUDGET_SERIES_BYTES / 1e9:g} GB"], series_rows, align="lrrlrl"), "",
        (f"With the same time on every notebook, the series stays under "
         f"{BUDGET_SERIES_BYTES / 1e9:g} GB from {stay} minute{'s' if stay > 1 else ''} per "
         "notebook on."
         if stay else f"No time per notebook up to 60 minutes keeps the series under "
         f"{BUDGET_SERIES_BYTES / 1e9:g} GB."), "",
        f"Load average before/after: {loads(*data['load'])}.", ""]
    notes = []
    if over:
        notes.append(
            f"Kernel peak RSS: {len(over)} of {len(names)} notebooks exceed "
            f"{BUDGET_PEAK_FACTOR:g} x the {MB(floor)} MB floor: "
            + ", ".join(f"{name} {MB(peaks[name])} MB"
                        + (f" (above the floor: {named})"
                           if (named := _cells_named(data["notebooks"][name], floor)) else "")
                        for name in over)
            + ". The floor is torch, the helpers' light core and torch._dynamo; what a notebook "
              "adds is what its own cells build and import (lazy helpers modules, larger "
              "models, torch.compile), and a kernel keeps it: the end RSS of these notebooks is "
              "within " + MB(max(peaks[n] - _median([r["end"] for r in data["notebooks"][n]])
                                 for n in over))
            + " MB of their peak.")
    if total >= BUDGET_SERIES_BYTES:
        notes.append(
            f"Series: with the stated times, {alive} kernels are alive at once when "
            f"{names[at]} opens ({MB(total)} MB): a kernel lives up to {window / 60:g} minutes "
            "after the learner leaves it, and each holds about the floor or more"
            + (f"; {names[at]} with its worker processes counts {MB(trees[names[at]])} MB"
               if trees[names[at]] > peaks[names[at]] * 1.2 else "") + ".")
    return lines, budgets, notes


if __name__ == "__main__":  # one notebook's kernel memory, as JSON (used by measure)
    from pathlib import Path

    print(json.dumps(_kernel_rss_or_error(Path(sys.argv[1]))))
