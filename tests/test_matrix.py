"""tools/matrix.py's pure parts, the committed results (MATRIX.md) against pyproject.toml's
torch floor, and widget tooltips that work on ipywidgets 7.7 (Colab) and 8 without warnings.

Nothing here installs anything: `make matrix` does the installs and runs.
"""

import re
import sys
import tomllib
import warnings
from pathlib import Path

import ipywidgets as widgets
import pytest
import traitlets
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import matrix  # noqa: E402
from conftest import in_ci  # noqa: E402

NOTEBOOKS = ["00_start_here", "01_zero_grad", "02_requires_grad"]


def row(torch, python, statuses, **extra):
    return {"torch": torch, "python": python, "build": "CUDA 12.1", "ipywidgets": "7.7.1",
            "numpy": "1.26.4", "notebooks": dict(zip(NOTEBOOKS, statuses)), **extra}


# ---------------------------------------------------------------- parsing the options

def test_parse_versions_with_and_without_python():
    assert matrix.parse_versions("2.4.0@3.12, 2.6.0,2.13.0@3.11", default_python="3.12") == [
        ("2.4.0", "3.12"), ("2.6.0", "3.12"), ("2.13.0", "3.11")]


@pytest.mark.parametrize("text", ["", "2.4.0@3", "latest", "2.4.0@python3.12", ","])
def test_parse_versions_rejects_bad_input_naming_the_form(text):
    with pytest.raises(ValueError, match="TORCH@PYTHON|no versions"):
        matrix.parse_versions(text)


def test_version_key_orders_releases_numerically():
    assert matrix.version_key("2.10.0") > matrix.version_key("2.9.1")
    assert matrix.version_key("2.13.0+cpu") == (2, 13, 0)


# ---------------------------------------------------------------- what gets installed

def test_numpy_1_only_for_torch_built_against_it():
    assert matrix.numpy_requirement("2.2.2") == "numpy<2"
    assert matrix.numpy_requirement("2.3.1") == "numpy<2"
    assert matrix.numpy_requirement("2.4.0") is None
    assert matrix.numpy_requirement("2.14.1") is None


def test_constraints_replace_torch_numpy_ipywidgets_and_keep_other_pins():
    learner = ("# comment\ntorch==2.13.0\nnumpy==2.4.6; python_version >= \"3.11\"\n"
               "ipywidgets==8.1.9\nmatplotlib==3.11.2  # why\n-e .\n")
    dev = "-r requirements.txt\nnbclient==0.11.0\n"
    lines = matrix.constraint_lines([learner, dev], "2.2.2")
    assert lines == ["matplotlib==3.11.2", "nbclient==0.11.0", "torch==2.2.2",
                     "ipywidgets==7.7.1", "numpy<2"]
    assert "numpy<2" not in matrix.constraint_lines([learner], "2.6.0")


# ---------------------------------------------------------------- recording a failure

def test_describe_error_names_cell_line_code_and_helper_frame():
    source = "x = helpers.measure()\nassert x > 0, 'no time'\n"
    traceback = [
        "\x1b[0;31m---------------------------------------------------------------\x1b[0m",
        "\x1b[0;31mAttributeError\x1b[0m   Traceback (most recent call last)",
        "Cell \x1b[0;32mIn[7], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m x = helpers.measure()",
        "File \x1b[0;32m/tmp/v/lib/python3.12/site-packages/helpers/costs.py:57\x1b[0m, in "
        "\x1b[0;36mmeasure\x1b[0;34m()\x1b[0m",
        "\x1b[0;31mAttributeError\x1b[0m: 'FunctionEvent' object has no attribute 'start_ns'"]
    text = matrix.describe_error(12, source, "AttributeError",
                                 "'FunctionEvent' object has no attribute 'start_ns'", traceback)
    assert text == ("cell 12, line 1 `x = helpers.measure()`: AttributeError: 'FunctionEvent' "
                    "object has no attribute 'start_ns' (helpers/costs.py:57)")


def test_describe_error_drops_the_venv_path_from_the_message():
    evalue = ("cannot import name 'f' from 'helpers.costs' "
              "(/tmp/gfl-matrix-2.2.2-x/venv/lib/python3.12/site-packages/helpers/costs.py)")
    assert matrix.describe_error(5, "", "ImportError", evalue, []) == (
        "cell 5: ImportError: cannot import name 'f' from 'helpers.costs' (helpers/costs.py)")


def test_describe_error_without_frames_still_names_the_cell():
    assert matrix.describe_error(3, "", "AssertionError", "", []) == "cell 3: AssertionError: "


# ---------------------------------------------------------------- the table

def test_table_round_trips_and_marks_every_state():
    rows = [row("2.6.0", "3.12.1", ["pass", "warn", "pass"]),
            row("2.2.2", "3.12.1", ["pass", "fail", "fail"]),
            {"torch": "2.14.1", "python": "3.13", "notebooks": {},
             "note": "not run: no Python 3.13 on this machine"}]
    table = matrix.render_table(rows, NOTEBOOKS)
    lines = table.splitlines()
    assert lines[0] == ("| torch | build | Python | ipywidgets | numpy | 00 | 01 | 02 | result |")
    assert lines[2] == ("| 2.2.2 | CUDA 12.1 | 3.12.1 | 7.7.1 | 1.26.4 | pass | FAIL | FAIL | "
                        "2 of 3 fail: 01, 02 |")  # sorted by torch version
    assert lines[3].endswith("| pass | pass, stderr | pass | all 3 pass |")
    assert lines[4].endswith("| not run | not run | not run | "
                             "not run: no Python 3.13 on this machine |")
    parsed = matrix.parse_table("text before\n\n" + table + "\n\ntext after | not a row |\n")
    assert [(r["torch"], r["python"], r["notebooks"]) for r in parsed] == [
        ("2.2.2", "3.12.1", {"00": "pass", "01": "fail", "02": "fail"}),
        ("2.6.0", "3.12.1", {"00": "pass", "01": "warn", "02": "pass"}),
        ("2.14.1", "3.13", {})]


def test_summary_counts_only_the_notebooks_a_row_ran():
    partial = row("2.2.2", "3.12", ["pass", "fail"])  # 02 did not exist in that run's tree
    assert matrix.summary(partial, NOTEBOOKS) == "1 of 2 fail: 01; not run: 02"
    assert matrix.summary(row("2.6.0", "3.12", ["pass", "pass"]), NOTEBOOKS) == (
        "all 2 pass; not run: 02")


def test_lowest_passing_skips_failing_and_unrun_rows():
    rows = [row("2.10.0", "3.12", ["pass"] * 3), row("2.2.2", "3.12", ["pass", "fail", "pass"]),
            row("2.4.0", "3.12", ["pass", "warn", "pass"]),
            {"torch": "2.1.2", "python": "3.11", "notebooks": {}, "note": "not run: x"}]
    assert matrix.lowest_passing(rows) == "2.4.0"
    assert matrix.lowest_passing(rows[1:2]) is None


def test_readme_block_replaces_only_its_markers():
    text = ("# T\n<!-- notebooks:start -->\nindex\n<!-- notebooks:end -->\n\n## Tested with\n"
            f"{matrix.START}\nold\n{matrix.END}\n\nafter\n")
    block = matrix.readme_block([row("2.4.0", "3.12.1", ["pass"] * 3)], NOTEBOOKS, "2026-12-01")
    new = matrix.update_readme(text, block)
    assert new.startswith("# T\n<!-- notebooks:start -->\nindex\n<!-- notebooks:end -->\n")
    assert new.endswith(f"{matrix.END}\n\nafter\n") and "old" not in new
    assert "| 2.4.0 | 3.12.1 | 7.7.1 | all 3 pass |" in new
    with pytest.raises(ValueError, match="matrix:start"):
        matrix.update_readme("no block", block)


# ---------------------------------------------------------------- the committed results

def committed_rows():
    results = ROOT / "MATRIX.md"
    if not results.exists():  # written by `make matrix` (about 15-40 minutes per version)
        message = "MATRIX.md has not been generated yet: run `make matrix`"
        if in_ci():
            pytest.fail(f"{message}. CI=true, so a missing MATRIX.md fails.", pytrace=False)
        pytest.skip(message)
    return matrix.parse_table(results.read_text())


def pyproject_torch_floor():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = next(Requirement(d) for d in project["dependencies"]
                 if Requirement(d).name == "torch")
    floors = [s.version for s in torch.specifier if s.operator == ">="]
    assert len(floors) == 1, f"pyproject.toml's torch needs exactly one >= floor: {torch}"
    return Version(floors[0])


def test_pyproject_torch_floor_is_the_lowest_version_the_matrix_passed():
    lowest = matrix.lowest_passing(committed_rows())
    assert lowest, "MATRIX.md has no torch version on which every notebook passed"
    assert pyproject_torch_floor() == Version(lowest), (
        f"pyproject.toml says torch>={pyproject_torch_floor()}, but the lowest torch on which "
        f"MATRIX.md shows every notebook passing is {lowest}")


def test_every_tested_version_from_the_floor_up_passes():
    floor = pyproject_torch_floor()
    failing = [f"{r['torch']} on Python {r['python']}" for r in committed_rows()
               if Version(r["torch"]) >= floor and matrix.row_status(r) == "fail"]
    assert not failing, f"MATRIX.md shows failures at or above the floor {floor}: {failing}"


def test_readme_block_lists_the_same_runs_as_matrix_md():
    rows = committed_rows()
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(matrix.START):readme.index(matrix.END)]
    listed = re.findall(r"^\| ([\d.]+) \| ([\d.]+) \|", block, re.MULTILINE)
    assert sorted(listed) == sorted((r["torch"], r["python"]) for r in rows)


# ---------------------------------------------------------------- tooltips on 7.7 and 8

def all_controls():
    from helpers.explorer import control_for
    from helpers.registry import MECHANISMS, get_mechanism
    get_mechanism("control")  # registers every mechanism
    return [(option, control_for(option, mechanism.defaults[option.name]))
            for mechanism in MECHANISMS.values() for option in mechanism.options]


def test_controls_carry_their_tooltip_without_any_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ipywidgets 7 ignores `tooltip=` with a warning
        controls = all_controls()
    assert controls
    name = "tooltip" if Version(widgets.__version__).major >= 8 else "description_tooltip"
    for option, control in controls:
        assert getattr(control, name) == option.description, (option.name, control)


def test_tooltip_uses_description_tooltip_where_tooltip_is_no_trait():
    from helpers.explorer import tooltip

    class Widget7(traitlets.HasTraits):  # ipywidgets 7.7's Dropdown and ToggleButtons
        description_tooltip = traitlets.Unicode(None, allow_none=True)

    assert tooltip(Widget7, "hover") == {"description_tooltip": "hover"}
    assert tooltip(widgets.Dropdown, "hover") == {"tooltip": "hover"}  # 8.x, installed here
    assert Version(widgets.__version__).major >= 8
