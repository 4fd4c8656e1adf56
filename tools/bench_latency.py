#!/usr/bin/env python3
"""`make bench` section: explorer latency as the learner sees it, in JupyterLab (issue 14).

Each notebook that shows an explorer (``.gfl-explorer``) is opened in JupyterLab in headless
Chromium (the server and browser of tests/browser_support.py) and run with "Run All"; then every
choice of every control of every explorer is clicked, as a learner clicks it. The latency of a
click is the time, in the page, from the click (or select) event to the last change of the
explorer's table or graph (a ``MutationObserver`` timestamp, not polling). **Cold** = the first
time the explorer shows that state in this kernel (after Run All, nothing cleared: what a learner
meets); **warm** = a state shown before. A choice that changes another control's list (a
pattern's variants) is followed by every choice of that control too.

Where the time goes, per click (page clock; the kernel's clock is the same machine's wall clock,
aligned to within 1 ms):

- browser -> kernel: click event to the kernel starting to handle the widget's ``comm_msg``
  (the kernel's handler is wrapped, after Run All, to record when each call starts and ends);
- kernel: the handler itself (setting the control, rendering, sending the new HTML);
- kernel -> DOM: handler end to the last table/graph mutation (message to the browser, the
  widget manager, parsing the HTML); ``transit`` = the last message's creation in the kernel
  (its header date) to its websocket receipt, ``in page`` = that receipt to the mutation;
- paint: mutation to the first task after the next animation frame (style, layout, paint).

Run alone: ``.venv/bin/python tools/bench_latency.py [NN_name ...] [--windowing=MODE]`` prints
the section (BENCH_QUICK=1: the first notebooks only, no cleared pass).
"""

import ast
import json
import sys
import tempfile
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
for _path in (TOOLS, TOOLS.parent / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_common import (busy_note, latency_summary, load_average, loads,  # noqa: E402
                          markdown_table, percentile, verdict)

TITLE = "Browser latency"
BUDGET_MS = 100.0
QUIET_MS = 250  # a click is settled when table and graph have not changed for this long
SETTLE_TIMEOUT_MS = 15000
STAGES = ("browser -> kernel", "kernel", "kernel -> DOM", "paint")
TEMPERATURES = ("cold", "warm", "cleared")
EXTRA = ("on screen", "kernel busy", "transit", "in page")
WINDOWING = "contentVisibility"  # JupyterLab 4's default notebook windowing mode
QUICK_NOTEBOOKS = 3  # BENCH_QUICK=1: the first three notebooks with an explorer

# Runs in the kernel once, after Run All: time every comm_msg handler call (epoch ms, duration).
KERNEL_HOOK = '''
def _gfl_latency_hook():
    import inspect, time
    kernel = get_ipython().kernel
    if getattr(kernel, "_gfl_latency", None) is not None:
        return
    spans = kernel._gfl_latency = []
    handle = kernel.shell_handlers["comm_msg"]
    if inspect.iscoroutinefunction(handle):
        async def timed(*args, **kwargs):
            wall, start = time.time(), time.perf_counter()
            try:
                return await handle(*args, **kwargs)
            finally:
                spans.append((wall * 1000, (time.perf_counter() - start) * 1000))
    else:
        def timed(*args, **kwargs):
            wall, start = time.time(), time.perf_counter()
            try:
                return handle(*args, **kwargs)
            finally:
                spans.append((wall * 1000, (time.perf_counter() - start) * 1000))
    kernel.shell_handlers["comm_msg"] = timed
_gfl_latency_hook()
del _gfl_latency_hook
'''
# Runs in the kernel before a "cleared" click: empty every functools cache in helpers.
CLEAR_CACHES = '''
def _gfl_clear_caches():
    import sys
    for name, module in list(sys.modules.items()):
        if module is not None and (name == "helpers" or name.startswith("helpers.")):
            for value in list(vars(module).values()):
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()
_gfl_clear_caches()
del _gfl_clear_caches
'''
KERNEL_SPANS = '__import__("json").dumps(get_ipython().kernel._gfl_latency)'

# Runs in the page: execute code silently in the notebook's kernel; the value of ``expr``.
EXECUTE = """async ([code, expr]) => {
  const kernel = window.__gflPanel.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, silent: true, store_history: false,
                                        user_expressions: expr ? {v: expr} : {}});
  const reply = await future.done;
  const content = reply.content;
  if (content.status !== 'ok') throw new Error(content.ename + ': ' + content.evalue);
  if (!expr) return null;
  const value = content.user_expressions.v;
  if (value.status !== 'ok') throw new Error(value.ename + ': ' + value.evalue);
  return value.data['text/plain'];
}"""

# Runs in the page once: window.__gflLat.arm(explorer) before a click, .settle() after it.
OBSERVER = """() => {
  if (window.__gflLat) return;
  const now = () => performance.now();
  const lat = window.__gflLat = {run: null, watched: new WeakSet(), kernel: null};
  const hookKernel = () => {
    const kernel = window.__gflPanel.sessionContext.session.kernel;
    if (lat.kernel === kernel) return;
    lat.kernel = kernel;
    kernel.anyMessage.connect((_, args) => {
      const run = lat.run, msg = args.msg, type = msg.header.msg_type;
      if (!run || run.t0 === null) return;
      if (type === 'comm_msg') (args.direction === 'send' ? run.sends : run.recvs).push(now());
      if (type === 'comm_msg') run.messages.push({t: now(), direction: args.direction, msg});
      else if (type === 'status' && args.direction === 'recv'
               && msg.content.execution_state === 'idle'
               && (msg.parent_header || {}).msg_type === 'comm_msg') run.idle = now();
    });
  };
  // What a mutated node belongs to: the HTML widget holding the graph, the table, or neither.
  const kinds = node => {
    const el = node.nodeType === 1 ? node : node.parentElement;
    const box = el && el.closest('.widget-html');
    if (!box) return [];
    const found = [];
    if (box.querySelector('.gfl-graph')) found.push('graph');
    if (box.querySelector('table.gfl-table')) found.push('table');
    return found;
  };
  const watch = root => {
    lat.watched.add(root);
    new MutationObserver(records => {
      const run = lat.run;
      if (!run || run.root !== root || run.t0 === null) return;
      const t = now();
      const found = new Set();
      for (const record of records) for (const kind of kinds(record.target)) found.add(kind);
      if (!found.size) return;
      const entry = {t, kinds: [...found], raf: null, paint: null};
      run.mutations.push(entry);
      requestAnimationFrame(() => {
        entry.raf = now();
        const channel = new MessageChannel();  // its message runs after this frame's paint
        channel.port1.onmessage = () => { entry.paint = now(); };
        channel.port2.postMessage(null);
      });
    }).observe(root, {childList: true, subtree: true, characterData: true});
    const start = event => {
      const run = lat.run;
      if (!run || run.root !== root || run.t0 !== null) return;
      run.t0 = now();
      run.offset = Date.now() - run.t0;  // page time + offset = epoch milliseconds
      run.event = event.type;
    };
    for (const type of ['click', 'input', 'change']) root.addEventListener(type, start, true);
  };
  lat.arm = root => {
    hookKernel();
    if (!lat.watched.has(root)) watch(root);
    lat.run = {root, t0: null, offset: null, event: null, sends: [], recvs: [], idle: null,
               mutations: [], messages: []};
  };
  lat.settle = async (quiet, timeout) => {
    const run = lat.run, begin = now();
    let settled = false;
    while (now() - begin < timeout) {
      await new Promise(resolve => setTimeout(resolve, 20));
      const t = now(), last = run.mutations[run.mutations.length - 1];
      if (run.t0 === null || run.idle === null || t - run.idle < quiet) continue;
      if (!last) { if (t - run.idle >= 4 * quiet) { settled = true; break; } continue; }
      if (t - last.t >= quiet && run.mutations.every(m => m.paint !== null)) {
        settled = true;
        break;
      }
    }
    const size = selector => {
      const el = run.root.querySelector(selector);
      return el ? el.outerHTML.length : 0;
    };
    const messages = run.messages.map(({t, direction, msg}) => {
      const data = msg.content.data || {};
      return {t, direction, comm: String(msg.content.comm_id).slice(0, 6), method: data.method,
              keys: Object.keys(data.state || {}), chars: JSON.stringify(msg.content).length,
              created: Date.parse(msg.header.date) - run.offset};  // the sender's clock
    });
    return {settled, t0: run.t0, messages, offset: run.offset, event: run.event, sends: run.sends,
            recvs: run.recvs, idle: run.idle, mutations: run.mutations,
            graph_chars: size('.gfl-graph'), table_chars: size('table.gfl-table')};
  };
}"""


# ---------------------------------------------------------------- arithmetic (no browser)


def breakdown(click, spans):
    """Latency and stages (ms) of one settled click: ``click`` as ``OBSERVER``'s settle()
    returns it, ``spans`` the kernel's (start epoch ms, duration ms) handler calls.

    Returns None when neither table nor graph changed. The stages browser -> kernel, kernel
    and kernel -> DOM add up to the latency; paint follows it.
    """
    mutations = click["mutations"]
    if not mutations:
        return None
    t0, last = click["t0"], mutations[-1]
    end = last["t"]
    mine = sorted((start - click["offset"], duration) for start, duration in spans
                  if t0 - 2 <= start - click["offset"] <= end)
    latency = end - t0
    out = {"latency": latency, "paint": last["paint"] - end, "on screen": last["paint"] - t0,
           "changed": sorted({kind for m in mutations for kind in m["kinds"]}),
           "graph_chars": click.get("graph_chars", 0), "table_chars": click.get("table_chars", 0)}
    if mine:
        k0 = mine[0][0]
        k1 = max(start + duration for start, duration in mine)
        out.update({"browser -> kernel": k0 - t0, "kernel": k1 - k0, "kernel -> DOM": end - k1,
                    "kernel busy": sum(duration for _, duration in mine)})
        received = [t for t in click["recvs"] if t <= end]
        if received:
            out["in page"] = end - received[-1]
    arrived = [m for m in click.get("messages", ()) if m["direction"] == "recv" and m["t"] <= end]
    if arrived and arrived[-1].get("created") is not None:
        out["transit"] = arrived[-1]["t"] - arrived[-1]["created"]
        out["message chars"] = arrived[-1]["chars"]
    return out


def summarise(clicks):
    """p50/p95 of the latency and of each stage per temperature (cold, warm, cleared) over
    ``clicks`` (dicts with ``temperature`` and the :func:`breakdown` keys)."""
    summary = {}
    for temperature in TEMPERATURES:
        chosen = [c for c in clicks if c["temperature"] == temperature]
        if not chosen:
            continue
        row = {"latency": latency_summary([c["latency"] for c in chosen])}
        for stage in (*STAGES, *EXTRA):
            values = [c[stage] for c in chosen if stage in c]
            if values:
                row[stage] = latency_summary(values)
        summary[temperature] = row
    return summary


def dominant(summary, temperature):
    """The stage with the largest median among those that make up the latency."""
    row = summary.get(temperature, {})
    medians = {stage: row[stage]["p50"] for stage in STAGES[:3] if stage in row}
    return max(medians, key=medians.get) if medians else None


# ---------------------------------------------------------------- driving the page


def explorer_state(explorer):
    import browser_support as bs

    reader = getattr(bs, "READ_WIDGET", None) or bs.READ_EXPLORER  # renamed in the series
    shown = explorer.evaluate(reader)
    hook = shown["mechanism"] or shown["pattern"] or "?"
    controls = shown["controls"]
    return hook, controls, tuple((name, c["selected"]) for name, c in controls.items())


class Driver:
    """Clicks choices of one notebook's explorers and records each click's timings."""

    def __init__(self, page, notebook):
        self.page, self.notebook, self.seen, self.clicks = page, notebook, set(), []
        self.explorer, self.explored = None, []

    def settle(self, explorer, name, label):
        import browser_support as bs

        explorer.scroll_into_view_if_needed()  # in view, as for a learner who clicks it
        explorer.evaluate("el => window.__gflLat.arm(el)")
        for attempt in range(3):  # a control being redrawn has no label for a moment
            try:
                bs.pick(explorer, name, label)
                break
            except AssertionError:
                if attempt == 2:
                    raise
                time.sleep(0.3)
        click = self.page.evaluate("([q, t]) => window.__gflLat.settle(q, t)",
                                   [QUIET_MS, SETTLE_TIMEOUT_MS])
        if not click["settled"]:
            raise RuntimeError(f"{self.notebook}: {name}={label!r} did not settle within "
                               f"{SETTLE_TIMEOUT_MS} ms: {click}")
        return click

    def visit(self, explorer, name, label, temperature=None):
        """Pick ``label`` in control ``name``; keep the click's raw timings unless
        ``temperature`` is None ("new": cold or warm, by whether the state was seen)."""
        click = self.settle(explorer, name, label)
        hook, controls, state = explorer_state(explorer)
        if temperature == "new":
            temperature = "warm" if (hook, state) in self.seen else "cold"
        if temperature:
            click.update(notebook=self.notebook, explorer=self.explorer, control=name,
                         choice=label,
                         state=[list(pair) for pair in state], temperature=temperature)
            self.clicks.append(click)
        self.seen.add((hook, state))
        return controls

    def restore(self, explorer, start):
        for name, label in start:
            _, controls, _ = explorer_state(explorer)
            if controls[name]["selected"] != label:
                self.visit(explorer, name, label)
        if explorer_state(explorer)[2] != start:
            raise RuntimeError(f"{self.notebook}: could not return the explorer to {start}")

    def replay(self, explorer, path, start, temperature):
        for name, label in path[:-1]:
            self.visit(explorer, name, label)
        if temperature == "cleared":
            self.page.evaluate(EXECUTE, [CLEAR_CACHES, None])
        self.visit(explorer, *path[-1], temperature)
        self.restore(explorer, start)

    def explore(self, explorer, cleared=True):
        """Every choice of every control from the start state (first pass: cold, or warm for a
        state seen before; it records the paths taken), then every path again (warm), then
        (``cleared``) every path with the helpers' caches cleared just before the last click."""
        hook, controls, start = explorer_state(explorer)
        self.explorer = f"#{len(self.explored) + 1} {hook}"  # its hook when first seen
        self.explored.append(self.explorer)
        self.seen.add((hook, start))
        paths = []
        for name, control in controls.items():
            for label in control["labels"]:
                if label == control["selected"]:
                    continue
                after = self.visit(explorer, name, label, "new")
                paths.append([(name, label)])
                for other, changed in after.items():  # a control whose list this one changed
                    if other != name and changed["labels"] != controls[other]["labels"]:
                        for choice in changed["labels"]:
                            if choice != changed["selected"]:
                                self.visit(explorer, other, choice, "new")
                                paths.append([(name, label), (other, choice)])
                self.restore(explorer, start)
        for temperature in ("warm", "cleared") if cleared else ("warm",):
            for path in paths:
                self.replay(explorer, path, start, temperature)
        return len(paths)


def lab_url(server, name):
    workspace = "bench-" + name.replace(".", "-")
    return f"{server.url}/lab/workspaces/{workspace}/tree/{name}?reset"


def measure_notebook(browser, server, path, cleared=True):
    """Run one notebook in JupyterLab, then click through its explorers; raw clicks + spans."""
    import browser_support as bs

    page = bs.start_notebook(browser, lab_url(server, path.name), path.name)
    try:
        errors = bs.wait_run_all(page).get("errors") or []
        want = bs.stored_widgets(path)["Explorer"]
        explorers = page.locator(".gfl-explorer")
        deadline = time.monotonic() + bs.WIDGET_TIMEOUT
        while time.monotonic() < deadline and (
                explorers.count() != want or page.evaluate(bs.RUN_STATE)["status"] != "idle"):
            time.sleep(0.2)  # after an error, Run All stops: the kernel goes idle
        if explorers.count() != want:
            raise RuntimeError(f"{path.name}: {explorers.count()} explorers shown, {want} "
                               f"stored; Run All raised {errors}")
        page.evaluate(EXECUTE, [KERNEL_HOOK, None])
        page.evaluate(OBSERVER)
        driver = Driver(page, path.name)
        for index in range(want):
            driver.explore(explorers.nth(index), cleared)
        spans = json.loads(ast.literal_eval(page.evaluate(EXECUTE, ["", KERNEL_SPANS])))
        return driver.clicks, spans, errors
    finally:
        bs.shutdown_kernel(page)
        page.close()


def explorer_notebooks(names=None):
    import browser_support as bs

    found = [p for p in bs.notebooks() if bs.stored_widgets(p)["Explorer"]]
    if names:
        found = [p for p in found if p.stem in names or p.name in names]
    return found


def learner_settings(home, windowing):
    """JupyterLab's notebook windowing as a learner has it (the browser tests attach every
    cell instead); read by the page when it loads, so this may follow the server's start."""
    tracker = (home / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
               / "tracker.jupyterlab-settings")
    tracker.write_text(json.dumps({"windowingMode": windowing}))


def measure(quick=False, names=None, windowing=WINDOWING):
    """Click every choice of every explorer (``names``: only those notebooks); raw results."""
    import browser_support as bs
    from playwright.sync_api import sync_playwright

    paths = explorer_notebooks(names)
    if quick and not names:
        paths = paths[:QUICK_NOTEBOOKS]
    data = {"load": [load_average()], "notebooks": [p.name for p in paths], "clicks": [],
            "quiet_ms": QUIET_MS, "quick": bool(quick), "errors": [], "windowing": windowing}
    with tempfile.TemporaryDirectory(prefix="gfl-latency-") as tmp:
        home = Path(tmp)
        bs.copy_notebooks(home / "root")
        server = bs.start_lab(home)
        learner_settings(home, windowing)
        try:
            with sync_playwright() as playwright:
                browser = bs.launch_chromium(playwright)
                try:
                    for path in paths:
                        try:
                            clicks, spans, errors = measure_notebook(browser, server, path,
                                                                     not quick)
                        except Exception as error:  # noqa: BLE001 - reported, others go on
                            data["errors"].append(f"{path.name}: not measured: {error}")
                            continue
                        data["errors"] += [f"{path.name}: {error}" for error in errors]
                        for click in clicks:  # raw page timings -> stages
                            parts = breakdown(click, spans)
                            if parts is None:
                                parts = {"latency": None, "changed": []}
                            data["clicks"].append({
                                **{k: click[k] for k in ("notebook", "explorer", "control",
                                                         "choice", "temperature", "event")},
                                **parts})
                        data["load"].append(load_average())
                finally:
                    browser.close()
        finally:
            server.stop()
    return data


# ---------------------------------------------------------------- Markdown


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def pair(values):
    """p50 and p95 of ``values``, formatted; dashes for none."""
    if not values:
        return ["-", "-"]
    return [fmt(percentile(values, 50)), fmt(percentile(values, 95))]


def render(data, results=None):
    """(Markdown lines, budgets, notes) of the section, from :func:`measure`'s data."""
    clicks = [c for c in data["clicks"] if c.get("latency") is not None]
    unchanged = len(data["clicks"]) - len(clicks)
    summary = summarise(clicks)
    shown = [t for t in TEMPERATURES if t in summary]
    lines = [
        "In JupyterLab in headless Chromium, each notebook with an explorer is run (Run All), "
        "then every choice of every explorer control is clicked as a learner clicks it. "
        "Latency: from the click (or select) event to the last change of the explorer's table "
        "or graph, timed in the page by a `MutationObserver`. **Cold**: the first time the "
        "explorer shows that state in the notebook's kernel (nothing cleared after Run All, so "
        "a state the notebook's own cells computed may be partly cached, as for a learner); "
        "**warm**: a state shown before; **cleared**: every `functools` cache in `helpers` "
        "emptied just before the click (the worst case: the plain step beside it is "
        f"recomputed too). Milliseconds; {len(data['notebooks'])} notebooks, load average "
        f"{loads(*data['load'][:1])} at the start and {loads(*data['load'][-1:])} at the end; "
        f"JupyterLab's notebook windowing mode: {data.get('windowing', WINDOWING)}"
        + (" (its default)." if data.get("windowing", WINDOWING) == WINDOWING else ".")
        + (" Quick run: only some notebooks, no cleared pass." if data.get("quick") else ""),
        "",
    ]
    groups = {}
    for c in clicks:
        groups.setdefault((c["notebook"], c["explorer"]), []).append(c)
    rows = []
    for (notebook, hook), group in [*groups.items(), (("**all**", None), clicks)]:
        row = [notebook if hook is None else f"{notebook} ({hook})",
               len({(c["notebook"], c["control"], c["choice"]) for c in group})]
        for temperature in shown:
            row += pair([c["latency"] for c in group if c["temperature"] == temperature])
        rows.append(row)
    headers = [f"{t} {q}" for t in shown for q in ("p50", "p95")]
    lines += [markdown_table(["notebook (explorer)", "choices", *headers], rows), ""]
    lines += ["Where the time goes: p50 and p95 of each stage over the clicks (the first three "
              "add up to the latency; paint follows it):", ""]
    stage_rows = [[stage, *[cell for t in shown for cell in pair(
        [c[stage] for c in clicks if c["temperature"] == t and stage in c])]]
        for stage in (*STAGES, *EXTRA)]
    lines += [markdown_table(["stage", *headers], stage_rows), ""]
    lines.append("- Stages: *browser -> kernel* = click event to the kernel's `comm_msg` handler "
                 "starting; *kernel* = first handler start to last handler end (set the "
                 "control, render, send the new HTML); *kernel -> DOM* = handler end to the "
                 "mutation (message to the page, widget manager, HTML parse); *paint* = "
                 "mutation to the first task after the next animation frame. *on screen* = "
                 "click to that paint, what the learner waits for; *kernel busy* = the handler "
                 "calls' total; *transit* = the last message's creation in the kernel (its header "
                 "date) to its websocket receipt in the page; *in page* = that receipt to the "
                 "mutation.")
    largest = [f"{t} {dominant(summary, t)}" for t in shown if dominant(summary, t)]
    if largest:
        lines.append("- Largest stage of the latency (by median): " + ", ".join(largest) + ".")
    sizes = [c["graph_chars"] for c in clicks if c.get("graph_chars")]
    if sizes:
        lines.append(f"- Graph HTML per state: median {percentile(sizes, 50) / 1000:.1f} kB "
                     f"(max {max(sizes) / 1000:.1f} kB).")
    worst = sorted(clicks, key=lambda c: c["latency"], reverse=True)[:5]
    if worst:
        lines.append("- Slowest clicks: " + "; ".join(
            f"{c['notebook']} {c['control']}={c['choice']} ({c['temperature']}) "
            f"{fmt(c['latency'])}" for c in worst) + ".")
    if unchanged:
        lines.append(f"- {unchanged} clicks changed neither table nor graph (not counted).")
    if data.get("errors"):
        lines.append("- Problems (a notebook's Run All raised after its explorers were "
                     "shown, or it could not be measured): " + "; ".join(data["errors"]) + ".")
    budgets, notes = [], []
    for temperature in ("cold", "warm"):
        stats = summary.get(temperature, {}).get("latency")
        if stats is None:
            continue
        ok = stats["p95"] <= BUDGET_MS
        budgets.append((f"Browser latency p95, {temperature}", f"<= {BUDGET_MS:.0f} ms",
                        f"{fmt(stats['p95'])} ms", ok))
        lines.append(f"- {temperature.capitalize()} p95 {fmt(stats['p95'])} ms against a budget "
                     f"of {BUDGET_MS:.0f} ms: {verdict(ok)}.")
        if not ok:
            notes.append(f"Browser latency p95 ({temperature}) is {fmt(stats['p95'])} ms, over "
                         f"{BUDGET_MS:.0f} ms; its largest stage is "
                         f"{dominant(summary, temperature)}."
                         + (busy_note(results) if results and "machine" in results else ""))
    return lines, budgets, notes


def failure(data):
    """Why this run must not be written: no click was measured."""
    if not any(c.get("latency") is not None for c in data["clicks"]):
        return "no click changed an explorer's table or graph in the browser"
    return None


def main(argv):
    import os

    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    windowing = [a.split("=", 1)[1] for a in argv if a.startswith("--windowing=")]
    names = [a for a in argv if not a.startswith("--")]
    data = measure(quick=quick, names=names or None, windowing=(windowing or [WINDOWING])[-1])
    out = Path(__file__).resolve().parent.parent / "build" / "bench" / "latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    lines, budgets, notes = render(data)
    print(f"## {TITLE}\n")
    print("\n".join(lines))
    if notes:
        print("\n" + "\n".join(notes))
    print(f"\n(raw results: {out})", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
