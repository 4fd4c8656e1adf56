"""Graphs have a text alternative; table colours stay legible without JupyterLab's theme."""

import re

import pytest

from helpers import graph
from helpers.grad_table import CSS
from helpers.registry import MECHANISMS, get_mechanism, run

get_mechanism("control")  # registers every mechanism


def none_params(outcome):
    """Parameter names whose .grad is None after the step, read from the outcome itself."""
    return [name for name, p in outcome.params.items() if p.grad == "None"]


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_graph_svg_says_in_words_which_grads_are_none(name, require_tool):
    require_tool("dot")
    outcome = run(name)
    view = graph.draw(outcome)
    svg = view.svg
    opening = svg[:svg.index(">") + 1]
    assert 'role="img"' in opening
    label = re.search(r'aria-label="([^"]*)"', opening).group(1)
    assert svg[len(opening):].lstrip().startswith(f"<title>{label}</title>")
    missing = none_params(outcome)
    if missing:
        listed = label.split("grad None for ", 1)[1]
        for param in missing:
            assert param in listed, (param, label)
    else:
        assert "grad None" not in label
    for param in set(outcome.params) - set(missing):
        assert param in label.split("grad None for")[0]


def test_outline_carries_the_same_words_when_dot_is_missing(monkeypatch):
    monkeypatch.setattr(graph, "dot_available", lambda: False)
    outcome = run("detach", cut="l1")
    html = graph.draw(outcome).html()
    assert "<pre aria-label=" in html and "grad None for l1.weight" in html


def hex_to_luminance(colour):
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a, b):
    high, low = sorted([hex_to_luminance(a), hex_to_luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def fallback(value):
    """The colour used where a CSS variable is undefined (Colab, Voila, nbviewer)."""
    value = value.replace("!important", "").strip()
    match = re.fullmatch(r"var\(--[\w-]+,\s*(#[0-9a-fA-F]{6})\)", value)
    return match.group(1) if match else value


def rules(css):
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", css.replace("<style>", "")):
        props = dict(p.split(":", 1) for p in body.split(";") if ":" in p)
        yield selector.strip(), {k.strip(): v.strip() for k, v in props.items()}


def test_every_background_comes_with_a_text_colour_that_contrasts():
    checked = 0
    for selector, props in rules(CSS):
        if "background" not in props:
            continue
        assert "color" in props, f"{selector}: a background without a text colour"
        bg, fg = fallback(props["background"]), fallback(props["color"])
        assert contrast(bg, fg) >= 4.5, f"{selector}: {fg} on {bg} is {contrast(bg, fg):.2f}:1"
        checked += 1
    assert checked >= 4
    panel = dict(p.split(":", 1) for p in graph.PANEL_STYLE.split(";"))
    assert contrast(panel["background"].strip(), "#000000") >= 4.5  # graphviz draws black text
