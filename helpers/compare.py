"""Every mechanism side by side (notebook 08_compare_all), computed from the registry.

- :func:`matrix`: one row per registered mechanism at its defaults (labelled so), plus the
  notable variants in :data:`VARIANTS`. Every column is measured by running the mechanism's own
  step: the grad state of each parameter, how many backward nodes the loss reaches, the bytes
  the step's last forward saved for backward, which parameters the step moved, what the step
  did to Dropout and BatchNorm, and the error in full. A "vs plain step" column says which rows
  equal the plain step (same grads and update, bit for bit) and how the others differ. A column
  with the same value in every row is left out and named in the caption instead.
- :func:`small_multiples`: the graphs of those rows beside the control graph, each with a note
  naming the backward nodes that the control graph has and this one lacks.
- :func:`outcome_groups` (from :mod:`helpers.truth_table`): a large truth table (the
  playground's) as its distinct outcomes, each once, with how many combinations lead to it and
  which ones.
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
from .graph_reach import Reach
from .graph import STYLE_NOTE, Diagram, GraphView, Node, diagram
from .lessons import Lesson, lesson
from .outcome import run_step
from .registry import MECHANISMS, get_mechanism
from .toy import PARAM_NAMES
from .truth_table import outcome_groups, which  # noqa: F401  (read as compare.* in 08)

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
    """One row of the matrix: a mechanism and its options (all of them, in declaration order)."""

    mechanism: str
    options: tuple  # ((name, value), ...)

    @property
    def setting(self):
        """The options in words: "defaults (cut=l1)", or only the ones changed ("frozen=l1")."""
        mechanism = get_mechanism(self.mechanism)
        changed = [f"{k}={v}" for k, v in self.options if mechanism.defaults[k] != v]
        if changed:
            return ", ".join(changed)
        return "defaults (" + ", ".join(f"{k}={v}" for k, v in self.options) + ")"

    @property
    def label(self):
        return f"{self.mechanism}: {self.setting}"

    @property
    def notebook(self):
        """The :class:`~helpers.lessons.Lesson` that teaches the row."""
        return lesson(get_mechanism(self.mechanism).notebook)


def rows():
    """The matrix rows: control, then every mechanism at its defaults and its variants (in
    notebook order)."""
    get_mechanism(BASELINE)  # imports every mechanism module
    result = [Row(BASELINE, tuple(get_mechanism(BASELINE).defaults.items()))]
    for mechanism in sorted(MECHANISMS.values(), key=lambda m: (m.notebook, m.name)):
        if mechanism.name in EXCLUDED or not mechanism.in_comparison:
            continue
        for options in ({}, *VARIANTS.get(mechanism.name, ())):
            result.append(Row(mechanism.name, tuple(mechanism.resolve(**options).items())))
    return result


def find_row(mechanism, **options):
    """The matrix row of ``mechanism`` under ``options`` (defaults fill the rest)."""
    resolved = tuple(get_mechanism(mechanism).resolve(**options).items())
    for row in rows():
        if row.mechanism == mechanism and row.options == resolved:
            return row
    raise ValueError(f"the matrix has no row {mechanism} {dict(resolved)}; rows: "
                     + "; ".join(r.label for r in rows()))


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
    nodes: int  # backward nodes the loss reaches
    cut_off: tuple  # the layers whose recorded output the loss cannot reach ("L1", ...)
    dropout_batchnorm: str  # the same step on a net with BatchNorm + Dropout


@lru_cache(maxsize=None)
def measure(row):
    """Run ``row``'s step twice: on the toy net (outcome, bytes, graph) and with BatchNorm +
    Dropout hooked onto L1 (what the step did to them)."""
    mechanism = get_mechanism(row.mechanism)
    options = dict(row.options)
    counter = {}

    def counted(ctx, **opts):
        # each loss ends a forward: the bytes of the last one are what its backward needs
        counter["bytes"] = saved = SavedBytes(exclude=ctx.net)
        ctx.loss_of = saved.ending(ctx.loss_of)
        with saved:
            mechanism.step(ctx, **opts)

    outcome = run_step(mechanism.name, options, counted)
    layers = {}

    def with_layers(ctx, **opts):
        layers["hook"] = DropoutBatchNorm(ctx.net)
        mechanism.step(ctx, **opts)

    run_step(mechanism.name, options, with_layers)
    reach = Reach(outcome.loss, outcome.recorded)
    cut_off = tuple(sorted({reach.layers[i] for i in reach.cut_ids if i in reach.layers}))
    return Measured(row, outcome, counter["bytes"].last, count_nodes(outcome.loss), cut_off,
                    layers["hook"].describe())


def moved(outcome):
    """The parameters the step changed, as text: "all", "none" or their names."""
    names = [n for n in PARAM_NAMES if outcome.params[n].changed]
    return "all" if len(names) == len(PARAM_NAMES) else ", ".join(names) or "none"


def _same(a, b):
    return a is None and b is None or a is not None and b is not None and torch.equal(a, b)


def differences(measured, plain):
    """What ``measured`` does differently from the plain step ``plain`` (empty: nothing).

    Grads and the update are compared bit for bit, so a row whose grad states match the plain
    step's but whose grads were scaled (clipping) still differs."""
    a, b = measured.outcome.tensors, plain.outcome.tensors
    found = {
        "grads": not all(_same(a[n].grad, b[n].grad) for n in PARAM_NAMES),
        "update": not all(torch.equal(a[n].detach(), b[n].detach()) for n in PARAM_NAMES),
        "reachable nodes": reachable(measured) != reachable(plain),
        "saved bytes": measured.saved_bytes != plain.saved_bytes,
        "error": measured.outcome.error is not None,
    }
    return [name for name, differs in found.items() if differs]


PLAIN_STEP = "this is the plain step"
SAME = "same as the plain step"

MATRIX_COLUMNS = ["mechanism", "options", "vs plain step", *(f"grad {n}" for n in PARAM_NAMES),
                  "reachable nodes", "saved bytes", "step moves", "Dropout / BatchNorm",
                  "error"]


def reachable(measured):
    """How many backward nodes the loss reaches ("no loss" when none was made), and the layers
    the forward recorded but the loss cannot reach (cut off, as by ``detach()``)."""
    if measured.outcome.loss is None:
        return "no loss"
    cut = f"; {', '.join(measured.cut_off)} recorded, cut off" if measured.cut_off else ""
    return f"{measured.nodes}{cut}"


def matrix_row(measured, plain):
    outcome = measured.outcome
    if measured.row == plain.row:
        versus = PLAIN_STEP
    else:
        versus = "differs: " + ", ".join(differences(measured, plain)) \
            if differences(measured, plain) else SAME
    error = f"{outcome.error.kind}: {outcome.error.message}" if outcome.error else ""
    return [measured.row.mechanism, measured.row.setting, versus,
            *(outcome.params[n].grad for n in PARAM_NAMES), reachable(measured),
            measured.saved_bytes, moved(outcome), measured.dropout_batchnorm, error]


def full_matrix():
    """Every column of the matrix, constant ones included, as a :class:`Table`."""
    measured = [measure(r) for r in rows()]
    return Table(MATRIX_COLUMNS, [matrix_row(m, measured[0]) for m in measured])


def matrix():
    """The comparison matrix as a :class:`Table` (text and HTML views); a column whose value is
    the same in every row is left out and named, with its value, in the caption."""
    full = full_matrix()
    constant = {c: full.rows[0][i] for i, c in enumerate(full.columns)
                if i >= 2 and len(set(full.column(c))) == 1}
    kept = [i for i, c in enumerate(full.columns) if c not in constant]
    caption = ("Each mechanism at its defaults and a few variants, measured by running its "
               "step: grad state per parameter, backward nodes the loss reaches (and a layer "
               "recorded but cut off from it), bytes the last forward saved for backward "
               "(beyond the weights), what the step moved, and the error. \"vs plain step\" "
               "names what differs from the plain step, grads and update compared bit for "
               "bit.")
    if constant:
        caption += " The same in every row, so not a column: " + "; ".join(
            f"{c}: {v}" for c, v in constant.items()) + "."
    return Table([full.columns[i] for i in kept], [[r[i] for i in kept] for r in full.rows],
                 caption=caption)


def matrix_entry(mechanism, column, **options):
    """One cell of :func:`full_matrix`: the row of ``mechanism`` under ``options`` (defaults
    fill the rest), the column by name."""
    row = find_row(mechanism, **options)
    table = full_matrix()
    if column not in table.columns:
        raise ValueError(f"no column {column!r}; columns: {', '.join(table.columns)}")
    return table.rows[rows().index(row)][table.columns.index(column)]


# --- small multiples --------------------------------------------------------------------------

OP_STYLE = 'fillcolor="#e8e8e8"'
NOT_REACHED = "the plain step reaches,\nthis loss does not:"


def op_labels(item):
    """The backward-function nodes of a :class:`~helpers.graph.Diagram`, counted by name."""
    return Counter(n.label for n in item.nodes if n.style == OP_STYLE)


def pruned(item, control):
    """The backward nodes ``control`` has and ``item`` lacks, as text (empty if none)."""
    missing = op_labels(control) - op_labels(item)
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(missing.items()))


def marked(item, control):
    """``item`` with a note node listing the backward nodes ``control``'s loss reaches and
    ``item``'s does not (if any)."""
    text = pruned(item, control)
    if not text:
        return item
    note = Node("pruned", f"{NOT_REACHED}\n" + text.replace(", ", "\n"), STYLE_NOTE)
    return Diagram(item.nodes + (note,), item.edges, item.title, params=item.params)


class SmallMultiples:
    """Many graphs as small tiles, all drawn at the same ``scale``, wrapping across the page;
    a text outline as repr. (One SVG of a dozen graphs side by side would be far too wide.)"""

    def __init__(self, diagrams, scale=0.85):
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


def title(row):
    """A tile's title: the mechanism and its step in words ("detach: detach after L1 ...")."""
    return f"{row.mechanism}: {get_mechanism(row.mechanism).describe(**dict(row.options))}"


def small_multiples(scale=0.85):
    """The graphs of the matrix rows as small tiles, the control graph first; each other graph
    carries a note naming the backward nodes it lacks compared with the control graph."""
    measured = [measure(r) for r in rows()]
    control = diagram(measured[0].outcome, title(measured[0].row))
    items = [control] + [marked(diagram(m.outcome, title(m.row)), control) for m in measured[1:]]
    return SmallMultiples(items, scale)


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
