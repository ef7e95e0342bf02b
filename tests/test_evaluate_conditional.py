"""The scores of a conditional generator (lessons/16_conditional_gans.md): class consistency
against a brute-force count, the intra-class Fréchet distance against the distance applied by
hand to each class and against a closed form (shifted copies), both on real MNIST test images,
and minigan.evaluate on a tiny conditional run: the numbers recomputed from its samples, and
its bad -n refused."""

import json
import math

import numpy as np
import pytest

from clitest import assert_clean_error, run_command, snapshot
from minigan import classifier, data, evaluate, scores
from minigan.sample import generate, load_generator

# ---- class consistency -------------------------------------------------------------------------


def brute_force_consistency(asked, predicted):
    """Count, one sample at a time, the samples labelled as the digit they were asked for."""
    per_digit = []
    for d in range(10):
        mine = [p for a, p in zip(asked, predicted) if a == d]
        per_digit.append(sum(p == d for p in mine) / len(mine))
    overall = sum(int(a == p) for a, p in zip(asked, predicted)) / len(asked)
    return overall, per_digit


@pytest.mark.parametrize("seed", range(5))
def test_class_consistency_is_the_brute_force_count(seed):
    rng = np.random.default_rng(seed)
    asked = np.concatenate([np.arange(10), rng.integers(0, 10, 90)])  # every digit at least once
    predicted = np.where(rng.random(100) < 0.7, asked, rng.integers(0, 10, 100))
    overall, per_digit = scores.class_consistency(asked, predicted)
    expected_overall, expected_per_digit = brute_force_consistency(asked, predicted)
    assert overall == expected_overall
    np.testing.assert_array_equal(per_digit, expected_per_digit)


def test_class_consistency_by_hand():
    """Ten 3s asked for, of which seven are labelled 3; ten 5s, all labelled 6; every other digit
    once, labelled right: per digit 0.7, 0 and 1; overall (7 + 0 + 8) / 28."""
    asked = np.array([3] * 10 + [5] * 10 + [0, 1, 2, 4, 6, 7, 8, 9])
    predicted = np.array([3] * 7 + [8] * 3 + [6] * 10 + [0, 1, 2, 4, 6, 7, 8, 9])
    overall, per_digit = scores.class_consistency(asked, predicted)
    assert overall == 15 / 28
    assert per_digit[3] == 0.7 and per_digit[5] == 0.0
    assert all(per_digit[d] == 1.0 for d in (0, 1, 2, 4, 6, 7, 8, 9))


def test_class_consistency_wants_every_digit_asked_for():
    with pytest.raises(ValueError, match="class 4 is never asked"):
        scores.class_consistency(np.array([0, 1, 2, 3, 5, 6, 7, 8, 9]), np.zeros(9, int))


# ---- the intra-class Fréchet distance ----------------------------------------------------------


def gaussian_classes(seed, n=60, dim=5):
    """Features (10 n, dim) in ten Gaussian classes, their labels, and per-class (mu, S)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n)
    feats = rng.standard_normal((10 * n, dim)) + 3 * rng.standard_normal((10, dim))[labels]
    stats = [scores.gaussian_stats(feats[labels == c]) for c in range(10)]
    return feats, labels, stats


def test_intra_class_fd_is_the_mean_of_each_class_distance():
    real, _, stats = gaussian_classes(0)
    fake, asked, _ = gaussian_classes(1)  # other class means: every distance is large
    order = np.random.default_rng(2).permutation(len(asked))  # the classes need not be sorted
    mean, per_class = scores.intra_class_fd(fake[order], asked[order], stats)
    by_hand = [scores.frechet_distance(*scores.gaussian_stats(fake[asked == c]), *stats[c])
               for c in range(10)]
    np.testing.assert_allclose(per_class, by_hand, rtol=1e-12)
    assert math.isclose(mean, math.fsum(by_hand) / 10, rel_tol=1e-12)
    assert min(per_class) > 1  # not a vacuous comparison of zeros


def test_intra_class_fd_of_shifted_copies_is_the_squared_shift():
    """Each class of samples is a copy of the real class moved by a vector s_c: the covariances
    are equal, so FD_c = |s_c|^2 exactly (the trace terms cancel), whatever the covariance."""
    real, labels, stats = gaussian_classes(3)
    shifts = np.random.default_rng(4).standard_normal((10, real.shape[1]))
    per_class_expected = (shifts ** 2).sum(axis=1)
    mean, per_class = scores.intra_class_fd(real + shifts[labels], labels, stats)
    np.testing.assert_allclose(per_class, per_class_expected, rtol=1e-9, atol=1e-10)
    assert math.isclose(mean, per_class_expected.mean(), rel_tol=1e-9)
    # a class drawn as another class is far: swap the samples asked for 0 and 1
    swapped = np.where(labels == 0, 1, np.where(labels == 1, 0, labels))
    _, per_class = scores.intra_class_fd(real, swapped, stats)
    assert per_class[0] > 1 and per_class[1] > 1 and per_class[2:].max() < 1e-9


# ---- on real MNIST images ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ref():
    return evaluate.reference()


def test_real_test_images_asked_for_their_own_digit(ref):
    """The floor: real test images asked for their true digit are consistent as often as the
    classifier is right, and sit much nearer their own digit's training images than images asked
    for a wrong digit do."""
    images, labels = data.load_mnist("test")
    idx = np.random.default_rng(5).permutation(len(images))[:2000]
    feats, logits = classifier.features_and_logits(ref.net, data.to_model_input(images[idx]))
    right = ref.conditional_scores(feats, logits, labels[idx])
    predicted = logits.argmax(axis=1)
    assert right["class_consistency"] == np.mean(predicted == labels[idx]) > 0.97
    for d in range(10):
        mine = labels[idx] == d
        assert right["class_consistency_per_digit"][d] == np.mean(predicted[mine] == d)
    wrong = ref.conditional_scores(feats, logits, (labels[idx] + 1) % 10)  # each asked for d+1
    assert wrong["class_consistency"] < 0.01
    assert wrong["intra_class_fd"] > 10 * right["intra_class_fd"]


def test_unconditional_scores_keep_their_keys(ref):
    images = data.load_mnist("test")[0][:200]
    feats, logits = classifier.features_and_logits(ref.net, data.to_model_input(images))
    result = evaluate.evaluate_features(feats, logits, ref)
    assert sorted(result) == sorted(["fd", "fd_floor", "class_entropy", "kl_uniform",
                                     "class_share", "precision", "recall", "n", "seed", "k",
                                     "real"])
    assert "class_consistency" not in result["real"]


# ---- the command on a tiny conditional run -----------------------------------------------------
# cond_run: a tiny conditional run trained once for this module (tests/conftest.py).


def test_the_command_scores_what_the_run_draws(cond_run, ref, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert evaluate.main([str(cond_run), "-n", "200", "--json", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(printed.strip().splitlines()[-1])
    assert "class consistency" in printed and "intra-class FD per digit asked" in printed
    # Again by hand: 20 samples asked for each digit, 0, 1, ..., 9, 0, ..., with seed 0's noise
    G, cfg = load_generator(cond_run)
    asked = np.arange(200) % 10
    pixels = generate(G, 200, cfg.latent_dim, 0, cfg.dtype, labels=asked)
    feats, logits = classifier.features_and_logits(ref.net, data.to_model_input(pixels))
    overall, per_digit = brute_force_consistency(asked, logits.argmax(axis=1))
    assert result["class_consistency"] == overall
    assert result["class_consistency_per_digit"] == per_digit
    train_feats = ref.train_feats
    by_hand = [scores.frechet_distance(*scores.gaussian_stats(feats[asked == d]),
                                       *scores.gaussian_stats(train_feats[ref.train_labels == d]))
               for d in range(10)]
    np.testing.assert_allclose(result["intra_class_fd_per_digit"], by_hand, rtol=1e-9)
    assert math.isclose(result["intra_class_fd"], sum(by_hand) / 10, rel_tol=1e-9)
    # the floor: 20 real test images of each digit, each asked for its own
    assert result["real"]["class_consistency"] > 0.9
    assert result["real"]["intra_class_fd"] < result["intra_class_fd"]
    assert json.loads(out.read_text())["intra_class_fd"] == result["intra_class_fd"]
    # and the same samples as G.forward(z) without labels draws (train_mnist.py --eval-every)
    np.testing.assert_array_equal(pixels, generate(G, 200, cfg.latent_dim, 0, cfg.dtype))


@pytest.mark.parametrize("n", ["105", "10"])
def test_a_conditional_run_wants_ten_samples_of_each_digit(cond_run, tmp_path, n):
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.evaluate", str(cond_run), "-n", n, "--out",
                          str(tmp_path / "e.json")], cwd=tmp_path)
    assert_clean_error(result, f"-n {n}", "multiple of 10")
    assert snapshot(tmp_path) == before
