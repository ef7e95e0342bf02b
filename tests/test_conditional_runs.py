"""benchmarks/conditional_runs.py: the goal's verdicts print a number beside the goal so that it
reads as above or below it (docs/conditional/conditional.md)."""

from clitest import load_benchmark

runs = load_benchmark("conditional_runs")


def test_a_score_that_rounds_to_the_goal_prints_the_digits_that_tell_them_apart():
    assert runs.beside(11.2116, 11.2) == "11.21" and runs.beside(17.04, 11.2) == "17.0"
    assert runs.beside(97.951, 98.0) == "97.95" and runs.beside(98.6, 98.0) == "98.6"
    assert runs.beside(11.2, 11.2) == "11.2"  # the goal itself: nothing to tell apart
    res = {("acgan", "improved"): {0: {20: {"class_consistency": 0.97951, "fd": 14.5}},
                                   1: {20: {"class_consistency": 0.986, "fd": 11.2116}}}}
    text = "\n".join(runs.goal_lines(res, [0, 1], 20))
    assert "| 97.95%, FD 14.5 | 98.6%, FD 11.21 | falls short |" in text
    assert "class consistency below 98%: 97.95% (seed 0); FD above 11.2: 14.5 (seed 0), " \
           "11.21 (seed 1)." in text
