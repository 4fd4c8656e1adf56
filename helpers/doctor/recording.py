"""The recorder: a TorchFunctionMode that sees every torch call of one training step.

For each parameter it counts the calls that used it (directly, or through a view of it) by grad
mode, and notes the calls that cut its graph (``detach``, ``.data``, ``argmax``, ``.item()``...).
It records every ``backward()``/``autograd.grad`` call with the leaves its graph reaches, the
calls that cut any graph (with the learner's line), whether ``optimizer.step()`` ran, and, in
``detail`` mode (the rerun after an error), every in-place edit with its line.
"""

import sys

import torch
from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                   register_optimizer_step_pre_hook)
from torch.overrides import TorchFunctionMode

from ..autograd_walk import backward_nodes
from .causes import grad_states
from .frames import learner_place

# Calls that read a tensor's metadata, not its values: not a use.
METADATA = frozenset({
    "size", "dim", "numel", "nelement", "stride", "element_size", "is_contiguous", "data_ptr",
    "storage_offset", "untyped_storage", "get_device", "is_floating_point", "is_complex",
    "__len__", "__hash__", "__repr__", "__format__", "__str__", "requires_grad_", "retain_grad",
    "register_hook", "register_post_accumulate_grad_hook", "type", "__reduce_ex__", "__dir__",
    "__deepcopy__", "__setstate__", "__getstate__", "is_leaf", "ndimension", "dim_order",
    "is_set_to", "is_shared", "is_pinned", "is_inference", "__set__", "__delete__",
    "has_names", "_is_view", "_set_grad_enabled", "_record_function_enter_new",
    "_record_function_exit", "_record_function_exit._RecordFunction", "is_sparse",
})
# Properties whose value is the tensor's values (a use); every other property is metadata.
VALUE_PROPERTIES = frozenset({"data", "T", "mT", "H", "mH", "real", "imag"})
BACKWARD_CALLS = frozenset({"backward", "grad"})
IGNORE, USE, BACKWARD = 0, 1, 2
MAX_CUTS = 40


def call_name(func):
    """A readable name for a torch call; properties by their own name (``data``, ``T``)."""
    name = getattr(func, "__name__", None) or str(func)
    if name in ("__get__", "__set__", "__delete__"):
        prop = getattr(getattr(func, "__self__", None), "__name__", "")
        return prop if name == "__get__" else name
    return name


_KINDS = {}  # func -> (kind, name): it depends on func alone, so recorders share it
MAX_KINDS = 4096  # a bound, so callables made on the fly cannot grow it without end


def _classify(func):
    """``(kind, name)`` of a torch call: IGNORE, USE or BACKWARD, and its readable name."""
    try:
        return _KINDS[func]
    except KeyError:
        found = _classify_uncached(func)
        if len(_KINDS) < MAX_KINDS:
            _KINDS[func] = found
        return found
    except TypeError:  # an unhashable callable
        return _classify_uncached(func)


def _classify_uncached(func):
    name = call_name(func)
    is_property = getattr(func, "__name__", "") == "__get__"
    if is_property:
        return (USE if name in VALUE_PROPERTIES else IGNORE), name
    if name in METADATA:
        return IGNORE, name
    if name in BACKWARD_CALLS:
        return BACKWARD, name
    return USE, name


def _tensors(args, kwargs):
    """Tensors among the call's arguments, one level inside lists and tuples."""
    found = []
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found


def _requires_grad(result):
    if isinstance(result, torch.Tensor):
        return result.requires_grad
    if isinstance(result, (list, tuple)):
        return any(isinstance(r, torch.Tensor) and r.requires_grad for r in result)
    return False


# Function.apply's code object where it is a Python classmethod (torch 2.13); newer torch
# implements apply in C, so a frame is also recognised by the ``ctx`` its ``forward`` receives.
_APPLY = getattr(getattr(torch.autograd.Function.apply, "__func__", None), "__code__", None)


def _function_class(frame):
    """The ``autograd.Function`` subclass whose ``apply`` or ``forward`` runs in ``frame``."""
    if _APPLY is not None and frame.f_code is _APPLY:
        return frame.f_locals.get("cls")
    if frame.f_code.co_name == "forward":
        return getattr(type(frame.f_locals.get("ctx")), "_forward_cls", None)
    return None


def _custom_function():
    """The name of the custom ``autograd.Function`` whose ``forward`` is running, or ``None``."""
    frame = sys._getframe(2)
    while frame is not None:
        cls = _function_class(frame)
        if cls is not None:
            if getattr(cls, "__module__", "").startswith("torch."):
                return None  # torch's own, e.g. checkpoint's: not one the learner wrote
            return getattr(cls, "__name__", "autograd.Function")
        frame = frame.f_back
    return None


def walk_graph(roots):
    """All autograd nodes reachable from ``roots`` (tensors), and their leaves' ids."""
    seen = set(backward_nodes(*roots))
    leaves = {id(node.variable) for node in seen if getattr(node, "variable", None) is not None}
    return seen, leaves


class Use:
    """How one parameter was used: counts by grad mode, and the calls that cut its graph."""

    __slots__ = ("grad_on", "grad_off", "inference", "required_grad", "cut_by", "function",
                 "plain_off")

    def __init__(self):
        self.grad_on = self.grad_off = self.inference = 0
        self.required_grad = False
        self.cut_by = []
        self.function = None  # a custom autograd.Function whose forward used it (grad off)
        self.plain_off = False  # used with grad off outside any custom Function's forward


class BackwardCall:
    """One ``backward()`` or ``autograd.grad`` call: where, what it reached, what it kept."""

    def __init__(self, kind, place, nodes, leaves, inputs, retain):
        self.kind, self.place, self.nodes, self.leaves = kind, place, nodes, leaves
        self.inputs, self.retain = inputs, retain
        self.failed = False
        self.seq = 0  # its place among the step's backward and step() calls


class Cut:
    """A call that took tensors requiring grad and returned none (or ran with grad off)."""

    def __init__(self, name, place, mode):
        self.name, self.place, self.mode = name, place, mode

    def __str__(self):
        what = {"grad": f"`{self.name}`", "no_grad": "grad mode off (torch.no_grad())",
                "inference": "torch.inference_mode()"}[self.mode]
        return f"{what} at {self.place}" if self.place else what


class Edit:
    """An in-place edit seen in detail mode: the tensor's shape, producer and new version."""

    def __init__(self, name, shape, producer, version, place, in_step):
        self.name, self.shape, self.producer = name, shape, producer
        self.version, self.place, self.in_step = version, place, in_step


class Recorder(TorchFunctionMode):
    """Record one run of a step. ``tensors``: the leaves and non-leaves to watch, by id."""

    def __init__(self, tensors, detail=False):
        super().__init__()
        self.watched = {id(t): t for t in tensors}
        self.uses = {}
        self.backward_calls = []
        self.cuts = []
        self._cut_keys = set()
        self.edits = []
        self.steps = []  # (optimizer, place) for every optimizer.step() call
        self.grad_at_step = {}  # id(parameter) -> its grad state when its step() last began
        self.step_seq = {}  # id(parameter) -> the event number of that step() call
        self.grad_after_backward = {}  # id(leaf) -> (grad state, seq) after its last backward()
        self.seq = 0  # event counter: backward calls and step() calls, in order
        self.detail = detail
        self.in_step = 0
        self._handles = []
        self._quiet = []
        self._closures = []
        self.on_first_step = None  # called with each optimizer before its step() runs
        self.on_state = None  # called with tensors of other state the step changes in place
        self.unscaled = []  # (ids of the grads a GradScaler checked, its found_inf tensor)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self):
        self._handles = [register_optimizer_step_pre_hook(self._step_pre),
                         register_optimizer_step_post_hook(self._step_post)]
        return super().__enter__()

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        while self._quiet:  # a step() that raised never reached its post hook
            self._quiet.pop().__exit__(None, None, None)
        return super().__exit__(*exc)

    def _step_pre(self, optimizer, args, kwargs):
        self.steps.append((optimizer, learner_place(2)))
        if self.on_first_step is not None:
            self.on_first_step(optimizer)
        closure = args[1] if len(args) > 1 else kwargs.get("closure")  # args[0]: optimizer
        self._closures.append(closure is not None)
        if closure is not None:  # LBFGS & co. run the forward and backward inside step()
            return
        if not self.detail:  # the optimizer's own calls are not the step's uses: skip them
            quiet = torch._C.DisableTorchFunction()
            quiet.__enter__()
            self._quiet.append(quiet)
        self.in_step += 1
        self.seq += 1
        params = [p for group in optimizer.param_groups for p in group["params"]]
        with torch._C.DisableTorchFunction():  # the doctor's own reads: not the step's
            states = grad_states([p.grad for p in params])
        for p, state in zip(params, states):
            self.grad_at_step[id(p)] = state
            self.step_seq[id(p)] = self.seq

    def _step_post(self, optimizer, args, kwargs):
        if self._closures and self._closures.pop():
            return
        self.in_step -= 1
        if self._quiet:
            self._quiet.pop().__exit__(None, None, None)

    def _use(self, tensor):
        use = self.uses.get(id(tensor))
        if use is None:
            use = self.uses[id(tensor)] = Use()
        return use

    # ------------------------------------------------------------------ the mode
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            kind, name = _KINDS[func]
        except (KeyError, TypeError):
            kind, name = _classify(func)
        if kind == IGNORE:
            return func(*args, **kwargs)
        if kind == BACKWARD:
            return self._backward(func, name, args, kwargs)
        if name == "_amp_update_scale_" and self.on_state is not None:  # GradScaler.update()
            self.on_state(args[:2])  # its scale and growth tracker, to put back afterwards
        if name == "_amp_foreach_non_finite_check_and_unscale_":  # GradScaler.unscale_()
            self.unscaled.append(({id(g) for g in args[0]}, args[1]))  # grads, found_inf
        if self.in_step:
            return self._run_detail(func, name, args, kwargs) if self.detail else \
                func(*args, **kwargs)
        inputs = _tensors(args, kwargs)
        watched = self.watched
        hits = []
        needs_grad = False
        for t in inputs:
            if t.requires_grad:
                needs_grad = True
            p = watched.get(id(t))
            if p is None and t._base is not None:
                p = watched.get(id(t._base))
            if p is not None:
                hits.append(p)
        if not (hits or needs_grad or self.detail):
            return func(*args, **kwargs)  # nothing watched, nothing that could be cut
        if torch.is_inference_mode_enabled():
            mode = "inference"
        else:
            mode = "grad" if torch.is_grad_enabled() else "no_grad"
        result = self._run_detail(func, name, args, kwargs, inputs) if self.detail else \
            func(*args, **kwargs)
        cut = needs_grad and (mode != "grad" or not _requires_grad(result))
        for p in hits:
            use = self._use(p)
            if mode == "grad":
                use.grad_on += 1
                if p.requires_grad:
                    use.required_grad = True
                    if cut and name not in use.cut_by:
                        use.cut_by.append(name)
            elif mode == "inference":
                use.inference += 1
                use.required_grad |= p.requires_grad
            else:
                use.grad_off += 1
                use.required_grad |= p.requires_grad
                function = _custom_function()
                if function is None:
                    use.plain_off = True
                elif use.function is None:
                    use.function = function
        if cut and len(self.cuts) < MAX_CUTS:
            self._note_cut(name, mode)
        return result

    def _note_cut(self, name, mode):
        place = learner_place(3)
        key = (name if mode == "grad" else mode, place)
        if key not in self._cut_keys:
            self._cut_keys.add(key)
            self.cuts.append(Cut(name, place, mode))

    def _run_detail(self, func, name, args, kwargs, inputs=None):
        """Run the call, noting every input whose version counter moved (an in-place edit)."""
        inputs = _tensors(args, kwargs) if inputs is None else inputs
        before = []
        for t in inputs:
            try:
                before.append((t, t._version, type(t.grad_fn).__name__ if t.grad_fn else None))
            except RuntimeError:  # inference tensors have no version counter
                pass
        result = func(*args, **kwargs)
        for t, version, producer in before:
            if t._version != version:
                self.edits.append(Edit(name, tuple(t.shape), producer, t._version,
                                       learner_place(3), bool(self.in_step)))
        return result

    def _backward(self, func, name, args, kwargs):
        """Record a backward()/autograd.grad call with what its graph reaches, then run it."""
        roots = args[0] if args else kwargs.get("tensors", kwargs.get("outputs"))
        roots = [roots] if isinstance(roots, torch.Tensor) else list(roots or [])
        inputs = kwargs.get("inputs")
        if name == "grad" and inputs is None and len(args) > 1:
            inputs = args[1]
        if isinstance(inputs, torch.Tensor):
            inputs = [inputs]
        nodes, leaves = walk_graph(roots)
        input_ids = None if inputs is None else {id(t) for t in inputs}
        retain = bool(kwargs.get("retain_graph") or kwargs.get("create_graph"))
        call = BackwardCall("grad" if name == "grad" else "backward", learner_place(2), nodes,
                            leaves, input_ids, retain)
        self.seq += 1
        call.seq = self.seq
        self.backward_calls.append(call)
        try:
            result = func(*args, **kwargs)
        except BaseException:
            call.failed = True
            raise
        if call.kind == "backward":  # what .grad holds now, to compare with what step() sees
            filled = [self.watched[i] for i in leaves if i in self.watched
                      and (input_ids is None or i in input_ids)]
            with torch._C.DisableTorchFunction():
                states = grad_states([t.grad for t in filled])
            for t, state in zip(filled, states):
                self.grad_after_backward[id(t)] = (state, call.seq)
        return result
