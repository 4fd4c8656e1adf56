"""The bug lab (notebook 11_debugging): plant a bug, see the gradient doctor's table and graph.

A dropdown of the bugs in :mod:`helpers.bugs`; each choice plants that bug into a fresh small
residual network, runs :func:`helpers.doctor.diagnose` on its step, and shows the bug's code,
the doctor's table and its module graph. Diagnoses are cached (the steps are deterministic), so
going back to a bug is instant. Tests drive it with ``lab.pick(name)`` or
``lab.control.value = name``.
"""

import html
from functools import lru_cache

import ipywidgets as widgets

from . import bugs
from .grad_table import Table


@lru_cache(maxsize=None)
def diagnosis_of(name):
    """The doctor's :class:`~helpers.doctor.report.Diagnosis` of bug ``name``'s step."""
    from .doctor import diagnose

    planted = bugs.plant(name)
    return diagnose(planted.model, planted.step, planted.optimizer, tensors=planted.tensors)


@lru_cache(maxsize=None)
def render(name):
    """(code HTML, table HTML, graph HTML) for bug ``name``."""
    item = bugs.get_bug(name)
    diagnosis = diagnosis_of(name)
    fix = (f"<p><b>Fix:</b> <code>{html.escape(item.fix)}</code></p>" if item.fix
           else "<p>Nothing to fix: this is the correct step.</p>")
    code = (f"<details><summary>The step with this bug (<code># BUG</code> marks the line)"
            f"</summary><pre>{html.escape(bugs.source(name))}</pre></details>{fix}")
    return code, diagnosis.table()._repr_html_(), diagnosis.draw().html()


class BugLab(widgets.VBox):
    """A bug dropdown above the bug's code, the doctor's table and its module graph."""

    def __init__(self, bug="frozen"):
        bugs.get_bug(bug)  # a clear error for an unknown name
        choices = [(item.label, name) for name, item in bugs.BUGS.items()]
        self.control = widgets.Dropdown(options=choices, value=bug, description="bug",
                                        style={"description_width": "initial"},
                                        layout=widgets.Layout(width="max-content"))
        self.hook = widgets.HTML()
        self.code = widgets.HTML()
        self.table = widgets.HTML()
        self.graph = widgets.HTML()
        super().__init__([self.hook, self.control, self.code, self.table, self.graph])
        self.add_class("gfl-bug-lab")
        self.control.observe(lambda _: self.refresh(), names="value")
        self.refresh()

    @property
    def bug(self):
        return self.control.value

    def diagnosis(self):
        """The diagnosis the lab shows now."""
        return diagnosis_of(self.bug)

    def pick(self, name):
        """Choose bug ``name`` as a learner would; the views redraw."""
        bugs.get_bug(name)
        self.control.value = name

    def refresh(self):
        # data-gfl-bug: which bug the lab shows (for tests that read the page).
        self.hook.value = (f'<span data-gfl-bug="{html.escape(self.bug)}"><b>Bug lab</b> '
                           "&mdash; pick a bug; the doctor's table and module graph "
                           "follow.</span>")
        self.code.value, self.table.value, self.graph.value = render(self.bug)

    def __repr__(self):
        return f"BugLab(bug={self.bug!r})"


def bug_lab(bug="frozen"):
    """A :class:`BugLab` starting at bug ``bug``."""
    return BugLab(bug)


def bug_table():
    """Every bug of the catalogue: what the doctor says (parameters not ``ok``) and the fix."""
    rows = []
    for name, item in bugs.BUGS.items():
        diagnosis = diagnosis_of(name)
        broken = {}
        for pname, cause in diagnosis.causes.items():
            if cause != "ok":
                broken.setdefault(cause, []).append(pname)
        said = "; ".join(f"{cause}: {', '.join(names)}" for cause, names in broken.items())
        said = said or "all ok"
        if diagnosis.exception is not None:
            said += f"; the step raised {type(diagnosis.exception).__name__}"
        rows.append([item.label, said, item.fix or "-"])
    return Table(["bug", "the doctor says", "fix"], rows,
                 caption="Every bug of the catalogue, diagnosed")


class Case:
    """One bug for the notebook: its code, the doctor's report, the fix and the report after it.

    ``diagnosis`` and ``fixed`` are the doctor's :class:`~helpers.doctor.report.Diagnosis` of
    the step with the bug and of the same step with the ``# BUG`` line replaced by the fix.
    """

    def __init__(self, name):
        from .doctor import diagnose

        self.bug = bugs.get_bug(name)
        self.diagnosis = diagnosis_of(name)
        planted = bugs.plant(name, fixed=True)
        self.fixed = diagnose(planted.model, planted.step, planted.optimizer,
                              tensors=planted.tensors)

    def broken(self):
        """``{name: cause}`` of what the doctor says will not train (with the bug)."""
        return {n: c for n, c in self.diagnosis.causes.items() if c != "ok"}

    def __repr__(self):
        lines = [bugs.source(self.bug.name), "", "The doctor says:"]
        lines += ["  " + line for line in str(self.diagnosis).splitlines()]
        lines += ["", f"The fix, in place of the # BUG line:  {self.bug.fix}",
                  f"After the fix: {self.fixed.headline()}"]
        return "\n".join(lines)


def case(name):
    """A :class:`Case`: bug ``name``, diagnosed before and after its one-line fix."""
    return Case(name)


def causes_table():
    """The doctor's causes in the order it tries them, with what each means and its fix."""
    from .doctor import CAUSES, FIX, MEANING

    return Table(["cause", "meaning", "fix"], [[c, MEANING[c], FIX[c]] for c in CAUSES],
                 caption="The causes, first that applies wins")
