"""Slide metadata: every notebook is a reveal.js deck (`make slides`, RISE in JupyterLab).

The rules live in tools/slides.py; tools/build_notebooks.py applies them to every notebook it
builds. The deck itself is opened offline in Chromium by tests/test_browser.py.
"""

import importlib.util
import itertools
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def load_slides_tool():
    spec = importlib.util.spec_from_file_location("gfl_slides", ROOT / "tools" / "slides.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_slide_rules_on_a_hand_made_notebook():
    new = nbformat.v4
    cells = [new.new_markdown_cell("# Title"), new.new_markdown_cell("What you learn"),
             new.new_markdown_cell("## Explorer\nClick."), new.new_code_cell('helpers.explore("x")'),
             new.new_code_cell("assert True"), new.new_markdown_cell("**A claim.** Shown below."),
             new.new_code_cell("assert 1"), new.new_markdown_cell("## Predict first"),
             new.new_code_cell('helpers.predict("x")'), new.new_markdown_cell("### Myth 1"),
             new.new_code_cell("assert 2")]
    assert load_slides_tool().slide_types(cells) == [
        "slide", "-", "slide", "slide", "slide", "subslide", "-", "slide", "-", "subslide", "-"]


def test_explorer_is_recognised_by_its_output():
    view = "application/vnd.jupyter.widget-view+json"
    cell = nbformat.v4.new_code_cell("e = make()\ne")
    cell.outputs = [nbformat.v4.new_output("execute_result", execution_count=1, data={
        view: {"model_id": "1" * 32}, "text/plain": "Explorer('control')"})]
    assert load_slides_tool().shows_own_slide_widget(cell)
    cell.outputs[0]["data"]["text/plain"] = "PredictQuiz('control')"
    assert not load_slides_tool().shows_own_slide_widget(cell)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_carries_slide_metadata(path):
    slides = load_slides_tool()
    nb = nbformat.read(path, as_version=4)
    stored = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    assert stored == slides.slide_types(nb.cells), (
        f"{path.name}: slide metadata missing or stale; rebuild with `make notebooks NB="
        f"{path.stem}` (or `python tools/slides.py --apply {path.relative_to(ROOT)}`)")
    explorers = [i for i, c in enumerate(nb.cells) if slides.shows_own_slide_widget(c)]
    for index in explorers:
        assert stored[index] == "slide", f"{path.name}: explorer cell {index} is not a slide"


def opening_headings(cell):
    """The heading lines a Markdown cell opens with (before its first line of prose)."""
    lines = [line for line in cell.source.splitlines() if line.strip()]
    return list(itertools.takewhile(lambda line: line.startswith("#"), lines))


def test_each_myth_is_a_slide_of_its_own():
    """A teacher votes on one claim at a time: every myth heading of 10 starts a (sub-)slide,
    alone or just below the "Going deeper" heading that opens the same cell, one myth a cell."""
    nb = nbformat.read(ROOT / "notebooks" / "10_myths.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "markdown"]
    mentioned = [c for c in cells if any(line.startswith("### Myth")
                                         for line in c.source.splitlines())]
    myths = [c for c in mentioned if any(h.startswith("### Myth") for h in opening_headings(c))]
    assert len(myths) >= 8 and myths == mentioned, "a myth heading after prose starts no slide"
    assert all(sum(line.startswith("### Myth") for line in c.source.splitlines()) == 1
               for c in myths)
    assert all(c.metadata["slideshow"]["slide_type"] in ("slide", "subslide") for c in myths)
