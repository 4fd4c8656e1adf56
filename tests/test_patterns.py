"""helpers.patterns (notebook 09_patterns) against the same steps written out in plain PyTorch.

Every expectation here is computed with plain torch code in the test, never by calling the
helper under test.
"""

import contextlib
import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import helpers
from helpers import patterns
from helpers.exercises import EXERCISES

LR = 0.1
ROOT = Path(__file__).resolve().parent.parent


def batch(seed=0, n=8, features=4, classes=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, features, generator=g), torch.randn(n, 1, generator=g),
            torch.randint(0, classes, (n,), generator=g))


def sgd(params):
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= LR * p.grad


def grads_of(module):
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]


def assert_same_params(a, b):
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


# --- measuring ---------------------------------------------------------------------------

def test_reached_by_agrees_with_backward():
    torch.manual_seed(0)
    a, b, c = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 1)
    b.requires_grad_(False)
    x = torch.randn(3, 2)
    out = c(b(a(x)).detach() + a(x)).sum()
    named = {"a.w": a.weight, "b.w": b.weight, "c.w": c.weight}
    reached = patterns.reached_by(out, named)
    out.backward()
    assert reached == {n for n, p in named.items() if p.grad is not None} == {"a.w", "c.w"}
    assert patterns.reached_by(torch.zeros(2), named) == set()


def test_every_correct_variant_is_ok_and_every_mistake_is_not():
    for name, item in patterns.PATTERNS.items():
        assert patterns.run_pattern(name).ok, name
        for mistake in item.mistakes:
            assert not patterns.run_pattern(name, mistake).ok, (name, mistake)


def test_public_functions_and_bad_names():
    assert patterns.gan_step(correct=True).mistake is None
    assert patterns.gan_step(correct=False).mistake == "no_detach"
    assert patterns.actor_critic_step(correct=False, mistake="no_clear").mistake == "no_clear"
    with pytest.raises(ValueError, match="only with correct=False"):
        patterns.gan_step(correct=True, mistake="no_detach")
    with pytest.raises(ValueError, match="valid patterns"):
        patterns.run_pattern("vae")
    with pytest.raises(ValueError, match="'no_detach'"):
        patterns.run_pattern("gan", "no_freeze")


# --- 1. fine-tuning ------------------------------------------------------------------------

def plain_transfer():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
    head = nn.Linear(6, 3)
    x, _, labels = batch()
    return backbone, head, x, labels


def test_fine_tune_variants():
    backbone, head, x, labels = plain_transfer()
    start = copy.deepcopy(backbone)
    F.cross_entropy(head(backbone(x)), labels).backward()
    grads = grads_of(backbone)

    good = patterns.run_pattern("fine_tune")
    assert_same_params(good.models["backbone"], start)
    assert all(p.grad is None for p in good.models["backbone"].parameters())
    assert torch.allclose(good.models["head"].weight,
                          plain_transfer()[1].weight - LR * head.weight.grad)

    moved = patterns.run_pattern("fine_tune", "no_freeze").models["backbone"]
    for p, p0, g in zip(moved.parameters(), start.parameters(), grads):
        assert torch.allclose(p, p0 - LR * g)

    paid = patterns.run_pattern("fine_tune", "optimizer_only")
    assert_same_params(paid.models["backbone"], start)
    for p, g in zip(paid.models["backbone"].parameters(), grads):
        assert torch.allclose(p.grad, g)


# --- 2. truncated BPTT ---------------------------------------------------------------------

def plain_bptt(detach, retain=False):
    torch.manual_seed(0)
    cell, readout = nn.RNNCell(2, 3), nn.Linear(3, 1)
    g = torch.Generator().manual_seed(0)
    sequence, targets = torch.randn(4, 5, 2, generator=g), torch.randn(4, 5, 1, generator=g)
    params = list(cell.parameters()) + list(readout.parameters())
    h = torch.zeros(5, 3)
    for start in (0, 2):
        if detach:
            h = h.detach()
        for p in params:
            p.grad = None
        loss = 0
        for t in (start, start + 1):
            h = cell(sequence[t], h)
            loss = loss + F.mse_loss(readout(h), targets[t])
        loss.backward(retain_graph=retain)
        sgd(params)
    return cell, readout


def test_truncated_bptt_matches_plain_loop():
    cell, readout = plain_bptt(detach=True)
    result = patterns.run_pattern("truncated_bptt")
    assert_same_params(result.models["cell"], cell)
    assert_same_params(result.models["readout"], readout)
    assert result.facts["RNN steps in the last chunk's graph"] == 2


@pytest.mark.parametrize("mistake, retain, fragment", [
    ("no_detach", False, "Trying to backward through the graph a second time"),
    ("retain_graph", True, "modified by an inplace operation"),
])
def test_truncated_bptt_mistakes_raise_like_plain_torch(mistake, retain, fragment):
    with pytest.raises(RuntimeError, match=fragment):
        plain_bptt(detach=False, retain=retain)
    result = patterns.run_pattern("truncated_bptt", mistake)
    assert fragment in result.error.message
    assert result.facts["RNN steps in the last chunk's graph"] == 4


# --- 3. EMA --------------------------------------------------------------------------------

def test_ema_is_the_weighted_average():
    torch.manual_seed(0)
    student = nn.Linear(4, 1)
    start = [p.detach().clone() for p in student.parameters()]
    x, y, _ = batch()
    F.mse_loss(student(x), y).backward()
    sgd(student.parameters())
    result = patterns.run_pattern("ema")
    for e, p0, p in zip(result.models["ema"].parameters(), start, student.parameters()):
        assert torch.allclose(e, 0.9 * p0 + 0.1 * p)
        assert e.grad is None and e.grad_fn is None
    assert result.reached == set()


def test_ema_mistakes():
    torch.manual_seed(0)
    s = nn.Linear(4, 1)
    frozen = copy.deepcopy(s).requires_grad_(False)
    frozen.weight.mul_(0.9).add_(s.weight, alpha=0.1)     # outside no_grad: recorded
    assert frozen.weight.grad_fn is not None
    silent = patterns.run_pattern("ema", "no_no_grad")
    assert silent.error is None
    assert silent.models["ema"].weight.grad_fn is not None
    assert silent.reached == {"student.weight", "student.bias"}

    unfrozen = copy.deepcopy(s)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        unfrozen.weight.mul_(0.9)
    loud = patterns.run_pattern("ema", "unfrozen_no_no_grad")
    assert "leaf Variable that requires grad" in loud.error.message


# --- 4. distillation -----------------------------------------------------------------------

def test_distillation_student_grad_and_teacher_untouched():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    student = nn.Linear(4, 3)
    x, _, _ = batch()
    with torch.no_grad():
        p_t = torch.softmax(teacher(x) / 2.0, dim=1)
    log_p_s = torch.log_softmax(student(x) / 2.0, dim=1)
    loss = (p_t * (p_t.log() - log_p_s)).sum() / x.shape[0] * 4.0   # KL, batchmean, T**2
    loss.backward()
    good = patterns.run_pattern("distillation")
    assert torch.allclose(good.models["student"].weight,
                          student.weight - LR * student.weight.grad, atol=1e-6)
    assert all(p.grad is None for p in good.models["teacher"].parameters())
    bad = patterns.run_pattern("distillation", "teacher_graph")
    assert all(p.grad is not None for p in bad.models["teacher"].parameters())
    assert_same_params(bad.models["teacher"], teacher)       # not in the optimizer


# --- 5. GAN --------------------------------------------------------------------------------

def plain_gan(detach):
    torch.manual_seed(0)
    G, D = nn.Linear(2, 3), nn.Linear(3, 1)
    g = torch.Generator().manual_seed(0)
    noise, real = torch.randn(8, 2, generator=g), torch.randn(8, 3, generator=g) + 2.0
    bce = nn.BCEWithLogitsLoss()
    fake = G(noise)
    d_loss = bce(D(real), torch.ones(8, 1)) + bce(D(fake.detach() if detach else fake),
                                                   torch.zeros(8, 1))
    d_loss.backward()
    g_after_d = grads_of(G)
    sgd(D.parameters())
    for p in G.parameters():
        p.grad = None
    bce(D(fake), torch.ones(8, 1)).backward()
    sgd(G.parameters())
    return G, D, g_after_d


def test_gan_matches_plain_step():
    G, D, g_after_d = plain_gan(detach=True)
    assert g_after_d == [None, None]
    result = patterns.run_pattern("gan")
    assert_same_params(result.models["generator"], G)
    assert_same_params(result.models["discriminator"], D)
    assert result.grads_none() == ["generator.weight", "generator.bias"]


def test_gan_without_detach_raises_in_generator_step():
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        plain_gan(detach=False)
    result = patterns.run_pattern("gan", "no_detach")
    assert result.grads["generator.weight"] == "values"
    assert "backward through the graph a second time" in result.error.message


# --- 6. actor-critic -----------------------------------------------------------------------

def plain_actor_critic(clear=True):
    torch.manual_seed(0)
    actor, critic = nn.Linear(3, 1), nn.Linear(4, 1)
    g = torch.Generator().manual_seed(0)
    states, returns = torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)
    action = torch.tanh(actor(states))
    (-critic(torch.cat([states, action], 1)).mean()).backward()
    left = grads_of(critic)
    sgd(actor.parameters())
    if clear:
        for p in critic.parameters():
            p.grad = None
    F.mse_loss(critic(torch.cat([states, action.detach()], 1)), returns).backward()
    critic_grads = grads_of(critic)
    sgd(critic.parameters())
    return actor, critic, left, critic_grads


def test_actor_critic_correct_and_no_clear():
    actor, critic, left, critic_grads = plain_actor_critic(clear=True)
    good = patterns.run_pattern("actor_critic")
    assert_same_params(good.models["actor"], actor)
    assert_same_params(good.models["critic"], critic)
    assert good.reached == {"critic.weight", "critic.bias"}
    assert all(g is not None for g in left)           # the actor's step left critic grads

    _, critic_nc, _, grads_nc = plain_actor_critic(clear=False)
    bad = patterns.run_pattern("actor_critic", "no_clear")
    assert_same_params(bad.models["critic"], critic_nc)
    for g_bad, g_good, g_left in zip(grads_nc, critic_grads, left):
        assert torch.allclose(g_bad, g_good + g_left)


def test_actor_critic_without_detach_reaches_actor_and_raises():
    result = patterns.run_pattern("actor_critic", "no_detach")
    assert {"actor.weight", "actor.bias"} <= result.reached
    assert "backward through the graph a second time" in result.error.message


# --- 6. DDPG ------------------------------------------------------------------------------

def plain_ddpg(clear_before_backward=True, target_no_grad=True):
    """Two DDPG updates written out; returns the networks, the critic's .grad just after each
    of its backward passes, its own loss's gradient each time, and what each actor backward
    left in the critic's .grad."""
    torch.manual_seed(0)
    actor, critic = nn.Linear(3, 1), nn.Linear(4, 1)
    actor_t, critic_t = copy.deepcopy(actor), copy.deepcopy(critic)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, generator=g), torch.rand(8, 1, generator=g) * 2 - 1,
                torch.randn(8, 1, generator=g), torch.randn(8, 3, generator=g))
               for _ in range(2)]
    seen, own, left = [], [], []
    for s, a, r, s2 in batches:
        with torch.no_grad() if target_no_grad else contextlib.nullcontext():
            y = r + 0.9 * critic_t(torch.cat([s2, torch.tanh(actor_t(s2))], 1))
        if clear_before_backward:
            critic.zero_grad()
        loss = ((critic(torch.cat([s, a], 1)) - y) ** 2).mean()
        own.append(torch.autograd.grad(loss, critic.weight, retain_graph=True)[0])
        loss.backward()
        seen.append(critic.weight.grad.clone())
        sgd(critic.parameters())
        if not clear_before_backward:
            critic.zero_grad()
        if clear_before_backward:
            actor.zero_grad()
        before = critic.weight.grad
        before = torch.zeros_like(critic.weight) if before is None else before.clone()
        (-critic(torch.cat([s, torch.tanh(actor(s))], 1)).mean()).backward()
        left.append(critic.weight.grad - before)
        sgd(actor.parameters())
        if not clear_before_backward:
            actor.zero_grad()
        with torch.no_grad():
            for net, t_net in ((actor, actor_t), (critic, critic_t)):
                for p, t in zip(net.parameters(), t_net.parameters()):
                    t.copy_(0.9 * t + 0.1 * p)
    return (actor, critic, actor_t, critic_t), seen, own, left


def test_ddpg_matches_plain_loop():
    nets, seen, own, _ = plain_ddpg()
    result = patterns.run_pattern("ddpg")
    for name, net in zip(["actor", "critic", "actor_target", "critic_target"], nets):
        assert_same_params(result.models[name], net)
    assert all(torch.allclose(a, b) for a, b in zip(seen, own))
    assert result.reached == {"critic.weight", "critic.bias"}
    assert result.facts["critic grad after the actor's step"] == "values"
    assert result.facts["critic grad before its backward"] == "None"


def test_ddpg_zero_after_step_adds_the_actors_leftovers_to_the_critic():
    nets, seen, own, left = plain_ddpg(clear_before_backward=False)
    result = patterns.run_pattern("ddpg", "zero_after_step")
    assert_same_params(result.models["critic"], nets[1])
    assert torch.allclose(seen[0], own[0])           # first update: nothing left over yet
    assert not torch.allclose(seen[1], own[1])       # second: the actor's step left grads
    assert torch.allclose(seen[1], own[1] + left[0])  # exactly those, added
    assert result.error is None and not result.ok
    assert not result.checks["the critic's gradient is its own loss's alone"]
    correct = patterns.run_pattern("ddpg")
    assert not torch.allclose(result.models["critic"].weight, correct.models["critic"].weight)


def test_ddpg_target_graph_reaches_the_targets_only():
    nets, _, _, _ = plain_ddpg(target_no_grad=False)
    result = patterns.run_pattern("ddpg", "target_graph")
    correct = patterns.run_pattern("ddpg")
    for name in ("actor", "critic"):                  # same updates as the correct step ...
        assert_same_params(result.models[name], correct.models[name])
    assert all(p.grad is not None for p in nets[2].parameters())   # ... plus target grads
    assert result.reached == {"critic.weight", "critic.bias", "actor_target.weight",
                              "actor_target.bias", "critic_target.weight", "critic_target.bias"}
    assert result.models["actor_target"].weight.grad is not None   # and nothing clears it
    assert result.grads["actor.weight"] == correct.grads["actor.weight"]


# --- 7. shared trunk -----------------------------------------------------------------------

@pytest.mark.parametrize("mistake", [None, "no_detach"])
def test_shared_trunk_gradient(mistake):
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    main_head, probe = nn.Linear(4, 1), nn.Linear(4, 3)
    x, y, labels = batch()
    features = trunk(x)
    main_loss = F.mse_loss(main_head(features), y)
    probe_loss = F.cross_entropy(probe(features), labels)
    wanted = main_loss if mistake is None else main_loss + probe_loss
    expected = torch.autograd.grad(wanted, trunk[0].weight)[0]
    result = patterns.run_pattern("shared_trunk", mistake)
    assert torch.allclose(result.models["trunk"][0].weight.grad, expected)
    assert result.grads_none() == []
    assert ("trunk.0.weight" in result.reached) == (mistake is not None)


# --- 8. stopped branch ---------------------------------------------------------------------

@pytest.mark.parametrize("mistake", [None, "no_detach", "freeze"])
def test_stopped_branch_gradients(mistake):
    torch.manual_seed(0)
    stem, branch, head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 1)
    x, y, _ = batch()
    h = torch.relu(stem(x))
    if mistake is None:
        side = branch(h.detach()).detach()
    elif mistake == "freeze":
        side = F.linear(h, branch.weight.detach(), branch.bias.detach())
    else:
        side = branch(h)
    F.mse_loss(head(h + side), y).backward()
    result = patterns.run_pattern("stopped_branch", mistake)
    assert torch.allclose(result.models["stem"].weight.grad, stem.weight.grad)
    got_branch = result.models["branch"].weight.grad
    assert (got_branch is None) == (mistake != "no_detach")
    if mistake == "no_detach":
        assert torch.allclose(got_branch, branch.weight.grad)


def test_freeze_and_detach_differ_only_in_the_stem_gradient():
    good = patterns.run_pattern("stopped_branch")
    frozen = patterns.run_pattern("stopped_branch", "freeze")
    assert good.grads == frozen.grads
    assert not torch.allclose(good.models["stem"].weight.grad,
                              frozen.models["stem"].weight.grad)


# --- views ---------------------------------------------------------------------------------

def test_table_and_outline():
    result = patterns.run_pattern("gan")
    table = result.table()
    assert table.column("grad") == ["None", "None", "values", "values"]
    assert table.column("in graph of d_loss") == ["no", "no", "yes", "yes"]
    assert "generator.weight (3, 2) grad: None (not in graph)" in repr(result.draw())
    broken = patterns.run_pattern("gan", "no_detach")
    assert "PyTorch raised RuntimeError" in repr(broken.table())
    assert repr(broken.draw(beside=result)).startswith("A GAN training step, correct")
    assert ("A GAN training step, mistake: discriminator trained on fake without detach()"
            in repr(broken.draw()))


def test_draw_svg(require_tool):
    require_tool("dot")
    svg = patterns.run_pattern("ema", "no_no_grad").draw().svg
    assert svg.startswith("<svg") and "student.weight" in svg


def test_summary_table_rows():
    table = patterns.summary_table()
    assert table.columns == ["pattern", "variant", "guarded tensor reaches", "verdict",
                             "what broke"]
    assert len(table.rows) == sum(1 + len(p.mistakes) for p in patterns.PATTERNS.values())
    assert table.column("verdict").count("ok") == len(patterns.PATTERNS)
    # GAN without detach(), from the plain step above: d_loss reaches both, then it raises
    gan_row = next(r for r in table.rows if r[0] == "gan" and r[1] != "correct")
    assert gan_row[2:4] == ["discriminator, generator", "BROKEN"]
    assert gan_row[4].startswith("error: Trying to backward through the graph a second time")


def test_quiz_and_explorer_are_the_series_widgets():
    """One quiz class and one explorer class serve mechanisms and patterns alike."""
    quiz, explorer = patterns.predict("gan"), patterns.explore("gan")
    assert type(quiz) is type(helpers.predict("control"))
    assert type(explorer) is type(helpers.explore("control"))
    assert "gfl-quiz" in quiz._dom_classes and "gfl-explorer" in explorer._dom_classes


def test_quiz_names_the_pattern_and_rejects_unknown_modules():
    quiz = patterns.predict("gan", mistake="no_detach")
    assert repr(quiz) == "PatternQuiz('gan', mistake='no_detach')"
    assert list(quiz.boxes) == ["generator", "discriminator"]
    quiz.choose(["generator", "discriminator"])
    why = patterns.PATTERNS["gan"].predictions["no_detach"]
    assert quiz.check() and f"It reaches: generator, discriminator. {why}" in \
        quiz.feedback.value.replace("&#x27;", "'")
    with pytest.raises(ValueError, match="unknown module"):
        quiz.choose(["critic"])
    with pytest.raises(ValueError, match="valid patterns"):
        patterns.predict("vae")


def test_predictions_live_with_the_pattern_not_the_notebook():
    """The quiz's explanation comes from the pattern's data; the notebook passes none."""
    quiz = patterns.predict("stopped_branch", mistake="freeze")
    assert quiz.answer == {"stem"}            # frozen branch: recorded, the stem is reached
    assert quiz.why == patterns.PATTERNS["stopped_branch"].predictions["freeze"]
    assert "<details" in quiz.details_html() and "It reaches: stem." in quiz.details_html()
    bare = patterns.Pattern("bare", "t", lambda rec, mistake: None, "loss", (), (),
                            {"oops": "a mistake"}, "summary", {"oops": "why."})
    with pytest.raises(ValueError, match="no prediction for 'correct'; registered: 'oops'"):
        bare.why()
    with pytest.raises(ValueError, match="'no_detach'"):
        patterns.predict("gan", mistake="freeze")       # an unknown mistake names the valid ones
    with pytest.raises(TypeError):
        patterns.predict("gan", mistake="no_detach", why="in the notebook")   # no why= any more
    source = (ROOT / "notebooks" / "sources" / "09_patterns.py").read_text(encoding="utf-8")
    assert "patterns.predict(" in source and not re.search(r"predict\([^)]*\bwhy=", source)


def test_every_variant_has_a_prediction_and_strays_are_refused():
    for name, item in patterns.PATTERNS.items():
        assert set(item.predictions) == set(item.variants), name
        assert all(text.endswith(".") for text in item.predictions.values()), name
    with pytest.raises(ValueError, match="unknown variant.*'typo'.*valid: correct, oops"):
        patterns.core.pattern("probe_only", "t", "loss", [], [], {"oops": "a mistake"},
                              predictions={"typo": "why."})(lambda rec, mistake: None)
    assert "probe_only" not in patterns.PATTERNS


def test_explorer_variants_follow_the_pattern():
    explorer = patterns.explore("gan")
    assert repr(explorer) == "PatternExplorer('gan', mistake=None)"
    assert list(explorer.controls) == ["pattern", "variant"]
    assert [label for label, _ in explorer.controls["pattern"].options] == [
        p.title for p in patterns.PATTERNS.values()]
    explorer.controls["variant"].value = "no_detach"
    assert "RuntimeError" in explorer.table.value
    explorer.controls["pattern"].value = "actor_critic"     # the variant goes back to correct
    assert explorer.options == {"pattern": "actor_critic", "variant": "correct"}
    assert [label for label, _ in explorer.controls["variant"].options] == [
        "correct", "mistake: critic trained on the actor's action without detach()",
        "mistake: critic's grads not cleared after the actor's step"]
    assert "critic.weight" in explorer.table.value
    assert "A GAN training step" not in explorer.graph.value
    explorer.set(variant="no_clear")
    assert "check failed" in explorer.table.value
    explorer.set(pattern="ema", variant="no_no_grad")
    assert repr(explorer) == "PatternExplorer('ema', mistake='no_no_grad')"
    with pytest.raises(ValueError, match="valid variants: 'correct', 'no_no_grad'"):
        explorer.set(variant="no_detach")
    with pytest.raises(ValueError, match="valid patterns"):
        explorer.set(pattern="vae")
    assert repr(explorer) == "PatternExplorer('ema', mistake='no_no_grad')"  # unchanged


def test_explorer_controls_carry_tooltips():
    explorer = patterns.explore("ddpg", mistake="target_graph")
    for name, control in explorer.controls.items():
        tip = getattr(control, "tooltip", None) or getattr(control, "description_tooltip")
        assert tip, name


# --- exercises -----------------------------------------------------------------------------

def test_exercise_solutions_pass_and_wrong_answers_fail():
    torch.manual_seed(0)
    student = nn.Linear(4, 1)
    ema = copy.deepcopy(student).requires_grad_(False)
    x, y, labels = batch()
    F.mse_loss(student(x), y).backward()
    sgd(student.parameters())
    with torch.no_grad():
        ema.weight.mul_(0.9).add_(student.weight, alpha=0.1)
    assert helpers.check("09.1", ema.weight)
    assert not helpers.check("09.1", student.weight.detach())
    # the hints: EMA updated before the step, or with 0.9 and 0.1 swapped, is wrong
    torch.manual_seed(0)
    old = nn.Linear(4, 1).weight.detach()
    before_step = helpers.check("09.1", 0.9 * old + 0.1 * old)
    assert not before_step and "before its step" in repr(before_step)
    swapped = helpers.check("09.1", 0.1 * old + 0.9 * student.weight.detach())
    assert not swapped and "nine tenths" in repr(swapped)
    other = helpers.check("09.1", old + 1.0)             # no hint: the explanation
    assert not other and "swapping 0.9 and 0.1" in repr(other)

    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    main_head, probe = nn.Linear(4, 1), nn.Linear(4, 3)
    features = trunk(x)
    main_loss = F.mse_loss(main_head(features), y)
    right = torch.autograd.grad(main_loss, trunk[0].weight, retain_graph=True)[0]
    wrong = torch.autograd.grad(main_loss + F.cross_entropy(probe(features), labels),
                                trunk[0].weight)[0]
    assert helpers.check("09.2", right) and not helpers.check("09.2", wrong)
    assert "also carries the probe's loss" in repr(helpers.check("09.2", wrong))

    _, readout = plain_bptt(detach=True)
    assert helpers.check("09.3", readout.bias)
    assert not helpers.check("09.3", readout.bias + 0.01)
    # the hint: without zero_grad() the second update adds the first chunk's gradient
    torch.manual_seed(0)
    cell, readout_nz = nn.RNNCell(2, 3), nn.Linear(3, 1)
    g = torch.Generator().manual_seed(0)
    sequence, targets = torch.randn(4, 5, 2, generator=g), torch.randn(4, 5, 1, generator=g)
    opt = torch.optim.SGD([*cell.parameters(), *readout_nz.parameters()], lr=0.1)
    h = torch.zeros(5, 3)
    for start in (0, 2):
        h = h.detach()
        loss = 0
        for t in (start, start + 1):
            h = cell(sequence[t], h)
            loss = loss + F.mse_loss(readout_nz(h), targets[t])
        loss.backward()                        # no zero_grad() before it
        opt.step()
    assert not helpers.check("09.3", readout_nz.bias)
    assert "first chunk's gradient, still in .grad" in repr(helpers.check("09.3", readout_nz.bias))

    names = {"backbone.0.weight", "backbone.0.bias", "head.weight", "head.bias"}
    assert helpers.check("09.4", {"head.weight", "head.bias"})
    wrong = helpers.check("09.4", names)                 # the answer without the detach()
    assert not wrong and "with a gradient without the detach()" in repr(wrong)
    backbone, head, x, labels = plain_transfer()
    torch.optim.SGD([*backbone.parameters(), *head.parameters()], lr=0.1).zero_grad()
    F.cross_entropy(head(backbone(x).detach()), labels).backward()
    assert {n for n, p in [*(("backbone." + k, v) for k, v in backbone.named_parameters()),
                           *(("head." + k, v) for k, v in head.named_parameters())]
            if p.grad is not None} == {"head.weight", "head.bias"}
    assert "Not answered yet" in repr(helpers.check("09.4", ...))
    assert {"09.1", "09.2", "09.3", "09.4", "09.5"} <= set(EXERCISES)
    assert all(EXERCISES[k].hints for k in ("09.1", "09.2", "09.3", "09.4", "09.5"))


def plain_byol_encoder_grad(no_grad_target=True, detach_online=True, predictor_only=True):
    """Exercise 09.5's step in plain PyTorch: the encoder's grad with one suspect removed."""
    torch.manual_seed(0)
    encoder, predictor = nn.Linear(4, 4), nn.Linear(4, 4)
    target_encoder = copy.deepcopy(encoder).requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    view1, view2 = torch.randn(2, 8, 4, generator=g)
    params = list(predictor.parameters())
    if not predictor_only:
        params += list(encoder.parameters())
    optimizer = torch.optim.SGD(params, lr=LR)
    with torch.no_grad() if no_grad_target else contextlib.nullcontext():
        target = target_encoder(view2)
    features = encoder(view1)
    online = predictor(features.detach() if detach_online else features)
    optimizer.zero_grad()
    (-F.cosine_similarity(online, target).mean()).backward()
    assert predictor.weight.grad is not None          # the loss does have a gradient
    return encoder.weight.grad


def test_09_5_only_the_online_detach_starves_the_encoder():
    assert plain_byol_encoder_grad() is None
    assert plain_byol_encoder_grad(no_grad_target=False) is None     # (b) is not the cause
    assert plain_byol_encoder_grad(predictor_only=False) is None     # (c) is not the cause
    assert plain_byol_encoder_grad(detach_online=False) is not None  # (a) is
    assert helpers.check("09.5", "a")
    for letter, says in (("b", "runs the target encoder"), ("c", "whatever the optimizer")):
        verdict = helpers.check("09.5", letter)
        assert not verdict and says in repr(verdict)


@pytest.mark.parametrize("way", ["freeze", "no_grad", "detach"])
def test_09_4_every_way_that_saves_the_backbones_gradient_work(way):
    backbone, head, x, labels = plain_transfer()
    if way == "freeze":
        backbone.requires_grad_(False)
    with torch.no_grad() if way == "no_grad" else contextlib.nullcontext():
        out = backbone(x)
    recorded = out.grad_fn is not None
    features = out.detach() if way == "detach" else out
    loss = F.cross_entropy(head(features), labels)
    # the backbone is out of the loss's graph: backward computes nothing for it
    assert patterns.reached_by(loss, dict(backbone.named_parameters())) == set()
    loss.backward()
    assert all(p.grad is None for p in backbone.parameters())
    assert all(p.grad is not None for p in head.parameters())
    # the forward still recorded the backbone with detach(), not with freezing or no_grad
    assert recorded == (way == "detach")
    why = EXERCISES["09.4"].why
    assert "Only requires_grad_(False)" not in why
    assert {"freeze": "requires_grad_(False)", "no_grad": "torch.no_grad()",
            "detach": ".detach()"}[way] in why


def test_check_registers_pattern_exercises_on_its_own():
    code = ("import helpers; v = helpers.check('09.4', {'head.weight', 'head.bias'}); "
            "assert v, v; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
