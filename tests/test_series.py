"""The series hangs together: README index, badges, the shared setup cell, links, the one
table of notebooks (helpers/lessons.py) and the facade notebooks import from."""

import ast
import re
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks" / "sources").glob("*.py"))
sys.path.insert(0, str(ROOT / "tools"))

import readme_index  # noqa: E402
from helpers.lessons import LESSONS, lesson  # noqa: E402


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


# ----- one table of notebooks: helpers/lessons.py ---------------------------------------------

def full_name(item):
    return item.name + (f": {item.subtitle}" if item.subtitle else "")


def test_lessons_list_exactly_the_notebook_twins_in_order():
    assert [item.slug for item in LESSONS] == [source.stem for source in SOURCES]
    assert [item.number for item in LESSONS] == [f"{i:02d}" for i in range(len(SOURCES))]
    assert lesson("03") is lesson("03_detach") and lesson("03").file == "03_detach.ipynb"
    with pytest.raises(ValueError, match="valid notebooks: 00_start_here, 01_zero_grad"):
        lesson("99")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_title_cell_is_the_lessons_title(source):
    cells = jupytext.read(source).cells
    title = next(c.source for c in cells if c.cell_type == "markdown").splitlines()[0]
    assert title == f"# {source.stem[:2]} · {full_name(lesson(source.stem))}"


def series_map(current):
    """The "## The series" list a notebook shows, written here from LESSONS."""
    lines = []
    for item in LESSONS:
        name = full_name(item)
        shown = f"**{name}** (this notebook)" if item.slug == current else f"[{name}]({item.file})"
        lines.append(f"{int(item.number)}. {shown}")
    return "\n".join(lines)


SERIES_MAPS = [source for source in SOURCES if "\n# ## The series\n" in source.read_text()]


def test_notebook_00_has_the_series_map():
    assert SOURCES[0] in SERIES_MAPS


@pytest.mark.parametrize("source", SERIES_MAPS, ids=lambda p: p.stem)
def test_series_map_lists_every_notebook_by_its_lessons_name(source):
    text = markdown(source)
    shown = text.split("## The series\n", 1)[1].split("\n\n", 1)[0]
    assert shown == series_map(source.stem)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_numbered_links_use_the_lessons_name(source):
    """A link such as [Next: 03 · detach](03_detach.ipynb) names the notebook it opens, by
    LESSONS' name or full title."""
    links = re.findall(r"\[([^\]]*?)(\d{2}) · ([^\]]*)\]\((\d{2}_[a-z_]+)\.ipynb\)",
                       markdown(source))
    for _, number, text, slug in links:
        item = lesson(slug)
        assert number == item.number and text in (item.name, full_name(item)), \
            f"[... {number} · {text}]({slug}.ipynb): helpers/lessons.py names it {item.title!r}"


def test_teacher_plan_names_notebooks_as_lessons_does():
    readme = readme_index.README.read_text()
    plan = readme.split("<!-- teacher-plan:start -->\n", 1)[1].split("\n<!-- teacher-plan", 1)[0]
    cells = [row.split("|")[2].strip() for row in plan.splitlines()[2:]]
    assert cells[-1] == "Recap" and len(cells) > 5
    for cell in cells[:-1]:
        number = cell[1:3]
        item = lesson(number)
        assert cell == f"[{number} · {item.name}](notebooks/{item.slug}.ipynb)"


def test_mechanisms_name_their_notebook_by_its_slug():
    import helpers
    import helpers.mechanisms  # noqa: F401  (registers every mechanism)

    named = {m.name: m.notebook for m in helpers.MECHANISMS.values()}
    assert len(named) >= 14 and named["detach"] == "03_detach"
    for name, slug in named.items():
        assert lesson(slug).slug == slug, name


# ----- notebooks import only the facade: helpers.__all__ ----------------------------------------

def test_every_name_in_helpers_all_resolves():
    import helpers

    assert len(set(helpers.__all__)) == len(helpers.__all__)
    for name in helpers.__all__:
        assert getattr(helpers, name) is not None, name
    with pytest.raises(AttributeError, match="it offers: "):
        helpers.no_such_name  # noqa: B018


def facade_violations(tree, offered):
    """Each use of helpers in a notebook's code that is not a name in helpers.__all__."""
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [f"import {a.name}" for a in node.names if a.name.startswith("helpers.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "helpers":
            if node.module != "helpers" or node.level:
                bad.append(f"from {node.module} import ...")
            else:
                bad += [f"from helpers import {a.name}" for a in node.names
                        if a.name not in offered]
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "helpers" and node.attr not in offered):
            bad.append(f"helpers.{node.attr}")
    return bad


def test_facade_check_catches_each_kind_of_bypass():
    code = ("import helpers\nimport helpers.toy\nfrom helpers.toy import toy_net\n"
            "from helpers import run, lessons\nhelpers.run('control')\nhelpers.registry.X\n")
    assert facade_violations(ast.parse(code), {"run"}) == [
        "import helpers.toy", "from helpers.toy import ...", "from helpers import lessons",
        "helpers.registry"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_imports_only_the_facade(source):
    import helpers

    assert facade_violations(ast.parse(source.read_text()), set(helpers.__all__)) == []


PREDICT_CALL = re.compile(r"\b(?:helpers|patterns)\.predict\(")
ANSWER = re.compile(r'<details class="gfl-answer"><summary>.*?</summary><p>(.*?)</p></details>',
                    re.S)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_predict_first_answer_is_folded_below_the_quiz_not_in_the_source(source):
    """Each notebook asks one predict-first question. Its source carries no answer (no
    ``why=``): the explanation comes from the registry and is stored only in the folded
    ``<details>`` output below the quiz, where it explains more than the bare answer."""
    import json

    cells = json.loads((ROOT / "notebooks" / f"{source.stem}.ipynb").read_text())["cells"]
    quizzes = [c for c in cells if c["cell_type"] == "code"
               and PREDICT_CALL.search("".join(c["source"]))]
    assert quizzes, f"{source.stem} has no predict-first quiz"
    for cell in quizzes:
        code = "".join(cell["source"])
        assert "why=" not in code, f"{source.stem}: the answer is in the quiz's source"
        html = "".join("".join(o.get("data", {}).get("text/html", ""))
                       for o in cell.get("outputs", []))
        answers = ANSWER.findall(html)
        assert len(answers) == 1, f"{source.stem}: no folded answer below the quiz"
        reveal, _, why = answers[0].partition(". ")
        assert len(why.split()) >= 8, f"{source.stem}: the answer has no explanation: {answers}"
