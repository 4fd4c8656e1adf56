"""Each notebook teaches in ten minutes (issue 12): a short core in the skeleton's order, then
"Going deeper" parts with their times; exercises whose answers are not shown above them.

Read from the built notebooks (``notebooks/NN_name.ipynb``, outputs included): rebuild a notebook
before testing it. The core (every cell before the first heading containing "Going deeper"), its
word count and its silent cells are tools/lesson_stats.py's.

Answer leaks (:func:`leaks`). For each ``check("NN.k", answer)`` cell the exercise's statement
is the markdown cell holding ``**NN.k**`` (else the last markdown cell before the check). What is
"above" it: every earlier cell's markdown and outputs (plain text, HTML without its tags, SVG
labels, streams, errors, and the stored state of widgets, e.g. a predict quiz's folded answer),
plus the statement cell's text before ``**NN.k**``. Code sources are not searched (a learner
reads the output, and an exercise may reuse names). The expected answer, computed by
``helpers.exercises.EXERCISES[key].expected()``, is searched there in each textual form a reader
would recognise, ignoring quotes and backticks:

- a set of names: its Python repr (set, list or tuple brackets, any order); for two or more names
  of three or more characters also prose joins in any order ("l1.weight and l1.bias",
  "a, b and c"). A strict subset is not the answer and is not flagged; nor is a single name
  outside brackets. The empty set: ``set()``.
- a tuple or list: its repr and list form, ``torch.Size([...])``, and ``3 × 4`` for two ints.
- an int: only with three or more digits (0..99 are everywhere: indices, seeds, sizes).
- a float: its roundings to 2..6 decimals that have three or more significant digits.
- a tensor: its printed data and its list form rounded to 4 decimals (whitespace ignored), and for
  one element the float forms; a tensor of only 0 and ±1 is not distinctive and is skipped.
- a dict: its repr, items in any order.
"""

import html
import itertools
import json
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import lesson_stats  # noqa: E402
from helpers.lessons import LESSONS  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
SLUGS = [item.slug for item in LESSONS]
CHECK = re.compile(r"""(?:helpers\.)?\bcheck\(\s*["'](\d\d\.\d+)["']""")
HEADING = re.compile(r"^#{1,6}\s")
TIME_STATED = re.compile(r"\((?:about )?\d+ minutes?\)")
WHY_NONE = re.compile(r"(?i:\bwhy\b).*\bNone\b")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

# The skeleton's core parts, in order: (name, regex, must the line be a heading?)
SKELETON = [
    ("title", r"^# \d\d · ", True),
    ("What you will learn", r"(?i)what you will learn", False),
    ("Prerequisites", r"(?i)prerequisites", False),
    ("Time", r"(?i)\*\*time\*\*|^#+\s*time\b", False),
    ("Setup", r"(?i)setup", True),
    ("toy network", r"(?i)toy network", True),
    ("Predict first", r"(?i)predict", True),
    ("mechanism in code", r"(?i)\bin code\b", True),
    ("Explorer", r"(?i)explorer", True),
    ("Recap", r"(?i)recap", True),
]


def load(slug):
    return json.loads((NOTEBOOKS / f"{slug}.ipynb").read_text())


def source(cell):
    text = cell.get("source", "")
    return text if isinstance(text, str) else "".join(text)


def core_cells(cells):
    """The cells before the first "Going deeper" heading (lesson_stats' core)."""
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "markdown" and lesson_stats.DEEPER.search(source(cell)):
            return cells[:index]
    return cells


# ----- the text a reader sees -----------------------------------------------------------------

def _html_text(markup):
    markup = re.sub(r"(?s)<(style|script)\b.*?</\1>", " ", markup)
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def _svg_text(svg):
    return " ".join(html.unescape(t) for t in re.findall(r"(?s)<text\b[^>]*>(.*?)</text>", svg))


def _joined(value):
    return value if isinstance(value, str) else "".join(value)


def widget_text(model_id, states, seen=None):
    """The text a widget and its children hold in the notebook's stored widget state."""
    seen = set() if seen is None else seen
    if model_id in seen or model_id not in states:
        return ""
    seen.add(model_id)
    parts = []

    def walk(value, key=""):
        if isinstance(value, str):
            if value.startswith("IPY_MODEL_"):
                parts.append(widget_text(value[len("IPY_MODEL_"):], states, seen))
            elif key in ("value", "description", "placeholder", "tooltip", "_options_labels"):
                parts.append(_html_text(value))
        elif isinstance(value, list):
            for item in value:
                walk(item, key)

    for key, value in states[model_id].get("state", {}).items():
        if key == "outputs":
            parts.extend(output_text(o, states) for o in value)
        else:
            walk(value, key)
    return "\n".join(p for p in parts if p)


def output_text(output, states=None):
    """Everything a reader can read in one stored output."""
    if output.get("output_type") == "stream":
        return _joined(output.get("text", ""))
    if output.get("output_type") == "error":
        return f"{output.get('ename', '')}: {output.get('evalue', '')}"
    data = output.get("data", {})
    parts = [_joined(data.get("text/plain", "")), _joined(data.get("text/markdown", "")),
             _html_text(_joined(data.get("text/html", ""))),
             _svg_text(_joined(data.get("image/svg+xml", "")))]
    if WIDGET_VIEW in data and states:
        parts.append(widget_text(data[WIDGET_VIEW].get("model_id", ""), states))
    return "\n".join(p for p in parts if p)


def widget_states(notebook):
    return notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})


# ----- exercises --------------------------------------------------------------------------------

def exercises(cells):
    """``(key, index of the statement cell, offset of **key** in it or 0)`` per check cell."""
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        for key in CHECK.findall(source(cell)):
            markdown = [i for i in range(index) if cells[i]["cell_type"] == "markdown"]
            marked = [i for i in markdown if f"**{key}**" in source(cells[i])]
            statement = marked[-1] if marked else markdown[-1]
            offset = source(cells[statement]).find(f"**{key}**") if marked else 0
            found.append((key, statement, offset))
    return found


def statement_opening(cells, statement, offset):
    """The exercise's first sentence: from ``**NN.k**`` to the first "?" or ".", or the end of
    its paragraph, lines joined."""
    paragraph = re.split(r"\n\s*\n", source(cells[statement])[offset:], maxsplit=1)[0]
    return " ".join(re.match(r"[^?]*?(?:\?|\.(?=\s)|$)", paragraph, re.S).group(0).split())


def text_above(cells, statement, offset, states=None):
    parts = []
    for cell in cells[:statement]:
        if cell["cell_type"] == "markdown":
            parts.append(source(cell))
        else:
            parts.extend(output_text(o, states) for o in cell.get("outputs", []))
    parts.append(source(cells[statement])[:offset])
    return "\n".join(parts)


def registered_exercises():
    from helpers import mechanisms, myths, patterns  # noqa: F401  (each registers exercises)
    from helpers.exercises import EXERCISES

    return EXERCISES


# ----- the answer leak detector -------------------------------------------------------------

def prose(text):
    """Quotes and backticks dropped, whitespace runs made one space."""
    return re.sub(r"\s+", " ", re.sub(r"[`'\"]", "", text))


def squashed(text):
    return re.sub(r"\s+", "", prose(text))


def significant_digits(number_text):
    return len(number_text.lstrip("-").replace(".", "").strip("0"))


def number_patterns(value):
    """Regexes for an int or float as a reader would see it printed."""
    if isinstance(value, bool):
        return []
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if abs(value) < 100:
            return []
        texts = {str(value), f"{value:,}"}
    else:
        texts = {f"{value:.{d}f}" for d in range(2, 7)} | {repr(value)}
        texts = {t for t in texts if significant_digits(t) >= 3}
    sign = "" if value < 0 else "(?<!-)"
    return [sign + r"(?<![\d.,])" + re.escape(t) + r"(?![\d])" for t in sorted(texts)]


SEPARATOR = r"(?:\s*,\s*and\s+|\s*,\s*|\s+and\s+|\s*/\s*|\s*&\s*)"
NAME_LIKE = r"[\w.]*[._(][\w.()=]*"  # l2.weight, model.zero_grad(), set_to_none=False
LIST_GOES_ON = re.compile(r"^" + SEPARATOR + NAME_LIKE)
LIST_CAME_BEFORE = re.compile(NAME_LIKE + SEPARATOR + r"$")


def _names_joined(names):
    word = r"(?<![\w.]){}(?![\w])"
    return [SEPARATOR.join(word.format(re.escape(n)) for n in order)
            for order in itertools.permutations(names)]


def in_longer_list(view, match):
    """Whether a run of names is part of a longer list of name-like items (then it lists
    choices, and is not the answer)."""
    return bool(LIST_GOES_ON.match(view[match.end():match.end() + 80])
                or LIST_CAME_BEFORE.search(view[max(match.start() - 80, 0):match.start()]))


def _bracketed(items):
    """Squashed reprs of ``items`` in every order: set and list brackets (not a Markdown link's
    ``[text](...)``), and for two or more items tuple brackets."""
    forms = []
    for order in itertools.permutations(items):
        inner = ",".join(order)
        forms += [re.escape(f"{{{inner}}}"), re.escape(f"[{inner}]") + r"(?!\()"]
        if len(items) > 1:
            forms.append(re.escape(f"({inner})"))
    return forms


def answer_patterns(expected):
    """``(kind, regex)`` pairs: kind "prose" or "squashed" says which text the regex reads;
    "names" reads prose, and a match inside a longer list of names does not count."""
    if isinstance(expected, torch.Tensor):
        return tensor_patterns(expected)
    if isinstance(expected, (set, frozenset)):
        names = sorted(str(n) for n in expected)
        if not names:
            return [("prose", r"(?<![\w])(?:frozen)?set\(\)")]
        found = [("squashed", p) for p in _bracketed(names)]
        if len(names) >= 2 and all(len(n) >= 3 for n in names):
            found += [("names", p) for p in _names_joined(names)]
        return found
    if isinstance(expected, dict):
        if not expected:
            return []
        items = [f"{squashed(str(k))}:{squashed(str(v))}" for k, v in expected.items()]
        return [("squashed", re.escape("{" + ",".join(order) + "}"))
                for order in itertools.permutations(items)]
    if isinstance(expected, (tuple, list)):
        if len(expected) == 1:
            return answer_patterns(expected[0])
        inner = ",".join(squashed(repr(v)) for v in expected)
        found = [("squashed", re.escape(f"({inner})")), ("squashed", re.escape(f"[{inner}]"))]
        if len(expected) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                      for v in expected):
            found.append(("prose", rf"(?<![\d.]){expected[0]}\s*[×x]\s*{expected[1]}(?![\d])"))
        return found
    if isinstance(expected, (int, float)):
        return [("prose", p) for p in number_patterns(expected)]
    if isinstance(expected, str) and len(expected) >= 12:
        return [("prose", re.escape(prose(expected)))]
    return []


def tensor_patterns(tensor):
    tensor = tensor.detach().cpu()
    if tensor.numel() == 0 or bool(((tensor == 0) | (tensor.abs() == 1)).all()):
        return []
    printed = str(tensor)
    data = printed[len("tensor("):].rsplit(")", 1)[0].split(", dtype=")[0]
    rounded = json.dumps(torch.round(tensor.double(), decimals=4).tolist())
    found = [("squashed", re.escape(squashed(data))), ("squashed", re.escape(squashed(rounded)))]
    if tensor.numel() == 1:
        found += [("prose", p) for p in number_patterns(float(tensor.item()))]
    return found


def leaks(text, expected):
    """The places in ``text`` where ``expected`` shows: a list of short quoted contexts."""
    views = {"prose": prose(text), "squashed": squashed(text)}
    views["names"] = views["prose"]
    places = []
    for kind, pattern in answer_patterns(expected):
        for match in re.finditer(pattern, views[kind]):
            if kind == "names" and in_longer_list(views[kind], match):
                continue
            start = max(match.start() - 40, 0)
            places.append(f"{kind}: ...{views[kind][start:match.end() + 40]}...")
    return places


# ----- the detector itself ---------------------------------------------------------------------

def _markdown(text):
    return {"cell_type": "markdown", "source": text, "metadata": {}}


def _code(text, printed=""):
    outputs = [{"output_type": "stream", "name": "stdout", "text": printed}] if printed else []
    return {"cell_type": "code", "source": text, "metadata": {}, "outputs": outputs}


def _leaks_in(cells, expected):
    (key, statement, offset), = exercises(cells)
    return leaks(text_above(cells, statement, offset), expected)


def test_leak_detector_finds_an_answer_shown_above():
    svg = '<svg><text x="1">l1.weight</text><text x="2">(3, 4)</text></svg>'
    graph = {"cell_type": "code", "source": "draw()", "metadata": {}, "outputs": [
        {"output_type": "execute_result", "execution_count": 1, "metadata": {},
         "data": {"image/svg+xml": svg, "text/plain": "graph"}}]}
    cells = [_markdown("# 99 · Test\nAfter the cut `l1.bias` and `l1.weight`, so it stays."),
             _code("print(grads)", "{'l2.bias': tensor([-0.6194])}"), graph,
             _markdown("## Exercises\n**99.1** Which grads are `None`?"),
             _code('answer = ...\nhelpers.check("99.1", answer)')]
    assert _leaks_in(cells, {"l1.weight", "l1.bias"})
    assert _leaks_in(cells, (3, 4))
    assert _leaks_in(cells, torch.tensor([-0.6194]))
    assert _leaks_in(cells, -0.61937)


def test_leak_detector_ignores_generic_tokens_and_what_follows():
    cells = [_markdown("# 99 · Test\n`l1.weight` is frozen; `l2.bias`, `l1.bias` and "
                       "`l2.weight` train. Layer 1 has 3 units; lr 0.1; `10.0.weight` and "
                       "`1.bias` are in another model; the first parameter (`l1.weight`) and "
                       "[`l1.weight`](#frozen)."),
             _code("print(x)", "0 1 4 0.25 tensor([0., 1.]) 1.7 1.70"),
             _markdown("## Exercises\n**99.1** Which grads are `None`?"),
             _code('answer = ...\nhelpers.check("99.1", answer)'),
             _markdown("<details>Solution: `{'l1.weight', 'l1.bias'}`, (3, 4)</details>")]
    assert not _leaks_in(cells, {"l1.weight", "l1.bias"})  # never joined above; solution below
    assert not _leaks_in(cells, {"l1.weight"})  # one name outside brackets is not an answer
    assert not _leaks_in(cells, {"l2.weight", "l2.bias", "l1.weight"})  # only a subset shown
    assert not _leaks_in(cells, {"0.weight", "1.bias"})
    assert not _leaks_in(cells, {"l2.bias", "l1.bias"})  # two of the list of three
    assert not _leaks_in(cells, (3, 4))
    assert not _leaks_in(cells, 1)
    assert not _leaks_in(cells, 0.25)
    assert not _leaks_in(cells, 1.7)
    assert not _leaks_in(cells, torch.tensor([0.0, 1.0]))


def test_statement_cell_text_before_the_key_counts_as_above():
    cells = [_markdown("# 99 · Test"),
             _markdown("**99.0** Solution: (3, 4)\n\n**99.1** Shape of the grad?"),
             _code('helpers.check("99.1", ...)')]
    assert _leaks_in(cells, (3, 4))


# ----- the limits, per notebook ----------------------------------------------------------------

@pytest.mark.parametrize("slug", SLUGS)
def test_core_prose_fits_the_word_limit(slug):
    core = lesson_stats.parts(NOTEBOOKS / f"{slug}.ipynb")[0]
    assert core.words <= lesson_stats.CORE_WORD_LIMIT, (
        f"{slug}: the core has {core.words} words of prose, the limit is "
        f"{lesson_stats.CORE_WORD_LIMIT}; move what is not core under a Going deeper heading")


@pytest.mark.parametrize("slug", SLUGS)
def test_core_has_the_skeleton_parts_in_order(slug):
    lines = [line for cell in core_cells(load(slug)["cells"]) if cell["cell_type"] == "markdown"
             for line in source(cell).splitlines()]
    position = -1
    for name, pattern, heading in SKELETON:
        found = [i for i, line in enumerate(lines)
                 if re.search(pattern, line) and (HEADING.match(line) or not heading)]
        after = [i for i in found if i > position]
        assert after, (f"{slug}: the core lacks {name!r} after the previous part (pattern "
                       f"{pattern!r}{', on a heading line' if heading else ''}); found at "
                       f"{found} (a part before the previous one, or after Going deeper)")
        position = after[0]


@pytest.mark.parametrize("slug", SLUGS)
def test_every_core_code_cell_shows_output(slug):
    core = lesson_stats.parts(NOTEBOOKS / f"{slug}.ipynb")[0]
    code = [c for c in core_cells(load(slug)["cells"]) if c["cell_type"] == "code"]
    silent = [source(c).split("\n", 1)[0] for c in code[1:] if not c.get("outputs")]
    assert core.silent_code_cells == 0, (
        f"{slug}: {core.silent_code_cells} core code cells show nothing (first lines: {silent}); "
        "put the asserts at the end of the cell that shows the thing, or print what was checked")


@pytest.mark.parametrize("slug", SLUGS)
def test_going_deeper_headings_state_their_time(slug):
    headings = [line for cell in load(slug)["cells"] if cell["cell_type"] == "markdown"
                for line in source(cell).splitlines() if lesson_stats.DEEPER.match(line)]
    untimed = [h for h in headings if not TIME_STATED.search(h)]
    assert not untimed, f"{slug}: say the time, e.g. '(about 8 minutes)': {untimed}"


@pytest.mark.parametrize("slug", SLUGS)
def test_no_exercise_answer_is_shown_above_it(slug):
    notebook = load(slug)
    cells, states = notebook["cells"], widget_states(notebook)
    registry = registered_exercises()
    shown = {}
    for key, statement, offset in exercises(cells):
        found = leaks(text_above(cells, statement, offset, states), registry[key].expected())
        if found:
            shown[key] = found[:3]
    assert not shown, f"{slug}: exercise answers shown above the exercise: {shown}"


@pytest.mark.parametrize("slug", SLUGS)
def test_a_why_is_it_none_exercise(slug):
    cells = load(slug)["cells"]
    openings = [statement_opening(cells, s, o) for _, s, o in exercises(cells)]
    assert any(WHY_NONE.search(opening) for opening in openings), (
        f"{slug}: no exercise whose first sentence (from **NN.k**) asks 'Why ... None'; first "
        f"sentences: {openings}")


@pytest.mark.parametrize("slug", SLUGS)
def test_every_exercise_has_a_hint(slug):
    registry = registered_exercises()
    number = slug[:2]
    used = {key for key, _, _ in exercises(load(slug)["cells"])}
    mine = {key for key in registry if key.startswith(number + ".")}
    assert used <= mine, f"{slug}: checks unregistered exercises {sorted(used - mine)}"
    bare = sorted(key for key in mine if not registry[key].hints)
    assert not bare, f"{slug}: exercises without a Hint for a common wrong answer: {bare}"


# ----- the teacher kit: README "For teachers" and TEACHER_NOTES.md ----------------------------

def _readme_index():
    import readme_index

    return readme_index


def test_the_plan_fits_ninety_minutes_with_measured_cores():
    from helpers import teaching

    index = _readme_index()
    minutes = {step.slug: index.plan_minutes(step) for step in teaching.PLAN}
    total = sum(minutes.values()) + teaching.RECAP_MINUTES
    assert total <= teaching.SESSION_MINUTES == 90, (
        f"the plan takes {total} minutes (core + vote per notebook: {minutes}, recap "
        f"{teaching.RECAP_MINUTES}); shorten the cores or move a notebook to HOMEWORK")
    for step in teaching.PLAN:  # the minutes are the notebook's core, not a figure typed in
        core = lesson_stats.parts(NOTEBOOKS / f"{step.slug}.ipynb")[0]
        assert minutes[step.slug] >= core.minutes + step.discussion


def test_every_notebook_is_in_the_plan_homework_or_beyond_once():
    from helpers import teaching

    slugs = [s.slug for s in teaching.PLAN] + list(teaching.HOMEWORK) + list(teaching.BEYOND)
    assert sorted(slugs) == SLUGS


def notes_sections():
    """TEACHER_NOTES.md's sections by the first two characters of their heading ("03", "Re")."""
    notes = (ROOT / "TEACHER_NOTES.md").read_text()
    return {section[:2]: section for section in notes.split("\n## ")[1:]}


def test_the_recap_answer_cites_only_notebooks_taught_in_the_session():
    from helpers import teaching

    cited = set(re.findall(r"\((\d\d)\)", notes_sections()["Re"]))
    planned = {step.slug[:2] for step in teaching.PLAN}
    assert cited and cited <= planned, f"the recap needs {sorted(cited - planned)}, homework"


def _prompts():
    from helpers import teaching

    return teaching.PROMPTS


@pytest.mark.parametrize("prompt", _prompts(), ids=lambda p: p.slug)
def test_prompt_expects_the_none_grads_the_step_gives(prompt):
    import helpers

    assert set(helpers.run(prompt.mechanism, **prompt.options).grads_none()) == prompt.none


def predict_calls(path):
    """``(mechanism, options)`` of each ``helpers.predict(...)`` call in a notebook twin."""
    import ast

    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "predict" and node.args):
            calls.append((ast.literal_eval(node.args[0]),
                          {k.arg: ast.literal_eval(k.value) for k in node.keywords}))
    return calls


@pytest.mark.parametrize("prompt", _prompts(), ids=lambda p: p.slug)
def test_prompt_is_the_notebooks_predict_first_question(prompt):
    from helpers.registry import get_mechanism

    calls = predict_calls(ROOT / "notebooks" / "sources" / f"{prompt.slug}.py")
    resolved = [(name, get_mechanism(name).resolve(**options)) for name, options in calls]
    mine = (prompt.mechanism, get_mechanism(prompt.mechanism).resolve(**prompt.options))
    assert mine in resolved, f"{prompt.slug} predicts {calls}; the README prompt says {mine}"


def test_every_ask_in_the_readme_has_an_answer_in_the_teacher_notes():
    readme = _readme_index().README.read_text()
    sections = notes_sections()
    asks = re.findall(r"^- \*\*(\d\d)\*\*: .*? Ask: (.+)$", readme, re.M)
    recap = re.search(r"^\| [\d–]+ \| Recap \| [^|]* \| (.+) \|$", readme, re.M).group(1)
    assert len(asks) == len(_prompts()) >= 10
    assert {number for number, _ in asks} | {"Re"} == set(sections), "one section per question"
    for number, ask in [*asks, ("Re", recap)]:
        section = " ".join(sections[number].split())  # the notes wrap their lines
        assert f"**Ask:** {ask} **Answer:** " in section, f"no answer for {number}: {ask}"
        assert len(section.split("**Answer:** ", 1)[1]) > 40, f"answer too short: {number}"


def test_readme_teacher_parts_are_up_to_date():
    index = _readme_index()
    readme = index.README.read_text()
    for start, end, make in [(index.PLAN_START, index.PLAN_END, index.plan_table),
                             (index.HOMEWORK_START, index.HOMEWORK_END, index.homework),
                             (index.PROMPTS_START, index.PROMPTS_END, index.prompt_list)]:
        assert f"{start}\n{make()}\n{end}" in readme, \
            f"README between {start} and {end} is out of date: run `python tools/readme_index.py`"
