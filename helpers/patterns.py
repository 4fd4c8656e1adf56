"""Gradient flow in real training code: nine small runnable patterns (notebook 09_patterns).

Each pattern is one training step of a few tiny models, written as real code would write it,
with a rule about where gradients may flow: a *guarded* tensor (usually a loss) whose graph must
reach some modules and must not reach others. ``run_pattern(name)`` runs the correct step;
``run_pattern(name, mistake)`` runs it with one classic mistake. The :class:`PatternResult`
says which parameters the guarded tensor reaches (walking its autograd graph), the ``.grad`` of
every parameter just after the backward that matters, what the step changed, the error PyTorch
raised if any, and pattern-specific checks. It draws itself (``.draw()``) and tabulates itself
(``.table()``).

Every pattern has a public function too, e.g. ``gan_step(correct=False)``.
"""

import copy
import html
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import ipywidgets as widgets
import torch
from torch import nn
from torch.nn import functional as F

from .errors import CaughtError, explain
from .exercises import exercise
from .grad_table import Table
from .graph import GraphView, loss_diagram
from .outcome import grad_state

SEED = 0
LEARNING_RATE = 0.1
EMA_DECAY = 0.9
TEMPERATURE = 2.0
SEQUENCE_LENGTH, CHUNK = 4, 2
GAMMA, TAU, DDPG_UPDATES = 0.9, 0.1, 2
CORRECT = "correct"  # the variant without a mistake (a Dropdown cannot hold None as a value)


# --- Measuring gradient flow ---------------------------------------------------------------

def graph_leaves(tensor):
    """The leaf tensors that ``backward()`` from ``tensor`` would write a ``.grad`` into.

    Walks the autograd graph from ``tensor.grad_fn`` and collects the tensor of every
    ``AccumulateGrad`` node. A tensor without history reaches nothing.
    """
    if tensor is None or tensor.grad_fn is None:
        return []
    found, seen, stack = [], set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)
        if variable is not None:
            found.append(variable)
        stack.extend(fn for fn, _ in node.next_functions if fn is not None)
    return found


def reached_by(tensor, named_parameters):
    """Names of the parameters (name -> tensor) that ``tensor``'s graph reaches."""
    leaves = {id(leaf) for leaf in graph_leaves(tensor)}
    return {name for name, p in dict(named_parameters).items() if id(p) in leaves}


def count_nodes(tensor, kind):
    """How many backward nodes of type ``kind`` (e.g. ``"TanhBackward0"``) ``tensor`` reaches."""
    if tensor is None or tensor.grad_fn is None:
        return 0
    count, seen, stack = 0, set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        count += type(node).__name__ == kind
        stack.extend(fn for fn, _ in node.next_functions if fn is not None)
    return count


def named_parameters_of(models):
    """``{"model.param": tensor}`` over a dict of named modules, in order."""
    return {f"{m}.{n}": p for m, module in models.items() for n, p in module.named_parameters()}


def role_of(name):
    """The module a parameter name belongs to: ``"generator.weight"`` -> ``"generator"``."""
    return name.split(".", 1)[0]


# --- Results -------------------------------------------------------------------------------

@dataclass
class PatternResult:
    """What one step of a pattern did, and whether gradients flowed where they should."""

    pattern: str
    mistake: str | None
    guarded: str            # what the guarded tensor is, e.g. "d_loss"
    params: dict            # name -> parameter tensor (every model)
    must_reach: frozenset   # parameter names the guarded tensor must reach
    must_not_reach: frozenset
    reached: frozenset      # parameter names the guarded tensor's graph reaches
    grads: dict             # name -> "None"/"zeros"/"values", just after the key backward
    changed: dict           # name -> bool, over the whole step
    loss: torch.Tensor | None  # what .draw() draws
    error: CaughtError | None
    checks: dict = field(default_factory=dict)  # pattern-specific: description -> bool
    facts: dict = field(default_factory=dict)   # pattern-specific numbers and states
    models: dict = field(default_factory=dict)
    optimizers: dict = field(default_factory=dict)

    @property
    def correct(self):
        """True for the correct variant, False for a mistake."""
        return self.mistake is None

    @property
    def variant(self):
        return "correct" if self.mistake is None else self.mistake

    @property
    def flow_ok(self):
        """The guarded tensor reaches every parameter it must and none it must not."""
        return self.must_reach <= self.reached and not (self.reached & self.must_not_reach)

    @property
    def ok(self):
        """Flow as intended, no error, every check passed."""
        return self.flow_ok and self.error is None and all(self.checks.values())

    def grads_none(self):
        """Names of the parameters whose ``.grad`` was ``None`` just after the key backward."""
        return [name for name, state in self.grads.items() if state == "None"]

    def problems(self):
        """What went wrong, in plain words (empty when ``ok``)."""
        items = []
        if self.error is not None:
            first = self.error.message.split(". ")[0].rstrip(".")
            items.append(f"PyTorch raised {self.error.kind}: {first}. "
                         f"-> {self.error.explanation}")
        leaked = [n for n in self.params if n in self.reached & self.must_not_reach]
        missed = [n for n in self.params if n in self.must_reach - self.reached]
        if leaked:
            items.append(f"{self.guarded} reaches what it must not: {', '.join(leaked)}")
        if missed:
            items.append(f"{self.guarded} does not reach: {', '.join(missed)}")
        items += [f"check failed: {text}" for text, passed in self.checks.items() if not passed]
        return items

    def short_problem(self):
        """The main problem in a few words ("" when ``ok``): an error, a leak or a check."""
        if self.error is not None:
            return "error: " + self.error.message.split(" (")[0].split(":")[0].rstrip(".")
        leaked = sorted({role_of(n) for n in self.reached & self.must_not_reach})
        if leaked:
            return f"{self.guarded} reaches {', '.join(leaked)}"
        failed = [text for text, passed in self.checks.items() if not passed]
        return f"failed: {failed[0]}" if failed else ""

    def rule(self, name):
        if name in self.must_reach:
            return "must be reached"
        if name in self.must_not_reach:
            return "must NOT be reached"
        return ""

    def table(self):
        """One row per parameter: the rule, whether the guarded graph reaches it, its grad."""
        reach = f"in graph of {self.guarded}"
        rows = [[name, self.rule(name), "yes" if name in self.reached else "no",
                 self.grads[name], "yes" if self.changed[name] else "no"]
                for name in self.params]
        caption = f"{PATTERNS[self.pattern].title}: {self.label}"
        return Table(["parameter", "rule", reach, "grad", "changed by step"], rows,
                     caption=caption, notes=self.problems())

    @property
    def label(self):
        return "correct" if self.mistake is None else PATTERNS[self.pattern].mistakes[self.mistake]

    def diagram(self):
        return loss_diagram(self.loss, self.params, dict(self.grads),
                            title=f"{self.pattern}: {self.variant}",
                            note=self.error.kind if self.error else "no loss")

    def draw(self, beside=None):
        """The graph of the drawn loss; with ``beside`` (another result) that one on the left."""
        items = [] if beside is None else [beside.diagram()]
        return GraphView(items + [self.diagram()])

    def __repr__(self):
        verdict = "gradients flow as intended" if self.ok else "broken"
        return f"PatternResult({self.pattern!r}, {self.variant!r}): {verdict}\n{self.table()!r}"


class Recorder:
    """Collects what a pattern's step does; the pattern body calls ``guard`` and ``snapshot``."""

    def __init__(self, models):
        self.models = models
        self.params = named_parameters_of(models)
        self.before = {n: p.detach().clone() for n, p in self.params.items()}
        self.reached = set()
        self.grads = None
        self.loss = None
        self.checks, self.facts, self.optimizers = {}, {}, {}

    def guard(self, tensor, draw=True):
        """``tensor`` is the guarded one: remember what its graph reaches (and draw it)."""
        self.reached = reached_by(tensor, self.params)
        if draw:
            self.loss = tensor

    def snapshot(self):
        """Record every parameter's grad state now (just after the key backward)."""
        self.grads = {n: grad_state(p.grad) for n, p in self.params.items()}


@dataclass(frozen=True)
class Pattern:
    """One real-world pattern: its rule, its correct step and its classic mistakes."""

    name: str
    title: str
    body: Callable          # body(rec, mistake) runs the step
    guarded: str
    must_reach: tuple       # module names
    must_not_reach: tuple
    mistakes: dict          # mistake key -> label
    summary: str

    def run(self, mistake=None):
        if mistake is not None and mistake not in self.mistakes:
            raise ValueError(f"pattern {self.name!r} has no mistake {mistake!r}; valid: "
                             f"{', '.join(repr(m) for m in self.mistakes)} (or None)")
        torch.manual_seed(SEED)
        holder = {}
        error = None
        try:
            self.body(holder, mistake)
        except RuntimeError as exc:
            error = explain(exc)
        rec = holder["rec"]
        if rec.grads is None:
            rec.snapshot()
        params = rec.params
        expand = lambda roles: frozenset(n for n in params if role_of(n) in roles)
        return PatternResult(
            pattern=self.name, mistake=mistake, guarded=self.guarded, params=params,
            must_reach=expand(self.must_reach), must_not_reach=expand(self.must_not_reach),
            reached=frozenset(rec.reached), grads=rec.grads,
            changed={n: not torch.equal(rec.before[n], p.detach()) for n, p in params.items()},
            loss=rec.loss, error=error, checks=dict(rec.checks), facts=dict(rec.facts),
            models=rec.models, optimizers=dict(rec.optimizers))


PATTERNS: "OrderedDict[str, Pattern]" = OrderedDict()


def pattern(name, title, guarded, must_reach, must_not_reach, mistakes, summary):
    """Decorator: register ``body(holder, mistake)`` as a pattern; returns the public function.

    The body builds its models, makes a :class:`Recorder` and stores it as ``holder["rec"]``
    first thing, so that what it recorded survives an error PyTorch raises later.
    """
    def wrap(body):
        PATTERNS[name] = Pattern(name, title, body, guarded, tuple(must_reach),
                                 tuple(must_not_reach), dict(mistakes), summary)

        def public(correct=True, mistake=None):
            if correct and mistake is not None:
                raise ValueError("give a mistake only with correct=False")
            if not correct and mistake is None:
                mistake = next(iter(mistakes))
            return PATTERNS[name].run(mistake)

        public.__name__ = body.__name__
        public.__doc__ = (f"{title}. ``correct=False`` runs a mistake (default "
                          f"{next(iter(mistakes))!r}; choices: {', '.join(mistakes)}).")
        return public
    return wrap


def run_pattern(name, mistake=None):
    """Run pattern ``name`` correctly, or with ``mistake``; a :class:`PatternResult`."""
    if name not in PATTERNS:
        raise ValueError(f"unknown pattern {name!r}; valid patterns: {', '.join(PATTERNS)}")
    return PATTERNS[name].run(mistake)


def _batch(seed=SEED, n=8, features=4, classes=3):
    """A fixed batch: inputs (n, features), regression targets (n, 1), class labels (n,)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=generator)
    y = torch.randn(n, 1, generator=generator)
    labels = torch.randint(0, classes, (n,), generator=generator)
    return x, y, labels


def _sgd(*modules):
    return torch.optim.SGD([p for m in modules for p in m.parameters()], lr=LEARNING_RATE)


# --- 1. Fine-tuning a new head -------------------------------------------------------------

def transfer_parts(seed=SEED):
    """A "pretrained" backbone (Linear 4->6, ReLU), a new head (Linear 6->3), and a batch."""
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
    head = nn.Linear(6, 3)
    x, _, labels = _batch(seed)
    return backbone, head, x, labels


@pattern("fine_tune", "Fine-tuning a new head on a frozen backbone", guarded="loss",
         must_reach=["head"], must_not_reach=["backbone"],
         mistakes={"no_freeze": "backbone not frozen, every parameter in the optimizer",
                   "optimizer_only": "head-only optimizer, backbone not frozen"},
         summary="Freeze the backbone (requires_grad_(False)) and give the optimizer the head "
                 "only. Without the freeze the backbone still gets gradients (paid for), and "
                 "with it in the optimizer its pretrained weights move.")
def fine_tune(holder, mistake):
    backbone, head, x, labels = transfer_parts()
    rec = holder["rec"] = Recorder({"backbone": backbone, "head": head})
    if mistake is None:
        backbone.requires_grad_(False)
    optimizer = _sgd(backbone, head) if mistake == "no_freeze" else _sgd(head)
    rec.optimizers["optimizer"] = optimizer
    optimizer.zero_grad()
    loss = F.cross_entropy(head(backbone(x)), labels)
    rec.guard(loss)
    loss.backward()
    rec.snapshot()
    optimizer.step()


# --- 2. Truncated backpropagation through time ---------------------------------------------

def rnn_parts(seed=SEED):
    """An RNNCell(2 -> 3), a readout Linear(3 -> 1), a sequence (4, 5, 2) and targets (4, 5, 1)."""
    torch.manual_seed(seed)
    cell = nn.RNNCell(2, 3)
    readout = nn.Linear(3, 1)
    generator = torch.Generator().manual_seed(seed)
    sequence = torch.randn(SEQUENCE_LENGTH, 5, 2, generator=generator)
    targets = torch.randn(SEQUENCE_LENGTH, 5, 1, generator=generator)
    return cell, readout, sequence, targets


@pattern("truncated_bptt", "Truncated backpropagation through time in a small RNN",
         guarded="the last chunk's loss", must_reach=["cell", "readout"], must_not_reach=[],
         mistakes={"no_detach": "hidden state carried into the next chunk without detach()",
                   "retain_graph": "no detach(), backward(retain_graph=True) instead"},
         summary="Detach the hidden state at the start of each chunk: each chunk's backward "
                 "stops at the chunk's edge and its graph is freed. Without it the second "
                 "backward runs into the first chunk's freed graph.")
def truncated_bptt(holder, mistake):
    cell, readout, sequence, targets = rnn_parts()
    rec = holder["rec"] = Recorder({"cell": cell, "readout": readout})
    optimizer = rec.optimizers["optimizer"] = _sgd(cell, readout)
    h = torch.zeros(sequence.shape[1], 3)
    for start in range(0, SEQUENCE_LENGTH, CHUNK):
        if mistake is None:
            h = h.detach()                       # the cut at the chunk's edge
        optimizer.zero_grad()
        loss = 0
        for t in range(start, start + CHUNK):
            h = cell(sequence[t], h)
            loss = loss + F.mse_loss(readout(h), targets[t])
        rec.guard(loss)
        steps = count_nodes(loss, "TanhBackward0")
        rec.facts["RNN steps in the last chunk's graph"] = steps
        rec.checks[f"the last chunk's graph spans {CHUNK} steps, not more"] = steps == CHUNK
        loss.backward(retain_graph=mistake == "retain_graph")
        rec.snapshot()
        optimizer.step()


# --- 3. EMA of weights ---------------------------------------------------------------------

def ema_pair(seed=SEED):
    """A student Linear(4 -> 1) and its EMA copy (``deepcopy``, frozen), and a batch."""
    torch.manual_seed(seed)
    student = nn.Linear(4, 1)
    ema = copy.deepcopy(student).requires_grad_(False)
    x, y, _ = _batch(seed)
    return student, ema, x, y


@pattern("ema", "An exponential moving average (EMA) of the weights",
         guarded="the EMA model's output", must_reach=[], must_not_reach=["student", "ema"],
         mistakes={"no_no_grad": "EMA update outside torch.no_grad() (frozen copy)",
                   "unfrozen_no_no_grad": "EMA update outside torch.no_grad() (copy not frozen)"},
         summary="Update the EMA weights in place under torch.no_grad(). Outside it, a copy "
                 "that requires grad refuses the in-place update; a frozen copy accepts it "
                 "silently and records it, so the EMA model gets history back to the student.")
def ema(holder, mistake):
    student, ema_model, x, y = ema_pair()
    if mistake == "unfrozen_no_no_grad":
        ema_model.requires_grad_(True)           # a plain deepcopy: parameters require grad
    rec = holder["rec"] = Recorder({"student": student, "ema": ema_model})
    optimizer = rec.optimizers["optimizer"] = _sgd(student)
    optimizer.zero_grad()
    F.mse_loss(student(x), y).backward()
    rec.snapshot()
    optimizer.step()
    with torch.set_grad_enabled(mistake is not None):   # correct: no_grad
        for e, p in zip(ema_model.parameters(), student.parameters()):
            e.mul_(EMA_DECAY).add_(p, alpha=1 - EMA_DECAY)
    rec.checks["the EMA weights have no autograd history"] = all(
        e.grad_fn is None for e in ema_model.parameters())
    rec.guard(F.mse_loss(ema_model(x), y))       # an evaluation of the EMA model


# --- 4. Knowledge distillation -------------------------------------------------------------

def distill_parts(seed=SEED):
    """A teacher (Linear 4->6, ReLU, Linear 6->3), a student Linear(4 -> 3), and inputs."""
    torch.manual_seed(seed)
    teacher = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    student = nn.Linear(4, 3)
    x, _, _ = _batch(seed)
    return teacher, student, x


def distillation_loss(student_logits, teacher_logits, temperature=TEMPERATURE):
    """KL divergence between the softened distributions, times T**2 (Hinton et al.)."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature ** 2


@pattern("distillation", "Knowledge distillation from a fixed teacher", guarded="loss",
         must_reach=["student"], must_not_reach=["teacher"],
         mistakes={"teacher_graph": "teacher forward with autograd recording"},
         summary="Run the teacher under torch.no_grad(): its outputs are targets. With a "
                 "graph, backward also fills the teacher's .grad (paid for, never used, and "
                 "never cleared by the student's optimizer).")
def distillation(holder, mistake):
    teacher, student, x = distill_parts()
    rec = holder["rec"] = Recorder({"teacher": teacher, "student": student})
    optimizer = rec.optimizers["optimizer"] = _sgd(student)
    teacher.eval()
    with torch.set_grad_enabled(mistake is not None):   # correct: no_grad
        teacher_logits = teacher(x)
    optimizer.zero_grad()
    loss = distillation_loss(student(x), teacher_logits)
    rec.guard(loss)
    loss.backward()
    rec.snapshot()
    optimizer.step()


# --- 5. A GAN step -------------------------------------------------------------------------

def gan_parts(seed=SEED):
    """A generator Linear(2 -> 3), a discriminator Linear(3 -> 1), noise (8, 2), real (8, 3)."""
    torch.manual_seed(seed)
    generator = nn.Linear(2, 3)
    discriminator = nn.Linear(3, 1)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(8, 2, generator=g)
    real = torch.randn(8, 3, generator=g) + 2.0
    return generator, discriminator, noise, real


@pattern("gan", "A GAN training step", guarded="d_loss",
         must_reach=["discriminator"], must_not_reach=["generator"],
         mistakes={"no_detach": "discriminator trained on fake without detach()"},
         summary="The discriminator's step uses fake.detach(), so d_loss does not reach the "
                 "generator. Without it d_loss fills the generator's .grad and frees its "
                 "graph, and the generator's own backward then fails.")
def gan(holder, mistake):
    generator, discriminator, noise, real = gan_parts()
    rec = holder["rec"] = Recorder({"generator": generator, "discriminator": discriminator})
    g_opt = rec.optimizers["g_opt"] = _sgd(generator)
    d_opt = rec.optimizers["d_opt"] = _sgd(discriminator)
    ones, zeros = torch.ones(8, 1), torch.zeros(8, 1)
    fake = generator(noise)
    # discriminator step
    d_opt.zero_grad()
    fake_in = fake if mistake == "no_detach" else fake.detach()
    d_loss = (F.binary_cross_entropy_with_logits(discriminator(real), ones)
              + F.binary_cross_entropy_with_logits(discriminator(fake_in), zeros))
    rec.guard(d_loss)
    d_loss.backward()
    rec.snapshot()
    d_opt.step()
    # generator step
    g_opt.zero_grad()
    g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
    g_loss.backward()
    g_opt.step()


# --- 6. DDPG ------------------------------------------------------------------------------

def ddpg_parts(seed=SEED):
    """DDPG's four networks and two replay batches.

    An actor Linear(3 -> 1) (tanh on top), a critic Linear(4 -> 1) of (state, action), their
    target copies (plain ``deepcopy``: their parameters require grad), and two batches from a
    replay buffer, each ``(states, actions, rewards, next_states)``.
    """
    torch.manual_seed(seed)
    actor, critic = nn.Linear(3, 1), nn.Linear(4, 1)
    actor_target, critic_target = copy.deepcopy(actor), copy.deepcopy(critic)
    g = torch.Generator().manual_seed(seed)
    batches = [(torch.randn(8, 3, generator=g), torch.rand(8, 1, generator=g) * 2 - 1,
                torch.randn(8, 1, generator=g), torch.randn(8, 3, generator=g))
               for _ in range(DDPG_UPDATES)]
    return actor, critic, actor_target, critic_target, batches


def ddpg_target(critic_target, actor_target, rewards, next_states, gamma=GAMMA):
    """The critic's regression target r + gamma * Q'(s', mu'(s')) (call it under no_grad)."""
    next_actions = torch.tanh(actor_target(next_states))
    return rewards + gamma * critic_target(torch.cat([next_states, next_actions], 1))


@pattern("ddpg", "A DDPG update (critic, then actor, on replay batches)",
         guarded="critic_loss", must_reach=["critic"],
         must_not_reach=["actor", "actor_target", "critic_target"],
         mistakes={"zero_after_step": "each optimizer clears its grads after its step",
                   "target_graph": "target built without torch.no_grad() (targets not frozen)"},
         summary="The critic regresses Q(s, a) for replay-buffer actions on a target built "
                 "under torch.no_grad(); the actor's loss -Q(s, actor(s)) also fills the "
                 "critic's .grad, so each optimizer clears its grads just before its own "
                 "backward. Cleared after the step instead, the critic's next update adds the "
                 "actor's leftovers; a target with a graph makes backward run through both "
                 "target networks, whose .grad piles up.")
def ddpg(holder, mistake):
    actor, critic, actor_target, critic_target, batches = ddpg_parts()
    rec = holder["rec"] = Recorder({"actor": actor, "critic": critic,
                                    "actor_target": actor_target,
                                    "critic_target": critic_target})
    actor_opt = rec.optimizers["actor_opt"] = _sgd(actor)
    critic_opt = rec.optimizers["critic_opt"] = _sgd(critic)
    for states, actions, rewards, next_states in batches:
        # critic update: regress Q(s, a) of the buffer's actions on a fixed target
        with torch.set_grad_enabled(mistake == "target_graph"):    # correct: no_grad
            target = ddpg_target(critic_target, actor_target, rewards, next_states)
        if mistake != "zero_after_step":
            critic_opt.zero_grad()
        rec.facts["critic grad before its backward"] = grad_state(critic.weight.grad)
        critic_loss = F.mse_loss(critic(torch.cat([states, actions], 1)), target)
        rec.guard(critic_loss)
        own = torch.autograd.grad(critic_loss, list(critic.parameters()), retain_graph=True)
        critic_loss.backward()
        rec.snapshot()
        key = "the critic's gradient is its own loss's alone"
        rec.checks[key] = rec.checks.get(key, True) and all(
            torch.allclose(p.grad, g) for p, g in zip(critic.parameters(), own))
        critic_opt.step()
        if mistake == "zero_after_step":
            critic_opt.zero_grad()
        # actor update: move the actor's action towards a higher Q
        if mistake != "zero_after_step":
            actor_opt.zero_grad()
        actor_loss = -critic(torch.cat([states, torch.tanh(actor(states))], 1)).mean()
        actor_loss.backward()                    # fills the actor's AND the critic's .grad
        actor_opt.step()
        if mistake == "zero_after_step":
            actor_opt.zero_grad()
        rec.facts["critic grad after the actor's step"] = grad_state(critic.weight.grad)
        # soft update of the target networks, under no_grad (like the EMA of pattern 3)
        with torch.no_grad():
            for net, copy_ in ((actor, actor_target), (critic, critic_target)):
                for p, t in zip(net.parameters(), copy_.parameters()):
                    t.mul_(1 - TAU).add_(p, alpha=TAU)


# --- 7. Shared trunk, two heads ------------------------------------------------------------

def trunk_parts(seed=SEED):
    """A trunk (Linear 4->4, ReLU), a main head Linear(4 -> 1), a probe Linear(4 -> 3), a batch."""
    torch.manual_seed(seed)
    trunk = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    main_head = nn.Linear(4, 1)
    probe = nn.Linear(4, 3)
    x, y, labels = _batch(seed)
    return trunk, main_head, probe, x, y, labels


@pattern("shared_trunk", "A shared trunk with a main head and a probe head",
         guarded="probe_loss", must_reach=["probe"], must_not_reach=["trunk"],
         mistakes={"no_detach": "probe reads the trunk's features without detach()"},
         summary="The probe reads features.detach(): it trains on the features without "
                 "shaping them, so the trunk's gradient is the main loss's alone.")
def shared_trunk(holder, mistake):
    trunk, main_head, probe, x, y, labels = trunk_parts()
    rec = holder["rec"] = Recorder({"trunk": trunk, "main_head": main_head, "probe": probe})
    optimizer = rec.optimizers["optimizer"] = _sgd(trunk, main_head, probe)
    optimizer.zero_grad()
    features = trunk(x)
    main_loss = F.mse_loss(main_head(features), y)
    probe_in = features if mistake == "no_detach" else features.detach()
    probe_loss = F.cross_entropy(probe(probe_in), labels)
    rec.guard(probe_loss)
    main_only = torch.autograd.grad(main_loss, list(trunk.parameters()), retain_graph=True)
    (main_loss + probe_loss).backward()
    rec.snapshot()
    rec.checks["the trunk's gradient is the main loss's alone"] = all(
        torch.allclose(p.grad, g) for p, g in zip(trunk.parameters(), main_only))
    optimizer.step()


# --- 8. A skip connection with one branch stopped ------------------------------------------

def skip_parts(seed=SEED):
    """A stem Linear(4 -> 4), a side branch Linear(4 -> 4), a head Linear(4 -> 1), a batch."""
    torch.manual_seed(seed)
    stem = nn.Linear(4, 4)
    branch = nn.Linear(4, 4)
    head = nn.Linear(4, 1)
    x, y, _ = _batch(seed)
    return stem, branch, head, x, y


@pattern("stopped_branch", "A skip connection with the side branch stopped",
         guarded="the branch's output", must_reach=[], must_not_reach=["stem", "branch"],
         mistakes={"no_detach": "branch output added without detach()",
                   "freeze": "branch frozen with requires_grad_(False) instead"},
         summary="out = head(h + branch(h).detach()): the branch adds fixed features; it does "
                 "not train, and the stem learns through the skip path only. Freezing the "
                 "branch instead stops its weights but still passes gradient through it into "
                 "the stem.")
def stopped_branch(holder, mistake):
    stem, branch, head, x, y = skip_parts()
    rec = holder["rec"] = Recorder({"stem": stem, "branch": branch, "head": head})
    if mistake == "freeze":
        branch.requires_grad_(False)
    optimizer = rec.optimizers["optimizer"] = _sgd(stem, branch, head)
    optimizer.zero_grad()
    h = torch.relu(stem(x))
    side = branch(h)
    if mistake is None:
        side = side.detach()                     # the stopped branch
    loss = F.mse_loss(head(h + side), y)
    rec.guard(side, draw=False)
    rec.loss = loss
    loss.backward()
    rec.snapshot()
    optimizer.step()


# --- 9. An on-policy actor-critic (critic on the live action) ----------------------------

def actor_critic_parts(seed=SEED):
    """An actor Linear(3 -> 1) (tanh on top), a critic Linear(4 -> 1), states, returns."""
    torch.manual_seed(seed)
    actor = nn.Linear(3, 1)
    critic = nn.Linear(4, 1)
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(8, 3, generator=g)
    returns = torch.randn(8, 1, generator=g)
    return actor, critic, states, returns


@pattern("actor_critic", "An on-policy actor-critic update (critic on the live action)",
         guarded="critic_loss",
         must_reach=["critic"], must_not_reach=["actor"],
         mistakes={"no_detach": "critic trained on the actor's action without detach()",
                   "no_clear": "critic's grads not cleared after the actor's step"},
         summary="On-policy: the critic learns Q of the action the actor just produced. The "
                 "actor's backward goes through the critic and leaves gradients on it: clear "
                 "them before the critic's update. The critic's loss uses that action "
                 "detached, so it does not reach the actor.")
def actor_critic(holder, mistake):
    actor, critic, states, returns = actor_critic_parts()
    rec = holder["rec"] = Recorder({"actor": actor, "critic": critic})
    actor_opt = rec.optimizers["actor_opt"] = _sgd(actor)
    critic_opt = rec.optimizers["critic_opt"] = _sgd(critic)
    action = torch.tanh(actor(states))
    # actor step: move the action towards a higher Q
    actor_opt.zero_grad()
    actor_loss = -critic(torch.cat([states, action], 1)).mean()
    actor_loss.backward()                        # fills the actor's AND the critic's .grad
    actor_opt.step()
    rec.facts["critic grad after the actor's step"] = grad_state(critic.weight.grad)
    # critic step: regress Q(s, a) on the returns
    if mistake != "no_clear":
        critic_opt.zero_grad()
    rec.facts["critic grad before its backward"] = grad_state(critic.weight.grad)
    rec.checks["the critic's grads are clear before its backward"] = all(
        p.grad is None for p in critic.parameters())
    action_in = action if mistake == "no_detach" else action.detach()
    critic_loss = F.mse_loss(critic(torch.cat([states, action_in], 1)), returns)
    rec.guard(critic_loss)
    critic_loss.backward()
    rec.snapshot()
    critic_opt.step()


# --- Views: a predict-first quiz and an explorer -------------------------------------------

def _hook(name, variant):
    """HTML attributes naming a widget's pattern and variant, for tests to read off the page."""
    return (f'data-gfl-pattern="{html.escape(name, quote=True)}" '
            f'data-gfl-variant="{html.escape(variant, quote=True)}"')


class PatternQuiz(widgets.VBox):
    """Tick the modules whose parameters the guarded tensor reaches; the pattern marks it."""

    def __init__(self, name, mistake=None, why=""):
        if name not in PATTERNS:
            raise ValueError(f"unknown pattern {name!r}; valid patterns: {', '.join(PATTERNS)}")
        self.name, self.mistake, self.why = name, mistake, why
        result = PATTERNS[name].run(mistake)
        self.roles = list(dict.fromkeys(role_of(n) for n in result.params))
        self.answer = {role_of(n) for n in result.reached}
        self.boxes = {role: widgets.Checkbox(value=False, description=role, indent=False)
                      for role in self.roles}
        self.button = widgets.Button(description="Check my answer")
        self.feedback = widgets.HTML()
        self.button.on_click(lambda _: self.check())
        # data-gfl-*: the pattern and variant this quiz asks about (read by tests/test_browser.py).
        question = widgets.HTML(f"<span {_hook(name, result.variant)}>Tick every module whose "
                                f"parameters <b>{html.escape(result.guarded)}</b> reaches, so "
                                f"that its backward would fill their <code>.grad</code> (tick "
                                f"none if you expect it reaches none).</span>")
        super().__init__([question, widgets.HBox(list(self.boxes.values())), self.button,
                          self.feedback])
        self.add_class("gfl-quiz")

    def choose(self, roles):
        """Tick exactly ``roles``, as a learner would."""
        unknown = set(roles) - set(self.roles)
        if unknown:
            raise ValueError(f"unknown module(s) {sorted(unknown)}; valid: {self.roles}")
        for role, box in self.boxes.items():
            box.value = role in roles

    def check(self):
        """Mark the ticked answer; returns True when it is right."""
        chosen = {role for role, box in self.boxes.items() if box.value}
        right = chosen == self.answer
        listed = ", ".join(r for r in self.roles if r in self.answer) or "none of them"
        self.feedback.value = (
            f'<div class="gfl-verdict gfl-{"right" if right else "wrong"}">'
            f"<b>{'Right!' if right else 'Not quite.'}</b> It reaches: {html.escape(listed)}. "
            f"{html.escape(self.why)}</div>")
        return right

    def __repr__(self):
        return f"PatternQuiz({self.name!r}, mistake={self.mistake!r})"


def predict_pattern(name, mistake=None, why=""):
    """A :class:`PatternQuiz` for pattern ``name`` (correct, or with ``mistake``)."""
    return PatternQuiz(name, mistake, why)


@lru_cache(maxsize=None)
def render(name, mistake):
    """(summary HTML, table HTML, graph HTML) for one variant; cached: steps are deterministic."""
    result = PATTERNS[name].run(mistake)
    verdict = ("gradients flow as intended" if result.ok
               else "broken: " + "; ".join(result.problems()))
    # data-gfl-*: the pattern and variant shown now (read by tests/test_browser.py).
    summary = (f"<div {_hook(name, result.variant)}>"
               f"<p><b>{html.escape(PATTERNS[name].title)}</b> &mdash; "
               f"{html.escape(PATTERNS[name].summary)}</p>"
               f"<p><b>{html.escape(result.label)}</b>: {html.escape(verdict)}</p></div>")
    return summary, result.table()._repr_html_(), result.draw().html()


def variant_options(name):
    """(label, value) pairs for a pattern's dropdown: ``"correct"`` first, then each mistake."""
    return [("correct", CORRECT)] + [(f"mistake: {label}", key)
                                     for key, label in PATTERNS[name].mistakes.items()]


def _mistake(variant):
    return None if variant in (None, CORRECT) else variant


class PatternExplorer(widgets.VBox):
    """Pick a pattern and a variant (correct or a mistake): summary, table and graph follow."""

    def __init__(self, name="gan", mistake=None):
        if name not in PATTERNS:
            raise ValueError(f"unknown pattern {name!r}; valid patterns: {', '.join(PATTERNS)}")
        self.pattern = widgets.Dropdown(options=[(p.title, key) for key, p in PATTERNS.items()],
                                        value=name, description="pattern",
                                        style={"description_width": "initial"})
        self.variant = widgets.Dropdown(options=variant_options(name),
                                        value=mistake or CORRECT,
                                        description="variant",
                                        style={"description_width": "initial"})
        self.summary, self.table, self.graph = widgets.HTML(), widgets.HTML(), widgets.HTML()
        super().__init__([self.pattern, self.variant, self.summary, self.table, self.graph])
        self.add_class("gfl-explorer")
        self.pattern.observe(self._on_pattern, names="value")
        self.variant.observe(self._on_variant, names="value")
        self.refresh()

    def set(self, name=None, mistake=None):
        """Choose a pattern (optional) and a variant, as a learner would."""
        if name is not None:
            self.pattern.value = name
        self.variant.value = mistake or CORRECT

    def refresh(self):
        self.summary.value, self.table.value, self.graph.value = render(
            self.pattern.value, _mistake(self.variant.value))

    def _on_pattern(self, change):
        self.variant.unobserve(self._on_variant, names="value")
        self.variant.options = variant_options(change["new"])
        self.variant.value = CORRECT
        self.variant.observe(self._on_variant, names="value")
        self.refresh()

    def _on_variant(self, change):
        self.refresh()

    def __repr__(self):
        return (f"PatternExplorer({self.pattern.value!r}, "
                f"mistake={_mistake(self.variant.value)!r})")


def explore_patterns(name="gan", mistake=None):
    """A :class:`PatternExplorer`, starting at ``name`` and ``mistake``."""
    return PatternExplorer(name, mistake)


def summary_table():
    """Every pattern and variant at once: does the flow follow the rule, and what broke."""
    rows = []
    for name, item in PATTERNS.items():
        for label, variant in variant_options(name):
            result = item.run(_mistake(variant))
            broke = "" if result.ok else result.short_problem()
            rows.append([name, label.replace("mistake: ", ""),
                         ", ".join(sorted({role_of(n) for n in result.reached})) or "-",
                         "ok" if result.ok else "BROKEN", broke])
    return Table(["pattern", "variant", "guarded tensor reaches", "verdict", "what broke"],
                 rows)


# --- Exercises of notebook 09_patterns -----------------------------------------------------

@exercise("09.1", why="One SGD step on the student, then, inside torch.no_grad(), "
                      "ema = 0.9 * ema + 0.1 * student for each parameter. The EMA moves a "
                      "tenth of the way towards the updated student. Updating the EMA before "
                      "optimizer.step() averages towards the old student; swapping 0.9 and 0.1 "
                      "moves it nine tenths of the way: both give a different weight.")
def ema_update_answer():
    student, ema_model, x, y = ema_pair()
    optimizer = _sgd(student)
    optimizer.zero_grad()
    F.mse_loss(student(x), y).backward()
    optimizer.step()
    with torch.no_grad():
        for e, p in zip(ema_model.parameters(), student.parameters()):
            e.mul_(EMA_DECAY).add_(p, alpha=1 - EMA_DECAY)
    return ema_model.weight.detach().clone()


@exercise("09.2", why="With probe(features.detach()) the probe's loss stops at the cut, so "
                      "the trunk's gradient is the main loss's alone. Without detach() it "
                      "also carries the probe's loss and comes out different.")
def trunk_grad_answer():
    trunk, main_head, probe, x, y, labels = trunk_parts()
    features = trunk(x)
    loss = (F.mse_loss(main_head(features), y)
            + F.cross_entropy(probe(features.detach()), labels))
    loss.backward()
    return trunk[0].weight.grad.clone()


@exercise("09.3", why="Detach h at the start of each chunk, then zero_grad, forward the chunk, "
                      "backward, step: two updates for a sequence of 4 in chunks of 2. Without "
                      "detach() the second backward raises instead; without zero_grad() the "
                      "second update also adds the first chunk's gradient, and the bias comes "
                      "out different.")
def tbptt_answer():
    cell, readout, sequence, targets = rnn_parts()
    optimizer = _sgd(cell, readout)
    h = torch.zeros(sequence.shape[1], 3)
    for start in range(0, SEQUENCE_LENGTH, CHUNK):
        h = h.detach()
        optimizer.zero_grad()
        loss = 0
        for t in range(start, start + CHUNK):
            h = cell(sequence[t], h)
            loss = loss + F.mse_loss(readout(h), targets[t])
        loss.backward()
        optimizer.step()
    return readout.bias.detach().clone()


@exercise("09.4", why="backbone(x).detach() cuts the graph between the backbone and the head, so "
                      "backward fills only the head's .grad, although the backbone requires grad "
                      "and the optimizer holds it: the optimizer decides what moves, not what "
                      "gets a gradient (without the detach() all four would have one). Three "
                      "ways save the backbone's gradient work: this .detach(), "
                      "backbone.requires_grad_(False), or running the backbone under "
                      "torch.no_grad(); the last two also skip recording the backbone's forward.")
def detached_backbone_answer():
    backbone, head, x, labels = transfer_parts()
    _sgd(backbone, head).zero_grad()
    F.cross_entropy(head(backbone(x).detach()), labels).backward()
    named = {**{f"backbone.{n}": p for n, p in backbone.named_parameters()},
             **{f"head.{n}": p for n, p in head.named_parameters()}}
    return {name for name, p in named.items() if p.grad is not None}
