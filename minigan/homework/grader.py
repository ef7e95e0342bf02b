"""Grade a homework folder part by part, and name the classic mistake when a part fails.

Every part runs its checks in one order and stops at the first that fails:

1. shapes: what forward, backward, the loss or the step returns has the expected shape;
2. the float64 gradient check (``minigan.gradcheck``, non-uniform upstream gradient);
3. agreement with minigan's own implementation, on the same inputs and parameters;
4. the properties the lessons teach: backward adds (``+=``) into the very same grads arrays,
   the cache holds what backward needs, logits of +-1e4 stay finite without a floating-point
   error, the generator step leaves D alone.

Two properties are checked first, as an array changed in place spoils the checks after it:
forward leaves its x as it was, and backward its dout and what forward cached (the x it was
given, the out it returned), before the shapes; an optimizer updates the parameter arrays in
place and never writes to the gradients, after each step, before agreement.

The parts' checks live one module a kind of part: ``grade_losses`` (part 1), ``grade_layers``
(parts 2-6), ``grade_optim`` (parts 7-8), ``grade_gan`` (parts 9-10), ``grade_games``
(parts 11-14), ``grade_frechet`` (part 15) and ``grade_conv`` (parts 16-18), over ``checks``
(the hints, the comparisons that name a mistake, the result records) and ``learner`` (loading
and running the learner's code). This module runs the parts and collects their results.

A folder started before parts 11-14 (or 15-18) existed does not have them
(``learner.present``): they are reported as not in the folder, never run, and count neither for
nor against the score.

Before any check, a part's graded functions and classes must be the learner's own: defined in
the learner's file, not minigan's re-exported or aliased (``learner.borrowed``); borrowed code
earns no points.

The learner's code never runs in the grader's process: ``grade`` runs the parts in a child
process, one after another (``isolate``, ``child``), each with a time limit, and decides the
score from what the child reports; a part whose child hangs, exits or crashes before reporting
is failed, and a fresh child grades the parts left.
"""

import traceback

from minigan.homework import isolate
from minigan.homework.checks import HINTS, Failed, Result
from minigan.homework.grade_conv import grade_batchnorm, grade_conv2d, grade_conv_transpose
from minigan.homework.grade_frechet import grade_frechet
from minigan.homework.grade_games import grade_game_losses, grade_gp, grade_r1, grade_spectral
from minigan.homework.grade_gan import grade_d_step, grade_g_step
from minigan.homework.grade_layers import (grade_dense, grade_leaky, grade_sequential,
                                           grade_sigmoid, grade_tanh)
from minigan.homework.grade_losses import grade_losses
from minigan.homework.grade_optim import grade_adam, grade_sgd
from minigan.homework.learner import (LearnerError, Runner, attempted, borrowed, learner_line,
                                       load_module, present)
from minigan.homework.parts import PARTS, part

TIME_LIMIT = 30  # seconds a part may run (a correct part takes well under one)

GRADERS = {1: grade_losses, 2: grade_dense, 3: grade_leaky, 4: grade_tanh, 5: grade_sigmoid,
           6: grade_sequential, 7: grade_sgd, 8: grade_adam, 9: grade_d_step, 10: grade_g_step,
           11: grade_game_losses, 12: grade_spectral, 13: grade_r1, 14: grade_gp,
           15: grade_frechet, 16: grade_conv2d, 17: grade_conv_transpose, 18: grade_batchnorm}

ABSENT = "not in this folder"  # the status of a part the folder was started without


def absent(p):
    return Result(p, ABSENT, 0, ABSENT, f"it was started before part {p.number} existed; run "
                  "`start` in a new folder for it")


def grade_part(folder, part):
    """Grade one part; returns its Result."""
    if not attempted(folder, part):
        return Result(part, "not attempted")
    run = Runner(folder)
    try:
        module = load_module(folder, part.file)
        for name, what in borrowed(module, part.file, part.functions):
            raise Failed("own code", f"{name} is {what}: only code you write earns points")
        GRADERS[part.number](run, module)
    except Failed as f:
        return Result(part, "failed", 0, f.check, f.message, f.hints, f.error)
    except LearnerError as e:
        check = "your code raised"
        if isinstance(e.error, NotImplementedError):
            return Result(part, "failed", 0, "not finished",
                          f"{e.what}: still raises NotImplementedError: {e.error}", [], e.error)
        where = f"\n  at {e.where}" if e.where else ""
        return Result(part, "failed", 0, check, f"{e}{where}", [], e.error)
    return Result(part, "passed", part.points)


def graded(task):
    """The child's side of ``grade``: grade part ``task["part"]``, as JSON for the parent."""
    p = part(task["part"])
    try:
        r = grade_part(task["folder"], p)
    except Exception as e:  # raised outside the Runner, e.g. by a property of the learner's
        where = learner_line(e, task["folder"])
        r = Result(p, "failed", 0, "your code raised", f"{type(e).__name__}: {e}"
                   + (f"\n  at {where}" if where else ""), [], e)
    error = None if r.error is None else "".join(traceback.format_exception(r.error))
    return {"status": r.status, "check": r.check, "message": r.message, "hints": r.hints,
            "error": error}


def grade(folder, numbers=None, time_limit=TIME_LIMIT):
    """Results of the parts numbered ``numbers`` (all of them when None), in order; the parts
    attempted run in a child process, in turn, each with ``time_limit`` seconds (a fresh child
    after one that died), and each part the folder does not have is ``ABSENT``."""
    chosen = [p for p in PARTS if numbers is None or p.number in numbers]
    results = {p.number: absent(p) for p in chosen if not present(folder, p)}
    results.update({p.number: Result(p, "not attempted") for p in chosen
                    if p.number not in results and not attempted(folder, p)})
    tasks = [{"name": f"part{p.number}", "kind": "grade", "folder": str(folder),
              "part": p.number} for p in chosen if p.number not in results]
    for task, outcome in isolate.run(tasks, time_limit):
        p = part(task["part"])
        results[p.number] = result_of(p, outcome, folder, time_limit)
    return [results[p.number] for p in chosen]


def result_of(p, outcome, folder, time_limit):
    """Part p's Result from what its child did: the score is decided here, never by the child."""
    if isinstance(outcome, isolate.Death):
        check, message = isolate.why(outcome, f"part {p.number}", folder, p.file, time_limit)
        return Result(p, "failed", 0, check, message, printed=outcome.printed)
    r = outcome.result
    if not (isinstance(r, dict) and r.get("status") in ("passed", "failed", "not attempted")):
        return Result(p, "failed", 0, "no result", f"part {p.number} reported no result: an "
                      f"error escaped both your code ({p.file}) and the grader",
                      printed=outcome.printed)
    if r["status"] != "failed":  # passed, or put back to the TODOs while it was graded
        return Result(p, r["status"], p.points if r["status"] == "passed" else 0,
                      printed=outcome.printed)
    return Result(p, "failed", 0, str(r.get("check")), str(r.get("message")),
                  [h for h in r.get("hints") or [] if h in HINTS], r.get("error"),
                  printed=outcome.printed)
