"""The gradient table: one row per parameter, ``None`` impossible to miss."""

import html
import itertools

from .toy import PARAM_NAMES

# Colours follow the JupyterLab theme through its CSS variables (light and dark); the
# fallbacks after each comma serve Colab, Voila and nbviewer, which lack those variables, and
# always come in pairs (background with text colour) so no theme can leave text unreadable.
CSS = """<style>
.gfl-table {border-collapse: collapse; font-family: monospace; font-size: 12px; margin: 4px 0;
            color: var(--jp-content-font-color1, inherit)}
.gfl-table th, .gfl-table td {border: 1px solid var(--jp-border-color1, #999999);
                              padding: 2px 8px; text-align: left}
.gfl-table th {background: var(--jp-layout-color2, #eeeeee);
               color: var(--jp-ui-font-color0, #1a1a1a)}
.gfl-table caption {color: var(--jp-content-font-color1, inherit); text-align: left}
.gfl-none {background: #ffe0e0; color: #8a0000; font-weight: bold}
.gfl-zeros {background: #fff3cd; color: #4d3800}
body[data-jp-theme-light="false"] .gfl-graph svg {background: #d8d8d4 !important;
                                                  color: #1a1a1a}
.gfl-error {border-left: 4px solid #c00; background: #fff0f0; color: #4d0000; padding: 4px 8px;
            font-family: sans-serif; font-size: 13px; margin: 4px 0}
</style>"""


def _cell_class(column, value):
    if column == "grad" or column.startswith("grad "):
        return {"None": "gfl-none", "zeros": "gfl-zeros"}.get(value.split(" ")[0], "")
    return ""


class Table:
    """Rows of text cells with HTML and plain-text views; ``None`` grads are highlighted."""

    def __init__(self, columns, rows, caption="", notes=()):
        self.columns = list(columns)
        self.rows = [[str(cell) for cell in row] for row in rows]
        self.caption = caption
        self.notes = list(notes)

    def column(self, name):
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def _repr_html_(self):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = ""
        for row in self.rows:
            cells = ""
            for column, value in zip(self.columns, row):
                css = _cell_class(column, value)
                attr = f' class="{css}"' if css else ""
                cells += f"<td{attr}>{html.escape(value)}</td>"
            body += f"<tr>{cells}</tr>"
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        notes = "".join(f'<div class="gfl-error">{html.escape(n)}</div>' for n in self.notes)
        return (f'{CSS}<table class="gfl-table">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>{notes}")

    def __repr__(self):
        widths = [max(len(c), *(len(r[i]) for r in self.rows)) if self.rows else len(c)
                  for i, c in enumerate(self.columns)]
        line = lambda cells: "  ".join(v.ljust(w) for v, w in zip(cells, widths)).rstrip()
        lines = ([self.caption] if self.caption else []) + [line(self.columns)]
        lines.append("  ".join("-" * w for w in widths))
        lines += [line(row) for row in self.rows]
        lines += self.notes
        return "\n".join(lines)


def format_norm(value):
    return "-" if value is None else f"{value:.4f}"


def grad_table(outcome):
    """The per-parameter table of one :class:`~helpers.outcome.Outcome`."""
    extra = []
    for p in outcome.params.values():
        extra += [c for c in p.extra if c not in extra]
    columns = ["parameter", "requires_grad", *extra, "grad", "grad norm", "changed by step"]
    rows = []
    for p in outcome.params.values():
        rows.append([p.name, p.requires_grad, *(p.extra.get(c, "") for c in extra), p.grad,
                     format_norm(p.grad_norm), "yes" if p.changed else "no"])
    notes = [f"PyTorch raised {outcome.error}"] if outcome.error else []
    return Table(columns, rows, notes=notes)


def grid_table(axes, cells, columns, caption="", shown=None):
    """One row per combination of ``axes`` (name -> values; the first varies slowest).

    A row holds the values of the axes named in ``shown`` (default: every axis, in order), then
    ``cells(**combination)``: one cell per name in ``columns``.
    """
    names = list(axes)
    shown = list(shown or names)
    rows = []
    for values in itertools.product(*axes.values()):
        combination = dict(zip(names, values))
        rows.append([combination[n] for n in shown] + list(cells(**combination)))
    return Table(shown + list(columns), rows, caption=caption)


def extra_column_table(mechanism, vary, column, caption, **fixed):
    """One extra column of ``mechanism``'s outcomes, one cell per parameter, over every
    combination of the options named in ``vary`` (the others at ``fixed`` or their defaults)."""
    from .registry import cached_outcome, get_mechanism

    mechanism = get_mechanism(mechanism)

    def cells(**combination):
        options = mechanism.resolve(**fixed, **combination)
        outcome = cached_outcome(mechanism.name, tuple(options.items()))
        return [outcome.params[name].extra[column] for name in PARAM_NAMES]
    axes = {name: mechanism.option(name).choices for name in vary}
    return grid_table(axes, cells, PARAM_NAMES, caption)
