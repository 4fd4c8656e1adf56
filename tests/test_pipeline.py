"""The notebook pipeline: twins, stored outputs, pinned requirements, the Binder environment.

Run by ``make test`` beside the strict nbval run over notebooks/*.ipynb.
"""

import fcntl
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from conftest import digest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "sources"
REQUIREMENTS = ROOT / "requirements.txt"  # what learners need (`make lab`)
DEV_REQUIREMENTS = ROOT / "requirements-dev.txt"  # + the test tools (`make test`)
BINDER = ROOT / "binder"
BINDER_VENV = ROOT / "build" / "binder-venv"  # git-ignored cache, reused while inputs match

TWINS = sorted(SOURCES.glob("*.py"))
IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb"))
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

# Text that must never be stored in an output: it changes from run to run or machine to machine.
FORBIDDEN = {
    "a warning": re.compile(r"Warning"),
    "a memory address": re.compile(r" at 0x[0-9a-fA-F]+"),
    "an absolute path": re.compile(r"/root/|/home/|/work/|/tmp/|site-packages"),
}
TEXT_MIME = ("text/plain", "text/html", "text/markdown", "text/latex", "image/svg+xml",
             "application/json", "application/javascript")


def load_build_tool():
    spec = importlib.util.spec_from_file_location("build_notebooks",
                                                  ROOT / "tools" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_ipynb(path):
    return nbformat.read(path, as_version=4)


def cell_summary(cell):
    return (cell.cell_type, cell.source.strip(), tuple(cell.metadata.get("tags", ())))


# ---------------------------------------------------------------- (a) twins agree


def test_there_is_at_least_one_notebook():
    assert TWINS, f"no twins in {SOURCES.relative_to(ROOT)}"


def test_every_twin_has_a_notebook_and_vice_versa():
    twin_names = {p.stem for p in TWINS}
    notebook_names = {p.stem for p in IPYNBS}
    assert not twin_names - notebook_names, (
        f"twins without a built notebook (run `make notebooks NB=...`): "
        f"{sorted(twin_names - notebook_names)}")
    assert not notebook_names - twin_names, (
        f"notebooks without a twin in notebooks/sources/: {sorted(notebook_names - twin_names)}")


@pytest.mark.parametrize("twin", TWINS, ids=lambda p: p.stem)
def test_notebook_cells_match_twin(twin):
    built = NOTEBOOKS / f"{twin.stem}.ipynb"
    if not built.exists():
        pytest.fail(f"{built.relative_to(ROOT)} missing: run `make notebooks NB={twin.stem}`")
    expected = [cell_summary(c) for c in jupytext.read(twin, fmt="py:percent").cells]
    actual = [cell_summary(c) for c in read_ipynb(built).cells]
    assert len(actual) == len(expected), (
        f"{built.name} has {len(actual)} cells, its twin {len(expected)}: "
        f"rebuild with `make notebooks NB={twin.stem}`")
    for index, (got, want) in enumerate(zip(actual, expected)):
        assert got == want, (f"{built.name} cell {index} differs from its twin "
                             f"(rebuild with `make notebooks NB={twin.stem}`):\n"
                             f"ipynb: {got}\ntwin:  {want}")


# ---------------------------------------------------------------- (b) stored outputs are clean


def output_texts(output):
    """Every piece of text a stored output holds, as (label, text)."""
    if output.get("output_type") == "stream":
        yield output.get("name", "stream"), output.get("text", "")
    elif output.get("output_type") == "error":
        yield "error", "\n".join(output.get("traceback", []))
    for mime, value in output.get("data", {}).items():
        if mime in TEXT_MIME:
            yield mime, value if isinstance(value, str) else json.dumps(value)


@pytest.mark.parametrize("path", IPYNBS, ids=lambda p: p.stem)
def test_stored_outputs_are_deterministic(path):
    nb = read_ipynb(path)
    problems = []
    counts = []
    for index, cell in enumerate(nb.cells):
        for key in ("execution", "ExecuteTime"):
            if key in cell.metadata:
                problems.append(f"cell {index}: timing metadata {key!r}")
        if cell.cell_type != "code":
            continue
        counts.append(cell.execution_count)
        if cell.outputs and cell.execution_count is None:
            problems.append(f"cell {index}: outputs but no execution_count (nbval skips it)")
        for output in cell.outputs:
            if output.get("output_type") == "error":
                problems.append(f"cell {index}: stored error output")
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                problems.append(f"cell {index}: stderr output {output.get('text', '')[:120]!r}")
            for label, text in output_texts(output):
                for what, pattern in FORBIDDEN.items():
                    match = pattern.search(text)
                    if match:
                        start = max(0, match.start() - 60)
                        problems.append(f"cell {index} ({label}): {what}: "
                                        f"...{text[start:match.end() + 60]!r}...")
    expected_counts = list(range(1, len(counts) + 1))
    if counts != expected_counts:
        problems.append(f"execution counts {counts} are not 1..{len(counts)}: the notebook was "
                        "not built top to bottom in a fresh kernel (use `make notebooks`)")
    widgets = nb.metadata.get("widgets")
    if widgets is not None:
        state = widgets.get(WIDGET_STATE)
        if not isinstance(state, dict) or "state" not in state:
            problems.append("metadata.widgets has no 'state': JupyterLab and nbviewer reject it")
        else:
            text = json.dumps(state["state"])
            for what, pattern in FORBIDDEN.items():
                if what != "a warning" and pattern.search(text):
                    problems.append(f"widget state holds {what}")
    kernelspec = nb.metadata.get("kernelspec", {})
    if kernelspec.get("name") != "python3":
        problems.append(f"kernelspec {kernelspec} is not python3")
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("twin", TWINS, ids=lambda p: p.stem)
def test_no_trailing_semicolon_to_hide_output(twin):
    """A trailing ';' hides a cell's value in Jupyter, but not under nbval.

    nbval 0.11 executes cells with store_history=False, and IPython decides to silence the
    value by looking at the last *stored* input, so under nbval the value is displayed (e.g.
    ``<torch._C.Generator object at 0x...>``) and the strict comparison fails. Assign instead:
    ``_ = torch.manual_seed(0)``.
    """
    offenders = []
    for index, cell in enumerate(jupytext.read(twin, fmt="py:percent").cells):
        code = [line.split("#", 1)[0].rstrip() for line in cell.source.splitlines()]
        code = [line for line in code if line]
        if cell.cell_type == "code" and code and code[-1].endswith(";"):
            offenders.append(f"cell {index}: {code[-1].strip()!r}")
    assert not offenders, (f"{twin.name}: a trailing ';' does not hide output under nbval; "
                           f"assign to _ instead:\n  " + "\n  ".join(offenders))


def test_build_tool_normalises_ids_and_timing():
    """The builder's normalise() on a hand-made executed notebook (no kernel needed)."""
    tool = load_build_tool()
    a, b = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
    view = "application/vnd.jupyter.widget-view+json"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("w"),
                nbformat.v4.new_code_cell("w")]
    nb.cells[1].execution_count = 1
    nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2024-01-01T00:00:00Z"}
    nb.cells[1].outputs = [nbformat.v4.new_output(
        "execute_result", data={view: {"model_id": b, "version_major": 2, "version_minor": 0},
                                "text/plain": "IntSlider(value=3)"}, execution_count=1)]
    nb.metadata["widgets"] = {WIDGET_STATE: {"state": {
        a: {"model_name": "LayoutModel", "state": {}},
        b: {"model_name": "IntSliderModel", "state": {"layout": f"IPY_MODEL_{a}"}}},
        "version_major": 2, "version_minor": 0}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nb.metadata["jupytext"] = {"text_representation": {}}
    tool.normalise(nb)
    first, second = f"{1:032x}", f"{2:032x}"
    assert nb.cells[1].outputs[0]["data"][view]["model_id"] == first  # outputs come first
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    assert set(state) == {first, second}
    assert state[first]["state"]["layout"] == f"IPY_MODEL_{second}"
    assert "execution" not in nb.cells[1].metadata
    assert nb.cells[1].execution_count == 1
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "version" not in nb.metadata["language_info"]
    assert "jupytext" not in nb.metadata
    ids = [c["id"] for c in nb.cells]
    assert len(set(ids)) == 3 and ids[2].endswith("-2"), ids  # same source, distinct ids
    again = nbformat.from_dict(json.loads(json.dumps(nb)))
    tool.normalise(again)
    assert nbformat.writes(again) == nbformat.writes(nb)  # idempotent
    nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2}}  # no "state": dropped
    tool.normalise(nb)
    assert "widgets" not in nb.metadata


# ---------------------------------------------------------------- (c, d) pinned requirements

REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;,=]+)"
                         r"\s*(;\s*python_version\s*[<>=]+\s*\"[0-9.]+\")?$")


def package_lines(path):
    """(line number, text) of every package line: not blank, a comment or an option."""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")) and line != ".":
            yield number, line


def pins(path):
    result = {}
    for number, line in package_lines(path):
        match = REQUIREMENT.match(line)
        assert match, f"{path.relative_to(ROOT)}:{number}: {line!r} is not pinned with =="
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
        marker = (match.group(4) or "").replace(" ", "")
        result[name + marker] = match.group(3)
    return result


def test_requirements_pin_exact_versions():
    found = pins(REQUIREMENTS)
    for needed in ("torch", "torchviz", "graphviz", "ipywidgets", "ipykernel", "jupyterlab"):
        assert needed in found, f"requirements.txt lacks {needed}"
    assert "-e ." in REQUIREMENTS.read_text().splitlines(), "requirements.txt must install -e ."


def test_dev_requirements_add_test_tools_on_top_of_requirements():
    learner, dev = pins(REQUIREMENTS), pins(DEV_REQUIREMENTS)  # pins() fails on any unpinned
    options = [line.strip() for line in DEV_REQUIREMENTS.read_text().splitlines()
               if line.strip().startswith("-")]
    assert options == ["-r requirements.txt"], (
        f"requirements-dev.txt must include requirements.txt and nothing else: {options}")
    names = {re.sub(r";.*", "", key) for key in learner}
    both = sorted(key for key in dev if re.sub(r";.*", "", key) in names)
    assert not both, f"pinned in both requirements.txt and requirements-dev.txt: {both}"
    for needed in ("nbval", "pytest", "pytest-xdist", "jupytext", "nbclient", "playwright"):
        assert needed in dev, f"requirements-dev.txt lacks {needed}"
    for test_only in ("nbval", "pytest", "playwright"):
        assert test_only not in learner, f"{test_only} is a test tool: requirements-dev.txt"


def test_binder_pins_agree_with_requirements_and_use_cpu_torch():
    local, binder = pins(REQUIREMENTS), pins(BINDER / "requirements.txt")
    assert binder.get("torch", "").endswith("+cpu"), "binder must install the CPU build of torch"
    for name in sorted(set(local) & set(binder)):
        assert binder[name].split("+")[0] == local[name], (
            f"{name}: binder/requirements.txt pins {binder[name]}, requirements.txt {local[name]}")
    for needed in ("torch", "torchviz", "graphviz", "ipywidgets", "ipykernel", "jupyterlab"):
        assert needed in binder, f"binder/requirements.txt lacks {needed}"
    # Binder is a learner's environment: requirements.txt's packages for its Python (runtime.txt),
    # and none of requirements-dev.txt's test tools.
    from packaging.markers import Marker

    python = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    for key in sorted(local):
        marker = key.partition(";")[2]
        if not marker or Marker(marker).evaluate({"python_version": python}):
            assert key in binder, f"binder/requirements.txt lacks {key} (in requirements.txt)"
    test_tools = sorted(set(pins(DEV_REQUIREMENTS)) & set(binder))
    assert not test_tools, f"binder/requirements.txt installs test tools: {test_tools}"
    lines = [line.strip() for line in (BINDER / "requirements.txt").read_text().splitlines()]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "." in lines, "binder/requirements.txt must install this repo's helpers package"
    assert "graphviz" in (BINDER / "apt.txt").read_text().split()


# ---------------------------------------------------------------- (e) the Binder environment


def local_binder_requirements():
    """binder/requirements.txt as this machine can install it.

    This machine (and CI) reach PyPI but not download.pytorch.org, so the index-url lines are
    dropped and the "+cpu" local version label is removed: pip's configured local wheel folder
    holds torch 2.13.0+cpu, which satisfies torch==2.13.0. Nothing else changes.
    """
    out = []
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        if line.strip().startswith(("--extra-index-url", "--index-url", "-i ")):
            continue
        out.append(re.sub(r"^(torch==[^+\s]+)\+cpu\b", r"\1", line.strip()))
    return "\n".join(out) + "\n"


def run(cmd, **kwargs):
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            **kwargs)
    if result.returncode:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False)
    return result


def binder_env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{BINDER_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def ensure_binder_venv():
    """Build (or reuse) build/binder-venv from binder/requirements.txt; return its python."""
    python = BINDER_VENV / "bin" / "python"
    requirements = local_binder_requirements()
    env_key = digest(requirements, sys.version)
    package_key = digest(*(p.read_bytes() for p in
                           [ROOT / "pyproject.toml", *sorted((ROOT / "helpers").rglob("*.py"))]))
    env_stamp, package_stamp = BINDER_VENV / ".gfl-env", BINDER_VENV / ".gfl-package"
    BINDER_VENV.parent.mkdir(exist_ok=True)
    with open(BINDER_VENV.parent / "binder-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time
        # setuptools leaves build/lib behind and copies it into the next wheel, so a module
        # renamed since the last install would be installed twice: start from a fresh clone's.
        for scratch in [ROOT / "build" / "lib", *(ROOT / "build").glob("bdist.*")]:
            shutil.rmtree(scratch, ignore_errors=True)
        if not (python.exists() and env_stamp.exists() and env_stamp.read_text() == env_key):
            shutil.rmtree(BINDER_VENV, ignore_errors=True)
            run([sys.executable, "-m", "venv", BINDER_VENV])
            req_file = BINDER_VENV / "requirements-local.txt"
            req_file.write_text(requirements)
            # cwd = repo root, as repo2docker runs it: the "." line is this repository.
            run([python, "-m", "pip", "install", "--no-input", "-r", req_file], env=binder_env())
            env_stamp.write_text(env_key)
            package_stamp.write_text(package_key)
        if not (package_stamp.exists() and package_stamp.read_text() == package_key):
            run([python, "-m", "pip", "install", "--no-input", "--no-deps", "--force-reinstall",
                 "."], env=binder_env())
            package_stamp.write_text(package_key)
    return python


EXECUTE = r"""
import json, sys
import nbformat
from nbclient import NotebookClient
path, cwd = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import json, sys, helpers, torch\n"
    "print(json.dumps([sys.prefix, helpers.__file__, torch.__version__]))"))
NotebookClient(nb, timeout=600, kernel_name="python3",
               resources={"metadata": {"path": cwd}}).execute()
errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
          if o.output_type == "error"]
print(json.dumps({"errors": len(errors), "probe": nb.cells[-1].outputs[-1]["text"]}))
"""


@pytest.mark.slow
def test_binder_environment_runs_start_here():
    notebook = NOTEBOOKS / "00_start_here.ipynb"
    if not notebook.exists():
        pytest.fail(f"{notebook.relative_to(ROOT)} missing: run `make notebooks`")
    python = ensure_binder_venv()
    lab_widgets = (BINDER_VENV / "share" / "jupyter" / "labextensions" / "@jupyter-widgets"
                   / "jupyterlab-manager")
    assert lab_widgets.is_dir(), "jupyterlab_widgets missing: widgets would not render in Lab"
    result = run([python, "-c", EXECUTE, notebook, NOTEBOOKS], env=binder_env(), timeout=1800)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == 0
    prefix, helpers_file, torch_version = json.loads(report["probe"])
    assert Path(prefix) == BINDER_VENV, f"kernel ran in {prefix}, not the Binder venv"
    assert "site-packages" in helpers_file and helpers_file.startswith(str(BINDER_VENV)), (
        f"helpers imported from {helpers_file}, not installed from binder/requirements.txt")
    assert torch_version.startswith("2.13.0")


# ---------------------------------------------------------------- (f) system tools policy


def test_graphviz_dot_runs():
    """The notebooks' stored graphs are SVG from `dot`; without it nbval would fail obscurely."""
    from conftest import require_tool
    dot = require_tool("dot")
    result = subprocess.run([dot, "-Tsvg"], input="digraph { a -> b }", capture_output=True,
                            text=True, check=True)
    assert "<svg" in result.stdout


def test_missing_tool_skips_locally_and_fails_in_ci(monkeypatch):
    from conftest import require_tool
    missing = "gfl-no-such-tool-xyz"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_tool(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_tool(missing)
