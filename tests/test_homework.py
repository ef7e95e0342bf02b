"""The homework: the skeleton is minigan's own code with TODOs, the grader scores an untouched
skeleton 0 and minigan's code (or a plain learner's answers) full marks, each planted mistake
fails its own part alone and gets exactly its own hint, a learner's crash shows the learner's
line, a learner's hang, exit, crash or borrowed code fails its part (and only it) in time, and
the capstone's replay agrees with a correct homework and finds where a wrong one parts."""

import inspect
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import train_mnist
from clitest import (assert_clean_error, call, message, run_command,
                     skip_unless_sys_is_unwritable, snapshot)
from homework_answers import ANSWERS, PLANTED, body, edited, fill, planted
from minigan import batchnorm, conv, gan, layers, losses, penalties, rundir, scores, spectral
from minigan.homework import (capstone, grade_frechet, grade_games, grader, isolate, learner,
                              skeleton)
from minigan.homework import __main__ as homework_main
from minigan.homework.checks import HINTS
from minigan.homework.parts import ALL_FILES, FILES, PARTS, TOTAL, todo_message

ROOT = Path(__file__).resolve().parent.parent


def start(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in skeleton.files().items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def answered(tmp_path):
    """A homework with every part answered plainly (tests/homework_answers.py)."""
    fill(start(tmp_path / "hw"))
    return tmp_path / "hw"


def check(folder, *args):
    return run_command(["-m", "minigan.homework", "check", str(folder), *args], cwd=folder.parent)


def part_of(name):
    """The number of the part whose functions include ``name``."""
    return next(p.number for p in PARTS if name in p.functions)


# --- the skeleton -------------------------------------------------------------------------------

def test_every_part_has_an_answer_and_every_hint_a_planted_mistake():
    assert sorted(ANSWERS) == sorted(f for p in PARTS for f in p.functions)
    assert sorted(PLANTED) == sorted(HINTS)
    assert [p.number for p in PARTS] == list(range(1, len(PARTS) + 1))
    assert TOTAL == 200


def test_skeleton_keeps_minigan_signatures_and_docstrings_and_blanks_each_part(tmp_path):
    folder = start(tmp_path / "hw")
    mods = {f: learner.load_module(folder, f) for f in ALL_FILES}
    ours = {"layers.py": layers, "losses.py": losses, "gan.py": gan, "spectral.py": spectral,
            "penalties.py": penalties, "scores.py": scores, "conv.py": conv,
            "batchnorm.py": batchnorm}
    for part in PARTS:
        for name in part.functions:
            theirs = mods[part.file]
            fn = theirs
            for piece in name.split("."):
                fn = getattr(fn, piece)
            if part.file in ours:  # generated from minigan's module: same signature, docstring
                lib = ours[part.file]
                for piece in name.split("."):
                    lib = getattr(lib, piece)
                assert inspect.signature(fn) == inspect.signature(lib), name
                assert inspect.getdoc(fn) == inspect.getdoc(lib), name
            source = inspect.getsource(fn)
            assert todo_message(part, name) in source, name
    # the given scaffolding is minigan's: Dense's __init__ draws the same weights
    a = mods["layers.py"].Dense(3, 2, rng=np.random.default_rng(0))
    b = layers.Dense(3, 2, rng=np.random.default_rng(0))
    assert all(np.array_equal(a.params[k], b.params[k]) for k in b.params)
    # optim.py: hand-written scaffolding, minigan's formulas, without minigan's machinery for
    # speed (a workspace per parameter, updates written with out=)
    opt_src = (folder / "optim.py").read_text()
    assert "bias correction" in opt_src
    assert "self.work" not in opt_src and "out=" not in opt_src
    adam = mods["optim.py"].Adam(layers.Dense(3, 2).parameters())
    assert not hasattr(adam, "work") and (adam.t, len(adam.m), len(adam.v)) == (0, 2, 2)


def test_skeleton_fails_loudly_when_a_named_function_disappears():
    source = (ROOT / "minigan" / "layers.py").read_text()
    renamed = source.replace("def backward(self, dout, param_grads=True, input_grad=True):\n"
                             '        """dout: (N, out)', "def back(self, dout):\n"
                             '        """dout: (N, out)')
    assert renamed != source
    with pytest.raises(skeleton.SkeletonError, match="Dense.backward"):
        skeleton.blank(renamed, {"Dense.backward": "TODO"}, "minigan/layers.py")
    skeleton.files()  # today's minigan has every function the parts name


def test_blank_keeps_docstring_and_signature():
    src = 'def f(x, y=2):\n    """Doc: y = x."""\n    z = x  # comment\n    return z\n\n\nK = 1\n'
    out = skeleton.blank(src, {"f": "TODO (part 1): write f"})
    assert out == ('def f(x, y=2):\n    """Doc: y = x."""\n'
                   '    raise NotImplementedError("TODO (part 1): write f")\n\n\nK = 1\n')


# --- scores -------------------------------------------------------------------------------------

def test_untouched_skeleton_scores_zero_with_every_part_not_attempted(tmp_path):
    result = check(start(tmp_path / "hw"))
    assert result.returncode == 1, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    assert len(rows) == len(PARTS)
    assert all("not attempted" in r for r in rows), result.stdout
    assert f"total 0/{TOTAL}" in result.stdout


def test_minigans_own_code_scores_full_marks(tmp_path):
    folder = start(tmp_path / "hw")
    for f in ALL_FILES:  # minigan's modules as they are, optimizers included
        shutil.copy(ROOT / "minigan" / f, folder / f)
    result = check(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"total {TOTAL}/{TOTAL}" in result.stdout
    assert result.stdout.count("passed") == len(PARTS)


def test_plain_answers_score_full_marks(answered):
    results = grader.grade(answered)
    assert [(r.status, r.message) for r in results] == [("passed", "")] * len(PARTS)
    assert sum(r.points for r in results) == TOTAL


@pytest.mark.parametrize("args", [["4", "3"], ["--verbose", "4", "3"], ["3", "--verbose", "4"],
                                  ["--time-limit", "5", "3", "4"]],
                         ids=["parts", "after-verbose", "around-verbose", "after-time-limit"])
def test_check_grades_only_the_parts_named(answered, args):
    """Parts after a flag are parts too (argparse alone left them over: "unrecognized
    arguments: 4 3")."""
    result = check(answered, *args)
    assert result.returncode == 0, result.stdout
    rows = [line.split()[0] for line in result.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    assert rows == ["3", "4"]
    assert "total 10/10 (parts 3, 4)" in result.stdout


# --- folders started before parts 11-14 existed ------------------------------------------------

NEWER = "# --- Beyond Jensen-Shannon"  # where minigan/losses.py's part 11 functions begin


def old_folder(folder, given=False):
    """A homework answered in a folder started before parts 11-14 existed: the four files of
    today's skeleton, losses.py headed ``part 1`` as it was then and without the newer functions
    (given: with them, minigan's code as it is, as a folder started between the games and these
    parts has them)."""
    fill(start(folder))
    for f in ALL_FILES:
        if f not in FILES:
            (folder / f).unlink()
    path = folder / "losses.py"
    text = path.read_text().replace("parts 1 and 11", "part 1", 1)
    assert text.startswith("# minigan homework, part 1 (") and NEWER in text
    newer = (ROOT / "minigan" / "losses.py").read_text().split(NEWER, 1)[1] if given else ""
    path.write_text(text.split(NEWER, 1)[0] + (NEWER + newer if given else ""))
    return folder


@pytest.mark.parametrize("given", [False, True], ids=["before-the-games", "games-given"])
def test_a_folder_started_before_parts_11_to_14_checks_as_before(tmp_path, given):
    folder = old_folder(tmp_path / "hw", given)
    assert ("def hinge_real" in (folder / "losses.py").read_text()) == given
    result = check(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {int(m[1]): m[2] for m in re.finditer(
        r"^\s+(\d+)  .* (passed|failed|not attempted|not in this folder)\s+( -|\d+)/\d+$",
        result.stdout, flags=re.M)}
    assert rows == {p.number: "passed" if p.number <= 10 else "not in this folder"
                    for p in PARTS}, result.stdout
    for n in (11, 12, 13, 14):
        assert (f"      not in this folder: it was started before part {n} existed; run `start` "
                "in a new folder for it") in result.stdout
    assert result.stdout.splitlines()[-1] == \
        "total 100/100 (not in this folder: 11, 12, 13, 14, 15, 16, 17, 18)"


def test_a_folder_started_before_parts_15_to_18_checks_as_before(tmp_path):
    """The six files of the folders started between the games and lessons 11-12's parts."""
    folder = fill(start(tmp_path / "hw")) or tmp_path / "hw"
    for f in ("scores.py", "conv.py", "batchnorm.py"):
        (folder / f).unlink()
    result = check(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "total 150/150 (not in this folder: 15, 16, 17, 18)"
    assert "started before part 17 existed" in result.stdout


def test_an_old_folder_still_fails_and_hints_and_counts_only_its_parts(tmp_path):
    folder = old_folder(tmp_path / "hw")
    (folder / "losses.py").write_text((folder / "losses.py").read_text().replace(
        "(sigmoid(logits) - targets)", "(targets - sigmoid(logits))"))
    result = check(folder, "1", "11")
    assert result.returncode == 1 and "hint: " + HINTS["sign"] in result.stdout, result.stdout
    assert result.stdout.splitlines()[-1] == "total 0/10 (parts 1, 11; not in this folder: 11)"
    only = check(folder, "12")  # nothing this folder has: nothing passed
    assert only.returncode == 1 and only.stdout.splitlines()[-1] == \
        "total 0/0 (parts 12; not in this folder: 12)", only.stdout
    assert [r.status for r in grader.grade(folder, [2, 13])] == ["passed", grader.ABSENT]


def test_train_mnist_trains_on_an_old_folder(tmp_path, capsys):
    from test_train import SMALL

    folder = old_folder(tmp_path / "hw")
    assert capstone.is_homework(folder)
    run_dir = train_mnist.main([*SMALL, "--epochs", "1", "--out", str(tmp_path / "run"),
                                "--homework", str(folder)])
    assert "they agree to 1e-06" in capsys.readouterr().out
    assert (Path(run_dir) / "checkpoint.npz").is_file()


def test_part_14_is_graded_with_minigans_double_backward(tmp_path):
    folder = start(tmp_path / "hw")
    fill(folder, names={"r1", "gradient_penalty"})  # double_backward (part 13) left as a TODO
    thirteen, fourteen = grader.grade(folder, [13, 14])
    assert (thirteen.status, thirteen.check) == ("failed", "not finished")
    assert fourteen.status == "passed", fourteen.message


def test_the_penalties_mistakes_are_computed_beside_minigans():
    x = np.random.default_rng(0).normal(size=(grade_games.N, grade_games.DIM))
    real, fake = x, x[::-1] * 0.5
    for what, ref in ((("r1", 3.0), lambda D: penalties.r1(D, x, 3.0)),
                      (("gp", 10.0, real, fake, 1, True), lambda D: penalties.gradient_penalty(
                          D, real, fake, 10.0, np.random.default_rng(1)))):
        D = grade_games.critic(2)
        value, grads = grade_games.penalty_variant(grade_games.critic(2), x, what)
        assert np.isclose(value, ref(D), rtol=1e-12, atol=0)
        assert np.allclose(grads, grade_games.flat(D.grads), rtol=1e-12, atol=0)
        wrong = [grade_games.penalty_variant(grade_games.critic(2), x, what, axis=0)]
        if what[0] == "gp":
            wrong += [grade_games.penalty_variant(grade_games.critic(2), x, what, root=False),
                      grade_games.penalty_variant(grade_games.critic(2), x, what[:-1] + (False,))]
        for v, g in wrong:
            assert not (np.isclose(v, value) and np.allclose(g, grads))


@pytest.mark.parametrize("name,old,new", [
    ("Conv2D.backward", "dx_pad[:, :, p:p + x_shape[2], p:p + x_shape[3]]",
     "dx_pad[:, :, :x_shape[2], :x_shape[3]]"),
    ("Conv2D.backward", "range(k)", "range(s)"),  # the kernel's offsets counted by the stride
    ("ConvTranspose2D.forward", "range(k)", "range(s)"),
    ("ConvTranspose2D.backward", "range(k)", "range(s)"),
    ("ConvTranspose2D.forward", "canvas[:, :, p:p + h_out, p:p + w_out]",
     "canvas[:, :, :h_out, :w_out]"),
    ("ConvTranspose2D.forward", "_, c_out, h_out, w_out = self.output_shape(x.shape)",
     "c_out = self.out_channels\nh_out, w_out = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k"),
])
def test_a_padding_or_stride_mistake_is_not_taken_for_overlapping_windows(tmp_path, name, old,
                                                                         new):
    """The "overlap" hint fires when a layer is right without overlap and wrong with it; the
    geometry without overlap has the same padding and output_padding, so that a wrong crop, or
    output_padding forgotten, fails both and names nothing, and a stride apart from k, so that
    the kernel's offsets counted by the stride (every range(k) written range(s)) fail both too."""
    folder = start(tmp_path / "hw")
    assert old in body(name)
    fill(folder, {name: body(name).replace(old, new)})
    (r,) = grader.grade(folder, [part_of(name)])
    assert (r.status, r.hints) == ("failed", []), (r.check, r.message, r.hints)


def test_the_frechet_graders_own_values_are_right():
    feats = np.random.default_rng(0).normal(size=(7, 5)) * [1, 2, 3, 4, 5]
    mu, S = grade_frechet.covariance_by_hand(feats)
    assert np.allclose(mu, feats.mean(axis=0), rtol=1e-13, atol=0)
    assert np.allclose(S, np.cov(feats, rowvar=False), rtol=1e-12, atol=0)
    Z = grade_frechet.singular_covariance()  # what the "eig_clip" check relies on
    assert np.linalg.matrix_rank(Z) == 2 and np.linalg.eigvalsh(Z).min() < 0
    S1, S2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])  # commuting: the shortcut is exact
    assert np.isclose(grade_frechet.sqrt_product_variant(np.zeros(2), S1, np.ones(2), S2),
                      2 + (1 - 3) ** 2 + (2 - 1) ** 2, rtol=1e-12)


def test_a_part_half_done_is_failed_not_unattempted(tmp_path):
    folder = start(tmp_path / "hw")
    fill(folder, names={"Dense.forward"})
    (r,) = grader.grade(folder, [2])
    assert r.status == "failed" and r.check == "not finished"
    assert "TODO (part 2): write Dense.backward" in r.message


CASES = [(hint, i) for hint in PLANTED for i in range(len(PLANTED[hint]))]


def planted_part(hint, i):
    """The number of the part whose function planted case (hint, i) edits."""
    return part_of(PLANTED[hint][i][0])


def in_rounds(cases):
    """The cases in rounds of at most one a part: round r plants the r-th case of each part."""
    by_part = {}
    for case in cases:
        by_part.setdefault(planted_part(*case), []).append(case)
    return [[of_part[r] for of_part in by_part.values() if r < len(of_part)]
            for r in range(max(map(len, by_part.values())))]


ROUNDS = in_rounds(CASES)  # as many as the most cases one part has (part 11's six)


def test_the_rounds_plant_every_case_once_and_at_most_one_a_part():
    assert sorted(case for round_ in ROUNDS for case in round_) == sorted(CASES)
    for round_ in ROUNDS:
        parts = [planted_part(*case) for case in round_]
        functions = [PLANTED[hint][i][0] for hint, i in round_]
        assert len(set(parts)) == len(parts) and len(set(functions)) == len(functions), round_


@pytest.mark.parametrize("round_", ROUNDS,
                         ids=["+".join(f"{h}-{i}" for h, i in round_) for round_ in ROUNDS])
def test_each_planted_mistake_triggers_its_hint_and_no_other(tmp_path, round_):
    """Each planted mistake fails its own part, with exactly its own hint, and no other part.

    The mistakes of one round, each in a different part, share one folder and one grading (60
    gradings of 18 parts cost over a minute, a child process each). That relies on the parts
    being graded independently: a part runs only its own functions of the learner's file, and
    the file's given code. Each part loads its file afresh (``learner.load_module``); the
    learner's files import minigan's modules, never one another; where a part's check needs
    another part's function it puts minigan's in (part 6 runs Sequential over the learner's
    classes with minigan's forward and backward, part 14 runs minigan's double_backward); and a
    planted edit changes a function's body, so that its file still imports. Every part of the
    round is checked, those planted with nothing too: were a part's grade to come to depend on
    another part's function, a planted mistake would fail a second part or change its hints,
    and the test fails, naming the case. Once checked: each part's status, check, message and
    hints, graded in these rounds, equal what grading each case alone gives."""
    folder = start(tmp_path / "hw")
    answers = {}
    for hint, i in round_:
        answers.update(planted(hint, i))
    fill(folder, answers)
    planted_in = {planted_part(hint, i): (hint, i) for hint, i in round_}
    wrong = []
    for r in grader.grade(folder):
        got = f"{r.status}: {(r.check, r.message, r.hints)}"
        if r.part.number not in planted_in:
            if r.status != "passed":
                wrong.append(f"part {r.part.number} ({r.part.file}), planted with no mistake, "
                             f"{got}")
            continue
        hint, i = planted_in[r.part.number]
        if (r.status, r.hints) != ("failed", [hint]):
            wrong.append(f"{hint}-{i}, planted in {PLANTED[hint][i][0]} (part {r.part.number}, "
                         f"{r.part.file}), should fail with hints [{hint!r}]; {got}")
    planted_here = ", ".join(f"{h}-{i} in {PLANTED[h][i][0]} (part {planted_part(h, i)})"
                             for h, i in round_)
    assert not wrong, "\n".join([f"this round plants {planted_here}", *wrong])


# an array the grader still holds, written into: dx computed in dout's own array (the first dx is
# right, and the caller's dout, the grader's or the douts R1's double backward keeps, is changed
# under it), or out in x's (out and dx are right, and the gradient check, which nudges x, then
# reads numbers that look like no mistake at all)
IN_PLACE = {
    "LeakyReLU.backward": (
        "return dout * backend.xp.where(self.cache > 0, 1.0, self.negative_slope)",
        "dout *= backend.xp.where(self.cache > 0, 1.0, self.negative_slope)\nreturn dout"),
    "Tanh.backward": ("return dout * (1 - self.cache ** 2)",
                      "dout *= 1 - self.cache ** 2\nreturn dout"),
    "Sigmoid.backward": ("return dout * self.cache * (1 - self.cache)",
                         "dout *= self.cache * (1 - self.cache)\nreturn dout"),
    "BatchNorm.backward": (
        "return gamma * inv_std / n * (n * dout - sum_dout - x_hat * sum_dout_xhat)",
        "dout *= n\ndout -= sum_dout + x_hat * sum_dout_xhat\ndout *= gamma * inv_std / n\n"
        "return dout"),
    "Tanh.forward": ("backend.xp.tanh(x)", "backend.xp.tanh(x, out=x)"),
    "Sigmoid.forward": ("self.cache = sigmoid(x)", "x[...] = sigmoid(x)\nself.cache = x"),
    "LeakyReLU.forward": ("return backend.xp.where(x > 0, x, self.negative_slope * x)",
                          "x *= backend.xp.where(x > 0, 1.0, self.negative_slope)\nreturn x"),
}


@pytest.mark.parametrize("name", IN_PLACE)
def test_a_layer_that_writes_into_its_dout_or_x_is_told_so(tmp_path, name):
    """Not the "derivative" hint for a backward: the grader's dout, changed by every call, had
    become the dx returned, which read as dx = dout (f'(x) missing) though the derivative is
    there."""
    given = "dout" if name.endswith("backward") else "x"
    folder = start(tmp_path / "hw")
    fill(folder, edited(name, *IN_PLACE[name]))
    (r,) = grader.grade(folder, [part_of(name)])
    assert (r.status, r.check, r.hints) == ("failed", f"{given} unchanged", []), \
        (r.check, r.message, r.hints)
    assert f"changed the {given} it was given" in r.message


# backward writing into what forward cached, which the caller holds too: the out forward returned
# (Tanh's and Sigmoid's answers cache it) or the x forward was given (LeakyReLU's caches it). Each
# was told something else: forward blamed for the out backward had squared, a right gradient
# called wrong (backward had overwritten the x the gradient check nudges), or, with np.sign's
# out=, nothing at all, though the caller's x was destroyed
CACHE_WRITES = {
    "tanh-squares-out": ("Tanh.backward", "o = self.cache\no *= o\nreturn dout * (1 - o)", "out"),
    "sigmoid-writes-out": ("Sigmoid.backward", "o = self.cache\no *= 1 - o\nreturn dout * o",
                           "out"),
    "leaky-masks-x": ("LeakyReLU.backward", "m = self.cache\nm[m > 0] = 1\n"
                      "m[m <= 0] = self.negative_slope\nreturn dout * m", "x"),
    "leaky-sign-into-x": ("LeakyReLU.backward", "s = backend.xp.sign(self.cache, out=self.cache)\n"
                          "return dout * backend.xp.where(s > 0, 1.0, self.negative_slope)", "x"),
}


@pytest.mark.parametrize("case", CACHE_WRITES)
def test_a_backward_that_writes_into_its_cache_is_told_so(tmp_path, case):
    name, code, given = CACHE_WRITES[case]
    folder = start(tmp_path / "hw")
    fill(folder, {name: code})
    (r,) = grader.grade(folder, [part_of(name)])
    assert (r.status, r.check, r.hints) == ("failed", f"{given} unchanged", []), \
        (r.check, r.message, r.hints)
    assert f"{name} changed the {given} " in r.message and "forward cached it" in r.message


# an AttributeError that is no assignment to a Param's field: not the "in_place" hint (which
# says p.data -= ... fails), but the learner's line
MISSING_ATTRIBUTE = {
    "Adam.step": ("beta1, beta2 = self.betas", "beta1, beta2 = self.beta1, self.beta2"),
    "SGD.step": ("p.data - self.lr * p.grad", "p.data - self.lr * p.gradient"),
}


@pytest.mark.parametrize("name", MISSING_ATTRIBUTE)
def test_a_missing_attribute_in_a_step_is_not_taken_for_an_assignment(tmp_path, name):
    old, new = MISSING_ATTRIBUTE[name]
    folder = start(tmp_path / "hw")
    fill(folder, edited(name, old, new))
    (r,) = grader.grade(folder, [part_of(name)])
    assert (r.status, r.check, r.hints) == ("failed", "your code raised", []), \
        (r.check, r.message, r.hints)
    assert "AttributeError" in r.message and "optim.py, line" in r.message, r.message
    assert r.message.endswith(new), r.message  # the learner's line


def test_a_bce_with_logits_that_needs_an_array_of_targets_fails_part_1(tmp_path):
    """discriminator_step passes one number (real_target, then 0.0): a bce_with_logits that
    breaks on it scored full marks, then crashed the capstone's replay."""
    folder = start(tmp_path / "hw")
    fill(folder, edited("bce_with_logits", "loss = ",
                        "targets = targets.reshape(logits.shape)\nloss = "))
    (r,) = grader.grade(folder, [1])
    assert (r.status, r.check) == ("failed", "your code raised"), (r.check, r.message)
    assert "bce_with_logits(logits, 0.9): AttributeError" in r.message, r.message
    assert "targets = targets.reshape(logits.shape)" in r.message


def test_an_sgd_that_never_counts_its_steps_fails_the_step_count(tmp_path):
    """Without ``self.t += 1`` this SGD moves every parameter as minigan's does (its zero
    buffers make b = momentum * 0 + g on the first step anyway); only self.t, which the
    checkpoint saves, shows it."""
    folder = start(tmp_path / "hw")
    fill(folder, edited("SGD.step", "self.t += 1\n", ""))
    (r,) = grader.grade(folder, [part_of("SGD.step")])
    assert (r.status, r.check) == ("failed", "the step count"), (r.check, r.message)
    assert "after step 1, self.t is 0" in r.message


# a setting written as the number the lessons use, not read from the layer or the arguments: right
# at that number only; each needs a second value in the grader (the needle: where it fails)
HARD_CODED = {
    "leaky-slope": ({**edited("LeakyReLU.forward", "self.negative_slope * x", "0.2 * x"),
                     **edited("LeakyReLU.backward", "self.negative_slope)", "0.2)")},
                    "LeakyReLU"),
    "sgd-momentum": (edited("SGD.step", "self.momentum * b", "0.9 * b"), "momentum=0.5"),
    "adam-betas": (edited("Adam.step", "beta1, beta2 = self.betas", "beta1, beta2 = 0.9, 0.999"),
                   "betas=(0.5, 0.99)"),
    "adam-beta2": (edited("Adam.step", "beta1, beta2 = self.betas",
                          "beta1, beta2 = self.betas[0], 0.999"), "betas=(0.5, 0.99)"),
    "adam-lr": (edited("Adam.step", "p.data - self.lr *", "p.data - 0.01 *"), "lr=0.02"),
    "r1-gamma": (edited("r1", "penalty = gamma / 2 *", "penalty = 3 / 2 *", "gamma / n * g",
                        "3 / n * g"), "gamma=2"),
    "gp-lam": (edited("gradient_penalty", "penalty = lam *", "penalty = 10 *", "2 * lam / n",
                      "2 * 10 / n"), "lam=5"),
    "real-target-0.9": (edited("discriminator_step", "(logits_real, real_target)",
                               "(logits_real, 0.9)"), "real_target=1.0"),
    "real-target-1": (edited("discriminator_step", "(logits_real, real_target)",
                             "(logits_real, 1.0)"), "real_target=0.9"),
    "bn-channels": (edited("BatchNorm.backward", "dout.size // self.num_features",
                           "dout.size // 3"), "BatchNorm(2)"),
}


@pytest.mark.parametrize("case", HARD_CODED)
def test_a_setting_written_as_a_number_fails_its_part(tmp_path, case):
    answers, needle = HARD_CODED[case]
    folder = start(tmp_path / "hw")
    fill(folder, answers)
    (number,) = {part_of(name) for name in answers}
    (r,) = grader.grade(folder, [number])
    assert r.status == "failed" and needle in r.message, (r.status, r.check, r.message)
    assert r.hints == [], r.hints


def test_hints_never_print_the_expected_array(tmp_path):
    folder = start(tmp_path / "hw")
    fill(folder, planted("sign", 0))
    result = check(folder, "1")
    assert "hint: " + HINTS["sign"] in result.stdout
    assert "[[" not in result.stdout and "array(" not in result.stdout


def test_learner_crash_shows_the_learners_line_and_verbose_the_traceback(tmp_path):
    folder = start(tmp_path / "hw")
    fill(folder, {"Dense.forward": 'self.cache = x\nreturn x @ self.params["weights"]'})
    line = next(n for n, text in enumerate((folder / "layers.py").read_text().splitlines(), 1)
                if 'self.params["weights"]' in text)
    result = check(folder, "2")
    assert result.returncode == 1
    assert f"layers.py, line {line}, in forward: return x @ self.params[\"weights\"]" \
        in result.stdout, result.stdout
    assert "KeyError" in result.stdout
    runner = Path(learner.__file__).name  # the grader's frame that called the learner's code
    assert "Traceback" not in result.stdout and runner not in result.stdout
    verbose = check(folder, "2", "--verbose")
    assert "Traceback" in verbose.stdout and runner in verbose.stdout


# a losses.py that is not plain UTF-8 text, or cannot be read: the grader read it first, in its
# own process, and crashed with a traceback (UnicodeDecodeError; ValueError for a NUL byte on some
# Pythons). Python's import skips a comment's bytes, so a cp1252 comment is graded as usual; a
# cp1252 string, a NUL byte or a file it may not read fails the file's parts, naming the file
UNREADABLE = {"cp1252-comment": ("xp = backend.xp  # caf\u00e9\n".encode("cp1252"), "passed"),
              "cp1252-string": ('xp = backend.xp\n"caf\u00e9"\n'.encode("cp1252"), "failed"),
              "nul-byte": (b"xp = backend.xp  # \0\n", "failed"),
              "mode-000": (b"xp = backend.xp\n", "failed")}


@pytest.mark.parametrize("how", UNREADABLE)
def test_a_file_that_is_not_utf8_or_unreadable_is_graded_without_a_crash(tmp_path, how):
    if how == "mode-000" and os.geteuid() == 0:
        pytest.skip("root reads a file of mode 000")
    line, status = UNREADABLE[how]
    folder = start(tmp_path / "hw")
    fill(folder)
    path = folder / "losses.py"
    path.write_bytes(path.read_bytes().replace(b"xp = backend.xp\n", line, 1))
    if how == "mode-000":
        path.chmod(0)
    result = check(folder, "1", "11")
    assert result.returncode == (0 if status == "passed" else 1), result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr and result.stderr == ""
    for number in (1, 11):
        rest = result.stdout.split(f"\n{number:>4}  ", 1)[1]
        row, reason = rest.splitlines()[:2]
        assert row.split()[-2] == status, result.stdout
        if status == "failed":
            assert reason.startswith("      your code raised: importing losses.py: "), \
                result.stdout


def test_a_syntax_error_names_the_learners_file_and_line(tmp_path):
    folder = start(tmp_path / "hw")
    fill(folder, {"softplus": "return x +"})
    (r,) = grader.grade(folder, [1])
    assert r.status == "failed" and "losses.py, line" in r.message, r.message


# --- a learner with bad habits: every part runs apart, in time, on the learner's own code ------

LIMIT = 2  # --time-limit in these tests: each correct part takes a few hundredths of a second
FORGE = ("import json, os\n"
         "for fd in range(3, 64):\n"
         "    try:\n"
         "        os.write(fd, (json.dumps({'token': 'guess', 'task': 'part4', 'result': "
         "{'status': 'passed'}}) + '\\n').encode())\n"
         "    except OSError:\n"
         "        pass\n"
         "os._exit(0)")
IMITATE = ("print('   4  Tanh                   04_backprop_layers.md    passed    5/5')\n"
           "print('\\x1b[2J\\rtotal 100/100')\n" + body("Tanh.forward"))
ALIAS = "\nfrom minigan import layers as L\nDense = L.Dense\n"
CONDITIONAL_G = ("class NoLabels:  # G(z, y) and D(x, y) that ignore y\n"
                 "    def __init__(self, net):\n"
                 "        self.net = net\n"
                 "    def __getattr__(self, name):\n"
                 "        return getattr(self.net, name)\n"
                 "    def forward(self, x, labels):\n"
                 "        return self.net.forward(x)\n"
                 "labels = backend.xp.zeros(z.shape[0], dtype=int)\n"
                 "return conditional_generator_step(NoLabels(G), NoLabels(D), opt_G, z, labels, "
                 "gen_loss)")
LAYERS = (2, 3, 4, 5, 6)

# id: (answers {function: body}, edits {file: its new text from the old}, {part: (check, what
# its message says)}, the total); every other part must pass
HABITS = {
    "loop-losses": ({"softplus": "while True:\n    pass"}, {}, {1: ("time limit", [
        f"part 1 did not finish in {LIMIT} s: look for a loop that never ends in losses.py, "
        "softplus (line"])}, 190),
    "loop-layers": ({"LeakyReLU.backward": "while True:\n    pass"}, {}, {3: ("time limit", [
        "look for a loop that never ends in layers.py, LeakyReLU.backward (line"])}, 195),
    "loop-optim": ({"Adam.step": "while self.t >= 0:\n    self.t += 1"}, {}, {8: (
        "time limit", ["ends in optim.py, Adam.step (line"])}, 185),
    "loop-gan": ({"generator_step": "import time\nwhile True:\n    time.sleep(0.01)"}, {}, {
        10: ("time limit", ["ends in gan.py, generator_step (line"])}, 190),
    "loop-import": ({}, {"gan.py": lambda t: "while True:\n    pass\n" + t}, {n: ("time limit", [
        "ends in gan.py, line ", " (at import)"]) for n in (9, 10)}, 180),
    "os._exit-import": ({}, {"layers.py": lambda t: "import os\nos._exit(0)\n" + t}, {
        n: ("exited", ["exit status 0 before it was graded", "layers.py"]) for n in LAYERS}, 155),
    "os._exit-call": ({"Tanh.forward": "import os\nos._exit(0)"}, {}, {4: ("exited", [
        "your code ended the process running part 4 with exit status 0"])}, 195),
    "sys.exit-import": ({}, {"losses.py": lambda t: "import sys\nsys.exit(0)\n" + t}, {n: (
        "your code raised", ["importing losses.py: SystemExit: 0", "losses.py, line 2"])
        for n in (1, 11)}, 180),
    "sys.exit-call": ({"SGD.step": "import sys\nsys.exit(0)"}, {}, {7: (
        "your code raised", ["SGD(lr=0.1, momentum=0.0).step() (step 1): SystemExit: 0",
                             "in step: sys.exit(0)"])}, 190),
    "os.abort": ({"Sigmoid.backward": "import os\nos.abort()"}, {}, {5: ("crashed", [
        "(SIGABRT: a segfault, os.abort() or os.kill()); in layers.py, Sigmoid.backward"])}, 190),
    "MemoryError": ({"Dense.forward": "import numpy\nreturn numpy.empty((10**7, 10**7))"}, {},
                    {2: ("your code raised", ["MemoryError: Unable to allocate"])}, 185),
    "forged-result": ({"Tanh.forward": FORGE}, {}, {4: ("exited", ["exit status 0"])}, 195),
    "reexport-losses": ({}, {"losses.py": lambda t: "from minigan.losses import *\n"}, {
        1: ("own code", ["softplus is minigan.losses.softplus, not a function written in "
                         "losses.py"]),
        11: ("own code", ["least_squares is minigan.losses.least_squares"])}, 180),
    "reexport-layers": ({}, {"layers.py": lambda t: "from minigan.layers import *\n"}, {
        n: ("own code", ["is minigan.layers.", "not a", "written in layers.py"])
        for n in LAYERS}, 155),
    "reexport-optim": ({}, {"optim.py": lambda t: "from minigan.optim import *\n"}, {
        7: ("own code", ["SGD is minigan.optim.SGD, not a class written in optim.py"]),
        8: ("own code", ["Adam is minigan.optim.Adam"])}, 175),
    "reexport-gan": ({}, {"gan.py": lambda t: "from minigan.gan import *\n"}, {
        9: ("own code", ["discriminator_step is minigan.gan.discriminator_step"]),
        10: ("own code", ["generator_step is minigan.gan.generator_step"])}, 180),
    "aliased-import": ({}, {"layers.py": lambda t: t + ALIAS}, {2: ("own code", [
        "Dense is minigan.layers.Dense, not a class written in layers.py"])}, 185),
    "renamed-helper": ({}, {"gan.py": lambda t: t + "\ndiscriminator_step = "
                                        "critic_step\n"}, {9: (
        "own code", ["gan.py's critic_step under another name"])}, 190),
    "calls-a-given-conditional-step": ({"generator_step": CONDITIONAL_G}, {}, {10: (
        "not finished", ["NotImplementedError: not part of the homework"])}, 190),
    "calls-a-given-step": ({"discriminator_step": "return critic_step(G, D, opt_D, real, z, None, "
                                                  "'bce', real_target)"}, {}, {9: (
        "not finished", ["NotImplementedError: not part of the homework"])}, 190),
    "loop-penalties": ({"r1": "while True:\n    pass"}, {}, {13: ("time limit", [
        "ends in penalties.py, r1 (line"])}, 185),
    "os._exit-spectral": ({"SpectralNorm.add_weight_grad": "import os\nos._exit(3)"}, {}, {
        12: ("exited", ["exit status 3", "spectral.py"])}, 185),
    "reexport-spectral": ({}, {"spectral.py": lambda t: "from minigan.spectral import *\n"}, {
        12: ("own code", ["SpectralNorm is minigan.spectral.SpectralNorm, not a class written "
                          "in spectral.py"])}, 185),
    "reexport-penalties": ({}, {"penalties.py": lambda t: t + "\nfrom minigan.penalties import "
                                "gradient_penalty\n"}, {
        14: ("own code", ["gradient_penalty is minigan.penalties.gradient_penalty"])}, 190),
    "reexport-conv": ({}, {"conv.py": lambda t: "from minigan.conv import *\n"}, {
        16: ("own code", ["Conv2D is minigan.conv.Conv2D, not a class written in conv.py"]),
        17: ("own code", ["ConvTranspose2D is minigan.conv.ConvTranspose2D"])}, 170),
    "loop-batchnorm": ({"BatchNorm.backward": "while True:\n    pass"}, {}, {18: (
        "time limit", ["ends in batchnorm.py, BatchNorm.backward (line"])}, 190),
    "imitates-scoreboard": ({"Tanh.forward": IMITATE, "Tanh.backward": "return dout"}, {},
                            {4: ("gradient check", ["hint: dx equals dout"])}, 195),
}


def plant(folder, answers, edits):
    """The plain answers, with ``answers`` instead of theirs, then each file edited."""
    fill(folder, answers)
    for file, edit in edits.items():
        path = folder / file
        path.write_text(edit(path.read_text()))
    return folder


def file_of(name):
    """The learner's file that holds function ``name``."""
    return PARTS[part_of(name) - 1].file


def habit_files(habit):
    """The learner's files that ``habit`` plants into: those of its answers and its edits."""
    answers, edits, _, _ = HABITS[habit]
    return {file_of(name) for name in answers} | set(edits)


def in_file_rounds(habits):
    """The habits in rounds of at most one a file: each joins the first round that plants
    nothing in its files."""
    rounds = []
    for habit in habits:
        for round_ in rounds:
            if not habit_files(habit) & {f for h in round_ for f in habit_files(h)}:
                round_.append(habit)
                break
        else:
            rounds.append([habit])
    return rounds


HABIT_ROUNDS = in_file_rounds(HABITS)  # as many as the habits of one file (layers.py's nine)


def test_the_habit_rounds_plant_every_habit_once_and_at_most_one_a_file():
    assert sorted(h for round_ in HABIT_ROUNDS for h in round_) == sorted(HABITS)
    for round_ in HABIT_ROUNDS:
        files = [f for h in round_ for f in habit_files(h)]
        assert len(set(files)) == len(files), round_
    for habit, (_, _, failing, total) in HABITS.items():
        # a habit fails parts of its own files only, so that a round's habits fail parts apart,
        # and its total is TOTAL less their points, as a round's total is made of them
        assert {PARTS[n - 1].file for n in failing} <= habit_files(habit), habit
        assert total == TOTAL - sum(PARTS[n - 1].points for n in failing), habit


@pytest.mark.parametrize("round_", HABIT_ROUNDS, ids=["+".join(r) for r in HABIT_ROUNDS])
def test_a_learners_bad_habit_fails_its_part_alone_in_time(tmp_path, round_):
    """Each bad habit fails its own parts, in time, and no other part.

    The habits of one round, each in a different file, share one folder and one `check` (27
    runs of `check`, a child process or more each, cost over a minute). That relies on what the
    grader isolates: each part loads its file afresh (``learner.load_module``), a file imports
    minigan's modules, never another of the learner's, so that a hang, an exit or a re-export at
    a file's import fails that file's parts only; a hang, an exit or a crash in a part ends its
    child, and a fresh child grades the parts left (``isolate.run``); a child reports on a pipe
    with a token that the learner's code does not know, so that a forged result is passed over;
    and what the learner's code prints is kept in its part's file, shown fenced under its part.
    Once checked: each part's row, check and block, graded in these rounds, equal what grading
    each habit alone gives. Every part is checked, so that a habit that came to fail a part of
    another habit's, or to change its block, fails the test, naming the habit."""
    answers, edits, failing = {}, {}, {}
    for habit in round_:
        answers.update(HABITS[habit][0])
        edits.update(HABITS[habit][1])
        failing.update({n: (habit, *what) for n, what in HABITS[habit][2].items()})
    total = TOTAL - sum(TOTAL - HABITS[habit][3] for habit in round_)
    planted_by = {f: habit for habit in round_ for f in habit_files(habit)}
    folder = plant(start(tmp_path / "hw"), answers, edits)
    began = time.monotonic()
    result = check(folder, "--time-limit", str(LIMIT))
    elapsed = time.monotonic() - began
    here = "this round plants " + ", ".join(f"{h} ({', '.join(sorted(habit_files(h)))})"
                                            for h in round_)
    hangs = sum(check_ == "time limit" for _, check_, _ in failing.values())
    assert elapsed < hangs * (LIMIT + isolate.GRACE) + 30, f"{here}: took {elapsed:.1f} s"
    assert result.returncode == 1, f"{here}\n{result.stdout}{result.stderr}"
    rows = {int(m[1]): m[2] for m in re.finditer(r"^\s+(\d+)  .* (passed|failed)\s+\d+/\d+$",
                                                  result.stdout, flags=re.M)}
    wrong = [] if sorted(rows) == [p.number for p in PARTS] else [
        f"a row for each part, not for parts {sorted(rows)}"]
    for p in PARTS:
        if p.number not in failing:
            if rows.get(p.number) != "passed":
                wrong.append(f"part {p.number} ({p.file}, planted with "
                             f"{planted_by.get(p.file, 'no habit')}) should pass: "
                             f"{rows.get(p.number)}")
            continue
        habit, check_, needles = failing[p.number]
        rest = result.stdout.partition(f"\n{p.number:>4}  ")[2]  # '' without its row
        block = re.split(r"\n(?= {0,3}\d)|\n\n", rest)[0]  # up to the next part's row
        missing = [n for n in [f"\n      {check_}: ", *needles] if n not in block]
        if rows.get(p.number) != "failed" or missing:
            wrong.append(f"{habit}: part {p.number} ({p.file}) should fail ({check_}) and say "
                         f"{needles}; it {rows.get(p.number)}, its block lacks {missing}:\n"
                         f"{block}")
    assert not wrong, "\n".join([here, *wrong])
    lines = result.stdout.splitlines()
    assert lines[-1] == f"total {total}/{TOTAL}" or lines[-2] == f"total {total}/{TOTAL}", \
        f"{here}\n{result.stdout}"
    # what the learner printed is fenced: no line of it can pass for the scoreboard's
    assert [line for line in lines if line.startswith("total")] == [f"total {total}/{TOTAL}"], \
        f"{here}\n{result.stdout}"
    assert "\x1b" not in result.stdout and result.stderr == "", f"{here}\n{result.stderr}"


def test_printing_is_shown_fenced_under_its_part(tmp_path):
    folder = plant(start(tmp_path / "hw"), {"Tanh.forward": IMITATE}, {})
    result = check(folder, "4")
    assert result.returncode == 0 and "total 5/5 (parts 4)" in result.stdout, result.stdout
    assert "      your code printed:\n      | ...\n" in result.stdout
    assert "      | ?[2J\n      | total 100/100\n" in result.stdout  # \\r: a new line
    assert len(result.stdout.splitlines()) < 30  # the last lines only: Tanh runs many times


def test_the_grader_runs_no_learner_code_in_its_own_process(tmp_path):
    folder = plant(start(tmp_path / "hw"), {}, {"losses.py": lambda t: (
        "import minigan\nminigan.GRADED_HERE = True\n" + t)})
    results = grader.grade(folder, [1])
    assert [r.status for r in results] == ["passed"]
    import minigan

    assert not hasattr(minigan, "GRADED_HERE")


def test_the_own_code_check_looks_at_objects_not_source(tmp_path):
    folder = plant(start(tmp_path / "hw"), {}, {"layers.py": lambda t: t + ALIAS})
    module = learner.load_module(folder, "layers.py")
    assert learner.borrowed(module, "layers.py", ("Dense.forward", "Tanh.forward")) == [
        ("Dense", "minigan.layers.Dense, not a class written in layers.py")]
    inherit = "\nclass Tanh(L.Tanh):\n    pass\n"  # its own class, minigan's methods
    (folder / "layers.py").write_text((folder / "layers.py").read_text() + inherit)
    module = learner.load_module(folder, "layers.py")
    assert ("Tanh.forward", "minigan.layers.Tanh.forward, not a function written in "
            "layers.py") in learner.borrowed(module, "layers.py", ("Tanh.forward",))


def test_train_mnist_refuses_a_homework_that_borrows_minigans_code(tmp_path):
    from test_train import SMALL

    plant(start(tmp_path / "hw"), {}, {"layers.py": lambda t: t + ALIAS})
    before = snapshot(tmp_path)
    result = run_command(["train_mnist.py", *SMALL, "--homework", "hw", "--out", "run"],
                         cwd=tmp_path)
    assert_clean_error(result, "borrows minigan's code", "Dense is minigan.layers.Dense",
                       "part 2")
    assert snapshot(tmp_path) == before


def test_the_capstone_stops_a_hang_at_import_and_in_the_replay(tmp_path):
    folder = plant(start(tmp_path / "hw"), {"generator_step": "while True:\n    pass"}, {})
    report = capstone.replay(folder, batches(), time_limit=LIMIT, **SMALL_GAN)
    assert not report.agree
    assert f"the replay did not finish in {LIMIT} s: look for a loop that never ends in gan.py, " \
        "generator_step (line" in str(report), str(report)
    (folder / "optim.py").write_text("while True:\n    pass\n")
    with pytest.raises(capstone.CapstoneError, match="did not finish in 2 s: look for a loop that "
                       r"never ends in optim.py, line [12] \(at import\)"):
        capstone.load(folder, time_limit=LIMIT)


# --- the command line ---------------------------------------------------------------------------

def test_start_writes_a_fresh_folder_and_refuses_to_overwrite(tmp_path):
    result = run_command(["-m", "minigan.homework", "start", "hw"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "hw").iterdir()) == sorted([*ALL_FILES,
                                                                          "README.md"])
    (tmp_path / "hw" / "layers.py").write_text("# my work\n")
    before = snapshot(tmp_path)
    again = run_command(["-m", "minigan.homework", "start", "hw"], cwd=tmp_path)
    assert_clean_error(again, "hw already holds", "would be replaced", "choose another folder",
                       "python -m minigan.homework check hw")
    assert snapshot(tmp_path) == before


def test_start_writes_beside_a_learners_other_files(tmp_path):
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "notes.md").write_text("my notes")
    result = run_command(["-m", "minigan.homework", "start", "hw"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "hw" / "notes.md").read_text() == "my notes"


@pytest.mark.parametrize("marks", [("checkpoint.npz", "config.json"), ("metrics.csv",)])
def test_start_refuses_a_training_runs_folder(tmp_path, marks):
    """start wrote its ten files into a train_mnist.py run's folder (no name of theirs is one of
    the homework's): a run's folder takes no other command's files (rundir.refuse_taken)."""
    (tmp_path / "run").mkdir()
    for name in marks:
        (tmp_path / "run" / name).write_text("the run's")
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.homework", "start", "run"], cwd=tmp_path)
    assert_clean_error(result, "run holds a train_mnist.py run", ", ".join(marks),
                       "choose another folder")
    assert result.stderr.count("\n") == 1 and snapshot(tmp_path) == before


def test_start_where_no_file_can_be_written_says_what_to_do(tmp_path):
    """It said "cannot write the homework into /sys/hw: Operation not permitted", no more."""
    skip_unless_sys_is_unwritable()
    result = run_command(["-m", "minigan.homework", "start", "/sys/hw"], cwd=tmp_path)
    assert_clean_error(result, "cannot write the homework into /sys/hw")
    fix = message(result.stderr).split("/sys/hw (", 1)[1]
    assert "start in another folder" in fix or "Free some disk space" in fix, fix
    assert result.stderr.count("\n") == 1 and not Path("/sys/hw").exists()


BAD = [
    (["start"], "folder"),
    (["start", "afile"], "is a file"),
    (["start", "afile/sub"], "inside one"),
    (["check", "nowhere"], "no homework folder"),
    (["check", "empty"], "missing"),
    (["check", "hw", "19"], "no part '19'"),
    (["check", "hw", "x"], "no part 'x'"),
    (["check", "hw", "0"], "no part '0'"),
    (["check", "hw", "²"], "no part '²'"),  # "²".isdigit(), but int("²") raised
    (["check", "hw", "--time-limit", "0"], ("--time-limit 0", "above 0 and at most 86,400")),
    (["check", "hw", "--time-limit", "nan"], ("--time-limit nan", "above 0 and at most 86,400")),
    (["check", "hw", "--time-limit", "soon"],  # was argparse's "invalid float value"
     "--time-limit soon: not allowed; use a number of seconds above 0 and at most 86,400"),
    (["check", "hw", "--time-limit", "1e308"], "at most 86,400"),  # was an OverflowError
    (["check", "hw", "--time-limit", "86401"], "at most 86,400"),
    (["start", ""], "empty folder name"),  # was the current folder
    (["check", ""], "empty folder name"),  # was the current folder too
    (["start", "n" * 300], "the name is too long"),  # was "is a file, or inside one"
    (["check", "n" * 300], "the name is too long"),  # was "no homework folder"
    (["check", "hw", "--bogus"], "--bogus"),
    (["check", "hw", "--verbose", "2", "--bogus"], "unrecognized arguments: --bogus"),
    (["start", "new", "extra"], "unrecognized arguments: extra"),
    (["grade", "hw"], "invalid choice"),
    ([], "command"),
]


def bad_input_folder(tmp_path):
    """tmp_path with what BAD names: a homework hw, a file afile, an empty folder empty."""
    start(tmp_path / "hw")
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "empty").mkdir()


@pytest.mark.parametrize("args,needles", BAD, ids=[" ".join(a) or "none" for a, _ in BAD])
def test_bad_input_is_a_clean_error(tmp_path, monkeypatch, capsys, args, needles):
    """In-process, for speed (a subprocess is half a second of start-up a case); the test below
    runs one case as the real command line. Each is refused before a part is graded, so no
    child process starts."""
    bad_input_folder(tmp_path)
    monkeypatch.chdir(tmp_path)  # as the command's cwd: hw, afile and empty are tmp_path's
    before = snapshot(tmp_path)
    result = call(homework_main.main, args, capsys)
    assert_clean_error(result, *([needles] if isinstance(needles, str) else needles))
    assert snapshot(tmp_path) == before


def test_bad_input_is_a_clean_error_from_the_real_command_line(tmp_path):
    """One of BAD as a learner's shell runs it: argparse's exit status 2 from a real process, no
    traceback on stderr (the others run in-process, above)."""
    args, needles = BAD[0]
    bad_input_folder(tmp_path)
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.homework", *args], cwd=tmp_path)
    assert_clean_error(result, needles)
    assert snapshot(tmp_path) == before


# stdin of the grader's child process run by hand: each was a traceback (JSONDecodeError,
# KeyError, RecursionError, FileNotFoundError)
CHILD_BAD = ["", "{}", "not json", "[" * 100000, '{"token": 1, "workdir": ".", "tasks": []}',
             '{"token": 1, "workdir": "nowhere", "limit": 5, "tasks": []}',
             '{"token": 1, "workdir": ".", "limit": 5, "tasks": [{"name": "a"}]}']


@pytest.mark.parametrize("job", CHILD_BAD, ids=[j[:20] or "empty" for j in CHILD_BAD])
def test_the_child_run_by_hand_says_it_is_not_a_command(tmp_path, job):
    (tmp_path / "job.txt").write_text(job)
    before = snapshot(tmp_path)
    with open(tmp_path / "job.txt") as stdin:
        result = run_command(["-m", "minigan.homework.child"], cwd=tmp_path, stdin=stdin)
    assert_clean_error(result, "the grader's child process, not a command",
                       "python -m minigan.homework check")
    assert result.stderr.count("\n") == 1 and snapshot(tmp_path) == before


def test_the_homework_needs_numpy_alone():
    code = ("import sys, minigan.homework.__main__, minigan.homework.capstone; "
            "print(sorted({'hypothesis', 'torch', 'cupy', 'scipy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# --- the capstone -------------------------------------------------------------------------------

SMALL_GAN = dict(latent_dim=4, g_hidden=(8,), d_hidden=(8, 6), steps=50)


def batches():
    return np.random.default_rng(0).uniform(-1, 1, (10, 16, 12))


def test_replay_agrees_with_a_correct_homework(answered):
    report = capstone.replay(answered, batches(), **SMALL_GAN)
    assert report.agree, str(report)
    assert report.worst < 1e-12
    assert "50 training steps" in str(report) and "agree to 1e-06" in str(report)


@pytest.mark.parametrize("hint,where", [
    ("eps_sqrt", "at step 1, in D's parameter 0.W after the discriminator step"),
    ("d_touched", "at step 1, in D's gradient 0.W after the generator step"),
    ("mean", "at step 1, in the loss of the discriminator step"),
])
def test_replay_names_the_step_and_quantity_where_a_wrong_homework_parts(tmp_path, hint, where):
    folder = start(tmp_path / "hw")
    i = {"mean": 2}.get(hint, 0)
    fill(folder, planted(hint, i))
    report = capstone.replay(folder, batches(), **SMALL_GAN)
    assert not report.agree and where in str(report), str(report)


def test_replay_trains_on_the_learners_generator_loss_through_g_losses(tmp_path):
    """A generator_step that picks its loss from gan.py's G_LOSSES, as minigan's does: that table
    was built from minigan's losses when gan.py was imported, and trained the learner's G on
    minigan's loss, so that a wrong learner's generator loss never showed."""
    folder = start(tmp_path / "hw")
    fill(folder, {**edited("generator_step", "GENERATOR_LOSSES[gen_loss]", "G_LOSSES[gen_loss]"),
                  **edited("generator_loss_nonsaturating", "backend.xp.mean(", "backend.xp.sum(")})
    report = capstone.replay(folder, batches(), **{**SMALL_GAN, "steps": 2})
    assert not report.agree and "at step 1, in the generator loss" in str(report), str(report)


def test_replay_reports_the_learners_crash(tmp_path):
    folder = start(tmp_path / "hw")
    report = capstone.replay(folder, batches(), **SMALL_GAN)
    assert "NotImplementedError" in report.error and "gan.py, line" in report.error


def test_train_mnist_trains_on_the_homework(answered, tmp_path, capsys):
    from test_train import SMALL

    run_dir = train_mnist.main([*SMALL, "--epochs", "1", "--out", str(tmp_path / "run"),
                                "--homework", str(answered)])
    out = capsys.readouterr().out
    assert "they agree to 1e-06" in out
    assert (Path(run_dir) / "checkpoint.npz").is_file()
    rows = rundir.read_rows(Path(run_dir) / "metrics.csv")
    assert rows and all(np.isfinite(r["d_loss"]) for r in rows)


def test_train_mnist_refuses_a_folder_that_is_not_a_homework(tmp_path):
    (tmp_path / "hw").mkdir()
    before = snapshot(tmp_path)
    result = run_command(["train_mnist.py", "--homework", "hw", "--out", "run"], cwd=tmp_path)
    assert_clean_error(result, "--homework", "minigan.homework start")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("old,new,check", [
    ("param_grads=param_grads", "param_grads=True", "param_grads=False"),
    ("return dout if input_grad else None", "return dout", "input_grad=False"),
    ("input_grad=input_grad or i > 0", "input_grad=input_grad", "your code raised"),
    ("reversed(range(len(self.layers)))", "range(len(self.layers))", "your code raised"),
])
def test_sequential_backward_is_graded_by_behaviour(tmp_path, old, new, check):
    folder = start(tmp_path / "hw")
    fill(folder, {"Sequential.backward": body("Sequential.backward").replace(old, new)})
    (r,) = grader.grade(folder, [6])
    assert r.status == "failed" and r.check == check, (r.check, r.message)


def test_the_lessons_table_of_parts_matches_the_grader():
    text = (ROOT / "lessons" / "08_homework.md").read_text()
    rows = re.findall(r"^\| (\d+) \| .* \| (\d+) \|$", text, flags=re.M)
    assert [(int(n), int(points)) for n, points in rows] == [(p.number, p.points) for p in PARTS]


def test_train_mnist_stops_cleanly_when_the_homework_raises(tmp_path):
    from test_train import SMALL

    start(tmp_path / "hw")  # untouched: every step raises NotImplementedError
    before = snapshot(tmp_path)
    result = run_command(["train_mnist.py", *SMALL, "--homework", "hw", "--out", "run"],
                         cwd=tmp_path)
    assert_clean_error(result, "--homework hw", "NotImplementedError", "gan.py, line")
    assert snapshot(tmp_path) == before and not (tmp_path / "run").exists()


def test_resuming_with_an_unfinished_homework_is_refused_and_changes_nothing(tmp_path):
    """--homework given on --resume is checked as on a new run: the 50-step replay first, so an
    unfinished homework stops with the replay's message, not a traceback, and config.json keeps
    the run's own setting."""
    from test_train import SMALL

    run_command(["train_mnist.py", *SMALL, "--epochs", "1", "--out", "run"], cwd=tmp_path)
    start(tmp_path / "hw")  # untouched: every step raises NotImplementedError
    before = snapshot(tmp_path / "run")
    result = run_command(["train_mnist.py", "--resume", "run", "--epochs", "2", "--homework",
                          "hw"], cwd=tmp_path)
    assert_clean_error(result, "--homework hw", "NotImplementedError")
    assert snapshot(tmp_path / "run") == before


def test_resuming_a_run_with_a_trick_under_homework_names_the_homework(tmp_path):
    from test_train import SMALL

    run_command(["train_mnist.py", *SMALL, "--epochs", "1", "--pack", "2", "--out", "run"],
                cwd=tmp_path)
    start(tmp_path / "hw")
    before = snapshot(tmp_path / "run")
    result = run_command(["train_mnist.py", "--resume", "run", "--epochs", "2", "--homework",
                          "hw"], cwd=tmp_path)
    assert_clean_error(result, "--homework", "--pack")
    assert snapshot(tmp_path / "run") == before
