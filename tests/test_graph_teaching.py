"""Graphs that teach (issue 12): titles in words, layers named, what was recorded but cut off
drawn greyed, frozen parameters marked, a one-line legend, text large enough in 08's tiles.

Expectations come from PyTorch itself (a fresh toy net run by hand, walked with
helpers.autograd_walk), not from the drawing code under test.
"""

import copy
import re
from collections import Counter

import pytest
import torch

import helpers
from helpers import graph
from helpers.autograd_walk import backward_nodes, count_nodes, reachable_leaves
from helpers.compare import small_multiples
from helpers.graph import STYLE_CUT, STYLE_GRAD, STYLE_NONE, STYLE_NOTE, diagram, draw
from helpers.registry import MECHANISMS, Mechanism, Option, get_mechanism, run
from helpers.toy import toy_batch, toy_loss, toy_net

get_mechanism("control")  # registers every mechanism

# The three steps the issue says drew the same picture: L1 frozen, cut after L1, L1 not recorded.
THREE = {"frozen": ("requires_grad", {"frozen": "l1"}),
         "detach": ("detach", {"cut": "l1"}),
         "no_grad": ("no_grad", {"no_grad_over": "l1"})}


def untitled(name):
    """The drawing of one of THREE without its title: what is left is the picture itself."""
    mechanism, options = THREE[name]
    return diagram(run(mechanism, **options))


def first_words(label):
    return label.split("\n")[0]


def cut_nodes(item):
    return [n for n in item.nodes if n.style == STYLE_CUT]


def frozen_marks(item):
    return [n for n in item.nodes if "frozen: requires_grad=False" in n.label]


def param_label(item, name):
    (node,) = [n for n in item.nodes if n.label.startswith(name + " (")]
    return node.label


def by_hand(frozen=False, cut=False, no_grad=False):
    """The toy step's forward done here, not by a mechanism: (net, L1's output, loss)."""
    net, (x, y) = toy_net(), toy_batch()
    if frozen:
        net.l1.requires_grad_(False)
    with torch.set_grad_enabled(not no_grad):
        hidden = net.l1(x)
    loss = toy_loss(net.l2(torch.relu(hidden.detach() if cut else hidden)), y)
    return net, hidden, loss


# --- the "Done when" test: three mechanisms, three pictures -----------------------------------

def test_frozen_detach_and_no_grad_draw_three_different_pictures():
    items = {name: untitled(name) for name in THREE}
    outlines = {name: item.outline() for name, item in items.items()}
    sources = {name: "\n".join(item.dot_lines("")) for name, item in items.items()}
    summaries = {name: item.summary() for name, item in items.items()}
    for a, b in [("frozen", "detach"), ("frozen", "no_grad"), ("detach", "no_grad")]:
        assert outlines[a] != outlines[b], (a, b)
        assert sources[a] != sources[b], (a, b)
        assert summaries[a] != summaries[b], (a, b)


def test_detach_draws_what_l1_recorded_greyed_and_cut_off():
    _, hidden, loss = by_hand(cut=True)
    in_loss = set(backward_nodes(loss))
    expected = Counter(type(n).__name__ for n in backward_nodes(hidden) if n not in in_loss)
    assert expected["AddmmBackward0"] == 1 and expected["AccumulateGrad"] == 2  # L1's part

    item = untitled("detach")
    cut = cut_nodes(item)
    drawn = Counter(first_words(n.label).removeprefix("L1 ") for n in cut)
    assert drawn == expected
    (layer,) = [n for n in cut if n.label.startswith("L1 AddmmBackward0")]
    assert "recorded, cut off" in layer.label
    # Dotted edges join the cut-off nodes and lead from l1's parameters into them.
    names = {n.name: n for n in item.nodes}
    source = "\n".join(item.dot_lines(""))
    dotted = re.findall(r"^(\w+) -> (\w+) \[style=dotted", source, re.M)
    assert {b for _, b in dotted} == {n.name for n in cut}
    sources_of_dotted = {first_words(names[a].label).split()[0] for a, _ in dotted}
    assert {"l1.weight", "l1.bias"} <= sources_of_dotted
    assert not frozen_marks(item)
    assert "Recorded but cut off from the loss: L1 AddmmBackward0" in item.summary()


def test_frozen_marks_its_parameters_and_draws_nothing_cut_off():
    net, hidden, _ = by_hand(frozen=True)
    assert hidden.grad_fn is None  # L1 recorded nothing: nothing can be cut off
    expected = {n for n, p in net.named_parameters() if not p.requires_grad}
    item = untitled("frozen")
    assert not cut_nodes(item)
    marked = {first_words(n.label).split()[0] for n in frozen_marks(item)}
    assert marked == expected == {"l1.weight", "l1.bias"}
    notes = [n.label for n in item.nodes if n.style == STYLE_NOTE]
    assert notes == ["L1 ran, recorded nothing:\nnothing it used requires grad"]


def test_no_grad_draws_neither_cut_off_nodes_nor_frozen_marks():
    net, hidden, _ = by_hand(no_grad=True)
    assert hidden.grad_fn is None and all(p.requires_grad for p in net.parameters())
    item = untitled("no_grad")
    assert not cut_nodes(item) and not frozen_marks(item)
    notes = [n.label for n in item.nodes if n.style == STYLE_NOTE]
    assert notes == ["L1 ran, recorded nothing:\ngrad mode was off"]


# A reentrant checkpoint gives l1 gradients through a recomputed graph that is not the loss's:
# "not in graph" there, and yet a grad. A frozen L2 is in the graph, its parameters are not.
NOT_IN_GRAPH_CASES = [*THREE.values(), ("checkpoint", {"use_reentrant": True, "input_grad": "yes"}),
                      ("requires_grad", {"frozen": "l2"})]


@pytest.mark.parametrize("mechanism, options", NOT_IN_GRAPH_CASES)
def test_not_in_graph_means_no_accumulate_grad_node_in_the_loss_graph(mechanism, options):
    outcome = run(mechanism, **options)
    leaves = reachable_leaves(outcome.loss)
    item = diagram(outcome)
    for param, tensor in outcome.tensors.items():
        has_node = any(tensor is leaf for leaf in leaves)
        assert ("(not in graph)" in param_label(item, param)) == (not has_node), param
    if mechanism == "checkpoint":  # the case that tells "not in graph" from "grad None"
        assert outcome.params["l1.weight"].grad == "values"
        assert "(not in graph)" in param_label(item, "l1.weight")


def test_svg_text_alternative_mentions_the_cut_off_part(require_tool):
    require_tool("dot")
    svg = draw(run("detach", cut="l1")).svg
    label = re.search(r'aria-label="([^"]*)"', svg[:svg.index(">") + 1]).group(1)
    assert "cut off from the loss: L1 AddmmBackward0" in label
    assert f"<title>{label}</title>" in svg


# --- layer labels ----------------------------------------------------------------------------

def test_control_graph_names_each_linear_layer_at_its_place():
    outcome = run("control")
    # Two matmuls in the loss's graph, per PyTorch: both must carry their layer's name.
    assert count_nodes(outcome.loss, kind="AddmmBackward0") == 2
    lines = diagram(outcome).outline().splitlines()
    bare = [line for line in lines if line.strip("<- ").startswith("AddmmBackward0")]
    assert not bare
    # L2 feeds the loss; L1 feeds the ReLU, which feeds L2: their depths in the outline say so.
    depth = {line.strip("<- "): (len(line) - len(line.lstrip())) // 2 for line in lines}
    assert depth["MseLossBackward0"] == 1 and depth["L2 AddmmBackward0"] == 2
    assert depth["ReluBackward0"] == 3 and depth["L1 AddmmBackward0"] == 4


def test_layer_hooks_are_removed_after_the_step_even_when_it_raises():
    nets = []

    def step(ctx, fail="no"):
        nets.append(ctx.net)
        copy.deepcopy(ctx.net)(ctx.x)              # a copy's calls are not the net's layers'
        ctx.loss_of(ctx.net(ctx.x)).backward()
        if fail == "yes":
            raise RuntimeError("planted")

    mechanism = Mechanism(name="test-hooks", title="t", step=step,
                          options=(Option("fail", {"no": "no", "yes": "yes"}, "no"),))
    for fail in ("no", "yes"):
        outcome = mechanism.run(fail=fail)
        assert [c.layer for c in outcome.recorded] == ["L1", "L2"]
    for net in nets:
        assert all(not m._forward_hooks for m in net.modules())


def test_an_earlier_pass_whose_backward_ran_is_not_drawn_as_cut_off():
    def two_passes(ctx):
        ctx.loss_of(ctx.net(ctx.x)).backward()   # a warm-up pass, its backward ran
        ctx.loss_of(ctx.net(ctx.x)).backward()

    def unused_output(ctx):
        ctx.net.l1(ctx.x)                          # recorded, never used, no backward
        ctx.loss_of(ctx.net(ctx.x)).backward()

    assert not cut_nodes(diagram(Mechanism(name="t2", title="t", step=two_passes).run()))
    item = diagram(Mechanism(name="t3", title="t", step=unused_output).run())
    assert [first_words(n.label) for n in cut_nodes(item) if "cut off" in n.label] == [
        "L1 AddmmBackward0"]


# --- titles ----------------------------------------------------------------------------------

def test_titles_are_the_mechanisms_descriptions(monkeypatch):
    def step(ctx, size="small"):
        ctx.loss_of(ctx.net(ctx.x)).backward()

    size = Option("size", {"small": "small", "big": "big"}, "small")
    captioned = Mechanism(name="test-captioned", title="t", step=step, options=(size,),
                          caption=lambda o: f"a {o['size']} step in words")
    monkeypatch.setitem(MECHANISMS, captioned.name, captioned)
    outline = repr(draw(run(captioned.name, size="big")))
    assert outline.splitlines()[0] == "a big step in words"
    for name, options in [("control", {}), *THREE.values()]:
        expected = get_mechanism(name).describe(**options)
        assert repr(draw(run(name, **options))).splitlines()[0] == expected
    # A mechanism that is not registered keeps "name: option=value".
    plain = Mechanism(name="test-unregistered", title="t", step=step, options=(size,))
    assert repr(draw(plain.run(size="big"))).splitlines()[0] == "test-unregistered: size=big"


# --- legend ----------------------------------------------------------------------------------

def test_legend_is_one_line_under_the_explorer_graph_and_true_of_the_drawing():
    legend = graph.LEGEND
    assert "\n" not in legend and "not in graph" in legend and "AccumulateGrad" in legend
    assert all(word in legend for word in ("Blue", "Grey dashed", "Dotted grey", "Arrows"))
    explorer = helpers.explore("detach")
    assert explorer.graph.value.count(graph.legend_html()) == 1
    assert "<br" not in graph.legend_html()
    shown = helpers.graph_legend()  # for a notebook cell under a static graph
    assert repr(shown) == legend and shown._repr_html_() == graph.legend_html()
    outcome = run("control", input_grad="yes")
    item = diagram(outcome)
    names = {n.name: n for n in item.nodes}
    # "Arrows point from inputs to the loss": nothing leaves the loss node.
    (loss,) = [n.name for n in item.nodes if n.label.startswith("loss ")]
    assert loss in {b for _, b in item.edges} and loss not in {a for a, _ in item.edges}
    # "Blue: gets a gradient" / "Grey dashed: .grad is None", for every node so coloured.
    grads = {name: p.grad for name, p in outcome.params.items()}
    net, (x, y) = toy_net(), toy_batch()
    toy_loss(net(x.requires_grad_(True)), y).backward()   # the same step by hand: x gets a grad
    grads["leaf"] = "None" if x.grad is None else "values"
    for node in names.values():
        word = first_words(node.label).split()[0]
        if node.style == STYLE_GRAD:
            assert grads[word] != "None", node.label
        if node.style == STYLE_NONE:
            assert grads[word] == "None", node.label
    assert sum(n.style == STYLE_GRAD for n in item.nodes) == 5  # four parameters and x


def test_graphs_that_are_not_loss_graphs_carry_no_legend():
    view = graph.GraphView([diagram(run("control"))])
    assert graph.legend_html() not in view.html()


# --- text size in notebook 08's small multiples ----------------------------------------------

SVG_OPEN = re.compile(r'<svg width="([0-9.]+)pt" height="[0-9.]+pt"\s+viewBox="[0-9.]+ [0-9.]+ '
                      r'([0-9.]+) [0-9.]+"')


def smallest_text_px(svg):
    """The smallest font size an SVG from graphviz shows at 100 % zoom, in CSS px.

    graphviz writes sizes in pt in the viewBox's units; the width attribute (pt) over the
    viewBox width is the scale, and a CSS pt is 96/72 px.
    """
    width_pt, viewbox_width = map(float, SVG_OPEN.search(svg).groups())
    sizes = [float(s) for s in re.findall(r'font-size="([0-9.]+)"', svg)]
    scale = re.search(r'<g id="graph0" class="graph" transform="scale\(([0-9.]+)', svg)
    inner = float(scale.group(1)) if scale else 1.0
    return min(sizes) * inner * width_pt / viewbox_width * 96 / 72


def test_smallest_text_px_measures_an_svg_as_a_browser_draws_it():
    svg = ('<svg width="300pt" height="10pt"\n viewBox="0.00 0.00 600.00 20.00">'
           '<g id="graph0" class="graph" transform="scale(1 1)"><text font-size="12.00">a</text>'
           '<text font-size="10.00">b</text></g></svg>')
    assert smallest_text_px(svg) == pytest.approx(10 * 0.5 * 96 / 72)


def test_small_multiples_text_is_at_least_11_px(require_tool):
    require_tool("dot")
    page = small_multiples()._repr_html_()
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(svgs) >= 2
    assert min(smallest_text_px(svg) for svg in svgs) >= 11
