"""Every mechanism side by side (notebook 08_compare_all), computed from the registry.

- :func:`matrix`: one row per registered mechanism at its default options, plus the notable
  variants in :data:`VARIANTS`, and a ``model.eval()`` row. Every column is measured by running
  the mechanism's own step: the grad state of each parameter, whether the graph was built (and
  how many backward nodes it has), the bytes the step's last forward saved for backward, which
  parameters the step moved, and what happened to Dropout and BatchNorm.
- :func:`small_multiples`: the graphs of those rows beside the control graph, each with a note
  naming the backward nodes that the control graph has and this one lacks.
- :func:`outcome_groups` / :func:`filtered_truth_table`: readable views of a large truth table
  (the playground's).
- :data:`DECISION_GUIDE` / :func:`decision_guide`: which tool for which situation, linked to
  its notebook.
"""

import html
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from .autograd_walk import count_nodes
from .costs import SavedBytes
from .grad_table import CSS, Table
from .graph import STYLE_NOTE, Diagram, GraphView, Node, diagram
from .lessons import Lesson, lesson
from .outcome import run_step
from .registry import MECHANISMS, cached_outcome, get_mechanism
from .toy import PARAM_NAMES

BASELINE = "control"
EXCLUDED = ("control", "playground")  # the baseline has its own row; the playground has a page

# Variants worth a row besides each mechanism's defaults (the defaults always get one).
VARIANTS = {
    "requires_grad": ({"frozen": "l1"}, {"frozen": "l2"}),
    "no_grad": ({"no_grad_over": "all"},),
    "inference_mode": ({"clone": "yes"},),
    "optimizer_subsets": ({"params": "all", "excluded": "frozen"},),
}


@dataclass(frozen=True)
class Row:
    """One row of the matrix: a mechanism, its options (all of them) and a label."""

    mechanism: str
    options: tuple  # ((name, value), ...) in declaration order
    eval_mode: bool = False  # call model.eval() before the step

    @property
    def label(self):
        if self.eval_mode:
            return "model.eval()"
        mechanism = get_mechanism(self.mechanism)
        changed = [f"{k}={v}" for k, v in self.options if mechanism.defaults[k] != v]
        return self.mechanism + (f" ({', '.join(changed)})" if changed else "")

    @property
    def notebook(self):
        """The :class:`~helpers.lessons.Lesson` that teaches the row (``model.eval()``: no_grad's,
        where evaluation is taught)."""
        return lesson(get_mechanism("no_grad" if self.eval_mode else self.mechanism).notebook)


def rows():
    """The matrix rows: control, every mechanism at its defaults and its variants (in notebook
    order), then ``model.eval()`` (the control step after ``model.eval()``)."""
    get_mechanism(BASELINE)  # imports every mechanism module
    result = [Row(BASELINE, tuple(get_mechanism(BASELINE).defaults.items()))]
    for mechanism in sorted(MECHANISMS.values(), key=lambda m: (m.notebook, m.name)):
        if mechanism.name in EXCLUDED or not mechanism.in_comparison:
            continue
        for options in ({}, *VARIANTS.get(mechanism.name, ())):
            result.append(Row(mechanism.name, tuple(mechanism.resolve(**options).items())))
    result.append(Row(BASELINE, result[0].options, eval_mode=True))
    return result


# --- measuring one row ------------------------------------------------------------------------

class DropoutBatchNorm(nn.Module):
    """BatchNorm1d (no affine parameters) then Dropout(0.5), put on L1's output by a hook.

    The toy net has neither layer; a forward hook on ``net.l1`` adds them to every step without
    changing the step's code or the parameter names. Records whether Dropout dropped anything.
    """

    def __init__(self, net):
        super().__init__()
        self.norm = nn.BatchNorm1d(3, affine=False)
        self.drop = nn.Dropout(0.5)
        self.dropped = False
        net.norm_and_dropout = self  # a submodule: net.train() / net.eval() reach it
        net.l1.register_forward_hook(lambda module, inputs, output: self(output))

    def forward(self, h):
        normed = self.norm(h)
        out = self.drop(normed)
        self.dropped = self.dropped or not torch.equal(out, normed)
        return out

    def describe(self):
        stats = "updated" if int(self.norm.num_batches_tracked) else "untouched"
        return f"BN stats {stats}, Dropout {'dropping' if self.dropped else 'off'}"


@dataclass(frozen=True)
class Measured:
    row: Row
    outcome: object  # the Outcome of the step on the plain toy net
    saved_bytes: int  # bytes the last forward saved for backward
    nodes: int  # backward nodes in the loss's graph
    dropout_batchnorm: str  # the same step on a net with BatchNorm + Dropout


@lru_cache(maxsize=None)
def measure(row):
    """Run ``row``'s step twice: on the toy net (outcome, bytes, graph) and with BatchNorm +
    Dropout hooked onto L1 (what the step did to them)."""
    mechanism = get_mechanism(row.mechanism)
    options = dict(row.options)
    counter = {}

    def counted(ctx, **opts):
        if row.eval_mode:
            ctx.net.eval()
        # each loss ends a forward: the bytes of the last one are what its backward needs
        counter["bytes"] = saved = SavedBytes(exclude=ctx.net)
        ctx.loss_of = saved.ending(ctx.loss_of)
        with saved:
            mechanism.step(ctx, **opts)

    outcome = run_step(mechanism.name, options, counted)
    layers = {}

    def with_layers(ctx, **opts):
        layers["hook"] = DropoutBatchNorm(ctx.net)
        if row.eval_mode:
            ctx.net.eval()
        mechanism.step(ctx, **opts)

    run_step(mechanism.name, options, with_layers)
    return Measured(row, outcome, counter["bytes"].last, count_nodes(outcome.loss),
                    layers["hook"].describe())


def moved(outcome):
    """The parameters the step changed, as text: "all", "none" or their names."""
    names = [n for n in PARAM_NAMES if outcome.params[n].changed]
    return "all" if len(names) == len(PARAM_NAMES) else ", ".join(names) or "none"


MATRIX_COLUMNS = ["mechanism", *(f"grad {n}" for n in PARAM_NAMES), "graph built",
                  "saved bytes", "step moves", "Dropout / BatchNorm", "error"]


def matrix_row(measured):
    outcome = measured.outcome
    graph = f"yes ({measured.nodes} nodes)" if measured.nodes else (
        "no" if outcome.loss is not None else "no (no loss)")
    error = outcome.error.message[:48] if outcome.error else ""
    return [measured.row.label, *(outcome.params[n].grad for n in PARAM_NAMES), graph,
            measured.saved_bytes, moved(outcome), measured.dropout_batchnorm, error]


def matrix():
    """The comparison matrix as a :class:`Table` (text and HTML views)."""
    caption = ("Each mechanism at its defaults (and notable variants), measured by running its "
               "step: grad state per parameter, backward nodes, bytes the last forward saved "
               "for backward (beyond the weights), what the step moved, and what the same step "
               "does to BatchNorm + Dropout placed after L1")
    return Table(MATRIX_COLUMNS, [matrix_row(measure(r)) for r in rows()], caption=caption)


def matrix_entry(label, column):
    """One cell of :func:`matrix`, found by row label and column name."""
    table = matrix()
    for row in table.rows:
        if row[0] == label:
            return row[table.columns.index(column)]
    raise ValueError(f"no row {label!r}; rows: {', '.join(table.column('mechanism'))}")


# --- small multiples --------------------------------------------------------------------------

OP_STYLE = 'fillcolor="#e8e8e8"'


def op_labels(item):
    """The backward-function nodes of a :class:`~helpers.graph.Diagram`, counted by name."""
    return Counter(n.label for n in item.nodes if n.style == OP_STYLE)


def pruned(item, control):
    """The backward nodes ``control`` has and ``item`` lacks, as text (empty if none)."""
    missing = op_labels(control) - op_labels(item)
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(missing.items()))


def marked(item, control):
    """``item`` with a note node listing its pruned backward nodes (if any)."""
    text = pruned(item, control)
    if not text:
        return item
    note = Node("pruned", "pruned vs control:\n" + text.replace(", ", "\n"), STYLE_NOTE)
    return Diagram(item.nodes + (note,), item.edges, item.title, params=item.params)


class SmallMultiples:
    """Many graphs as small tiles, all drawn at the same ``scale``, wrapping across the page;
    a text outline as repr. (One SVG of a dozen graphs side by side would be far too wide.)"""

    def __init__(self, diagrams, scale=0.6):
        self.diagrams = tuple(diagrams)
        self.scale = scale

    def _tile(self, item):
        view = GraphView([item])
        svg = view.svg
        if svg is None:
            return view.html()

        def shrink(match):
            width, height = (float(v) * self.scale for v in match.groups())
            return f'<svg width="{width:.0f}pt" height="{height:.0f}pt"'
        return _SVG_SIZE.sub(shrink, svg, count=1)

    def _repr_html_(self):
        tiles = "".join(f"<div>{self._tile(item)}</div>" for item in self.diagrams)
        return ('<div class="gfl-small-multiples" style="display:flex;flex-wrap:wrap;gap:6px;'
                f'align-items:flex-start">{tiles}</div>')

    def __repr__(self):
        return "\n\n".join(item.outline() for item in self.diagrams)


_SVG_SIZE = re.compile(r'<svg width="([0-9.]+)pt" height="([0-9.]+)pt"')


def small_multiples(scale=0.6):
    """The graphs of the matrix rows as small tiles, the control graph first; each other graph
    carries a note naming the backward nodes it lacks compared with the control graph."""
    measured = [measure(r) for r in rows()]
    control = diagram(measured[0].outcome, "control")
    items = [control] + [marked(diagram(m.outcome, m.row.label), control)
                         for m in measured[1:] if not m.row.eval_mode]
    return SmallMultiples(items, scale)


# --- readable views of a large truth table ----------------------------------------------------

def _cells(outcome):
    grads = [outcome.params[n].grad + (" *" if outcome.params[n].changed else "")
             for n in PARAM_NAMES]
    return grads + [outcome.error.message.split(".")[0][:60] if outcome.error else ""]


def filtered_truth_table(name, **fixed):
    """The truth table of ``name`` restricted to combinations with ``fixed`` option values."""
    mechanism = get_mechanism(name)
    mechanism.resolve(**fixed)  # validates names and values
    free = [o.name for o in mechanism.options if o.name not in fixed]
    rows_ = []
    for combination in mechanism.combinations():
        if all(combination[k] == v for k, v in fixed.items()):
            outcome = cached_outcome(mechanism.name, tuple(combination.items()))
            rows_.append([combination[k] for k in free] + _cells(outcome))
    where = ", ".join(f"{k}={v}" for k, v in fixed.items())
    return Table(free + [f"grad {n}" for n in PARAM_NAMES] + ["error"], rows_,
                 caption=f"{name} where {where} (* = the step changed it)")


def outcome_groups(name):
    """Combinations of ``name`` grouped by outcome: how many lead to each, and the first one."""
    mechanism = get_mechanism(name)
    groups = {}
    for combination in mechanism.combinations():
        outcome = cached_outcome(mechanism.name, tuple(combination.items()))
        key = tuple(_cells(outcome))
        if key not in groups:
            changed = {k: v for k, v in combination.items() if mechanism.defaults[k] != v}
            groups[key] = [0, ", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"]
        groups[key][0] += 1
    columns = ["combinations", "first example"] + [f"grad {n}" for n in PARAM_NAMES] + ["error"]
    total = sum(count for count, _ in groups.values())
    return Table(columns, [[count, example, *key] for key, (count, example) in groups.items()],
                 caption=f"{name}: {total} combinations, {len(groups)} distinct outcomes "
                         "(* = the step changed it)")


# --- which one should I use? ------------------------------------------------------------------

@dataclass(frozen=True)
class Advice:
    """One line of the guide; ``notebook`` is the :class:`~helpers.lessons.Lesson` that teaches
    ``tool``."""

    situation: str
    tool: str
    notebook: Lesson


GUIDE_LINES = (  # (situation, tool, slug of the notebook that teaches the tool)
    ("Fine-tune: keep a pretrained part fixed, train the rest",
     "requires_grad_(False) on the fixed part (and give the optimizer the rest)",
     "02_requires_grad"),
    ("Evaluate, compute metrics, run a teacher or target network",
     "model.eval() and torch.no_grad()", "04_no_grad"),
    ("Serve a model; the results never go into a training graph",
     "model.eval() and torch.inference_mode()", "05_inference_mode"),
    ("Stop gradients along one path only (a target, a GAN's fake for D, a hidden state)",
     ".detach()", "03_detach"),
    ("Different rules per parameter group (learning rates, what moves at all)",
     "optimizer parameter groups / subsets", "06_optimizer_subsets"),
    ("A custom update: clip, scale, mask or drop gradients before the step",
     "edit .grad between backward() and step(), or a hook", "07_manual_grad_edits"),
    ("Every training iteration, or accumulate over k batches on purpose",
     "optimizer.zero_grad() (set_to_none=True, the default)", "01_zero_grad"),
)
DECISION_GUIDE = tuple(Advice(situation, tool, lesson(slug))  # lesson() checks each slug
                       for situation, tool, slug in GUIDE_LINES)


class Guide:
    """The decision guide: text view, and an HTML table whose notebook cells are links."""

    def __init__(self, advice):
        self.advice = tuple(advice)

    def _repr_html_(self):
        body = "".join(
            f"<tr><td>{html.escape(a.situation)}</td><td><code>{html.escape(a.tool)}</code></td>"
            f'<td><a href="{a.notebook.file}">{a.notebook.slug}</a></td></tr>' for a in self.advice)
        return (f'{CSS}<table class="gfl-table"><caption>Which one should I use?</caption>'
                "<thead><tr><th>situation</th><th>tool</th><th>notebook</th></tr></thead>"
                f"<tbody>{body}</tbody></table>")

    def __repr__(self):
        return repr(Table(["situation", "tool", "notebook"],
                          [[a.situation, a.tool, a.notebook.file] for a in self.advice],
                          caption="Which one should I use?"))


def decision_guide():
    """:data:`DECISION_GUIDE` as a table; each notebook name links to the notebook."""
    return Guide(DECISION_GUIDE)
