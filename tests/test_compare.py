"""helpers.compare (notebook 08): the matrix, small multiples, grouped views, decision guide.

Expected values are computed here with plain PyTorch: saved bytes with our own
saved_tensors_hooks, graph sizes by walking grad_fn, BatchNorm/Dropout by running them.
"""

import contextlib
from pathlib import Path

import pytest
import torch
from torch import nn

import helpers
from helpers import compare
from helpers.registry import MECHANISMS, Mechanism

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("l1.weight", "l1.bias", "l2.weight", "l2.bias")


def plain_net():
    torch.manual_seed(0)
    return nn.Linear(4, 3), nn.Linear(3, 1)


def plain_batch():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(8, 4, generator=generator), torch.randn(8, 1, generator=generator)


def plain_forward(kind):
    """One forward + loss of the toy net, written out, for a few matrix rows.

    Returns (loss, l1, l2, bytes saved for backward beyond the weights)."""
    l1, l2 = plain_net()
    x, y = plain_batch()
    if kind == "frozen_l1":
        l1.requires_grad_(False)
    if kind == "frozen_l2":
        l2.requires_grad_(False)
    weights = {p.untyped_storage().data_ptr() for p in [*l1.parameters(), *l2.parameters()]}
    saved = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in weights:
            saved[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        context = torch.no_grad() if kind in ("no_grad_l1", "no_grad_all") else \
            contextlib.nullcontext()
        with context:
            h = torch.relu(l1(x))
        if kind == "detach_l1":
            h = h.detach()
        with torch.no_grad() if kind == "no_grad_all" else contextlib.nullcontext():
            out = l2(h)
        loss = nn.functional.mse_loss(out, y)
    return loss, l1, l2, sum(saved.values())


def node_names(loss):
    """The backward nodes reachable from ``loss``, by type name, sorted (walked here)."""
    stack, seen = [loss.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack += [fn for fn, _ in node.next_functions]
    return sorted(type(node).__name__ for node in seen)


ROWS = {  # matrix label -> plain forward kind
    "control": "plain",
    "requires_grad (frozen=l1)": "frozen_l1",
    "requires_grad (frozen=l2)": "frozen_l2",
    "detach": "detach_l1",
    "no_grad": "no_grad_l1",
    "no_grad (no_grad_over=all)": "no_grad_all",
}


@pytest.mark.parametrize("label", ROWS)
def test_matrix_rows_match_plain_pytorch(label):
    loss, l1, l2, saved = plain_forward(ROWS[label])
    assert compare.matrix_entry(label, "saved bytes") == str(saved)
    if loss.grad_fn is None:
        assert compare.matrix_entry(label, "graph built") == "no"
        assert "does not require grad" in compare.matrix_entry(label, "error")
        return
    assert compare.matrix_entry(label, "graph built") == f"yes ({len(node_names(loss))} nodes)"
    loss.backward()
    for name, p in zip(NAMES, [l1.weight, l1.bias, l2.weight, l2.bias]):
        assert compare.matrix_entry(label, f"grad {name}") == ("None" if p.grad is None
                                                               else "values")


def test_saved_bytes_by_hand():
    floats = 4
    assert compare.matrix_entry("control", "saved bytes") == str((8 * 4 + 8 * 3 + 8 + 8) * floats)
    # detach after the forward's first layer still pays for L1: same bytes as the plain step
    assert compare.matrix_entry("detach", "saved bytes") == compare.matrix_entry(
        "control", "saved bytes")
    assert compare.matrix_entry("no_grad", "saved bytes") == str((8 * 3 + 8 + 8) * floats)


def test_only_the_last_forward_of_a_step_is_counted():
    # zero_grad runs 2 forwards, optimizer_subsets 6: each forward alone saves 288 bytes.
    assert compare.matrix_entry("zero_grad", "saved bytes") == "288"
    assert compare.matrix_entry("optimizer_subsets", "saved bytes") == "288"


def test_rows_come_from_the_registry():
    labels = compare.matrix().column("mechanism")
    defaults = {label for label in labels if "(" not in label and label != "model.eval()"}
    compared = {name for name, m in MECHANISMS.items() if m.in_comparison}
    assert defaults == compared - {"playground"}
    assert labels[0] == "control" and labels[-1] == "model.eval()"
    for name, variants in compare.VARIANTS.items():
        assert len([lb for lb in labels if lb.startswith(name + " (")]) == len(variants)


def test_only_mechanisms_in_the_comparison_get_rows():
    inside = Mechanism(name="test-switch", title="t", step=lambda ctx: None, notebook="99_x")
    outside = Mechanism(name="test-explorer", title="t", step=lambda ctx: None,
                        notebook="99_x", in_comparison=False)
    MECHANISMS.update({inside.name: inside, outside.name: outside})
    try:
        names = [row.mechanism for row in compare.rows()]
    finally:
        del MECHANISMS[inside.name], MECHANISMS[outside.name]
    assert inside.name in names and outside.name not in names


def test_moves_and_errors_match_the_registry_outcomes():
    table = compare.matrix()
    for row in compare.rows():
        if row.eval_mode:
            continue
        outcome = helpers.run(row.mechanism, **dict(row.options))
        cells = table.rows[table.column("mechanism").index(row.label)]
        moved = [n for n in NAMES if outcome.params[n].changed]
        expected = "all" if len(moved) == 4 else ", ".join(moved) or "none"
        assert cells[table.columns.index("step moves")] == expected
        assert bool(cells[-1]) == (outcome.error is not None)


def plain_dropout_batchnorm(eval_mode, grad_mode):
    """BatchNorm + Dropout after a Linear, in plain PyTorch: (BN stats updated, dropped)."""
    torch.manual_seed(0)
    norm, drop = nn.BatchNorm1d(3, affine=False), nn.Dropout(0.5)
    layer = nn.Linear(4, 3)
    if eval_mode:
        norm.eval()
        drop.eval()
    x, _ = plain_batch()
    with grad_mode():
        h = norm(layer(x))
        out = drop(h)
    return int(norm.num_batches_tracked) > 0, not torch.equal(out, h)


@pytest.mark.parametrize("grad_mode", [contextlib.nullcontext, torch.no_grad,
                                       torch.inference_mode])
def test_gradient_control_leaves_dropout_and_batchnorm_alone(grad_mode):
    assert plain_dropout_batchnorm(False, grad_mode) == (True, True)
    assert plain_dropout_batchnorm(True, grad_mode) == (False, False)
    column = compare.matrix().column("Dropout / BatchNorm")
    labels = compare.matrix().column("mechanism")
    control = column[labels.index("control")]
    assert control == "BN stats updated, Dropout dropping"
    assert all(c == control for c, lb in zip(column, labels) if lb != "model.eval()")
    assert column[labels.index("model.eval()")] == "BN stats untouched, Dropout off"


def test_eval_row_still_builds_the_graph():
    assert compare.matrix_entry("model.eval()", "graph built") == compare.matrix_entry(
        "control", "graph built")
    assert compare.matrix_entry("model.eval()", "step moves") == "all"


def test_unknown_row_names_the_valid_ones():
    with pytest.raises(ValueError, match="rows: control"):
        compare.matrix_entry("freeze", "saved bytes")


def test_small_multiples_mark_pruned_nodes():
    diagrams = compare.small_multiples().diagrams
    assert len(diagrams) == len(compare.rows()) - 1  # every row but model.eval()
    by_title = {d.title: d for d in diagrams}
    assert "pruned" not in repr(by_title["control"])
    # Plain PyTorch: the graph without L1 lacks L1's Addmm, its weight's T, the ReLU and two
    # AccumulateGrads; frozen L2 keeps its Addmm (gradient flows through) but not its T.
    loss, *_ = plain_forward("no_grad_l1")
    control, *_ = plain_forward("plain")

    missing = node_names(control)
    for name in node_names(loss):
        missing.remove(name)
    note = compare.pruned(by_title["no_grad"], by_title["control"])
    assert sorted(note.replace(" x2", "").split(", ")) == sorted(set(missing))
    assert "AddmmBackward0" not in compare.pruned(by_title["requires_grad (frozen=l2)"],
                                                  by_title["control"])
    assert any(n.name == "pruned" for n in compare.marked(by_title["no_grad"],
                                                          by_title["control"]).nodes)


def test_small_multiples_render_to_svg(require_tool):
    require_tool("dot")
    import re

    multiples = compare.small_multiples(scale=0.5)
    tiles = multiples._repr_html_()
    assert tiles.count("<svg") == len(compare.rows()) - 1 and "pruned vs control" in tiles
    # every tile is the graph's own SVG at half its size, proportions kept
    full = helpers.graph.GraphView([multiples.diagrams[0]]).svg
    w, h = map(float, re.search(r'<svg width="([0-9.]+)pt" height="([0-9.]+)pt"', full).groups())
    assert f'<svg width="{w / 2:.0f}pt" height="{h / 2:.0f}pt"' in tiles


def test_outcome_groups_cover_every_combination_once():
    table = compare.outcome_groups("playground")
    assert sum(int(c) for c in table.column("combinations")) == 3 * 2 * 2 * 2 * 3 * 2
    assert len(set(map(tuple, table.rows))) == len(table.rows)
    first = table.rows[0]
    assert first[:2] == ["1", "defaults"] and first[2:6] == ["values *"] * 4


def test_filtered_truth_table():
    table = compare.filtered_truth_table("playground", inference="no", edit="none")
    assert len(table.rows) == 3 * 2 * 2 * 3
    assert "inference" not in table.columns and "freeze" in table.columns
    with pytest.raises(ValueError, match="valid choices"):
        compare.filtered_truth_table("playground", inference="maybe")


def test_decision_guide_links_to_existing_notebooks():
    guide = compare.decision_guide()
    notebooks = {m.notebook for m in MECHANISMS.values()}
    for advice in compare.DECISION_GUIDE:
        slug = advice.notebook.slug
        assert slug in notebooks
        assert (ROOT / "notebooks" / "sources" / f"{slug}.py").exists()
        assert (ROOT / "notebooks" / f"{slug}.ipynb").exists()
        assert f'<a href="{slug}.ipynb">{slug}</a>' in guide._repr_html_()
        assert f"{slug}.ipynb" in repr(guide)
    assert "Which one should I use?" in repr(guide)


def test_rows_name_the_notebook_that_teaches_them():
    for row in compare.rows():
        expected = "04_no_grad" if row.eval_mode else MECHANISMS[row.mechanism].notebook
        assert row.notebook.slug == expected
        assert (ROOT / "notebooks" / row.notebook.file).exists()
    assert compare.rows()[-1].notebook.file == "04_no_grad.ipynb"     # model.eval()


def test_a_step_without_a_loss_has_no_graph():
    """inference_mode at its defaults: L2's forward refuses L1's inference output, so there is
    no loss, and nothing was saved: L1 ran unrecorded and L2 raised while saving its input."""
    l1, l2 = plain_net()
    x, _ = plain_batch()
    with torch.inference_mode():
        h = torch.relu(l1(x))
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        l2(h)
    assert compare.matrix_entry("inference_mode", "graph built") == "no (no loss)"
    assert compare.matrix_entry("inference_mode", "saved bytes") == "0"
