"""Autograd graphs drawn with torchviz, relabelled so the same step gives the same SVG.

torchviz names each node by Python ``id()``, which changes every run. Here the nodes are renamed
in the order torchviz first meets them (a fixed walk from the loss), and the parameters are
styled by what happened to their ``.grad``: a parameter whose grad is ``None`` is grey and
dashed; one without an ``AccumulateGrad`` node in the loss's graph is marked "not in graph"
(and "frozen" when it does not require grad). The toy net's layers name their nodes ("L1
AddmmBackward0"), and what a layer recorded that the loss cannot reach is drawn dotted grey
(:mod:`helpers.graph_reach`). Titles are the mechanisms' descriptions in words.
"""

import html
import re
import shutil
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

from . import dot_process
from .graph_reach import CUT_NOTE, Reach

INSTALL_HINT = (
    "Graphviz's `dot` program was not found, so graphs are shown as text outlines. "
    "Install it with: apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
    "conda install -c conda-forge graphviz (conda), or winget install graphviz (Windows)."
)

_STATEMENT = re.compile(r"^\t(\d+)(?: -> (\d+))?(?: \[(.*)\])?\s*$", re.DOTALL)
_LABEL = re.compile(r'label=("(?:[^"\\]|\\.)*"|\S+)')
_FILL = re.compile(r"fillcolor=(\S+)")

STYLE_GRAD = 'fillcolor="#cfe8ff" color="#1f5f99"'
STYLE_NONE = 'fillcolor="#eeeeee" color="#888888" fontcolor="#555555" style="filled,dashed"'
STYLE_LOSS = 'fillcolor="#d9f2c7"'
STYLE_NOTE = 'shape=note fillcolor="#fff3cd"'
STYLE_OP = 'fillcolor="#e8e8e8"'
# Recorded by the forward pass, but the loss cannot reach it: dotted, greyed (edges too).
STYLE_CUT = 'fillcolor="#f7f7f7" color="#808080" fontcolor="#555555" style="filled,dotted"'
EDGE_CUT = '[style=dotted color="#808080"]'


def import_torchviz():
    """Import torchviz, explaining the Python 3.12 ``distutils`` failure if it happens."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import torchviz
    except ImportError as exc:
        if "distutils" in str(exc):
            raise ImportError(
                "torchviz 0.0.3 imports distutils, which Python 3.12 removed. "
                "Install setuptools (pip install setuptools): its distutils shim lets "
                "torchviz import again."
            ) from exc
        raise
    torchviz.dot.hasattr = hasattr_after_backward
    return torchviz


def hasattr_after_backward(obj, name):
    """``hasattr`` for torchviz's walk, False where the attribute's saved tensors were freed.

    A custom Function's backward node (e.g. a reentrant checkpoint's) raises RuntimeError, not
    AttributeError, on ``saved_tensors`` once backward has run; builtin ``hasattr`` passes that
    on, so torchviz could not draw such a graph after the step.
    """
    try:
        return hasattr(obj, name)
    except RuntimeError:
        return False


def dot_available():
    """True when Graphviz's ``dot`` executable is on PATH."""
    return shutil.which("dot") is not None


@dataclass(frozen=True)
class Node:
    name: str
    label: str
    style: str


@dataclass(frozen=True)
class Diagram:
    """A stable, styled autograd graph: nodes in walk order, edges from input to user."""

    nodes: tuple
    edges: tuple
    title: str = ""
    # (name, grad state, in graph) per parameter, for the text alternative
    params: tuple = field(default=(), kw_only=True)

    def summary(self):
        """In words: which parameters get a gradient and which are ``None``, then what was
        recorded but cut off from the loss, then the notes (a layer that recorded nothing)."""
        if not self.params:
            return f"{self._title()}." + self._extras()
        got = [name for name, state, _ in self.params if state != "None"]
        missing = [name + ("" if in_graph else " (not in graph)")
                   for name, state, in_graph in self.params if state == "None"]
        parts = [f"gradients for {', '.join(got)}" if got else "no parameter gets a gradient"]
        if missing:
            parts.append(f"grad None for {', '.join(missing)}")
        return f"{self._title()}. {_capital('; '.join(parts))}." + self._extras()

    def _title(self):
        return _capital(self.title or "autograd graph")

    def _extras(self):
        cut = [n.label.split("\n")[0] for n in self.nodes
               if n.style == STYLE_CUT and n.label.endswith(CUT_NOTE)]
        text = f" Recorded but cut off from the loss: {', '.join(cut)}." if cut else ""
        notes = (" ".join(n.label.split()) for n in self.nodes if n.style == STYLE_NOTE)
        return text + "".join(f" {_capital(note.rstrip('.'))}." for note in notes)

    def dot_lines(self, prefix):
        lines = [f'{prefix}{n.name} [label="{_escape(n.label)}" {n.style}]' for n in self.nodes]
        cut = {n.name for n in self.nodes if n.style == STYLE_CUT}
        lines += [f"{prefix}{a} -> {prefix}{b}" + (f" {EDGE_CUT}" if b in cut else "")
                  for a, b in self.edges]
        return lines

    def outline(self):
        """An indented text outline: each node, then what flows into it."""
        labels = {n.name: n.label.replace("\n", " ") for n in self.nodes}
        inputs = {}
        for a, b in self.edges:
            inputs.setdefault(b, []).append(a)
        targets = {a for a, _ in self.edges}
        roots = [n.name for n in self.nodes if n.name not in targets]
        lines, seen = [], set()

        def walk(name, depth):
            mark = " (see above)" if name in seen else ""
            lines.append("  " * depth + ("<- " if depth else "") + labels[name] + mark)
            if name in seen:
                return
            seen.add(name)
            for source in inputs.get(name, []):
                walk(source, depth + 1)

        for root in roots:
            walk(root, 0)
        header = [self.title] if self.title else []
        return "\n".join(header + lines)


def _capital(text):
    return text[:1].upper() + text[1:]


def _escape(label):
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _size_text(tensor):
    return "(" + ", ".join(str(s) for s in tensor.shape) + ")"


def diagram(outcome, title=""):
    """The :class:`Diagram` of ``outcome``'s loss, parameters styled by their grad state, the
    toy net's layers named, and what its layers recorded but the loss cannot reach greyed."""
    states = {name: p.grad for name, p in outcome.params.items()}
    frozen = {name for name, p in outcome.params.items() if not p.requires_grad}
    note = outcome.error.kind if outcome.error else "no loss"
    return loss_diagram(outcome.loss, outcome.tensors, states, title, note,
                        calls=outcome.recorded, frozen=frozen)


def loss_diagram(loss, tensors, states=None, title="", note="no loss", calls=(), frozen=None):
    """The :class:`Diagram` of any ``loss`` with named parameter ``tensors``.

    ``states`` maps a name to "None"/"zeros"/"values"; by default each tensor's current
    ``.grad`` decides. A parameter without an ``AccumulateGrad`` node in the loss's graph is
    marked "not in graph" (and "frozen" when it is in ``frozen``, by default when it does not
    require grad). ``calls`` (:class:`~helpers.layer_calls.LayerCall`) name the layers' nodes;
    what they recorded that the loss cannot reach, and no backward ran through, is drawn
    dotted grey: recorded, cut off from the loss.
    """
    from .outcome import grad_state

    if states is None:
        states = {name: grad_state(t.grad) for name, t in tensors.items()}
    if frozen is None:
        frozen = {name for name, t in tensors.items() if not t.requires_grad}
    reach = Reach(loss, calls)
    nodes, edges, names = [], [], {}

    def stable(raw):
        if raw not in names:
            names[raw] = f"n{len(names)}"
        return names[raw]

    in_graph = {name for name, t in tensors.items() if reach.reaches_leaf(t)}
    drawn = set()
    if loss is None:
        nodes.append(Node(stable("none"), f"no loss was computed\n({note})", STYLE_NOTE))
    roots = ([] if loss is None else [loss]) + reach.cut_outputs
    if roots:
        torchviz = import_torchviz()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            named = {**tensors} if loss is None else {**tensors, "loss": loss}
            dot = torchviz.make_dot(tuple(roots), params=named)
        id_to_param = {str(id(t)): n for n, t in tensors.items()}
        skipped = {str(id(t)) for t in reach.cut_outputs}  # their tensor nodes: drawn by layer
        for statement in dot.body:
            match = _STATEMENT.match(statement)
            if not match or skipped & {match.group(1), match.group(2)}:
                continue
            first, second, attrs = match.groups()
            if second is not None:
                edges.append((stable(first), stable(second)))
                continue
            label = _LABEL.search(attrs or "").group(1).strip('"').replace("\\n", "\n")
            fill = (_FILL.search(attrs or "") or [None, None])[1]
            name = stable(first)
            if first in id_to_param:
                param = id_to_param[first]
                drawn.add(param)
                nodes.append(_param_node(name, param, tensors[param], states[param],
                                         param in in_graph, param in frozen))
            elif label.startswith("loss\n"):
                nodes.append(Node(name, "loss " + label.split("\n", 1)[1].strip(), STYLE_LOSS))
            elif fill == "lightblue":
                style = STYLE_GRAD if first in reach.leaf_ids else STYLE_CUT
                nodes.append(Node(name, "leaf tensor " + label.strip(), style))
            else:
                text, cut = reach.op_label(first, label.strip())
                nodes.append(Node(name, text, STYLE_CUT if cut else STYLE_OP))
    for param, tensor in tensors.items():
        if param not in drawn:
            nodes.append(_param_node(stable(param), param, tensor, states[param], False,
                                     param in frozen))
    for layer, why in reach.unrecorded():
        nodes.append(Node(stable("note " + layer), f"{layer} ran, recorded nothing:\n{why}",
                          STYLE_NOTE))
    params = tuple((name, states[name], name in in_graph) for name in tensors)
    return Diagram(tuple(nodes), tuple(edges), title, params=params)


def _param_node(name, param, tensor, state, in_graph, frozen=False):
    label = f"{param} {_size_text(tensor)}\ngrad: {state}"
    if frozen:
        label += "\nfrozen: requires_grad=False"
    if not in_graph:
        label += "\n(not in graph)"
    return Node(name, label, STYLE_NONE if state == "None" else STYLE_GRAD)


def _dot_source(diagrams):
    lines = ["digraph {",
             '  graph [rankdir=TB fontname="Helvetica" fontsize=12 nodesep=0.25 ranksep=0.3'
             ' bgcolor="transparent"]',
             '  node [shape=box style=filled fontname="monospace" fontsize=10 height=0.2]']
    for index, item in enumerate(diagrams):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f'    label="{_escape(item.title)}" color="#bbbbbb"')
        lines += ["    " + line for line in item.dot_lines(f"g{index}_")]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=512)
def svg_from_dot(source):
    """Run ``dot`` once per distinct source: the SVG text, without XML prolog. The ``dot`` is
    one started ahead of time (:mod:`helpers.dot_process`): the same bytes, without waiting
    for it to start."""
    svg = dot_process.svg(source)
    return svg[svg.index("<svg"):]


# A light panel under the graph in every theme (graphviz draws dark lines on it), a little
# darker than white so that it does not glare in a dark theme. Inline, so Colab gets it too.
PANEL_STYLE = "background: #f4f4f1; color: #1a1a1a; border-radius: 4px; padding: 2px"


def chart_svg_open(width, height, words, scalable=False):
    """The opening of a chart's ``<svg>`` on :data:`PANEL_STYLE`, dark text, with ``words`` (the
    chart in words) as its text alternative (``role="img"``, ``aria-label``, ``<title>``).
    ``scalable``: a viewBox, so it shrinks to fit a narrow page."""
    label = html.escape(words, quote=True)
    box = f'viewBox="0 0 {width} {height}" ' if scalable else ""
    fit = "max-width: 100%; height: auto; " if scalable else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" {box}width="{width}" height="{height}" '
            f'role="img" aria-label="{label}" font-family="sans-serif" font-size="11" '
            f'fill="#1a1a1a" style="{fit}{PANEL_STYLE}"><title>{label}</title>')


LEGEND = ("Arrows point from inputs to the loss; backward() runs against them. "
          "Blue: .grad holds a gradient. Grey dashed: .grad is None. "
          "\"not in graph\": no AccumulateGrad node in the loss's graph. "
          "Dotted grey: recorded by the forward pass but cut off from the loss.")


def legend_html():
    """:data:`LEGEND` as one small line of HTML, legible in light and dark themes."""
    return f'<p class="gfl-graph-legend" style="font-size: 0.85em; margin: 2px 0">' \
           f"{html.escape(LEGEND)}</p>"


class Legend:
    """:data:`LEGEND` for a notebook cell: one line of HTML, the text as repr."""

    def _repr_html_(self):
        return legend_html()

    def __repr__(self):
        return LEGEND


def graph_legend():
    """The graphs' one-line legend, to show under a graph drawn with :func:`draw`."""
    return Legend()


class GraphView:
    """One or more diagrams side by side: SVG when ``dot`` exists, a text outline always.

    The SVG carries a text alternative for screen readers: ``role="img"``, an ``aria-label``
    and a ``<title>`` saying in words which parameters get gradients and which are ``None``.
    """

    def __init__(self, diagrams, legend=False):
        self.diagrams = tuple(diagrams)
        self.source = _dot_source(self.diagrams)
        self.legend = legend

    def text_alternative(self):
        return " ".join(d.summary() for d in self.diagrams)

    @property
    def svg(self):
        if not dot_available():
            return None
        svg = svg_from_dot(self.source)
        label = html.escape(self.text_alternative(), quote=True)
        end = svg.index(">")  # the end of the opening <svg ...> tag
        return (svg[:end] + f' role="img" aria-label="{label}" style="{PANEL_STYLE}">'
                + f"\n<title>{label}</title>" + svg[end + 1:])

    def outline(self):
        return "\n\n".join(d.outline() for d in self.diagrams)

    def html(self):
        """The SVG inline, or the outline with the install hint when ``dot`` is missing."""
        svg = self.svg
        if svg is not None:
            # Scale a wide pair of graphs down to the output's width instead of cutting it off.
            svg = svg.replace(' style="', ' style="max-width: 100%; height: auto; ', 1)
            return f'<div class="gfl-graph">{svg}{self._legend()}</div>'
        return (f'<div class="gfl-graph gfl-no-dot"><p><em>{html.escape(INSTALL_HINT)}</em></p>'
                f'<pre aria-label="{html.escape(self.text_alternative(), quote=True)}">'
                f"{html.escape(self.outline())}</pre>{self._legend()}</div>")

    def _legend(self):
        return legend_html() if self.legend else ""

    def _repr_svg_(self):
        return self.svg

    def _repr_html_(self):
        return None if dot_available() else self.html()

    def __repr__(self):
        return self.outline()


def describe_options(outcome):
    """The title of an outcome's graph in words: its mechanism's ``describe`` (the caption,
    else ``name: a=1, b=2``); ``name: a=1, b=2`` for a mechanism that is not registered."""
    from .registry import get_mechanism

    try:
        return get_mechanism(outcome.mechanism).describe(**outcome.options)
    except ValueError:
        options = ", ".join(f"{k}={v}" for k, v in outcome.options.items())
        return f"{outcome.mechanism}: {options}" if options else outcome.mechanism


def draw_loss(loss, named_parameters, title=""):
    """The graph of any ``loss``, its parameters (name -> tensor) styled by their ``.grad``."""
    return GraphView([loss_diagram(loss, dict(named_parameters), title=title)])


def draw(outcome, beside=None):
    """The graph of ``outcome``; with ``beside`` (another outcome), that one on its left. Its
    HTML view (the explorer's pane) ends with the one-line :data:`LEGEND`."""
    items = [] if beside is None else [diagram(beside, describe_options(beside))]
    items.append(diagram(outcome, describe_options(outcome)))
    return GraphView(items, legend=True)
