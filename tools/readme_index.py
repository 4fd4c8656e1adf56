"""Write the README's notebook list and the notebook names in its teacher plan (each between
its markers) from helpers.lessons, the one table of notebooks. Each notebook's one-line summary
is the first sentence after its title in the notebook's own twin.

Usage: python tools/readme_index.py [--check]   (--check: exit 1 if the README is out of date)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.lessons import LESSONS, lesson  # noqa: E402

README = ROOT / "README.md"
SOURCES = ROOT / "notebooks" / "sources"
REPO = "gradient-flow-lab/gradient-flow-lab"
START, END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"
PLAN_START, PLAN_END = "<!-- teacher-plan:start -->", "<!-- teacher-plan:end -->"


def title_and_promise(source):
    """The notebook's ``# # title`` line and the first sentence of prose after it."""
    lines = source.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("# # "))
    title = lines[index][4:].strip()
    paragraph = []
    for line in lines[index + 1:]:
        text = line[1:].strip() if line.startswith("#") else ""
        if not text and paragraph:
            break
        if text:
            paragraph.append(text)
    prose = " ".join(paragraph)
    match = re.search(r"^.*?\.(?=\s|$)", prose)
    return title, (match.group(0) if match else prose)


def readme_link(item, text):
    return f"[{text}](notebooks/{item.file})"


def index_table():
    rows = ["| Notebook | What it shows | Open |", "|---|---|---|"]
    for item in LESSONS:
        title, promise = title_and_promise(SOURCES / f"{item.slug}.py")
        if title != item.title:
            raise ValueError(f"{item.slug}.py is titled {title!r}, helpers/lessons.py says "
                             f"{item.title!r}")
        colab = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                 f"(https://colab.research.google.com/github/{REPO}/blob/main/notebooks/"
                 f"{item.file})")
        rows.append(f"| {readme_link(item, item.title)} | {promise} | {colab} |")
    return "\n".join(rows)


def plan_row(row):
    """A teacher-plan table row whose notebook cell (``01 ...`` or ``[01 ...``) is rewritten as
    a link named from helpers.lessons; other rows (the header, "Recap") unchanged."""
    cells = row.split("|", 3)
    match = re.match(r"\s*\[?(\d\d)\b", cells[2]) if len(cells) == 4 else None
    if not match:
        return row
    item = lesson(match.group(1))
    cells[2] = f" {readme_link(item, item.label)} "
    return "|".join(cells)


def between(text, start, end, replace):
    pattern = re.compile(re.escape(start) + "\n(.*?)\n" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README.md lacks the markers {start} ... {end}")
    return pattern.sub(lambda m: f"{start}\n{replace(m.group(1))}\n{end}", text)


def updated_readme():
    text = between(README.read_text(), START, END, lambda _: index_table())
    return between(text, PLAN_START, PLAN_END,
                   lambda plan: "\n".join(plan_row(row) for row in plan.split("\n")))


if __name__ == "__main__":
    new = updated_readme()
    if "--check" in sys.argv:
        sys.exit(0 if new == README.read_text() else "README is out of date (notebook list or "
                 "teacher plan): run `python tools/readme_index.py`")
    README.write_text(new)
