"""``diagnose(model, step)``: run the learner's step once, watched, and explain every gradient."""

import inspect

import torch
from torch import nn

from .causes import Facts, decide, floats, grad_states, strided
from .recording import Recorder, walk_graph
from .report import Diagnosis, ParamReport
from .snapshot import Snapshot


def _optimizers(optimizer):
    if optimizer is None:
        return []
    items = list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer]
    for item in items:
        if not isinstance(item, torch.optim.Optimizer):
            raise TypeError("optimizer must be a torch.optim.Optimizer, a list of them, or None; "
                            f"got {type(item).__name__}")
    return items


def _check(model, step, tensors):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}: pass the "
                        "module whose parameters should train, e.g. diagnose(model, step)")
    if not callable(step):
        raise TypeError(f"step must be a function with no arguments that runs one training "
                        f"step and returns the loss; got {type(step).__name__}")
    code = getattr(step, "__code__", None)
    if code is not None and not code.co_argcount and not code.co_kwonlyargcount:
        signature = None  # a plain function without parameters: nothing to check
    else:
        try:
            signature = inspect.signature(step)
        except (TypeError, ValueError):
            signature = None
    if signature is not None and any(
            p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                p.KEYWORD_ONLY)
            for p in signature.parameters.values()):
        raise TypeError("step must take no arguments: wrap your step, e.g. "
                        "diagnose(model, lambda: train_step(model, x, y))")
    tensors = dict(tensors or {})
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensors must map names to tensors; {name!r} is "
                            f"{type(t).__name__}")
    return tensors


def _losses(result):
    """The loss tensors ``step`` returned (a tensor, or a tuple/list/dict of them)."""
    if isinstance(result, torch.Tensor):
        items = [result]
    elif isinstance(result, (list, tuple)):
        items = list(result)
    elif isinstance(result, dict):
        items = list(result.values())
    else:
        items = []
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        raise TypeError("step must return the loss tensor (or a tuple of loss tensors), got "
                        f"{type(result).__name__}: end the step with `return loss`")
    for t in items:
        if t.numel() != 1:
            raise ValueError(f"step returned a loss of shape {tuple(t.shape)}, not a scalar: "
                             "reduce it (loss.mean() or loss.sum()) before backward()")
    return items


def diagnose(model, step, optimizer=None, tensors=None, restore=True):
    """Run ``step()`` once, watched, and say why each parameter does or does not train.

    ``model``: the ``nn.Module`` whose ``named_parameters()`` are diagnosed; ``step``: a function
    with no arguments that runs one training step as you write it and returns the loss;
    ``optimizer``: the optimizer (or a list of optimizers) the step uses, if any; ``tensors``:
    other named tensors made with ``requires_grad=True``. With ``restore=True`` the parameters,
    their ``.grad``, buffers, optimizer state and random generators are put back afterwards.
    After an in-place error the step runs a second time, under anomaly detection, to find the
    lines involved (state restored before and after). Returns a
    :class:`~helpers.doctor.report.Diagnosis`.
    """
    extra = _check(model, step, tensors)
    optimizers = _optimizers(optimizer)
    watched = dict(model.named_parameters())
    for name, t in extra.items():
        if name in watched:
            raise ValueError(f"tensors: {name!r} is already a parameter name of the model")
        if all(t is not p for p in watched.values()):
            watched[name] = t
    requires_grad_before = {name: t.requires_grad for name, t in watched.items()}
    snapshot = Snapshot(model, extra.values(), optimizers)
    recorder = Recorder(watched.values())
    recorder.on_first_step = snapshot.add_optimizer
    recorder.on_state = snapshot.add_tensors
    error = result = None
    try:
        with recorder:
            result = step()
    except Exception as exc:  # the lesson is in the error: explain it below
        error = exc
    except BaseException:  # KeyboardInterrupt: stop, but not with the model half-trained
        if restore:
            snapshot.restore()
        raise
    try:
        losses = _losses(result) if error is None else []
        params = _gather(watched, recorder, optimizers, losses, error, snapshot,
                         requires_grad_before)
        loss = float(losses[0].detach()) if len(losses) == 1 else None
    except BaseException:
        snapshot.restore()
        raise
    explanation = None
    try:
        if error is not None:
            from ..errors import explain as explain_error
            from .explain import explain_failure

            after = None if restore else Snapshot(
                model, extra.values(), [s.optimizer for s in snapshot.optimizers.values()])
            try:
                explanation = explain_failure(error, step, snapshot, watched, recorder, params)
            except Exception:  # the doctor's own trouble must not hide the learner's error
                explanation = str(explain_error(error))
            if after is not None:
                after.restore()
    finally:
        if restore:
            snapshot.restore()
    notes = []
    if error is None and not recorder.backward_calls:
        notes.append("Note: the step never called backward() or torch.autograd.grad.")
    return Diagnosis(params, explanation, error, loss, notes, model)


def _gather(watched, recorder, optimizers, losses, error, snapshot, requires_grad_before):
    before = {id(s.tensor): s.values for s in snapshot.tensors}
    grads_before = {id(s.tensor): (s.grad, s.grad_values) for s in snapshot.tensors}
    found = []
    for opt, _ in recorder.steps:
        if all(opt is not o for o in optimizers + found):
            found.append(opt)
    known = optimizers or found
    reached = set()
    for call in recorder.backward_calls:
        if call.kind == "backward" and not call.failed:
            reached |= call.leaves if call.inputs is None else (call.leaves & call.inputs)
    facts = Facts(recorder, reached, bool(recorder.backward_calls), known, error is not None)
    names = list(watched)
    tensors = [watched[n] for n in names]
    grads = [t.grad if t.is_leaf else None for t in tensors]
    present = [strided(g) for g in grads if g is not None]
    norms = iter(floats(torch._foreach_norm(present)) if present else [])
    norms = [None if g is None else next(norms) for g in grads]
    states = grad_states(grads, norms)
    for t, state in zip(tensors, states):  # reached by a backward that finished, or its
        if id(t) in reached:  # .grad changed to values (zero_grad(set_to_none=False) is no sign)
            facts.received.add(id(t))
        elif state == "values":
            old_grad, old_values = grads_before.get(id(t), (None, None))
            if t.grad is not old_grad or not _same(t.grad, old_values):
                facts.received.add(id(t))
    roots = [t for t in losses if t.grad_fn is not None and t.grad_fn not in facts.nodes]
    if roots:
        facts.nodes |= walk_graph(roots)[0]
    moved = _moved(tensors, before)
    params = {}
    for name, t, grad, state, norm, changed in zip(names, tensors, grads, states, norms, moved):
        cause, detail, fix = decide(t, facts, state, changed, requires_grad_before[name])
        params[name] = ParamReport(name, tuple(t.shape), t.requires_grad,
                                   _optimizer_text(known, facts.holders, t), state, norm,
                                   changed, cause,
                                   detail, fix)
    return params


def _same(a, b):
    """``torch.equal`` that also compares sparse gradients (nn.Embedding(sparse=True))."""
    if a.layout != torch.strided or b.layout != torch.strided:
        return a.layout == b.layout and a.shape == b.shape and torch.equal(a.to_dense(),
                                                                           b.to_dense())
    return torch.equal(a, b)


def _moved(tensors, before):
    """For each tensor, whether its values differ from ``before``.

    For floating tensors of the same shape and dtype: whether the largest ``|now - before|`` is
    not 0, which an infinity in ``before`` always makes true (``inf - inf`` is NaN).
    """
    result = []
    for t in tensors:
        saved = before.get(id(t))
        if saved is None:
            result.append(False)
            continue
        now = t.detach()
        changed = not torch.equal(saved, now)
        if not changed and saved.shape == now.shape and saved.dtype == now.dtype \
                and now.dtype.is_floating_point:
            changed = bool(torch.isinf(saved).any())
        result.append(changed)
    return result


def _optimizer_text(known, where_is, tensor):
    if not known:
        return "-"
    where = where_is.get(id(tensor))
    if where is None:
        return "no"
    index, group = where
    prefix = f"#{index + 1} " if len(known) > 1 else ""
    lr = group.get("lr")
    return f"{prefix}lr {lr:g}" if isinstance(lr, (int, float)) else f"{prefix}lr {lr}"
