"""`make bench` section: install footprint, per distribution (issue 7).

What requirements.txt installs (the dependency closure of its packages, walked through the
installed metadata in .venv, sized as installed there), what requirements-dev.txt adds (the test
tools), the whole .venv, and build/binder-venv (binder/requirements.txt, built as
tests/test_pipeline.py builds it). Budget: no package over 100 MB besides torch and Jupyter.
Environment: BENCH_BUILD_BINDER=0 (do not build build/binder-venv when it is missing).
"""

import csv
import io
import os
import re
import time
from pathlib import Path

from bench_common import ROOT, VENV, markdown_table, mb

TITLE = "Install footprint"
BINDER_VENV = ROOT / "build" / "binder-venv"
BUDGET_PACKAGE_MB = 100.0
# Allowed over 100 MB: torch itself, and Jupyter itself (the JupyterLab / Notebook front ends).
BIG_ALLOWED = ("torch", "jupyterlab", "notebook")
# Why a large package is there, for the notes on a footprint budget that does not hold.
WHY_BIG = {
    "playwright": "a test-only tool (tests/test_browser.py drives Chromium with it); its wheel "
                  "bundles a Node.js runtime for the Playwright driver. It belongs in "
                  "requirements-dev.txt only: learners never need it",
}


def parse_record(text):
    """The file paths listed in a dist-info ``RECORD`` (CSV rows: path, hash, size)."""
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]


def distribution_name(dist_info_dir):
    """``torch`` from ``torch-2.13.0+cpu.dist-info``: the canonical (PEP 503) name."""
    stem = Path(dist_info_dir).name.rsplit(".", 1)[0]
    return canonical(stem.split("-", 1)[0])


def canonical(name):
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


def ensure_binder_venv():
    """build/binder-venv as tests/test_pipeline.py builds and caches it (same code, same
    stamps), so `make test` and `make bench` share one venv."""
    import importlib.util

    import sys

    import pytest  # noqa: F401  (test_pipeline's failure path uses it)

    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))  # test_pipeline imports conftest

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


def measure(quick=False):
    """Sizes of the venvs; ``quick`` changes nothing (sizes are not timed)."""
    build_binder = os.environ.get("BENCH_BUILD_BINDER", "1").strip() != "0"
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


def size_table(packages, total, total_label):
    """The ten largest packages, the rest in one row, and the total."""
    top = list(packages.items())[:10]
    rest = sum(packages.values()) - sum(size for _, size in top)
    rows = [[name, mb(size), f"{100 * size / total:.0f}%"] for name, size in top]
    if len(packages) > len(top):
        rows.append([f"{len(packages) - len(top)} other packages", mb(rest),
                     f"{100 * rest / total:.0f}%"])
    rows.append([f"**{total_label}**", f"**{mb(total)}**", "100%"])
    return markdown_table(["package", "MB", "share"], rows)


def dev_lines(fp):
    """What requirements-dev.txt adds to requirements.txt's closure, and the whole .venv."""
    packages = fp["requirements.txt"]["packages"]
    dev, venv = fp["requirements-dev.txt"], fp[".venv"]
    extras = {name: size for name, size in dev["packages"].items() if name not in packages}
    stray = sorted(set(venv["packages"]) - set(dev["packages"]))
    big_extras = [name for name in extras if extras[name] > BUDGET_PACKAGE_MB * 1e6]
    lines = [f"### `requirements-dev.txt`: {mb(dev['total'])} MB, {len(dev['packages'])} "
             f"packages; the test tools add {mb(sum(extras.values()))} MB", "",
             "What `make test` installs beyond requirements.txt's closure. The budget is for "
             "what learners install, so it does not apply here"
             + (f" (over {BUDGET_PACKAGE_MB:g} MB: " + ", ".join(big_extras) + ")"
                if big_extras else "") + ".", "",
             size_table(extras, sum(extras.values()), f"{len(extras)} packages added"), ""]
    if dev.get("missing"):
        lines += ["Needed but not installed in `.venv`: " + ", ".join(dev["missing"]) + ".", ""]
    lines += [f"The whole `.venv` is {mb(venv['total'])} MB on disk ({len(venv['packages'])} "
              "distributions): besides these, Python's own files and caches"
              + (", and " + ", ".join(stray) + " (in neither file's closure)" if stray else "")
              + ".", ""]
    return lines


def render(fp, results):
    """(Markdown lines, budget rows, notes on budgets that do not hold)."""
    envs = [k for k in ("requirements.txt", "binder/requirements.txt") if k in fp]
    lines = ["Bytes on disk (MB = 10^6 bytes). Per package: the files its `.dist-info/RECORD` "
             "lists (including scripts and `share/jupyter` data files); the rest of a venv is "
             "Python's own files and caches. `requirements.txt` = what `make lab` installs: the "
             "dependency closure of the packages requirements.txt names (each installed "
             "distribution's `Requires-Dist` followed, environment markers applied, extras only "
             "where asked for), sized as installed in `.venv`; its total is the sum of those "
             "packages (no pip, no Python files). `requirements-dev.txt` = what `make test` "
             "installs on top (the test tools), measured the same way, beside the whole "
             "`.venv`. `binder/requirements.txt` = `build/binder-venv`, built as "
             "tests/test_pipeline.py builds it (the CPU torch wheel; the PyTorch index lines "
             f"dropped because this machine reaches only PyPI; {fp['binder_state']}"
             + (f", {fp['binder_seconds']:.0f} s" if "binder_seconds" in fp else "") + ").", ""]
    budgets, notes = [], []
    for env in envs:
        packages = fp[env]["packages"]
        big = oversized(packages)
        name = f"Footprint {env}: nothing but torch/Jupyter > {BUDGET_PACKAGE_MB:g} MB"
        budgets.append((name, "none", ", ".join(big) or "none", not big))
        if big:
            reasons = [f"{pkg}: {WHY_BIG.get(pkg, 'no note on why it is this big')}"
                       for pkg in big]
            notes.append(f"Footprint {env}: over {BUDGET_PACKAGE_MB:g} MB besides torch and "
                         "Jupyter: " + "; ".join(reasons) + ".")
        label = f"all {len(packages)} packages" if "closure_of" in fp[env] else "whole venv"
        lines += [f"### `{env}`: {mb(fp[env]['total'])} MB, {len(packages)} packages", "",
                  size_table(packages, fp[env]["total"], label), ""]
        if fp[env].get("missing"):
            lines += ["Needed but not installed in `.venv`: " + ", ".join(fp[env]["missing"])
                      + ".", ""]
        if env == "requirements.txt" and "requirements-dev.txt" in fp:
            lines += dev_lines(fp)
    if "torch" in fp.get("requirements.txt", {}).get("packages", {}):
        lines += [f"Both venvs hold the CPU build of torch (here `torch "
                  f"{results['machine']['torch']}`). On Linux, `pip install torch` from PyPI "
                  "alone gets the CUDA build instead, which pulls several GB of `nvidia-*` "
                  "packages: that is why binder/requirements.txt names the CPU index.", ""]
    return lines, budgets, notes
