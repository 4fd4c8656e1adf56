"""Truth tables: the outcome of every option combination of a mechanism, as one static table."""

from .grad_table import Table
from .registry import cached_outcome, get_mechanism
from .toy import PARAM_NAMES


def outcome_cells(outcome):
    """Per parameter: grad state, plus '*' when the step changed it; then the error kind."""
    cells = []
    for name in PARAM_NAMES:
        p = outcome.params[name]
        cells.append(p.grad + (" *" if p.changed else ""))
    cells.append(outcome.error.kind + ": " + outcome.error.message[:60] if outcome.error else "")
    return cells


def truth_table(mechanism):
    """Every combination of ``mechanism``'s options against what happened to each parameter."""
    mechanism = get_mechanism(mechanism)
    option_names = [o.name for o in mechanism.options]
    columns = option_names + [f"grad {n}" for n in PARAM_NAMES] + ["error"]
    rows = []
    for combination in mechanism.combinations():
        outcome = cached_outcome(mechanism.name, tuple(combination.items()))
        rows.append([combination[n] for n in option_names] + outcome_cells(outcome))
    caption = (f"{mechanism.name}: grad state of each parameter after one step "
               "(None / zeros / values; * = the step changed it)")
    return Table(columns, rows, caption=caption)
