"""The logic of tools/bench.py (`make bench`) on tiny, hand-made inputs.

No timing is measured or checked here: the bench's numbers go only into BENCHMARKS.md. These
tests check the arithmetic (percentiles), the Markdown it writes, the install-footprint parser
and the junit reader, each against values worked out by hand.
"""

import importlib.util
from pathlib import Path

import pytest

from helpers.registry import Mechanism, Option

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gfl_bench", ROOT / "tools" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- percentiles


def test_percentile_interpolates_between_ranks(bench):
    values = [5.0, 1.0, 4.0, 2.0, 3.0]  # unsorted on purpose
    assert bench.percentile(values, 50) == 3.0
    assert bench.percentile(values, 0) == 1.0 and bench.percentile(values, 100) == 5.0
    # position (5 - 1) * 0.95 = 3.8: 4 + 0.8 * (5 - 4)
    assert bench.percentile(values, 95) == pytest.approx(4.8)
    # even count: p50 halfway between the middle two
    assert bench.percentile([10, 20, 30, 40], 50) == 25
    assert bench.percentile([7], 95) == 7


def test_percentile_of_twenty_values_p95(bench):
    values = list(range(1, 21))  # 1..20: position 19 * 0.95 = 18.05 -> 19 + 0.05
    assert bench.percentile(values, 95) == pytest.approx(19.05)


def test_percentile_rejects_empty_and_bad_q(bench):
    with pytest.raises(ValueError):
        bench.percentile([], 50)
    with pytest.raises(ValueError):
        bench.percentile([1, 2], 101)


def test_latency_summary_and_spread(bench):
    summary = bench.latency_summary([0.004, 0.001, 0.002, 0.003])
    assert summary == {"n": 4, "p50": pytest.approx(0.0025), "p95": pytest.approx(0.00385),
                       "min": 0.001, "max": 0.004}
    assert bench.spread([3, 1, 2]) == {"n": 3, "median": 2, "min": 1, "max": 3}


# ---------------------------------------------------------------- Markdown


def test_markdown_table_exact_text(bench):
    text = bench.markdown_table(["name", "ms"], [["a|b", 1.5], ["c", 20]])
    assert text == ("| name | ms |\n"
                    "| :--- | ---: |\n"
                    "| a\\|b | 1.5 |\n"
                    "| c | 20 |")


def test_markdown_table_rejects_ragged_rows(bench):
    with pytest.raises(ValueError):
        bench.markdown_table(["a", "b"], [["only one"]])


def test_formatting_helpers(bench):
    assert bench.ms(0.0256) == "25.6"
    assert bench.ms(0.00012345, 3) == "0.123"
    assert bench.mb(171_400_000) == "171.4"
    assert bench.with_range({"median": 2, "min": 1, "max": 3}, str) == "2 (1–3)"


# ---------------------------------------------------------------- install footprint


def write(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_parse_record_reads_paths_of_csv_rows(bench):
    record = ('torch/__init__.py,sha256=abc,1234\n'
              '"odd,name.py",sha256=def,10\n'
              '../../../bin/torchrun,sha256=ghi,99\n'
              'torch-2.13.0.dist-info/RECORD,,\n'
              '\n')
    assert bench.parse_record(record) == ["torch/__init__.py", "odd,name.py",
                                          "../../../bin/torchrun",
                                          "torch-2.13.0.dist-info/RECORD"]


def test_distribution_name_is_canonical(bench):
    assert bench.distribution_name("torch-2.13.0+cpu.dist-info") == "torch"
    assert bench.distribution_name("jupyterlab_rise-0.43.1.dist-info") == "jupyterlab-rise"
    assert bench.distribution_name("Babel-2.17.0.dist-info") == "babel"


def test_distribution_sizes_from_records(bench, tmp_path):
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
    sizes = bench.distribution_sizes(site)
    assert sizes == {"big": 1000 + 24 + 7 + 100, "small-pkg": 5}

    result = bench.footprint(venv)
    # RECORD files themselves are on disk too, so the venv is larger than the packages' sum.
    records = sum(p.stat().st_size for p in site.glob("*.dist-info/RECORD"))
    assert result["total"] == 1000 + 24 + 7 + 100 + 5 + records
    assert list(result["packages"]) == ["big", "small-pkg"]  # largest first


def test_oversized_allows_torch_and_jupyter_only(bench):
    packages = {"torch": 756e6, "playwright": 171e6, "jupyterlab": 120e6, "numpy": 71e6}
    assert bench.oversized(packages) == ["playwright"]
    assert bench.oversized({"numpy": 71e6}) == []


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


def test_requirement_roots_follow_includes_markers_and_the_project(bench, tmp_path):
    fake_venv(tmp_path)
    assert bench.requirement_roots(tmp_path / "requirements.txt", PY311) == [
        ("app", ()), ("my-project", ())]                  # winonly: not on Linux
    win = {**PY311, "sys_platform": "win32"}
    assert bench.requirement_roots(tmp_path / "requirements.txt", win) == [
        ("app", ()), ("winonly", ()), ("my-project", ())]
    assert bench.requirement_roots(tmp_path / "requirements-dev.txt", PY311) == [
        ("app", ()), ("my-project", ()), ("test-runner", ())]


def test_dependency_closure_honours_markers_and_requested_extras_only(bench, tmp_path):
    _, site = fake_venv(tmp_path)
    requires = bench.installed_requires(site)
    assert requires["lib-a"] == ["shared", "ghost>=2"]    # names canonical (PEP 503)
    found, missing = bench.dependency_closure([("app", ())], requires, PY311)
    # speedup: lib-b's "fast" extra, asked for by app; not slowpath, old-backport (Python < 3.8),
    # nor app's own extras "test" and "docs", which nobody asked for.
    assert found == {"app", "lib-a", "lib-b", "speedup", "shared"}
    assert missing == {"ghost"}
    found, _ = bench.dependency_closure([("app", ("docs",))], requires, PY311)
    assert found == {"app", "lib-a", "lib-b", "speedup", "shared", "docs-tool"}
    old = {**PY311, "python_version": "3.7", "python_full_version": "3.7.9"}
    found, _ = bench.dependency_closure([("app", ())], requires, old)
    assert "old-backport" in found
    # lib-b without its extra: no speedup
    assert bench.dependency_closure([("lib-b", ())], requires, PY311) == ({"lib-b"}, set())


def test_closure_footprint_sums_only_the_closure(bench, tmp_path):
    venv, _ = fake_venv(tmp_path)
    learner = bench.closure_footprint(venv, tmp_path / "requirements.txt", PY311)
    # app 100 + lib-a 20 + lib-b 30 + speedup 4 + shared 5 + my-project 7
    assert learner["packages"] == {"app": 100, "lib-b": 30, "lib-a": 20, "my-project": 7,
                                   "shared": 5, "speedup": 4}
    assert list(learner["packages"]) == ["app", "lib-b", "lib-a", "my-project", "shared",
                                         "speedup"]   # largest first
    assert learner["total"] == 166 and learner["missing"] == ["ghost"]
    assert learner["closure_of"] == "requirements.txt"
    dev = bench.closure_footprint(venv, tmp_path / "requirements-dev.txt", PY311)
    assert dev["total"] == 166 + 2000 + 300             # + test-runner and its plugin
    assert set(dev["packages"]) - set(learner["packages"]) == {"test-runner", "runner-plugin"}


# ---------------------------------------------------------------- junit and cases


def test_junit_file_times_sums_cells_per_notebook(bench):
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
    times, counts = bench.junit_file_times(xml)
    assert times == {"00_start_here.ipynb": 2.75, "01_zero_grad.ipynb": 4.0}
    assert counts == {"00_start_here.ipynb": (2, 0), "01_zero_grad.ipynb": (1, 1)}
    # xunit2 reports have no file attribute: the notebook comes from the classname
    xunit2 = xml.replace('file="notebooks/00_start_here.ipynb" ', "").replace(
        'file="notebooks/01_zero_grad.ipynb" ', "")
    assert "file=" not in xunit2
    assert bench.junit_file_times(xunit2) == (times, counts)


def test_junit_slowest_cells(bench):
    xml = """<testsuites><testsuite>
 <testcase classname="notebooks.a.ipynb" name="Cell 0" file="notebooks/a.ipynb" time="1.5"/>
 <testcase classname="notebooks.a.ipynb" name="Cell 1" file="notebooks/a.ipynb" time="0.5"/>
 <testcase classname="notebooks.b.ipynb" name="Cell 3" time="2.0"/>
</testsuite></testsuites>"""
    assert bench.junit_slowest_cells(xml, count=2) == [(2.0, "b.ipynb", "Cell 3"),
                                                        (1.5, "a.ipynb", "Cell 0")]


def test_code_cell_first_line_counts_code_cells_only(bench, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("\n\nslow = measure()\nprint(slow)")])
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert bench.code_cell_first_line(path, "Cell 1") == "slow = measure()"
    assert bench.code_cell_first_line(path, "Cell 0") == "import torch"
    assert bench.code_cell_first_line(path, "Cell 9") == ""


def test_plain_tail_drops_colours_and_progress(bench):
    output = ("bringing up nodes...\n"
              "........................................ [ 17%]\n"
              "......F....                              [100%]\n"
              "\x1b[91mNotebook cell execution failed\x1b[0m\n"
              "1 failed, 418 passed in 33.51s\n")
    assert bench.plain_tail(output) == ("Notebook cell execution failed\n"
                                        "1 failed, 418 passed in 33.51s")
    assert bench.plain_tail("ab" * 25, size=10) == "ab" * 5


def test_toggle_cases_cover_every_choice_from_another_state(bench):
    mechanism = Mechanism(name="fake", title="fake", step=lambda ctx: None, options=(
        Option("a", {"x": "X", "y": "Y", "z": "Z"}, "y"),
        Option("b", {0: "zero", 1: "one"}, 0)))
    assert list(bench.toggle_cases(mechanism)) == [
        ("a", "y", "x"), ("a", "x", "y"), ("a", "y", "z"), ("b", 1, 0), ("b", 0, 1)]


# ---------------------------------------------------------------- the report


def fake_results(cold_p95, suite_wall, big):
    lat = {"n": 10, "p50": 0.020, "p95": cold_p95, "min": 0.015, "max": cold_p95}
    warm = {"n": 10, "p50": 0.0001, "p95": 0.0002, "min": 0.0001, "max": 0.0003}
    stage = {"n": 2, "p50": 0.01, "p95": 0.012, "min": 0.009, "max": 0.012}
    return {
        "machine": {"date": "2026-01-01 00:00 UTC", "cores": 2, "usable_cores": 2,
                    "python": "3.11.2", "platform": "Linux", "cpu": "Test CPU", "torch": "2.13.0",
                    "torch_threads": 2, "memory_gb": 8.0, "graphviz": "dot 2.43",
                    "load_start": (0.5, 0.5, 0.5), "load_end": (0.6, 0.5, 0.5)},
        "toggles": {"cold_repeats": 5, "warm_repeats": 10,
                    "rows": {"control.optimizer_step": {"choices": 2, "cold": lat,
                                                        "warm": warm}},
                    "all": {"cold": lat, "warm": warm},
                    "breakdown": {name: stage for name in
                                  ("steps", "torchviz + diagram", "dot", "table", "total",
                                   "dot, empty graph")},
                    "load": [(0.5, 0.5, 0.5), (0.5, 0.5, 0.5)]},
        "notebooks": {"notebooks": {"00_start_here.ipynb": {"seconds": 4.0, "cells_passed": 9,
                                                            "cells_failed": 0,
                                                            "setup_seconds": 3.0},
                                    "01_zero_grad.ipynb": {"seconds": 8.0, "cells_passed": 9,
                                                           "cells_failed": 0,
                                                           "setup_seconds": 5.0}},
                      "wall": suite_wall, "exit_code": 0, "tail": "",
                      "floor": {"n": 3, "median": 4.0, "min": 3.9, "max": 4.2},
                      "first_optimizer": {"n": 3, "median": 1.0, "min": 0.9, "max": 1.1},
                      "budget": 1.5 * 2 * 4.0 / 2, "load": [None, None, None]},
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


def test_report_says_budgets_hold(bench):
    text, budgets = bench.render_report(fake_results(0.030, 5.0, {}), quick=False)
    assert [ok for *_, ok in budgets] == [True, True, True, True]
    assert "does not hold" not in text
    assert "Test CPU; 2 cores (2 usable)" in text
    assert "| control.optimizer_step | 2 | 10 | 20.0 | 30.0 | 15.0–30.0 |" in text
    # budget: 1.5 x 2 notebooks x 4.0 s floor / 2 cores = 6.0 s
    assert "| Strict nbval, whole suite | <= 1.5 x 2 x floor / 2 = 6.0 s | 5.0 s | holds |" in text
    assert "make bench" in text and "BENCH_QUICK=1" in text
    assert "at start: (0.50, 0.50, 0.50); at end: (0.60, 0.50, 0.50)." in text


def test_report_budgets_requirements_closure_and_lists_test_tools_apart(bench):
    results = fake_results(0.030, 5.0, {"jupyterlab-rise": 59e6})
    text, budgets = bench.render_report(results, quick=False)
    footprint = [b for b in budgets if b[0].startswith("Footprint")]
    assert footprint == [("Footprint requirements.txt: nothing but torch/Jupyter > 100 MB",
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


def test_report_says_plainly_which_budget_fails_and_why(bench):
    results = fake_results(0.080, 9.0, {"playwright": 171e6})
    text, budgets = bench.render_report(results, quick=True)
    failed = [name for name, *_, ok in budgets if not ok]
    assert failed == ["Toggle, cold p95", "Strict nbval, whole suite",
                      "Footprint requirements.txt: nothing but torch/Jupyter > 100 MB"]
    table = [line for line in text.splitlines() if line.endswith("| **does not hold** |")]
    assert len(table) == 3
    assert "Cold toggle p95 is 80.0 ms" in text
    # 01 ran 8.0 s = 2.0 x the 4.0 s floor, over the 1.5 x allowed on average
    assert "01_zero_grad.ipynb (2.0 x floor)" in text
    # setup cells: 3 + 5 = 8.0 of 12.0 s; on average 4.0 s = 1.0 x the 4.0 s floor
    assert "setup cells alone" in text and "took 8.0 of the 12.0 s, 1.0 x the floor" in text
    assert "| 01_zero_grad.ipynb | 8.0 | 2.0 | 5.0 | 9 | 0 |" in text
    assert "playwright: a test-only tool" in text
    # floor 4.0 s + first optimizer 1.0 s, for 2 notebooks on 2 cores
    assert "2 x (4.00 + 1.00) s / 2 cores = 5.0 s" in text
    assert "BENCH_QUICK=1: fewer repeats" in text
