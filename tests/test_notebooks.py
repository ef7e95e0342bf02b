"""Every lesson opens as a notebook: ``jupytext --to notebook lessons/NN_*.md`` runs top to bottom.

The conversion is jupytext's own command line, called in-process; the notebook it writes is
read back as JSON. What is checked:

- each ```python block becomes one code cell, with the same source, in the same order;
- ```py quotes and ```text blocks stay inside Markdown cells, so they never run (a quote of
  minigan's source or a shell command would fail as Python);
- so the notebook's code cells, run top to bottom in one namespace, are the run of
  tests/test_lessons.py::test_lesson_runs, which runs the lesson's ```python blocks in order in
  one namespace (floating-point warnings as errors, matplotlib off screen). The notebook's cells
  are not run a second time here: the same code through the same run_blocks took 74 of the
  suite's 957 s (2026-12-02) and could fail only where test_lesson_runs fails;
- and through a real Jupyter kernel (ipykernel, driven by nbclient, as ``python -m minigan.lessons
  build`` runs every lesson): the fastest lessons only, to keep CI short; skipped, with the
  reason, where ipykernel or nbclient is missing (the dev extra installs both).
"""

import json
import os

import pytest

from test_lessons import LESSONS, ROOT, code_blocks

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


# Two of the fastest lessons (a few seconds each, most of it the kernel's start): enough to prove
# that a lesson runs in a kernel as it does in tests/test_lessons.py, without running them all.
KERNEL_LESSONS = [p for p in LESSONS if p.name in ("02_losses.md", "03_gradient_checking.md")]


def need_kernel():
    for tool in ("ipykernel", "nbclient"):
        pytest.importorskip(tool, reason=f"{tool} is not installed: the kernel test needs the "
                            "dev extra (pip install -e '.[dev]')")


@pytest.mark.slow
def test_the_fastest_lessons_run_in_a_real_kernel(tmp_path):
    need_kernel()
    from minigan import lessons

    out = tmp_path / "out"
    built = lessons.build(out, [int(p.name[:2]) for p in KERNEL_LESSONS], timeout=300,
                          log=lambda line: None)
    assert [b.name for b in built] == [p.stem + ".ipynb" for p in KERNEL_LESSONS]
    for path, notebook in zip(KERNEL_LESSONS, built):
        nb = json.loads(notebook.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert [cell_source(c) for c in code] == [src for info, _, src in code_blocks(path)
                                                  if info == "python"]
        assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), path.name
        errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, errors
        assert any(o["output_type"] == "stream" for c in code for o in c["outputs"]), path.name
        for target in lessons.images(path):  # the figures it embeds, beside the notebook
            assert (out / target).is_file(), (path.name, target)


@pytest.mark.slow
def test_the_kernel_runs_this_minigan_in_the_output_folder(tmp_path):
    need_kernel()
    import nbformat

    from minigan import lessons

    probe = "import os, minigan\nprint(minigan.__file__)\nprint(os.getcwd())"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
    lessons.execute(nb, tmp_path, timeout=60)
    printed = nb.cells[0].outputs[0]["text"].splitlines()
    assert printed == [str(ROOT / "minigan" / "__init__.py"), os.path.realpath(tmp_path)]
