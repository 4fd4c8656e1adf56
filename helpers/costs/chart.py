"""Grouped bar charts as inline SVG: how notebook 10 draws :func:`~helpers.costs.mode_costs`
results without importing matplotlib (about 30 MB of kernel memory and a second of start-up)."""

import html

from ..graph import chart_svg_open  # a light panel, legible in dark themes too

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")


class BarPanel:
    """One panel of grouped bars: ``series`` maps a label to one value per category.

    ``reference`` draws a horizontal line at that value (1.0 for a ratio). The numbers drawn
    are kept (:attr:`series`), so a test can check them without parsing the SVG.
    """

    WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 420, 240, 48, 28, 48

    def __init__(self, title, categories, series, ylabel, reference=None):
        self.title, self.categories, self.ylabel = title, list(categories), ylabel
        self.series = {label: [float(v) for v in values] for label, values in series.items()}
        self.reference = reference
        tallest = max([reference or 0.0, *(v for vs in self.series.values() for v in vs)])
        self.top = (tallest or 1.0) * 1.25

    def _y(self, value):
        plot = self.HEIGHT - self.BOTTOM - self.TOP
        return self.HEIGHT - self.BOTTOM - plot * value / self.top

    def svg(self):
        """The panel as an ``<svg>`` element (text escaped)."""
        esc = html.escape
        plot_w = self.WIDTH - self.LEFT - 10
        slot = plot_w / len(self.categories)
        bar = 0.8 * slot / len(self.series)
        words = " ".join(repr(self).split())  # the numbers, in words
        parts = [chart_svg_open(self.WIDTH, self.HEIGHT, words),
                 f'<text x="{self.WIDTH / 2}" y="16" text-anchor="middle" font-size="13">'
                 f'{esc(self.title)}</text>',
                 f'<text x="12" y="{self._y(self.top / 2)}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {self._y(self.top / 2)})">{esc(self.ylabel)}</text>']
        key_x = self.LEFT
        for i, (label, values) in enumerate(self.series.items()):
            colour = COLOURS[i % len(COLOURS)]
            parts.append(f'<rect x="{key_x}" y="24" width="10" height="10" fill="{colour}"/>'
                         f'<text x="{key_x + 14}" y="33">{esc(label)}</text>')
            key_x += 7 * len(label) + 30
            for k, value in enumerate(values):
                x = self.LEFT + k * slot + 0.1 * slot + i * bar
                parts.append(f'<rect x="{x:.1f}" y="{self._y(value):.1f}" width="{bar:.1f}" '
                             f'height="{self._y(0) - self._y(value):.1f}" fill="{colour}">'
                             f'<title>{esc(label)}: {value:.3g}</title></rect>'
                             f'<text x="{x + bar / 2:.1f}" y="{self._y(value) - 3:.1f}" '
                             f'text-anchor="middle" font-size="9">{value:.2f}</text>')
        for k, category in enumerate(self.categories):
            parts.append(f'<text x="{self.LEFT + (k + 0.5) * slot:.1f}" '
                         f'y="{self.HEIGHT - self.BOTTOM + 16}" text-anchor="middle">'
                         f'{esc(category)}</text>')
        parts.append(f'<line x1="{self.LEFT}" x2="{self.WIDTH - 10}" y1="{self._y(0)}" '
                     f'y2="{self._y(0)}" stroke="black"/>')
        if self.reference is not None:
            y = self._y(self.reference)
            parts.append(f'<line x1="{self.LEFT}" x2="{self.WIDTH - 10}" y1="{y:.1f}" '
                         f'y2="{y:.1f}" stroke="black" stroke-dasharray="4 3"/>'
                         f'<text x="{self.LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                         f'{self.reference:g}</text>')
        return "".join(parts) + "</svg>"

    def __repr__(self):
        rows = [f"{self.title} ({self.ylabel})"]
        rows += [f"  {label}: " + ", ".join(f"{c} {v:.3g}" for c, v in zip(self.categories, vs))
                 for label, vs in self.series.items()]
        return "\n".join(rows)


class Chart:
    """Panels side by side; a notebook shows them as HTML, a terminal as text."""

    def __init__(self, panels):
        self.panels = list(panels)

    def _repr_html_(self):
        return ('<div style="display:flex;flex-wrap:wrap;gap:12px">'
                + "".join(panel.svg() for panel in self.panels) + "</div>")

    def __repr__(self):
        return "\n".join(repr(panel) for panel in self.panels)
