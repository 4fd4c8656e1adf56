"""Fixtures' machinery for tests/test_browser.py: Jupyter servers, Chromium, page checks.

One JupyterLab server (it also serves Notebook 7 at /notebooks/) and one Chromium for the whole
session. The server's root is a temporary copy of notebooks/*.ipynb, so JupyterLab's autosave
can never touch the committed notebooks. Chromium is Debian's (/usr/bin/chromium), driven by
Playwright without any browser download.

Expectations never come from the page: they come from the registry (``helpers.registry.run``;
for notebook 09, ``helpers.patterns.run_pattern``), turned into what the table and the graph
must show by plain PyTorch (walking the loss's ``grad_fn`` graph), and compared with what the
page shows.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat

from helpers.registry import get_mechanism

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LEARNER_CONFIG = ROOT / "binder" / "jupyter"  # the server config of `make lab` and Binder
OUTPUT = ROOT / "test-output" / "browser"  # git-ignored: screenshots to look at after a failure
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows", "--disable-dev-shm-usage"]
VIEW = "application/vnd.jupyter.widget-view+json"
STDERR_MIME = "application/vnd.jupyter.stderr"
RUN_TIMEOUT = 240  # seconds for one notebook's "Run All" in the browser
WIDGET_TIMEOUT = 30  # seconds for one widget round trip (click -> kernel -> redraw)


def notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def stored_widgets(path):
    """How many explorers, quizzes and bug labs the committed notebook displays (from its
    outputs)."""
    counts = {"Explorer": 0, "PredictQuiz": 0, "BugLab": 0}
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if VIEW in data:  # Explorer, PatternExplorer, PredictQuiz, PatternQuiz, BugLab
                kind = data.get("text/plain", "").split("(", 1)[0]
                if kind.endswith("Explorer"):
                    counts["Explorer"] += 1
                elif kind.endswith("Quiz"):
                    counts["PredictQuiz"] += 1
                elif kind == "BugLab":
                    counts["BugLab"] += 1
    return counts


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, process, timeout=90):
    """Wait for a 200 from ``url`` (or, for a URL ending in "/", for the port to listen)."""
    deadline = time.monotonic() + timeout
    port = int(url.split(":")[2].split("/")[0])
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if url.endswith("/"):  # Voila runs the notebook on GET /: only check it listens
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} within {timeout}s")


def isolated_env(home):
    """Environment for a server: no user config, runtime or IPython profile leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "run"),
               IPYTHONDIR=str(home / "ipython"), JUPYTER_PLATFORM_DIRS="1",
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    # Attach every cell to the DOM (no virtual scrolling): the test reads the whole notebook.
    settings = (home / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
                / "tracker.jupyterlab-settings")
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"windowingMode": "none"}))
    news = (home / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
            / "notification.jupyterlab-settings")
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return env


def root_flag():
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


class Server:
    """A Jupyter process on 127.0.0.1, a free port, no token; stopped with ``stop()``."""

    def __init__(self, cmd, port, home, log_name, ready_path, env=None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(home / log_name, "w")
        self.process = subprocess.Popen(cmd, cwd=home, env={**isolated_env(home), **(env or {})},
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_http(self.url + ready_path, self.process)
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_lab(home):
    """JupyterLab (and Notebook 7 on the same server) over ``home/root``, with the server
    config learners get from `make lab` and Binder (binder/jupyter/)."""
    port = free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.token=",
           "--ServerApp.password=", f"--ServerApp.root_dir={home / 'root'}",
           "--LabApp.expose_app_in_browser=True",
           "--JupyterNotebookApp.expose_app_in_browser=True",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.workspaces_dir={home / 'workspaces'}", *root_flag()]
    return Server(cmd, port, home, "jupyterlab.log", "/api/status",
                  env={"JUPYTER_CONFIG_PATH": str(LEARNER_CONFIG)})


def voila_command(notebook, port):
    """The command `make app` runs (the Makefile's app target uses the same options)."""
    return [sys.executable, "-m", "voila", str(notebook), "--no-browser", "--Voila.ip=127.0.0.1",
            f"--port={port}", "--Voila.port_retries=0"]


def start_voila(home, notebook):
    port = free_port()
    return Server(voila_command(notebook, port), port, home, "voila.log", "/")


def copy_notebooks(root):
    root.mkdir(parents=True)
    for path in notebooks():
        shutil.copy2(path, root / path.name)


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_ARGS)


# ----------------------------------------------------------------- driving a notebook page

# Runs in the page: find the notebook panel, wait for its kernel, clear and run every cell.
# Not awaited by the test, so the next notebook can run while the current one is checked.
START_RUN_ALL = """async (path) => {
  const state = window.__gfl = {phase: 'loading', error: null};
  try {
    const deadline = Date.now() + 120000;
    const sleep = ms => new Promise(r => setTimeout(r, ms));
    let panel = null;
    while (!panel) {
      if (Date.now() > deadline) throw new Error('no notebook panel for ' + path);
      const app = window.jupyterapp;
      if (app && app.shell) {
        const widgets = [...(app.shell.widgets ? app.shell.widgets('main') : [])];
        if (app.shell.currentWidget) widgets.push(app.shell.currentWidget);
        panel = widgets.find(w => w && w.context && w.content && w.sessionContext
                             && w.context.path.endsWith(path)) || null;
      }
      if (!panel) await sleep(100);
    }
    window.__gflPanel = panel;
    await panel.context.ready;
    await panel.sessionContext.ready;
    while (!panel.sessionContext.session || !panel.sessionContext.session.kernel
           || panel.sessionContext.session.kernel.status !== 'idle') {
      if (Date.now() > deadline) throw new Error('kernel not idle');
      await sleep(100);
    }
    window.jupyterapp.shell.activateById(panel.id);
    state.phase = 'running';
    await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
    await window.jupyterapp.commands.execute('notebook:run-all-cells');
    state.phase = 'ran';
  } catch (e) { state.error = String(e); state.phase = 'failed'; }
}"""

# The model's view of the run: execution counts, error outputs, kernel status.
RUN_STATE = """() => {
  const state = window.__gfl || {phase: 'none'};
  const panel = window.__gflPanel;
  if (!panel) return {phase: state.phase, error: state.error};
  const cells = [...panel.content.model.cells];
  const code = cells.filter(c => c.type === 'code');
  const errors = [];
  code.forEach((c, i) => {
    for (let k = 0; k < c.outputs.length; k++) {
      const o = c.outputs.get(k);
      if (o.type === 'error') errors.push(`code cell ${i}: ${o.toJSON().ename}: ${o.toJSON().evalue}`);
    }
  });
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {phase: state.phase, error: state.error, counts: code.map(c => c.executionCount),
          errors, status: kernel ? kernel.status : 'none'};
}"""


def start_notebook(browser, url, path):
    """Open ``url`` in a new page and start "Run All" there; returns the page at once."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WIDGET_TIMEOUT * 1000)
    page.goto(url, wait_until="domcontentloaded", timeout=60000)
    page.evaluate(f"() => {{ ({START_RUN_ALL})({json.dumps(path)}); }}")
    return page


def wait_run_all(page, timeout=RUN_TIMEOUT):
    """Wait until every code cell has run and the kernel is idle (or a cell raised)."""
    deadline = time.monotonic() + timeout
    state = {}
    while time.monotonic() < deadline:
        state = page.evaluate(RUN_STATE)
        if state.get("phase") == "failed":
            raise AssertionError(f"could not run the notebook: {state.get('error')}")
        if state.get("errors"):
            return state
        counts = state.get("counts") or []
        if (state.get("phase") == "ran" and counts and all(c is not None for c in counts)
                and state.get("status") == "idle"):
            return state
        time.sleep(0.25)
    raise AssertionError(f"Run All did not finish within {timeout}s: {state}")


def shutdown_kernel(page):
    try:
        page.evaluate("async () => { if (window.__gflPanel) "
                      "await window.__gflPanel.sessionContext.shutdown(); }")
    except Exception:  # the page may already be gone; the server stops at session end anyway
        pass


def visible_errors(page):
    """Error and stderr outputs as the page renders them."""
    return page.eval_on_selector_all(
        f'[data-mime-type="{STDERR_MIME}"], .jp-RenderedText[data-mime-type="{STDERR_MIME}"]',
        "els => els.map(e => e.innerText.slice(0, 500))")


# ----------------------------------------------------------------- reading widgets on the page

# One reader for every widget of the series (Explorer, PatternExplorer, BugLab): what it
# names (data-gfl-* hooks), its controls, its table, its graph and, for the bug lab, its code.
READ_WIDGET = """(el) => {
  const text = e => e.textContent.replace(/\u00a0/g, ' ').trim();
  const hook = (key, name) => { const e = el.querySelector(`[data-gfl-${key}]`);
                                return e ? e.dataset[name] : null; };
  const pattern = el.querySelector('[data-gfl-pattern]');  // 09's pattern explorer
  const table = el.querySelector('table.gfl-table');
  const code = el.querySelector('details pre');  // 11's bug lab: the bug's code
  const out = {mechanism: hook('mechanism', 'gflMechanism'), bug: hook('bug', 'gflBug'),
               pattern: pattern ? pattern.dataset.gflPattern : null,
               variant: pattern ? pattern.dataset.gflVariant : null,
               summary: pattern ? text(pattern) : null, code: code ? code.textContent : null,
               caption: null, columns: [], rows: [],
               notes: [...el.querySelectorAll('.gfl-error')].map(text),
               clusters: {}, nodes: {}, legend: [], controls: {}};
  if (table) {
    const caption = table.querySelector('caption');
    out.caption = caption ? text(caption) : null;
    out.columns = [...table.querySelectorAll('thead th')].map(text);
    out.rows = [...table.querySelectorAll('tbody tr')].map(
      tr => [...tr.querySelectorAll('td')].map(td => [text(td), td.className]));
  }
  const svg = el.querySelector('.gfl-graph svg');
  if (svg) {
    for (const g of svg.querySelectorAll('g.cluster')) {
      const id = g.querySelector('title').textContent.replace('cluster_', 'g');
      out.clusters[id] = [...g.querySelectorAll('text')].map(t => t.textContent).join(' ');
    }
    for (const g of svg.querySelectorAll('g.node')) {
      const title = g.querySelector('title').textContent;
      if (title.includes('_legend_')) {  // the doctor's legend of causes
        out.legend.push(title.split('_legend_')[1]);
        continue;
      }
      const [cluster, name] = title.split('_');
      (out.nodes[cluster] = out.nodes[cluster] || []).push(
        [...g.querySelectorAll('text')].map(t => t.textContent).join('\\n'));
    }
  }
  for (const w of el.querySelectorAll('.widget-toggle-buttons, .widget-dropdown')) {
    const label = w.querySelector('.widget-label');
    const name = label ? label.textContent.trim() : '';
    if (w.classList.contains('widget-dropdown')) {
      const s = w.querySelector('select');
      out.controls[name] = {kind: 'dropdown', labels: [...s.options].map(text),
                            selected: s.selectedIndex >= 0 ? text(s.options[s.selectedIndex]) : null};
    } else {
      const buttons = [...w.querySelectorAll('button')];
      out.controls[name] = {kind: 'toggle', labels: buttons.map(text),
                            selected: buttons.filter(b => b.classList.contains('mod-active')).map(text)[0] || null};
    }
  }
  return out;
}"""


def agreement(widget, problems_of, timeout=WIDGET_TIMEOUT):
    """Read ``widget`` (READ_WIDGET) until ``problems_of(shown)`` finds nothing, or until
    ``timeout`` seconds have passed (a redraw takes a kernel round trip); the last problems."""
    deadline = time.monotonic() + timeout
    while True:
        problems = problems_of(widget.evaluate(READ_WIDGET))
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.1)


def set_control(explorer, option, value):
    """Operate ``option``'s control as a learner would: click the button or pick the entry."""
    pick(explorer, option.name, str(option.choices[value]))


def pick(explorer, name, label):
    """In the explorer's control labelled ``name``, click the button or pick the entry ``label``."""
    control = explorer.locator(".widget-toggle-buttons, .widget-dropdown").filter(
        has=explorer.page.locator(".widget-label", has_text=name))
    # `has_text` matches substrings; keep the control whose label is exactly ``name``.
    for index in range(control.count()):
        candidate = control.nth(index)
        if candidate.locator(".widget-label").first.inner_text().strip() == name:
            control = candidate
            break
    else:
        raise AssertionError(f"no control labelled {name!r} in the explorer")
    if control.locator("select").count():
        control.locator("select").select_option(label=label)
    else:
        buttons = control.locator("button")
        texts = [t.replace("\xa0", " ").strip() for t in buttons.all_inner_texts()]
        assert label in texts, f"{name}: no button {label!r} among {texts}"
        buttons.nth(texts.index(label)).click()


# ----------------------------------------------------------------- what the page must show


def walk_graph(loss):
    """Every autograd node reachable from ``loss`` once, by plain PyTorch."""
    seen, order, stack = set(), [], [loss.grad_fn] if loss.grad_fn is not None else []
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        order.append(fn)
        stack += [next_fn for next_fn, _ in fn.next_functions if next_fn is not None]
    return order


def shape_text(tensor):
    return "(" + ", ".join(str(s) for s in tensor.shape) + ")"


def expected_graph_labels(outcome):
    """The node labels the outcome's graph must hold, from its loss, its grad states and the
    layer calls its step's forward hooks saw."""
    return graph_labels(outcome.loss, outcome.tensors,
                        {name: p.grad for name, p in outcome.params.items()}, outcome.error,
                        outcome.recorded)


CUT_NOTE = "\n(recorded, cut off from the loss)"


def graph_labels(loss, tensors, grads, error, calls=()):
    """The node labels of ``loss``'s graph with parameters ``tensors`` (name -> tensor) whose
    grad states are ``grads`` (name -> "None"/"zeros"/"values"), walked by plain PyTorch.

    ``calls`` are the layer calls of the step (``Outcome.recorded``): each recorded call names
    its output's node by layer ("L1 AddmmBackward0"); a recorded output the loss does not reach,
    and that no backward ran through, is drawn too, noted as cut off; a layer none of whose
    calls recorded anything gets a note saying why. A parameter without an ``AccumulateGrad``
    node in the loss's graph is "not in graph"; one that does not require grad, "frozen"."""
    layer_of = {id(c.node): c.layer for c in calls if c.node is not None}
    by_id = {id(t): name for name, t in tensors.items()}
    labels, drawn = [], set()

    def param_label(name, tensor, in_graph):
        text = f"{name} {shape_text(tensor)}\ngrad: {grads[name]}"
        text += "" if tensor.requires_grad else "\nfrozen: requires_grad=False"
        return text + ("" if in_graph else "\n(not in graph)")

    def add(nodes, cut):
        for fn in nodes:
            layer = layer_of.get(id(fn))
            text = f"{layer} {type(fn).__name__}" if layer else type(fn).__name__
            labels.append(text + (CUT_NOTE if cut and layer else ""))
            variable = getattr(fn, "variable", None)
            if variable is None:
                continue
            name = by_id.get(id(variable))
            if name is None:
                labels.append(f"leaf tensor {shape_text(variable)}")
            else:
                drawn.add(name)
                labels.append(param_label(name, variable, not cut))

    if loss is None:
        kind = error.kind if error else "no loss"
        labels.append(f"no loss was computed\n({kind})")
        in_loss = []
    else:
        labels.append(f"loss {shape_text(loss)}")
        in_loss = walk_graph(loss)
        add(in_loss, cut=False)
    seen = {id(fn) for fn in in_loss}
    for call in calls:
        if call.node is None or call.backward_ran or id(call.node) in seen:
            continue
        cut_off = [fn for fn in walk_graph(call.output) if id(fn) not in seen]
        seen.update(id(fn) for fn in cut_off)
        add(cut_off, cut=True)
    for name, tensor in tensors.items():
        if name not in drawn:
            labels.append(param_label(name, tensor, False))
    by_layer = {}
    for call in calls:
        by_layer.setdefault(call.layer, []).append(call)
    for layer, layer_calls in by_layer.items():
        if all(c.node is None for c in layer_calls):
            why = "; ".join(dict.fromkeys(c.why_not for c in layer_calls))
            labels.append(f"{layer} ran, recorded nothing:\n{why}")
    return sorted(labels)


def expected_title(outcome):
    """The graph's title: the step in words, as its mechanism's caption says it."""
    return get_mechanism(outcome.mechanism).describe(**outcome.options)


def expected_rows(outcome):
    """Each parameter's row as {column: text}: the registry's outcome, formatted."""
    rows = {}
    for name, p in outcome.params.items():
        row = {"parameter": name, "requires_grad": str(p.requires_grad), "grad": p.grad,
               "grad norm": "-" if p.grad_norm is None else f"{p.grad_norm:.4f}",
               "changed by step": "yes" if p.changed else "no"}
        row.update({column: str(text) for column, text in p.extra.items()})
        rows[name] = row
    return rows


def rows_by_parameter(shown):
    """The page's table as {first cell: {column: (text, css class)}}, in page order."""
    rows = {}
    for cells in shown["rows"]:
        texts = [text for text, _ in cells]
        rows[texts[0] if texts else "?"] = dict(zip(shown["columns"], cells))
    return rows


def row_mismatches(rows, want_rows, source):
    """Cells (and None highlights) that differ from ``want_rows``; ``source`` names the truth."""
    problems = []
    for name, want in want_rows.items():
        got = rows.get(name)
        if got is None:
            problems.append(f"table: no row for {name}")
            continue
        for column, text in want.items():
            cell = got.get(column)
            if cell is None or cell[0] != text:
                problems.append(f"table {name}/{column}: page {cell and cell[0]!r}, "
                                f"{source} {text!r}")
        none_marked = "gfl-none" in (got.get("grad") or ("", ""))[1]
        if none_marked != (want["grad"] == "None"):
            problems.append(f"table {name}/grad: None highlight is {none_marked}")
    return problems


def explorer_mismatches(shown, outcome, baseline):
    """What the page shows that differs from ``outcome`` (empty list: all agree)."""
    problems = row_mismatches(rows_by_parameter(shown), expected_rows(outcome), "registry")
    if outcome.error and not any(outcome.error.kind in note for note in shown["notes"]):
        problems.append(f"table: no note about {outcome.error.kind}")
    if not outcome.error and shown["notes"]:
        problems.append(f"table: unexpected notes {shown['notes']}")
    # The graph: the plain step (g0, left) beside this outcome (g1, right); the plain step
    # itself is drawn alone.
    alone = (outcome.mechanism, outcome.options) == (baseline.mechanism, baseline.options)
    expected = [("g0", outcome)] if alone else [("g0", baseline), ("g1", outcome)]
    for cluster, want in expected:
        title = shown["clusters"].get(cluster)
        if title != expected_title(want):
            problems.append(f"graph {cluster} title: page {title!r}, "
                            f"registry {expected_title(want)!r}")
        got_labels = sorted(shown["nodes"].get(cluster, []))
        want_labels = expected_graph_labels(want)
        if got_labels != want_labels:
            problems.append(f"graph {cluster} nodes differ:\n  page     {got_labels}\n"
                            f"  registry {want_labels}")
    if sorted(shown["clusters"]) != [cluster for cluster, _ in expected]:
        problems.append(f"graph: clusters {sorted(shown['clusters'])}, expected "
                        f"{[cluster for cluster, _ in expected]}")
    return problems


def grads_none(outcome):
    return [name for name, p in outcome.params.items() if p.grad == "None"]


# ----------------------------------------------------------------- 09's patterns (helpers.patterns)


def pattern_variants(item):
    """(variant, dropdown label) pairs of a pattern: "correct" first, then each mistake."""
    return [("correct", "correct")] + [(key, f"mistake: {label}")
                                       for key, label in item.mistakes.items()]


def expected_pattern_rows(result):
    """Each parameter's row as {column: text}, from the PatternResult's own fields."""
    reach = f"in graph of {result.guarded}"
    rows = {}
    for name in result.params:
        rule = ("must be reached" if name in result.must_reach
                else "must NOT be reached" if name in result.must_not_reach else "")
        rows[name] = {"parameter": name, "rule": rule,
                      reach: "yes" if name in result.reached else "no",
                      "grad": result.grads[name],
                      "changed by step": "yes" if result.changed[name] else "no"}
    return rows


def pattern_mismatches(shown, result, item):
    """What the page's PatternExplorer shows that differs from ``result`` (a PatternResult of
    pattern ``item``); empty list: all agree."""
    variant = "correct" if result.mistake is None else result.mistake
    label = "correct" if result.mistake is None else item.mistakes[result.mistake]
    problems = []
    if (shown["pattern"], shown["variant"]) != (item.name, variant):
        return [f"page shows {shown['pattern']}/{shown['variant']}, "
                f"expected {item.name}/{variant}"]
    summary = shown["summary"] or ""
    for part in (item.title, item.summary, label):
        if part not in summary:
            problems.append(f"summary does not say {part!r}: {summary!r}")
    ok = (result.must_reach <= result.reached and not result.reached & result.must_not_reach
          and result.error is None and all(result.checks.values()))
    verdict = f"{label}: gradients flow as intended" if ok else f"{label}: broken: "
    if verdict not in summary:
        problems.append(f"summary verdict: expected {verdict!r} in {summary!r}")
    if shown["caption"] != f"{item.title}: {label}":
        problems.append(f"table caption {shown['caption']!r}")
    want_rows = expected_pattern_rows(result)
    columns = list(next(iter(want_rows.values())))
    if shown["columns"] != columns:
        problems.append(f"table columns: page {shown['columns']}, expected {columns}")
    rows = rows_by_parameter(shown)
    if list(rows) != list(want_rows):
        problems.append(f"table rows: page {list(rows)}, expected {list(want_rows)}")
    problems += row_mismatches(rows, want_rows, "pattern")
    # The notes under the table: one per problem, naming what leaked, missed or failed.
    notes = shown["notes"]
    leaked = [n for n in result.params if n in result.reached & result.must_not_reach]
    missed = [n for n in result.params if n in result.must_reach - result.reached]
    failed = [text for text, passed in result.checks.items() if not passed]
    wanted = [f"PyTorch raised {result.error.kind}: "] if result.error else []
    wanted += [f"{result.guarded} reaches what it must not: {', '.join(leaked)}"] if leaked else []
    wanted += [f"{result.guarded} does not reach: {', '.join(missed)}"] if missed else []
    wanted += [f"check failed: {text}" for text in failed]
    if len(notes) != len(wanted) or not all(note.startswith(want)
                                            for note, want in zip(notes, wanted)):
        problems.append(f"table notes: page {notes}, expected notes starting {wanted}")
    # The graph: one cluster, the drawn loss of this variant.
    title = f"{item.title}, {'correct' if result.mistake is None else 'mistake: ' + label}"
    if sorted(shown["clusters"]) != ["g0"] or shown["clusters"].get("g0") != title:
        problems.append(f"graph clusters {shown['clusters']}, expected g0 titled {title!r}")
    got_labels = sorted(shown["nodes"].get("g0", []))
    want_labels = graph_labels(result.loss, result.params, result.grads, result.error)
    if got_labels != want_labels:
        problems.append(f"graph nodes differ:\n  page    {got_labels}\n  pattern {want_labels}")
    return problems


def pattern_answer(result):
    """The modules (in the quiz's order) whose parameters the guarded tensor reaches."""
    roles = list(dict.fromkeys(name.split(".", 1)[0] for name in result.params))
    return roles, [role for role in roles if any(n.split(".", 1)[0] == role
                                                 for n in result.reached)]


# ----------------------------------------------------------------- 11's bug lab (helpers.bug_lab)

def bug_lab_mismatches(shown, name, diagnosis, source):
    """What the page's BugLab shows that differs from bug ``name``'s ``diagnosis`` (the doctor's,
    computed in the test process) and its code ``source``; empty list: all agree."""
    if shown["bug"] != name:
        return [f"page shows bug {shown['bug']!r}, expected {name!r}"]
    problems = []
    if shown["code"] is None or shown["code"].strip() != source.strip():
        problems.append(f"code: page {shown['code']!r}, expected {source!r}")
    if shown["caption"] != diagnosis.headline():
        problems.append(f"table caption: page {shown['caption']!r}, "
                        f"doctor {diagnosis.headline()!r}")
    rows = rows_by_parameter(shown)
    if list(rows) != list(diagnosis.causes):
        problems.append(f"table rows: page {list(rows)}, doctor {list(diagnosis.causes)}")
    for pname, cause in diagnosis.causes.items():
        cell = rows.get(pname, {}).get("cause")
        if cell is None or cell[0] != cause:
            problems.append(f"table {pname}/cause: page {cell and cell[0]!r}, doctor {cause!r}")
    notes = (diagnosis.error.splitlines() if diagnosis.error else []) + list(diagnosis.notes)
    notes = [" ".join(note.split()) for note in notes]
    if [" ".join(note.split()) for note in shown["notes"]] != notes:
        problems.append(f"table notes: page {shown['notes']}, doctor {notes}")
    if sorted(shown["legend"]) != sorted(set(diagnosis.causes.values())):
        problems.append(f"graph legend: page {sorted(shown['legend'])}, doctor's causes "
                        f"{sorted(set(diagnosis.causes.values()))}")
    return problems
