"""minigan.toy, the 2-D lab: the datasets (angles, grid positions, standard deviations), the mode
scores on hand-made samples, a short training run, the instance noise's schedule, a run that
diverges, and the command's output and bad inputs."""

import json
import math
import os
import signal

import numpy as np
import pytest

from clitest import assert_clean_error, call, run_command, snapshot
from minigan import backend, gan, toy
from minigan.tricks import InstanceNoise


def test_ring_has_eight_distinct_angles_on_the_unit_circle():
    means, std = toy.DATASETS["ring"]
    assert std == 0.01 and means.shape == (8, 2)
    np.testing.assert_allclose(np.hypot(means[:, 0], means[:, 1]), 1.0, atol=1e-15)
    angles = np.sort(np.mod(np.arctan2(means[:, 1], means[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(angles, [2 * math.pi * i / 8 for i in range(8)], atol=1e-12)
    # the closest two modes are neighbours on the ring, 2 sin(pi / 8) apart: none repeats
    d = np.hypot(*(means[:, None, :] - means[None, :, :]).transpose(2, 0, 1))
    assert math.isclose(d[~np.eye(8, dtype=bool)].min(), 2 * math.sin(math.pi / 8), rel_tol=1e-12)


def test_grid_is_five_by_five_with_spacing_two():
    means, std = toy.DATASETS["grid"]
    assert std == 0.05 and means.shape == (25, 2)
    expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert {(float(x), float(y)) for x, y in means} == expected


@pytest.mark.parametrize("dataset", ["ring", "grid"])
def test_mixture_samples_have_equal_modes_and_the_right_spread(dataset):
    means, std = toy.DATASETS[dataset]
    x = toy.sample_mixture(np.random.default_rng(0), dataset, 50_000)
    nearest = ((x[:, None, :] - means[None]) ** 2).sum(axis=2).argmin(axis=1)
    share = np.bincount(nearest, minlength=len(means)) / len(x)
    assert np.abs(share - 1 / len(means)).max() < 0.01
    spread = (x - means[nearest]).std(axis=0)  # per coordinate
    np.testing.assert_allclose(spread, std, rtol=0.03)


def test_scores_of_all_samples_on_one_mode():
    means, std = toy.DATASETS["ring"]
    x = means[3] + 0.5 * std * np.random.default_rng(1).standard_normal((500, 2))
    s = toy.mode_scores(x, "ring")
    assert s["modes_covered"] == 1 and s["modes_total"] == 8 and s["high_quality"] == 1.0
    assert s["counts"][3] == 500


@pytest.mark.parametrize("dataset", ["ring", "grid"])
def test_scores_of_the_exact_mode_centres(dataset):
    means, _ = toy.DATASETS[dataset]
    s = toy.mode_scores(np.repeat(means, 3, axis=0), dataset)
    assert s["modes_covered"] == len(means) and s["high_quality"] == 1.0
    assert s["counts"] == [3] * len(means)


def test_three_standard_deviations_is_the_quality_line():
    means, std = toy.DATASETS["grid"]
    direction = np.array([0.6, 0.8])  # a unit vector
    inside = means[0] + 2.99 * std * direction
    outside = means[1] + 3.01 * std * direction
    far = np.array([[1.0, 1.0]])  # between four grid modes
    s = toy.mode_scores(np.vstack([inside, outside, far]), "grid")
    assert math.isclose(s["high_quality"], 1 / 3) and s["modes_covered"] == 1


def test_short_training_is_deterministic_and_logs_every_score():
    G, _, history = toy.train_toy("ring", steps=60, batch_size=64, hidden=(16, 16), seed=5,
                                  log_every=20)
    again = toy.train_toy("ring", steps=60, batch_size=64, hidden=(16, 16), seed=5,
                          log_every=20)[2]
    assert history == again
    assert [r["step"] for r in history] == [20, 40, 60]
    # The last row scores the returned G: its third draw of 2,500 samples from the scoring
    # generator (seed + 2) gives the same figures.
    score_rng = backend.default_rng(5 + 2)
    for _ in range(3):
        samples = toy.generate(G, toy.SCORE_SAMPLES, 2, score_rng, "ring")
    scores = toy.mode_scores(samples, "ring")
    assert history[-1]["modes_covered"] == scores["modes_covered"]
    assert history[-1]["high_quality"] == scores["high_quality"]


# Measured with this setting (ring, 2,000 steps, batch 128, hidden 64-64, Adam 1e-3 for both),
# seeds 0-7: over the last 10 log points, the median of modes covered was 6.5 to 7.5 and the
# mean high-quality share 0.04 to 0.12 (seed 5: 7.5 and 0.12). With G not updated, D not
# updated, or either gradient's sign flipped, every log point read 0 modes and 0.0 high
# quality, and so does the untrained G: of the untrained Gs of seeds 0-7, scored as below, none
# put one sample within 3 standard deviations (0.03) of a mode; seed 5's nearest sample lies
# 0.26 from one.
TRAINED = dict(steps=2000, batch_size=128, lr_g=1e-3, lr_d=1e-3, hidden=(64, 64), log_every=100)


def test_training_covers_the_ring_and_an_untrained_generator_does_not():
    """The lab's figures: a trained G covers most of the ring's 8 modes, an untrained one none.

    Modes covered swing from one log point to the next while G chases D, so the test reads the
    last 10 points (steps 1,100 to 2,000) instead of the last one alone.
    """
    G, _, history = toy.train_toy("ring", seed=5, **TRAINED)
    late = history[10:]
    assert [r["step"] for r in late] == list(range(1100, 2001, 100))
    assert np.median([r["modes_covered"] for r in late]) >= 6
    assert np.mean([r["high_quality"] for r in late]) >= 0.02

    untrained = gan.make_generator(2, (64, 64), 2, rng=backend.default_rng(5))
    s = toy.mode_scores(toy.generate(untrained, toy.SCORE_SAMPLES, 2, backend.default_rng(1),
                                     "ring"), "ring")
    assert s["modes_covered"] == 0 and s["high_quality"] == 0.0


def test_instance_noise_anneals_from_sigma0_at_the_first_step(monkeypatch):
    """tricks.instance_noise_std's schedule, as train_mnist.py runs it: step t of T (counted
    from 0, the steps done before it) sees sigma0 * (1 - t / T), so the first step sees sigma0
    and the last sigma0 / T; 0 would come at step T, after training. With sigma0 = 0.2 and
    T = 4: 0.2, 0.15, 0.1, 0.05, read off D's InstanceNoise layer as each step starts."""
    seen = []
    real_step = toy.train_step

    def recording(G, D, *args, **kwargs):
        seen.append([layer.std for layer in D.layers if isinstance(layer, InstanceNoise)])
        return real_step(G, D, *args, **kwargs)

    monkeypatch.setattr(toy, "train_step", recording)
    toy.train_toy("ring", steps=4, batch_size=8, hidden=(4, 4), instance_noise=0.2)
    assert len(seen) == 4 and all(len(stds) == 1 for stds in seen)  # one layer, D's first
    np.testing.assert_allclose([stds[0] for stds in seen], [0.2, 0.15, 0.1, 0.05], rtol=1e-15)


def test_a_run_that_diverges_is_a_clean_error_that_keeps_nothing(tmp_path, capsys):
    """A learning rate of 1e30 moves every weight by about 1e30 in Adam's first step, and the
    next forward overflows float32: the loss logged at step 2 is not finite. train_toy raises
    FloatingPointError naming the loss and the step; the command says so, exits 2, and removes
    what it made (the frames of steps 0 and 1 included), so that the same command with a lower
    learning rate can run: a new --out is gone again, an empty one given is left empty."""
    flags = ["--steps", "2", "--frames", "2", "--batch-size", "8", "--hidden", "4,4", "--lr-g",
             "1e30", "--lr-d", "1e30"]
    given = tmp_path / "given"
    given.mkdir()
    with np.errstate(all="ignore"):  # overflow is the point here
        with pytest.raises(FloatingPointError, match="by step 2"):
            toy.train_toy("ring", steps=2, batch_size=8, hidden=(4, 4), lr_g=1e30, lr_d=1e30)
        for out in (tmp_path / "new" / "lab", given):
            result = call(toy.main, [*flags, "--out", str(out)], capsys)
            assert_clean_error(result, "training diverged; lower --lr-g / --lr-d and run again",
                               "by step 2")
    assert list(tmp_path.iterdir()) == [given] and list(given.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("frames", [0, 4])
def test_a_stop_ends_after_its_step_and_keeps_the_pictures(tmp_path, capsys, monkeypatch,
                                                           signum, frames):
    """Ctrl-C or SIGTERM during step 7 of 40: the step is finished and logged, the table so far
    is printed, and the exit status is 128 + the signal's number, with no traceback. No
    result.json (the benchmarks read it as a finished run, and the history is partial); the
    frames drawn so far and their GIF are kept (a lab run cannot resume: the message says to run
    it again with another --out), and without frames the folder is left empty, so the same
    command runs again there."""
    calls, real_step = {"n": 0}, toy.train_step

    def step_then_signal(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            os.kill(os.getpid(), signum)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(toy, "train_step", step_then_signal)
    out = tmp_path / "lab"
    flags = ["--steps", "40", "--frames", str(frames), "--batch-size", "8", "--hidden", "4",
             "--out", str(out)]
    assert toy.main(flags) == 128 + signum
    printed = capsys.readouterr()
    name = signal.Signals(signum).name
    assert f"stopped by {name} after step 7 of 40" in printed.err
    assert "Traceback" not in printed.err and "     7 " in printed.out  # the last row: step 7
    kept = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    if frames:  # a frame every 10 steps: step 0's was drawn before the stop
        assert kept == ["frames", "frames/step_000000.png", "training.gif"]
        assert "with another --out" in printed.err
    else:
        assert kept == []
        monkeypatch.setattr(toy, "train_step", real_step)
        assert toy.main(flags) == 0 and (out / "result.json").exists()


def test_lab_trains_on_every_array_module(xp):
    """Real points go to the device and samples come back to the host (CuPy, its stand-in)."""
    G, D, history = toy.train_toy("grid", steps=10, batch_size=16, hidden=(8, 8), log_every=5)
    assert [r["step"] for r in history] == [5, 10]
    assert type(toy.generate(G, 4, 2, backend.default_rng(0), "grid")) is np.ndarray


def test_command_writes_pictures_and_prints_json(tmp_path):
    out = tmp_path / "lab"
    result = run_command(["-m", "minigan.toy", "--dataset", "grid", "--steps", "40",
                          "--batch-size", "32", "--hidden", "16,16", "--frames", "2", "--out",
                          str(out), "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) == {"modes_covered", "modes_total", "high_quality"}
    assert last["modes_total"] == 25
    assert sorted(p.name for p in (out / "frames").iterdir()) == [
        "step_000000.png", "step_000020.png", "step_000040.png"]
    assert (out / "training.gif").stat().st_size > 1000
    saved = json.loads((out / "result.json").read_text())
    assert len(saved["history"]) == 1 and saved["history"][0]["step"] == 40
    for name in ("modes_covered", "high_quality"):  # the printed figures are the run's last ones
        assert last[name] == saved[name] == saved["history"][0][name], name


BAD_FLAGS = [  # (flags, words the message must contain): settings.py's words, as train_mnist.py's
    (["--steps", "0"], ["--steps 0", ">= 1"]),
    (["--batch-size", "-1"], ["--batch-size -1", ">= 1"]),
    (["--k", "0"], ["--k 0", ">= 1"]),
    (["--latent-dim", "0"], ["--latent-dim 0", "from 1 to"]),
    (["--lr-g", "0"], ["--lr-g 0", "> 0"]),
    (["--lr-d", "nan"], ["--lr-d nan", "> 0"]),
    (["--beta1", "1"], ["--beta1 1", "[0, 1)"]),
    (["--dataset", "moons"], ["--dataset moons", "ring", "grid"]),
    (["--gen-loss", "hinge"], ["--gen-loss hinge", "nonsaturating"]),
    (["--frames", "-1"], ["--frames -1", "0 to --steps"]),
    (["--steps", "5", "--frames", "6"], ["--frames 6", "0 to --steps (5), or raise --steps."]),
    (["--hidden", "64,x"], ["--hidden 64,x: not allowed", "comma-separated"]),
    (["--hidden", "64,0"], ["--hidden 64,0", "widths"]),
    (["--out", "a_file"], ["--out a_file", "not a file"]),
    (["--out", "a_file/lab"], ["--out a_file/lab", "not a file"]),
    (["--seed", "-1"], ["--seed -1", "from 0 to 4294967295"]),
    (["--pack", "3"], ["--pack 3", "--batch-size", "256"]),
    (["--ema", "1"], ["--ema 1", "(0, 1)"]),
    (["--recipe", "best"], ["--recipe best", "improved"]),
    (["--recipe", "fast"], ["--recipe fast", "improved", "MNIST"]),  # train_mnist.py's only
    (["--loss", "kl"], ["--loss kl", "wgan"]),
    (["--gp", "-1"], ["--gp -1", ">= 0"]),
    (["--optimizer", "sgd"], ["--optimizer sgd", "rmsprop"]),
    (["--r1", "1", "--pack", "2"], ["--r1", "--pack 2", "together"]),
    (["--loss", "wgan", "--gen-loss", "minimax"], ["--gen-loss minimax", "--loss wgan"]),
]


@pytest.mark.parametrize("flags,needles", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_flags_are_clean_errors(tmp_path, monkeypatch, capsys, flags, needles):
    """In-process, for speed (a subprocess is half a second of start-up a case); the test below
    runs one case as the real command line. Each is refused before the lab trains, draws or
    catches a signal; conftest puts the backend back on the CPU."""
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.chdir(tmp_path)  # as the command's cwd: --out a_file is tmp_path's
    before = snapshot(tmp_path)
    result = call(toy.main, flags, capsys)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before


def test_a_bad_flag_is_a_clean_error_from_the_real_command_line(tmp_path):
    """One of BAD_FLAGS as a learner's shell runs it: argparse's exit status 2 from a real
    process, no traceback on stderr (the others run in-process, above)."""
    flags, needles = BAD_FLAGS[0]
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.toy", *flags], cwd=tmp_path)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("holds", ["checkpoint.npz", "result.json", "notes.txt"])
def test_refuses_an_out_that_holds_another_run(tmp_path, holds):
    """A train_mnist.py run's folder, an earlier lab run's, or any folder with files in it:
    refused before anything is written (it used to exit 0 with the lab's result.json written
    over or beside theirs)."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / holds).write_text("theirs")
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.toy", "--steps", "1", "--frames", "0", "--out", "run"],
                         cwd=tmp_path)
    assert_clean_error(result, "--out run", "train_mnist.py run" if holds == "checkpoint.npz"
                       else f"already holds {holds}", "choose another --out")
    assert "--resume" not in result.stderr  # the lab has no --resume
    assert snapshot(tmp_path) == before


def test_an_empty_out_folder_is_used(tmp_path):
    (tmp_path / "lab").mkdir()
    result = run_command(["-m", "minigan.toy", "--steps", "1", "--frames", "0", "--batch-size",
                          "8", "--hidden", "4", "--out", "lab"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "lab" / "result.json").exists()


@pytest.mark.parametrize("out", ["lab", "runs/lab"])
def test_a_batch_too_big_for_memory_is_a_clean_error_that_leaves_nothing(tmp_path, out):
    """A batch bigger than the machine's memory is refused with the flags, before anything is
    made: where Linux overcommits memory, NumPy's allocation would succeed and the process be
    killed with no message (as on a 128 GiB GPU machine, 2026-12-04)."""
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.toy", "--steps", "2", "--frames", "1", "--hidden", "4",
                          "--batch-size", "1000000000000", "--out", out], cwd=tmp_path)
    assert_clean_error(result, "do not fit in memory", "--batch-size 1000000000000",
                       "this machine has")
    assert snapshot(tmp_path) == before and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", ["lab", "runs/lab"])
def test_a_batch_that_fails_to_fit_after_the_first_frame_leaves_nothing(tmp_path, monkeypatch,
                                                                          capsys, out):
    """A batch within the machine's memory but not within what is free: NumPy's MemoryError at
    the first batch, after the first frame is drawn. The frame is removed again, and so is every
    folder the command made."""
    drawn = []

    def draw_frame(path, *args, **kwargs):
        drawn.append(path)
        real_draw_frame(path, *args, **kwargs)

    def no_memory(rng, dataset, n):
        assert os.path.exists(drawn[0])  # the first frame is on disk when the batch fails
        raise MemoryError

    real_draw_frame = toy.draw_frame
    monkeypatch.setattr(toy, "draw_frame", draw_frame)
    monkeypatch.setattr(toy, "sample_mixture", no_memory)
    monkeypatch.chdir(tmp_path)
    result = call(toy.main, ["--steps", "2", "--frames", "1", "--hidden", "4", "--batch-size",
                             "64", "--out", out], capsys)
    assert_clean_error(result, "do not fit in memory", "--batch-size 64")
    assert len(drawn) == 1 and list(tmp_path.iterdir()) == []
