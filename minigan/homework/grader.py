"""Grade a homework folder part by part, and name the classic mistake when a part fails.

Every part runs its checks in one order and stops at the first that fails:

1. shapes: what forward, backward, the loss or the step returns has the expected shape;
2. the float64 gradient check (``minigan.gradcheck``, non-uniform upstream gradient);
3. agreement with minigan's own implementation, on the same inputs and parameters;
4. the properties the lessons teach: backward adds (``+=``) into the very same grads arrays,
   the cache holds what backward needs, logits of +-1e4 stay finite without overflow,
   optimizers update the parameter arrays in place, the generator step leaves D alone.

The parts' checks live one module a kind of part: ``grade_losses`` (part 1), ``grade_layers``
(parts 2-6), ``grade_optim`` (parts 7-8) and ``grade_gan`` (parts 9-10), over ``checks`` (the
hints, the comparisons that name a mistake, the result records) and ``learner`` (loading and
running the learner's code). This module runs the parts and collects their results.
"""

from minigan.homework.checks import Failed, Result
from minigan.homework.grade_gan import grade_d_step, grade_g_step
from minigan.homework.grade_layers import (grade_dense, grade_leaky, grade_sequential,
                                           grade_sigmoid, grade_tanh)
from minigan.homework.grade_losses import grade_losses
from minigan.homework.grade_optim import grade_adam, grade_sgd
from minigan.homework.learner import LearnerError, Runner, attempted, load_module
from minigan.homework.parts import PARTS

GRADERS = {1: grade_losses, 2: grade_dense, 3: grade_leaky, 4: grade_tanh, 5: grade_sigmoid,
           6: grade_sequential, 7: grade_sgd, 8: grade_adam, 9: grade_d_step, 10: grade_g_step}


def grade_part(folder, part):
    """Grade one part; returns its Result."""
    if not attempted(folder, part):
        return Result(part, "not attempted")
    run = Runner(folder)
    try:
        module = load_module(folder, part.file)
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


def grade(folder, numbers=None):
    """Results of the parts numbered ``numbers`` (all of them when None), in order."""
    chosen = [p for p in PARTS if numbers is None or p.number in numbers]
    return [grade_part(folder, p) for p in chosen]
