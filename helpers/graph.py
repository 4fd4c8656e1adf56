"""Autograd graphs drawn with torchviz, relabelled so the same step gives the same SVG.

torchviz names each node by Python ``id()``, which changes every run. Here the nodes are renamed
in the order torchviz first meets them (a fixed walk from the loss), and the parameters are
styled by what happened to their ``.grad``: a parameter whose grad is ``None`` is grey and
dashed, and one that never entered the graph is added, marked "not in graph".
"""

import html
import re
import shutil
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

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
        """One sentence in words: which parameters get a gradient and which are ``None``."""
        if not self.params:
            return f"{self.title or 'autograd graph'}."
        got = [name for name, state, _ in self.params if state != "None"]
        missing = [name + ("" if in_graph else " (not in graph)")
                   for name, state, in_graph in self.params if state == "None"]
        parts = [f"gradients for {', '.join(got)}" if got else "no parameter gets a gradient"]
        if missing:
            parts.append(f"grad None for {', '.join(missing)}")
        return f"{self.title or 'autograd graph'}: {'; '.join(parts)}."

    def dot_lines(self, prefix):
        lines = [f'{prefix}{n.name} [label="{_escape(n.label)}" {n.style}]' for n in self.nodes]
        lines += [f"{prefix}{a} -> {prefix}{b}" for a, b in self.edges]
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


def _escape(label):
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _size_text(tensor):
    return "(" + ", ".join(str(s) for s in tensor.shape) + ")"


def diagram(outcome, title=""):
    """The :class:`Diagram` of ``outcome``'s loss, parameters styled by their grad state."""
    states = {name: p.grad for name, p in outcome.params.items()}
    note = outcome.error.kind if outcome.error else "no loss"
    return loss_diagram(outcome.loss, outcome.tensors, states, title, note)


def loss_diagram(loss, tensors, states=None, title="", note="no loss"):
    """The :class:`Diagram` of any ``loss`` with named parameter ``tensors``.

    ``states`` maps a name to "None"/"zeros"/"values"; by default each tensor's current
    ``.grad`` decides. Parameters the graph never reaches are added, marked "not in graph".
    """
    from .outcome import grad_state

    if states is None:
        states = {name: grad_state(t.grad) for name, t in tensors.items()}
    nodes, edges, names = [], [], {}

    def stable(raw):
        if raw not in names:
            names[raw] = f"n{len(names)}"
        return names[raw]

    drawn = set()
    if loss is None:
        nodes.append(Node(stable("none"), f"no loss was computed\n({note})", STYLE_NOTE))
    else:
        torchviz = import_torchviz()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            dot = torchviz.make_dot(loss, params={**tensors, "loss": loss})
        id_to_param = {str(id(t)): n for n, t in tensors.items()}
        for statement in dot.body:
            match = _STATEMENT.match(statement)
            if not match:
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
                nodes.append(_param_node(name, param, tensors[param], states[param], True))
            elif label.startswith("loss\n"):
                nodes.append(Node(name, "loss " + label.split("\n", 1)[1].strip(), STYLE_LOSS))
            elif fill == "lightblue":
                nodes.append(Node(name, "leaf tensor " + label.strip(), STYLE_GRAD))
            else:
                nodes.append(Node(name, label.strip(), 'fillcolor="#e8e8e8"'))
    for param, tensor in tensors.items():
        if param not in drawn:
            nodes.append(_param_node(stable(param), param, tensor, states[param], False))
    params = tuple((name, states[name], name in drawn) for name in tensors)
    return Diagram(tuple(nodes), tuple(edges), title, params=params)


def _param_node(name, param, tensor, state, in_graph):
    label = f"{param} {_size_text(tensor)}\ngrad: {state}"
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
    """Run ``dot`` once per distinct source: the SVG text, without XML prolog."""
    import graphviz

    svg = graphviz.Source(source).pipe(format="svg", encoding="utf-8")
    return svg[svg.index("<svg"):]


# A light panel under the graph in every theme (graphviz draws dark lines on it), a little
# darker than white so that it does not glare in a dark theme. Inline, so Colab gets it too.
PANEL_STYLE = "background: #f4f4f1; color: #1a1a1a; border-radius: 4px; padding: 2px"


class GraphView:
    """One or more diagrams side by side: SVG when ``dot`` exists, a text outline always.

    The SVG carries a text alternative for screen readers: ``role="img"``, an ``aria-label``
    and a ``<title>`` saying in words which parameters get gradients and which are ``None``.
    """

    def __init__(self, diagrams):
        self.diagrams = tuple(diagrams)
        self.source = _dot_source(self.diagrams)

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
            return f'<div class="gfl-graph">{svg}</div>'
        return (f'<div class="gfl-graph gfl-no-dot"><p><em>{html.escape(INSTALL_HINT)}</em></p>'
                f'<pre aria-label="{html.escape(self.text_alternative(), quote=True)}">'
                f"{html.escape(self.outline())}</pre></div>")

    def _repr_svg_(self):
        return self.svg

    def _repr_html_(self):
        return None if dot_available() else self.html()

    def __repr__(self):
        return self.outline()


def describe_options(outcome):
    """``name: a=1, b=2``, the title of an outcome's graph."""
    options = ", ".join(f"{k}={v}" for k, v in outcome.options.items())
    return f"{outcome.mechanism}: {options}" if options else outcome.mechanism


def draw_loss(loss, named_parameters, title=""):
    """The graph of any ``loss``, its parameters (name -> tensor) styled by their ``.grad``."""
    return GraphView([loss_diagram(loss, dict(named_parameters), title=title)])


def draw(outcome, beside=None):
    """The graph of ``outcome``; with ``beside`` (another outcome), that one on its left."""
    items = [] if beside is None else [diagram(beside, describe_options(beside))]
    items.append(diagram(outcome, describe_options(outcome)))
    return GraphView(items)
