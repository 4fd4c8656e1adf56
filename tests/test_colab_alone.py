"""Colab-alone: each notebook runs by itself, with the helpers installed as a package.

On Colab a learner opens one .ipynb; its setup cell pip-installs this repository's helpers
package (non-editable) beside the torch Colab already has. Nothing else of the repository is
there. This test rebuilds that situation: a venv holding only what Colab provides (torch, numpy,
matplotlib, ipywidgets, ipykernel) plus this package installed from a copy of its sources
(pyproject.toml, README.md, helpers/) with its declared dependencies, not editable; then each
notebook is copied alone into an empty folder outside the repository and executed there.
A missing dependency in pyproject.toml, a helper reading a file of the repository, or a notebook
opening a path relative to the repository fails here.

The venv is cached in build/colab-venv (git-ignored), keyed by requirements*.txt, pyproject.toml
and the Python version; the package is reinstalled whenever helpers/ changes.
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import digest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
VENV = ROOT / "build" / "colab-venv"
# What a Colab runtime already has; versions come from requirements*.txt (as constraints).
COLAB_BASE = ["torch", "numpy", "matplotlib", "ipywidgets", "ipykernel", "nbclient", "nbformat"]
PACKAGE_FILES = ["pyproject.toml", "README.md"]


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def sh(cmd, cwd, timeout=1800):
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(), text=True,
                            capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)
    if result.returncode:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False)
    return result


def constraints():
    """The pins of requirements.txt and requirements-dev.txt (nbclient, nbformat), without the
    editable install of this repository or the -r line."""
    lines = [line for name in ("requirements.txt", "requirements-dev.txt")
             for line in (ROOT / name).read_text().splitlines()
             if line.strip() and not line.strip().startswith(("#", "-"))]
    return "\n".join(lines) + "\n"


def package_copy(dest):
    """The package as pip would get it from git: its sources only, outside the repository."""
    for name in PACKAGE_FILES:
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "helpers", dest / "helpers",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.fixture(scope="module")
def colab_python(tmp_path_factory):
    """build/colab-venv's python, with the current helpers installed non-editable."""
    python = VENV / "bin" / "python"
    env_key = digest(constraints(), (ROOT / "pyproject.toml").read_bytes(), sys.version)
    package_key = digest(*(p.read_bytes() for p in
                           [ROOT / "pyproject.toml", *sorted((ROOT / "helpers").rglob("*.py"))]))
    env_stamp, package_stamp = VENV / ".gfl-env", VENV / ".gfl-package"
    VENV.parent.mkdir(exist_ok=True)
    work = tmp_path_factory.mktemp("colab-build")
    with open(VENV.parent / "colab-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        source = package_copy(tmp_path_factory.mktemp("package"))
        if not (python.exists() and env_stamp.exists() and env_stamp.read_text() == env_key):
            shutil.rmtree(VENV, ignore_errors=True)
            sh([sys.executable, "-m", "venv", VENV], cwd=work)
            (work / "constraints.txt").write_text(constraints())
            sh([python, "-m", "pip", "install", "--no-input", "-c", "constraints.txt",
                *COLAB_BASE], cwd=work)
            # The package with its declared dependencies (torchviz, graphviz, ...).
            sh([python, "-m", "pip", "install", "--no-input", "-c", "constraints.txt", source],
               cwd=work)
            env_stamp.write_text(env_key)
            package_stamp.write_text(package_key)
        if not (package_stamp.exists() and package_stamp.read_text() == package_key):
            sh([python, "-m", "pip", "install", "--no-input", "--no-deps", "--force-reinstall",
                source], cwd=work)
            package_stamp.write_text(package_key)
    probe = sh([python, "-m", "pip", "show", "-f", "gradient-flow-lab"], cwd=work).stdout
    assert "Editable project location" not in probe, "helpers must not be installed editable"
    return python


EXECUTE = r"""
import json, sys
import nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import json, os, sys, helpers\n"
    "print(json.dumps([sys.prefix, helpers.__file__, os.getcwd()]))"))
NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": "."}}).execute()
errors = [f"cell {i}: {o.ename}: {o.evalue}" for i, c in enumerate(nb.cells)
          if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
stderr = [f"cell {i}: {o.text[:300]}" for i, c in enumerate(nb.cells[:-1])
          if c.cell_type == "code" for o in c.outputs
          if o.output_type == "stream" and o.name == "stderr"]
probe = "".join(o.get("text", "") for o in nb.cells[-1].outputs
                if o.output_type == "stream" and o.name == "stdout")
print(json.dumps({"errors": errors, "stderr": stderr, "probe": probe}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_alone_with_the_installed_package(colab_python, notebook, tmp_path):
    alone = tmp_path / "colab"
    alone.mkdir()
    assert not alone.resolve().is_relative_to(ROOT), "the empty folder must be outside the repo"
    shutil.copy2(notebook, alone / notebook.name)
    (alone / "run.py").write_text(EXECUTE)
    result = sh([colab_python, "run.py", notebook.name], cwd=alone, timeout=1800)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["errors"], (f"{notebook.name} alone in an empty folder, helpers installed "
                                  "as a package:\n  " + "\n  ".join(report["errors"]))
    assert not report["stderr"], f"{notebook.name} wrote to stderr:\n  " + "\n  ".join(
        report["stderr"])
    prefix, helpers_file, cwd = json.loads(report["probe"])
    assert Path(prefix) == VENV, f"the kernel ran in {prefix}, not {VENV}"
    assert "site-packages" in helpers_file and Path(helpers_file).is_relative_to(VENV), (
        f"helpers imported from {helpers_file}, not from the package installed in {VENV}")
    assert Path(cwd).resolve() == alone.resolve()
    left = sorted(p.name for p in alone.iterdir())
    assert left == sorted([notebook.name, "run.py"]), (
        f"{notebook.name} wrote files next to itself: {left}")
