"""Plain-words explanations of a step's error, naming the learner's own lines.

The base meaning of each PyTorch message comes from :mod:`helpers.errors`; this module adds where
it happened and what in this step caused it. For a tensor modified in place after it was saved,
the step is run once more under ``torch.autograd.detect_anomaly()`` (its warnings captured, so
nothing leaks into a notebook) with the recorder noting every in-place edit and its line.
"""

import math
import re
import warnings

import torch

from .. import errors
from .frames import place_in_text, place_in_traceback, step_place
from .recording import Recorder

INPLACE = "modified by an inplace operation"
CONSTANT = "does not require grad and does not have a grad_fn"
SECOND = "backward through the graph a second time"
_VERSION = re.compile(r"\[torch\.\w+ \[([\d, ]*)\]\](?:, which is output \d+ of (\w+))?, "
                      r"is at version (\d+); expected version (\d+)")
_ANOMALY = re.compile(r"Error detected in (\w+)\. Traceback of forward call")


def _known(message):
    return any(fragment in message for fragment, _ in getattr(errors, "EXPLANATIONS", []))


def explain_failure(error, step, snapshot, watched, recorder, params):
    """The error in plain words: what PyTorch said, what it means, where, what to do."""
    message = str(error)
    caught = errors.explain(error)
    place = place_in_traceback(error.__traceback__)
    lines = [f"{caught.kind}: {caught.message}"]
    if _known(message):
        lines.append(f"What it means: {caught.explanation}")
    elif isinstance(error, RuntimeError):
        lines.append("What it means: PyTorch refused an operation of the step; the causes "
                     "above describe the step up to the error.")
    else:
        lines.append("What it means: the step's own code failed (not a gradient problem); "
                     "the causes above describe the step up to the error.")
    if place is not None:
        outer = step_place(error.__traceback__, getattr(step, "__code__", None))
        called = f" (called from {outer})" if outer is not None and outer != place else ""
        lines.append(f"Raised at: {place}{called}")
    if INPLACE in message:
        lines += _inplace(message, step, snapshot, watched)
    elif CONSTANT in message:
        lines += _constant(recorder, params)
    elif SECOND in message:
        lines += _second_backward(recorder)
    return "\n".join(lines)


def rerun_in_detail(step, snapshot, watched):
    """Restore the state, run ``step`` again under anomaly detection, recording in-place edits.

    Returns ``(recorder, error or None, anomaly warning texts)``; prints nothing.
    """
    snapshot.restore()
    recorder = Recorder(watched.values(), detail=True)
    recorder.on_first_step, recorder.on_state = snapshot.add_optimizer, snapshot.add_tensors
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.autograd.detect_anomaly(check_nan=False), recorder:
                step()
        except Exception as exc:
            error = exc
    return recorder, error, [str(w.message) for w in caught]


def _inplace(message, step, snapshot, watched):
    recorder, again, texts = rerun_in_detail(step, snapshot, watched)
    if again is not None and INPLACE in str(again):
        message = str(again)  # versions count on from the first run: read this run's numbers
    match = _VERSION.search(message)
    lines = []
    saved_by = saved_at = None
    for text in texts:
        found = _ANOMALY.search(text)
        if found:
            saved_by, saved_at = found.group(1), place_in_text(text)
    shape = producer = None
    if match:
        shape = tuple(int(s) for s in match.group(1).replace(" ", "").split(",") if s)
        producer, now, expected = match.group(2), int(match.group(3)), int(match.group(4))
        what = f"a tensor of shape {list(shape)}"
        if producer and producer.startswith("AsStrided"):
            what += " (a view of a leaf such as a parameter, e.g. a weight's transpose)"
        elif producer:
            what += f" (the output of {producer})"
        else:
            what += " (a leaf, such as a parameter)"
        lines.append(f"What happened: backward() needed {what} as it was when saved, but an "
                     "in-place edit changed it afterwards.")
        edit = _the_edit(recorder.edits, shape, producer, expected, now)
    else:
        edit = None
    if saved_at is not None:
        lines.append(f"Saved for backward by the operation whose gradient is {saved_by}, at: "
                     f"{saved_at}")
    if edit is not None:
        via = "optimizer.step(), called at" if edit.in_step else f"`{edit.name}` at"
        lines.append(f"Edited in place afterwards by {via}: {edit.place}")
        if edit.in_step:
            lines.append("Fix: call backward() for every loss before optimizer.step() changes "
                         "the parameters, or run the forward pass again after the step (in a "
                         "GAN, detach() the generator's output in the discriminator's loss).")
        else:
            lines.append("Fix: " + _out_of_place(edit.name))
    else:
        lines.append("Fix: find the in-place edit (an op ending in _, +=, x[...] = ..., "
                     "inplace=True) of that tensor after the line above, and make it out of "
                     "place or edit a .clone().")
    return lines


def _out_of_place(name):
    """How to write the in-place edit ``name`` out of place."""
    if name in ("__setitem__", "index_put_", "masked_fill_", "copy_", "fill_", "zero_"):
        return ("write a new tensor instead of assigning into the saved one, e.g. "
                "`x = x.masked_fill(mask, 0)` (or `x = x * keep`) instead of `x[mask] = 0`.")
    if name.startswith(("add", "sub", "mul", "div", "__i")):
        return "use the out-of-place form, e.g. `out = out + h` instead of `out += h`."
    if name in ("relu", "relu_", "leaky_relu", "leaky_relu_", "hardtanh", "elu", "selu",
                "dropout", "threshold", "silu", "hardswish"):
        return ("drop inplace=True (e.g. nn.ReLU() instead of nn.ReLU(inplace=True)) where "
                "its input is saved for backward.")
    return f"use the out-of-place version of `{name}` (without the trailing _), or edit a .clone()."


def _the_edit(edits, shape, producer, expected, now):
    """The in-place edit that moved the saved tensor past ``expected``, if recorded."""
    candidates = [e for e in edits if e.shape == shape and expected < e.version <= now
                  and ((e.producer or "").startswith(producer) if producer
                       else e.producer is None)]
    if not candidates:  # a view of the edited tensor was saved (a weight's transpose)
        size = math.prod(shape)
        candidates = [e for e in edits if math.prod(e.shape) == size
                      and expected < e.version <= now]
    first = [e for e in candidates if e.version == expected + 1]
    return (first or candidates or [None])[0]


def _constant(recorder, params):
    lines = ["What happened: the loss does not depend on anything that requires grad."]
    by_cause = {}
    for p in params.values():
        by_cause.setdefault(p.cause, []).append(p.name)
    reasons = []
    if by_cause.get("frozen"):
        reasons.append(f"frozen parameters: {', '.join(by_cause['frozen'])}")
    for cause, text in (("no_grad", "used only with grad mode off"),
                        ("inference_mode", "used only inside inference_mode"),
                        ("unused", "never used")):
        if by_cause.get(cause):
            reasons.append(f"{text}: {', '.join(by_cause[cause])}")
    if reasons:
        lines.append("In this step: " + "; ".join(reasons) + ".")
    cuts = recorder.cuts[:4]
    if cuts:
        lines.append("Where the graph was cut: " + "; ".join(map(str, cuts)) + ".")
    lines.append("Fix: compute the loss from the model's output with differentiable "
                 "operations (no argmax/comparison/.item()/detach() on the way), with grad "
                 "mode on and at least one parameter that requires grad.")
    return lines


def _second_backward(recorder):
    calls = recorder.backward_calls
    failed = next((c for c in calls if c.failed), None)
    if failed is None:
        return []
    earlier = [c for c in calls if c is not failed and not c.failed and not c.retain
               and c.nodes & failed.nodes]
    lines = []
    if earlier:
        freed = earlier[-1]
        lines.append(f"What happened: the backward() at {freed.place} freed the graph's saved "
                     f"tensors; the backward() at {failed.place} runs through part of that "
                     "same graph again.")
    lines.append("Fix: if the second loss should not reach that shared part (a GAN's "
                 "discriminator step, an actor-critic's action, a hidden state carried across "
                 "chunks), detach() the shared tensor where it is reused. Use "
                 "retain_graph=True on the first backward() only when two backward passes "
                 "through one graph are really meant.")
    return lines
