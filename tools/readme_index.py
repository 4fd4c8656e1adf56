"""Write the README's notebook list (between its markers) from the notebooks' own titles.

Usage: python tools/readme_index.py [--check]   (--check: exit 1 if the README is out of date)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REPO = "gradient-flow-lab/gradient-flow-lab"
START, END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"


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


def index_table():
    rows = ["| Notebook | What it shows | Open |", "|---|---|---|"]
    for source in sorted((ROOT / "notebooks" / "sources").glob("*.py")):
        name = source.stem
        title, promise = title_and_promise(source)
        colab = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                 f"(https://colab.research.google.com/github/{REPO}/blob/main/notebooks/"
                 f"{name}.ipynb)")
        rows.append(f"| [{title}](notebooks/{name}.ipynb) | {promise} | {colab} |")
    return "\n".join(rows)


def updated_readme():
    text = README.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    return pattern.sub(lambda _: f"{START}\n{index_table()}\n{END}", text)


if __name__ == "__main__":
    new = updated_readme()
    if "--check" in sys.argv:
        sys.exit(0 if new == README.read_text() else "README's notebook list is out of date: "
                 "run `python tools/readme_index.py`")
    README.write_text(new)
