"""The learner's side of the grader: load their files, run their code, name their line.

Everything the grader calls in the learner's code goes through a ``Runner``: an exception there
becomes a ``LearnerError`` that names the learner's own file and line, never the grader's.

Parts are graded by behaviour only, never by reading the learner's source; the source is read
for two things: whether the folder has a part at all (``present``: it was started before parts
11-14, or 15-18, existed), and whether a part was attempted (some function no longer raises the
TODO).
Only the learner's own code earns points: ``borrowed`` names the graded functions and classes
that the learner's module exposes but did not define (minigan's, re-exported or aliased).

All of this runs in the grader's child process (``child``), never in the grader's own.
"""

import ast
import importlib.util
import sys
import traceback
from pathlib import Path

import numpy as np

from minigan.gradcheck import GradientCheckError
from minigan.homework.parts import todo_message
from minigan.homework.skeleton import SkeletonError, _find, parts_named


class LearnerError(Exception):
    """The learner's code raised: ``where`` is its own file and line, ``error`` the exception."""

    def __init__(self, error, where, what):
        super().__init__(f"{what}: {type(error).__name__}: {error}")
        self.error, self.where, self.what = error, where, what


def load_module(folder, file):
    """Import the learner's file fresh (a new module object on every call)."""
    path = Path(folder) / file
    name = f"minigan_homework_{Path(file).stem}_{id(path)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses (gan.py's StepMetrics) look their module up here
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:  # sys.exit() at import fails the import, like a crash
        raise LearnerError(e, learner_line(e, folder), f"importing {file}") from e
    finally:
        sys.modules.pop(name, None)
    return module


def present(folder, part):
    """Was the folder started with this part? Its file exists and the file's first line, the
    header ``start`` writes, names the part (``# minigan homework, parts 1 and 11``; looked for
    in the first 10 lines, so that a line added above it does not hide it). A folder started
    before part 11 existed has losses.py headed ``part 1``: with or without the newer functions
    in it (given, as minigan's code, in folders started between the two), part 11 is not in it.
    A file without the header has every part of its file: graded, it says what is missing."""
    path = Path(folder) / part.file
    if not path.is_file():
        return False
    try:
        lines = path.read_text().splitlines()[:10]
    except (OSError, UnicodeDecodeError):
        return True  # graded, and the import says what is wrong
    named = next((n for n in map(parts_named, lines) if n is not None), None)
    return named is None or part.number in named


def attempted(folder, part):
    """True when some function of the part no longer has just its TODO body."""
    path = Path(folder) / part.file
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError:
        return True  # the learner is editing it
    except (OSError, UnicodeDecodeError, ValueError):  # unreadable, not UTF-8, a NUL byte
        return True  # graded: the import, in the child, says what is wrong with the file
    for name in part.functions:
        try:
            node = _find(tree, name, part.file)  # the skeleton's own lookup of a def
        except SkeletonError:
            return True  # renamed or removed: the learner has been at work
        statements = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(
            s.value, ast.Constant) and isinstance(s.value.value, str))]
        todo = todo_message(part, name)
        if not (len(statements) == 1 and isinstance(statements[0], ast.Raise)
                and todo in ast.unparse(statements[0])):
            return True
    return False


def borrowed(module, file, names):
    """[(name, what it is)] for each graded name (``"Dense.backward"``, ``"softplus"``) that
    ``module``, the learner's ``file``, exposes but did not define in that file: a class or
    function from minigan or another module (imported, re-exported or aliased), or a helper of
    the file bound to a graded name. The objects are checked, not the source, so an alias
    (``Dense = L.Dense``) is found like an import."""
    path = Path(module.__file__).resolve()
    out = []
    for name in names:
        obj, pieces = module, name.split(".")
        for i, piece in enumerate(pieces):
            obj = getattr(obj, piece, None)
            if obj is None:
                out.append((name, f"missing: {file} defines no {piece}"))
                break
            if isinstance(obj, type) and obj.__module__ != module.__name__:
                out.append((".".join(pieces[:i + 1]), f"{_origin(obj)}, not a class written "
                            f"in {file}"))
                break
        else:
            code = getattr(obj, "__code__", None)
            if code is None or Path(code.co_filename).resolve() != path:
                out.append((name, f"{_origin(obj)}, not a function written in {file}"))
            elif obj.__name__ != piece:
                out.append((name, f"{file}'s {obj.__qualname__} under another name"))
    return out


def _origin(obj):
    """'minigan.layers.Dense' for a class or function, else its type's name."""
    if hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"a {type(obj).__name__}"


def learner_line(error, folder):
    """'layers.py, line 93, in backward: <the line>' for the innermost frame in the learner's
    folder (a SyntaxError: its own file and line)."""
    folder = Path(folder).resolve()
    if isinstance(error, SyntaxError) and error.filename:
        return f"{Path(error.filename).name}, line {error.lineno}: {(error.text or '').strip()}"
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if Path(f.filename).resolve().parent == folder]
    if not frames:
        return ""
    f = frames[-1]
    return f"{Path(f.filename).name}, line {f.lineno}, in {f.name}: {f.line}"


class Runner:
    """Calls into the learner's code: an exception becomes a LearnerError naming their line."""

    def __init__(self, folder):
        self.folder = folder

    def __call__(self, what, fn, *args, **kwargs):
        try:
            with np.errstate(all="ignore"):
                return fn(*args, **kwargs)
        except GradientCheckError:
            raise  # the gradient check's verdict on the learner's numbers, not their crash
        except (Exception, SystemExit) as e:
            raise LearnerError(e, learner_line(e, self.folder), what) from e

    def float_errors(self, what, fn, *args):
        """Run fn and note NumPy's floating-point errors; (result, the set of their kinds):
        "overflow" (exp(1e4)), "divide by zero" (log(0), 1 / 0.0) and "invalid value"
        (0 * inf, inf - inf). Underflow (exp(-1e4) = 0) is no error: the stable forms do it."""
        kinds = set()
        with np.errstate(over="call", divide="call", invalid="call", under="ignore",
                         call=lambda kind, flag: kinds.add(kind)):
            try:
                result = fn(*args)
            except (Exception, SystemExit) as e:
                raise LearnerError(e, learner_line(e, self.folder), what) from e
        return result, kinds
