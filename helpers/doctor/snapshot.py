"""Save and restore everything a training step changes, so diagnosing is not a training step.

Saved: each module's parameter, buffer and submodule entries (the objects), their values,
``requires_grad`` and ``.grad`` (the object and its values, or ``None``), ``training`` flags,
each optimizer's ``param_groups`` and ``state`` (the tensor objects refilled in place), the random
number generators (torch, Python's ``random``, NumPy's when loaded), and a ``GradScaler``'s scale
and growth tracker when the step calls its ``update()``. Not saved: a learning-rate scheduler's
counters, and plain attributes the step sets on modules.
"""

import copy
import ctypes
import random
import struct
import sys

import torch


_IMMUTABLE = (int, float, bool, str, bytes, type(None))


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, _IMMUTABLE) or (isinstance(value, tuple)
                                         and all(isinstance(v, _IMMUTABLE) for v in value)):
        return value
    return copy.deepcopy(value)


def _put_back(original, saved):
    """``original`` refilled with ``saved``'s values when possible, else ``saved`` itself."""
    if (isinstance(original, torch.Tensor) and isinstance(saved, torch.Tensor)
            and original.shape == saved.shape and original.dtype == saved.dtype
            and original.layout == saved.layout):
        if original.layout == torch.strided:
            original.data.copy_(saved)
        else:  # a sparse tensor's .data is a shallow copy: copying into it misses the original
            with torch.no_grad():
                original.copy_(saved)
        return original
    return saved


class TensorState:
    """A tensor's values, ``requires_grad`` and ``.grad`` (object and values)."""

    def __init__(self, tensor):
        self.tensor = tensor
        self.values = tensor.detach().clone()
        self.requires_grad = tensor.requires_grad
        self.grad = tensor.grad if tensor.is_leaf else None
        self.grad_values = None if self.grad is None else self.grad.detach().clone()

    def restore(self):
        t = self.tensor
        if t.shape == self.values.shape and t.dtype == self.values.dtype:
            t.data.copy_(self.values)
        else:
            t.data = self.values
        if t.is_leaf:
            if t.requires_grad != self.requires_grad:
                t.requires_grad_(self.requires_grad)
            t.grad = None if self.grad is None else _put_back(self.grad, self.grad_values)


class OptimizerState:
    """An optimizer's ``param_groups`` (same dicts, same order) and ``state``."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.groups = [(g, {k: (list(v) if k == "params" else _clone(v)) for k, v in g.items()})
                       for g in optimizer.param_groups]
        self.state = {p: {k: (v, _clone(v)) for k, v in s.items()}
                      for p, s in optimizer.state.items()}

    def restore(self):
        opt = self.optimizer
        for group, saved in self.groups:
            group.clear()
            group.update({k: (list(v) if k == "params" else _clone(v)) for k, v in saved.items()})
        opt.param_groups[:] = [group for group, _ in self.groups]
        opt.state.clear()
        for p, entries in self.state.items():
            opt.state[p] = {k: _put_back(original, saved)
                            for k, (original, saved) in entries.items()}


def _position_bytes(position):
    """The generator's position as it lies in memory after its key: a C int."""
    return struct.pack("i", position)


class NumpyRandom:
    """NumPy's global random state, written back only when the step may have changed it.

    Reading and writing that state is slow next to a small training step, so the generator's
    raw words and position (2,500 bytes, read in place) tell whether it moved: every draw moves
    them except one that takes the Gaussian the legacy generator cached, so the state is written
    back when they differ, when a Gaussian was cached, or when the generator object changed.
    Not noticed: a ``set_state`` in the step to the same words and position with a different
    cached Gaussian. Where the raw bytes cannot be read as expected, it is always written back.
    """

    def __init__(self, numpy):
        self.numpy = numpy
        self.state = numpy.random.get_state()
        self.generator = self.raw = None
        try:
            rand = numpy.random.mtrand._rand
            generator = rand._bit_generator
            raw = self.state[1].tobytes() + _position_bytes(self.state[2])
            if ctypes.string_at(generator.ctypes.state_address, len(raw)) == raw:
                self.rand, self.generator, self.raw = rand, generator, raw
        except (AttributeError, TypeError, IndexError):
            pass

    def changed(self):
        """Whether the state may differ from the one saved."""
        return (self.raw is None or bool(self.state[3])
                or self.rand._bit_generator is not self.generator
                or ctypes.string_at(self.generator.ctypes.state_address, len(self.raw))
                != self.raw)

    def restore(self):
        if self.changed():
            self.numpy.random.set_state(self.state)


class Snapshot:
    """Everything ``model``, extra ``tensors`` and ``optimizers`` hold, to put back later."""

    def __init__(self, model, tensors=(), optimizers=()):
        self.modules = [(m, dict(m._parameters), dict(m._buffers), m.training,
                         dict(m._modules)) for m in model.modules()]
        seen, self.tensors = set(), []
        for _, params, buffers, _, _ in self.modules:
            for t in (*params.values(), *buffers.values()):
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    self.tensors.append(TensorState(t))
        for t in tensors:
            if id(t) not in seen:
                seen.add(id(t))
                self.tensors.append(TensorState(t))
        self.optimizers = {}
        self.others = {}  # id -> (tensor, saved values): other state the step changed
        for opt in optimizers:
            self.add_optimizer(opt)
        self.rng = torch.get_rng_state()
        self.python_rng = random.getstate()
        numpy = sys.modules.get("numpy")
        self.numpy_rng = NumpyRandom(numpy) if numpy is not None else None
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        self.cuda_rng = torch.cuda.get_rng_state_all() if cuda else None

    def add_optimizer(self, optimizer):
        """Save ``optimizer`` too (called just before its first step() when found late)."""
        if id(optimizer) not in self.optimizers:
            self.optimizers[id(optimizer)] = OptimizerState(optimizer)

    def add_tensors(self, tensors):
        """Save more tensors' values (a GradScaler's scale, found when the step updates it)."""
        for t in tensors:
            if isinstance(t, torch.Tensor) and id(t) not in self.others:
                self.others[id(t)] = (t, t.detach().clone())

    def restore(self):
        for module, params, buffers, training, children in self.modules:
            for store, saved in ((module._parameters, params), (module._buffers, buffers),
                                 (module._modules, children)):
                if store.keys() != saved.keys() or any(store[k] is not v
                                                       for k, v in saved.items()):
                    store.clear()
                    store.update(saved)
            module.training = training
        with torch.no_grad():
            for state in self.tensors:
                state.restore()
            for state in self.optimizers.values():
                state.restore()
            for t, saved in self.others.values():
                t.copy_(saved)
        torch.set_rng_state(self.rng)
        random.setstate(self.python_rng)
        if self.numpy_rng is not None:
            self.numpy_rng.restore()
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
