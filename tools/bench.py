#!/usr/bin/env python3
"""`make bench`: measure what learners, teachers and CI wait for, and write BENCHMARKS.md.

Four measurements, each against the budget of issue 7:

1. Toggle latency: for every mechanism, option and choice, the time from setting an explorer
   control's ``.value`` to the explorer holding its new graph and table (synchronous in the
   kernel; driven as tests/test_helpers.py drives it). Cold = every render cache cleared first;
   warm = a state this explorer has shown before. p50/p95 (plus min/max) over all runs.
2. Notebook execution: the strict nbval run over notebooks/*.ipynb (as `make test` runs it:
   ``-n 2 --dist loadfile``), each notebook's time from its junit report, beside the floor: a
   one-cell notebook that only imports torch, torchviz, ipywidgets and helpers, run the same way.
3. Install footprint, per distribution: what requirements.txt installs (the dependency closure
   of its packages, walked through the installed metadata in .venv, sized as installed there),
   what requirements-dev.txt adds (the test tools), the whole .venv, and build/binder-venv
   (binder/requirements.txt, built as tests/test_pipeline.py builds it).
4. The teaching measurements notebooks 04, 05 and 10 print, from the helpers they call, as the
   median of several runs with min and max.
5. The gradient doctor's cost (issue 13, tools/bench_doctor.py): ``helpers.diagnose`` of a step
   over the plain step, on the toy net and a 1M-parameter MLP.

Timings go only into BENCHMARKS.md: no test passes or fails on a time.
Environment: BENCH_QUICK=1 (fewer repeats), BENCH_OUT=path (default BENCHMARKS.md),
BENCH_SKIP=toggles,notebooks,footprint,teaching,doctor (comma-separated sections to leave
out), BENCH_BUILD_BINDER=0 (do not build build/binder-venv when it is missing).
`python tools/bench.py --render build/bench/results.json` rewrites BENCHMARKS.md from the raw
results of the last run, without measuring again.
"""

import csv
import datetime
import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
VENV = ROOT / ".venv"
BINDER_VENV = ROOT / "build" / "binder-venv"
WORK = ROOT / "build" / "bench"  # git-ignored scratch: floor notebook, junit reports, raw JSON

BUDGET_COLD_P95_MS = 50.0
BUDGET_WARM_P95_MS = 5.0
BUDGET_SUITE_FACTOR = 1.5
BUDGET_PACKAGE_MB = 100.0
CORES_IN_BUDGET = 2
# Allowed over 100 MB: torch itself, and Jupyter itself (the JupyterLab / Notebook front ends).
BIG_ALLOWED = ("torch", "jupyterlab", "notebook")

NBVAL_ARGS = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with",
              "tests/nbval_sanitize.cfg", "-p", "no:cacheprovider"]
FLOOR_IMPORTS = "torch, torchviz, ipywidgets, helpers"
FLOOR_SOURCE = ("import warnings\n"
                "with warnings.catch_warnings():\n"
                "    warnings.simplefilter('ignore')  # torchviz 0.0.3: distutils deprecation\n"
                f"    import {FLOOR_IMPORTS}")


# ---------------------------------------------------------------- statistics and formatting


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


# ---------------------------------------------------------------- install footprint parsing


def parse_record(text):
    """The file paths listed in a dist-info ``RECORD`` (CSV rows: path, hash, size)."""
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]


def distribution_name(dist_info_dir):
    """``torch`` from ``torch-2.13.0+cpu.dist-info``: the canonical (PEP 503) name."""
    stem = Path(dist_info_dir).name.rsplit(".", 1)[0]
    return canonical(stem.split("-", 1)[0])


def canonical(name):
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def file_size(path):
    """Bytes of a regular file (a symlink counts as itself, not its target); 0 if missing."""
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def distribution_sizes(site_packages):
    """name -> bytes of the files each installed distribution's RECORD lists.

    Paths are resolved relative to ``site_packages`` (``../../../bin/x`` and
    ``../../../share/jupyter/...`` data files included); a file listed by two records counts
    for the first by name only, so the sizes add up to no more than the files on disk.
    """
    site_packages = Path(site_packages)
    sizes, seen = {}, set()
    for record in sorted(site_packages.glob("*.dist-info/RECORD"),
                         key=lambda r: (distribution_name(r.parent.name), r.parent.name)):
        name = distribution_name(record.parent.name)
        total = 0
        for entry in parse_record(record.read_text(encoding="utf-8", errors="replace")):
            path = os.path.normpath(site_packages / entry)
            if path in seen:
                continue
            seen.add(path)
            total += file_size(path)
        sizes[name] = sizes.get(name, 0) + total
    return sizes


def tree_size(path):
    """Bytes of every regular file and symlink under ``path`` (symlinks not followed)."""
    total = 0
    for directory, _, files in os.walk(path):
        total += sum(file_size(os.path.join(directory, name)) for name in files)
    return total


def site_packages_of(venv):
    found = sorted(Path(venv).glob("lib/python3*/site-packages"))
    if not found:
        raise FileNotFoundError(f"no lib/python3*/site-packages under {venv}")
    return found[0]


def footprint(venv):
    """Total bytes of ``venv`` and bytes per distribution, largest first."""
    sizes = distribution_sizes(site_packages_of(venv))
    return {"total": tree_size(venv),
            "packages": dict(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])))}


def requirement_lines(path):
    """The requirement strings a pip requirements file installs, ``-r`` includes followed.

    ``-e .`` and ``.`` stand for the project beside the file (its name from pyproject.toml);
    other options (``--extra-index-url`` ...) are skipped; ``  # comments`` are dropped.
    """
    path = Path(path)
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            lines += requirement_lines(path.parent / line.split(None, 1)[1])
        elif line in (".", "-e .", "--editable ."):
            lines.append(project_name(path.parent))
        elif not line.startswith("-"):
            lines.append(line)
    return lines


def project_name(folder):
    """``[project] name`` of ``folder/pyproject.toml``."""
    import re

    text = (Path(folder) / "pyproject.toml").read_text()
    section = text.split("[project]", 1)[1].split("\n[", 1)[0]
    return re.search(r'(?m)^name\s*=\s*"([^"]+)"', section).group(1)


def requirement_roots(path, environment=None):
    """(name, extras) of each package a requirements file installs, its markers applied."""
    from packaging.requirements import Requirement

    roots = []
    for line in requirement_lines(path):
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({**(environment or {}), "extra": ""}):
            roots.append((canonical(req.name), tuple(sorted(canonical(e) for e in req.extras))))
    return roots


def installed_requires(site_packages):
    """name -> the Requires-Dist strings of each distribution installed in ``site_packages``."""
    from importlib.metadata import distributions

    return {canonical(d.metadata["Name"]): list(d.requires or [])
            for d in distributions(path=[str(site_packages)])}


def dependency_closure(roots, requires, environment=None):
    """The distributions that installing ``roots`` brings in, and the ones it needs but lacks.

    ``roots``: (name, extras) pairs; ``requires``: name -> Requires-Dist strings (as
    ``installed_requires`` returns). A dependency counts when its marker holds in
    ``environment`` (default: this Python) for the distribution itself or for one of the extras
    asked of it; extras nobody asks for (``extra == 'test'``) are ignored.
    """
    from packaging.requirements import Requirement

    found, missing, seen = set(), set(), set()
    todo = [(name, "") for name, _ in roots] + [(name, e) for name, extras in roots
                                                 for e in extras]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        if name not in requires:
            missing.add(name)
            continue
        found.add(name)
        for text in requires[name]:
            req = Requirement(text)
            if req.marker is None:
                wanted = extra == ""  # an unconditional dependency: taken with the base
            else:
                wanted = req.marker.evaluate({**(environment or {}), "extra": extra})
            if wanted:
                dep = canonical(req.name)
                todo.append((dep, ""))
                todo += [(dep, canonical(e)) for e in req.extras]
    return found, missing


def closure_footprint(venv, requirements, environment=None):
    """Bytes per distribution of what ``requirements`` installs, as installed in ``venv``.

    The dependency closure of the file's packages (``dependency_closure`` over the metadata in
    the venv's site-packages), each sized as ``distribution_sizes`` sizes it there; ``total`` is
    their sum (no pip, no Python files or caches). ``missing``: needed but not installed.
    """
    site_packages = site_packages_of(venv)
    sizes = distribution_sizes(site_packages)
    names, missing = dependency_closure(requirement_roots(requirements, environment),
                                        installed_requires(site_packages), environment)
    packages = {name: sizes.get(name, 0) for name in names}
    return {"closure_of": Path(requirements).name, "total": sum(packages.values()),
            "packages": dict(sorted(packages.items(), key=lambda kv: (-kv[1], kv[0]))),
            "missing": sorted(missing)}


def oversized(packages, limit_mb=BUDGET_PACKAGE_MB, allowed=BIG_ALLOWED):
    """Distributions over ``limit_mb`` MB that are not in ``allowed``."""
    return [name for name, size in packages.items()
            if size > limit_mb * 1e6 and canonical(name) not in {canonical(a) for a in allowed}]


# ---------------------------------------------------------------- junit (notebook times)


def junit_file_times(xml_text):
    """file -> seconds, summed over the testcases of a pytest junit report.

    nbval makes one test item per cell; with ``junit_duration_report=total`` an item's time
    includes its setup and teardown, so a notebook's sum includes starting and stopping its
    kernel. Also returns file -> (passed, failed) counts.
    """
    times, counts = {}, {}
    for case in ET.fromstring(xml_text).iter("testcase"):
        if case.get("file"):  # junit_family=xunit1
            name = Path(case.get("file")).name
        else:  # xunit2: classname "notebooks.00_start_here.ipynb"
            name = ".".join(case.get("classname", "").rsplit(".", 2)[-2:])
        times[name] = times.get(name, 0.0) + float(case.get("time", 0))
        failed = any(child.tag in ("failure", "error") for child in case)
        passed, bad = counts.get(name, (0, 0))
        counts[name] = (passed + (not failed), bad + failed)
    return times, counts


def junit_cases(xml_text):
    """Every testcase: (seconds, notebook file name, test name such as "Cell 0")."""
    cases = []
    for case in ET.fromstring(xml_text).iter("testcase"):
        if case.get("file"):
            name = Path(case.get("file")).name
        else:
            name = ".".join(case.get("classname", "").rsplit(".", 2)[-2:])
        cases.append((float(case.get("time", 0)), name, case.get("name", "")))
    return cases


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


# ---------------------------------------------------------------- machine


def machine():
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "cpu": platform.processor() or platform.machine()}
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["usable_cores"] = info["cores"]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1e6, 1)
    except OSError:
        pass
    dot = shutil.which("dot")
    if dot:
        result = subprocess.run([dot, "-V"], capture_output=True, text=True)
        info["graphviz"] = (result.stderr or result.stdout).strip()
    import torch

    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
    return info


# ---------------------------------------------------------------- 1. toggle latency


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
    shown = (explorer.graph.value, explorer.table.value)
    elapsed = time.perf_counter() - start
    expected = render(explorer.mechanism.name, tuple(explorer.options.items()))
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

    Stages as helpers.explorer.render runs them: the two training steps (the state's and the
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


def toggle_section(quick):
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


# ---------------------------------------------------------------- 2. notebook execution


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
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", output)
    lines = [line for line in text.splitlines()
             if not re.fullmatch(r"[.sxFE]+\s*(\[\s*\d+%\])?", line.strip())
             and not line.startswith("bringing up nodes")]
    return "\n".join(lines)[-size:]


def floor_notebook():
    import nbformat

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "floor_imports.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    cell = nbformat.v4.new_code_cell(FLOOR_SOURCE)
    cell.execution_count = 1
    cell["id"] = "floor"
    nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def measure_floor(path, runs):
    """Seconds of the floor notebook under nbval (one kernel: start, imports, stop), ``runs``
    times; a failure is an error (it means the kernel or the imports are broken)."""
    times = []
    for index in range(runs):
        junit = WORK / f"floor-{index}.xml"
        _, code, tail = pytest_nbval([path], junit, workers=0)
        if code:
            raise RuntimeError(f"the floor notebook failed under nbval:\n{tail}")
        file_times, _ = junit_file_times(junit.read_text())
        times.append(file_times[path.name])
    return times


FIRST_OPTIMIZER = """
import time, torch
net = torch.nn.Linear(2, 1)
start = time.perf_counter()
torch.optim.SGD(net.parameters(), lr=0.1)
print(time.perf_counter() - start)
"""


def first_optimizer_seconds(runs):
    """Seconds the first ``torch.optim.SGD(...)`` of a fresh process takes (torch imported
    already): in torch 2.13 it imports ``torch._dynamo``. Every notebook that trains pays it
    once; the floor, which only imports, does not."""
    return [float(subprocess.run([sys.executable, "-c", FIRST_OPTIMIZER], capture_output=True,
                                 text=True, check=True).stdout.split()[-1])
            for _ in range(runs)]


def notebook_section(quick):
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    floor_path = floor_notebook()
    floor_runs = 2 if quick else 3
    load_before = load_average()
    floor = measure_floor(floor_path, floor_runs - 1)
    junit = WORK / "notebooks.xml"
    wall, code, tail = pytest_nbval(notebooks, junit, workers=CORES_IN_BUDGET)
    load_during = load_average()
    floor += measure_floor(floor_path, 1)
    per_file, counts = junit_file_times(junit.read_text()) if junit.exists() else ({}, {})
    setup = {name: seconds for seconds, name, cell in
             (junit_cases(junit.read_text()) if junit.exists() else []) if cell == "Cell 0"}
    slowest = [{"seconds": seconds, "notebook": name, "cell": cell,
                "source": code_cell_first_line(NOTEBOOKS / name, cell)}
               for seconds, name, cell in
               (junit_slowest_cells(junit.read_text()) if junit.exists() else [])]
    floor_stats = spread(floor)
    optimizer = spread(first_optimizer_seconds(1 if quick else 3))
    budget = BUDGET_SUITE_FACTOR * len(notebooks) * floor_stats["median"] / CORES_IN_BUDGET
    return {"notebooks": {nb.name: {"seconds": per_file.get(nb.name),
                                    "setup_seconds": setup.get(nb.name),
                                    "cells_passed": counts.get(nb.name, (0, 0))[0],
                                    "cells_failed": counts.get(nb.name, (0, 0))[1]}
                          for nb in notebooks},
            "wall": wall, "exit_code": code, "tail": tail if code else "", "slowest": slowest,
            "floor": floor_stats, "first_optimizer": optimizer, "budget": budget,
            "load": [load_before, load_during, load_average()]}


# ---------------------------------------------------------------- 3. install footprint


def ensure_binder_venv():
    """build/binder-venv as tests/test_pipeline.py builds and caches it (same code, same
    stamps), so `make test` and `make bench` share one venv."""
    import importlib.util

    import pytest  # noqa: F401  (test_pipeline's failure path uses it)

    spec = importlib.util.spec_from_file_location("gfl_test_pipeline",
                                                  ROOT / "tests" / "test_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.ensure_binder_venv()
    except BaseException as exc:  # pytest.fail raises an OutcomeException (a BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise RuntimeError(f"building build/binder-venv failed: {exc}") from None


def footprint_section(build_binder):
    # The closures are walked with this Python's markers: run as `make bench` does, with .venv's.
    result = {"requirements.txt": closure_footprint(VENV, ROOT / "requirements.txt"),
              "requirements-dev.txt": closure_footprint(VENV, ROOT / "requirements-dev.txt"),
              ".venv": footprint(VENV)}
    binder_state = "reused"
    if not (BINDER_VENV / "bin" / "python").exists():
        binder_state = "built"
        if not build_binder:
            binder_state = "missing (BENCH_BUILD_BINDER=0)"
    if binder_state != "missing (BENCH_BUILD_BINDER=0)":
        start = time.perf_counter()
        ensure_binder_venv()  # also refreshes a stale one
        result["binder/requirements.txt"] = footprint(BINDER_VENV)
        result["binder_seconds"] = time.perf_counter() - start
    result["binder_state"] = binder_state
    return result


# ---------------------------------------------------------------- 4. teaching measurements


def teaching_section(quick):
    """What notebooks 04, 05 and 10 print, from the same helper calls, ``runs`` times."""
    import torch

    import helpers
    from helpers import costs

    runs = 3 if quick else 7
    load_before = load_average()
    net = helpers.toy_net()
    x, _ = helpers.toy_batch()
    mlp = costs.larger_mlp()
    mlp_x = torch.randn(64, 1024, generator=torch.Generator().manual_seed(0))

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
        inputs = torch.randn(batch, 1024)
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
        ratios_04[mlp_04].append(ratio_04(mlp, torch.randn(64, 1024), 9))
        toy = {mode: r["ratio"] for mode, r in costs.mode_times(
            helpers.toy_net(), x, modes_05, baseline="no_grad", times=200, repeats=9).items()}
        big = {mode: r["ratio"] for mode, r in costs.mode_times(
            mlp, mlp_x, modes_05, baseline="no_grad", repeats=9).items()}
        ratios_05["toy net (200 forwards per run)"].append(toy)
        ratios_05["larger MLP"].append(big)
        costs_10["toy net (100 forwards per run)"].append(
            costs.mode_costs(net, x, times=100, repeats=21))
        costs_10["larger MLP, batch 64"].append(costs.mode_costs(mlp, batch=64, repeats=21))

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


# ---------------------------------------------------------------- the report


# Why a large package is there, for the notes on a footprint budget that does not hold.
WHY_BIG = {
    "playwright": "a test-only tool (tests/test_browser.py drives Chromium with it); its wheel "
                  "bundles a Node.js runtime for the Playwright driver. It belongs in "
                  "requirements-dev.txt only: learners never need it",
}


def busy(results):
    """The highest 1-minute load average recorded, if it exceeded the core count."""
    cores = results["machine"]["cores"] or 1
    loads = [results["machine"].get("load_start"), results["machine"].get("load_end")]
    for section in ("toggles", "notebooks", "teaching"):
        loads += results.get(section, {}).get("load", [])
    peak = max((load[0] for load in loads if load), default=0)
    return peak if peak > cores else None


def explain(results, budgets):
    """Plain sentences on each budget that does not hold: what the measurements say about why."""
    notes = []
    failed = {name for name, _, _, ok in budgets if not ok}
    load = busy(results)
    load_note = (f" The 1-minute load average reached {load} on {results['machine']['cores']} "
                 "cores during the run: other programs were competing for the CPU, so part of "
                 "this is waiting for a core." if load else "")
    if "Toggle, cold p95" in failed:
        t = results["toggles"]
        b = t["breakdown"]
        notes.append(
            f"Cold toggle p95 is {ms(t['all']['cold']['p95'])} ms (p50 "
            f"{ms(t['all']['cold']['p50'])} ms). Of a cold render (p50 {ms(b['total']['p50'])} "
            f"ms), Graphviz `dot` takes {ms(b['dot']['p50'])} ms (p95 {ms(b['dot']['p95'])}; "
            f"starting `dot` on an empty graph alone takes {ms(b['dot, empty graph']['p50'])} "
            f"ms), the two training steps {ms(b['steps']['p50'])} ms, the torchviz walk "
            f"{ms(b['torchviz + diagram']['p50'])} ms, the table {ms(b['table']['p50'])} ms."
            + load_note)
    if "Toggle, warm p95" in failed:
        t = results["toggles"]
        notes.append(f"Warm toggle p95 is {ms(t['all']['warm']['p95'], 2)} ms: a warm toggle "
                     "is a cache hit, so the time is ipywidgets' trait machinery." + load_note)
    if "Strict nbval, whole suite" in failed:
        n = results["notebooks"]
        floor = n["floor"]["median"]
        if n["exit_code"]:
            notes.append(f"The strict nbval run failed (exit code {n['exit_code']}); see its "
                         "output under Notebook execution.")
        slow = sorted(((r["seconds"] / floor, name) for name, r in n["notebooks"].items()
                       if r["seconds"]), reverse=True)
        over = [f"{name} ({factor:.1f} x floor)" for factor, name in slow
                if factor > BUDGET_SUITE_FACTOR]
        optimizer = n.get("first_optimizer", {}).get("median")
        total = sum(r["seconds"] or 0 for r in n["notebooks"].values())
        setups = [r["setup_seconds"] for r in n["notebooks"].values()
                  if r.get("setup_seconds") is not None]
        notes.append(f"Whole suite {n['wall']:.1f} s against a budget of {n['budget']:.1f} s. "
                     "The budget allows each notebook 1.5 x the floor on average; over that: "
                     + (", ".join(over) or "none") + "."
                     + (f" Each notebook that trains also pays {optimizer:.1f} s for its first "
                        "optimizer (torch._dynamo import), not counted in the floor."
                        if optimizer else "")
                     + (f" The notebooks' setup cells alone (kernel start and the same "
                        f"imports as the floor) took {sum(setups):.1f} of the {total:.1f} s, "
                        f"{statistics.mean(setups) / floor:.1f} x the floor each on average"
                        + (": in the suite two kernels start at once on 2 cores, while the "
                           "floor is measured alone." if statistics.mean(setups) > 1.1 * floor
                           else ".") if setups else "")
                     + (f" Even a notebook that only imports and trains once costs the floor "
                        f"plus that optimizer: {len(n['notebooks'])} x ({floor:.2f} + "
                        f"{optimizer:.2f}) s / {CORES_IN_BUDGET} cores = "
                        f"{len(n['notebooks']) * (floor + optimizer) / CORES_IN_BUDGET:.1f} s, "
                        "before pytest starts its workers." if optimizer else "")
                     + " The slowest cells are listed under Notebook execution." + load_note)
    for name, _, got, ok in budgets:
        if name.startswith("Footprint") and not ok:
            reasons = [f"{pkg}: {WHY_BIG.get(pkg, 'no note on why it is this big')}"
                       for pkg in got.split(", ")]
            notes.append(f"{name.split(':')[0]}: over {BUDGET_PACKAGE_MB:g} MB besides torch "
                         "and Jupyter: " + "; ".join(reasons) + ".")
    return notes


def render_report(results, quick):
    """BENCHMARKS.md as text, from the results dict this script builds."""
    m = results["machine"]
    out = ["# Benchmarks", "",
           "Generated by `make bench` (tools/bench.py); do not edit by hand. Numbers vary with the "
           "machine and its load: rerun to see yours. Timings are recorded here only; no test "
           "passes or fails on a time.", "",
           "## How to rerun", "",
           "```",
           "make bench                 # all sections, a few minutes",
           "BENCH_QUICK=1 make bench   # fewer repeats",
           "BENCH_SKIP=footprint make bench   # leave sections out: toggles,notebooks,"
           "footprint,teaching,doctor",
           "```", "",
           "## Machine", "",
           f"- Date: {m['date']}{' (BENCH_QUICK=1: fewer repeats)' if quick else ''}",
           f"- CPU: {m['cpu']}; {m['cores']} cores ({m['usable_cores']} usable); "
           f"torch uses {m['torch_threads']} threads; memory {m.get('memory_gb', '?')} GB",
           f"- {m['platform']}; Python {m['python']}; torch {m['torch']}; "
           f"{m.get('graphviz', 'Graphviz dot: not found')}",
           f"- Load average (1, 5, 15 min) at start: {loads(m['load_start'])}; at end: "
           f"{loads(m['load_end'])}. The budgets assume {CORES_IN_BUDGET} cores to ourselves; "
           f"a load above {m['cores']} means other programs were competing for them.", ""]
    head, out = out, []
    budgets = []

    if "toggles" in results:
        t = results["toggles"]
        cold, warm = t["all"]["cold"], t["all"]["warm"]
        cold_ok = cold["p95"] * 1000 <= BUDGET_COLD_P95_MS
        warm_ok = warm["p95"] * 1000 <= BUDGET_WARM_P95_MS
        budgets += [("Toggle, cold p95", f"<= {BUDGET_COLD_P95_MS:g} ms", f"{ms(cold['p95'])} ms",
                     cold_ok),
                    ("Toggle, warm p95", f"<= {BUDGET_WARM_P95_MS:g} ms",
                     f"{ms(warm['p95'], 2)} ms", warm_ok)]
        rows = [[name, r["choices"], r["cold"]["n"], ms(r["cold"]["p50"]), ms(r["cold"]["p95"]),
                 f"{ms(r['cold']['min'])}–{ms(r['cold']['max'])}", r["warm"]["n"],
                 ms(r["warm"]["p50"], 3), ms(r["warm"]["p95"], 3),
                 f"{ms(r['warm']['min'], 3)}–{ms(r['warm']['max'], 3)}"]
                for name, r in t["rows"].items()]
        rows.append(["**all**", sum(r["choices"] for r in t["rows"].values()), cold["n"],
                     ms(cold["p50"]), ms(cold["p95"]), f"{ms(cold['min'])}–{ms(cold['max'])}",
                     warm["n"], ms(warm["p50"], 3), ms(warm["p95"], 3),
                     f"{ms(warm['min'], 3)}–{ms(warm['max'], 3)}"])
        out += ["## 1. Toggle latency", "",
                "From setting an explorer control's `.value` to the explorer holding the new "
                "graph and table (`helpers.explore(name)`, in the kernel, as the tests drive it). "
                "Every choice of every option is reached from the option's default (the default "
                "itself from the next choice). **Cold**: `render`, `cached_outcome` and "
                f"`svg_from_dot` caches cleared first, {t['cold_repeats']} runs per choice: the "
                "first time a learner sees that state (including the plain step shown beside "
                f"it). **Warm**: the same state again, {t['warm_repeats']} times per cold run. "
                "Milliseconds.", "",
                markdown_table(["mechanism.option", "choices", "cold n", "cold p50",
                                "cold p95", "cold min–max", "warm n", "warm p50", "warm p95",
                                "warm min–max"], rows), "",
                "Where a cold render's time goes (each option state once or twice, caches "
                "cleared; ms):", "",
                markdown_table(["stage", "n", "p50", "p95", "min–max"],
                               [[stage, s["n"], ms(s["p50"]), ms(s["p95"]),
                                 f"{ms(s['min'])}–{ms(s['max'])}"]
                                for stage, s in t["breakdown"].items()]), "",
                f"Load average before/after: {loads(*t['load'])}.", ""]

    if "notebooks" in results:
        n = results["notebooks"]
        count = len(n["notebooks"])
        suite_ok = n["exit_code"] == 0 and n["wall"] <= n["budget"]
        budgets.append(("Strict nbval, whole suite",
                        f"<= {BUDGET_SUITE_FACTOR:g} x {count} x floor / {CORES_IN_BUDGET} = "
                        f"{n['budget']:.1f} s", f"{n['wall']:.1f} s", suite_ok))
        def seconds(value):
            return "—" if value is None else f"{value:.1f}"

        rows = [[name, seconds(r["seconds"]),
                 "—" if r["seconds"] is None else f"{r['seconds'] / n['floor']['median']:.1f}",
                 seconds(r.get("setup_seconds")), r["cells_passed"], r["cells_failed"]]
                for name, r in n["notebooks"].items()]
        total = sum(r["seconds"] or 0 for r in n["notebooks"].values())
        setup_total = sum(r.get("setup_seconds") or 0 for r in n["notebooks"].values())
        rows.append(["**sum of notebooks**", f"{total:.1f}",
                     f"{total / n['floor']['median']:.1f}", f"{setup_total:.1f}", "", ""])
        f = n["floor"]
        out += ["## 2. Notebook execution", "",
                "The strict nbval run over `notebooks/*.ipynb`, as `make test` runs it: "
                "`pytest -n 2 --dist loadfile --nbval --nbval-current-env "
                "--nbval-sanitize-with tests/nbval_sanitize.cfg` (one kernel per notebook, two "
                "workers), run once. A notebook's time is the sum of its cells' junit times, "
                "which include starting and stopping its kernel. The **floor** is a one-cell "
                "notebook "
                f"that only imports {FLOOR_IMPORTS}, run the same way (serially, "
                f"{f['n']} runs: before and after the suite).", "",
                markdown_table(["notebook", "seconds", "x floor", "setup cell (s)",
                                "cells passed", "cells failed"], rows), "",
                f"- Floor: {with_range(f, lambda s: f'{s:.2f}')} s (median, min–max).",
                *([f"- Not in the floor: the first `torch.optim.SGD(...)` of a process takes "
                   f"{with_range(n['first_optimizer'], lambda s: f'{s:.2f}')} s (torch "
                   f"{results['machine']['torch']} imports `torch._dynamo` there); every "
                   "notebook that runs a training step pays it once."]
                  if "first_optimizer" in n else []),
                f"- Whole strict run (wall clock, pytest and worker start-up included): "
                f"{n['wall']:.1f} s, exit code {n['exit_code']}.",
                f"- Budget: {BUDGET_SUITE_FACTOR:g} x {count} notebooks x {f['median']:.2f} s / "
                f"{CORES_IN_BUDGET} cores = {n['budget']:.1f} s: {verdict(suite_ok)}.",
                f"- Load average before / during / after: {loads(*n['load'])}.", ""]
        if n.get("slowest"):
            out += ["The slowest cells (Cell N counts code cells; Cell 0 is the setup cell, "
                    "which includes starting the kernel):", "",
                    markdown_table(["notebook", "cell", "seconds", "first line"],
                                   [[c["notebook"], c["cell"], f"{c['seconds']:.1f}",
                                     f"`{c['source']}`" if c["source"] else ""]
                                    for c in n["slowest"]], align="llrl"), ""]
        if n["exit_code"]:
            out += ["nbval did not pass; the end of its output:", "", "```",
                    n["tail"].strip(), "```", ""]

    if "footprint" in results:
        fp = results["footprint"]
        envs = [k for k in ("requirements.txt", "binder/requirements.txt") if k in fp]
        closure = "closure_of" in fp.get("requirements.txt", {})  # older results: whole .venv
        out += ["## 3. Install footprint", "",
                "Bytes on disk (MB = 10^6 bytes). Per package: the files its `.dist-info/RECORD` "
                "lists (including scripts and `share/jupyter` data files); the rest of a venv "
                "is Python's own files and caches. "
                + ("`requirements.txt` = what `make lab` installs: the dependency closure of "
                   "the packages requirements.txt names (each installed distribution's "
                   "`Requires-Dist` followed, environment markers applied, extras only where "
                   "asked for), sized as installed in `.venv`; its total is the sum of those "
                   "packages (no pip, no Python files). `requirements-dev.txt` = what "
                   "`make test` installs on top (the test tools), measured the same way, "
                   "beside the whole `.venv`. " if closure else
                   "`requirements.txt` = `.venv` (what `make lab` / `make test` install, test "
                   "tools included); ")
                + "`binder/requirements.txt` = `build/binder-venv`, built as "
                "tests/test_pipeline.py builds it (the CPU torch wheel; the PyTorch index lines "
                f"dropped because this machine reaches only PyPI; {fp['binder_state']}"
                + (f", {fp['binder_seconds']:.0f} s" if "binder_seconds" in fp else "")
                + ").", ""]

        def size_table(packages, total, total_label):
            top = list(packages.items())[:10]
            rest = sum(packages.values()) - sum(size for _, size in top)
            rows = [[name, mb(size), f"{100 * size / total:.0f}%"] for name, size in top]
            if len(packages) > len(top):
                rows.append([f"{len(packages) - len(top)} other packages", mb(rest),
                             f"{100 * rest / total:.0f}%"])
            rows.append([f"**{total_label}**", f"**{mb(total)}**", "100%"])
            return markdown_table(["package", "MB", "share"], rows)

        for env in envs:
            packages = fp[env]["packages"]
            big = oversized(packages)
            budgets.append((f"Footprint {env}: nothing but torch/Jupyter > "
                            f"{BUDGET_PACKAGE_MB:g} MB", "none", ", ".join(big) or "none",
                            not big))
            is_closure = "closure_of" in fp[env]
            label = f"all {len(packages)} packages" if is_closure else "whole venv"
            out += [f"### `{env}`: {mb(fp[env]['total'])} MB, {len(packages)} packages", "",
                    size_table(packages, fp[env]["total"], label), ""]
            if fp[env].get("missing"):
                out += ["Needed but not installed in `.venv`: "
                        + ", ".join(fp[env]["missing"]) + ".", ""]
            if env == "requirements.txt" and "requirements-dev.txt" in fp:
                dev, venv = fp["requirements-dev.txt"], fp[".venv"]
                extras = {name: size for name, size in dev["packages"].items()
                          if name not in packages}
                stray = sorted(set(venv["packages"]) - set(dev["packages"]))
                big_extras = [name for name in extras if extras[name] > BUDGET_PACKAGE_MB * 1e6]
                out += [f"### `requirements-dev.txt`: {mb(dev['total'])} MB, "
                        f"{len(dev['packages'])} packages; the test tools add "
                        f"{mb(sum(extras.values()))} MB", "",
                        "What `make test` installs beyond requirements.txt's closure. The "
                        f"budget is for what learners install, so it does not apply here"
                        + (f" (over {BUDGET_PACKAGE_MB:g} MB: " + ", ".join(big_extras) + ")"
                           if big_extras else "") + ".", "",
                        size_table(extras, sum(extras.values()),
                                   f"{len(extras)} packages added"), ""]
                if dev.get("missing"):
                    out += ["Needed but not installed in `.venv`: "
                            + ", ".join(dev["missing"]) + ".", ""]
                out += [f"The whole `.venv` is {mb(venv['total'])} MB on disk "
                        f"({len(venv['packages'])} distributions): besides these, Python's "
                        "own files and caches"
                        + (", and " + ", ".join(stray) + " (in neither file's closure)"
                           if stray else "") + ".", ""]
        if "torch" in fp.get("requirements.txt", {}).get("packages", {}):
            out += ["Both venvs hold the CPU build of torch (this machine's wheel folder has "
                    "`torch 2.13.0+cpu`). On Linux, `pip install torch==2.13.0` from PyPI "
                    "alone gets the CUDA build instead, which pulls several GB of `nvidia-*` "
                    "packages: that is why binder/requirements.txt names the CPU index.", ""]

    if "teaching" in results:
        te = results["teaching"]
        ratio = (lambda s: with_range(s, lambda v: f"{v:.2f}"))
        out += ["## 4. Teaching measurements (notebooks 04, 05, 10)", "",
                "The numbers these notebooks print, from the same helper calls "
                "(`helpers.costs`). Bytes are "
                "deterministic; times and ratios are the median of "
                f"{te['runs']} runs, with min–max. A time ratio within a few percent of 1 "
                "(or whose min–max straddles 1) is noise, not a speed-up.", "",
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
                                for net_name, by_mode in te["ratios_05"].items()]), ""]
        out += ["### 10 myths: one forward in each mode (`costs.mode_costs`, as the notebook "
                "calls it)", "",
                "Time per run of the forward(s), ratio to grad mode timed in the same rounds "
                "(below 1: faster than grad mode), peak bytes allocated, bytes saved for "
                "backward beyond the weights.", ""]
        rows = []
        for net_name, summary in te["costs_10"].items():
            for mode, v in summary["modes"].items():
                rows.append([net_name, mode,
                             with_range(v["median_seconds"], lambda s: f"{s * 1000:.2f}"),
                             ratio(v["time_ratio"]), f"{v['peak_bytes']:,}",
                             f"{v['saved_bytes']:,}"])
        out += [markdown_table(["model", "mode", "ms per run", "time / grad mode", "peak (B)",
                                "saved (B)"], rows, align="llrrrr"), ""]
        setups = {k: s["setup"] for k, s in te["costs_10"].items()}
        out += ["Runs: " + "; ".join(f"{k}: batch {s['batch']}, {s['forwards_per_run']} "
                                     f"forward(s) per run, {s['repeats']} rounds"
                                     for k, s in setups.items()) + ".", ""]
        if not all(v["deterministic"] for s in te["costs_10"].values()
                   for v in s["modes"].values()):
            out += ["**Peak or saved bytes differed between runs** (they should not).", ""]
        out += [f"Load average before/after: {loads(*te['load'])}.", ""]

    if "doctor" in results:
        lines, more = bench_doctor().render(results["doctor"], markdown_table)
        out += lines
        budgets += more

    summary = []
    if budgets:
        table = markdown_table(["budget", "limit", "measured", "verdict"],
                               [[b, limit, got, verdict(ok)] for b, limit, got, ok in budgets],
                               align="llrl")
        summary = ["## Budgets", "", table, ""]
        notes = explain(results, budgets)
        if notes:
            summary += [*(f"- {note}" for note in notes), ""]
    out = head + summary + out
    return "\n".join(out).rstrip() + "\n", budgets


def bench_doctor():
    """tools/bench_doctor.py: the gradient doctor's cost (section 5)."""
    if str(ROOT / "tools") not in sys.path:
        sys.path.insert(0, str(ROOT / "tools"))
    import bench_doctor as module

    return module


def main():
    if sys.argv[1:2] == ["--render"]:  # rewrite the report from a saved results.json
        results = json.loads(Path(sys.argv[2]).read_text())
        report, _ = render_report(results, results.get("quick", False))
        Path(os.environ.get("BENCH_OUT", ROOT / "BENCHMARKS.md")).write_text(report)
        print(report)
        return 0
    quick = os.environ.get("BENCH_QUICK", "").strip() not in ("", "0")
    skip = {s.strip() for s in os.environ.get("BENCH_SKIP", "").split(",") if s.strip()}
    build_binder = os.environ.get("BENCH_BUILD_BINDER", "1").strip() != "0"
    out_path = Path(os.environ.get("BENCH_OUT", ROOT / "BENCHMARKS.md"))
    WORK.mkdir(parents=True, exist_ok=True)

    results = {"machine": machine(), "quick": quick}
    results["machine"]["load_start"] = load_average()
    print(f"bench: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
          f"load {results['machine']['load_start']}{', quick' if quick else ''}", flush=True)
    sections = [("toggles", lambda: toggle_section(quick)),
                ("teaching", lambda: teaching_section(quick)),
                ("footprint", lambda: footprint_section(build_binder)),
                ("doctor", lambda: bench_doctor().measure(quick)),
                ("notebooks", lambda: notebook_section(quick))]
    for name, run in sections:
        if name in skip:
            continue
        start = time.perf_counter()
        print(f"bench: {name} ...", flush=True)
        results[name] = run()
        print(f"bench: {name} done in {time.perf_counter() - start:.0f} s", flush=True)
    results["machine"]["load_end"] = load_average()
    report, budgets = render_report(results, quick)
    out_path.write_text(report)
    (WORK / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print()
    print(report)
    print(f"bench: wrote {out_path}")
    for name, limit, got, ok in budgets:
        print(f"bench: {name}: {got} (budget {limit}) {'holds' if ok else 'DOES NOT HOLD'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
