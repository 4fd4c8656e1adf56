"""The "gradient flow" chart: the gradient norm of each layer, first layer to last.

``layer_grad_norms(model)`` reads the norm of every layer's weight gradient after a
``backward()``; ``grad_flow_chart({label: norms, ...})`` draws one line per case on a log scale.
``deep_mlp(case)`` builds the three classic cases of notebook 11_debugging: gradients that
vanish (sigmoid), explode (ReLU, weights too large) or stay level (ReLU, Kaiming init).
"""

import math

import torch
from torch import nn

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


def grad_flow_chart(cases, title="Gradient norm per layer"):
    """A matplotlib figure: one line per ``label -> {layer: norm}``, log scale, input left."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    for label, norms in cases.items():
        ax.plot(range(1, len(norms) + 1), list(norms.values()), marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = next to the input)")
    ax.set_ylabel("weight gradient norm")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig
