"""The teacher kit as data: the 90-minute plan (notebook cores only) and the class prompt for each
predict-first cell.

tools/readme_index.py writes the README's "For teachers" plan and prompt list from here; the
plan's minutes come from the notebooks themselves (tools/lesson_stats.py). The answers live in
TEACHER_NOTES.md. tests/test_lessons.py checks each prompt's expected ``None`` set against
``helpers.run`` and the notebook's own ``helpers.predict`` call, and that the notes answer every
question.
"""

from dataclasses import dataclass, field

from .lessons import lesson

SESSION_MINUTES = 90


@dataclass(frozen=True)
class PlanStep:
    """One row of the plan: a notebook's core (its minutes measured from the notebook) plus
    ``discussion`` minutes for the class vote and questions."""

    slug: str
    discussion: int
    what: str

    def __post_init__(self):
        lesson(self.slug)  # a clear error for a slug that names no notebook


PLAN = (
    PlanStep("00_start_here", 2, "Run the step together; read one graph and one table aloud."),
    PlanStep("01_zero_grad", 3, "Vote on the predict-first cell, then `passes` 1→2→3 in the "
                                "explorer."),
    PlanStep("02_requires_grad", 3, "Vote first; freeze each layer in the explorer."),
    PlanStep("03_detach", 3, "Vote first; compare the cut graph with 02's."),
    PlanStep("04_no_grad", 3, "Vote first; compare its graph with 03's: nothing recorded for L1."),
    PlanStep("08_compare_all", 4, "The playground: groups combine two tools and report one "
                                  "surprise each."),
    PlanStep("10_myths", 3, "The myths in its core, one slide each: the class votes true, "
                            "false or it depends, then runs the cell."),
)
RECAP_MINUTES = 5
RECAP_QUESTION = ("Which tool for a frozen backbone, for a GAN's discriminator step, for an "
                  "evaluation loop, and for a training target built from the model's own output?")
HOMEWORK = ("05_inference_mode", "06_optimizer_subsets", "07_manual_grad_edits", "09_patterns")
BEYOND = ("11_debugging", "12_at_scale", "13_custom_gradients")


@dataclass(frozen=True)
class Prompt:
    """The class discussion at one notebook's predict-first cell.

    ``mechanism`` and ``options`` are the notebook's ``helpers.predict`` call; ``none`` the
    parameters whose ``.grad`` is ``None`` after that step (checked against ``helpers.run``);
    ``step`` says the step in words, ``expected`` adds what the names alone do not say."""

    slug: str
    mechanism: str
    step: str
    none: frozenset
    ask: str
    options: dict = field(default_factory=dict)
    expected: str = ""

    def __post_init__(self):
        lesson(self.slug)


ALL = frozenset({"l1.weight", "l1.bias", "l2.weight", "l2.bias"})
L1 = frozenset({"l1.weight", "l1.bias"})
L2 = frozenset({"l2.weight", "l2.bias"})

PROMPTS = (
    Prompt("00_start_here", "control", "the plain step", frozenset(),
           ask="what would make a grad `None` at all?"),
    Prompt("01_zero_grad", "zero_grad", "optimizer holds only `l2`, `optimizer.zero_grad()`, then "
           "`step()` with no backward", L2,
           options={"clear": "optimizer", "passes": 0, "optimizer_has": "l2"},
           expected="`l1` keeps its stale gradient",
           ask="zeros or `None`, and why does `l1` not move?"),
    Prompt("02_requires_grad", "requires_grad", "`l2` frozen", L2, options={"frozen": "l2"},
           expected="`l1` still learns",
           ask="how does the gradient reach `l1` through a frozen layer?"),
    Prompt("03_detach", "detach", "`detach()` after L1", L1, options={"cut": "l1"},
           ask="where does `backward()` stop, and what does the graph look like below the cut?"),
    Prompt("04_no_grad", "no_grad", "L1 under `no_grad`", L1, options={"no_grad_over": "l1"},
           expected="as in 03",
           ask="same result as `detach`; what is different (memory, graph)?"),
    Prompt("05_inference_mode", "inference_mode", "L1 under `inference_mode`", ALL,
           options={"part": "l1", "clone": "no"}, expected="the step raises before `backward()`",
           ask="why does `no_grad` work here and `inference_mode` not?"),
    Prompt("06_optimizer_subsets", "optimizer_subsets", "Adam over `l2` only", frozenset(),
           options={"params": "l2", "optimizer": "adam", "excluded": "alone"},
           ask="does the optimizer decide who gets a gradient?"),
    Prompt("07_manual_grad_edits", "manual_grad_edits", "`p.grad = None` for `l1` after "
           "`backward()`", L1, options={"edit": "set_none", "layer": "l1", "how": "direct"},
           ask="what does `step()` do with a `None` grad versus a zero grad (with momentum)?"),
    Prompt("08_compare_all", "playground", "`no_grad` over L1 and an optimizer of L1", L1,
           options={"no_grad": "l1", "optimizer": "l1"}, expected="nothing moves",
           ask="which line would you change to train L1?"),
    Prompt("10_myths", "zero_grad", "`model.zero_grad()`", ALL,
           options={"clear": "model", "passes": 0},
           ask="who expected zeros, and which PyTorch version made `None` the default?"),
)
