"""The helpers package: registry, outcomes, graphs, tables, explorer, quiz, checks, errors."""

import html
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

import helpers
from helpers.graph import INSTALL_HINT, draw
from helpers.registry import Mechanism, Option, register

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, env=None):
    """Run ``code`` in a fresh interpreter (new object ids, empty caches); return stdout."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_grad_state_distinguishes_none_zeros_values():
    from helpers.outcome import grad_state

    assert grad_state(None) == "None"
    assert grad_state(torch.zeros(3)) == "zeros"
    assert grad_state(torch.tensor([0.0, 1e-30])) == "values"


def test_unknown_mechanism_option_and_value_name_the_valid_ones():
    with pytest.raises(ValueError, match="valid mechanisms: .*control"):
        helpers.run("nope")
    with pytest.raises(ValueError, match="its options are: optimizer_step, input_grad"):
        helpers.run("control", nope="yes")
    with pytest.raises(ValueError, match="valid choices: 'yes', 'no'"):
        helpers.run("control", optimizer_step="sometimes")
    with pytest.raises(ValueError, match="valid mechanisms"):
        helpers.explore("nope")
    with pytest.raises(ValueError, match="valid choices"):
        helpers.explore("control", input_grad=3)
    with pytest.raises(ValueError, match="valid mechanisms"):
        helpers.truth_table("nope")
    with pytest.raises(ValueError, match="valid mechanisms"):
        helpers.predict("nope")


def test_registry_rejects_bad_definitions():
    with pytest.raises(ValueError, match="default 'c'"):
        Option("o", {"a": "A", "b": "B"}, "c")
    with pytest.raises(ValueError, match="registered twice"):
        register(Mechanism(name="control", title="again", step=lambda ctx: None))


def test_errors_in_a_step_are_caught_and_explained():
    def frozen_everything(ctx):
        for p in ctx.net.parameters():
            p.requires_grad_(False)
        ctx.loss_of(ctx.net(ctx.x)).backward()

    mechanism = Mechanism(name="test-frozen", title="t", step=frozen_everything)
    outcome = mechanism.run()
    assert outcome.error.kind == "RuntimeError"
    assert "does not require grad" in outcome.error.message
    assert "Nothing the loss depends on requires grad" in outcome.error.explanation
    assert outcome.grads_none() == list(helpers.PARAM_NAMES)
    table = helpers.grad_table(outcome)
    assert "PyTorch raised RuntimeError" in repr(table)
    assert 'class="gfl-none"' in table._repr_html_()
    # With no graph at all, the drawing is the lone loss node plus the four absent parameters.
    outline = repr(draw(outcome))
    assert outline.count("(not in graph)") == 4 and "Backward" not in outline


def test_unexplained_errors_still_get_a_sentence():
    from helpers.errors import explain

    caught = explain(RuntimeError("something new\nsecond line"))
    assert caught.message == "something new" and caught.explanation


def test_second_backward_explanation_says_detach_before_retain_graph():
    # The usual cause is a missing detach() (GAN, actor-critic, truncated BPTT), where
    # retain_graph=True would hide the bug: the explanation must lead with detach().
    from helpers.errors import explain

    w = torch.ones(2, requires_grad=True)
    h = w * w                                  # saves w for backward
    h.sum().backward()                         # frees it
    with pytest.raises(RuntimeError) as info:
        (2 * h).sum().backward()               # back through h's freed graph
    caught = explain(info.value)
    assert "backward through the graph a second time" in caught.message
    text = caught.explanation
    assert "detach()" in text and "retain_graph=True" in text
    assert text.index("detach()") < text.index("retain_graph=True")
    assert "only when two backward passes through one graph are really meant" in text


def test_grad_table_text_and_html_mark_none():
    def half_frozen(ctx):
        ctx.net.l1.requires_grad_(False)
        ctx.loss_of(ctx.net(ctx.x)).backward()

    outcome = Mechanism(name="test-half", title="t", step=half_frozen).run()
    text = repr(helpers.grad_table(outcome)).splitlines()
    rows = {line.split()[0]: line.split() for line in text[2:]}
    assert rows["l1.weight"][1:3] == ["False", "None"] and rows["l2.weight"][2] == "values"
    html = helpers.grad_table(outcome)._repr_html_()
    assert html.count('class="gfl-none"') == 2


def test_graph_nodes_have_stable_names_and_none_params_look_different():
    def frozen_l1(ctx):
        ctx.net.l1.requires_grad_(False)
        ctx.loss_of(ctx.net(ctx.x)).backward()

    outcome = Mechanism(name="test-frozen-l1", title="t", step=frozen_l1).run()
    source = draw(outcome).source
    assert "g0_n0 " in source and str(id(outcome.loss)) not in source
    none_lines = [line for line in source.splitlines() if "l1.weight" in line]
    assert len(none_lines) == 1 and "dashed" in none_lines[0] and "not in graph" in none_lines[0]
    grad_lines = [line for line in source.splitlines() if "l2.weight" in line]
    assert "dashed" not in grad_lines[0]


def test_same_step_renders_byte_identical_svg_in_fresh_processes(require_tool):
    require_tool("dot")
    code = """
        import hashlib, helpers
        view = helpers.draw(helpers.run("control", input_grad="yes"), beside=helpers.run("control"))
        cut = helpers.draw(helpers.run("detach", cut="l2"))  # with a recorded, cut-off part
        print(hashlib.sha256((view.svg + cut.svg).encode()).hexdigest())
    """
    first, second = run_python(code), run_python(code)
    assert first == second and len(first.strip()) == 64


def test_svg_shows_both_graphs_side_by_side(require_tool):
    require_tool("dot")
    svg = draw(helpers.run("control", input_grad="yes"), beside=helpers.run("control")).svg
    assert svg.startswith("<svg") and svg.count('class="cluster"') == 2
    control = helpers.get_mechanism("control")
    titles = [html.escape(control.describe(**o)) for o in ({"input_grad": "yes"}, {})]
    assert titles[0] != titles[1] and all(f">{title}</text>" in svg for title in titles)


def test_missing_dot_still_runs_with_text_outline_and_install_hint():
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    assert shutil.which("dot", path=env["PATH"]) is None
    out = run_python("""
        import helpers
        view = helpers.draw(helpers.run("control"))
        assert view._repr_svg_() is None
        html = view._repr_html_()
        assert "apt-get install graphviz" in html and "brew install graphviz" in html
        assert "&lt;- MseLossBackward0" in html
        explorer = helpers.explore("control")
        before = explorer.table.value
        explorer.controls["optimizer_step"].value = "no"
        assert explorer.table.value != before and "gfl-no-dot" in explorer.graph.value
        print("ok")
    """, env=env)
    assert out.strip() == "ok"
    assert "winget install graphviz" in INSTALL_HINT and "conda install" in INSTALL_HINT


def test_torchviz_import_failure_says_to_install_setuptools():
    out = run_python("""
        import sys
        sys.modules["distutils"] = None   # as on Python 3.12 without setuptools' shim
        sys.modules.pop("torchviz", None)
        from helpers.graph import import_torchviz
        try:
            import_torchviz()
        except ImportError as error:
            print(error)
    """)
    assert "Python 3.12" in out and "pip install setuptools" in out


def test_explorer_controls_come_from_the_registry_and_redraw(require_tool):
    require_tool("dot")
    explorer = helpers.explore("control")
    mechanism = helpers.get_mechanism("control")
    assert list(explorer.controls) == [o.name for o in mechanism.options]
    for option in mechanism.options:
        control = explorer.controls[option.name]
        assert [value for _, value in control.options] == list(option.choices)
        assert control.value == option.default
    table, graph = explorer.table.value, explorer.graph.value
    explorer.controls["optimizer_step"].value = "no"
    assert explorer.table.value != table
    assert explorer.table.value.count("<td>no</td>") == 4  # nothing changed by the step
    explorer.controls["input_grad"].value = "yes"
    assert explorer.graph.value != graph and "leaf tensor (8, 4)" in explorer.graph.value
    explorer.set(optimizer_step="yes", input_grad="no")
    assert (explorer.table.value, explorer.graph.value) == (table, graph)
    assert repr(explorer) == "Explorer('control', optimizer_step='yes', input_grad='no')"


def test_truth_table_lists_every_combination():
    table = helpers.truth_table("control")
    combos = list(helpers.get_mechanism("control").combinations())
    assert len(table.rows) == len(combos) == 4
    assert table.column("optimizer_step") == ["yes", "yes", "no", "no"]
    assert table.column("grad l1.weight") == ["values *", "values *", "values", "values"]
    assert "None / zeros / values" in repr(table)


def test_quiz_marks_right_and_wrong_answers():
    quiz = helpers.predict("control")
    assert quiz.why == helpers.get_mechanism("control").why() != ""  # from the registry
    quiz.choose([])
    assert quiz.check() and "Right!" in quiz.feedback.value
    quiz.choose(["l1.weight"])
    assert not quiz.check() and "Not quite." in quiz.feedback.value
    quiz.boxes["l1.weight"].value = False
    quiz.button.click()
    assert "Right!" in quiz.feedback.value
    with pytest.raises(ValueError, match="unknown parameter"):
        quiz.choose(["l3.weight"])


def test_quiz_folds_its_answer_and_why_below_the_widget(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    quiz = helpers.predict("detach", cut="l1")
    shown = []
    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell.display_pub, "publish", lambda data, **kw: shown.append(data))
    quiz._ipython_display_()
    assert "application/vnd.jupyter.widget-view+json" in shown[0]
    folded = shown[1]["text/html"]
    assert folded.startswith('<details class="gfl-answer">')
    assert "l1.weight, l1.bias." in folded and "backward()" in folded


def test_prediction_keys_must_name_a_valid_option_state():
    from helpers.registry import Mechanism, Option

    with pytest.raises(ValueError, match="unknown option states"):
        Mechanism(name="probe", title="", step=lambda ctx, cut: None,
                  options=(Option("cut", {"a": "A"}, "a"),), predictions={"cut=b": "why"})


def test_exercise_checks_accept_solutions_and_reject_wrong_answers():
    assert helpers.check("00.1", (2, 5))                 # nn.Linear(5, 2).weight's shape
    assert not helpers.check("00.1", (5, 2))
    assert helpers.check("00.3", "b")
    assert not helpers.check("00.3", "a")
    unanswered = helpers.check("00.2", ...)
    assert not unanswered and "Not answered yet" in repr(unanswered)
    with pytest.raises(ValueError, match="unknown exercise"):
        helpers.check("99.9", 1)


def test_saved_tensor_bytes_is_zero_under_no_grad():
    from helpers.costs import saved_tensor_bytes

    net = helpers.toy_net()
    x, y = helpers.toy_batch()

    def forward_no_grad():
        with torch.no_grad():
            helpers.toy_loss(net(x), y)

    assert saved_tensor_bytes(forward_no_grad) == 0
    assert saved_tensor_bytes(lambda: helpers.toy_loss(net(x), y)) > 0
