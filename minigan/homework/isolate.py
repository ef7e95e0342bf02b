"""Run the learner's code in a child process, with a time limit, and believe only its results.

The grader never runs the learner's code in its own process. ``run`` starts ``python -m
minigan.homework.child`` and hands it a job on its stdin: the tasks (grade part 3, replay 50
steps, ...), the time limit of each, a folder for its files and a random token. The child
answers on its stdout, one JSON line per task, each carrying the token; while the learner's code
runs, the child points its file descriptors 1 and 2 at a file of the task's, so what the code
prints is kept apart (and shown as printed) and cannot pass for a result.

Whatever a child does instead of answering (exits with any status, hangs, crashes) ends that
task as a ``Death``: the parent kills the child if it still runs, reads what Python's
faulthandler wrote in the child (where the learner's code was when the time ran out or it
crashed), and starts a fresh child for the tasks left. A task without its result never passes.

What this does not protect against: code that reads the token from the child's memory, or
writes to files and other processes; it isolates mistakes and shortcuts, it is not a sandbox.
"""

import ast
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent.parent  # the folder that holds minigan/
STARTUP = 60  # seconds for a child to import NumPy and minigan and say it is ready
GRACE = 5  # seconds past the limit before the parent kills a child that did not end itself
SHOWN = 20  # lines of what the learner's code printed, shown per task (the last ones)


class Done(NamedTuple):
    result: object  # what the child reported for the task (JSON: a dict, or None)
    printed: str


class Death(NamedTuple):
    how: str  # "time limit", "exited", "crashed" or "did not start"
    returncode: object  # the child's exit status (negative: the signal that ended it), or None
    trace: str  # what faulthandler wrote: where the code was at the time limit or the crash
    printed: str


def run(tasks, limit):
    """Yield (task, Done or Death) for each task, in order; a task is a dict with a unique
    "name" and a "kind" (minigan/homework/child.py), and gets ``limit`` seconds."""
    with tempfile.TemporaryDirectory(prefix="minigan-homework-") as tmp:
        left = list(tasks)
        while left:
            child = Child(Path(tmp) / f"child{len(tasks) - len(left)}", left, limit)
            try:
                for task in list(left):
                    outcome = child.outcome(task["name"])
                    left.remove(task)
                    yield task, outcome
                    if isinstance(outcome, Death):
                        break  # a fresh child for the tasks left
            finally:
                child.close(wait=0)  # its results are in: no need to wait for it to exit
            if isinstance(outcome, Death) and outcome.how == "did not start":
                for task in left:  # another child would fail the same way
                    yield task, outcome
                return


class Child:
    """One ``python -m minigan.homework.child`` and the lines it writes on its stdout."""

    def __init__(self, workdir, tasks, limit):
        workdir.mkdir()
        self.workdir, self.limit, self.token = workdir, limit, secrets.token_hex(16)
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.log = open(workdir / "child.log", "wb")  # the child's stderr until its first task
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "minigan.homework.child"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, env=dict(os.environ, PYTHONPATH=path))
        job = {"token": self.token, "workdir": str(workdir), "limit": limit, "tasks": tasks}
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.close()  # the learner's code reads no input: input() gets EOF
        except OSError:
            pass  # the child died at once: ready below says so
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self._next("ready", STARTUP)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # end of file: the child has ended

    def _next(self, name, seconds):
        """The result the child reports for ``name``, "timeout" or "ended"; lines without the
        token, or for another task, are not the child's results and are passed over."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return "timeout"
            if line is None:
                return "ended"
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if (isinstance(message, dict) and message.get("token") == self.token
                    and message.get("task") == name):
                return {"result": message.get("result")}

    def outcome(self, name):
        """Done with the task's result, or a Death that says what happened instead."""
        if not isinstance(self.ready, dict):
            self.close(wait=GRACE)
            return Death("did not start", self.proc.returncode, _tail(self.workdir /
                                                                      "child.log"), "")
        got = self._next(name, self.limit + GRACE)
        printed = printed_text(self.workdir / f"{name}.out")
        if isinstance(got, dict):
            return Done(got["result"], printed)
        self.close(wait=0 if got == "timeout" else GRACE)  # ended: collect its exit status
        trace = _tail(self.workdir / f"{name}.trace")
        if got == "timeout" or "Timeout (" in trace:  # faulthandler's header at the limit
            return Death("time limit", self.proc.returncode, trace, printed)
        how = "crashed" if self.proc.returncode < 0 else "exited"
        return Death(how, self.proc.returncode, trace, printed)

    def close(self, wait):
        """Kill the child unless it exits within ``wait`` seconds."""
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _tail(path, size=20000):
    """The last ``size`` bytes of a file, as text ('' when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def printed_text(path):
    """The last SHOWN lines the learner's code printed, each made printable (no escape codes
    that could rewrite the terminal) and cut to 200 characters."""
    lines = _tail(path).splitlines()
    shown = ["".join(c if c.isprintable() else "?" for c in line)[:200]
             for line in lines[-SHOWN:]]
    if len(lines) > SHOWN:
        shown.insert(0, "...")
    return "\n".join(shown)


# --- saying what happened -----------------------------------------------------------------------

def why(death, what, folder, file, limit):
    """(check, message) for a task that ended without its result: ``what`` is "part 3" or
    "the replay", ``file`` the learner's file to look in."""
    where = site(death.trace, folder)
    if death.how == "did not start":
        last = (death.trace.strip().splitlines() or ["no message"])[-1]
        return "grader", f"the grader could not start a process to run {what}: {last}"
    if death.how == "time limit":
        return "time limit", (f"{what} did not finish in {limit:g} s: look for a loop that never "
                              f"ends in {where or file}")
    if death.how == "crashed":
        number = -death.returncode
        name = signal.Signals(number).name if number in signal.valid_signals() else number
        cause = ("out of memory?" if name == "SIGKILL" else
                 "a segfault, os.abort() or os.kill()")
        at = f"in {where}" if where else f"look in {file}"
        return "crashed", f"your code crashed the process running {what} ({name}: {cause}); {at}"
    return "exited", (f"your code ended the process running {what} with exit status "
                      f"{death.returncode} before it was graded: look for os._exit or another "
                      f"exit in {file}")


FRAME = re.compile(r'^\s*File "(.+)", line (\d+) in ')


def site(trace, folder):
    """'layers.py, LeakyReLU.backward (line 140)' for the innermost frame of faulthandler's dump
    that is in the learner's folder ('' when none is)."""
    folder = Path(folder).resolve()
    for line in trace.splitlines():  # faulthandler writes the most recent call first
        m = FRAME.match(line)
        if m and Path(m[1]).resolve().parent == folder:
            path, number = Path(m[1]), int(m[2])
            name = qualname_at(path, number)
            return f"{path.name}, {name} (line {number})" if name else \
                f"{path.name}, line {number} (at import)"
    return ""


def qualname_at(path, line):
    """'LeakyReLU.backward': the defs around ``line`` of the Python file (or '')."""
    try:
        body = ast.parse(Path(path).read_text()).body
    except (OSError, SyntaxError, ValueError):
        return ""
    names = []
    while True:
        node = next((n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef,
                                                       ast.AsyncFunctionDef))
                     and n.lineno <= line <= n.end_lineno), None)
        if node is None:
            return ".".join(names)
        names.append(node.name)
        body = node.body
