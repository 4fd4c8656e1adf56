"""Explorers in JupyterLab's Light and Dark themes, and with the keyboard only.

Opens the first notebook that has an explorer in a JupyterLab server of its own, runs it, and:
* in each theme, reads the computed colours of the gradient table's header and cells and of the
  graph panel from the page and checks WCAG AA contrast (4.5:1) against the background the
  learner really sees (the first opaque background up the tree);
* reaches a control with Tab alone, operates it with Space, and checks that the table changes.
Without Chromium the tests skip; under CI=true they fail.
"""

import pytest

import browser_support as bs

THEMES = ["JupyterLab Light", "JupyterLab Dark"]
AA = 4.5

# Runs in the page: contrast of each element's text against its effective background.
CONTRASTS = """(els) => {
  const rgb = s => { const m = s.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : [...m, 1]; };
  const lum = ([r, g, b]) => { const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92
      : Math.pow((c + 0.055) / 1.055, 2.4); }; return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = el => { for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor); if (c[3] > 0.5) return c; }
    return [255, 255, 255, 1]; };
  return els.map(el => { const fg = rgb(getComputedStyle(el).color), bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return {text: el.textContent.trim().slice(0, 30), tag: el.tagName,
            ratio: (a + 0.05) / (b + 0.05)}; });
}"""


def first_notebook_with_explorer():
    for path in bs.notebooks():
        if bs.stored_widgets(path)["Explorer"]:
            return path
    pytest.skip("no notebook with an explorer")


@pytest.fixture(scope="module")
def explorer_page(browser, tmp_path_factory):
    notebook = first_notebook_with_explorer()
    home = tmp_path_factory.mktemp("a11y")
    (home / "root").mkdir()
    (home / "root" / notebook.name).write_bytes(notebook.read_bytes())
    server = bs.start_lab(home)
    page = None
    try:
        url = f"{server.url}/lab/workspaces/a11y/tree/{notebook.name}?reset"
        page = bs.start_notebook(browser, url, notebook.name)
        state = bs.wait_run_all(page)
        assert not state["errors"], state["errors"]
        page.locator(".gfl-explorer table.gfl-table").first.wait_for(state="visible")
        yield page
    finally:
        if page is not None:
            bs.shutdown_kernel(page)
            page.close()
        server.stop()


@pytest.mark.parametrize("theme", THEMES)
def test_table_and_graph_are_legible_in_each_theme(explorer_page, theme):
    page = explorer_page
    page.evaluate("t => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})",
                  theme)
    page.wait_for_function("t => document.body.dataset.jpThemeName === t", arg=theme,
                           timeout=30000)
    page.wait_for_timeout(500)  # the theme's stylesheet applies
    explorer = page.locator(".gfl-explorer").first
    explorer.scroll_into_view_if_needed()
    cells = explorer.locator("table.gfl-table th, table.gfl-table td")
    assert cells.count() > 4
    results = cells.evaluate_all(CONTRASTS)
    graph = explorer.locator(".gfl-graph svg text")
    if graph.count():  # graph labels against the framed panel
        results += graph.evaluate_all(CONTRASTS)[:10]
    bs.OUTPUT.mkdir(parents=True, exist_ok=True)
    explorer.screenshot(path=str(bs.OUTPUT / f"theme-{theme.split()[-1].lower()}.png"))
    low = [r for r in results if r["ratio"] < AA]
    assert not low, f"{theme}: contrast below {AA}:1 for {low}"


def test_controls_work_from_the_keyboard(explorer_page):
    page = explorer_page
    explorer = page.locator(".gfl-explorer").first
    shown = ("() => { const e = document.querySelector('.gfl-explorer'); return "
             "e.querySelector('table.gfl-table').outerHTML + e.querySelector('.gfl-graph')"
             ".outerHTML; }")
    before = page.evaluate(shown)
    explorer.locator("[data-gfl-mechanism]").first.click()  # focus near, not on, a control
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; return !!e && e.tagName === 'BUTTON' && "
            "!!e.closest('.gfl-explorer .widget-toggle-buttons') && "
            "!e.classList.contains('mod-active'); }")
        if focused:
            break
    else:
        raise AssertionError("Tab never reached an unselected explorer choice")
    page.keyboard.press("Space")
    page.wait_for_function(f"before => ({shown})() !== before", arg=before, timeout=30000)
