"""Every image a lesson embeds exists, and is drawn by the lesson itself.

A lesson's figures are made by its own ```python blocks (saved to lessons/figures/), so CI redraws
them and they never drift from the code: for each relative image a lesson embeds
(``![alt](figures/NN_name.png)``, or ``<img src=...>``), the file exists and one of the lesson's
```python blocks names it. The exception is a picture of a committed run, embedded from docs/
(``![..](../docs/mnist_run20/curves.png)``): a lesson cannot redraw a 20-epoch run in seconds, so
that file must exist, committed with the run that made it.
"""

import pytest

from minigan.lessons import images
from test_lessons import LESSONS, ROOT, code_blocks

LESSON_FILES = [p for p in LESSONS if p.name != "README.md"]


def image_problems(path, root=ROOT):
    """What is wrong with the images a lesson embeds, as messages (root: the repository)."""
    blocks = [src for info, _, src in code_blocks(path) if info == "python"]
    problems = []
    for target in images(path):
        where = f"{path.name}: ![..]({target})"
        file = (path.parent / target).resolve()
        if not file.is_file():
            shown = file.relative_to(root) if file.is_relative_to(root) else file
            problems.append(f"{where}: no file {shown}")
        elif file.is_relative_to(root / "docs"):
            continue  # a committed run's picture: it exists, which is all a lesson can promise
        elif not any(file.name in src for src in blocks):
            problems.append(f"{where}: no ```python block of {path.name} names {file.name}; a "
                            "lesson draws its own figures (fig.savefig(FIGURES / "
                            f"\"{file.name}\"))")
    return problems


@pytest.mark.parametrize("path", LESSON_FILES, ids=[p.name for p in LESSON_FILES])
def test_every_embedded_image_exists_and_is_drawn_by_the_lesson(path):
    problems = image_problems(path)
    assert not problems, "\n".join(problems)


def test_the_image_check_catches_a_missing_and_a_foreign_figure(tmp_path):
    root = tmp_path.resolve()
    (root / "lessons" / "figures").mkdir(parents=True)
    (root / "docs" / "run").mkdir(parents=True)
    for name in ("lessons/figures/99_drawn.png", "lessons/figures/14_dirac_gan.png",
                 "docs/run/curves.png"):
        (root / name).write_bytes(b"png")
    lesson = root / "lessons" / "99_probe.md"
    lesson.write_text(
        "# 99. Probe\n\n```python\nfig.savefig(FIGURES / \"99_drawn.png\")\n```\n\n"
        "![drawn](figures/99_drawn.png)\n![missing](figures/99_missing.png)\n"
        "![foreign](figures/14_dirac_gan.png)\n![run](../docs/run/curves.png)\n"
        "![lost run](../docs/lost/curves.png)\n<img src=\"figures/99_html.png\" width=\"300\">\n"
        "![web](https://example.org/x.png)\n\n```text\n![quoted](figures/99_quoted.png)\n```\n")
    assert images(lesson) == ["figures/99_drawn.png", "figures/99_missing.png",
                              "figures/14_dirac_gan.png", "../docs/run/curves.png",
                              "../docs/lost/curves.png", "figures/99_html.png"]
    problems = image_problems(lesson, root)
    assert len(problems) == 4, problems
    assert problems[0].endswith("99_missing.png): no file lessons/figures/99_missing.png")
    assert "no ```python block of 99_probe.md names 14_dirac_gan.png" in problems[1]
    assert problems[2].endswith("no file docs/lost/curves.png")
    assert "99_html.png): no file" in problems[3]
