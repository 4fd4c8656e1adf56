"""Write the README's generated parts, each between its markers:

- the notebook list, from helpers.lessons (the one table of notebooks); each notebook's one-line
  summary is the first sentence after its title in the notebook's own twin;
- the teacher plan, from helpers.teaching.PLAN, with each core's words, code cells and minutes
  measured in the built notebook by tools/lesson_stats.py, and the homework list;
- the predict-first prompts (helpers.teaching.PROMPTS); their answer key is TEACHER_NOTES.md,
  written by hand.

Usage: python tools/readme_index.py [--check]   (--check: exit 1 if the README is out of date)
"""

import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lesson_stats  # noqa: E402  (tools/, beside this file)
from helpers import teaching  # noqa: E402
from helpers.lessons import LESSONS, lesson  # noqa: E402
from helpers.toy import PARAM_NAMES  # noqa: E402

README = ROOT / "README.md"
SOURCES = ROOT / "notebooks" / "sources"
REPO = "gradient-flow-lab/gradient-flow-lab"
START, END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"
PLAN_START, PLAN_END = "<!-- teacher-plan:start -->", "<!-- teacher-plan:end -->"
HOMEWORK_START, HOMEWORK_END = "<!-- teacher-homework:start -->", "<!-- teacher-homework:end -->"
PROMPTS_START, PROMPTS_END = "<!-- teacher-prompts:start -->", "<!-- teacher-prompts:end -->"


def title_and_promise(source):
    """The notebook's ``# # title`` line and the first sentence of prose after it."""
    lines = source.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("# # "))
    title = lines[index][4:].strip()
    paragraph = []
    for line in lines[index + 1:]:
        text = line[1:].strip() if line.startswith("#") else ""
        if not text and paragraph:
            break
        if text:
            paragraph.append(text)
    prose = " ".join(paragraph)
    match = re.search(r"^.*?\.(?=\s|$)", prose)
    return title, (match.group(0) if match else prose)


def readme_link(item, text):
    return f"[{text}](notebooks/{item.file})"


def index_table():
    rows = ["| Notebook | What it shows | Open |", "|---|---|---|"]
    for item in LESSONS:
        title, promise = title_and_promise(SOURCES / f"{item.slug}.py")
        if title != item.title:
            raise ValueError(f"{item.slug}.py is titled {title!r}, helpers/lessons.py says "
                             f"{item.title!r}")
        colab = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                 f"(https://colab.research.google.com/github/{REPO}/blob/main/notebooks/"
                 f"{item.file})")
        rows.append(f"| {readme_link(item, item.title)} | {promise} | {colab} |")
    return "\n".join(rows)


def core_of(slug):
    """lesson_stats' core part of the built notebook ``slug``."""
    return lesson_stats.parts(lesson_stats.NOTEBOOKS / lesson(slug).file)[0]


def plan_minutes(step):
    """A plan step's minutes: its core's measured minutes, rounded up, plus the discussion."""
    return math.ceil(core_of(step.slug).minutes) + step.discussion


def plan_table():
    rows = ["| Time | Notebook | Core (measured) | What to do |", "|---|---|---|---|"]
    start = 0
    for step in teaching.PLAN:
        core, item = core_of(step.slug), lesson(step.slug)
        end = start + plan_minutes(step)
        measured = (f"{core.words} words, {core.code_cells} code cells: "
                    f"{math.ceil(core.minutes)} min + {step.discussion} min vote")
        rows.append(f"| {start}–{end} | {readme_link(item, item.label)} | {measured} | "
                    f"{step.what} |")
        start = end
    rows.append(f"| {start}–{start + teaching.RECAP_MINUTES} | Recap | "
                f"{teaching.RECAP_MINUTES} min | {teaching.RECAP_QUESTION} |")
    return "\n".join(rows)


def listed(slugs):
    return ", ".join(readme_link(lesson(s), lesson(s).label) for s in slugs)


def homework():
    return (f"Homework, each with checked exercises and its Going deeper parts: "
            f"{listed(teaching.HOMEWORK)}; and the Going deeper parts of the notebooks in the "
            f"plan. Beyond the toy network, for learners who train real models: "
            f"{listed(teaching.BEYOND)}.")


def none_text(prompt):
    if not prompt.none:
        return "none are `None`"
    if prompt.none == teaching.ALL:
        return "all four are `None`"
    names = ", ".join(f"`{n}`" for n in PARAM_NAMES if n in prompt.none)
    return f"{names} are `None`"


def expected_text(prompt):
    return none_text(prompt) + (f"; {prompt.expected}" if prompt.expected else "")


def prompt_list():
    return "\n".join(f"- **{lesson(p.slug).number}**: {p.step}. Expected: {expected_text(p)}. "
                     f"Ask: {p.ask}" for p in teaching.PROMPTS)


def between(text, start, end, replace):
    pattern = re.compile(re.escape(start) + "\n(.*?)\n" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README.md lacks the markers {start} ... {end}")
    return pattern.sub(lambda m: f"{start}\n{replace(m.group(1))}\n{end}", text)


def updated_readme():
    text = between(README.read_text(), START, END, lambda _: index_table())
    text = between(text, PLAN_START, PLAN_END, lambda _: plan_table())
    text = between(text, HOMEWORK_START, HOMEWORK_END, lambda _: homework())
    return between(text, PROMPTS_START, PROMPTS_END, lambda _: prompt_list())


if __name__ == "__main__":
    new = updated_readme()
    if "--check" in sys.argv:
        sys.exit(0 if new == README.read_text() else "README is out of date (notebook list, "
                 "teacher plan or prompts): run `python tools/readme_index.py`")
    README.write_text(new)
