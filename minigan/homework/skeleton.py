"""Write the learner's skeleton, generated from minigan's own source at ``start`` time.

layers.py, losses.py, gan.py, spectral.py, penalties.py, scores.py, conv.py and batchnorm.py are
minigan's modules with the body
of every function that a part names replaced by ``raise NotImplementedError("TODO (part N): ...")``;
signatures,
docstrings (shapes, formulas) and the given scaffolding (``__init__``, ``__repr__``, the helpers)
are kept as they are in the library, so the skeleton cannot drift from it.

The first line of every file names the parts it holds (``# minigan homework, parts 1 and 11
...``): a folder started before a part existed does not name it, and the grader reports that
part as not in the folder (``parts_named``, ``learner.present``).

optim.py is the exception: minigan's optimizers carry machinery for speed (preallocated scratch
arrays, updates in place) that would make a poor starting point, so the learner's scaffolding
(``__init__``: the state arrays) is written here by hand, while the docstrings, with their
formulas, and ``state_dict`` / ``load_state_dict`` are taken from minigan/optim.py.
"""

import ast
import re
import textwrap
from pathlib import Path

from minigan.homework.parts import ALL_FILES, PARTS, TOTAL, todo_message

MINIGAN = Path(__file__).resolve().parent.parent


class SkeletonError(Exception):
    """minigan's source no longer has something the homework names: update minigan/homework."""


def _find(tree, qualname, path, function=True):
    """The def of ``qualname`` ("Class.method", "function" or, with function=False, "Class")."""
    body, node = tree.body, None
    for name in qualname.split("."):
        node = next((n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef))
                     and n.name == name), None)
        if node is None:
            raise SkeletonError(f"{path} has no {qualname}, which the homework's skeleton "
                                "blanks: update minigan/homework/parts.py to match")
        body = node.body
    if function and not isinstance(node, ast.FunctionDef):
        raise SkeletonError(f"{path}: {qualname} is not a function")
    return node


def _has_docstring(fn):
    first = fn.body[0]
    return (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str))


def blank(source, todos, path="<source>"):
    """``source`` with the body of every function in ``todos`` ({qualname: message}) replaced
    by ``raise NotImplementedError(message)``; its signature and docstring are kept."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits = []
    for qualname, message in todos.items():
        fn = _find(tree, qualname, path)
        doc = _has_docstring(fn)
        if doc and len(fn.body) == 1:
            raise SkeletonError(f"{path}: {qualname} has only a docstring, nothing to blank")
        start = fn.body[0].end_lineno if doc else fn.body[0].lineno - 1  # 0-based line index
        indent = " " * fn.body[0].col_offset
        edits.append((start, fn.end_lineno, f'{indent}raise NotImplementedError("{message}")\n'))
    for start, end, text in sorted(edits, reverse=True):
        lines[start:end] = [text]
    return "".join(lines)


def which_parts(numbers):
    """'part 12', 'parts 2-6' (a run), 'parts 1 and 11': the numbers as a header names them."""
    if len(numbers) == 1:
        return f"part {numbers[0]}"
    if list(numbers) == list(range(numbers[0], numbers[-1] + 1)):
        return f"parts {numbers[0]}-{numbers[-1]}"
    return f"parts {', '.join(str(n) for n in numbers[:-1])} and {numbers[-1]}"


HEADER = re.compile(r"# minigan homework, parts? ([0-9, and-]+) \(")


def parts_named(first_line):
    """The part numbers a file's first line names ({1, 11}), or None when it is no header."""
    m = HEADER.match(first_line)
    if m is None:
        return None
    numbers = set()
    for piece in re.split(r",| and ", m[1]):
        lo, _, hi = piece.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return None
        numbers.update(range(int(lo), int(hi or lo) + 1))
    return numbers


def _header(file, origin):
    which = which_parts([p.number for p in PARTS if p.file == file])
    return (f"# minigan homework, {which} (lessons/08_homework.md). {origin}\n"
            "# (`python -m minigan.homework start`). Replace each\n"
            "# `raise NotImplementedError(\"TODO (part N) ...\")` with your code; the rest is\n"
            "# given.\n"
            "# Grade it with `python -m minigan.homework check THIS_FOLDER`.\n")


# The given helpers of minigan that would do a part's work if the learner called them (the D
# step of a D with BatchNorm and of the other games; the conditional GAN's D and G steps, which
# a wrapper that drops the labels turns into parts 9 and 10): blanked too, as the homework's MLP
# GAN needs none of them (train_mnist.py refuses --homework with --conditional), so that parts
# 9 and 10 cannot be earned by calling them.
NOT_GIVEN = {"gan.py": {
    "critic_step": "not part of the homework: its D has no BatchNorm, and it trains the 2014 "
                   "game (--loss bce)",
    "conditional_discriminator_step": "not part of the homework: it trains a conditional "
                                      "GAN, and --homework trains the MLP GAN without labels",
    "conditional_generator_step": "not part of the homework: it trains a conditional GAN, "
                                  "and --homework trains the MLP GAN without labels"}}


def generated(file):
    """The learner's layers.py, losses.py, gan.py, spectral.py, penalties.py, scores.py, conv.py
    or batchnorm.py: minigan's module with the TODOs blanked."""
    path = MINIGAN / file
    todos = {name: todo_message(p, name) for p in PARTS if p.file == file for name in p.functions}
    todos.update(NOT_GIVEN.get(file, {}))
    return (_header(file, f"Generated from minigan/{file}")
            + blank(path.read_text(), todos, f"minigan/{file}"))


def _docstring(tree, qualname, path, note=""):
    """The docstring of qualname, as an indented triple-quoted block of a class body."""
    text = ast.get_docstring(_find(tree, qualname, path, function=False)) or ""
    if note:
        text += "\n\n" + note
    return textwrap.indent(f'"""{text}\n"""', "    ")


def _method_source(source, tree, qualname, path):
    node = _find(tree, qualname, path)
    return "".join(source.splitlines(keepends=True)[node.lineno - 1:node.end_lineno])


def optim_skeleton():
    """The learner's optim.py: hand-written scaffolding, minigan's docstrings and formulas."""
    path = MINIGAN / "optim.py"
    source = path.read_text()
    tree = ast.parse(source)
    for name in ("SGD.step", "Adam.step"):  # the parts blank these: they must still exist
        _find(tree, name, "minigan/optim.py")
    note = ("Homework version: no weight decay, dampening or Nesterov, so g = grad. Update\n"
            "every parameter in place, p.data[...] = p.data - ...: the layers hold these very\n"
            "arrays (p.data -= ... fails: a NamedTuple's field cannot be reassigned).")
    sgd_todo = todo_message(PARTS[6], "SGD.step")
    adam_todo = todo_message(PARTS[7], "Adam.step")
    return f'''{_header("optim.py", "Docstrings from minigan/optim.py")}
"""Optimizers, homework version: the plain update rules, one parameter at a time.

minigan/optim.py computes the same rules with preallocated scratch arrays, for speed; here the
scaffolding holds only the optimizer's state, and you write each rule as it reads in
lessons/05_optimizers.md. Use them as minigan's are used::

    opt = Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    model.zero_grad(); model.backward(dout); opt.step()
"""

from minigan import backend


class Optimizer:
    """Holds the list of ``Param(name, data, grad)``: the layers' own parameter and gradient
    arrays, and the step counter ``t``. ``step()`` adds 1 to ``t``, changes each ``p.data`` in
    place (``p.data[...] = ...``) and never writes to ``p.grad``."""

    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr
        self.t = 0  # number of steps taken

    def zero_grad(self):
        for p in self.params:
            p.grad.fill(0)

{_method_source(source, tree, "Optimizer.state_dict", "minigan/optim.py")}
{_method_source(source, tree, "Optimizer.load_state_dict", "minigan/optim.py")}

class SGD(Optimizer):
{_docstring(tree, "SGD", "minigan/optim.py", note)}

    def __init__(self, params, lr=1e-3, momentum=0.0):
        super().__init__(params, lr)
        self.momentum = momentum
        self.b = [backend.xp.zeros_like(p.data) for p in self.params]  # momentum buffers

    def _state_arrays(self):
        return {{"b": self.b}}

    def step(self):
        """One update of every parameter, in place (lessons/05_optimizers.md)."""
        raise NotImplementedError("{sgd_todo}")


class Adam(Optimizer):
{_docstring(tree, "Adam", "minigan/optim.py", note)}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        self.betas, self.eps = tuple(betas), eps
        self.m = [backend.xp.zeros_like(p.data) for p in self.params]  # first moments
        self.v = [backend.xp.zeros_like(p.data) for p in self.params]  # second moments

    def _state_arrays(self):
        return {{"m": self.m, "v": self.v}}

    def step(self):
        """One update of every parameter, in place (lessons/05_optimizers.md)."""
        raise NotImplementedError("{adam_todo}")
'''


def readme():
    rows = "\n".join(f"| {p.number} | {p.title} | {p.file} | {', '.join(p.functions)} | "
                     f"{', '.join(p.lessons)} | {p.points} |" for p in PARTS)
    return f"""# minigan homework

Write the backward passes, losses, optimizers and GAN steps of minigan yourself. Each file here
is minigan's own module with the bodies you write replaced by
`raise NotImplementedError("TODO (part N) ...")`. Walkthrough: lessons/08_homework.md.

| part | what | file | you write | derived in lessons/ | points |
| --- | --- | --- | --- | --- | --- |
{rows}

Total: {TOTAL} points. Parts 11-14 (the games of lesson 14) and 15-18 (the Fréchet distance of
lesson 11, the convolutions and BatchNorm of lesson 12) came later: a folder started before them
is graded on the parts it has.

    python -m minigan.homework check THIS_FOLDER          # grade every part
    python -m minigan.homework check THIS_FOLDER 2 3      # grade parts 2 and 3 only
    python -m minigan.homework check THIS_FOLDER --verbose  # full tracebacks
    python train_mnist.py --homework THIS_FOLDER          # train the GAN on your code
"""


def files():
    """{file name: text} of a fresh homework folder."""
    out = {f: (optim_skeleton() if f == "optim.py" else generated(f)) for f in ALL_FILES}
    out["README.md"] = readme()
    return out
