"""helpers.myths: the claims and verdicts of notebook 10, and how it presents helpers.costs.

Every verdict in the data is checked here against plain PyTorch, independently of the notebook
and of the helpers under test, so a PyTorch upgrade that changes a behaviour fails here too.
"""

import contextlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import helpers
from helpers import costs, myths
from helpers.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
TWIN = ROOT / "notebooks" / "sources" / "10_myths.py"


# ----- plain PyTorch, independent of the helpers -----------------------------------------------

def plain_net():
    """The toy net rebuilt by hand: Linear(4, 3), ReLU, Linear(3, 1), seed 0."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))


def plain_batch():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(8, 4, generator=generator), torch.randn(8, 1, generator=generator)


def mse(out, target):
    return ((out - target) ** 2).mean()


def saved_bytes(function):
    """Bytes of every tensor saved for backward while ``function`` runs (weights included)."""
    total = []

    def pack(t):
        total.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        function()
    return sum(total)


# ----- each verdict, observed in plain PyTorch -------------------------------------------------

def observe_detach_copies():
    x, _ = plain_batch()
    out = plain_net()(x)
    d = out.detach()
    d.mul_(2)
    shares = d.data_ptr() == out.data_ptr() and out._version == 1
    return "false" if shares else "true"


def observe_no_grad_beats_detach():
    # The "because" is false when detach() copies nothing; and detaching after the forward
    # saves as much as grad mode, while no_grad saves nothing.
    x, _ = plain_batch()
    net = plain_net()
    after = saved_bytes(lambda: net(x).detach())
    plain = saved_bytes(lambda: net(x))

    def under_no_grad():
        with torch.no_grad():
            net(x)

    if observe_detach_copies() == "false" and after == plain > 0 == saved_bytes(under_no_grad):
        return "false"
    return "true"


def observe_zero_grad_differ():
    x, y = plain_batch()
    results = {}
    for who in ("model", "optimizer"):
        net = plain_net()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        mse(net(x), y).backward()
        (net.zero_grad if who == "model" else optimizer.zero_grad)()
        results[who] = net[0].weight.grad is None
    if results["model"] and results["optimizer"]:
        return "false"
    return "true" if not results["model"] and results["optimizer"] else "unexpected"


def observe_requires_grad_replaces_no_grad():
    x, _ = plain_batch()
    net = plain_net().requires_grad_(False)
    all_frozen_plain_input = net(x).grad_fn is None and saved_bytes(lambda: net(x)) == 0
    input_requires_grad = net(x.clone().requires_grad_()).grad_fn is not None
    if all_frozen_plain_input and input_requires_grad:
        return "it depends"
    return "true" if all_frozen_plain_input else "false"


def observe_eval_stops_autograd():
    x, y = plain_batch()
    net = plain_net().eval()
    out = net(x)
    if out.grad_fn is None:
        return "true"
    mse(out, y).backward()
    return "false" if all(p.grad is not None for p in net.parameters()) else "unexpected"


def observe_optimizers_skip_frozen():
    x, y = plain_batch()
    net = plain_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    mse(net(x), y).backward()
    optimizer.step()
    net[0].requires_grad_(False)
    optimizer.zero_grad(set_to_none=False)
    before = net[0].weight.detach().clone()
    mse(net(x), y).backward()
    optimizer.step()
    return "true" if torch.equal(net[0].weight, before) else "false"


def observe_inference_mode_isolated():
    w = torch.ones(3, requires_grad=True)
    with torch.inference_mode():
        f = torch.ones(3)
    (w + f).sum().backward()                       # read by grad-mode code: works
    readable = torch.equal(w.grad, torch.ones(3))
    try:
        w * f                                      # mul saves f for w's gradient: refused
        refused = False
    except RuntimeError as error:
        refused = "Inference tensors cannot be saved for backward" in str(error)
    with torch.inference_mode(), torch.inference_mode(False):
        nested = (w * 2).grad_fn is not None
    return "false" if readable and refused and nested else "true"


def observe_inference_mode_much_faster():
    # Only the stable part: the same memory as no_grad, to the byte (peak and saved).
    x = torch.randn(32, 256, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU())

    def run(context):
        def forward():
            with context():
                net(x)
        return forward

    same_saved = saved_bytes(run(torch.no_grad)) == saved_bytes(run(torch.inference_mode)) == 0
    same_peak = (costs.peak_memory_bytes(run(torch.no_grad))
                 == costs.peak_memory_bytes(run(torch.inference_mode)))
    return "false" if same_saved and same_peak else "unexpected"


OBSERVE = {
    "detach_copies": observe_detach_copies,
    "no_grad_beats_detach": observe_no_grad_beats_detach,
    "zero_grad_differ": observe_zero_grad_differ,
    "requires_grad_replaces_no_grad": observe_requires_grad_replaces_no_grad,
    "eval_stops_autograd": observe_eval_stops_autograd,
    "optimizers_skip_frozen": observe_optimizers_skip_frozen,
    "inference_mode_isolated": observe_inference_mode_isolated,
    "inference_mode_much_faster": observe_inference_mode_much_faster,
}


def test_every_myth_has_an_observation():
    assert set(OBSERVE) == {m.key for m in myths.MYTHS}


@pytest.mark.parametrize("key", list(OBSERVE))
def test_verdict_matches_pytorch(key):
    assert myths.verdict(key).verdict == OBSERVE[key]()


# ----- the data -------------------------------------------------------------------------------

def test_the_issue_claims_in_order():
    assert [myths.plain(m.claim) for m in myths.MYTHS] == [
        "detach() copies the tensor",
        "no_grad is faster than detach because detach copies",
        "model.zero_grad() zeros in place, optimizer.zero_grad() sets None",
        "requires_grad=False replaces no_grad for inference",
        "eval() turns off autograd",
        "Optimizers skip frozen parameters",
        "inference_mode cannot be mixed with grad-enabled code",
        "inference_mode is much faster than no_grad",
    ]


def test_data_is_well_formed():
    keys = [m.key for m in myths.MYTHS]
    assert len(keys) == len(set(keys))
    for m in myths.MYTHS:
        assert m.verdict in ("true", "false", "it depends")
        assert (ROOT / "notebooks" / "sources" / f"{m.notebook}.py").is_file(), m.notebook
        assert m.reason.endswith(".") and "\n" not in m.reason
        assert m.claim.count("`") % 2 == 0 and m.reason.count("`") % 2 == 0


def test_a_bad_verdict_or_notebook_is_refused():
    with pytest.raises(ValueError, match="verdict"):
        myths.Myth("k", "claim", "maybe", "why.", "03_detach")
    with pytest.raises(ValueError, match="unknown notebook '99_nothing'; valid notebooks: "
                                         "00_start_here, 01_zero_grad"):
        myths.Myth("k", "claim", "false", "why.", "99_nothing")
    with pytest.raises(ValueError, match="give its slug, '03_detach'"):
        myths.Myth("k", "claim", "false", "why.", "03")
    with pytest.raises(ValueError, match="unknown myth 'nope'; valid: detach_copies"):
        myths.verdict("nope")


def optimizers_that_move_a_parameter_whose_grad_is_none():
    """Every built-in torch.optim optimizer: 2 steps on two parameters, then one is frozen with
    its grad set to None, then 2 more steps. Returns the names of those that moved it anyway."""
    movers = set()
    for name in dir(torch.optim):
        cls = getattr(torch.optim, name)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)) or \
                cls is torch.optim.Optimizer or name == "SparseAdam":  # sparse grads only
            continue
        torch.manual_seed(0)
        a = torch.randn(3, 3, requires_grad=True)      # 2-D: Muon takes matrices only
        b = torch.randn(3, 3, requires_grad=True)
        optimizer = cls([a, b], lr=0.1)

        def closure():
            optimizer.zero_grad()
            loss = ((a - 1) ** 2).sum()
            if b.requires_grad:
                loss = loss + ((b + 1) ** 2).sum()
            loss.backward()
            return loss

        for _ in range(2):
            optimizer.step(closure)
        b.requires_grad_(False)
        b.grad = None
        start = b.detach().clone()
        for _ in range(2):
            optimizer.step(closure)
        assert b.grad is None
        if not torch.equal(b, start):
            movers.add(name)
    return movers


def test_optimizer_verdict_names_every_exception():
    """The old reason said optimizers skip a parameter whose grad is None; LBFGS moves it."""
    reason = myths.verdict("optimizers_skip_frozen").reason
    movers = optimizers_that_move_a_parameter_whose_grad_is_none()
    assert movers, "no optimizer moves it any more: the exception can go"
    for name in movers:
        assert name in reason, name


def test_no_grad_verdict_names_the_kernels_it_changes():
    """The reason must not say no_grad saves only bookkeeping: a Transformer encoder in eval()
    runs its fused fast path only with autograd off, and detaching afterwards does not."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 1).eval()
    src = torch.randn(2, 8, 16)
    pad = torch.arange(8).expand(2, 8) >= 4

    def kernels(no_grad):
        with warnings.catch_warnings(), torch.profiler.profile() as prof:
            warnings.simplefilter("ignore")            # the nested-tensor prototype notice
            with torch.no_grad() if no_grad else contextlib.nullcontext():
                encoder(src, src_key_padding_mask=pad).detach()
        return {event.name for event in prof.events()}

    fused = "aten::_transformer_encoder_layer_fwd"
    assert fused in kernels(True) and fused not in kernels(False)
    assert "fast path" in myths.verdict("no_grad_beats_detach").reason


def test_verdict_display():
    m = myths.verdict("eval_stops_autograd")
    assert m._repr_markdown_() == (
        "**Verdict: false.** `eval()` changes how Dropout and BatchNorm behave; recording goes "
        "on and `backward()` still works. Evaluation wants `eval()` and `no_grad` together. "
        "*Taught in [04 · torch.no_grad](04_no_grad.ipynb).*")
    assert repr(m).startswith("Verdict: false. eval() changes") and "`" not in repr(m)
    assert repr(m).endswith("(taught in 04_no_grad)")
    # links carry the name helpers/lessons.py gives the notebook (its title cell's name)
    assert myths.verdict("requires_grad_replaces_no_grad").link == \
        "[02 · requires_grad_(False)](02_requires_grad.ipynb)"
    assert myths.verdict("zero_grad_differ").link == "[01 · zero_grad](01_zero_grad.ipynb)"


def test_claims_list_has_no_verdicts():
    text = repr(myths.claims())
    lines = text.splitlines()
    assert lines[0] == "1. detach() copies the tensor" and len(lines) == 8
    assert "false" not in text and "depends" not in text
    assert myths.claims()._repr_markdown_().splitlines()[3] == (
        "4. `requires_grad=False` replaces `no_grad` for inference")


def test_summary_table():
    table = myths.table()
    assert table.columns == ["#", "claim", "verdict", "why", "taught in"]
    assert table.column("verdict") == ["false", "false", "false", "it depends", "false",
                                       "false", "false", "false"]
    assert table.column("taught in")[5] == "06_optimizer_subsets"
    assert "`" not in repr(table) and "<table" in table._repr_html_()


# ----- the notebook uses the data -------------------------------------------------------------

def test_notebook_headings_are_the_claims_and_show_their_verdicts():
    source = TWIN.read_text(encoding="utf-8")
    headings = re.findall(r'^# ### Myth (\d+): "(.*)"$', source, flags=re.M)
    assert headings == [(str(i), m.claim) for i, m in enumerate(myths.MYTHS, 1)]
    keys = re.findall(r'^myths\.verdict\("(\w+)"\)$', source, flags=re.M)
    assert keys == [m.key for m in myths.MYTHS]
    # each verdict cell comes right after its heading
    for i, m in enumerate(myths.MYTHS, 1):
        heading = source.index(f'# ### Myth {i}: "{m.claim}"')
        assert source.index(f'myths.verdict("{m.key}")') > heading
        if i < len(myths.MYTHS):
            assert source.index(f'myths.verdict("{m.key}")') < source.index(f"# ### Myth {i + 1}:")
    assert "myths.table()" in source and "myths.claims()" in source


def test_timing_cells_are_tagged_and_nothing_else_is():
    source = TWIN.read_text(encoding="utf-8")
    cells = re.split(r"^# %%", source, flags=re.M)[1:]
    tagged = [c for c in cells if c.startswith(' tags=["nbval-ignore-output"]')]
    assert len(tagged) == 2
    assert "costs.mode_costs(" in tagged[0] and "myths.cost_chart(" in tagged[1]
    untagged = "".join(c for c in cells if c not in tagged)
    assert "mode_costs(" not in untagged and "time_ratio" not in untagged


# ----- presenting helpers.costs.mode_costs results (costs itself: tests/test_costs.py) --------

def fake_costs(ratio):
    modes = {mode: {"time_ratio": 1.0 if mode == "grad mode" else ratio,
                    "median_seconds": 0.001, "context_seconds": 2.5e-6,
                    "peak_bytes": 3 * 2**20, "saved_bytes": 2048}
             for mode in costs.FORWARD_MODES}
    return {"baseline": "grad mode", "repeats": 3, "forwards_per_run": 1, "batch": 8,
            "modes": modes}


def test_cost_table():
    table = myths.cost_table({"a": fake_costs(0.5), "b": fake_costs(0.25)})
    assert len(table.rows) == 2 * len(costs.FORWARD_MODES)
    assert table.columns == ["network", "mode", "time / grad mode", "enter + leave mode",
                             "peak memory", "saved for backward"]
    assert table.rows[1] == ["a", "no_grad", "0.50", "2.5 µs", "3.00 MiB", "2.0 KiB"]
    assert table.rows[-1][:3] == ["b", "detach after", "0.25"]


def test_cost_chart_draws_the_measured_numbers_without_matplotlib():
    chart = myths.cost_chart({"toy": fake_costs(0.9), "mlp": fake_costs(1.1)})
    left, right = chart.panels
    assert left.categories == right.categories == list(costs.FORWARD_MODES)
    assert left.series == {"toy": [1.0, 0.9, 0.9, 0.9], "mlp": [1.0, 1.1, 1.1, 1.1]}
    assert left.reference == 1.0
    assert right.title == "Memory of one forward, mlp"
    assert right.series["peak memory"] == [3.0] * 4
    page = chart._repr_html_()
    assert page.count("<svg") == 2 and page.count("<rect") == 2 * 2 + 8 + 8   # keys + bars
    for mode in costs.FORWARD_MODES:
        assert f">{mode}</text>" in page
    # a screen reader gets the numbers; dark themes get a light panel with dark text
    assert page.count('role="img"') == 2
    assert 'aria-label="Memory of one forward, mlp (MiB) peak memory: grad mode 3,' in page
    assert page.count('fill="#1a1a1a"') == 2 and page.count("background: #f4f4f1") == 2
    drawn = subprocess.run(
        [sys.executable, "-c", "import sys; from helpers import myths, costs; "
         "print('matplotlib' in sys.modules)"], capture_output=True, text=True, check=True,
        cwd=Path(myths.__file__).parent.parent)
    assert drawn.stdout.strip() == "False"


# ----- exercises ------------------------------------------------------------------------------

def plain_no_grad_fn_letters():
    """Exercise 10.1 in plain PyTorch."""
    x, _ = plain_batch()
    found = set()
    net = plain_net()
    net[0].requires_grad_(False)
    if net(x).grad_fn is None:
        found.add("a")
    with torch.inference_mode():
        if plain_net()(x).grad_fn is None:
            found.add("b")
    if plain_net()(x.detach()).grad_fn is None:
        found.add("c")
    net = plain_net().requires_grad_(False)
    with torch.enable_grad():
        if net(x).grad_fn is None:
            found.add("d")
    net = plain_net()
    with torch.no_grad():
        h = net[1](net[0](x))
    if net[2](h).grad_fn is None:
        found.add("e")
    return found


def plain_losses_that_train():
    """Exercise 10.3 in plain PyTorch."""
    x, _ = plain_batch()
    torch.manual_seed(1)
    teacher = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.inference_mode():
        target = teacher(x)
    works = set()
    for letter, loss in (("a", lambda o: F.mse_loss(o, target)),
                         ("b", lambda o: ((o - target) ** 2).mean()),
                         ("c", lambda o: F.mse_loss(o, target.clone()))):
        try:
            loss(plain_net()(x)).backward()
            works.add(letter)
        except RuntimeError:
            pass
    return works


def test_exercise_solutions_pass_and_wrong_answers_fail():
    assert plain_no_grad_fn_letters() == {"b", "d"}
    assert helpers.check("10.1", {"b", "d"})
    assert not helpers.check("10.1", {"b"})
    assert not helpers.check("10.1", {"a", "b", "d"})

    by_hand = 5 * 16 * 512 * 4
    assert helpers.check("10.2", (by_hand, 0, 0, by_hand))
    assert not helpers.check("10.2", (by_hand, 0, 0, 0))
    assert not helpers.check("10.2", [by_hand, 0, 0, by_hand])  # a tuple was asked for

    assert plain_losses_that_train() == {"b", "c"}
    assert helpers.check("10.3", {"b", "c"})
    assert not helpers.check("10.3", {"a", "b", "c"})

    unanswered = helpers.check("10.1", ...)
    assert not unanswered and "Not answered yet" in repr(unanswered)


def plain_l1_grad_after_normalise(decorated):
    """Exercise 10.4 in plain PyTorch: L1's grad when L2 reads normalise(h).clone()."""
    def normalise(t):
        return (t - t.mean(0)) / t.std(0)

    if decorated:
        normalise = torch.inference_mode()(normalise)
    x, y = plain_batch()
    net = plain_net()
    h = torch.relu(net[0](x))
    F.mse_loss(net[2](normalise(h).clone()), y).backward()
    assert net[2].weight.grad is not None       # L2 trains either way
    return net[0].weight.grad


def test_10_4_the_decorator_cuts_the_history_not_the_clone():
    assert plain_l1_grad_after_normalise(decorated=True) is None
    assert plain_l1_grad_after_normalise(decorated=False) is not None   # (c) is false
    x, _ = plain_batch()
    assert torch.relu(plain_net()[0](x)).clone().grad_fn is not None    # (b) is false
    assert helpers.check("10.4", "a")
    for letter, says in (("b", "clone() is recorded"), ("c", "Remove the decorator")):
        verdict = helpers.check("10.4", letter)
        assert not verdict and says in repr(verdict)


def test_every_notebook_10_exercise_has_a_hint_for_a_wrong_answer():
    by_hand = 5 * 16 * 512 * 4
    hinted = [("10.1", {"b", "c", "d"}, "Look again at (c)"),   # detaching x cuts the forward
              ("10.1", {"b"}, "Look again at (d)"),             # enable_grad() always records
              ("10.1", {"b", "d", "e"}, "Look again at (e)"),   # no_grad covered L2 too
              ("10.2", (by_hand, 0, 0, 0), "The last one is too low"),  # detach frees the saved
              ("10.3", {"a", "b", "c"}, "With an ordinary target"),
              ("10.3", {"c"}, "Look again at (b)")]
    for key, wrong, says in hinted:
        verdict = helpers.check(key, wrong)
        assert not verdict and says in repr(verdict), (key, repr(verdict))
    assert all(EXERCISES[k].hints for k in ("10.1", "10.2", "10.3", "10.4"))


def test_check_finds_notebook_10_exercises_in_a_fresh_interpreter():
    code = "import helpers; print(bool(helpers.check('10.3', {'b', 'c'})))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
