"""One helper for every command's bad-input tests: run it as a learner would, then check that it
failed the way the project promises (exit status 2, one clear message, no traceback) and that it
wrote or changed nothing.

    result = run_command(["train_mnist.py", "--batch-size", "0"], cwd=tmp_path)
    assert_clean_error(result, "--batch-size", "0")

A command is a script path relative to the repository root (``"train_mnist.py"``) or a module
(``"-m", "minigan.sample"``). Commands run in a subprocess with the repository first on
``PYTHONPATH``, so the tests see exactly what a learner's shell sees. ``call`` runs a command's
entry point in-process instead, which is faster (argparse's SystemExit(2) and a returned 2 give
the same Result); ``script`` makes such an entry point of a script, run as its shell would:

    result = call(train_mnist.cli, ["--batch-size", "0"], capsys)
    result = call(script("benchmarks/bn_modes.py"), ["run", "-n", "5"], capsys)
"""

import hashlib
import importlib.util
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def run_command(args, cwd, timeout=120, stdin=None):
    """Run ``python ARGS...`` in ``cwd``; returns the CompletedProcess (text output)."""
    args = list(args)
    if args[0] != "-m":
        args[0] = str(ROOT / args[0])  # a script of the repository
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL if stdin is None
                          else stdin)


class Result:
    """What a command run in-process gave: the same fields as a CompletedProcess."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def call(entry, argv, capsys):
    """Run a command's cli/main in-process with argv; argparse's errors exit with SystemExit(2).
    Returns a Result of its exit status and what it printed (pytest's capsys)."""
    capsys.readouterr()
    try:
        code = entry(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return Result(code, out.out, out.err)


def script(path):
    """An entry point for ``call``: the script at path (relative to the repository root) run as
    ``python PATH ARGV...`` runs it, as ``__main__`` (runpy), so its own ``if __name__ ==
    "__main__":`` line decides the exit status, as in a shell: ``sys.exit(main())`` passes on a
    returned 2, a bare ``main()`` ends with 0. sys.argv, sys.path (the script puts its folder
    first) and os.environ are put back afterwards."""
    path = str(ROOT / path)

    def entry(argv):
        saved = sys.argv, sys.path[:], dict(os.environ)
        sys.argv = [path, *argv]
        try:
            runpy.run_path(path, run_name="__main__")
        finally:
            sys.argv, sys.path[:] = saved[0], saved[1]
            if dict(os.environ) != saved[2]:
                os.environ.clear()
                os.environ.update(saved[2])
        return 0
    return entry


def message(stderr):
    """The error message in stderr, without the usage block argparse prints above it: the
    usage lists every flag, so a needle like "--out" would be found there whatever the message
    said. The message starts at the first line with "error: " ("prog: error: ...")."""
    lines = stderr.splitlines()
    first = next((i for i, line in enumerate(lines) if "error: " in line), 0)
    return "\n".join(lines[first:])


def assert_clean_error(result, *needles):
    """Exit status 2, no Python traceback, and every needle in the error message
    (case-insensitive; argparse's usage block does not count)."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, (
        f"expected exit status 2, got {result.returncode}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}")
    assert "Traceback" not in output, f"a traceback reached the user:\n{output}"
    said = message(result.stderr)
    for needle in needles:
        assert needle.lower() in said.lower(), (
            f"the message does not mention {needle!r}:\n{said}")


def snapshot(folder):
    """{relative path: SHA-256} of every file under folder, and {relative path: "folder"} of
    every folder in it, so that an empty folder made by a refused command shows too (empty if
    folder does not exist)."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "folder" for p in sorted(folder.rglob("*"))
            if p.is_file() or p.is_dir()}


def damaged_npy(folder, name, how):
    """A .npy of 10 images, damaged: "header" garbles its header (np.load raises Python's
    tokenize.TokenError), "truncated" cuts its data short."""
    np.save(folder / name, np.zeros((10, 28, 28), np.uint8))
    raw = (folder / name).read_bytes()
    if how == "header":  # the shape's closing parenthesis gone: an unclosed bracket
        raw = raw.replace(b"(10, 28, 28)", b"(10, 28, 28 ")
    else:
        raw = raw[:500]
    (folder / name).write_bytes(raw)


class EndedChild:
    """A stand-in for subprocess.Popen's process in the benchmarks' tests (their children.py):
    a child that has ended with exit status `code` as soon as it started, having printed
    nothing; ``signals`` counts the SIGTERMs a stop sent it."""

    stdout = ()  # the lines a caller that reads them as they come sees

    def __init__(self, code, stderr="the child's last words"):
        self.returncode, self.stderr, self.signals = code, stderr, 0

    def communicate(self, stdin=None):
        return "", self.stderr

    def terminate(self):
        self.signals += 1


def load_benchmark(name):
    """benchmarks/NAME.py as a module, for tests of its functions (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def skip_unless_sys_is_unwritable():
    """Skip the test where this process can make a folder in /sys, the place the tests name as
    one a command cannot write to (as root, os.access answers yes there; only trying tells)."""
    import pytest

    probe = Path("/sys/minigan-probe")
    try:
        probe.mkdir()
    except OSError:
        return
    probe.rmdir()
    pytest.skip("this process can write in /sys")
