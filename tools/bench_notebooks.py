"""`make bench` section: notebook execution under strict nbval (issues 7 and 14).

The strict nbval run over notebooks/*.ipynb as `make test` runs it (``-n 2 --dist loadfile``),
each notebook's time from its junit report, beside the floor measured in the same run: a
notebook whose first cell imports torch and the helpers (as every setup cell does) and whose
second builds one optimizer (torch 2.13 imports ``torch._dynamo`` there), run the same way.
Budget: the whole run within 1.5 x notebooks x floor / 2 cores. A failing run is not written
(``failure``): BENCHMARKS.md records passing runs only.
"""

import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench_common import (CORES_IN_BUDGET, NOTEBOOKS, ROOT, WORK, busy_note, floor_notebook,
                          load_average, loads, markdown_table, spread, with_range)

TITLE = "Notebook execution"
BUDGET_SUITE_FACTOR = 1.5
NBVAL_ARGS = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with",
              "tests/nbval_sanitize.cfg", "-p", "no:cacheprovider"]


# ---------------------------------------------------------------- junit


def _notebook_of(case):
    """The notebook file name of a junit testcase (xunit1 ``file``, else xunit2 classname
    such as "notebooks.00_start_here.ipynb")."""
    if case.get("file"):
        return Path(case.get("file")).name
    return ".".join(case.get("classname", "").rsplit(".", 2)[-2:])


def junit_file_times(xml_text):
    """file -> seconds, summed over the testcases of a pytest junit report.

    nbval makes one test item per cell; with ``junit_duration_report=total`` an item's time
    includes its setup and teardown, so a notebook's sum includes starting and stopping its
    kernel. Also returns file -> (passed, failed) counts.
    """
    times, counts = {}, {}
    for case in ET.fromstring(xml_text).iter("testcase"):
        name = _notebook_of(case)
        times[name] = times.get(name, 0.0) + float(case.get("time", 0))
        failed = any(child.tag in ("failure", "error") for child in case)
        passed, bad = counts.get(name, (0, 0))
        counts[name] = (passed + (not failed), bad + failed)
    return times, counts


def junit_cases(xml_text):
    """Every testcase: (seconds, notebook file name, test name such as "Cell 0")."""
    return [(float(case.get("time", 0)), _notebook_of(case), case.get("name", ""))
            for case in ET.fromstring(xml_text).iter("testcase")]


def junit_slowest_cells(xml_text, count=8):
    """The ``count`` slowest testcases: (seconds, notebook file name, test name), slowest first."""
    return sorted(junit_cases(xml_text), key=lambda c: (-c[0], c[1], c[2]))[:count]


def code_cell_first_line(notebook, test_name):
    """First non-blank source line of nbval's "Cell N" (N counts code cells only)."""
    import nbformat

    try:
        index = int(test_name.split()[-1])
        cells = [c for c in nbformat.read(notebook, as_version=4).cells
                 if c.cell_type == "code"]
        lines = [line for line in cells[index].source.splitlines() if line.strip()]
        return lines[0].strip()[:70] if lines else ""
    except (ValueError, IndexError, OSError):
        return ""


# ---------------------------------------------------------------- running nbval


def pytest_nbval(paths, junit, workers):
    """Run strict nbval over ``paths``; return (wall seconds, exit code, tail of output)."""
    command = [sys.executable, "-m", "pytest", "-q", *NBVAL_ARGS, f"--junitxml={junit}",
               "-o", "junit_duration_report=total", "-o", "junit_family=xunit1"]
    if workers:
        command += ["-n", str(workers), "--dist", "loadfile"]
    command += [str(p) for p in paths]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    return (time.perf_counter() - start, result.returncode,
            plain_tail(result.stdout + result.stderr))


def plain_tail(output, size=2000):
    """The end of pytest's output without colour codes and progress-dot lines."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", output)
    lines = [line for line in text.splitlines()
             if not re.fullmatch(r"[.sxFE]+\s*(\[\s*\d+%\])?", line.strip())
             and not line.startswith("bringing up nodes")]
    return "\n".join(lines)[-size:]


def measure_floor(path, runs):
    """The floor notebook under nbval ``runs`` times, serially: per run (total, cell 0 = kernel
    start and imports, cell 1 = first optimizer) seconds; the total includes stopping the
    kernel. A failure is an error (it means the kernel or the imports are broken)."""
    times = []
    for index in range(runs):
        junit = WORK / f"floor-{index}.xml"
        _, code, tail = pytest_nbval([path], junit, workers=0)
        if code:
            raise RuntimeError(f"the floor notebook failed under nbval:\n{tail}")
        cells = {cell: seconds for seconds, _, cell in junit_cases(junit.read_text())}
        times.append((sum(cells.values()), cells["Cell 0"], cells["Cell 1"]))
    return times


def measure(quick=False):
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    # A third, empty cell: the kernel stops in its teardown, so cell 1 times the optimizer alone.
    floor_path = floor_notebook(WORK / "floor.ipynb", extra_cells=("pass",))
    floor_runs = 2 if quick else 3
    load_before = load_average()
    floor = measure_floor(floor_path, floor_runs // 2)
    junit = WORK / "notebooks.xml"
    junit.unlink(missing_ok=True)
    wall, code, tail = pytest_nbval(notebooks, junit, workers=CORES_IN_BUDGET)
    load_during = load_average()
    floor += measure_floor(floor_path, floor_runs - floor_runs // 2)
    xml = junit.read_text() if junit.exists() else None
    per_file, counts = junit_file_times(xml) if xml else ({}, {})
    setup = {name: seconds for seconds, name, cell in (junit_cases(xml) if xml else [])
             if cell == "Cell 0"}
    slowest = [{"seconds": seconds, "notebook": name, "cell": cell,
                "source": code_cell_first_line(NOTEBOOKS / name, cell)}
               for seconds, name, cell in (junit_slowest_cells(xml) if xml else [])]
    floor_stats = spread([total for total, _, _ in floor])
    budget = BUDGET_SUITE_FACTOR * len(notebooks) * floor_stats["median"] / CORES_IN_BUDGET
    return {"notebooks": {nb.name: {"seconds": per_file.get(nb.name),
                                    "setup_seconds": setup.get(nb.name),
                                    "cells_passed": counts.get(nb.name, (0, 0))[0],
                                    "cells_failed": counts.get(nb.name, (0, 0))[1]}
                          for nb in notebooks},
            "wall": wall, "exit_code": code, "tail": tail if code else "", "slowest": slowest,
            "floor": floor_stats, "floor_imports": spread([s for _, s, _ in floor]),
            "floor_optimizer": spread([s for _, _, s in floor]), "budget": budget,
            "load": [load_before, load_during, load_average()]}


def failure(n):
    """Why this run must not be written, or None: nbval failed or a notebook was not run."""
    missing = [name for name, r in n["notebooks"].items() if not r["cells_passed"]]
    if n["exit_code"] or missing or any(r["cells_failed"] for r in n["notebooks"].values()):
        return (f"strict nbval did not pass (exit code {n['exit_code']}"
                + (f"; not run: {', '.join(missing)}" if missing else "") + "):\n" + n["tail"])
    return None


# ---------------------------------------------------------------- the report


def _seconds(value):
    return "—" if value is None else f"{value:.1f}"


def render(n, results):
    """(Markdown lines, budget rows, notes on budgets that do not hold)."""
    count, f = len(n["notebooks"]), n["floor"]
    floor = f["median"]
    suite_ok = n["exit_code"] == 0 and n["wall"] <= n["budget"]
    budgets = [("Strict nbval, whole suite",
                f"<= {BUDGET_SUITE_FACTOR:g} x {count} x floor / {CORES_IN_BUDGET} = "
                f"{n['budget']:.1f} s", f"{n['wall']:.1f} s", suite_ok)]
    rows = [[name, _seconds(r["seconds"]),
             "—" if r["seconds"] is None else f"{r['seconds'] / floor:.2f}",
             _seconds(r.get("setup_seconds")), r["cells_passed"], r["cells_failed"]]
            for name, r in n["notebooks"].items()]
    total = sum(r["seconds"] or 0 for r in n["notebooks"].values())
    setups = [r["setup_seconds"] for r in n["notebooks"].values()
              if r.get("setup_seconds") is not None]
    rows.append(["**sum of notebooks**", f"{total:.1f}", f"{total / floor:.2f}",
                 f"{sum(setups):.1f}", "", ""])
    two = lambda s: f"{s:.2f}"  # noqa: E731
    lines = ["The strict nbval run over `notebooks/*.ipynb`, as `make test` runs it: "
             "`pytest -n 2 --dist loadfile --nbval --nbval-current-env --nbval-sanitize-with "
             "tests/nbval_sanitize.cfg` (one kernel per notebook, two workers), run once. A "
             "notebook's time is the sum of its cells' junit times, which include starting and "
             "stopping its kernel. The **floor** is a notebook run the same way, "
             f"serially, {f['n']} times (before and after the suite): cell 0 imports torch and "
             "the helpers as every setup cell does (with the kernel's start), cell 1 builds one "
             "optimizer (the first optimizer of a process imports `torch._dynamo` in torch "
             f"{results['machine']['torch']}; every notebook that trains pays it once), cell 2 "
             "is empty (the kernel stops after it).", "",
             markdown_table(["notebook", "seconds", "x floor", "setup cell (s)", "cells passed",
                             "cells failed"], rows), "",
             f"- Floor: {with_range(f, two)} s (median, min–max): kernel start and imports "
             f"{with_range(n['floor_imports'], two)} s, first optimizer "
             f"{with_range(n['floor_optimizer'], two)} s.",
             f"- Whole strict run (wall clock, pytest and worker start-up included): "
             f"{n['wall']:.1f} s, exit code {n['exit_code']}.",
             f"- Budget: {BUDGET_SUITE_FACTOR:g} x {count} notebooks x {floor:.2f} s / "
             f"{CORES_IN_BUDGET} cores = {n['budget']:.1f} s: "
             f"{'holds' if suite_ok else '**does not hold**'}.",
             f"- Load average before / during / after: {loads(*n['load'])}.", ""]
    if n.get("slowest"):
        lines += ["The slowest cells (Cell N counts code cells; Cell 0 is the setup cell, which "
                  "includes starting the kernel):", "",
                  markdown_table(["notebook", "cell", "seconds", "first line"],
                                 [[c["notebook"], c["cell"], f"{c['seconds']:.1f}",
                                   f"`{c['source']}`" if c["source"] else ""]
                                  for c in n["slowest"]], align="llrl"), ""]
    notes = []
    if not suite_ok:
        slow = sorted(((r["seconds"] / floor, name) for name, r in n["notebooks"].items()
                       if r["seconds"]), reverse=True)
        over = [f"{name} ({factor:.1f} x floor)" for factor, name in slow
                if factor > BUDGET_SUITE_FACTOR]
        mean_setup = sum(setups) / len(setups) if setups else 0
        notes.append(
            f"Whole suite {n['wall']:.1f} s against a budget of {n['budget']:.1f} s. The budget "
            f"allows each notebook {BUDGET_SUITE_FACTOR:g} x the floor on average; over that: "
            + (", ".join(over) or "none") + "."
            + (f" The notebooks' setup cells alone (kernel start and the floor's imports) took "
               f"{sum(setups):.1f} of the {total:.1f} s, on average "
               f"{mean_setup / n['floor_imports']['median']:.1f} x the floor's import cell"
               + (": in the suite two kernels start at once on 2 cores, while the floor is "
                  "measured alone." if mean_setup > 1.1 * n["floor_imports"]["median"] else ".")
               if setups else "")
            + " The slowest cells are listed under Notebook execution." + busy_note(results))
    return lines, budgets, notes
