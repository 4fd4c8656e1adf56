"""Real ``torch.distributed`` runs from a notebook: processes on this machine (notebook 12_at_scale).

:func:`run` starts ``world_size`` processes with ``torch.multiprocessing``, joins them into a
``gloo`` process group on 127.0.0.1 at a free port, runs the named scenarios in every process
and brings each process's results back (through files in a temporary folder). There is a
timeout on the rendezvous and on the whole run, and the processes are always stopped and joined,
whether the run succeeds, fails or is interrupted. What the processes print (PyTorch's
warnings, mostly) goes to a log that is shown only when something goes wrong.

Start method (:func:`start_method`): "fork" on Linux, where each process begins as a copy of
the caller, so what the caller has imported (PyTorch, above all) is not imported again;
"spawn" elsewhere (fork is unsafe on macOS and absent on Windows), where each process spends
seconds importing PyTorch and ``torch._dynamo`` (``DistributedDataParallel`` imports it)
before its first scenario. Every scenario is a module-level function
``scenario(rank, world_size)`` returning a dict of plain values and tensors, so that "spawn"
can import it from here.
"""

import contextlib
import datetime
import faulthandler
import importlib
import os
import socket
import sys
import tempfile
import time

import torch
import torch.distributed as dist
from torch import nn

from .toy import toy_batch, toy_loss, toy_net

try:
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel as DDP
except ImportError:  # a PyTorch built without torch.distributed: run() says so and skips
    allreduce_hook = DDP = None

ADDRESS = "127.0.0.1"
WORLD_SIZE = 2
MICRO_BATCHES = 4  # per rank, in the no_sync scenarios: one example each


def in_ci():
    """True when the environment variable ``CI`` says so (true/1/yes)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def available():
    """``(True, "")`` if this PyTorch can run a gloo process group, else ``(False, why)``."""
    if not dist.is_available():
        return False, "this PyTorch build has no torch.distributed"
    if not dist.is_gloo_available():
        return False, "this PyTorch build has no gloo backend"
    return True, ""


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it: bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ADDRESS, 0))
        return sock.getsockname()[1]


def grads(module):
    """``{name: p.grad}`` (a clone, or None) for every parameter of ``module``."""
    return {name: None if p.grad is None else p.grad.detach().clone()
            for name, p in module.named_parameters()}


def shard(rank, world_size):
    """This rank's rows of the toy batch: rank r gets the r-th of ``world_size`` equal parts."""
    x, y = toy_batch()
    return x.chunk(world_size)[rank], y.chunk(world_size)[rank]


# --- what each process runs ----------------------------------------------------------------

def average_gradients(rank, world_size):
    """One backward of the DDP-wrapped toy net on this rank's half of the batch."""
    x, y = shard(rank, world_size)
    alone = toy_net()                        # the same net without DDP, for comparison
    toy_loss(alone(x), y).backward()         # this rank's own gradient

    model = DDP(toy_net())                   # every rank starts from the same weights
    toy_loss(model(x), y).backward()         # backward() all-reduces: grads are averaged
    return {"alone": grads(alone), "ddp": grads(model.module)}


class AllReduceCounter:
    """Communication-hook state: how many buckets were all-reduced, and their sizes."""

    def __init__(self):
        self.calls = 0
        self.elements = []


def counting_allreduce(counter, bucket):
    """A DDP communication hook: count the bucket, then DDP's usual all-reduce (a mean)."""
    counter.calls += 1
    counter.elements.append(bucket.buffer().numel())
    return allreduce_hook(None, bucket)      # None: the default process group


def accumulate(rank, world_size, use_no_sync, micro_batches=MICRO_BATCHES):
    """Accumulate over ``micro_batches`` backward passes per rank, counting the all-reduces."""
    model = DDP(toy_net())
    counter = AllReduceCounter()
    model.register_comm_hook(counter, counting_allreduce)
    x, y = shard(rank, world_size)
    for i, (xb, yb) in enumerate(zip(x.chunk(micro_batches), y.chunk(micro_batches))):
        last = i == micro_batches - 1
        skip_sync = use_no_sync and not last
        with model.no_sync() if skip_sync else contextlib.nullcontext():
            loss = toy_loss(model(xb), yb) / micro_batches   # equal sizes: mean / k
            loss.backward()
    return {"all_reduces": counter.calls, "ddp": grads(model.module)}


def accumulate_with_no_sync(rank, world_size):
    """:func:`accumulate` with ``no_sync()`` around every backward but the last."""
    return accumulate(rank, world_size, use_no_sync=True)


def accumulate_without_no_sync(rank, world_size):
    """:func:`accumulate` with an all-reduce after every backward."""
    return accumulate(rank, world_size, use_no_sync=False)


def frozen_layer(rank, world_size):
    """DDP over the toy net with l1 frozen: what the all-reduced bucket holds."""
    net = toy_net()
    net.l1.requires_grad_(False)
    model = DDP(net)
    counter = AllReduceCounter()
    model.register_comm_hook(counter, counting_allreduce)
    x, y = shard(rank, world_size)
    toy_loss(model(x), y).backward()
    return {"ddp": grads(model.module), "bucket_elements": counter.elements}


class ToyWithSpareHead(nn.Module):
    """The toy net plus a layer ``spare`` that forward never uses."""

    def __init__(self):
        super().__init__()
        self.net = toy_net()
        self.spare = nn.Linear(3, 1)

    def forward(self, x):
        return self.net(x)


def two_iterations(rank, world_size, **ddp_options):
    """Two training iterations of :class:`ToyWithSpareHead` under DDP(``**ddp_options``).

    Returns the iteration that raised (or None), in which pass ("forward" or "backward"), the
    error's first line, and each iteration's gradients.
    """
    torch.manual_seed(0)
    model = DDP(ToyWithSpareHead(), **ddp_options)
    x, y = shard(rank, world_size)
    result = {"failed_at": None, "failed_in": "", "error": "", "grads": []}
    for iteration in (1, 2):
        model.zero_grad()
        stage = "forward"
        try:
            loss = toy_loss(model(x), y)
            stage = "backward"
            loss.backward()
        except RuntimeError as error:
            result.update(failed_at=iteration, failed_in=stage,
                          error=str(error).strip().splitlines()[0])
            return result
        result["grads"].append(grads(model.module))
    return result


def unused_default(rank, world_size):
    """A parameter unused in forward, plain DDP."""
    return two_iterations(rank, world_size)


def unused_find(rank, world_size):
    """A parameter unused in forward, DDP(find_unused_parameters=True)."""
    return two_iterations(rank, world_size, find_unused_parameters=True)


def unused_static(rank, world_size):
    """A parameter unused in forward, DDP(static_graph=True)."""
    return two_iterations(rank, world_size, static_graph=True)


def diagnose_step(rank, world_size):
    """``helpers.diagnose`` on DDP steps, in each process.

    Two steps: the toy net with l1 frozen, and the first step of :class:`ToyWithSpareHead`
    under plain DDP (whose bucket is never all-reduced). Returns each report as text and each
    parameter's cause and the gradients, or the error if the doctor failed.
    """
    from .doctor import diagnose

    x, y = shard(rank, world_size)
    results = {"error": ""}
    net = toy_net()
    net.l1.requires_grad_(False)
    for name, model in [("frozen", DDP(net)), ("spare", DDP(ToyWithSpareHead()))]:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

        def step():
            optimizer.zero_grad()
            loss = toy_loss(model(x), y)
            loss.backward()                  # DDP all-reduces in here (if it can)
            optimizer.step()
            return loss

        try:
            report = diagnose(model, step, optimizer, restore=False)
        except Exception as error:  # report what the doctor could not do
            results["error"] = f"{type(error).__name__}: {error}"
            return results
        results[name] = {"report": str(report), "causes": dict(report.causes),
                         "grads": grads(model.module)}
    return results


def fails_on_purpose(rank, world_size):
    """Raises on rank 1 (tests use it: a failing process must not leave any behind)."""
    if rank == 1:
        raise ValueError("rank 1 fails on purpose")
    return {}


def hangs(rank, world_size):
    """Sleeps for a minute (tests use it: the run's timeout must stop it)."""
    time.sleep(60)
    return {}


SCENARIOS = {f.__name__: f for f in (
    average_gradients, accumulate_with_no_sync, accumulate_without_no_sync, frozen_layer,
    unused_default, unused_find, unused_static, diagnose_step, fails_on_purpose, hangs)}


def start_method():
    """"fork" on Linux (a copy of this process: nothing to import again), else "spawn"."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _worker(rank, world_size, port, folder, scenarios, timeout):
    """The body of one process: join the group, run ``scenarios``, save results, leave."""
    # A forked process inherits the caller's sys.stdout/stderr (in Jupyter, streams to the
    # notebook): write to file descriptors 1 and 2 instead, which run() points at its log.
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    faulthandler.dump_traceback_later(0.9 * timeout)  # a hung process shows where, in the log
    # One thread each: the processes share the cores, and a forked process then does not ask
    # for OpenMP worker threads (GNU OpenMP's thread pool does not survive a fork).
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://{ADDRESS}:{port}", rank=rank,
                            world_size=world_size,
                            timeout=datetime.timedelta(seconds=timeout))
    try:
        results = {name: SCENARIOS[name](rank, world_size) for name in scenarios}
        torch.save(results, os.path.join(folder, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


# --- what the notebook calls ---------------------------------------------------------------

class DistributedRun:
    """The results of :func:`run`: ``run[scenario]`` is a list with one dict per rank."""

    def __init__(self, per_rank, log="", skipped=""):
        self.per_rank = per_rank
        self.log = log
        self.skipped = skipped  # the reason, when the run could not happen

    def __getitem__(self, scenario):
        if self.skipped:
            return []
        if scenario not in self.per_rank[0]:
            raise ValueError(f"scenario {scenario!r} was not run; this run has: "
                             f"{', '.join(self.per_rank[0])}")
        return [results[scenario] for results in self.per_rank]

    def __repr__(self):
        if self.skipped:
            return f"DistributedRun skipped: {self.skipped}"
        return (f"DistributedRun of {len(self.per_rank)} processes (gloo, {ADDRESS}): "
                f"{', '.join(self.per_rank[0])}")


@contextlib.contextmanager
def _output_to(path):
    """Point file descriptors 1 and 2 at ``path`` for a moment (child processes inherit them)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)


def _stop(processes):
    """Terminate (then kill) every process still alive, and join them all."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)


def run(scenarios, world_size=WORLD_SIZE, timeout=120, method=None):
    """Run ``scenarios`` (names in :data:`SCENARIOS`) in ``world_size`` real processes.

    ``method`` is the start method, "fork" or "spawn" (default: :func:`start_method`).

    Returns a :class:`DistributedRun`. If this PyTorch has no gloo backend the run is skipped
    (the result says why), except under ``CI=true``, where that raises. If a process fails, or
    the run takes more than ``timeout`` seconds, raises with the processes' log; either way
    every process has been stopped and joined when this returns.
    """
    scenarios = list(scenarios)
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown or not scenarios:
        raise ValueError(f"unknown scenario(s) {unknown}; valid: {', '.join(SCENARIOS)}")
    method = method or start_method()
    if method not in ("fork", "spawn"):
        raise ValueError(f"unknown start method {method!r}; valid: 'fork', 'spawn'")
    ok, why = available()
    if not ok:
        if in_ci():
            raise RuntimeError(f"cannot run torch.distributed here: {why} (CI=true: a failure, "
                               "not a skip)")
        return DistributedRun([], skipped=why)
    import torch.multiprocessing as mp

    if method == "fork":
        importlib.import_module("torch._dynamo")  # DDP imports it: once here, not per process
    with tempfile.TemporaryDirectory(prefix="gfl-ddp-") as folder:
        log_path = os.path.join(folder, "processes.log")
        context = None
        try:
            with _output_to(log_path):
                context = mp.start_processes(
                    _worker, args=(world_size, free_port(), folder, tuple(scenarios), timeout),
                    nprocs=world_size, join=False, start_method=method)
            deadline = time.monotonic() + timeout
            while not context.join(timeout=max(0.01, deadline - time.monotonic())):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"the {world_size} processes did not finish within "
                                       f"{timeout} s")
        except BaseException as error:
            _stop(context.processes if context else [])
            log = _read(log_path)
            if isinstance(error, Exception):
                raise RuntimeError(f"the distributed run failed: {error}\n--- the processes' "
                                   f"output ---\n{log}") from error
            raise
        finally:
            if context is not None:
                _stop(context.processes)
        per_rank = [torch.load(os.path.join(folder, f"rank{rank}.pt"))
                    for rank in range(world_size)]
        return DistributedRun(per_rank, log=_read(log_path))


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


__all__ = ["available", "run", "DistributedRun", "SCENARIOS"]
