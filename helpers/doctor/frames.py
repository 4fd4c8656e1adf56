"""Find the learner's own line in a stack: the innermost frame outside torch and the doctor."""

import linecache
import os
import re
import sys
from dataclasses import dataclass

import torch

_TORCH = os.path.dirname(torch.__file__) + os.sep
_DOCTOR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_STDLIB = os.path.dirname(os.__file__) + os.sep
_CACHE = {}
_TRACEBACK_LINE = re.compile(r'File "([^"]+)", line (\d+)')


def is_learner_file(filename):
    """True for a file the learner wrote: not torch, not the doctor, not the standard library."""
    known = _CACHE.get(filename)
    if known is None:
        path = filename if filename.startswith("<") else os.path.abspath(filename)
        library = path.startswith(_STDLIB) and "-packages" not in path[len(_STDLIB):]
        known = not (path.startswith((_TORCH, _DOCTOR)) or library or path.startswith("<frozen"))
        _CACHE[filename] = known
    return known


@dataclass(frozen=True)
class Place:
    """One source line: ``where`` is ``file.py:LINE`` (``cell line N`` in a notebook)."""

    filename: str
    lineno: int

    @property
    def where(self):
        if "ipykernel_" in self.filename or self.filename.startswith("<ipython-input"):
            return f"cell line {self.lineno}"
        return f"{os.path.basename(self.filename)}:{self.lineno}"

    @property
    def code(self):
        return linecache.getline(self.filename, self.lineno).strip()

    def __str__(self):
        code = self.code
        return f"{self.where} `{code}`" if code else self.where


def learner_place(depth=1):
    """The innermost learner frame of the current stack, or ``None``."""
    frame = sys._getframe(depth)
    while frame is not None:
        if is_learner_file(frame.f_code.co_filename):
            return Place(frame.f_code.co_filename, frame.f_lineno)
        frame = frame.f_back
    return None


def place_in_traceback(tb):
    """The innermost learner frame of an exception's traceback, or ``None``."""
    found = None
    while tb is not None:
        if is_learner_file(tb.tb_frame.f_code.co_filename):
            found = Place(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def step_place(tb, code):
    """Where the traceback passes through the frame running ``code`` (the step), or ``None``."""
    found = None
    while tb is not None:
        if tb.tb_frame.f_code is code:
            found = Place(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def place_in_text(text):
    """The innermost learner frame named in a formatted traceback (``File "x", line N``)."""
    found = None
    for filename, lineno in _TRACEBACK_LINE.findall(text):
        if is_learner_file(filename):
            found = Place(filename, int(lineno))
    return found
