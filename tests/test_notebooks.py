"""Every lesson opens as a notebook: ``jupytext --to notebook lessons/NN_*.md`` runs top to bottom.

The conversion is jupytext's own command line, called in-process; the notebook it writes is
read back as JSON. No Jupyter kernel is needed: the code cells run in order in one namespace,
as tests/test_lessons.py runs the Markdown, with the same rules (floating-point warnings are
errors, matplotlib draws off screen). What is checked:

- each ```python block becomes one code cell, with the same source, in the same order;
- ```py quotes and ```text blocks stay inside Markdown cells, so they never run (a quote of
  minigan's source or a shell command would fail as Python);
- the notebook's code cells run top to bottom.
"""

import json

import pytest

from test_lessons import LESSONS, code_blocks, run_blocks

jupytext_cli = pytest.importorskip(
    "jupytext.cli", reason="jupytext is not installed (pip install -e '.[dev]' installs it)")


def to_notebook(path, out_dir):
    """``jupytext --to notebook`` on one lesson; returns the notebook as a dict."""
    out = out_dir / (path.stem + ".ipynb")
    jupytext_cli.jupytext(["--to", "notebook", "--output", str(out), str(path)])
    return json.loads(out.read_text())


def cell_source(cell):
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_converts_to_one_code_cell_per_python_block(path, tmp_path):
    nb = to_notebook(path, tmp_path)
    assert nb["nbformat"] == 4
    code = [cell_source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    python_blocks = [src for info, _, src in code_blocks(path) if info == "python"]
    assert code == python_blocks
    markdown = "\n".join(cell_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    for info, line, src in code_blocks(path):
        if info != "python":
            assert f"```{info}\n{src}\n```" in markdown, (
                f"{path.name}:{line}: the ```{info} block did not stay in a Markdown cell")


@pytest.mark.parametrize("path", [p for p in LESSONS if p.name != "README.md"],
                         ids=[p.name for p in LESSONS if p.name != "README.md"])
def test_lesson_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    nb = to_notebook(path, tmp_path)
    monkeypatch.chdir(tmp_path)  # whatever a lesson writes lands here
    cells = [cell_source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    assert cells, f"{path.name} has no code cells"
    ran = run_blocks(tmp_path / (path.stem + ".ipynb"), [(1, src) for src in cells],
                     what="notebook code cell")
    assert ran == len(cells)
