"""The logic of `make bench` (tools/bench.py and its section modules tools/bench_*.py) on tiny,
hand-made inputs, and that BENCHMARKS.md records a passing run on today's notebooks.

No timing or memory is measured or checked here: the bench's numbers go only into
BENCHMARKS.md. These tests check the arithmetic (percentiles, the series memory model), the
Markdown it writes, the install-footprint parser, the junit reader and the rule that a failing
run is never written, each against values worked out by hand.
"""

import re
import sys
from pathlib import Path

import pytest

from helpers.registry import Mechanism, Option

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import bench  # noqa: E402
import bench_common as common  # noqa: E402
import bench_footprint as footprint  # noqa: E402
import bench_memory as memory  # noqa: E402
import bench_notebooks as notebooks  # noqa: E402
import bench_toggles as toggles  # noqa: E402


# ---------------------------------------------------------------- percentiles


def test_percentile_interpolates_between_ranks():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]  # unsorted on purpose
    assert common.percentile(values, 50) == 3.0
    assert common.percentile(values, 0) == 1.0 and common.percentile(values, 100) == 5.0
    # position (5 - 1) * 0.95 = 3.8: 4 + 0.8 * (5 - 4)
    assert common.percentile(values, 95) == pytest.approx(4.8)
    # even count: p50 halfway between the middle two
    assert common.percentile([10, 20, 30, 40], 50) == 25
    assert common.percentile([7], 95) == 7


def test_percentile_of_twenty_values_p95():
    values = list(range(1, 21))  # 1..20: position 19 * 0.95 = 18.05 -> 19 + 0.05
    assert common.percentile(values, 95) == pytest.approx(19.05)


def test_percentile_rejects_empty_and_bad_q():
    with pytest.raises(ValueError):
        common.percentile([], 50)
    with pytest.raises(ValueError):
        common.percentile([1, 2], 101)


def test_latency_summary_and_spread():
    summary = common.latency_summary([0.004, 0.001, 0.002, 0.003])
    assert summary == {"n": 4, "p50": pytest.approx(0.0025), "p95": pytest.approx(0.00385),
                       "min": 0.001, "max": 0.004}
    assert common.spread([3, 1, 2]) == {"n": 3, "median": 2, "min": 1, "max": 3}


# ---------------------------------------------------------------- Markdown


def test_markdown_table_exact_text():
    text = common.markdown_table(["name", "ms"], [["a|b", 1.5], ["c", 20]])
    assert text == ("| name | ms |\n"
                    "| :--- | ---: |\n"
                    "| a\\|b | 1.5 |\n"
                    "| c | 20 |")


def test_markdown_table_rejects_ragged_rows():
    with pytest.raises(ValueError):
        common.markdown_table(["a", "b"], [["only one"]])


def test_formatting_helpers():
    assert common.ms(0.0256) == "25.6"
    assert common.ms(0.00012345, 3) == "0.123"
    assert common.mb(171_400_000) == "171.4"
    assert common.with_range({"median": 2, "min": 1, "max": 3}, str) == "2 (1–3)"


# ---------------------------------------------------------------- install footprint


def write(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_parse_record_reads_paths_of_csv_rows():
    record = ('torch/__init__.py,sha256=abc,1234\n'
              '"odd,name.py",sha256=def,10\n'
              '../../../bin/torchrun,sha256=ghi,99\n'
              'torch-2.13.0.dist-info/RECORD,,\n'
              '\n')
    assert footprint.parse_record(record) == ["torch/__init__.py", "odd,name.py",
                                          "../../../bin/torchrun",
                                          "torch-2.13.0.dist-info/RECORD"]


def test_distribution_name_is_canonical():
    assert footprint.distribution_name("torch-2.13.0+cpu.dist-info") == "torch"
    assert footprint.distribution_name("jupyterlab_rise-0.43.1.dist-info") == "jupyterlab-rise"
    assert footprint.distribution_name("Babel-2.17.0.dist-info") == "babel"


def test_distribution_sizes_from_records(tmp_path):
    venv = tmp_path / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    write(site / "big" / "core.so", 1000)
    write(site / "big" / "__init__.py", 24)
    write(venv / "bin" / "big-cli", 7)          # a script, listed as ../../../bin/big-cli
    write(site / "shared.txt", 100)             # listed by both: counted once, for "big"
    write(site / "small.py", 5)
    (site / "big-1.0.dist-info").mkdir()
    (site / "big-1.0.dist-info" / "RECORD").write_text(
        "big/core.so,sha256=x,1000\nbig/__init__.py,sha256=y,24\n"
        "../../../bin/big-cli,sha256=z,7\nshared.txt,,\nbig/missing.py,,\n")
    (site / "Small_Pkg-2.0.dist-info").mkdir()
    (site / "Small_Pkg-2.0.dist-info" / "RECORD").write_text("small.py,,\nshared.txt,,\n")
    sizes = footprint.distribution_sizes(site)
    assert sizes == {"big": 1000 + 24 + 7 + 100, "small-pkg": 5}

    result = footprint.footprint(venv)
    # RECORD files themselves are on disk too, so the venv is larger than the packages' sum.
    records = sum(p.stat().st_size for p in site.glob("*.dist-info/RECORD"))
    assert result["total"] == 1000 + 24 + 7 + 100 + 5 + records
    assert list(result["packages"]) == ["big", "small-pkg"]  # largest first


def test_oversized_allows_torch_and_jupyter_only():
    packages = {"torch": 756e6, "playwright": 171e6, "jupyterlab": 120e6, "numpy": 71e6}
    assert footprint.oversized(packages) == ["playwright"]
    assert footprint.oversized({"numpy": 71e6}) == []


# ---------------------------------------------------------------- requirements.txt closure

# A hand-made site-packages: distribution -> (bytes of its one file, Requires-Dist lines).
FAKE_DISTS = {
    "App": (100, ["Lib_A>=1.0", "lib-b[fast]", "old-backport; python_version < '3.8'",
                  "test-runner; extra == 'test'", "docs-tool; extra == 'docs'"]),
    "lib_a": (20, ["shared", "ghost>=2"]),            # ghost is not installed
    "lib-b": (30, ["speedup; extra == 'fast'", "slowpath; extra == 'slow'"]),
    "speedup": (4, []),
    "shared": (5, []),
    "old-backport": (1000, []),
    "test-runner": (2000, ["runner-plugin"]),
    "runner-plugin": (300, []),
    "docs-tool": (3000, []),
    "slowpath": (4000, []),
    "winonly": (5000, []),
    "unrelated": (6000, []),
    "my_project": (7, ["shared", "lib-b"]),          # this repository, as `-e .` installs it
}
PY311 = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux"}


def fake_venv(root):
    venv = root / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    for name, (size, requires) in FAKE_DISTS.items():
        folder = name.replace("-", "_").lower()
        write(site / folder / "data.bin", size)
        info = site / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\n" f"Name: {name}\nVersion: 1.0\n"
                                       + "".join(f"Requires-Dist: {r}\n" for r in requires))
        (info / "RECORD").write_text(f"{folder}/data.bin,,\n")
    (root / "pyproject.toml").write_text('[build-system]\nrequires = ["x"]\n\n'
                                         '[project]\nname = "My_Project"\nversion = "1.0"\n')
    (root / "requirements.txt").write_text(
        "# learners\nApp==1.0  # the app\nwinonly==1.0; sys_platform == 'win32'\n-e .\n")
    (root / "requirements-dev.txt").write_text("-r requirements.txt\ntest-runner==1.0\n")
    return venv, site


def test_requirement_roots_follow_includes_markers_and_the_project(tmp_path):
    fake_venv(tmp_path)
    assert footprint.requirement_roots(tmp_path / "requirements.txt", PY311) == [
        ("app", ()), ("my-project", ())]                  # winonly: not on Linux
    win = {**PY311, "sys_platform": "win32"}
    assert footprint.requirement_roots(tmp_path / "requirements.txt", win) == [
        ("app", ()), ("winonly", ()), ("my-project", ())]
    assert footprint.requirement_roots(tmp_path / "requirements-dev.txt", PY311) == [
        ("app", ()), ("my-project", ()), ("test-runner", ())]


def test_dependency_closure_honours_markers_and_requested_extras_only(tmp_path):
    _, site = fake_venv(tmp_path)
    requires = footprint.installed_requires(site)
    assert requires["lib-a"] == ["shared", "ghost>=2"]    # names canonical (PEP 503)
    found, missing = footprint.dependency_closure([("app", ())], requires, PY311)
    # speedup: lib-b's "fast" extra, asked for by app; not slowpath, old-backport (Python < 3.8),
    # nor app's own extras "test" and "docs", which nobody asked for.
    assert found == {"app", "lib-a", "lib-b", "speedup", "shared"}
    assert missing == {"ghost"}
    found, _ = footprint.dependency_closure([("app", ("docs",))], requires, PY311)
    assert found == {"app", "lib-a", "lib-b", "speedup", "shared", "docs-tool"}
    old = {**PY311, "python_version": "3.7", "python_full_version": "3.7.9"}
    found, _ = footprint.dependency_closure([("app", ())], requires, old)
    assert "old-backport" in found
    # lib-b without its extra: no speedup
    assert footprint.dependency_closure([("lib-b", ())], requires, PY311) == ({"lib-b"}, set())


def test_closure_footprint_sums_only_the_closure(tmp_path):
    venv, _ = fake_venv(tmp_path)
    learner = footprint.closure_footprint(venv, tmp_path / "requirements.txt", PY311)
    # app 100 + lib-a 20 + lib-b 30 + speedup 4 + shared 5 + my-project 7
    assert learner["packages"] == {"app": 100, "lib-b": 30, "lib-a": 20, "my-project": 7,
                                   "shared": 5, "speedup": 4}
    assert list(learner["packages"]) == ["app", "lib-b", "lib-a", "my-project", "shared",
                                         "speedup"]   # largest first
    assert learner["total"] == 166 and learner["missing"] == ["ghost"]
    assert learner["closure_of"] == "requirements.txt"
    dev = footprint.closure_footprint(venv, tmp_path / "requirements-dev.txt", PY311)
    assert dev["total"] == 166 + 2000 + 300             # + test-runner and its plugin
    assert set(dev["packages"]) - set(learner["packages"]) == {"test-runner", "runner-plugin"}


# ---------------------------------------------------------------- junit and cases


def test_junit_file_times_sums_cells_per_notebook():
    xml = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
 <testcase classname="notebooks.00_start_here.ipynb" name="Cell 0"
           file="notebooks/00_start_here.ipynb" time="2.5"/>
 <testcase classname="notebooks.00_start_here.ipynb" name="Cell 1"
           file="notebooks/00_start_here.ipynb" time="0.25"/>
 <testcase classname="notebooks.01_zero_grad.ipynb" name="Cell 0"
           file="notebooks/01_zero_grad.ipynb" time="3.0"/>
 <testcase classname="notebooks.01_zero_grad.ipynb" name="Cell 1"
           file="notebooks/01_zero_grad.ipynb" time="1.0"><failure message="x"/></testcase>
</testsuite></testsuites>"""
    times, counts = notebooks.junit_file_times(xml)
    assert times == {"00_start_here.ipynb": 2.75, "01_zero_grad.ipynb": 4.0}
    assert counts == {"00_start_here.ipynb": (2, 0), "01_zero_grad.ipynb": (1, 1)}
    # xunit2 reports have no file attribute: the notebook comes from the classname
    xunit2 = xml.replace('file="notebooks/00_start_here.ipynb" ', "").replace(
        'file="notebooks/01_zero_grad.ipynb" ', "")
    assert "file=" not in xunit2
    assert notebooks.junit_file_times(xunit2) == (times, counts)


def test_junit_slowest_cells():
    xml = """<testsuites><testsuite>
 <testcase classname="notebooks.a.ipynb" name="Cell 0" file="notebooks/a.ipynb" time="1.5"/>
 <testcase classname="notebooks.a.ipynb" name="Cell 1" file="notebooks/a.ipynb" time="0.5"/>
 <testcase classname="notebooks.b.ipynb" name="Cell 3" time="2.0"/>
</testsuite></testsuites>"""
    assert notebooks.junit_slowest_cells(xml, count=2) == [(2.0, "b.ipynb", "Cell 3"),
                                                        (1.5, "a.ipynb", "Cell 0")]


def test_code_cell_first_line_counts_code_cells_only(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("\n\nslow = measure()\nprint(slow)")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert notebooks.code_cell_first_line(path, "Cell 1") == "slow = measure()"
    assert notebooks.code_cell_first_line(path, "Cell 0") == "import torch"
    assert notebooks.code_cell_first_line(path, "Cell 9") == ""


def test_plain_tail_drops_colours_and_progress():
    output = ("bringing up nodes...\n"
              "........................................ [ 17%]\n"
              "......F....                              [100%]\n"
              "\x1b[91mNotebook cell execution failed\x1b[0m\n"
              "1 failed, 418 passed in 33.51s\n")
    assert notebooks.plain_tail(output) == ("Notebook cell execution failed\n"
                                        "1 failed, 418 passed in 33.51s")
    assert notebooks.plain_tail("ab" * 25, size=10) == "ab" * 5


def test_toggle_cases_cover_every_choice_from_another_state():
    mechanism = Mechanism(name="fake", title="fake", step=lambda ctx: None, options=(
        Option("a", {"x": "X", "y": "Y", "z": "Z"}, "y"),
        Option("b", {0: "zero", 1: "one"}, 0)))
    assert list(toggles.toggle_cases(mechanism)) == [
        ("a", "y", "x"), ("a", "x", "y"), ("a", "y", "z"), ("b", 1, 0), ("b", 0, 1)]


# ---------------------------------------------------------------- the series memory model


def test_series_peak_counts_the_kernels_alive_when_each_notebook_opens():
    # opens at 0, 10, 20, 30 min; each lives 10 + 16 min: at 30 min kernels 1, 2, 3 are alive
    assert memory.series_peak([1, 2, 4, 8], [10] * 4, 960, server=100) == (114, 3, 3)
    # 20 min each: at 60 min only kernels 2 (ends at 76) and 3 are alive
    assert memory.series_peak([1, 2, 4, 8], [20] * 4, 960) == (12, 3, 2)
    # a kernel culled exactly when the next notebook opens is gone (half-open lifetime)
    assert memory.series_peak([5, 3], [8, 8], 0) == (5, 0, 1)
    with pytest.raises(ValueError):
        memory.series_peak([1, 2], [10], 960)


def test_shortest_stay_per_notebook_under_a_budget():
    # m minutes each: kernels i < j overlap when (j - i) * m < m + 16; at m = 16 only
    # neighbours do (4 + 8 = 12 < 13); at m = 15 three do (2 + 4 + 8 = 14)
    assert memory.shortest_stay([1, 2, 4, 8], 960, 0, 13) == 16
    assert memory.shortest_stay([1, 2, 4, 8], 960, 0, 8) is None  # one kernel alone is 8


def test_learner_minutes_reads_the_first_number_of_the_time_line(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title\n\nIn 3 steps."),
        nbformat.v4.new_markdown_cell("**Time**: 10 minutes for the core; about 45 more.")])
    nbformat.write(nb, tmp_path / "a.ipynb")
    assert memory.learner_minutes(tmp_path / "a.ipynb") == 10
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "b.ipynb")
    with pytest.raises(ValueError, match="b.ipynb"):
        memory.learner_minutes(tmp_path / "b.ipynb")


def test_learner_minutes_of_every_notebook_today():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert 1 <= memory.learner_minutes(path) <= 120, path.name


# ---------------------------------------------------------------- the report

NAMES = ["00_start_here.ipynb", "01_zero_grad.ipynb"]


def fake_results(cold_p95, suite_wall, big, peak01=460e6):
    lat = {"n": 10, "p50": 0.020, "p95": cold_p95, "min": 0.015, "max": cold_p95}
    warm = {"n": 10, "p50": 0.0001, "p95": 0.0002, "min": 0.0001, "max": 0.0003}
    stage = {"n": 2, "p50": 0.01, "p95": 0.012, "min": 0.009, "max": 0.012}
    return {
        "machine": {"date": "2026-01-01 00:00 UTC", "cores": 2, "usable_cores": 2,
                    "python": "3.11.2", "platform": "Linux", "cpu": "Test CPU", "torch": "2.13.0",
                    "torch_threads": 2, "memory_gb": 8.0, "graphviz": "dot 2.43",
                    "load_start": (0.5, 0.5, 0.5), "load_end": (0.6, 0.5, 0.5)},
        "source": {"commit": "abc1234", "changed_files": 0, "notebooks": list(NAMES)},
        "toggles": {"cold_repeats": 5, "warm_repeats": 10,
                    "rows": {"control.optimizer_step": {"choices": 2, "cold": lat,
                                                        "warm": warm}},
                    "all": {"cold": lat, "warm": warm},
                    "breakdown": {name: stage for name in
                                  ("steps", "torchviz + diagram", "dot", "table", "total",
                                   "dot, empty graph")},
                    "load": [(0.5, 0.5, 0.5), (0.5, 0.5, 0.5)]},
        "notebooks": {"notebooks": {NAMES[0]: {"seconds": 4.0, "cells_passed": 9,
                                               "cells_failed": 0, "setup_seconds": 3.0},
                                    NAMES[1]: {"seconds": 8.0, "cells_passed": 9,
                                               "cells_failed": 0, "setup_seconds": 5.0}},
                      "wall": suite_wall, "exit_code": 0, "tail": "",
                      "floor": {"n": 5, "median": 4.0, "min": 3.9, "max": 4.2},
                      "floor_imports": {"n": 5, "median": 3.0, "min": 2.9, "max": 3.1},
                      "floor_optimizer": {"n": 5, "median": 1.0, "min": 0.9, "max": 1.1},
                      "budget": 1.5 * 2 * 4.0 / 2, "load": [None, None, None]},
        "memory": {"floor": [{"peak": 400e6, "end": 390e6}, {"peak": 410e6, "end": 395e6},
                             {"peak": 400e6, "end": 390e6}],
                   "notebooks": {NAMES[0]: [{"peak": 420e6, "end": 410e6, "tree": 425e6,
                                             "most_processes": 2}] * 2,
                                 NAMES[1]: [{"peak": peak01, "end": 450e6, "tree": peak01,
                                             "most_processes": 1}] * 2},
                   "failed": {}, "server": 100e6, "minutes": {NAMES[0]: 15, NAMES[1]: 25},
                   "cull_idle_timeout": 900, "cull_interval": 60, "load": [None, None]},
        "footprint": {"binder_state": "reused",
                      "requirements.txt": {"closure_of": "requirements.txt",
                                           "total": 770e6 + sum(big.values()),
                                           "packages": {"torch": 700e6, **big, "numpy": 70e6},
                                           "missing": []},
                      "requirements-dev.txt": {"closure_of": "requirements-dev.txt",
                                               "total": 945e6 + sum(big.values()),
                                               "packages": {"torch": 700e6, **big,
                                                            "playwright": 171e6,
                                                            "numpy": 70e6, "pytest": 4e6},
                                               "missing": []},
                      ".venv": {"total": 1300e6,
                                "packages": {"torch": 700e6, **big, "playwright": 171e6,
                                             "numpy": 70e6, "pytest": 4e6, "pip": 10e6}}},
    }


def test_report_says_budgets_hold_and_records_the_passing_run():
    text, budgets = bench.render_report(fake_results(0.030, 5.0, {}), quick=False)
    assert [ok for *_, ok in budgets] == [True] * 6
    assert "does not hold" not in text
    assert bench.PASS_LINE in text
    assert "- Notebooks (2): 00_start_here.ipynb, 01_zero_grad.ipynb." in text
    assert "- Commit: abc1234\n" in text
    # sections numbered in SECTIONS order, those not in the results left out
    headings = re.findall(r"(?m)^## \d+\. .*$", text)
    assert headings == ["## 1. Toggle latency", "## 2. Notebook execution",
                        "## 3. Kernel memory (resident set)", "## 4. Install footprint"]
    assert "Test CPU; 2 cores (2 usable)" in text
    assert "| control.optimizer_step | 2 | 10 | 20.0 | 30.0 | 15.0–30.0 |" in text
    # budget: 1.5 x 2 notebooks x 4.0 s floor / 2 cores = 6.0 s
    assert "| Strict nbval, whole suite | <= 1.5 x 2 x floor / 2 = 6.0 s | 5.0 s | holds |" in text
    assert "| 00_start_here.ipynb | 4.0 | 1.00 | 3.0 | 9 | 0 |" in text
    # memory: floor median of 400, 410, 400 MB = 400 MB; 1.2 x = 480 MB; 01 460 MB = 1.15 x
    assert ("| Kernel peak RSS, every notebook | <= 1.2 x floor (400 MB) = 480 MB | "
            "460 MB (1.15 x, 01_zero_grad.ipynb) | holds |") in text
    assert "| 01_zero_grad.ipynb | 460 | 460–460 | 1.15 | 450 | 460 | 1 | 25 |" in text
    assert "| 00_start_here.ipynb | 420 | 420–420 | 1.05 | 410 | 425 | 2 | 15 |" in text
    # series: 01 opens at 15 min while 00 (425 MB with its child) lives until 15 + 16 min:
    # 100 + 425 + 460 MB
    assert ("| Series in order, culled after 15 min idle (stated times) | < 2 GB | "
            "985 MB (2 kernels) | holds |") in text
    assert "make bench" in text and "BENCH_QUICK=1" in text
    assert "at start: (0.50, 0.50, 0.50); at end: (0.60, 0.50, 0.50)." in text


def test_report_budgets_requirements_closure_and_lists_test_tools_apart():
    results = fake_results(0.030, 5.0, {"jupyterlab-rise": 59e6})
    text, budgets = bench.render_report(results, quick=False)
    footprint_rows = [b for b in budgets if b[0].startswith("Footprint")]
    assert footprint_rows == [("Footprint requirements.txt: nothing but torch/Jupyter > 100 MB",
                               "none", "none", True)]      # playwright is a dev extra only
    # torch 700 + jupyterlab-rise 59 + numpy 70 = 829 MB
    assert "### `requirements.txt`: 829.0 MB, 3 packages" in text
    assert "| **all 3 packages** | **829.0** | 100% |" in text
    # dev extras: playwright 171 + pytest 4 = 175 MB, not in requirements.txt's closure
    assert ("### `requirements-dev.txt`: 1,004.0 MB, 5 packages; the test tools add "
            "175.0 MB") in text
    assert "does not apply here (over 100 MB: playwright)." in text
    assert "| playwright | 171.0 | 98% |" in text and "| pytest | 4.0 | 2% |" in text
    assert "| **2 packages added** | **175.0** | 100% |" in text
    assert ("The whole `.venv` is 1,300.0 MB on disk (6 distributions): besides these, "
            "Python's own files and caches, and pip (in neither file's closure).") in text


def test_report_says_plainly_which_budget_fails_and_why():
    results = fake_results(0.080, 9.0, {"playwright": 171e6}, peak01=520e6)
    text, budgets = bench.render_report(results, quick=True)
    failed = [name for name, *_, ok in budgets if not ok]
    assert failed == ["Toggle, cold p95", "Strict nbval, whole suite",
                      "Kernel peak RSS, every notebook",
                      "Footprint requirements.txt: nothing but torch/Jupyter > 100 MB"]
    table = [line for line in text.splitlines() if line.endswith("| **does not hold** |")]
    assert len(table) == 4
    assert "Cold toggle p95 is 80.0 ms" in text
    # 01 ran 8.0 s = 2.0 x the 4.0 s floor, over the 1.5 x allowed on average
    assert "01_zero_grad.ipynb (2.0 x floor)" in text
    # setup cells: 3 + 5 = 8.0 of 12.0 s; on average 4.0 s = 1.3 x the 3.0 s import cell
    assert "took 8.0 of the 12.0 s, on average 1.3 x the floor's import cell" in text
    assert "| 01_zero_grad.ipynb | 8.0 | 2.00 | 5.0 | 9 | 0 |" in text
    # 520 MB = 1.30 x the 400 MB floor
    assert "01_zero_grad.ipynb 520 MB" in text and "| 1.30 |" in text
    assert "within 70 MB of their peak" in text   # 520 - 450
    assert "**does not hold** for 01_zero_grad.ipynb (1.30 x)." in text
    assert "playwright: a test-only tool" in text
    assert "BENCH_QUICK=1: fewer repeats" in text


def test_report_of_a_series_over_budget():
    results = fake_results(0.030, 5.0, {}, peak01=460e6)
    results["memory"]["server"] = 1200e6   # 1200 + 425 + 460 = 2085 MB > 2 GB
    text, budgets = bench.render_report(results, quick=False)
    assert [name for name, *_, ok in budgets if not ok] == [
        "Series in order, culled after 15 min idle (stated times)"]
    assert "2 kernels are alive at once when 01_zero_grad.ipynb opens (2,085 MB)" in text


def test_a_failing_run_is_not_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "WORK", tmp_path / "work")
    out = tmp_path / "BENCHMARKS.md"
    results = fake_results(0.030, 5.0, {})
    results["notebooks"]["exit_code"] = 1
    results["notebooks"]["tail"] = "FAILED notebooks/01_zero_grad.ipynb::Cell 3"
    results["notebooks"]["notebooks"][NAMES[1]]["cells_failed"] = 1
    assert bench.finish(results, out) == 1
    assert not out.exists()
    assert "FAILED notebooks/01_zero_grad.ipynb::Cell 3" in capsys.readouterr().err
    results = fake_results(0.030, 5.0, {})
    results["memory"]["failed"] = {NAMES[0]: "CellExecutionError: boom"}
    assert bench.finish(results, out) == 1
    assert not out.exists()
    assert "00_start_here.ipynb: CellExecutionError: boom" in capsys.readouterr().err


def test_a_passing_run_is_written_and_a_partial_one_not_to_benchmarks_md(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "WORK", tmp_path / "work")
    monkeypatch.setattr(bench, "ROOT", tmp_path)
    out = tmp_path / "BENCHMARKS.md"
    assert bench.finish(fake_results(0.030, 5.0, {}), out) == 0
    assert bench.PASS_LINE in out.read_text()
    out.unlink()
    partial = fake_results(0.030, 5.0, {})
    del partial["memory"]                                # BENCH_SKIP=memory
    assert bench.finish(partial, out) == 0
    assert not out.exists()
    written = (tmp_path / "work" / "BENCHMARKS.partial.md").read_text()
    assert bench.PASS_LINE not in written and "## 2. Notebook execution" in written


def test_unknown_section_names_the_valid_ones():
    with pytest.raises(ValueError, match="toggles, latency, notebooks, memory"):
        bench.section_module("notebook")


# ---------------------------------------------------------------- BENCHMARKS.md today


def test_benchmarks_md_records_a_passing_run_on_todays_notebooks():
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert bench.PASS_LINE in text, "BENCHMARKS.md was not written from a passing run"
    found = re.search(r"(?m)^- Notebooks \((\d+)\): (.*)\.$", text)
    assert found, "BENCHMARKS.md does not list the notebooks it ran on"
    listed = found.group(2).split(", ")
    today = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert listed == today, "notebooks/ changed since BENCHMARKS.md was written: run make bench"
    assert int(found.group(1)) == len(today)


def resolve(dotted):
    """The object a dotted name such as ``helpers.costs.mode_memory`` names, or None."""
    import importlib

    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            value = getattr(value, part, None)
        return value
    return None


def test_benchmarks_md_names_only_helpers_that_exist():
    text = (ROOT / "BENCHMARKS.md").read_text()
    names = set(re.findall(r"`((?:helpers|costs)(?:\.[A-Za-z_]\w*)+)", text))
    assert names, "expected BENCHMARKS.md to name the helpers it measures"
    missing = [name for name in sorted(names)
               if resolve(name if name.startswith("helpers.") else "helpers." + name) is None]
    assert not missing, f"BENCHMARKS.md names what helpers/ no longer has: {missing}"


def test_benchmarks_md_names_only_functions_helpers_still_has():
    # A bare `snake_case` name in the report (`svg_from_dot`) must still occur in helpers/ or
    # in the bench modules that measure it (`comm_msg`: the message the latency bench times).
    text = (ROOT / "BENCHMARKS.md").read_text()
    names = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", text))
    files = [*(ROOT / "helpers").rglob("*.py"), *(ROOT / "tools").glob("bench*.py")]
    source = "\n".join(p.read_text() for p in files)
    gone = sorted(name for name in names if not re.search(rf"\b{name}\b", source))
    assert not gone, f"BENCHMARKS.md names what helpers/ and tools/bench*.py no longer have: {gone}"


def test_reused_sections_are_named_in_the_report():
    assert bench.reused_files(" latency=build/x.json ,") == {"latency": Path("build/x.json")}
    for bad in ("notebooks=n.json", "latency", "nothing=x.json"):
        with pytest.raises(ValueError, match="toggles, latency, footprint, teaching, doctor"):
            bench.reused_files(bad)
    results = fake_results(0.030, 5.0, {})
    results["reused"] = {"footprint": "fp.json, written 2026-01-01 00:00 UTC"}
    text, _ = bench.render_report(results, quick=False)
    assert ("- Measured in a separate run on the same machine and tree, not in this one: "
            "footprint (fp.json, written 2026-01-01 00:00 UTC).") in text


def test_readme_memory_advice_follows_benchmarks_md():
    # The JupyterHub note's numbers are the measured ones, not remembered ones.
    text = (ROOT / "BENCHMARKS.md").read_text()
    peaks = [int(mb.replace(",", "")) for mb in
             re.findall(r"(?m)^\| \d\d_\w+\.ipynb \| ([\d,]+) \| [\d,]+–[\d,]+ \|", text)]
    assert len(peaks) == len(list((ROOT / "notebooks").glob("*.ipynb")))
    series = re.search(r"(?m)^\| the time each notebook states \| \d+ min \| ([\d,]+) MB", text)
    assert series, "BENCHMARKS.md has no series simulation row"
    readme = (ROOT / "README.md").read_text()
    stated = re.search(r"kernel peaked at (\d+)-(\d+) MB[^.]*?at ([\d,]+) MB; give each user "
                       r"(\d+) GB", " ".join(readme.split()))
    assert stated, "README's JupyterHub note should state the measured memory"
    low, high, total, gigabytes = stated.groups()
    assert (int(low), int(high)) == (min(peaks), max(peaks))
    assert total == series.group(1)
    assert int(gigabytes) * 1000 >= int(total.replace(",", ""))


def test_excess_by_cell_splits_the_peak_above_the_floor_between_cells():
    # (code cell, first line, peak after it); floor 100: cell 0 reaches 90 (below the floor),
    # cell 1 raises it to 130 (+30 above the floor), cell 2 adds nothing, cell 3 raises it to
    # 150 (+20 above the 130 before it).
    cells = [[0, "import sys", 90], [1, "a = 1", 130], [2, "b = 2", 130], [3, "c = 3", 150]]
    assert memory.excess_by_cell(cells, 100) == [(1, "a = 1", 30), (3, "c = 3", 20)]
    assert sum(rise for *_, rise in memory.excess_by_cell(cells, 100)) == 150 - 100
    assert memory.excess_by_cell(cells, 200) == []  # never above the floor: nothing to name
