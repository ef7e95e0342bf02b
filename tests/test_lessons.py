"""The lessons run, and their links and quotes still match the code.

- Every ```python block of a lesson runs, in order, in one fresh namespace per lesson (one test
  per lesson). Tracebacks point at the line of the Markdown file.
- Every relative link points at a file that exists; a link whose text is a backticked name
  (``[`Dense.backward`](../minigan/layers.py)``) names something defined in that .py file.
- Every ```py block quotes minigan: its first line names the file, and its other lines are
  lines of that file, in order and indented as there (the whole quote may sit further left):
  a "..." line marks where lines are left out, and what follows it may start at another depth.
- Every lesson that minigan's docstrings point at exists.

Run one lesson with its output shown: ``python tests/test_lessons.py lessons/02_losses.md``.
"""

import ast
import os
import re
import sys
import traceback
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSONS_DIR = ROOT / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("*.md"))

FENCE = re.compile(r"^(```+)\s*(\S*)")
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")  # [text](target)
NAME = re.compile(r"^`([A-Za-z_][A-Za-z_0-9.]*)(?:\(\))?`$")  # `name`, `Class.name`, `name()`


def code_blocks(path):
    """Yield (info, first_line_number, source) for every fenced block of a Markdown file."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2), i + 1
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            i += 1
        if i == len(lines):
            raise AssertionError(f"{path.name}: block opened at line {start} is never closed")
        yield info, start + 1, "\n".join(lines[start:i])  # start + 1: 1-based, after the fence
        i += 1


def run_lesson(path):
    """Run a lesson's ```python blocks in order in one namespace; raise naming the failing one."""
    blocks = [(line, src) for info, line, src in code_blocks(path) if info == "python"]
    return run_blocks(path, blocks)


def run_blocks(path, blocks, what="python block"):
    """Run (first_line, source) blocks of path in order in one fresh namespace, as CI runs a
    lesson: matplotlib without a display, floating-point warnings as errors, and the CPU
    backend restored afterwards. Returns the number of blocks."""
    import matplotlib

    matplotlib.use("Agg", force=True)  # before any block imports pyplot
    from matplotlib import pyplot as plt

    from minigan import backend

    namespace = {"__name__": f"lesson_{path.stem}"}
    try:
        for number, (line, src) in enumerate(blocks, start=1):
            # pad with blank lines so that tracebacks give the line number in the file
            code = compile("\n" * (line - 1) + src, str(path), "exec")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", RuntimeWarning)  # numpy overflow, 0-division
                    warnings.filterwarnings("ignore", message=".*non-interactive.*")  # plt.show
                    exec(code, namespace)
            except Exception:
                raise AssertionError(
                    f"lesson {path.name}, {what} {number} of {len(blocks)} "
                    f"(starting at line {line}) failed:\n{traceback.format_exc()}"
                ) from None
    finally:
        plt.close("all")
        backend.use("cpu")
    return len(blocks)


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a lesson writes lands here
    run_lesson(path)


def test_lessons_exist():
    assert len(LESSONS) >= 6, f"expected the README and five lessons in {LESSONS_DIR}"


def _defined_names(py_path):
    """Top-level names of a .py file, plus "Class.method" for each method of each class."""
    tree = ast.parse(py_path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names.update(
                    f"{node.name}.{item.name}"
                    for item in node.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                )
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _slug(heading):
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(md_path):
    in_block, anchors = False, set()
    for line in md_path.read_text().splitlines():
        if FENCE.match(line):
            in_block = not in_block
        elif not in_block and line.startswith("#"):
            anchors.add(_slug(line.lstrip("#")))
    return anchors


def link_problems(path):
    """Every broken relative link of a Markdown file, as messages."""
    problems = []
    text = path.read_text()
    for m in LINK.finditer(text):
        label, target = m.groups()
        line = text.count("\n", 0, m.start()) + 1
        where = f"{path.name}:{line}: [{label}]({target})"
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.is_file():
            problems.append(f"{where}: no file {os.path.relpath(linked, ROOT)}")
            continue
        if anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            problems.append(f"{where}: no heading with anchor #{anchor} in {linked.name}")
        if linked.suffix == ".py" and label.startswith("`") and not label.endswith('.py`'):
            name = NAME.match(label)
            if name is None or name.group(1).count(".") > 1:
                problems.append(f"{where}: link text must be `name` or `Class.name`")
            elif name.group(1) not in _defined_names(linked):
                problems.append(f"{where}: {name.group(1)} is not defined in {linked.name}")
    return problems


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_links(path):
    problems = link_problems(path)
    assert not problems, "broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_quotes_match_the_code(path):
    problems = []
    for info, line, src in code_blocks(path):
        if info != "py":
            continue
        first, *quoted = src.splitlines()
        m = re.match(r"#\s*(\S+\.py)\b", first)
        if m is None or not (ROOT / m.group(1)).is_file():
            problems.append(f"{path.name}:{line}: a ```py block quotes minigan; its first line "
                            f"must name an existing file, e.g. '# minigan/layers.py'")
            continue
        lines = (ROOT / m.group(1)).read_text().splitlines()
        code = [i for i, s in enumerate(lines) if s.strip()]  # blank lines may be left out
        after = dict(zip(code, code[1:]))  # a line of code -> the next one
        where = None  # (line of the file, dedent) that the quote so far can be
        for offset, q in enumerate(quoted, start=1):
            if q.strip() == "...":  # lines left out: what follows may be anywhere, any depth
                where = None
                continue
            if not q.strip():
                continue
            found = {(i, _indent(lines[i]) - _indent(q)) for i in code
                     if lines[i].strip() == q.strip()}
            if not found:
                problems.append(f"{path.name}:{line + offset}: not in {m.group(1)}: {q.strip()}")
            elif where is not None and not (found := {
                    (i, shift) for i, shift in found
                    if any(after.get(j) == i and d == shift for j, d in where)}):
                problems.append(f"{path.name}:{line + offset}: does not follow the line above it "
                                f"in {m.group(1)} at the same depth (mark left-out lines with "
                                f"'...'): {q.strip()}")
                found = {(i, _indent(lines[i]) - _indent(q)) for i in code
                         if lines[i].strip() == q.strip()}
            where = found or None
    assert not problems, "quotes that drifted from the code:\n" + "\n".join(problems)


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def test_lessons_named_by_the_library_exist():
    missing = []
    for py in sorted((ROOT / "minigan").glob("*.py")):
        for name in re.findall(r"lessons/([\w.-]+\.md)", py.read_text()):
            if not (LESSONS_DIR / name).is_file():
                missing.append(f"{py.name} points at lessons/{name}")
    assert not missing, "\n".join(missing)


def main(argv=None):
    """Run the lessons named on the command line (default: all), printing their output."""
    paths = [Path(a).resolve() for a in (argv or sys.argv[1:])] or LESSONS
    for path in paths:
        print(f"=== {path.name}")
        n = run_lesson(path)
        problems = link_problems(path)
        print(f"=== {path.name}: {n} blocks ran; " + ("links ok" if not problems else
                                                      "\n".join(problems)))


if __name__ == "__main__":
    main()
