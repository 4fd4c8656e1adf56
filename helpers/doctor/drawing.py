"""The doctor's drawing: the model's modules as a tree, each coloured by its parameters' causes.

Every parameter's module is shown, but a subtree whose parameters all share one cause folds into
a single node (with its module and parameter counts), so a model of hundreds of modules draws
as a few nodes plus the path to whatever is wrong. Drawn with Graphviz's ``dot`` through
:class:`helpers.graph.GraphView`, which shows a text outline instead when ``dot`` is missing.
"""

from dataclasses import dataclass

from ..graph import Diagram, GraphView, Node
from .causes import CAUSES

COLOURS = {
    "frozen": "#d0d0d0", "unused": "#eeeeee", "inference_mode": "#d9c8f0", "no_grad": "#c8d4f0",
    "detached": "#ffc9a8", "non_leaf": "#ffd8c2", "not_in_optimizer": "#fff0a0",
    "zero_grad": "#ffe6a0", "not_moved": "#f5e6b8", "ok": "#d9f2c7",
}
PLAIN = 'fillcolor="#ffffff" color="#999999"'


def _style(cause):
    dashed = ' style="filled,dashed"' if cause in ("unused", "frozen") else ""
    return f'fillcolor="{COLOURS[cause]}"{dashed}'


@dataclass(frozen=True)
class ModuleDiagram(Diagram):
    """A module tree (edges from parent to child) and a legend of the causes it shows."""

    legend: tuple = ()

    def dot_lines(self, prefix):
        lines = super().dot_lines(prefix)
        if self.legend:
            lines.append("subgraph cluster_legend {")
            lines.append('  label="causes" color="#dddddd"')
            for cause in self.legend:
                lines.append(f'  {prefix}legend_{cause} [label="{cause}" {_style(cause)}]')
            for first, second in zip(self.legend, self.legend[1:]):
                lines.append(f"  {prefix}legend_{first} -> {prefix}legend_{second} "
                             "[style=invis]")
            lines.append("}")
        return lines

    def summary(self):
        """In words, for screen readers: each module with its parameters' causes."""
        labels = "; ".join(n.label.replace("\n", " ") for n in self.nodes)
        return f"{self.title or 'module graph'}: {labels}."

    def outline(self):
        labels = {n.name: n.label.replace("\n", " | ") for n in self.nodes}
        children = {}
        for parent, child in self.edges:
            children.setdefault(parent, []).append(child)
        targets = {child for _, child in self.edges}
        lines = [self.title] if self.title else []

        def walk(name, depth):
            lines.append("  " * depth + labels[name])
            for child in children.get(name, []):
                walk(child, depth + 1)

        for node in self.nodes:
            if node.name not in targets:
                walk(node.name, 0)
        return "\n".join(lines)


def _counts(causes):
    tally = {}
    for cause in causes:
        tally[cause] = tally.get(cause, 0) + 1
    return ", ".join(f"{tally[c]} {c}" for c in CAUSES if c in tally)


def module_diagram(diagnosis, title="modules, coloured by their parameters' causes"):
    """The :class:`ModuleDiagram` of a :class:`~helpers.doctor.report.Diagnosis`."""
    causes = diagnosis.causes
    modules = diagnosis.modules  # (name, class name, direct parameter names)
    below = {name: [] for name, _, _ in modules}  # name -> every parameter in its subtree
    for name, _, params in modules:
        mine = [p for p in params if p in causes]
        prefix = name
        while True:
            if prefix in below:
                below[prefix].extend(mine)
            if not prefix:
                break
            prefix = prefix.rsplit(".", 1)[0] if "." in prefix else ""
    kids = {name: [] for name, _, _ in modules}
    for name, _, _ in modules:
        if name:
            parent = name.rsplit(".", 1)[0] if "." in name else ""
            while parent not in kids:
                parent = parent.rsplit(".", 1)[0] if "." in parent else ""
            kids[parent].append(name)
    info = {name: (kind, params) for name, kind, params in modules}
    nodes, edges, ids = [], [], {}

    def node_id(name):
        return ids.setdefault(name, f"m{len(ids)}")

    def add(name, depth):
        kind, own = info[name]
        subtree = [causes[p] for p in below[name]]
        label_name = name or "model"
        fold = depth >= 1 and len(set(subtree)) == 1 and kids[name]
        if fold:
            count = 1 + sum(1 for other in below if other.startswith(name + "."))
            label = (f"{label_name}: {kind} ({count} modules)\n"
                     f"{len(subtree)} params: {subtree[0]}")
            nodes.append(Node(node_id(name), label, _style(subtree[0])))
            return
        mine = [causes[p] for p in own if p in causes]
        if mine:
            worst = next(c for c in CAUSES if c in mine)
            label = f"{label_name}: {kind}\n{_counts(mine)}"
            nodes.append(Node(node_id(name), label, _style(worst)))
        else:
            nodes.append(Node(node_id(name), f"{label_name}: {kind}", PLAIN))
        for child in kids[name]:
            if below[child]:
                edges.append((node_id(name), node_id(child)))
                add(child, depth + 1)

    if modules:
        add(modules[0][0], 0)
    in_model = {p for _, _, params in modules for p in params}
    extra = [n for n in causes if n not in in_model]
    for name in extra:  # tensors passed with tensors=..., outside the model
        nodes.append(Node(node_id("tensor " + name), f"{name} (tensor)\n{causes[name]}",
                          _style(causes[name])))
    present = tuple(c for c in CAUSES if c in set(causes.values()))
    return ModuleDiagram(tuple(nodes), tuple(edges), title, present)


def draw_modules(diagnosis):
    """A :class:`~helpers.graph.GraphView` of the module tree, laid out left to right."""
    view = GraphView([module_diagram(diagnosis)])
    view.source = view.source.replace("rankdir=TB", "rankdir=LR")
    return view
