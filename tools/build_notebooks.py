#!/usr/bin/env python3
"""Build notebooks/NN_name.ipynb from its twin notebooks/sources/NN_name.py, executed.

The jupytext percent-format twin is the source of truth. For each twin (or only the named
ones) this script reads it with jupytext (cell tags come across as metadata), executes it in a
fresh ``python3`` kernel with cwd = notebooks/ (so relative links and paths behave as they do
for a learner), and writes the .ipynb with its outputs.

Everything that would differ between two builds of the same source is normalised, so that
building twice gives byte-identical files (and git diffs show only real changes):

* no timing metadata (``record_timing=False``; ``execution`` cell metadata stripped);
* execution counts kept (nbval needs them to compare a cell's outputs);
* stable cell ids derived from each cell's content (nbformat would draw random ones);
* widget model ids (random UUIDs) renumbered in order of appearance, in the outputs and in
  ``metadata.widgets``; widget state kept only if it has a "state" key;
* kernelspec fixed to Python 3 / python3; ``language_info.version`` dropped (it changes with
  the patch release of the machine that built it); jupytext's own header metadata dropped.

Usage:  python tools/build_notebooks.py [NN_name | path/to/twin.py | path/to/nb.ipynb ...]
        python tools/build_notebooks.py --sources DIR --out DIR  (for tests on other twins)
Exits non-zero, naming the notebook and the cell, if any cell raises.
"""

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from slides import add_slide_metadata  # noqa: E402  (tools/slides.py: slide metadata)
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "sources"

CELL_TIMEOUT = 600  # seconds per cell
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Model ids as ipywidgets makes them: uuid4().hex (32 lower-case hex digits).
MODEL_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def stable_cell_ids(nb):
    """Give each cell an id from a hash of its type and source (repeats get a suffix)."""
    seen = {}
    for cell in nb.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\0{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell["id"] = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"


def renumber_widget_ids(nb):
    """Replace random widget model ids by ids numbered in order of first appearance.

    Order of appearance: the view outputs cell by cell, then the stored state in the order the
    kernel created the models (deterministic for deterministic code). The new ids keep the
    32-hex-digit shape, so any widget manager accepts them.
    """
    cells_text = json.dumps([c.get("outputs", []) for c in nb.cells])
    widgets_meta = nb.metadata.get("widgets", {})
    state_text = json.dumps(widgets_meta)
    known = set(json.loads(state_text).get(WIDGET_STATE, {}).get("state", {}))
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view and "model_id" in view:
                known.add(view["model_id"])
    if not known:
        return
    mapping = {}
    for text in (cells_text, state_text):
        for match in MODEL_ID.finditer(text):
            old = match.group(0)
            if old in known and old not in mapping:
                mapping[old] = f"{len(mapping) + 1:032x}"

    def swap(text):
        return MODEL_ID.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)

    for cell in nb.cells:
        if "outputs" in cell:
            cell["outputs"] = nbformat.from_dict(json.loads(swap(json.dumps(cell["outputs"]))))
    if widgets_meta:
        nb.metadata["widgets"] = nbformat.from_dict(json.loads(swap(state_text)))


def normalise(nb):
    """Make the executed notebook independent of when, where and in which run it was built."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
    stable_cell_ids(nb)
    widgets = nb.metadata.get("widgets")
    if widgets is not None:
        state = widgets.get(WIDGET_STATE)
        if not state or "state" not in state:
            del nb.metadata["widgets"]
    renumber_widget_ids(nb)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.get("language_info", {}).pop("version", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def build(twin, out_dir, cwd):
    """Read, execute and normalise one twin; write out_dir/<stem>.ipynb. Returns the path."""
    nb = jupytext.read(twin, fmt="py:percent")
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}},
                            record_timing=False, store_widget_state=True,
                            coalesce_streams=True)  # one print = one stream output
    client.execute()
    normalise(nb)
    add_slide_metadata(nb)  # reveal.js slides (`make slides`, RISE), derived from the cells
    target = Path(out_dir) / f"{Path(twin).stem}.ipynb"
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)  # indent 1, keys sorted
    target.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return target


def resolve(names, sources):
    """Twins to build: all of sources/*.py, or the named ones (stem, .py or .ipynb path)."""
    if not names:
        twins = sorted(sources.glob("*.py"))
        if not twins:
            sys.exit(f"no twins found in {sources}")
        return twins
    twins = []
    for name in names:
        twin = sources / f"{Path(name).stem}.py"
        if not twin.is_file():
            sys.exit(f"no twin for {name!r}: expected {twin}")
        twins.append(twin)
    return twins


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to build (default: all twins)")
    parser.add_argument("--sources", type=Path, default=SOURCES, help="folder of .py twins")
    parser.add_argument("--out", type=Path, default=NOTEBOOKS,
                        help="folder for the .ipynb files; also the kernel's cwd")
    args = parser.parse_args(argv)
    failed = []
    for twin in resolve(args.names, args.sources):
        start = time.monotonic()
        print(f"building {twin.name} ...", flush=True)
        try:
            target = build(twin, args.out, cwd=args.out)
        except CellExecutionError as error:
            print(f"FAILED {twin.name}: a cell raised\n{error}", file=sys.stderr)
            failed.append(twin.name)
            continue
        print(f"  wrote {target.name} in {time.monotonic() - start:.0f}s", flush=True)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
