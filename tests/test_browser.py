"""Browser tests: every notebook as a learner meets it, in JupyterLab, Notebook 7 and Voila.

For each notebooks/*.ipynb: open it in JupyterLab, Run All, wait for the kernel to be idle and
assert that no cell shows an error; then click every choice of every explorer control and check
that the gradient table and the graph on the page show what the registry says for that choice
(computed in this process, not read from the page); then give each predict-first quiz a right
and a wrong answer and check how it marks them; pick every bug of notebook 11's BugLab and
check the doctor's table against helpers.bug_lab. Notebook 09's PatternExplorer and PatternQuiz
are checked the same way against helpers.patterns.run_pattern instead of the registry. Notebook
00 runs the same way in Notebook 7, and the playground (notebooks/08_*.ipynb) in Voila, as `make app` serves it.

One JupyterLab server (serving a temporary copy of the notebooks, so autosave never touches the
committed files) and one Chromium for the whole session; while one notebook is checked, the
next one already runs in its own page. A screenshot of each notebook is saved under
test-output/browser/ (git-ignored). Without Chromium the tests skip; under CI=true they fail.
"""

import json
import os
import time
from pathlib import Path

import pytest

import browser_support as bs
from conftest import require_tool
from helpers.registry import get_mechanism, run
from helpers.toy import PARAM_NAMES

NOTEBOOKS = bs.notebooks()
NOTEBOOK7 = [p for p in NOTEBOOKS if p.name.startswith("00_")]
# The Voila app: the playground, or another notebook named by GFL_APP (a path or file name).
APP = os.environ.get("GFL_APP") or next(
    (str(p) for p in NOTEBOOKS if p.name.startswith("08_")), "")


class Lab:
    """The session's JupyterLab: pages are started one notebook ahead of the test using them."""

    def __init__(self, server, browser, order):
        self.server, self.browser, self.order = server, browser, order
        self.started = {}

    def url(self, ui, path):
        if ui == "lab":
            workspace = path.replace("/", "-").replace(".", "-")
            return f"{self.server.url}/lab/workspaces/{workspace}/tree/{path}?reset"
        return f"{self.server.url}/notebooks/{path}"

    def start(self, ui, path):
        if (ui, path) not in self.started:
            self.started[ui, path] = bs.start_notebook(self.browser, self.url(ui, path), path)
        return self.started[ui, path]

    def take(self, ui, path):
        page = self.start(ui, path)
        later = self.order[self.order.index((ui, path)) + 1:] if (ui, path) in self.order else []
        if later:
            self.start(*later[0])  # the next notebook runs while this one is checked
        return page

    def close(self):
        for page in self.started.values():
            if not page.is_closed():
                bs.shutdown_kernel(page)
                page.close()


@pytest.fixture(scope="session")
def lab(browser, tmp_path_factory):
    home = tmp_path_factory.mktemp("jupyter")
    bs.copy_notebooks(home / "root")
    (home / "root" / "nb7").mkdir()
    for path in NOTEBOOK7:  # a separate copy: its own kernel session, apart from Lab's
        (home / "root" / "nb7" / path.name).write_bytes(path.read_bytes())
    server = bs.start_lab(home)
    order = [("lab", p.name) for p in NOTEBOOKS] + [("notebook", f"nb7/{p.name}")
                                                     for p in NOTEBOOK7]
    session = Lab(server, browser, order)
    try:
        yield session
    finally:
        session.close()
        server.stop()


def screenshot(page, name):
    bs.OUTPUT.mkdir(parents=True, exist_ok=True)
    try:
        widget = page.locator(".gfl-explorer").first
        if widget.count():
            widget.scroll_into_view_if_needed(timeout=5000)
        page.screenshot(path=str(bs.OUTPUT / f"{name}.png"), timeout=15000)
    except Exception as error:  # a screenshot must never hide the real failure
        print(f"screenshot {name} failed: {error}")


def wait_for_widgets(page, notebook):
    """Wait until the page shows as many explorers, quizzes and bug labs as the notebook
    stores."""
    want = bs.stored_widgets(notebook)
    deadline = time.monotonic() + bs.WIDGET_TIMEOUT
    while True:
        got = {"Explorer": page.locator(".gfl-explorer").count(),
               "PredictQuiz": page.locator(".gfl-quiz").count(),
               "BugLab": page.locator(".gfl-bug-lab").count()}
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got == want, f"{notebook.name}: the page shows {got} widgets, the notebook stores {want}"
    return want


def check_explorer(explorer):
    """Click every choice of every control; the page must follow the registry each time."""
    shown = explorer.evaluate(bs.READ_WIDGET)
    if shown["pattern"]:
        return check_pattern_explorer(explorer, shown)
    assert shown["mechanism"], "an explorer that names neither a mechanism nor a pattern"
    mechanism = get_mechanism(shown["mechanism"])
    baseline = run("control")
    state = {}
    for option in mechanism.options:
        control = shown["controls"].get(option.name)
        assert control, f"{mechanism.name}: no control for option {option.name!r}"
        labels = [str(label) for label in option.choices.values()]
        assert control["labels"] == labels, (
            f"{mechanism.name}.{option.name}: page offers {control['labels']}, registry {labels}")
        state[option.name] = list(option.choices)[labels.index(control["selected"].strip())]
    assert list(shown["controls"]) == [o.name for o in mechanism.options]

    def expect(state):
        outcome = run(mechanism.name, **state)
        problems = bs.agreement(explorer,
                                lambda shown: bs.explorer_mismatches(shown, outcome, baseline))
        assert not problems, (f"explorer {mechanism.name} {state}: the page disagrees with the "
                              "registry:\n  " + "\n  ".join(problems))

    expect(state)
    visited = 1
    for option in mechanism.options:
        start = state[option.name]
        for value in [*[v for v in option.choices if v != start], start]:
            bs.set_control(explorer, option, value)
            state[option.name] = value
            expect(state)
            visited += 1
    return visited


def check_pattern_explorer(explorer, shown):
    """09's PatternExplorer: pick every pattern and every variant of it; each time the summary,
    the table and the graph must show what helpers.patterns.run_pattern gives for that choice."""
    from helpers.patterns import PATTERNS, run_pattern

    titles = [item.title for item in PATTERNS.values()]
    assert list(shown["controls"]) == ["pattern", "variant"], shown["controls"]
    assert shown["controls"]["pattern"]["labels"] == titles, (
        f"pattern dropdown offers {shown['controls']['pattern']['labels']}, expected {titles}")
    start = shown["pattern"]
    assert start in PATTERNS, f"explorer shows unknown pattern {start!r}"
    assert shown["controls"]["pattern"]["selected"] == PATTERNS[start].title

    def expect(name, variant):
        item = PATTERNS[name]
        result = run_pattern(name, None if variant == "correct" else variant)
        labels = [label for _, label in bs.pattern_variants(item)]
        chosen = dict(bs.pattern_variants(item))[variant]

        def problems_of(shown):
            problems = bs.pattern_mismatches(shown, result, item)
            controls = shown["controls"]
            if controls["pattern"]["selected"] != item.title:
                problems.append(f"pattern dropdown shows {controls['pattern']['selected']!r}")
            if controls["variant"]["labels"] != labels:
                problems.append(f"variant dropdown offers {controls['variant']['labels']}, "
                                f"expected {labels}")
            if controls["variant"]["selected"] != chosen:
                problems.append(f"variant dropdown shows {controls['variant']['selected']!r}, "
                                f"expected {chosen!r}")
            return problems

        problems = bs.agreement(explorer, problems_of)
        assert not problems, (f"pattern explorer {name}/{variant}: the page disagrees with "
                              "helpers.patterns:\n  " + "\n  ".join(problems))

    expect(start, shown["variant"])
    visited, current = 1, start
    for name in [*[n for n in PATTERNS if n != start], start]:
        item = PATTERNS[name]
        if name != current:
            bs.pick(explorer, "pattern", item.title)  # the variant goes back to "correct"
            expect(name, "correct")
            visited, current = visited + 1, name
        variants = bs.pattern_variants(item)
        for variant, label in [*variants[1:], variants[0]]:
            bs.pick(explorer, "variant", label)
            expect(name, variant)
            visited += 1
    return visited


def check_bug_lab(lab):
    """11's BugLab: pick every bug in the dropdown; each time the marker, the bug's code, the
    doctor's table (parameters, causes, caption, notes) and the graph's legend of causes must
    show what helpers.bug_lab.diagnosis_of gives for that bug in this process."""
    from helpers import bugs
    from helpers.bug_lab import diagnosis_of

    shown = lab.evaluate(bs.READ_WIDGET)
    control = shown["controls"]["bug"]
    labels = [item.label for item in bugs.BUGS.values()]
    assert control["labels"] == labels, f"bug dropdown offers {control['labels']}, expected {labels}"
    start = shown["bug"]
    assert start in bugs.BUGS, f"bug lab shows unknown bug {start!r}"
    assert control["selected"] == bugs.BUGS[start].label, control["selected"]

    def expect(name):
        diagnosis, source = diagnosis_of(name), bugs.source(name)

        def problems_of(shown):
            problems = bs.bug_lab_mismatches(shown, name, diagnosis, source)
            if shown["controls"]["bug"]["selected"] != bugs.BUGS[name].label:
                problems.append(f"bug dropdown shows {shown['controls']['bug']['selected']!r}")
            return problems

        problems = bs.agreement(lab, problems_of)
        assert not problems, (f"bug lab {name}: the page disagrees with the doctor:\n  "
                              + "\n  ".join(problems))

    expect(start)
    visited = 1
    for name in [*[n for n in bugs.BUGS if n != start], start]:
        bs.pick(lab, "bug", bugs.BUGS[name].label)
        expect(name)
        visited += 1
    return visited


def quiz_expectation(quiz):
    """What a quiz on the page asks about, its choices, the right ticks and the words that come
    before the answer in its verdict, computed in this process: from the registry for a
    mechanism's quiz, from helpers.patterns.run_pattern for 09's pattern quiz."""
    pattern = quiz.locator("[data-gfl-pattern]").first
    if pattern.count():
        from helpers.patterns import PATTERNS, run_pattern

        name, variant = (pattern.get_attribute("data-gfl-pattern"),
                         pattern.get_attribute("data-gfl-variant"))
        assert name in PATTERNS, f"quiz asks about unknown pattern {name!r}"
        roles, answer = bs.pattern_answer(run_pattern(name, None if variant == "correct"
                                                      else variant))
        return f"quiz {name}/{variant}", roles, answer, "It reaches:"
    hook = quiz.locator("[data-gfl-mechanism]").first
    assert hook.count(), "a quiz that names neither a mechanism nor a pattern"
    mechanism = hook.get_attribute("data-gfl-mechanism")
    options = json.loads(hook.get_attribute("data-gfl-options"))
    answer = bs.grads_none(run(mechanism, **options))
    return (f"quiz {mechanism} {options}", list(PARAM_NAMES), answer,
            "The grads that come back None:")


def check_quiz(quiz):
    """A right answer is marked right, a wrong one wrong, and the verdict names the answer."""
    where, choices, answer, reveal = quiz_expectation(quiz)
    boxes = quiz.locator(".widget-checkbox")
    labels = [t.replace("\xa0", " ").strip() for t in boxes.all_inner_texts()]
    assert labels == choices, f"{where}: boxes {labels}, expected {choices}"
    listed = ", ".join(c for c in choices if c in answer) or "none of them"
    wrong = [c for c in choices if (c in answer) != (c == choices[-1])]

    def answer_with(chosen, verdict):
        for index, choice in enumerate(choices):
            boxes.nth(index).locator("input").set_checked(choice in chosen)
        quiz.get_by_role("button", name="Check my answer").click()
        feedback = quiz.locator(f".gfl-verdict.gfl-{verdict}")
        try:
            feedback.wait_for(state="visible")
        except Exception:
            shown = quiz.locator(".gfl-verdict").all_inner_texts()
            raise AssertionError(f"{where}: ticking {sorted(chosen)} should be marked "
                                 f"{verdict}; the page says {shown}") from None
        text = feedback.inner_text()
        assert f"{reveal} {listed}." in text, (
            f"{where}: feedback {text!r} does not name {listed!r}")

    answer_with(answer, "right")
    answer_with(wrong, "wrong")
    assert quiz.locator(".gfl-right").count() == 0


def check_page(page, notebook):
    """Widgets on a page that has run: explorers operated, quizzes answered."""
    counts = wait_for_widgets(page, notebook)
    states = sum(check_explorer(page.locator(".gfl-explorer").nth(i))
                 for i in range(counts["Explorer"]))
    for i in range(counts["PredictQuiz"]):
        check_quiz(page.locator(".gfl-quiz").nth(i))
    for i in range(counts["BugLab"]):
        states += check_bug_lab(page.locator(".gfl-bug-lab").nth(i))
    return states


def run_in(lab, ui, path, notebook):
    page = lab.take(ui, path)
    try:
        state = bs.wait_run_all(page)
        assert not state["errors"], f"{notebook.name}: cells raised:\n  " + "\n  ".join(
            state["errors"])
        counts = state["counts"]
        assert counts == list(range(1, len(counts) + 1)), (
            f"{notebook.name}: execution counts {counts}: not every cell ran once, in order")
        assert not bs.visible_errors(page), f"{notebook.name}: error output on the page: " \
            f"{bs.visible_errors(page)}"
        check_page(page, notebook)
        assert not bs.visible_errors(page), f"{notebook.name}: error output after clicking: " \
            f"{bs.visible_errors(page)}"
    finally:
        screenshot(page, f"{ui}-{notebook.stem}")
        bs.shutdown_kernel(page)
        page.close()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_in_jupyterlab(lab, notebook):
    run_in(lab, "lab", notebook.name, notebook)


@pytest.mark.parametrize("notebook", NOTEBOOK7, ids=lambda p: p.stem)
def test_notebook_in_notebook7(lab, notebook):
    run_in(lab, "notebook", f"nb7/{notebook.name}", notebook)


def test_playground_in_voila(browser, tmp_path_factory):
    if not APP:
        pytest.skip("no playground notebook (notebooks/08_*.ipynb) yet")
    notebook = Path(APP) if os.sep in APP else bs.NOTEBOOKS / APP
    home = tmp_path_factory.mktemp("voila")
    copy = home / notebook.name  # Voila runs a copy: the committed notebook stays untouched
    copy.write_bytes(notebook.read_bytes())
    server = bs.start_voila(home, copy)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(bs.WIDGET_TIMEOUT * 1000)
    try:
        page.goto(server.url + "/", wait_until="domcontentloaded", timeout=60000)
        want = bs.stored_widgets(notebook)
        page.wait_for_function(
            "([e, q]) => document.querySelectorAll('.gfl-explorer').length >= e && "
            "document.querySelectorAll('.gfl-quiz').length >= q",
            arg=[want["Explorer"], want["PredictQuiz"]], timeout=bs.RUN_TIMEOUT * 1000)
        assert sum(want.values()), f"{notebook.name} shows no explorer or quiz"
        assert not bs.visible_errors(page), bs.visible_errors(page)
        check_page(page, notebook)
        assert not bs.visible_errors(page), bs.visible_errors(page)
    finally:
        screenshot(page, f"voila-{notebook.stem}")
        page.close()
        server.stop()


def load_slides_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gfl_slides", bs.ROOT / "tools" / "slides.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("notebook", NOTEBOOKS[:1], ids=lambda p: p.stem)
def test_slides_deck_opens_offline(browser, notebook, tmp_path):
    """`make slides`' deck of a notebook, opened from disk with the network blocked."""
    require_tool("npm")
    slides = load_slides_tool()
    vendor = slides.vendor(bs.ROOT / "slides" / "vendor")  # the cache `make slides` fills
    (tmp_path / "vendor").symlink_to(vendor)
    deck = slides.build_deck(notebook, tmp_path)
    types = slides.slide_types(slides.add_slide_metadata(
        bs.nbformat.read(notebook, as_version=4)).cells)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    blocked = []

    def offline(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append((route.request.resource_type, route.request.url))
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(deck.as_uri())
        page.wait_for_selector(".reveal.ready", timeout=30000)
        sections = page.locator(".reveal .slides > section")
        assert sections.count() == types.count("slide"), (
            f"{sections.count()} slides on the page, {types.count('slide')} cells start one")
        first = page.locator(".reveal .slides section.present").first.inner_text()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("t => document.querySelector('.reveal .slides section.present')"
                               ".innerText !== t", arg=first)
        # The explorer's slide shows the widget rendered from the stored widget state.
        explorer_cell = next(i for i, c in enumerate(bs.nbformat.read(notebook, as_version=4)
                                                     .cells) if slides.shows_own_slide_widget(c))
        assert types[explorer_cell] == "slide" and types[explorer_cell + 1] == "slide"
        page.goto(f"{deck.as_uri()}#/{types[:explorer_cell + 1].count('slide') - 1}")
        present = page.locator(".reveal .slides > section.present")
        present.locator(".gfl-explorer .widget-toggle-buttons, .gfl-explorer .widget-dropdown"
                        ).first.wait_for(state="visible", timeout=30000)
        assert present.locator(".gfl-explorer svg").count() == 1, "explorer graph not shown"
        page.wait_for_timeout(1000)  # let the slide transition end before the screenshot
        assert not errors, f"JavaScript errors in the deck: {errors}"
        needed = [url for kind, url in blocked if kind != "image"]
        assert not needed, f"the deck needs the network for {needed}"
    finally:
        bs.OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(bs.OUTPUT / f"slides-{notebook.stem}.png"))
        context.close()
