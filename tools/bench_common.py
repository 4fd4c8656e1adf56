"""What every `make bench` section shares: paths, statistics, Markdown, the load, the floor.

A section module (tools/bench_<name>.py) imports from here; tools/bench.py puts tools/ on
``sys.path`` first. Nothing here measures a time itself.
"""

import math
import os
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
VENV = ROOT / ".venv"
WORK = ROOT / "build" / "bench"  # git-ignored scratch: floor notebook, junit reports, raw JSON
CORES_IN_BUDGET = 2

# The floor every notebook stands on: a kernel that imports torch and the helpers (as every
# notebook's setup cell does), then builds one optimizer. In torch 2.13 the first optimizer of
# a process imports torch._dynamo, which every notebook that trains pays once.
FLOOR_IMPORTS = "import torch\n\nimport helpers"
FLOOR_OPTIMIZER = "_ = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)"


# ---------------------------------------------------------------- statistics


def percentile(values, q):
    """The ``q``-th percentile (0..100) of ``values``, linear between closest ranks.

    The same definition as numpy's default ("linear"): position ``(n - 1) * q / 100`` in the
    sorted values, interpolated. One value is its own every percentile.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, not {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(values):
    """n, p50, p95, min, max of ``values``."""
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "min": min(values), "max": max(values)}


def spread(values):
    """median, min, max (and n) of several runs' results."""
    return {"n": len(values), "median": statistics.median(values), "min": min(values),
            "max": max(values)}


# ---------------------------------------------------------------- Markdown and formatting


def markdown_table(headers, rows, align=None):
    """A GitHub-flavoured Markdown table; ``align`` is a string of "l"/"r", one per column."""
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers) or any(len(row) != len(headers) for row in rows):
        raise ValueError("every row needs one cell per header")
    rule = {"l": ":---", "r": "---:"}
    lines = ["| " + " | ".join(headers) + " |",
             "| " + " | ".join(rule[a] for a in align) + " |"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |"
              for row in rows]
    return "\n".join(lines)


def ms(seconds, digits=1):
    return f"{seconds * 1000:.{digits}f}"


def mb(size):
    return f"{size / 1e6:,.1f}"


def with_range(stats, fmt):
    """``median (min–max)`` of a :func:`spread`, each formatted by ``fmt``."""
    return f"{fmt(stats['median'])} ({fmt(stats['min'])}–{fmt(stats['max'])})"


def loads(*averages):
    """Load averages as "(1.37, 2.51, 3.43)", several joined by " / "."""
    return " / ".join("n/a" if a is None else "(" + ", ".join(f"{x:.2f}" for x in a) + ")"
                      for a in averages)


def verdict(ok):
    return "holds" if ok else "**does not hold**"


def load_average():
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return None


def busy_note(results):
    """A sentence if the 1-minute load average recorded anywhere in the run exceeded the cores."""
    cores = results["machine"]["cores"] or 1
    found = [results["machine"].get("load_start"), results["machine"].get("load_end")]
    for data in results.values():
        if isinstance(data, dict) and isinstance(data.get("load"), list):
            found += data["load"]
    peak = max((load[0] for load in found if load), default=0)
    if peak <= cores:
        return ""
    return (f" The 1-minute load average reached {peak} on {cores} cores during the run: other "
            "programs were competing for the CPU, so part of this is waiting for a core.")


# ---------------------------------------------------------------- the floor notebook


def floor_notebook(path, extra_cells=()):
    """Write the floor notebook to ``path``: cell 0 imports, cell 1 builds the first optimizer,
    then ``extra_cells`` (sources). Outputs empty, so strict nbval compares nothing."""
    import nbformat

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    for index, source in enumerate((FLOOR_IMPORTS, FLOOR_OPTIMIZER, *extra_cells)):
        cell = nbformat.v4.new_code_cell(source)
        cell.execution_count = index + 1
        cell["id"] = f"floor-{index}"
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path
