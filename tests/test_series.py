"""The series hangs together: README index, badges, the shared setup cell, links."""

import re
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks" / "sources").glob("*.py"))
sys.path.insert(0, str(ROOT / "tools"))

import readme_index  # noqa: E402


def first_code_cell(path):
    notebook = jupytext.read(path)
    return next(cell.source for cell in notebook.cells if cell.cell_type == "code")


def markdown(path):
    return "\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "markdown")


def test_readme_lists_every_notebook_with_its_colab_badge():
    assert readme_index.updated_readme() == readme_index.README.read_text(), \
        "README is out of date: run `python tools/readme_index.py`"
    readme = readme_index.README.read_text()
    for source in SOURCES:
        assert (f"colab.research.google.com/github/{readme_index.REPO}/blob/main/notebooks/"
                f"{source.stem}.ipynb") in readme


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_badges_open_this_notebook(source):
    text = markdown(source)
    assert (f"https://colab.research.google.com/github/{readme_index.REPO}/blob/main/"
            f"notebooks/{source.stem}.ipynb") in text
    assert (f"https://mybinder.org/v2/gh/{readme_index.REPO}/main?urlpath=lab/tree/"
            f"notebooks/{source.stem}.ipynb") in text


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_setup_cell_is_the_same_everywhere(source):
    setup = first_code_cell(SOURCES[0])
    assert 'if "google.colab" in sys.modules' in setup and "gradient-flow-lab @ git+" in setup
    # Colab installs the helpers at the tag of this package version (pinned, not a branch).
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(),
                        re.MULTILINE).group(1)
    assert f'gradient-flow-lab@v{version}"' in setup and "torchviz==0.0.3" in setup
    assert first_code_cell(source) == setup


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_links_to_other_notebooks_exist(source):
    links = re.findall(r"\]\(([0-9]{2}_[a-z_]+\.ipynb)\)", markdown(source))
    assert links, "every notebook links to the next one"
    for link in links:
        assert (ROOT / "notebooks" / "sources" / link.replace(".ipynb", ".py")).exists(), link
