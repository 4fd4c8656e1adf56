#!/usr/bin/env python3
"""`make bench`: measure what learners, teachers and CI wait for, and write BENCHMARKS.md.

Each section of the report is one module, ``tools/bench_<name>.py`` for each name in
``SECTIONS``, which measures and renders its own part:

    TITLE                          the heading; this file numbers the sections in SECTIONS order
    measure(quick) -> dict         raw, JSON-serialisable results
    render(data, results)          -> (Markdown lines, budget rows, notes on failed budgets)
    failure(data) -> str | None    optional: why this run must not be written

A missing module is reported as not measured. The report is written only from a passing run:
if a section's ``failure`` says so (strict nbval or an executed notebook failed), bench prints
it, exits 1 and leaves BENCHMARKS.md untouched. BENCHMARKS.md is written only when the sections
that run the notebooks (VERIFYING) ran and passed; the report then carries the commit and the
notebook set it ran on (tests/test_bench.py checks that set against notebooks/ today). A run
with sections skipped goes to build/bench/BENCHMARKS.partial.md instead.

Timings go only into BENCHMARKS.md: no test passes or fails on a time.
Environment: BENCH_QUICK=1 (fewer repeats), BENCH_OUT=path (default BENCHMARKS.md),
BENCH_SKIP=name,name (sections to leave out), BENCH_REUSE=name=file.json (a section's data from a
separate run, e.g. ``latency=build/bench/latency.json`` as tools/bench_latency.py writes it; the
report says so; not for the sections that run the notebooks), BENCH_BUILD_BINDER=0 (footprint:
do not build build/binder-venv when it is missing).
`python tools/bench.py --render build/bench/results.json` rewrites the report from the raw
results of the last run, without measuring again.
"""

import datetime
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (CORES_IN_BUDGET, NOTEBOOKS, ROOT, WORK, load_average,  # noqa: E402
                          loads, markdown_table, verdict)

# Report order and measuring order. H7's browser latency plugs in as tools/bench_latency.py.
SECTIONS = ("toggles", "latency", "notebooks", "memory", "footprint", "teaching", "doctor")
# The sections that execute every notebook: a report goes to BENCHMARKS.md only if they passed.
VERIFYING = ("notebooks", "memory")
# Measuring order: the sections that verify the notebooks first (on the quietest machine, and so
# that a run stopped late still leaves them in build/bench/results-partial.json), the slowest last.
MEASURE_ORDER = (*VERIFYING, *(name for name in SECTIONS if name not in VERIFYING + ("latency",)),
                 "latency")
PASS_LINE = ("Passing run: strict nbval passed on every notebook listed below, and each ran "
             "again alone, without error, for its memory.")
NOTEBOOKS_LINE = "Notebooks ({count}): {names}."


def section_module(name):
    """The module of section ``name``, or None if tools/bench_<name>.py does not exist."""
    if name not in SECTIONS:
        raise ValueError(f"unknown bench section {name!r}; the sections are: "
                         + ", ".join(SECTIONS))
    if not (Path(__file__).resolve().parent / f"bench_{name}.py").exists():
        return None
    return importlib.import_module(f"bench_{name}")


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


def source_state():
    """The commit measured, how many files differ from it, and the notebooks present."""
    def git(*args):
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None

    changed = git("status", "--porcelain")
    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown",
            "changed_files": None if changed is None else len(changed.splitlines()),
            "notebooks": sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))}


# ---------------------------------------------------------------- the report


def failures(results):
    """Messages of the sections that raised, or whose ``failure`` says this run must not be
    written."""
    found = [f"{name} raised:\n{error}" for name, error in results.get("errors", {}).items()]
    for name in SECTIONS:
        module = section_module(name) if name in results else None
        check = getattr(module, "failure", None)
        message = check(results[name]) if check else None
        if message:
            found.append(f"{name}: {message}")
    return found


def verified(results):
    """True if the sections that run every notebook ran, on the notebooks recorded, and
    passed."""
    return (all(name in results for name in VERIFYING) and not failures(results)
            and all(sorted(results[name]["notebooks"]) == results["source"]["notebooks"]
                    for name in VERIFYING))


def render_head(results, quick):
    m = results["machine"]
    names = ", ".join(SECTIONS)
    head = ["# Benchmarks", "",
            "Generated by `make bench` (tools/bench.py, one module per section: "
            "tools/bench_<section>.py); do not edit by hand. Numbers vary with the machine and "
            "its load: rerun to see yours. Timings are recorded here only; no test passes or "
            "fails on a time.", "",
            "## How to rerun", "",
            "```",
            "make bench                 # all sections, about a quarter of an hour",
            "BENCH_QUICK=1 make bench   # fewer repeats",
            f"BENCH_SKIP=footprint make bench   # leave sections out: {names}",
            "```", "",
            "## This run", ""]
    state = results["source"]
    if verified(results):
        head += [PASS_LINE, ""]
    changed = state["changed_files"]
    head += [f"- Commit: {state['commit']}"
             + (f" (the working tree differed from it in {changed} files)" if changed else ""),
             "- " + NOTEBOOKS_LINE.format(count=len(state["notebooks"]),
                                          names=", ".join(state["notebooks"])),
             f"- Date: {m['date']}{' (BENCH_QUICK=1: fewer repeats)' if quick else ''}",
             f"- CPU: {m['cpu']}; {m['cores']} cores ({m['usable_cores']} usable); "
             f"torch uses {m['torch_threads']} threads; memory {m.get('memory_gb', '?')} GB",
             f"- {m['platform']}; Python {m['python']}; torch {m['torch']}; "
             f"{m.get('graphviz', 'Graphviz dot: not found')}",
             f"- Load average (1, 5, 15 min) at start: {loads(m['load_start'])}; at end: "
             f"{loads(m.get('load_end'))}. The budgets assume {CORES_IN_BUDGET} cores to ourselves; "
             f"a load above {m['cores']} means other programs were competing for them."]
    missing = {**results.get("not_measured", {}),
               **{name: "the run was stopped before it" for name in SECTIONS
                  if name not in results and name not in results.get("not_measured", {})
                  and name not in results.get("errors", {})}}
    if missing:
        head += ["- Not measured: " + "; ".join(f"{k} ({v})" for k, v in missing.items()) + "."]
    reused = results.get("reused", {})
    if reused:
        head += ["- Measured in a separate run on the same machine and tree, not in this one: "
                 + "; ".join(f"{k} ({v})" for k, v in reused.items()) + "."]
    return head + [""]


def render_report(results, quick):
    """(BENCHMARKS.md as text, budget rows), from the results dict this script builds."""
    body, budgets, notes, number = [], [], [], 0
    for name in SECTIONS:
        if name not in results:
            continue
        module = section_module(name)
        lines, more, why = module.render(results[name], results)
        number += 1
        body += [f"## {number}. {module.TITLE}", "", *lines]
        budgets += more
        notes += why
    summary = []
    if budgets:
        summary = ["## Budgets", "",
                   markdown_table(["budget", "limit", "measured", "verdict"],
                                  [[b, limit, got, verdict(ok)]
                                   for b, limit, got, ok in budgets], align="llrl"), ""]
        summary += [*(f"- {note}" for note in notes), *([""] if notes else [])]
    text = "\n".join(render_head(results, quick) + summary + body).rstrip() + "\n"
    return text, budgets


def finish(results, out_path):
    """Write the report of ``results`` if the run passed; return the exit code.

    A failing run: print why, write nothing, 1. A run that did not execute every notebook
    (sections skipped): written to build/bench/BENCHMARKS.partial.md, never to BENCHMARKS.md.
    """
    WORK.mkdir(parents=True, exist_ok=True)
    problems = failures(results)
    if problems:
        (WORK / "results-failed.json").write_text(json.dumps(results, indent=1, default=str))
        for problem in problems:
            print(f"bench: FAILED: {problem}", file=sys.stderr)
        print(f"bench: not written: {out_path} is left as it was (raw results in "
              f"{WORK / 'results-failed.json'})", file=sys.stderr)
        return 1
    if not verified(results) and Path(out_path).resolve() == (ROOT / "BENCHMARKS.md"):
        out_path = WORK / "BENCHMARKS.partial.md"
        print(f"bench: the notebooks did not all run ({', '.join(VERIFYING)} needed), so the "
              f"report goes to {out_path}, not BENCHMARKS.md")
    report, budgets = render_report(results, results.get("quick", False))
    Path(out_path).write_text(report)
    print(report)
    print(f"bench: wrote {out_path}")
    for name, limit, got, ok in budgets:
        print(f"bench: {name}: {got} (budget {limit}) {'holds' if ok else 'DOES NOT HOLD'}")
    return 0


def reused_files(text):
    """``BENCH_REUSE=latency=build/bench/latency.json,...`` -> {section: path}."""
    found = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, path = item.partition("=")
        if name not in SECTIONS or name in VERIFYING or not path:
            raise ValueError("BENCH_REUSE takes section=path.json for a section among "
                             + ", ".join(n for n in SECTIONS if n not in VERIFYING)
                             + f", not {item!r}")
        found[name] = Path(path)
    return found


def measure_all(quick, skip, reuse=None):
    """Every section's measurement; ``reuse``: {section: JSON file of that section's data from
    a separate run} (recorded as such in the report), for a section too slow to run again."""
    results = {"machine": machine(), "quick": quick, "source": source_state(),
               "not_measured": {}, "errors": {}, "reused": {}}
    results["machine"]["load_start"] = load_average()
    print(f"bench: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
          f"load {results['machine']['load_start']}{', quick' if quick else ''}", flush=True)
    for name in MEASURE_ORDER:
        module = section_module(name)
        if name in skip:
            results["not_measured"][name] = "BENCH_SKIP"
            continue
        if module is None:
            results["not_measured"][name] = f"no tools/bench_{name}.py"
            continue
        if name in (reuse or {}):
            path = reuse[name]
            results[name] = json.loads(path.read_text())
            written = datetime.datetime.fromtimestamp(path.stat().st_mtime,
                                                      datetime.timezone.utc)
            results["reused"][name] = f"{path.name}, written {written:%Y-%m-%d %H:%M} UTC"
            print(f"bench: {name}: reusing {path}", flush=True)
            continue
        start = time.perf_counter()
        print(f"bench: {name} ...", flush=True)
        try:
            results[name] = module.measure(quick)
        except Exception:  # the run fails (not written), but the other sections still run
            results["errors"][name] = traceback.format_exc(limit=-4)
            print(f"bench: {name} FAILED:\n{results['errors'][name]}", file=sys.stderr)
        print(f"bench: {name} done in {time.perf_counter() - start:.0f} s", flush=True)
        (WORK / "results-partial.json").write_text(json.dumps(results, indent=1, default=str))
    results["machine"]["load_end"] = load_average()
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out_path = Path(os.environ.get("BENCH_OUT", ROOT / "BENCHMARKS.md"))
    if argv[:1] == ["--render"]:  # rewrite the report from a saved results.json
        return finish(json.loads(Path(argv[1]).read_text()), out_path)
    quick = os.environ.get("BENCH_QUICK", "").strip() not in ("", "0")
    skip = {s.strip() for s in os.environ.get("BENCH_SKIP", "").split(",") if s.strip()}
    unknown = sorted(skip - set(SECTIONS))
    if unknown:
        print(f"bench: BENCH_SKIP names no section: {', '.join(unknown)}; the sections are: "
              + ", ".join(SECTIONS), file=sys.stderr)
        return 2
    try:
        reuse = reused_files(os.environ.get("BENCH_REUSE", ""))
    except ValueError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    results = measure_all(quick, skip, reuse)
    (WORK / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return finish(results, out_path)


if __name__ == "__main__":
    sys.exit(main())
