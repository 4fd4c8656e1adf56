"""Pattern 2: truncated backpropagation through time in a small RNN (and exercise 09.3)."""

import torch
from torch import nn
from torch.nn import functional as F

from ..autograd_walk import count_nodes
from ..exercises import Hint, exercise
from .core import SEED, pattern, sgd

SEQUENCE_LENGTH, CHUNK = 4, 2


def rnn_parts(seed=SEED):
    """An RNNCell(2 -> 3), a readout Linear(3 -> 1), a sequence (4, 5, 2) and targets (4, 5, 1)."""
    torch.manual_seed(seed)
    cell = nn.RNNCell(2, 3)
    readout = nn.Linear(3, 1)
    generator = torch.Generator().manual_seed(seed)
    sequence = torch.randn(SEQUENCE_LENGTH, 5, 2, generator=generator)
    targets = torch.randn(SEQUENCE_LENGTH, 5, 1, generator=generator)
    return cell, readout, sequence, targets


def chunk_loss(cell, readout, sequence, targets, h, start):
    """Run the chunk that starts at step ``start``: (its summed loss, the last hidden state)."""
    loss = 0
    for t in range(start, start + CHUNK):
        h = cell(sequence[t], h)
        loss = loss + F.mse_loss(readout(h), targets[t])
    return loss, h


@pattern("truncated_bptt", "Truncated backpropagation through time in a small RNN",
         guarded="the last chunk's loss", must_reach=["cell", "readout"], must_not_reach=[],
         mistakes={"no_detach": "hidden state carried into the next chunk without detach()",
                   "retain_graph": "no detach(), backward(retain_graph=True) instead"},
         predictions={"correct": "The last chunk's loss reaches the cell and the readout, through"
                                 " the 2 steps since the cut.",
                      "no_detach": "The same modules, the cell and the readout, but through all 4"
                                   " steps, back into the first chunk's graph, which the first "
                                   "backward already freed: this backward fails.",
                      "retain_graph": "Still the cell and the readout, through all 4 steps. The "
                                      "graph is kept, but the optimizer has changed weights the "
                                      "first chunk saved, so backward fails with an in-place "
                                      "error."})
def truncated_bptt_step(rec, mistake):
    """Detach the hidden state at the start of each chunk: each chunk's backward stops at the
    chunk's edge and its graph is freed. Without it the second backward runs into the first
    chunk's freed graph.
    """
    cell, readout, sequence, targets = rnn_parts()
    rec.track(cell=cell, readout=readout)
    optimizer = rec.optimizer("optimizer", cell, readout)
    h = torch.zeros(sequence.shape[1], 3)
    for start in range(0, SEQUENCE_LENGTH, CHUNK):
        if mistake is None:
            h = h.detach()                       # the cut at the chunk's edge
        optimizer.zero_grad()
        loss, h = chunk_loss(cell, readout, sequence, targets, h, start)
        rec.guard(loss)
        steps = count_nodes(loss, kind="TanhBackward0")
        rec.facts["RNN steps in the last chunk's graph"] = steps
        rec.checks[f"the last chunk's graph spans {CHUNK} steps, not more"] = steps == CHUNK
        loss.backward(retain_graph=mistake == "retain_graph")
        rec.snapshot()
        optimizer.step()


@exercise("09.3", why="Detach h at the start of each chunk, then zero_grad, forward the chunk, "
                      "backward, step: two updates for a sequence of 4 in chunks of 2. Without "
                      "detach() the second backward raises instead; without zero_grad() the "
                      "second update also adds the first chunk's gradient, and the bias comes "
                      "out different.",
          hints=(Hint(lambda: readout_bias(clear=False),
                      "In that run the second update also used the first chunk's gradient, "
                      "still in .grad: clear the grads before each chunk's backward."),))
def readout_bias_after_truncated_bptt():
    """Exercise 09.3: the readout's bias after training on the sequence in detached chunks."""
    return readout_bias()


def readout_bias(clear=True):
    """The readout's bias after training in detached chunks, clearing grads per chunk or not."""
    cell, readout, sequence, targets = rnn_parts()
    optimizer = sgd(cell, readout)
    h = torch.zeros(sequence.shape[1], 3)
    for start in range(0, SEQUENCE_LENGTH, CHUNK):
        if clear:
            optimizer.zero_grad()
        loss, h = chunk_loss(cell, readout, sequence, targets, h.detach(), start)
        loss.backward()
        optimizer.step()
    return readout.bias.detach().clone()
