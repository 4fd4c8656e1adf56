"""The "gradient flow" chart: the gradient norm of each layer, first layer to last.

``layer_grad_norms(model)`` reads the norm of every layer's weight gradient after a
``backward()``; ``grad_flow_chart({label: norms, ...})`` draws one line per case on a log scale.
``deep_mlp(case)`` builds the three classic cases of notebook 11_debugging: gradients that
vanish (sigmoid), explode (ReLU, weights too large) or stay level (ReLU, Kaiming init).
"""

import html
import math

import torch
from torch import nn

from .graph import chart_svg_open

CASES = {
    "vanishing": "sigmoid, default init",
    "exploding": "ReLU, weights 3x too large",
    "healthy": "ReLU, Kaiming init",
}


def deep_mlp(case, depth=10, width=32, seed=0):
    """A ``depth``-layer MLP of ``width`` units for ``case`` (one of :data:`CASES`)."""
    if case not in CASES:
        raise ValueError(f"case must be one of {list(CASES)}, not {case!r}")
    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        if case != "vanishing":
            std = math.sqrt(2 / width) * (3 if case == "exploding" else 1)
            nn.init.normal_(linear.weight, std=std)
            nn.init.zeros_(linear.bias)
        layers += [linear, nn.Sigmoid() if case == "vanishing" else nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


def backward_once(model, batch=64, seed=0):
    """One mean-squared-error ``backward()`` of ``model`` on a fixed random batch."""
    generator = torch.Generator().manual_seed(seed)
    width = next(m for m in model.modules() if isinstance(m, nn.Linear)).in_features
    x = torch.randn(batch, width, generator=generator)
    y = torch.randn(batch, width, generator=generator)
    model.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    return model


def layer_grad_norms(model):
    """``{name: norm}`` of each weight gradient (parameters named ``*.weight``), in order.

    A weight whose ``.grad`` is ``None`` gets ``nan``, so a chart shows a gap, not a zero.
    """
    return {name.removesuffix(".weight"): (float("nan") if p.grad is None
                                            else float(p.grad.norm()))
            for name, p in model.named_parameters() if name.endswith(".weight")}


# Okabe-Ito colours (told apart by colour-blind readers), and a dash pattern and a marker
# shape per line, so the lines also differ in greyscale print.
STYLES = (("#0072b2", "", "circle"), ("#d55e00", "7 3", "square"),
          ("#009e73", "2 3", "triangle"), ("#cc79a7", "7 3 2 3", "circle"))


def _marker(shape, x, y, colour, tip):
    """One data point: a small circle, square or triangle at (x, y), with a tooltip."""
    if shape == "square":
        tag, where = "rect", f'x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7"'
    elif shape == "triangle":
        tag, where = "polygon", (f'points="{x:.1f},{y - 4.5:.1f} {x - 4:.1f},{y + 3:.1f} '
                                 f'{x + 4:.1f},{y + 3:.1f}"')
    else:
        tag, where = "circle", f'cx="{x:.1f}" cy="{y:.1f}" r="3.5"'
    return f'<{tag} {where} fill="{colour}"><title>{html.escape(tip)}</title></{tag}>'


class GradFlowChart:
    """One line per case, layer 1 (next to the input) on the left, gradient norm on a log scale.

    Shown in a notebook as inline SVG, drawn here without matplotlib (which would add about
    30 MB to the kernel and a second). A norm that is ``nan`` (no gradient) or 0 leaves a gap.
    :attr:`series` keeps the numbers drawn; ``repr`` lists them for readers without images,
    and the SVG carries the same summary for screen readers (``role="img"``, ``<title>``).
    """

    WIDTH, LEFT, RIGHT, TOP, PLOT_HEIGHT, LEGEND_ROW = 600, 66, 16, 34, 190, 18

    def __init__(self, cases, title="Gradient norm per layer"):
        self.title = title
        self.series = {label: [float(v) for v in norms.values()] for label, norms in cases.items()}
        drawn = [v for values in self.series.values() for v in values if v > 0 and math.isfinite(v)]
        if not drawn:
            raise ValueError("nothing to draw: every norm is nan, 0 or infinite")
        self.low = math.floor(math.log10(min(drawn)))
        self.high = max(math.ceil(math.log10(max(drawn))), self.low + 1)
        self.layers = max(len(values) for values in self.series.values())

    def _x(self, index):
        width = self.WIDTH - self.LEFT - self.RIGHT - 30       # 15 px inside each side
        if self.layers == 1:
            return self.LEFT + 15 + width / 2
        return self.LEFT + 15 + index * width / (self.layers - 1)

    def _y(self, value):
        share = (self.high - math.log10(value)) / (self.high - self.low)
        return self.TOP + self.PLOT_HEIGHT * share

    def summary(self):
        """The chart in words: each line's first and last layer."""
        lines = [f"{label}: {values[0]:.1e} at layer 1, {values[-1]:.1e} at layer {len(values)}"
                 for label, values in self.series.items()]
        return (f"{self.title}, log scale, layer 1 (next to the input) to layer {self.layers}. "
                + "; ".join(lines) + ".")

    def svg(self):
        esc, bottom = html.escape, self.TOP + self.PLOT_HEIGHT
        height = bottom + 52 + self.LEGEND_ROW * len(self.series)
        right = self.WIDTH - self.RIGHT
        parts = [chart_svg_open(self.WIDTH, height, self.summary(), scalable=True),
                 f'<text x="{self.WIDTH / 2}" y="20" text-anchor="middle" font-size="14">'
                 f"{esc(self.title)}</text>",
                 f'<rect x="{self.LEFT}" y="{self.TOP}" width="{right - self.LEFT}" '
                 f'height="{self.PLOT_HEIGHT}" fill="white" stroke="#888"/>']
        step = max(1, math.ceil((self.high - self.low) / 8))
        for power in range(self.low, self.high + 1, step):
            y, exponent = self._y(10.0 ** power), str(power).replace("-", "\u2212")
            parts.append(f'<line x1="{self.LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="#ddd"/><text x="{self.LEFT - 6}" y="{y + 4:.1f}" '
                         f'text-anchor="end">10<tspan dy="-5" font-size="8">{exponent}'
                         "</tspan></text>")
        for index in range(self.layers):
            parts.append(f'<text x="{self._x(index):.1f}" y="{bottom + 15}" '
                         f'text-anchor="middle">{index + 1}</text>')
        parts += [f'<text x="{(self.LEFT + right) / 2}" y="{bottom + 32}" text-anchor="middle">'
                  "layer (1 = next to the input)</text>",
                  f'<text x="14" y="{self.TOP + self.PLOT_HEIGHT / 2}" text-anchor="middle" '
                  f'transform="rotate(-90 14 {self.TOP + self.PLOT_HEIGHT / 2})">'
                  "weight gradient norm</text>"]
        for row, (name, values) in enumerate(self.series.items()):
            colour, dashes, shape = STYLES[row % len(STYLES)]
            points = [(self._x(i), self._y(v)) if v > 0 and math.isfinite(v) else None
                      for i, v in enumerate(values)]
            runs, run = [], []
            for point in points + [None]:           # split the line at each gap
                if point is None:
                    runs, run = runs + [run] * (len(run) > 1), []
                else:
                    run.append(point)
            for run in runs:
                parts.append(f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in run)}" '
                             f'fill="none" stroke="{colour}" stroke-width="2" '
                             f'stroke-dasharray="{dashes or "none"}"/>')
            parts += [_marker(shape, x, y, colour, f"{name}, layer {i + 1}: {values[i]:.2e}")
                      for i, (x, y) in ((i, p) for i, p in enumerate(points) if p)]
            y = bottom + 50 + self.LEGEND_ROW * row
            parts += [f'<line x1="{self.LEFT}" x2="{self.LEFT + 34}" y1="{y - 4}" y2="{y - 4}" '
                      f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dashes or "none"}"/>',
                      _marker(shape, self.LEFT + 17, y - 4, colour, name),
                      f'<text x="{self.LEFT + 42}" y="{y}">{esc(name)}</text>']
        return "".join(parts) + "</svg>"

    def _repr_svg_(self):
        return self.svg()

    def __repr__(self):
        rows = [f"{self.title} (weight gradient norm, layer 1 = next to the input)"]
        rows += [f"  {label}: " + ", ".join(f"{v:.2e}" for v in values)
                 for label, values in self.series.items()]
        return "\n".join(rows)


def grad_flow_chart(cases, title="Gradient norm per layer"):
    """A :class:`GradFlowChart`: one line per ``label -> {layer: norm}``, log scale, input left."""
    return GradFlowChart(cases, title)
