"""helpers.compare (notebook 08): the matrix, small multiples, grouped outcomes, decision guide.

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


def nodes(*roots):
    """The backward nodes reachable from ``roots`` (walked here)."""
    stack, seen = [r.grad_fn for r in roots], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack += [fn for fn, _ in node.next_functions]
    return seen


def node_names(*roots):
    """The backward nodes reachable from ``roots``, by type name, sorted."""
    return sorted(type(node).__name__ for node in nodes(*roots))


ROWS = {  # (mechanism, options) of a matrix row -> plain forward kind
    ("control", ()): "plain",
    ("requires_grad", (("frozen", "l1"),)): "frozen_l1",
    ("requires_grad", (("frozen", "l2"),)): "frozen_l2",
    ("detach", ()): "detach_l1",
    ("no_grad", ()): "no_grad_l1",
    ("no_grad", (("no_grad_over", "all"),)): "no_grad_all",
}


def entry(key, column):
    mechanism, options = key
    return compare.matrix_entry(mechanism, column, **dict(options))


@pytest.mark.parametrize("key", ROWS, ids=lambda key: ROWS[key])
def test_matrix_rows_match_plain_pytorch(key):
    loss, l1, l2, saved = plain_forward(ROWS[key])
    assert entry(key, "saved bytes") == str(saved)
    if loss.grad_fn is None:
        assert entry(key, "reachable nodes") == "0"
        with pytest.raises(RuntimeError) as info:
            loss.backward()
        assert entry(key, "error") == f"RuntimeError: {info.value}"  # in full
        return
    nodes = str(len(node_names(loss)))
    if ROWS[key] == "detach_l1":  # L1's recorded output, before the cut: what backward misses
        nodes += "; L1 recorded, cut off"
    assert entry(key, "reachable nodes") == nodes
    loss.backward()
    for name, p in zip(NAMES, [l1.weight, l1.bias, l2.weight, l2.bias]):
        assert entry(key, f"grad {name}") == ("None" if p.grad is None else "values")


def test_detach_leaves_l1_recorded_but_unreachable():
    """Plain PyTorch: L1's output before the cut has a graph of its own that the loss lacks."""
    l1, l2 = plain_net()
    x, y = plain_batch()
    h = l1(x)
    loss = nn.functional.mse_loss(l2(torch.relu(h).detach()), y)
    unreachable = sorted(type(node).__name__ for node in nodes(h) - nodes(loss))
    assert unreachable == ["AccumulateGrad", "AccumulateGrad", "AddmmBackward0", "TBackward0"]
    assert compare.matrix_entry("detach", "reachable nodes").endswith("L1 recorded, cut off")
    for mechanism, options in [("no_grad", {}), ("requires_grad", {"frozen": "l1"})]:
        assert "cut off" not in compare.matrix_entry(mechanism, "reachable nodes", **options)


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
    rows = compare.rows()
    defaults = {r.mechanism for r in rows if r.setting.startswith("defaults (")}
    compared = {name for name, m in MECHANISMS.items() if m.in_comparison}
    assert defaults == compared - {"playground"}
    assert rows[0].mechanism == "control" and len(rows) == len(set(rows))
    for name, variants in compare.VARIANTS.items():
        assert len([r for r in rows if r.mechanism == name]) == len(variants) + 1


def test_defaults_are_labelled_with_every_option_and_variants_with_the_changed_ones():
    row = compare.find_row("zero_grad")
    assert row.setting == "defaults (clear=optimizer, passes=1, optimizer_has=all)"
    assert compare.find_row("optimizer_subsets", params="all",
                            excluded="frozen").setting == "params=all, excluded=frozen"
    assert compare.matrix_entry("detach", "options") == "defaults (cut=l1)"


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
    table = compare.full_matrix()
    for index, row in enumerate(compare.rows()):
        outcome = helpers.run(row.mechanism, **dict(row.options))
        cells = dict(zip(table.columns, table.rows[index]))
        moved = [n for n in NAMES if outcome.params[n].changed]
        expected = "all" if len(moved) == 4 else ", ".join(moved) or "none"
        assert cells["step moves"] == expected
        error = outcome.error
        assert cells["error"] == (f"{error.kind}: {error.message}" if error else "")


def plain_sgd_step():
    """The plain step in plain PyTorch: (grads, parameters after the step)."""
    l1, l2 = plain_net()
    x, y = plain_batch()
    nn.functional.mse_loss(l2(torch.relu(l1(x))), y).backward()
    params = [l1.weight, l1.bias, l2.weight, l2.bias]
    grads = {n: p.grad.clone() for n, p in zip(NAMES, params)}
    torch.optim.SGD(params, lr=0.1).step()
    return grads, {n: p.detach().clone() for n, p in zip(NAMES, params)}


def test_vs_plain_step_says_which_rows_equal_it_bit_for_bit():
    grads, after = plain_sgd_step()
    table = compare.full_matrix()
    column = table.column("vs plain step")
    assert column[0] == compare.PLAIN_STEP
    for row, versus in zip(compare.rows()[1:], column[1:]):
        tensors = helpers.run(row.mechanism, **dict(row.options)).tensors
        same_grads = all(tensors[n].grad is not None and torch.equal(tensors[n].grad, grads[n])
                         for n in NAMES)
        same_update = all(torch.equal(tensors[n].detach(), after[n]) for n in NAMES)
        assert (versus == compare.SAME) == (same_grads and same_update), row
        if versus != compare.SAME:
            assert versus.startswith("differs: ")
            assert ("grads" in versus) == (not same_grads), row
    same = {r.label for r, v in zip(compare.rows(), column) if v == compare.SAME}
    assert same == {"zero_grad: defaults (clear=optimizer, passes=1, optimizer_has=all)",
                    "requires_grad: defaults (frozen=none)"}
    # clipping keeps every grad state of the plain step but not its values
    assert compare.matrix_entry("manual_grad_edits", "vs plain step") == "differs: grads, update"


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
    column = compare.full_matrix().column("Dropout / BatchNorm")
    assert set(column) == {"BN stats updated, Dropout dropping"}


def test_constant_columns_are_left_out_and_named_in_the_caption():
    full, shown = compare.full_matrix(), compare.matrix()
    for column in full.columns:
        values = set(full.column(column))
        if column in ("mechanism", "options") or len(values) > 1:
            assert shown.column(column) == full.column(column)
        else:
            assert column not in shown.columns
            assert f"{column}: {values.pop()}" in shown.caption
    assert "Dropout / BatchNorm" not in shown.columns


def test_unknown_row_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid mechanisms"):
        compare.matrix_entry("freeze", "saved bytes")
    with pytest.raises(ValueError, match="rows: control: defaults"):
        compare.matrix_entry("detach", "saved bytes", cut="l2")
    with pytest.raises(ValueError, match="columns: mechanism"):
        compare.matrix_entry("detach", "graph built")


def tile(diagrams, mechanism, **options):
    return {d.title: d for d in diagrams}[compare.title(compare.find_row(mechanism, **options))]


def test_small_multiples_mark_pruned_nodes():
    diagrams = compare.small_multiples().diagrams
    assert len(diagrams) == len(compare.rows())
    control = tile(diagrams, "control")
    assert not any(n.name == "pruned" for n in control.nodes)
    # Plain PyTorch: the graph without L1 lacks L1's Addmm, its weight's T, the ReLU and two
    # AccumulateGrads; frozen L2 keeps its Addmm (gradient flows through) but not its T.
    loss, *_ = plain_forward("no_grad_l1")
    full, *_ = plain_forward("plain")

    missing = node_names(full)
    for name in node_names(loss):
        missing.remove(name)
    note = compare.pruned(tile(diagrams, "no_grad"), control)
    labels = [label.replace(" x2", "").split(" ")[-1] for label in note.split(", ")]
    assert sorted(labels) == sorted(set(missing))   # a layer's node carries its layer's name
    assert "AddmmBackward0" not in compare.pruned(tile(diagrams, "requires_grad", frozen="l2"),
                                                  control)
    assert any(n.name == "pruned" for n in compare.marked(tile(diagrams, "no_grad"),
                                                          control).nodes)


def test_small_multiples_render_to_svg(require_tool):
    require_tool("dot")
    import re

    multiples = compare.small_multiples(scale=0.5)
    tiles = multiples._repr_html_()
    assert tiles.count("<svg") == len(compare.rows())
    assert compare.NOT_REACHED.split("\n")[0] in tiles
    # every tile is the graph's own SVG at half its size, proportions kept
    full = helpers.graph.GraphView([multiples.diagrams[0]]).svg
    w, h = map(float, re.search(r'<svg width="([0-9.]+)pt" height="([0-9.]+)pt"', full).groups())
    assert f'<svg width="{w / 2:.0f}pt" height="{h / 2:.0f}pt"' in tiles


def test_small_multiples_text_is_at_least_11_px_at_100_percent():
    """Graphviz writes sizes in pt (4/3 px) and node text at 10 pt: the default scale must keep
    it at 11 px or more."""
    assert 10 * compare.small_multiples().scale * 4 / 3 >= 11


def test_outcome_groups_cover_every_combination_once():
    table = compare.outcome_groups("playground")
    assert sum(int(c) for c in table.column("combinations")) == 3 * 2 * 2 * 2 * 3 * 2
    assert len(set(map(tuple, table.rows))) == len(table.rows)
    first = table.rows[0]
    assert first[:2] == ["1", "defaults"] and first[2:6] == ["values *"] * 4


def test_outcome_groups_show_each_error_once_in_full_with_its_count():
    """Counted by hand: inference=yes raises "cannot be saved" unless L2 is frozen (2 of 3
    freeze values x 24 others = 48); L2 frozen with L1 out of the graph (no_grad, inference or
    detach: 7 of 8 mixes) x 3 optimizers x 2 edits = 42 raise "does not require grad"."""
    l1, l2 = plain_net()
    x, _ = plain_batch()
    with torch.inference_mode():
        h = torch.relu(l1(x))
    with pytest.raises(RuntimeError) as inference:
        l2(h)
    l2.requires_grad_(False)
    with pytest.raises(RuntimeError) as nothing:
        nn.functional.mse_loss(l2(h.clone()), torch.zeros(8, 1)).backward()
    table = compare.outcome_groups("playground")
    errors = {row[-1]: (int(row[0]), row[1]) for row in table.rows if row[-1]}
    assert errors == {
        f"RuntimeError: {inference.value}": (48, "freeze=none or l1, inference=yes"),
        f"RuntimeError: {nothing.value}": (42, "freeze=l2, but not all of: no_grad=none, "
                                               "inference=no, detach=none")}


def test_which_names_a_set_exactly_or_says_it_gives_an_example():
    mechanism = helpers.get_mechanism("playground")
    every = list(mechanism.combinations())
    assert compare.which(mechanism, [mechanism.defaults]) == "defaults"
    assert compare.which(mechanism, [c for c in every if c["detach"] == "l1"]) == "detach=l1"
    assert compare.which(mechanism, every) == "any"
    # two single combinations that share no value pattern: not a box, nor a box less a box
    odd = [{**mechanism.defaults, "freeze": "l1"}, {**mechanism.defaults, "detach": "l1"},
           {**mechanism.defaults, "freeze": "l2", "edit": "set_none"}]
    assert compare.which(mechanism, odd) == "e.g. freeze=l1"


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
        assert row.notebook.slug == MECHANISMS[row.mechanism].notebook
        assert (ROOT / "notebooks" / row.notebook.file).exists()


def test_a_step_without_a_loss_has_no_graph():
    """inference_mode at its defaults: L2's forward refuses L1's inference output, so there is
    no loss, and nothing was saved: L1 ran unrecorded and L2 raised while saving its input."""
    l1, l2 = plain_net()
    x, _ = plain_batch()
    with torch.inference_mode():
        h = torch.relu(l1(x))
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        l2(h)
    assert compare.matrix_entry("inference_mode", "reachable nodes") == "no loss"
    assert compare.matrix_entry("inference_mode", "saved bytes") == "0"
