"""The grader's child process: the only place the learner's code runs (minigan/homework/isolate.py).

Started as ``python -m minigan.homework.child``, it reads its job, one JSON line, on stdin:
``{"token", "workdir", "limit", "tasks": [{"name", "kind", ...}]}``. It keeps its stdout, the
pipe to the parent, for its reports: one JSON line per task, with the token. While a task runs,
file descriptors 1 and 2 point at ``WORKDIR/NAME.out`` (what the learner's code prints), and
Python's faulthandler watches the time: at ``limit`` seconds it writes where the code is to
``WORKDIR/NAME.trace`` and ends the process; a crash (a segfault, ``os.abort()``) writes the
same dump there. The parent reads both when a task reports nothing.

The kinds: "grade" (one part of the homework, ``grader.graded``), "load" and "replay" (the
capstone's, ``capstone.loaded`` and ``capstone.replayed``).

It is not a command: run by hand (a terminal, or stdin that is not such a job), it says so in one
line and exits with status 2.
"""

import faulthandler
import json
import os
import sys
from pathlib import Path

from minigan import rules

KINDS = ("grade", "load", "replay")
LIMIT = rules.number(0, lo_open=True)  # seconds a task may run (faulthandler's timeout)
NOT_A_COMMAND = ("python -m minigan.homework.child: error: this is the grader's child process, "
                 "not a command; grade a homework folder with `python -m minigan.homework check "
                 "DIR`")


def read_job(line):
    """The job that one JSON line holds, or None when the line is not such a job."""
    try:
        job = json.loads(line)
    except (ValueError, RecursionError):  # not JSON; brackets nested too deep
        return None
    is_task = (lambda t: isinstance(t, dict) and isinstance(t.get("name"), str)
               and t.get("kind") in KINDS)
    if (isinstance(job, dict) and "token" in job and isinstance(job.get("workdir"), str)
            and Path(job["workdir"]).is_dir() and LIMIT[0](job.get("limit"))
            and isinstance(job.get("tasks"), list) and all(map(is_task, job["tasks"]))):
        return job
    return None


def main():
    job = None if sys.stdin.isatty() else read_job(sys.stdin.readline())
    if job is None:  # run by hand, not by isolate.py
        print(NOT_A_COMMAND, file=sys.stderr)
        return 2
    channel = os.fdopen(os.dup(1), "w")  # the parent's pipe; fd 1 goes to the tasks' files

    def report(name, result=None):
        channel.write(json.dumps({"token": job["token"], "task": name, "result": result}) + "\n")
        channel.flush()

    from minigan.homework import capstone, grader  # NumPy and minigan, before the clock starts

    kinds = {"grade": grader.graded, "load": capstone.loaded, "replay": capstone.replayed}
    workdir = Path(job["workdir"])
    report("ready")
    for task in job["tasks"]:
        name = task["name"]
        with open(workdir / f"{name}.out", "wb") as out, open(workdir / f"{name}.trace", "w") as tr:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            faulthandler.enable(tr)  # a crash: the dump, then the signal ends the process
            faulthandler.dump_traceback_later(job["limit"], exit=True, file=tr)
            try:
                result = kinds[task["kind"]](task)
            except BaseException:  # the kinds catch the learner's errors; this is a last resort
                result = None  # no result: the parent fails the task
            finally:
                faulthandler.cancel_dump_traceback_later()
                faulthandler.disable()
                sys.stdout.flush()
                sys.stderr.flush()
        report(name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
