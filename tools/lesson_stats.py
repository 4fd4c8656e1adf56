#!/usr/bin/env python3
"""How long each notebook takes: words and cells of its core and of each "Going deeper" part.

The core is everything before the first heading that contains "Going deeper"; each such heading
starts a part of its own. Words are counted as the pre-stop hook counts them (Markdown prose,
link targets left out). Minutes come from a stated model, not a stopwatch:
``words / READING_WPM + code cells * SECONDS_PER_CODE_CELL + widgets * SECONDS_PER_WIDGET``.
A code cell is silent when it has no output; the setup cell (the first code cell, the same in every
notebook: it installs on Colab and does nothing visible elsewhere) is not counted as silent.

``python tools/lesson_stats.py`` prints a table for every notebook.
"""

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CORE_WORD_LIMIT = 600
READING_WPM = 150  # technical prose, read carefully (slower than the usual 200-250 wpm)
SECONDS_PER_CODE_CELL = 20  # read the code, run it, glance at the output
SECONDS_PER_WIDGET = 60  # try a few controls of an explorer or answer a quiz
WIDGET = "application/vnd.jupyter.widget-view+json"
DEEPER = re.compile(r"^#+\s.*going deeper", re.I | re.M)
WORD = re.compile(r"[A-Za-z0-9_`'.]+")
LINK_TARGET = re.compile(r"\(http[^)]*\)")


@dataclass
class Part:
    """A run of cells: the core, or one "Going deeper" section."""

    heading: str
    words: int = 0
    code_cells: int = 0
    widgets: int = 0
    silent_code_cells: int = 0  # code cells that show nothing (the setup cell aside)

    @property
    def minutes(self):
        seconds = (self.words / READING_WPM * 60 + self.code_cells * SECONDS_PER_CODE_CELL
                   + self.widgets * SECONDS_PER_WIDGET)
        return seconds / 60


def words_in(markdown):
    return len(WORD.findall(LINK_TARGET.sub("", markdown)))


def parts(path):
    """The core and the "Going deeper" parts of notebook ``path``, in order."""
    found = [Part("core")]
    setup = True  # the next code cell is the first, the setup cell
    for cell in json.loads(Path(path).read_text())["cells"]:
        source = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            heading = DEEPER.search(source)
            if heading:
                found.append(Part(heading.group(0).lstrip("# ").strip()))
            found[-1].words += words_in(source)
        elif cell["cell_type"] == "code":
            outputs = cell.get("outputs", [])
            found[-1].code_cells += 1
            found[-1].widgets += any(WIDGET in o.get("data", {}) for o in outputs)
            found[-1].silent_code_cells += not outputs and not setup
            setup = False
    return found


def table(paths):
    rows = ["| notebook | core words | core code cells | core min | deeper parts | deeper min |",
            "|---|---|---|---|---|---|"]
    for path in paths:
        core, *deeper = parts(path)
        rows.append(f"| {Path(path).stem} | {core.words} | {core.code_cells} | "
                    f"{core.minutes:.0f} | {len(deeper)} | "
                    f"{sum(p.minutes for p in deeper):.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(sys.argv[1:] or sorted(NOTEBOOKS.glob("*.ipynb"))))
