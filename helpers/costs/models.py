"""What the measurements run on: networks and inputs big enough to measure, seeded."""

import torch
from torch import nn


def larger_mlp(width=1024, depth=4, seed=0):
    """A bigger Linear/ReLU stack for cost measurements (the toy net is too small to time)."""
    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def transformer_encoder(d_model=128, heads=4, layers=2, seed=0):
    """A seeded ``nn.TransformerEncoder`` (batch first, feed-forward 4 x ``d_model``), in eval().

    In eval() and with autograd off (or nothing requiring grad), PyTorch runs it on its fused
    "fast path", and skips padded tokens; see :func:`padded_batch` and
    :func:`~helpers.costs.fast_path_ran`.
    """
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=4 * d_model,
                                       batch_first=True)
    return nn.TransformerEncoder(layer, layers).eval()


def padded_batch(batch=16, tokens=64, d_model=128, padded=0.5, seed=0):
    """``(src, key_padding_mask)`` for :func:`transformer_encoder`: seeded random tokens, the
    last ``padded`` share of each sequence marked as padding (``True`` in the mask)."""
    src = torch.randn(batch, tokens, d_model, generator=torch.Generator().manual_seed(seed))
    real = tokens - int(tokens * padded)
    mask = torch.arange(tokens).expand(batch, tokens) >= real
    return src, mask
