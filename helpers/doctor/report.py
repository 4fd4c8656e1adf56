"""The result of :func:`~helpers.doctor.diagnose`: causes, a table, a text report, a drawing."""

import html
from dataclasses import dataclass

from ..grad_table import Table, format_norm
from .causes import CAUSES

COLUMNS = ["parameter", "shape", "requires_grad", "optimizer", "grad", "grad norm", "moved",
           "cause", "fix"]
MAX_NAMES = 8


@dataclass(frozen=True)
class ParamReport:
    """One parameter (or extra tensor) after the diagnosed step."""

    name: str
    shape: tuple
    requires_grad: bool
    optimizer: str  # "lr 0.1" (held, with its group's lr), "no", or "-" (no optimizer known)
    grad: str  # "None", "zeros" or "values"
    grad_norm: float | None
    moved: bool
    cause: str
    detail: str  # why, in one or two sentences
    fix: str  # what to do, in one sentence

    def row(self):
        shape = "(" + ", ".join(map(str, self.shape)) + ")"
        return [self.name, shape, self.requires_grad, self.optimizer, self.grad,
                format_norm(self.grad_norm), "yes" if self.moved else "no", self.cause, self.fix]


def _names(names):
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


class Diagnosis:
    """What one diagnosed step did to every parameter, and why.

    ``causes``: name -> cause (one of ``CAUSES``); ``params``: name -> :class:`ParamReport`;
    ``error``: ``None`` or the step's error explained in plain words; ``exception``: the error
    itself; ``loss``: the loss value (``None`` after an error); ``notes``: other findings.
    """

    def __init__(self, params, error=None, exception=None, loss=None, notes=(), model=None):
        self.params = dict(params)
        self.causes = {name: p.cause for name, p in self.params.items()}
        self.error = error
        self.exception = exception
        self.loss = loss
        self.notes = list(notes)
        self._model = model

    @property
    def modules(self):
        """``[(module name, class name, its own parameter names)]`` of the model."""
        if self._model is None:
            return []
        return [(name, type(module).__name__,
                 [f"{name}.{p}" if name else p for p, v in module._parameters.items()
                  if v is not None])
                for name, module in self._model.named_modules()]

    def of(self, cause):
        """Names whose cause is ``cause``."""
        if cause not in CAUSES:
            raise ValueError(f"unknown cause {cause!r}; choose one of {', '.join(CAUSES)}")
        return [name for name, c in self.causes.items() if c == cause]

    @property
    def fixes(self):
        """name -> the fix in one sentence."""
        return {name: p.fix for name, p in self.params.items()}

    def table(self):
        """One row per parameter; HTML in Jupyter, text with ``print``."""
        rows = [p.row() for p in self.params.values()]
        notes = (self.error.splitlines() if self.error else []) + self.notes
        return Table(COLUMNS, rows, caption=self.headline(), notes=notes)

    def draw(self):
        """The model's modules as a graph, each coloured by its parameters' causes."""
        from .drawing import draw_modules

        return draw_modules(self)

    def headline(self):
        broken = [n for n, c in self.causes.items() if c != "ok"]
        total = len(self.causes)
        if self.error:
            return (f"The step raised an error (explained below); {len(broken)} of {total} "
                    "parameters did not train.")
        if not broken:
            return f"All {total} parameters got a gradient and the step used it."
        return f"{len(broken)} of {total} parameters will not train as the step stands."

    def groups(self):
        """``[(cause, detail, fix, names)]`` in ``CAUSES`` order, for the report."""
        grouped = {}
        for p in self.params.values():
            grouped.setdefault((CAUSES.index(p.cause), p.detail, p.fix), []).append(p.name)
        return [(CAUSES[i], detail, fix, names)
                for (i, detail, fix), names in sorted(grouped.items(), key=lambda kv: kv[0][0])]

    def __str__(self):
        lines = [self.headline()]
        if self.loss is not None:
            lines.append(f"loss: {self.loss:.4g}")
        for cause, detail, fix, names in self.groups():
            lines.append(f"{cause} ({len(names)}): {_names(names)}")
            if cause != "ok":
                lines += [f"  why: {detail}", f"  fix: {fix}"]
        if self.error:
            lines += ["", "The step raised an error:", self.error]
        lines += self.notes
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        parts = [f"<p><b>{html.escape(self.headline())}</b></p><ul>"]
        for cause, detail, fix, names in self.groups():
            if cause == "ok":
                parts.append(f"<li><b>ok</b> ({len(names)}): {html.escape(_names(names))}</li>")
            else:
                parts.append(f"<li><b>{cause}</b> ({len(names)}): {html.escape(_names(names))}"
                             f"<br>why: {html.escape(detail)}<br>fix: {html.escape(fix)}</li>")
        parts.append("</ul>")
        return "".join(parts) + self.table()._repr_html_()
