#!/usr/bin/env python3
"""Slides: reveal.js slide metadata for every notebook, and offline decks (`make slides`).

Slide metadata is derived from the notebook itself, so the twins in notebooks/sources/ stay
clean. tools/build_notebooks.py calls :func:`add_slide_metadata` on every notebook it builds:

* the first cell (title) and every markdown cell starting with a ``#``/``##`` heading start a
  slide;
* a code cell that shows an explorer is a slide of its own, and the cell after it starts the
  next slide (a predict-first quiz stays on the slide of its question);
* a markdown cell starting with a bold claim (``**...**``, the "What happened and why" claims)
  or a ``###`` heading (a myth, a pitfall) starts a sub-slide (reveal.js: down arrow), with its
  cells under it;
* every other cell continues the current slide.

``python tools/slides.py [NN_name ...] [--out slides]`` writes ``slides/NN_name.slides.html``
for each notebook with ``jupyter nbconvert --to slides``'s exporter. reveal.js, RequireJS,
jQuery, MathJax and the widget renderer are fetched once with ``npm pack`` into
``slides/vendor/`` (git-ignored) and the decks point there with relative URLs, so a deck opens
from disk with no network (nbconvert's defaults load them from CDNs).
``python tools/slides.py --apply notebooks/*.ipynb`` writes the metadata into built notebooks.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "slides"
VIEW = "application/vnd.jupyter.widget-view+json"
OWN_SLIDE_WIDGETS = ("Explorer(",)
OWN_SLIDE_CALL = re.compile(r"^helpers\.explore\(")

# npm package -> folder in slides/vendor; the versions nbconvert 7.17's reveal template expects
# (reveal.js 4 layout: dist/reveal.js, dist/theme/, plugin/notes/; MathJax 2; html-manager 1.x
# for ipywidgets 8 widget state).
VENDOR = {
    "reveal.js@4.0.2": "reveal.js",
    "requirejs@2.3.7": "requirejs",
    "jquery@3.7.1": "jquery",
    "mathjax@2.7.9": "mathjax",
    "@jupyter-widgets/html-manager@1.0.15": "html-manager",
}
EXPORTER = {
    "reveal_url_prefix": "vendor/reveal.js",
    "reveal_theme": "white",  # its fonts ship with reveal.js ("simple" loads Google Fonts)
    "reveal_scroll": True,
    "require_js_url": "vendor/requirejs/require.js",
    "jquery_url": "vendor/jquery/dist/jquery.min.js",
    "mathjax_url": "vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
    "widget_renderer_url": "vendor/html-manager/dist/embed-amd.js",
    # The template imports mermaid as an ES module; the notebooks have no mermaid diagrams.
    "mermaid_js_url": "data:text/javascript,export default {initialize() {}};",
}


def shows_own_slide_widget(cell):
    """True for a code cell that displays an explorer."""
    if cell.cell_type != "code":
        return False
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if VIEW in data and data.get("text/plain", "").startswith(OWN_SLIDE_WIDGETS):
            return True
    lines = [line for line in cell.source.splitlines() if line.strip()]
    return bool(lines) and bool(OWN_SLIDE_CALL.match(lines[-1]))


def slide_types(cells):
    """The slide_type of each cell, by the rules in this module's docstring."""
    types = []
    for index, cell in enumerate(cells):
        source = cell.source.lstrip()
        if index == 0:
            kind = "slide"
        elif cell.cell_type == "markdown" and re.match(r"#{1,2} ", source):
            kind = "slide"
        elif shows_own_slide_widget(cell) or shows_own_slide_widget(cells[index - 1]):
            kind = "slide"
        elif cell.cell_type == "markdown" and (source.startswith("**") or
                                               source.startswith("### ")):
            kind = "subslide"
        else:
            kind = "-"
        types.append(kind)
    return types


def add_slide_metadata(nb):
    """Set ``metadata.slideshow.slide_type`` on every cell (idempotent); returns ``nb``."""
    for cell, kind in zip(nb.cells, slide_types(nb.cells)):
        cell.metadata["slideshow"] = {"slide_type": kind}
    return nb


# ----------------------------------------------------------------- offline decks


def vendor(dest):
    """Fetch the deck's JavaScript once with `npm pack` into ``dest``; returns ``dest``."""
    dest = Path(dest)
    stamp = dest / ".vendor.json"
    if stamp.exists() and json.loads(stamp.read_text()) == VENDOR:
        return dest
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm not found: it fetches reveal.js for the offline decks. Install it with "
                 "`sudo apt-get install -y npm` (or `make system-deps`).")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run([npm, "pack", "--silent", "--pack-destination", tmp,
                                 *VENDOR], capture_output=True, text=True, check=False)
        if packed.returncode:
            sys.exit(f"npm pack failed:\n{packed.stderr[-2000:]}")
        names = [line.strip() for line in packed.stdout.splitlines() if line.strip()]
        for tarball, folder in zip(names, VENDOR.values()):
            target = dest / folder
            with tarfile.open(Path(tmp) / tarball) as archive:
                archive.extractall(Path(tmp) / folder, filter="data")
            shutil.move(str(Path(tmp) / folder / "package"), target)
    stamp.write_text(json.dumps(VENDOR))
    return dest


def exporter():
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    exporter = SlidesExporter(config=Config())
    for name, value in EXPORTER.items():  # not all are config traits (mermaid_js_url is not)
        setattr(exporter, name, value)
    return exporter


def build_deck(notebook, out_dir):
    """Write ``out_dir/<stem>.slides.html`` (vendor/ must be beside it); returns the path."""
    nb = add_slide_metadata(nbformat.read(notebook, as_version=4))
    body, _ = exporter().from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    for url in EXPORTER.values():
        if isinstance(url, str) and url.startswith("vendor/"):
            assert url.split("?")[0] in body, f"{url} missing from the deck: template changed?"
    leaks = sorted(set(re.findall(r"""(?:src|href)=["'](https?://(?:unpkg|cdnjs|cdn\.)[^"']+)""",
                                  body)))
    if leaks:
        raise RuntimeError(f"{notebook.name}: deck still loads from a CDN: {leaks}")
    target = Path(out_dir) / f"{notebook.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target


def resolve(names):
    if not names:
        return sorted(NOTEBOOKS.glob("*.ipynb"))
    paths = []
    for name in names:
        path = Path(name) if name.endswith(".ipynb") else NOTEBOOKS / f"{Path(name).stem}.ipynb"
        if not path.is_file():
            sys.exit(f"no notebook {path}")
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the decks")
    parser.add_argument("--apply", action="store_true",
                        help="write slide metadata into the notebooks instead of building decks")
    args = parser.parse_args(argv)
    notebooks = resolve(args.names)
    if args.apply:
        for path in notebooks:
            nb = add_slide_metadata(nbformat.read(path, as_version=4))
            text = nbformat.writes(nb, version=4)
            path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
            print(f"slide metadata: {path.name}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    vendor(args.out / "vendor")
    for path in notebooks:
        target = build_deck(path, args.out)
        print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
