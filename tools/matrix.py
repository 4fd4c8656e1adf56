#!/usr/bin/env python3
"""`make matrix`: every notebook, with all its asserts, on the torch versions learners have.

For each listed torch version (and Python), on a copy of the tree taken at the start (so edits
made meanwhile do not reach the run; --rev HEAD takes the last commit instead):

1. a fresh venv with that torch from the package index (the CUDA builds PyPI serves run on the
   CPU), numpy at a version that torch works with, ipywidgets 7.7.1 (as on Colab), the other
   packages at the versions requirements*.txt pin, and the helpers installed non-editable;
2. each notebook alone in an empty folder, executed by nbclient in that venv's kernel, one at a
   time with OMP_NUM_THREADS=1; a raised error (a failed assert included) fails the notebook
   and is recorded with its cell, the cell's line and the helpers' line it came from;
3. the venv is deleted (unless --venv-cache keeps it for the next run).

Then MATRIX.md gets the whole table and the failures, and README.md's block between
``<!-- matrix:start -->`` and ``<!-- matrix:end -->`` a summary. Results also go to
build/matrix.json after every version, so a run stopped half-way leaves what it measured.
On a busy 2-core machine a CUDA build takes about 20 minutes to install and 15-25 to run every
notebook; --venv-cache DIR (about 5 GB per version) saves the install the next time.

Usage:
  python tools/matrix.py [--versions 2.4.0@3.12,2.13.0@3.11,...] [--source DIR | --rev HEAD]
                         [--twins] [--venv-cache DIR [--build-only]] [--keep-rows] [--no-write]
  python tools/matrix.py --render   (rewrite MATRIX.md and the README block from build/matrix.json)

A version is TORCH or TORCH@PYTHON (Python defaults to 3.12). A Python that is not installed
gives a row saying so instead of a run. --keep-rows keeps the earlier rows of build/matrix.json
for versions not run this time; MATRIX.md names the tree and date each came from.
"""

import argparse
import datetime
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "MATRIX.md"
README = ROOT / "README.md"
LOG = ROOT / "build" / "matrix.json"
START, END = "<!-- matrix:start -->", "<!-- matrix:end -->"

# A release below the floor, the floor, releases Colab has shipped, the pin (the CPU wheel on
# this disk for Python 3.11), and the newest release pip resolves here on Colab's Python 3.12
# and on 3.13.
DEFAULT_VERSIONS = "2.2.2@3.12,2.4.0@3.12,2.6.0@3.12,2.10.0@3.12,2.13.0@3.11,2.14.1@3.12,2.14.1@3.13"
DEFAULT_PYTHON = "3.12"
IPYWIDGETS = "7.7.1"  # what Colab has
# What the notebooks import, besides the helpers (installed from the tree with their own
# dependencies) and what runs them.
PACKAGES = ["torch", "numpy", "ipywidgets", "ipykernel", "nbclient", "nbformat"]
OVERRIDDEN = {"torch", "numpy", "ipywidgets"}  # pinned per run, not from requirements*.txt
COPY_EXCLUDES = [".venv", ".git", "build", "__pycache__", "*.egg-info", "slides", "test-output",
                 ".ipynb_checkpoints", "node_modules"]
INSTALL_TIMEOUT = 3600
NOTEBOOK_TIMEOUT = 1800
CELL_TIMEOUT = 600
STATUS = {"pass": "pass", "fail": "FAIL", "warn": "pass, stderr", "none": "not run"}


# ---------------------------------------------------------------- pure parts (unit-tested)

def version_key(version):
    """(2, 4, 0) for '2.4.0' or '2.4.0+cpu'; for sorting and comparing releases."""
    return tuple(int(p) for p in re.match(r"\d+(?:\.\d+)*", version).group(0).split("."))


def parse_versions(text, default_python=DEFAULT_PYTHON):
    """'2.4.0@3.12,2.6.0' -> [('2.4.0', '3.12'), ('2.6.0', default_python)]; bad input raises."""
    runs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        torch_version, _, python = item.partition("@")
        python = python or default_python
        if not re.fullmatch(r"\d+\.\d+(\.\d+)?", torch_version) or not re.fullmatch(
                r"3\.\d+", python):
            raise ValueError(f"bad version {item!r}: use TORCH or TORCH@PYTHON, e.g. "
                             "2.6.0 or 2.6.0@3.13 (Python as major.minor)")
        runs.append((torch_version, python))
    if not runs:
        raise ValueError("no versions given: e.g. --versions 2.6.0@3.12,2.13.0@3.11")
    return runs


def numpy_requirement(torch_version):
    """The numpy a torch release works with: wheels before 2.4 were built against NumPy 1."""
    return "numpy<2" if version_key(torch_version) < (2, 4) else None


def constraint_lines(requirements_texts, torch_version):
    """Pins from requirements*.txt (no -r/-e lines), with torch, numpy and ipywidgets replaced."""
    lines = []
    for text in requirements_texts:
        for line in text.splitlines():
            line = line.split(" #")[0].strip()
            if not line or line.startswith(("#", "-")):
                continue
            name = re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower()
            if name not in OVERRIDDEN:
                lines.append(line)
    lines += [f"torch=={torch_version}", f"ipywidgets=={IPYWIDGETS}"]
    numpy = numpy_requirement(torch_version)
    return lines + ([numpy] if numpy else [])


ANSI = re.compile(r"\x1b\[[0-9;]*m")
HELPERS_FRAME = re.compile(r"(helpers/[\w/]+\.py)(?::|\", line )(\d+)")
CELL_FRAME = re.compile(r"Cell In\[\d+\], line (\d+)")
SITE_PACKAGES = re.compile(r"/\S*/site-packages/")  # the venv's path: differs every run


def describe_error(cell_index, cell_source, ename, evalue, traceback):
    """'cell 12, line 3 `assert x == y`: AssertionError: ... (helpers/costs.py:57)'."""
    text = ANSI.sub("", "\n".join(traceback))
    where = ""
    cell_lines = CELL_FRAME.findall(text)
    if cell_lines:
        number = int(cell_lines[0])
        source_lines = cell_source.splitlines()
        code = source_lines[number - 1].strip() if 0 < number <= len(source_lines) else ""
        where = f", line {number}" + (f" `{code[:80]}`" if code else "")
    helper_frames = HELPERS_FRAME.findall(text)
    helper = f" ({helper_frames[-1][0]}:{helper_frames[-1][1]})" if helper_frames else ""
    message = SITE_PACKAGES.sub("", " ".join(str(evalue).split()))[:200]
    return f"cell {cell_index}{where}: {ename}: {message}{helper}"


def row_status(row):
    """'pass' when every notebook passed (stderr allowed), 'fail' when one failed, else 'none'."""
    statuses = list(row.get("notebooks", {}).values())
    if not statuses or "none" in statuses:
        return "none"
    return "fail" if "fail" in statuses else "pass"


def summary(row, notebooks):
    """'all 12 pass', '2 of 12 fail: 01, 08', a note, and which notebooks were not run."""
    if row.get("note"):
        return row["note"]
    ran = [n for n in notebooks if n in row["notebooks"]]
    failed = [n[:2] for n in ran if row["notebooks"][n] == "fail"]
    missing = [n[:2] for n in notebooks if n not in row["notebooks"]]
    parts = ([f"{len(failed)} of {len(ran)} fail: {', '.join(failed)}"] if failed
             else [f"all {len(ran)} pass"] if ran else [])
    return "; ".join(parts + ([f"not run: {', '.join(missing)}"] if missing else []))


def sorted_rows(rows):
    return sorted(rows, key=lambda r: (version_key(r["torch"]), version_key(r["python"])))


def render_table(rows, notebooks):
    """The markdown table: one row per (torch, Python), one column per notebook."""
    head = ["torch", "build", "Python", "ipywidgets", "numpy", *(n[:2] for n in notebooks),
            "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sorted_rows(rows):
        cells = [row["torch"], row.get("build", ""), row["python"], row.get("ipywidgets", ""),
                 row.get("numpy", ""),
                 *(STATUS[row.get("notebooks", {}).get(n, "none")] for n in notebooks),
                 summary(row, notebooks)]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def parse_table(text):
    """The rows of render_table's table in ``text``: dicts with torch, python, notebooks."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header_at = next(i for i, line in enumerate(lines) if line.startswith("| torch | build |"))
    head = [c.strip() for c in lines[header_at].strip("|").split("|")]
    first_nb, last_nb = head.index("numpy") + 1, head.index("result")
    reverse = {v: k for k, v in STATUS.items()}
    rows = []
    for line in lines[header_at + 2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(head):
            break
        rows.append({"torch": cells[0], "build": cells[1], "python": cells[2],
                     "ipywidgets": cells[3], "numpy": cells[4],
                     "notebooks": {h: reverse[c] for h, c in
                                   zip(head[first_nb:last_nb], cells[first_nb:last_nb])
                                   if reverse[c] != "none"}})
    return rows


def lowest_passing(rows):
    """The lowest torch version whose every listed notebook passed, or None."""
    passing = [r["torch"] for r in rows if row_status(r) == "pass"]
    return min(passing, key=version_key) if passing else None


def render_results(rows, notebooks, runs_info):
    """MATRIX.md: how it was made, the table, and every failure with its cell and line."""
    floor = lowest_passing(rows)
    out = ["# Tested with", "",
           "Generated by `make matrix` (tools/matrix.py); do not edit by hand. Each row is a "
           "fresh venv with that torch from PyPI (a CUDA build, run on the CPU; 2.13.0 on "
           "Python 3.11 is the CPU build pinned in requirements.txt), numpy as listed, "
           f"ipywidgets {IPYWIDGETS} as on Colab, the other packages at requirements.txt's "
           "pins and the helpers installed from the tree (not editable). Every notebook runs "
           "alone in an empty folder with all its asserts; `FAIL` = a cell raised. "
           "`pass, stderr` = no cell raised, but something was written to stderr (listed "
           "below).", ""]
    out += [f"- {line}" for line in runs_info]
    out += ["", render_table(rows, notebooks), ""]
    if floor:
        out += [f"Lowest torch with every notebook passing: **{floor}** "
                "(pyproject.toml's floor; tests/test_matrix.py checks they agree).", ""]
    failures = [(r, f) for r in sorted_rows(rows) for f in r.get("failures", [])]
    if failures:
        out += ["## Failures", ""]
        out += [f"- torch {r['torch']}, Python {r['python']}: {f}" for r, f in failures]
        out += [""]
    remarks = [r for r in sorted_rows(rows) if r.get("remark")]
    if remarks:  # a maintainer's reading of a row, kept in build/matrix.json
        out += ["## Remarks", ""]
        out += [f"- torch {r['torch']}, Python {r['python']}: {r['remark']}" for r in remarks]
        out += [""]
    stderr = [(r, s) for r in sorted_rows(rows) for s in r.get("stderr", [])]
    if stderr:
        out += ["## Written to stderr", ""]
        out += [f"- torch {r['torch']}, Python {r['python']}: {s}" for r, s in stderr]
        out += [""]
    return "\n".join(out)


def readme_block(rows, notebooks, when):
    """The README's short table: torch x Python x ipywidgets -> result."""
    lines = [START, "| torch | Python | ipywidgets | notebooks |", "|---|---|---|---|"]
    for row in sorted_rows(rows):
        lines.append(f"| {row['torch']} | {row['python']} | {row.get('ipywidgets', '')} | "
                     f"{summary(row, notebooks)} |")
    floor = lowest_passing(rows)
    lines += ["", f"From `make matrix` on {when}; every notebook's cells and failures in "
              "[MATRIX.md](MATRIX.md)." + (f" The lowest torch that runs them all: {floor}."
                                          if floor else ""), END]
    return "\n".join(lines)


def update_readme(text, block):
    """``text`` with the part between the matrix markers replaced by ``block``."""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README has no {START} ... {END} block")
    return pattern.sub(lambda _: block, text)


# ---------------------------------------------------------------- running

EXECUTE = r"""
import json, sys, traceback
import nbformat
from nbclient import NotebookClient
path, timeout = sys.argv[1], int(sys.argv[2])
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import json, sys, torch, numpy, ipywidgets, helpers\n"
    "print(json.dumps({'prefix': sys.prefix, 'helpers': helpers.__file__}))"))
fatal = None
try:
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": "."}}).execute()
except Exception as exc:  # a timeout or a dead kernel: recorded, not raised
    fatal = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
errors, stderr = [], []
for i, cell in enumerate(nb.cells[:-1]):
    for o in cell.get("outputs", []):
        if o.output_type == "error":
            errors.append([i, cell.source, o.ename, o.evalue, o.traceback])
        elif o.output_type == "stream" and o.name == "stderr":
            stderr.append(f"cell {i}: {' '.join(o.text.split())[:300]}")
probe = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", [])
                if o.output_type == "stream" and o.name == "stdout")
print(json.dumps({"errors": errors, "stderr": stderr, "probe": probe, "fatal": fatal}))
"""

PROBE = ("import json, sys, torch, numpy, ipywidgets, helpers; print(json.dumps({"
         "'torch': torch.__version__, 'cuda': torch.version.cuda, "
         "'python': sys.version.split()[0], 'numpy': numpy.__version__, "
         "'ipywidgets': ipywidgets.__version__, 'helpers': helpers.__file__}))")


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def log(message):
    print(f"[matrix {time.strftime('%H:%M:%S')}] {message}", flush=True)


def find_python(version):
    """An interpreter for Python ``version`` ('3.12'), or None."""
    home = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{version}"),
                  *sorted(glob.glob(str(home / "versions" / f"{version}.*" / "bin" / "python")))]
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        candidates.append(getattr(sys, "_base_executable", sys.executable))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version)"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.startswith(version + "."):
            return candidate
    return None


def clean_env(venv=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "JUPYTER_PATH")}
    if venv:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def sh(cmd, cwd, venv=None, timeout=INSTALL_TIMEOUT):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(venv), text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)


def last_lines(result, n=6):
    text = (result.stdout + result.stderr).strip().splitlines()
    return " / ".join(line.strip() for line in text[-n:] if "is ignored" not in line)[-600:]


def copy_tree(source, dest):
    """Copy ``source`` to ``dest`` without venvs, git data or build output."""
    shutil.copytree(source, dest, symlinks=True,
                    ignore=shutil.ignore_patterns(*COPY_EXCLUDES))


def export_rev(source, rev, dest):
    """The committed tree of ``rev`` (no uncommitted edits) into ``dest``; its short hash."""
    short = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", rev],
                           capture_output=True, text=True, check=True).stdout.strip()
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(source), "archive", "--format=tar", rev],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return short


def tree_state(source):
    """'6c8c973' or '6c8c973 with uncommitted changes (3 files)', read from git in source."""
    def git(*args):
        return subprocess.run(["git", "-C", str(source), *args], capture_output=True,
                              text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown (no git)"
    changed = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    return head + (f" with uncommitted changes ({len(changed)} files)" if changed else "")


def notebooks_in(tree, twins, work):
    """{name: path of an .ipynb to execute}: the committed .ipynb, or built from the twins."""
    if not twins:
        return {p.stem: p for p in sorted((tree / "notebooks").glob("*.ipynb"))}
    import jupytext  # the maintainer venv (requirements-dev.txt) has it
    import nbformat
    out = work / "from-twins"
    out.mkdir()
    paths = {}
    for twin in sorted((tree / "notebooks" / "sources").glob("*.py")):
        nb = jupytext.read(twin)
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                     "name": "python3"}
        paths[twin.stem] = out / f"{twin.stem}.ipynb"
        nbformat.write(nb, paths[twin.stem])
    return paths


def package_copy(tree, dest):
    """The package as pip gets it from git: its sources only."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(tree / name, dest / name)
    shutil.copytree(tree / "helpers", dest / "helpers",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def build_venv(tree, torch_version, python, work, cache=None):
    """(venv, probe dict, built-at) as described above, or RuntimeError.

    With ``cache``, the venv lives there under a name made of the versions and a hash of what
    decides its contents (constraints, Python) and is reused when it is complete; the helpers
    are reinstalled from ``tree`` every time, with any dependency they newly declare.
    """
    texts = [(tree / name).read_text() for name in ("requirements.txt", "requirements-dev.txt")]
    constraints = "\n".join(constraint_lines(texts, torch_version)) + "\n"
    (work / "constraints.txt").write_text(constraints)
    package = package_copy(tree, work / "package")
    if cache:
        key = hashlib.sha256("\0".join([constraints, python, " ".join(PACKAGES)]).encode()
                             ).hexdigest()[:10]
        venv = cache / f"torch-{torch_version}-py{python_version_of(python)}-{key}"
    else:
        venv = work / "venv"
    complete = venv / ".gfl-matrix-complete"
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--no-compile", "-c",
           "constraints.txt"]
    with open(f"{venv}.lock" if cache else work / "venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run building the same cached venv: wait
        if not complete.exists():
            shutil.rmtree(venv, ignore_errors=True)
            result = sh([python, "-m", "venv", venv], cwd=work)
            if result.returncode:
                raise RuntimeError(f"venv failed: {last_lines(result)}")
            for step in (PACKAGES, [package]):
                result = sh([*pip, *step], cwd=work, venv=venv)
                if result.returncode:
                    raise RuntimeError(f"pip install failed: {last_lines(result)}")
            complete.write_text(now())
        else:  # the helpers from this tree, then anything they newly depend on
            result = sh([venv / "bin" / "python", "-m", "pip", "wheel", "--no-deps", "-w",
                         work / "wheel", package], cwd=work, venv=venv)
            wheels = sorted((work / "wheel").glob("*.whl"))
            if result.returncode or not wheels:
                raise RuntimeError(f"building the helpers failed: {last_lines(result)}")
            for extra in (["--no-deps", "--force-reinstall"], []):
                result = sh([*pip, *extra, wheels[0]], cwd=work, venv=venv)
                if result.returncode:
                    raise RuntimeError(f"pip install of the helpers failed: "
                                       f"{last_lines(result)}")
    result = sh([venv / "bin" / "python", "-c", PROBE], cwd=work, venv=venv)
    if result.returncode:
        raise RuntimeError(f"import failed: {last_lines(result)}")
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    if not Path(probe["helpers"]).resolve().is_relative_to(venv.resolve()):
        raise RuntimeError(f"helpers imported from {probe['helpers']}, not from the venv")
    return venv, probe, complete.read_text()


def python_version_of(python):
    return subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True).stdout.strip()


def run_notebook(venv, name, path, work):
    """('pass' | 'warn' | 'fail', failures, stderr lines) for one notebook alone in a folder."""
    alone = work / "run" / name
    alone.mkdir(parents=True)
    shutil.copy2(path, alone / f"{name}.ipynb")
    (alone / "execute.py").write_text(EXECUTE)
    try:
        result = sh([venv / "bin" / "python", "execute.py", f"{name}.ipynb", CELL_TIMEOUT],
                    cwd=alone, venv=venv, timeout=NOTEBOOK_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "fail", [f"{name}: no result within {NOTEBOOK_TIMEOUT} s"], []
    if result.returncode:
        return "fail", [f"{name}: the runner exited {result.returncode}: "
                        f"{last_lines(result)}"], []
    report = json.loads(result.stdout.strip().splitlines()[-1])
    failures = [f"{name} {describe_error(*error)}" for error in report["errors"]]
    if report["fatal"]:
        failures.append(f"{name}: {report['fatal']}")
    try:
        prefix = json.loads(report["probe"])["prefix"]
    except (ValueError, KeyError):
        prefix = None
    if not failures and (prefix is None or Path(prefix).resolve() != venv.resolve()):
        failures.append(f"{name}: the kernel did not run in the matrix venv ({prefix})")
    stderr = [f"{name} {line}" for line in report["stderr"]]
    return ("fail" if failures else "warn" if stderr else "pass"), failures, stderr


def run_one(tree, torch_version, python_version, notebooks, state, keep, cache=None):
    row = {"torch": torch_version, "python": python_version, "notebooks": {}, "failures": [],
           "stderr": [], "tree": state, "date": now()}
    python = find_python(python_version)
    if not python:
        row["note"] = f"not run: no Python {python_version} on this machine"
        return row
    work = Path(tempfile.mkdtemp(prefix=f"gfl-matrix-{torch_version}-py{python_version}-"))
    try:
        started = time.monotonic()
        log(f"torch {torch_version}, Python {python_version}: venv in {cache or work}")
        try:
            venv, probe, built = build_venv(tree, torch_version, python, work, cache)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            row["note"] = f"not run: {' '.join(str(exc).split())[:300]}"
            log(row["note"])
            return row
        row.update(torch=probe["torch"].split("+")[0], python=probe["python"],
                   numpy=probe["numpy"], ipywidgets=probe["ipywidgets"],
                   build=f"CUDA {probe['cuda']}" if probe["cuda"] else "CPU",
                   install_seconds=round(time.monotonic() - started), venv_built=built)
        for name, path in notebooks.items():
            t0 = time.monotonic()
            status, failures, stderr = run_notebook(venv, name, path, work)
            row["notebooks"][name] = status
            row["failures"] += failures
            row["stderr"] += stderr
            log(f"  {name}: {status} ({time.monotonic() - t0:.0f} s)"
                + "".join(f"\n      {f}" for f in failures))
        row["seconds"] = round(time.monotonic() - started)
        return row
    finally:
        if keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def write_outputs(rows, notebooks, runs_info):
    RESULTS.write_text(render_results(rows, notebooks, runs_info) + "\n")
    dates = sorted({r["date"] for r in rows if r.get("date")})
    when = dates[-1][:10] if dates else "an unknown date"
    README.write_text(update_readme(README.read_text(), readme_block(rows, notebooks, when)))
    log(f"wrote {RESULTS.relative_to(ROOT)} and the block in {README.relative_to(ROOT)}")


def runs_info(log_data):
    info = [f"Run: {log_data['started']} to {log_data.get('finished', 'not finished')}; "
            f"tree: {log_data['tree']} (copied from {log_data['source']} at the start)",
            f"Notebooks: {log_data['notebooks_from']}",
            f"Machine: {log_data['machine']}; OMP_NUM_THREADS=1, one notebook at a time"]
    built = [r for r in log_data["rows"] if r.get("venv_built")]
    if built and all(r["venv_built"] >= log_data["started"] for r in built):
        info.append("Venvs: each built fresh by this run")
    elif built:
        info.append("Venvs built (the helpers reinstalled from the tree in every run): " +
                    "; ".join(f"torch {r['torch']} Python {r['python']}: {r['venv_built']}"
                              for r in sorted_rows(built)))
    kept = [r for r in log_data["rows"] if r.get("kept_from")]
    if kept:
        info.append("Rows kept from an earlier run (their tree and date): " + "; ".join(
            f"torch {r['torch']} Python {r['python']}: {r['tree']}, {r['date']}" for r in kept))
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", default=DEFAULT_VERSIONS,
                        help="TORCH[@PYTHON],... (default: %(default)s)")
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the tree to copy and test (default: this repository)")
    parser.add_argument("--rev", default=None,
                        help="test this commit of --source (git archive) instead of its "
                             "working tree, e.g. HEAD: no half-done edits")
    parser.add_argument("--twins", action="store_true",
                        help="execute the jupytext twins instead of the committed .ipynb")
    parser.add_argument("--notebooks", default=None,
                        help="only these notebooks, by number or name: 05,08 (to rerun failures)")
    parser.add_argument("--keep-rows", action="store_true",
                        help="keep build/matrix.json's rows for versions not run this time")
    parser.add_argument("--keep-venvs", action="store_true", help="do not delete the venvs")
    parser.add_argument("--venv-cache", type=Path, default=None,
                        help="keep the venvs in this folder and reuse them (each is ~5 GB); "
                             "the helpers are still reinstalled from the tree every run")
    parser.add_argument("--build-only", action="store_true",
                        help="with --venv-cache: only build the venvs, run no notebook")
    parser.add_argument("--no-write", action="store_true",
                        help="only build/matrix.json; leave MATRIX.md and README.md alone")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite MATRIX.md and README.md from build/matrix.json")
    parser.add_argument("--log", type=Path, default=LOG,
                        help="the results as JSON, written after every version "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    log_path = args.log.resolve()
    if args.render:
        data = json.loads(log_path.read_text())
        write_outputs(data["rows"], data["notebooks"], runs_info(data))
        return 0
    try:
        runs = parse_versions(args.versions)
    except ValueError as exc:
        parser.error(str(exc))
    source = args.source.resolve()
    if args.build_only and not args.venv_cache:
        parser.error("--build-only needs --venv-cache DIR (else the venvs are deleted)")
    if args.venv_cache:
        args.venv_cache = args.venv_cache.resolve()
        args.venv_cache.mkdir(parents=True, exist_ok=True)
    if not (source / "notebooks").is_dir():
        parser.error(f"--source {source} has no notebooks/ folder")
    previous = (json.loads(log_path.read_text())["rows"]
                if args.keep_rows and log_path.exists() else [])
    kept = [dict(r, kept_from=r.get("kept_from") or r["tree"]) for r in previous
            if tuple(r.get("requested", ())) not in set(runs)]
    with tempfile.TemporaryDirectory(prefix="gfl-matrix-tree-") as tmp:
        tree = Path(tmp) / "tree"
        if args.rev:
            state = f"{export_rev(source, args.rev, tree)} (committed tree, no local edits)"
        else:
            state = tree_state(source)
            copy_tree(source, tree)
        log(f"copied {source} ({state}) to {tree}")
        notebooks = {} if args.build_only else notebooks_in(tree, args.twins, Path(tmp))
        if args.notebooks:
            wanted = [w.strip() for w in args.notebooks.split(",") if w.strip()]
            unknown = [w for w in wanted if not any(n.startswith(w) for n in notebooks)]
            if unknown:
                parser.error(f"unknown notebook(s) {unknown}; valid: {', '.join(notebooks)}")
            notebooks = {n: p for n, p in notebooks.items()
                         if any(n.startswith(w) for w in wanted)}
        data = {"started": now(), "tree": state, "source": str(source),
                "notebooks": list(notebooks),
                "notebooks_from": ("the jupytext twins (notebooks/sources/*.py)" if args.twins
                                   else "the committed notebooks/*.ipynb"),
                "machine": f"{os.uname().sysname} {os.uname().machine}, {os.cpu_count()} cores,"
                           " no GPU",
                "rows": list(kept)}
        for torch_version, python in runs:
            row = run_one(tree, torch_version, python, notebooks, state, args.keep_venvs,
                          args.venv_cache)
            data["rows"].append(dict(row, requested=[torch_version, python]))
            if not args.build_only:
                log_path.parent.mkdir(exist_ok=True)
                log_path.write_text(json.dumps(data, indent=1))
        data["finished"] = now()
        if not args.build_only:
            log_path.write_text(json.dumps(data, indent=1))
    if not (args.no_write or args.build_only):
        write_outputs(data["rows"], data["notebooks"], runs_info(data))
    failed = [r for r in data["rows"] if row_status(r) != "pass"]
    log(f"{len(data['rows']) - len(failed)} of {len(data['rows'])} rows pass every notebook")
    return 0


if __name__ == "__main__":
    sys.exit(main())
