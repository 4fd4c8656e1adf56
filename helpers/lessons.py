"""The one table of notebooks: number, file name and title. Code that names a notebook (myth
and guide links, tools/readme_index.py's README index and teacher plan) reads it here; the
notebooks' own title cells, "## The series" maps and numbered links are Markdown, which
tests/test_series.py checks against it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Lesson:
    """One notebook: ``slug`` is its file name without ``.ipynb``; its title cell reads
    ``# NN · name: subtitle`` (or ``# NN · name`` when ``subtitle`` is empty)."""

    slug: str
    name: str
    subtitle: str = ""

    @property
    def number(self):
        return self.slug[:2]

    @property
    def label(self):
        """Number and name, as links to the notebook read: ``"03 · detach"``."""
        return f"{self.number} · {self.name}"

    @property
    def title(self):
        return self.label + (f": {self.subtitle}" if self.subtitle else "")

    @property
    def file(self):
        return f"{self.slug}.ipynb"

    def link(self):
        """Markdown link from one notebook to this one, e.g. ``[03 · detach](03_detach.ipynb)``."""
        return f"[{self.label}]({self.file})"


LESSONS = (
    Lesson("00_start_here", "Start here", "reading gradients in PyTorch"),
    Lesson("01_zero_grad", "zero_grad", "clearing gradients"),
    Lesson("02_requires_grad", "requires_grad_(False)", "freezing layers"),
    Lesson("03_detach", "detach", "cutting the graph"),
    Lesson("04_no_grad", "torch.no_grad", "not recording"),
    Lesson("05_inference_mode", "torch.inference_mode"),
    Lesson("06_optimizer_subsets", "Optimizer parameter subsets", "what the optimizer moves"),
    Lesson("07_manual_grad_edits", "Manual gradient edits", "changing `.grad` before the step"),
    Lesson("08_compare_all", "Compare them all", "choosing the right tool"),
    Lesson("09_patterns", "Patterns from real training code"),
    Lesson("10_myths", "Myths, tested"),
    Lesson("11_debugging", "Why is my gradient None?"),
    Lesson("12_at_scale", "Gradient control at scale"),
    Lesson("13_custom_gradients", "Writing your own gradients"),
)


def lesson(key):
    """The lesson whose slug (``"03_detach"``) or number (``"03"``) is ``key``."""
    for item in LESSONS:
        if key in (item.slug, item.number):
            return item
    raise ValueError(f"unknown notebook {key!r}; valid notebooks: "
                     f"{', '.join(item.slug for item in LESSONS)}")
