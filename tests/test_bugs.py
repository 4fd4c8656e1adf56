"""The bug catalogue (helpers/bugs/) against plain autograd reasoning, without the doctor.

Each claimed cause is checked with tools the doctor does not use: module forward hooks (which
grad mode each module ran in), a walk of the loss's ``grad_fn`` graph, ``.grad`` and the
parameters before and after the step, and the optimizer's tensors compared by identity.
"""

import warnings

import pytest
import torch

from helpers import bugs

NAMES = list(bugs.BUGS)


def observe(name, fixed=False):
    """Run bug ``name``'s step plainly; per tensor: what a debugging learner could observe."""
    planted = bugs.plant(name, fixed=fixed)
    model = planted.model
    modes = {}  # module name -> set of (grad enabled, inference mode) it ran under

    def hook(module_name):
        def record(module, inputs, output):
            modes.setdefault(module_name, set()).add(
                (torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    captured = {}
    items = {}  # id(tensor) -> grad modes of its .item() calls (a use outside any module)
    original_backward, original_item = torch.Tensor.backward, torch.Tensor.item

    def item(self):
        items.setdefault(id(self), set()).add(
            (torch.is_grad_enabled(), torch.is_inference_mode_enabled()))
        return original_item(self)

    def backward(self, *args, **kwargs):  # keep the loss, even if backward raises
        captured["loss"], captured["inputs"] = self, kwargs.get("inputs")
        return original_backward(self, *args, **kwargs)

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    error = None
    torch.Tensor.backward, torch.Tensor.item = backward, item
    try:
        planted.step()
    except RuntimeError as exc:
        error = exc
    finally:
        torch.Tensor.backward, torch.Tensor.item = original_backward, original_item
        for handle in handles:
            handle.remove()
    reached = set()
    loss = captured.get("loss")
    stack = [loss.grad_fn] if loss is not None and loss.grad_fn is not None else []
    seen = set()
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if hasattr(fn, "variable"):
            reached.add(id(fn.variable))
        stack += [f for f, _ in fn.next_functions]
    if captured.get("inputs") is not None:  # backward(inputs=...) fills only those
        reached &= {id(t) for t in captured["inputs"]}
    held = {id(p) for group in planted.optimizer.param_groups for p in group["params"]}
    facts = {}
    for pname, p in model.named_parameters():
        owner = pname.rsplit(".", 1)[0] if "." in pname else ""
        ran = modes.get(owner, set()) | items.get(id(p), set())
        if id(p) in reached:  # the loss's graph holds it: used with grad on, whatever ran
            ran = ran | {(True, False)}
        facts[pname] = dict(
            requires_grad=p.requires_grad, ran=ran, reached=id(p) in reached,
            grad=None if p.grad is None else ("zeros" if not torch.any(p.grad) else "values"),
            in_optimizer=id(p) in held, moved=not torch.equal(before[pname], p.detach()),
            leaf=p.is_leaf)
    for tname, t in planted.tensors.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # .grad of a non-leaf warns
            grad = t.grad
        facts[tname] = dict(
            requires_grad=t.requires_grad, leaf=t.is_leaf, reached=id(t) in reached,
            grad=None if grad is None else ("zeros" if not torch.any(grad) else "values"),
            in_optimizer=id(t) in held, moved=False)
    return facts, error


def plain_cause(fact):
    """The issue's cause order, decided from the plain facts above."""
    if not fact["requires_grad"]:
        return "frozen"
    if "ran" in fact and not fact["ran"]:
        return "unused"
    if "ran" in fact and all(inference for _, inference in fact["ran"]):
        return "inference_mode"
    if "ran" in fact and not any(grad_on for grad_on, _ in fact["ran"]):
        return "no_grad"
    if not fact["leaf"]:
        return "non_leaf"
    if not fact["reached"]:
        return "detached"
    if fact["grad"] is None:
        return "?"
    if not fact["in_optimizer"]:
        return "not_in_optimizer"
    if fact["grad"] == "zeros":
        return "zero_grad"
    if not fact["moved"]:
        return "not_moved"
    return "ok"


@pytest.mark.parametrize("name", NAMES)
def test_claimed_causes_follow_from_plain_facts(name):
    expected = bugs.expected_causes(name)
    facts, error = observe(name)
    item = bugs.BUGS[name]
    if item.error is None:
        assert error is None, f"{name}: the step raised {error}"
    else:
        assert error is not None and item.error in str(error), f"{name}: raised {error!r}"
    if expected is None:
        assert item.error is not None  # only steps that raise leave the causes unclaimed
        return
    assert set(expected) == set(facts)
    if error is not None:  # backward never finished: only the graph cut decides
        for pname, cause in expected.items():
            assert cause == "detached" and not facts[pname]["reached"], pname
        return
    got = {pname: plain_cause(fact) for pname, fact in facts.items()}
    assert got == expected


@pytest.mark.parametrize("name", NAMES)
def test_the_one_line_fix_repairs_the_step(name):
    facts, error = observe(name, fixed=True)
    assert error is None, f"{name} fixed: the step raised {error}"
    got = {pname: plain_cause(fact) for pname, fact in facts.items()}
    want = {pname: bugs.BUGS[name].fixed_causes.get(pname, "ok") for pname in facts}
    assert got == want


def test_each_bug_is_one_marked_line():
    for name in NAMES:
        lines = bugs.source(name).splitlines()
        assert sum("# BUG" in line for line in lines) == (name != "none"), name


def test_item_is_a_use_that_leaves_no_path():
    # The .item() bug calls block.branch(), not block(): block.scale is used only by .item().
    facts, _ = observe("item")
    assert facts["block.scale"]["ran"] == {(True, False)}
    assert not facts["block.scale"]["reached"] and facts["block.scale"]["grad"] is None


def test_correct_step_trains_every_parameter():
    facts, error = observe("none")
    assert error is None
    assert all(f["grad"] == "values" and f["moved"] for f in facts.values())
    assert list(facts) == bugs.EVERY


def test_dead_relu_zeros_exactly_fc1_and_fc2_weight():
    facts, _ = observe("dead_relu")
    zeros = {n for n, f in facts.items() if f["grad"] == "zeros"}
    assert zeros == {"block.fc1.weight", "block.fc1.bias", "block.fc2.weight"}


@pytest.mark.parametrize("name", [n for n, b in bugs.BUGS.items() if b.line])
def test_inplace_line_is_in_the_source(name):
    code = bugs.source(name)
    assert bugs.BUGS[name].line in code
    assert "# BUG" in code


def test_every_bug_marks_its_line_and_the_models_are_fresh():
    for name, item in bugs.BUGS.items():
        code = bugs.source(name)
        assert code.startswith("def ")
        assert ("# BUG" in code) == (name != "none"), name
    a, b = bugs.plant("none"), bugs.plant("none")
    assert a.model is not b.model
    for (_, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert torch.equal(p, q)


def test_unknown_bug_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid bugs: none, frozen"):
        bugs.plant("nope")
