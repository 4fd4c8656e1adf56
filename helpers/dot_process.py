"""Graphviz ``dot`` started ahead of time: drawing a graph does not wait for it to start.

A render hands its graph to a ``dot -Kdot -Tsvg`` process that was started after the previous
render and has been waiting on its stdin since; then the next one is started. Each graph still
gets a fresh ``dot``, the command graphviz's ``Source.pipe`` runs, so the SVG is the same bytes.
One long-lived ``dot`` fed one graph after another is not: on Graphviz 2.43 its SVGs carry a
growing anonymous-graph counter in the root's ``<title>``, a ``page0,1_`` id prefix, the
clusters in another order, and edge paths that depend on what it drew before.

Anything unexpected (no ``dot``, it died, took longer than :data:`TIMEOUT`, exited non-zero or
wrote to stderr) is handed to graphviz's one-shot ``pipe``, which behaves exactly as before: it
raises its ``CalledProcessError`` with ``dot``'s message on bad DOT and prints ``dot``'s
warnings. The waiting process is killed at exit; one started before an ``os.fork`` is left to
the parent.
"""

import atexit
import os
import subprocess
import threading

COMMAND = ("dot", "-Kdot", "-Tsvg")  # what graphviz.Source(...).pipe(format="svg") runs
TIMEOUT = 10.0  # seconds a render may take before its ``dot`` is killed


def svg(source):
    """``dot``'s SVG document for DOT ``source``: from the waiting process, else one-shot."""
    document = _SPARE.render(source)
    return one_shot(source) if document is None else document


def one_shot(source):
    """``dot``'s SVG document for ``source`` as graphviz runs it: a new process, started now."""
    import graphviz

    return graphviz.Source(source).pipe(format="svg", encoding="utf-8")


def render(source):
    """The waiting process's SVG document for ``source``, or None if anything went wrong."""
    return _SPARE.render(source)


def close():
    """Kill the waiting ``dot`` if this process started it (the next render starts another)."""
    _SPARE.close()


class SpareDot:
    """One ``dot`` process waiting for a graph; one render at a time (a lock)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._proc = None
        self._owner = None  # os.getpid() of the process that started _proc

    @property
    def pid(self):
        """The waiting ``dot``'s process id (None when none waits)."""
        return None if self._proc is None else self._proc.pid

    def render(self, source):
        with self._lock:
            proc = self._take()
            if proc is None:
                return None
            try:
                out, err = proc.communicate(_with_newline(source), timeout=TIMEOUT)
            except (OSError, ValueError, subprocess.SubprocessError):  # e.g. TimeoutExpired
                return None
            finally:
                if proc.returncode is None:  # timed out, failed, or interrupted (Ctrl-C)
                    _discard(proc)
                self._proc, self._owner = _start(), os.getpid()  # the next render's dot
            return out if proc.returncode == 0 and not err and _complete(out) else None

    def close(self):
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None and self._owner == os.getpid():
                _discard(proc)

    def _take(self):
        """The waiting process if it is ours and alive, else a new one (None: cannot start)."""
        proc, self._proc = self._proc, None
        if proc is not None and self._owner != os.getpid():
            proc = None  # started before a fork: the parent's, not ours to use or kill
        if proc is not None and proc.poll() is not None:
            _discard(proc)  # died while waiting (killed, or interrupted with the kernel)
            proc = None
        return proc or _start()


def _start():
    try:
        return subprocess.Popen(COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, encoding="utf-8",
                                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    except OSError:  # no dot on PATH: the one-shot path raises graphviz's clear error
        return None


def _discard(proc):
    """Kill ``proc``, reap it and close its pipes."""
    try:
        proc.kill()
        proc.communicate(timeout=TIMEOUT)
    except (OSError, ValueError, subprocess.SubprocessError):
        pass


def _with_newline(source):
    return source if source.endswith("\n") else source + "\n"  # as graphviz writes it


def _complete(out):
    return out is not None and "<svg" in out and out.rstrip().endswith("</svg>")


_SPARE = SpareDot()
atexit.register(close)
if hasattr(os, "register_at_fork"):  # a forked child starts afresh: its own lock, no process
    os.register_at_fork(after_in_child=_SPARE.__init__)
