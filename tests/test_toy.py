"""minigan.toy, the 2-D lab: the datasets (angles, grid positions, standard deviations), the mode
scores on hand-made samples, a short training run, and the command's output and bad inputs."""

import json
import math

import numpy as np
import pytest

from clitest import assert_clean_error, run_command, snapshot
from minigan import backend, toy


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
    runs = [toy.train_toy("ring", steps=60, batch_size=64, hidden=(16, 16), seed=5,
                          log_every=20)[2] for _ in range(2)]
    assert runs[0] == runs[1]
    assert [r["step"] for r in runs[0]] == [20, 40, 60]
    for r in runs[0]:
        assert 0 <= r["modes_covered"] <= 8 and 0 <= r["high_quality"] <= 1
        assert 0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1


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
    assert last["modes_total"] == 25 and 0 <= last["high_quality"] <= 1
    assert sorted(p.name for p in (out / "frames").iterdir()) == [
        "step_000000.png", "step_000020.png", "step_000040.png"]
    assert (out / "training.gif").stat().st_size > 1000
    saved = json.loads((out / "result.json").read_text())
    assert saved["modes_covered"] == last["modes_covered"] and len(saved["history"]) == 1


BAD_FLAGS = [  # (flags, words the message must contain)
    (["--steps", "0"], ["--steps"]),
    (["--batch-size", "-1"], ["--batch-size"]),
    (["--k", "0"], ["--k"]),
    (["--latent-dim", "0"], ["--latent-dim"]),
    (["--lr-g", "0"], ["--lr-g", "positive"]),
    (["--lr-d", "nan"], ["--lr-d", "positive"]),
    (["--beta1", "1"], ["--beta1"]),
    (["--dataset", "moons"], ["--dataset", "moons"]),
    (["--gen-loss", "hinge"], ["--gen-loss"]),
    (["--frames", "-1"], ["--frames"]),
    (["--steps", "5", "--frames", "6"], ["--frames"]),
    (["--hidden", "64,x"], ["--hidden"]),
    (["--hidden", "64,0"], ["--hidden"]),
    (["--out", "a_file"], ["--out", "is a file"]),
    (["--out", "a_file/lab"], ["--out", "is a file"]),
    (["--seed", "-1"], ["--seed", "-1"]),
]


@pytest.mark.parametrize("flags,needles", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_flags_are_clean_errors(tmp_path, flags, needles):
    (tmp_path / "a_file").write_text("not a folder")
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.toy", *flags], cwd=tmp_path)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before
