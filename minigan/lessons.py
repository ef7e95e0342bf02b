"""Build the lessons as executed Jupyter notebooks, with their figures.

    python -m minigan.lessons build OUT                # every lesson -> OUT/NN_name.ipynb
    python -m minigan.lessons build OUT --only 3 14    # lessons 3 and 14
    python -m minigan.lessons build OUT --timeout 120  # seconds one cell may run (default 600)

Each lesson (one Markdown file in lessons/) is converted by jupytext (each ```python block one code
cell, the rest Markdown, as tests/test_notebooks.py checks), run top to bottom in a fresh Jupyter
kernel (nbclient and ipykernel, in the dev extra: ``pip install -e ".[dev]"``), and written with its
outputs to OUT/NN_name.ipynb. The kernel imports the same minigan as this command and runs in OUT,
so whatever a lesson writes lands there. A lesson's figures are drawn by its own blocks into
lessons/figures/ (as in CI); the build then copies every image the lesson embeds to OUT/figures/
(and the committed ones under docs/ to OUT/docs/), so each notebook shows them beside its text.

Exit status: 0 when every lesson ran, 1 when a cell failed (its lesson and cell are named; the
notebooks built before it are kept), 2 for bad input, with nothing written.
"""

import os
import re
import sys
from pathlib import Path

from minigan import files, rules

ROOT = Path(__file__).resolve().parent.parent
LESSONS_DIR = ROOT / "lessons"
PROG = "python -m minigan.lessons"
TIMEOUT = 600  # seconds one cell may run: the slowest lesson takes under a minute in all
TIMEOUT_RULE = rules.number(0, lo_open=True)  # --timeout: any number of seconds above 0
TOOLS = ("jupytext", "nbclient", "nbformat", "ipykernel", "jupyter_client")

# ![alt](target) and <img src="target">: the images a lesson embeds
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)[^)]*\)|<img\s[^>]*src=[\"']([^\"']+)[\"']")


class BuildError(Exception):
    """Bad input or a missing tool: the message says what to do; the command exits with 2."""


class LessonFailed(Exception):
    """A cell of a lesson raised in the kernel: the message names the lesson, then the cell."""


def lessons():
    """{number: path} of every lesson in lessons/ (the README is the index, not one)."""
    return {int(p.name[:2]): p for p in sorted(LESSONS_DIR.glob("[0-9][0-9]_*.md"))}


def images(path):
    """The relative targets of the images a Markdown file embeds, in order (web images left
    out); a fenced block's text is not Markdown, so images inside one are not counted."""
    text = re.sub(r"^(```+).*?^\1\s*$", "", Path(path).read_text(), flags=re.S | re.M)
    found = [a or b for a, b in IMAGE.findall(text)]
    return [t for t in found if not re.match(r"^[a-z]+:", t)]


def to_notebook(path, kernel="python3"):
    """The lesson as a notebook (nbformat 4) by jupytext, with the kernel to run it named."""
    import jupytext

    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": f"Python ({kernel})",
                                 "language": "python"}
    return nb


def kernel_env():
    """The environment of the kernel: this minigan first on its path, whatever the folder."""
    path = os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + ([path] if path else [])))


def execute(nb, workdir, timeout=TIMEOUT, kernel="python3"):
    """Run every code cell of nb in a fresh kernel started in workdir; nb gains the outputs.
    Raises nbclient's CellExecutionError naming the cell that failed."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute(env=kernel_env())
    return nb


def copy_images(path, out, nb):
    """Copy the images the lesson at ``path`` embeds to the same relative place under out; one
    from above lessons/ (../docs/x.png) goes to out/docs/x.png, and nb's Markdown points there."""
    copied = []
    for target in images(path):
        source = (path.parent / target).resolve()
        dest = out / target
        if ".." in Path(target).parts:  # keep it inside OUT
            dest = out / source.relative_to(ROOT)
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    cell.source = cell.source.replace(f"]({target}", f"]({dest.relative_to(out)}")
        if source.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            with files.atomic_write(dest) as f:
                f.write(source.read_bytes())
            copied.append(dest)
    return copied


def build(out, numbers=None, timeout=TIMEOUT, kernel="python3", log=print):
    """Build the lessons numbered ``numbers`` (all when None) into the folder out; returns the
    notebooks' paths. Raises LessonFailed when a cell fails."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    out = Path(out)
    chosen = lessons()
    out.mkdir(parents=True, exist_ok=True)
    built = []
    for n in sorted(numbers or chosen):
        path = chosen[n]
        try:
            nb = execute(to_notebook(path, kernel), out.resolve(), timeout, kernel)
        except CellExecutionError as e:
            raise LessonFailed(f"{path.name}: {e}") from None
        figures = copy_images(path, out, nb)
        target = out / (path.stem + ".ipynb")
        files.write_text(target, nbformat.writes(nb))
        log(f"{target}: {sum(c.cell_type == 'code' for c in nb.cells)} cells ran"
            + (f", {len(figures)} figure{'s' * (len(figures) != 1)}" if figures else ""))
        built.append(target)
    return built


def missing_tools():
    """The notebook tools that cannot be imported (they are in the dev extra)."""
    import importlib.util

    return [t for t in TOOLS if importlib.util.find_spec(t) is None]


def check_args(args, available):
    """Raise BuildError for the first bad flag; nothing has been written yet."""
    problem = rules.too_long("OUT", args.out)  # not "a file", which path_ok would take it for
    if problem:
        raise BuildError(problem)
    if not rules.path_ok(args.out, "out") or not args.out:
        raise BuildError(f"OUT {rules.show(args.out)}: not allowed; use a folder name (created "
                         "if missing), not a file or a path inside one.")
    rules.check("timeout", args.timeout, TIMEOUT_RULE, TIMEOUT)
    numbers = []
    for v in args.only or []:
        number = rules.whole_number(v)  # None for "x", "-1", "²"
        if number not in available:
            raise BuildError(f"--only {rules.show(v)}: not allowed; use lesson numbers among "
                             f"{', '.join(map(str, sorted(available)))}, like --only 3 14.")
        numbers.append(number)
    missing = missing_tools()
    if missing:
        raise BuildError(f"the notebook tools {', '.join(missing)} are not installed: "
                         "pip install -e \".[dev]\" (or pip install jupytext nbclient ipykernel)")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(args.kernel)
    except NoSuchKernel:
        raise BuildError(f"--kernel {rules.show(args.kernel)}: no such Jupyter kernel; use one "
                         "of `jupyter kernelspec list` (default: python3), or install it with "
                         "python -m ipykernel install --user") from None
    return sorted(set(numbers)) or None


def main(argv=None):
    p = rules.Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build every lesson as an executed notebook")
    b.add_argument("out", metavar="OUT", help="the folder of the notebooks (created if missing)")
    b.add_argument("--only", nargs="+", metavar="N", help="lesson numbers (default: all)")
    b.add_argument("--timeout", type=rules.typed(float, "timeout", TIMEOUT_RULE, TIMEOUT),
                   default=TIMEOUT, metavar="SECONDS",
                   help=f"seconds one cell may run (default: {TIMEOUT})")
    b.add_argument("--kernel", default="python3", help="the Jupyter kernel (default: python3)")
    args = p.parse_args(argv)
    available = lessons()
    try:
        if not available:
            raise BuildError(f"no lessons in {LESSONS_DIR}: run this from a clone of minigan's "
                             "repository (pip install -e .), where lessons/ sits beside minigan/")
        numbers = check_args(args, available)
    except (BuildError, rules.ConfigError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    try:
        build(args.out, numbers, args.timeout, args.kernel)
    except LessonFailed as e:
        print(f"{PROG}: a lesson failed in its kernel (the notebooks before it are in "
              f"{args.out}):\n{e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: cannot write into {args.out} ({e.strerror or e})",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
