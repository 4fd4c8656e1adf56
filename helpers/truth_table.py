"""Truth tables: the outcome of every option combination of a mechanism, as one static table,
and, for a large one, its distinct outcomes (:func:`outcome_groups`)."""

import itertools

from .grad_table import Table
from .registry import cached_outcome, get_mechanism
from .toy import PARAM_NAMES


def outcome_cells(outcome):
    """Per parameter: grad state, plus '*' when the step changed it; then the error kind."""
    cells = []
    for name in PARAM_NAMES:
        p = outcome.params[name]
        cells.append(p.grad + (" *" if p.changed else ""))
    cells.append(f"{outcome.error.kind}: {outcome.error.message}" if outcome.error else "")
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


# --- a large truth table, one row per distinct outcome ------------------------------------

def _box(mechanism, combinations):
    """Per option, the values that occur in ``combinations``, in declaration order."""
    return {o.name: [v for v in o.choices if any(c[o.name] == v for c in combinations)]
            for o in mechanism.options}


def _box_text(mechanism, box, skip=()):
    """``box`` in words: each option whose values are not all of its choices."""
    parts = [f"{name}={' or '.join(map(str, values))}" for name, values in box.items()
             if name not in skip and len(values) < len(mechanism.option(name).choices)]
    return ", ".join(parts)


def _key(combination):
    return tuple(combination.items())


def which(mechanism, combinations):
    """The set ``combinations`` of ``mechanism``'s options in words. One combination: the
    options it changes from the defaults. Several: exactly, when the set is a box (some values
    of each option, every mix of them), or a box less a box; else "e.g." and its first member.
    An option not named takes any value."""
    mechanism = get_mechanism(mechanism)
    if len(combinations) == 1:
        changed = [f"{k}={v}" for k, v in combinations[0].items() if mechanism.defaults[k] != v]
        return ", ".join(changed) or "defaults"
    box = _box(mechanism, combinations)
    inside = [dict(zip(box, v)) for v in itertools.product(*box.values())]
    members = {_key(c) for c in combinations}
    missing = [c for c in inside if _key(c) not in members]
    text = _box_text(mechanism, box) or "any"
    if not missing:
        return text
    hole = _box(mechanism, missing)
    if len(list(itertools.product(*hole.values()))) == len(missing):
        same = [n for n in box if hole[n] == box[n]]
        return f"{text}, but not all of: {_box_text(mechanism, hole, skip=same)}"
    return "e.g. " + which(mechanism, combinations[:1])


def outcome_groups(name):
    """Every combination of ``name``'s options grouped by outcome (grad states, what the step
    moved, the error in full): each outcome once, with how many combinations lead to it and
    which ones (:func:`which`)."""
    mechanism = get_mechanism(name)
    groups = {}
    for combination in mechanism.combinations():
        outcome = cached_outcome(mechanism.name, tuple(combination.items()))
        groups.setdefault(tuple(outcome_cells(outcome)), []).append(combination)
    columns = ["combinations", "which"] + [f"grad {n}" for n in PARAM_NAMES] + ["error"]
    body = [[len(members), which(mechanism, members), *cells]
            for cells, members in groups.items()]
    total = sum(len(members) for members in groups.values())
    return Table(columns, body, caption=f"{name}: {total} combinations, {len(groups)} distinct "
                                        "outcomes (* = the step changed it; an option "
                                        "\"which\" does not name takes any value)")
