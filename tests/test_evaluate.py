"""minigan.scores, minigan.classifier and minigan.evaluate: the matrix square root and the Fréchet
distance against closed forms, the Gaussian's mean and covariance by hand, precision and recall on
hand-made point sets with a known answer, the class histogram of known labels, the shipped
classifier (its checksum and its accuracy), the scores of real, single-class and damaged MNIST
images, the Reference's caches of each seed and k, the per-class grid, the command's bad inputs,
and train_mnist.py --eval-every on a tiny run."""

import json
import math

import numpy as np
import pytest

import train_mnist
from clitest import assert_clean_error, call, damaged_npy, run_command, snapshot
from minigan import backend, classifier, data, evaluate, evaluate_flags, rundir, scores

# --- linear algebra against closed forms ------------------------------------------------------


def random_spd(d, seed, rank=None):
    """A random symmetric positive semi-definite (d, d) matrix of the given rank (full if None)."""
    a = np.random.default_rng(seed).standard_normal((d, rank or d))
    return a @ a.T / d


def test_sqrtm_psd_squares_back_and_is_symmetric():
    S = random_spd(20, 0)
    R = scores.sqrtm_psd(S)
    np.testing.assert_allclose(R, R.T, atol=1e-14)
    np.testing.assert_allclose(R @ R, S, atol=1e-12)
    assert np.linalg.eigvalsh(R).min() > 0  # the principal (PSD) root, not another one


def test_sqrtm_psd_of_a_diagonal_and_of_a_singular_matrix():
    np.testing.assert_allclose(scores.sqrtm_psd(np.diag([4.0, 9.0, 0.25])),
                               np.diag([2.0, 3.0, 0.5]), atol=1e-15)
    S = random_spd(10, 1, rank=3)  # singular: rounding leaves eigenvalues like -1e-17
    R = scores.sqrtm_psd(S)
    assert np.isfinite(R).all()
    np.testing.assert_allclose(R @ R, S, atol=1e-12)


def closed_form_fd(mu1, a, mu2, b):
    """Fréchet distance of N(mu1, Q diag(a) Q^T) and N(mu2, Q diag(b) Q^T) (commuting covariances):
    |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2, one Python float at a time."""
    return (math.fsum((x - y) ** 2 for x, y in zip(mu1, mu2))
            + math.fsum((math.sqrt(x) - math.sqrt(y)) ** 2 for x, y in zip(a, b)))


def test_frechet_distance_of_diagonal_covariances():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    a, b = rng.uniform(0.1, 3, 8), rng.uniform(0.1, 3, 8)
    fd = scores.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert math.isclose(fd, closed_form_fd(mu1, a, mu2, b), rel_tol=1e-12)


def test_frechet_distance_of_commuting_covariances():
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((12, 12)))  # a random rotation, shared
    a, b = rng.uniform(0.1, 3, 12), rng.uniform(0.1, 3, 12)
    mu1, mu2 = rng.standard_normal(12), rng.standard_normal(12)
    fd = scores.frechet_distance(mu1, Q @ np.diag(a) @ Q.T, mu2, Q @ np.diag(b) @ Q.T)
    assert math.isclose(fd, closed_form_fd(mu1, a, mu2, b), rel_tol=1e-10)


def test_frechet_distance_of_one_dimension_and_of_equal_gaussians():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert math.isclose(scores.frechet_distance(np.array([1.0]), np.array([[4.0]]),
                                                  np.array([-2.0]), np.array([[1.0]])),
                        9.0 + 1.0, rel_tol=1e-14)
    S = random_spd(30, 4, rank=10)  # equal and singular: the distance is 0, not NaN
    # 20 zero eigenvalues come out of eigh as +-1e-16; their square roots, 1e-8 each, are what
    # remains: rounding, not a bug (a wrong formula is off by O(tr S) = O(1)).
    assert abs(scores.frechet_distance(np.zeros(30), S, np.zeros(30), S)) < 1e-6 * np.trace(S)


def test_frechet_distance_is_symmetric_for_non_commuting_covariances():
    S1, S2 = random_spd(15, 5), random_spd(15, 6)
    mu = np.random.default_rng(7).standard_normal(15)
    d12 = scores.frechet_distance(mu, S1, -mu, S2)
    assert math.isclose(d12, scores.frechet_distance(-mu, S2, mu, S1), rel_tol=1e-10)
    # tr (S1 S2)^(1/2) straight from the eigenvalues of the non-symmetric S1 S2 (real and >= 0:
    # it is similar to a PSD matrix), without the symmetric detour the code takes
    tr_sqrt = np.sqrt(np.linalg.eigvals(S1 @ S2).real.clip(0)).sum()
    expected = 4 * mu @ mu + np.trace(S1) + np.trace(S2) - 2 * tr_sqrt
    assert math.isclose(d12, expected, rel_tol=1e-9)


def test_gaussian_stats_are_the_mean_and_the_1_over_n_minus_1_covariance():
    """By hand: rows (0, 0), (1, 2), (5, 1) have mean (2, 1) and deviations (-2, -1), (-1, 1),
    (3, 0), whose outer products sum to [[14, 1], [1, 2]]; over N - 1 = 2, the covariance is
    [[7, 0.5], [0.5, 1]] (over N it would be 2/3 of that). float32 in, float64 out."""
    mu, S = scores.gaussian_stats(np.array([[0, 0], [1, 2], [5, 1]], dtype=np.float32))
    assert mu.dtype == S.dtype == np.float64 and mu.shape == (2,) and S.shape == (2, 2)
    np.testing.assert_array_equal(mu, [2.0, 1.0])
    np.testing.assert_allclose(S, [[7.0, 0.5], [0.5, 1.0]], rtol=1e-15)


def test_one_feature_is_a_1_by_1_covariance_and_its_distance_the_1d_formula():
    """D = 1: (0), (2) have mean 1 and variance 2 (over N - 1 = 1); np.cov alone returns a 0-d
    array there, which frechet_distance cannot take. In one dimension the distance is
    (mu1 - mu2)^2 + (sd1 - sd2)^2: against (10), (14), mean 12 and variance 8, it is
    121 + (sqrt(2) - sqrt(8))^2 = 121 + 2 = 123."""
    mu, S = scores.gaussian_stats([[0.0], [2.0]])
    assert mu.shape == (1,) and S.shape == (1, 1) and mu[0] == 1.0 and S[0, 0] == 2.0
    other = scores.gaussian_stats([[10.0], [14.0]])
    assert math.isclose(scores.frechet_distance(mu, S, *other), 123.0, rel_tol=1e-12)


# --- precision, recall and the class histogram on hand-made data --------------------------------


def test_precision_recall_of_identical_disjoint_and_collapsed_sets():
    rng = np.random.default_rng(8)
    real = rng.standard_normal((400, 5))
    assert scores.precision_recall(real, real.copy()) == (1.0, 1.0)  # every point in its ball
    assert scores.precision_recall(real, real + 100.0) == (0.0, 0.0)  # nowhere near
    # Every sample is one real image (mode collapse): all inside the real manifold, and the
    # samples' balls (radius 0) hold that one real image only: recall 1/400.
    collapsed = np.repeat(real[:1], 400, axis=0)
    assert scores.precision_recall(real, collapsed) == (1.0, 1 / 400)


def test_precision_recall_of_points_on_a_line():
    """A hand-worked case. Real points 0, 1, ..., 9 with k = 1: each ball has radius 1. Samples
    at 0.5, 3, 40, 50, 51: the first two lie within 1 of a real point, the other three do not,
    so precision = 2/5. The samples' radii (nearest other sample) are 2.5, 2.5, 10, 1, 1: the
    balls [-2, 3] and [0.5, 5.5] hold the real points 0..5, the rest hold none, so recall =
    6/10. Every value is exact in float32; chunk=2 runs the chunked loops."""
    real = np.arange(10.0)[:, None]
    fake = np.array([0.5, 3.0, 40.0, 50.0, 51.0])[:, None]
    assert scores.precision_recall(real, fake, k=1, chunk=2) == (2 / 5, 6 / 10)
    # the samples' squared radii, as worked out above
    np.testing.assert_array_equal(scores.knn_radii(fake, k=1, chunk=2),
                                  [6.25, 6.25, 100.0, 1.0, 1.0])


def test_knn_radii_skip_the_point_itself():
    x = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    # squared distance to the 3rd nearest other point
    np.testing.assert_array_equal(scores.knn_radii(x, k=3), [36.0, 25.0, 9.0, 25.0, 81.0])


def test_class_scores_of_one_class_and_of_a_uniform_histogram():
    one = scores.class_scores(np.full(50, 7))
    assert one["class_entropy"] == 0.0 and one["class_share"][7] == 1.0
    assert math.isclose(one["kl_uniform"], math.log(10), rel_tol=1e-15)
    uniform = scores.class_scores(np.arange(1000) % 10)
    assert math.isclose(uniform["class_entropy"], math.log(10), rel_tol=1e-14)
    assert abs(uniform["kl_uniform"]) < 1e-14 and uniform["class_share"] == [0.1] * 10


def test_class_scores_of_known_labels():
    """Five 0s and fifteen 3s: shares 1/4 and 3/4, H = -(1/4) log(1/4) - (3/4) log(3/4)."""
    labels = np.array([3] * 15 + [0] * 5)[np.random.default_rng(11).permutation(20)]
    histogram = scores.class_scores(labels)
    assert histogram["class_share"] == [0.25, 0, 0, 0.75, 0, 0, 0, 0, 0, 0]
    entropy = 0.25 * math.log(4) + 0.75 * math.log(4 / 3)
    assert math.isclose(histogram["class_entropy"], entropy, rel_tol=1e-14)
    assert math.isclose(histogram["kl_uniform"], math.log(10) - entropy, rel_tol=1e-14)


def test_features_on_every_array_module(xp):
    """The classifier runs on the device and hands host arrays back (CuPy, its strict stand-in)."""
    backend.use("cpu")
    host_net = classifier.make_classifier((16, 8), rng=backend.default_rng(0))
    x = np.random.default_rng(10).uniform(-1, 1, (30, 784)).astype(np.float32)
    expected = classifier.features_and_logits(host_net, x, chunk=7)
    backend.use_module(xp, "under test")
    net = classifier.make_classifier((16, 8), rng=backend.default_rng(0))
    for k, p in net.params.items():
        p[...] = backend.to_device(host_net.params[k])
    feats, logits = classifier.features_and_logits(net, x, chunk=7)
    assert type(feats) is np.ndarray and feats.shape == (30, 8) and logits.shape == (30, 10)
    np.testing.assert_allclose(feats, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, expected[1], rtol=1e-5, atol=1e-6)


# --- the shipped classifier and the scores of real and damaged images -------------------------


@pytest.fixture(scope="module")
def ref():
    return evaluate.reference()  # the shipped classifier; built once per process (a few s)


@pytest.fixture(scope="module")
def test_set():
    return data.load_mnist("test")


def test_shipped_classifier_reaches_98_percent(ref, test_set):
    images, labels = test_set
    assert classifier.accuracy(ref.net, images, labels) >= 0.98


def test_damaged_weights_are_refused(tmp_path, monkeypatch):
    damaged = tmp_path / "mnist_classifier.npz"
    raw = bytearray(classifier.WEIGHTS.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte
    damaged.write_bytes(bytes(raw))
    monkeypatch.setattr(classifier, "WEIGHTS", damaged)
    with pytest.raises(classifier.ClassifierError, match="SHA-256"):
        classifier.load_classifier()
    monkeypatch.setattr(classifier, "WEIGHTS", tmp_path / "missing.npz")
    with pytest.raises(classifier.ClassifierError, match="git checkout -- minigan/weights"):
        classifier.load_classifier()


N = 1000  # images per scored set: enough to rank, small enough to keep each score under a second


def test_real_test_images_score_near_the_floor(ref, test_set):
    images, labels = test_set
    # A random subset, as the floor's is: MNIST's test set is two halves by different writers
    # (NIST's SD-3 and SD-1), and the last 1000 images alone score 32 against a floor of 12.
    idx = np.random.default_rng(123).permutation(len(images))[:N]
    result = evaluate.evaluate_pixels(images[idx], ref, seed=0)
    # The histogram is of the classifier's labels; a 98%-accurate classifier moves at most 2%
    # of the images, so each class's share is within 0.02 of the true labels' share.
    true_share = np.bincount(labels[idx], minlength=10) / N
    np.testing.assert_allclose(result["class_share"], true_share, atol=0.02)
    # the floor is another random N test images' distance: the two differ by sampling noise
    assert result["fd"] < 1.3 * result["fd_floor"]
    assert result["class_entropy"] > 2.28 and result["kl_uniform"] < 0.03
    assert result["precision"] > 0.7 and result["recall"] > 0.7


def test_one_class_scores_near_zero_entropy_and_low_recall(ref, test_set):
    images, labels = test_set
    ones = images[labels == 1][:N]
    result = evaluate.evaluate_pixels(ones, ref, seed=0)
    assert result["class_entropy"] < 0.1
    assert result["class_share"][1] > 0.98 and min(result["class_share"]) == 0.0
    assert result["recall"] < 0.2  # the other nine digits are missed...
    assert result["precision"] > 0.7  # ...though every sample is a real-looking 1
    assert result["fd"] > 10 * result["fd_floor"]


def blur(images, passes):
    """A 3 x 3 box blur applied ``passes`` times (uint8 in and out)."""
    x = images.astype(np.float64)
    for _ in range(passes):
        p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
        x = sum(p[:, i:i + 28, j:j + 28] for i in range(3) for j in range(3)) / 9
    return np.rint(x).astype(np.uint8)


def noise(images, sigma, seed=0):
    """Gaussian pixel noise of standard deviation sigma (in 0..255 units), clipped."""
    x = images + sigma * np.random.default_rng(seed).standard_normal(images.shape)
    return np.rint(np.clip(x, 0, 255)).astype(np.uint8)


@pytest.mark.parametrize("damage,levels", [(blur, [0, 1, 2, 4]), (noise, [0, 40, 80, 160])])
def test_more_damage_scores_worse(ref, test_set, damage, levels):
    images = test_set[0][:N]
    results = [evaluate.evaluate_pixels(damage(images, level), ref, seed=0) for level in levels]
    fd = [s["fd"] for s in results]
    recall = [s["recall"] for s in results]
    assert all(a < b for a, b in zip(fd, fd[1:])), f"FD not increasing with damage: {fd}"
    assert all(a > b for a, b in zip(recall, recall[1:])), (
        f"recall not decreasing with damage: {recall}")
    assert fd[-1] > 5 * fd[0] and recall[-1] < 0.5 * recall[0]
    # Precision is not asserted: it *rises* under mild damage (0.87 -> 0.94 for one blur pass),
    # because damaged images crowd into the dense middle of the real manifold, whose k-NN balls
    # are inflated by real outliers; lessons/11_measuring_samples.md shows the numbers.


def test_scores_repeat_and_the_command_prints_json(ref, test_set, tmp_path, capsys):
    np.save(tmp_path / "samples.npy", test_set[0][:300])
    outputs = []
    for _ in range(2):
        assert evaluate.main([str(tmp_path / "samples.npy"), "--json"]) == 0
        outputs.append(capsys.readouterr().out)
    last = json.loads(outputs[0].strip().splitlines()[-1])
    for key in ("fd", "fd_floor", "class_entropy", "kl_uniform", "precision", "recall"):
        assert isinstance(last[key], float), key
    assert len(last["class_share"]) == 10 and math.isclose(sum(last["class_share"]), 1.0)
    again = json.loads(outputs[1].strip().splitlines()[-1])
    again.pop("seconds"), last.pop("seconds")
    assert again == last  # a fixed seed repeats to every digit
    written = json.loads((tmp_path / "eval.json").read_text())
    written.pop("seconds")
    assert written == last
    assert "Fréchet distance" in outputs[0] and "class shares" in outputs[0]


def test_the_reference_serves_each_seed_and_k_their_own_manifolds(ref, test_set):
    """One Reference scoring the same 300 images at seed 0, k 3, then seed 5, then k 5: each
    precision and recall, of the samples and of the floor's test images, is that of
    scores.precision_recall on the real subset drawn by hand for that seed (300 training images
    from default_rng(seed)'s permutation, the floor's 300 test images from default_rng(seed + 1)'s)
    with that k; a cache keyed on the size alone would serve seed 0's and k 3's again."""
    feats, logits = classifier.features_and_logits(
        ref.net, data.to_model_input(blur(test_set[0][:300], 1)))

    def by_hand(seed, k):
        train = ref.train_feats[np.sort(np.random.default_rng(seed).permutation(60_000)[:300])]
        test = ref.test_feats[np.sort(np.random.default_rng(seed + 1).permutation(10_000)[:300])]
        return (*scores.precision_recall(train, feats, k),
                *scores.precision_recall(train, test, k))

    got = {}
    for seed, k in ((0, 3), (5, 3), (0, 5)):
        result = evaluate.evaluate_features(feats, logits, ref, seed, k)
        got[seed, k] = (result["precision"], result["recall"], result["real"]["precision"],
                        result["real"]["recall"])
        assert got[seed, k] == by_hand(seed, k), (seed, k)
    for other in ((5, 3), (0, 5)):  # the settings differ in every score: a stale one would show
        assert all(a != b for a, b in zip(got[other], got[0, 3])), (other, got)


# --- the per-class grid --------------------------------------------------------------------------


def test_class_grid_of_known_labels():
    """Image i is filled with the value i, so each cell of the grid says which image it holds."""
    labels = np.array([2] * 12 + [5] * 3 + [9] * 15)[np.random.default_rng(12).permutation(30)]
    pixels = np.repeat(np.arange(30, dtype=np.uint8), 28 * 28).reshape(30, 28, 28)
    grid = evaluate.class_grid(pixels, labels, per_class=10)
    assert grid.shape == (100, 28, 28) and grid.dtype == np.uint8
    cells = grid.reshape(10, 10, 28 * 28)
    assert (cells == cells[:, :, :1]).all()  # every cell is one whole image (or black)
    held = cells[:, :, 0]  # (10 digits, 10 cells): the value, that is the index, of each image
    for digit, count in ((2, 10), (5, 3), (9, 10)):  # twelve 2s: the first ten are drawn
        np.testing.assert_array_equal(held[digit, :count], np.flatnonzero(labels == digit)[:count])
    # black elsewhere: the seven cells after the three 5s, and every other digit's row (an image
    # 0 would be black too, but image 0 is a 2 or a 9 and is drawn in its own row)
    assert (held[5, 3:] == 0).all()
    assert all((held[d] == 0).all() for d in (0, 1, 3, 4, 6, 7, 8))


def test_the_command_draws_each_digit_in_its_row(ref, test_set, tmp_path, capsys):
    from PIL import Image

    images, labels = test_set[0][:400], test_set[1][:400]
    np.save(tmp_path / "real.npy", images)
    grid_path = tmp_path / "per_class.png"
    assert evaluate.main([str(tmp_path / "real.npy"), "--class-grid", str(grid_path)]) == 0
    assert f"wrote {grid_path}" in capsys.readouterr().out
    picture = np.asarray(Image.open(grid_path))
    scale = picture.shape[0] // (10 * 30 + 2)  # 28-pixel images, 2-pixel gaps, then enlarged
    assert picture.shape == (302 * scale, 302 * scale)
    # Find each cell's image among the 400 real ones: its true label is its row's digit, but for
    # the classifier's rare mistakes (99% accurate: at most a few of the 100 cells).
    wrong = 0
    for digit in range(10):
        for c in range(10):
            top, left = (2 + 30 * digit) * scale, (2 + 30 * c) * scale
            cell = picture[top:top + 28 * scale:scale, left:left + 28 * scale:scale]
            (which,) = np.flatnonzero((images == cell).all(axis=(1, 2)))[:1]
            wrong += labels[which] != digit
    assert wrong <= 3


# --- the command's bad inputs -------------------------------------------------------------------


def write_npy(name, array):
    def make(folder):
        with open(folder / name, "wb") as f:  # np.save would add .npy to s.NPY
            np.save(f, array)
        return [name]
    return make


def fake_run(folder):
    """A run folder's names (not a trainable run: the grids' check comes before it is read)."""
    (folder / "run" / "samples").mkdir(parents=True)
    for name in ("config.json", "checkpoint.npz", "samples_final.png", "samples/epoch_001.png"):
        (folder / "run" / name).write_bytes(b"the run's")
    return ["run"]


BAD_INPUTS = [  # (what, make the arguments in a folder, words the message must contain)
    ("no input", lambda d: [], ["run folder"]),
    ("missing path", lambda d: ["nothing_here"], ["nothing_here", "no such"]),
    ("not .npy", lambda d: (d / "x.txt").write_text("hi") and ["x.txt"], ["x.txt", ".npy"]),
    ("float pixels", write_npy("f.npy", np.zeros((10, 28, 28), np.float32)),
     ["float32", "uint8"]),
    ("wrong shape", write_npy("s.npy", np.zeros((10, 32, 32), np.uint8)), ["(N, 28, 28)"]),
    ("out of range", write_npy("r.npy", np.full((10, 28, 28), 300, np.int64)), ["0..255"]),
    ("too few", write_npy("t.npy", np.zeros((3, 28, 28), np.uint8)), ["too few"]),
    ("broken npy", lambda d: (d / "b.npy").write_bytes(b"not numpy") and ["b.npy"],
     ["b.npy", "readable"]),
    ("garbled npy header", lambda d: damaged_npy(d, "h.npy", "header") or ["h.npy"],
     ["h.npy", "damaged .npy header"]),
    ("truncated npy", lambda d: damaged_npy(d, "c.npy", "truncated") or ["c.npy"],
     ["c.npy", "truncated"]),
    ("--classifier not npz", lambda d: write_npy("s.npy", np.zeros((10, 28, 28), np.uint8))(d)
     + ["--classifier", "s.npy"], ["s.npy", "not an .npz archive", "--train-classifier"]),
    ("--out under a file", lambda d: (d / "afile").write_text("x") and ["x", "--out", "afile/e.json"],
     ["--out", "afile is a file, not a folder"]),
    ("--out empty", lambda d: ["x", "--out", ""], ["--out ''", "empty path"]),
    ("--classifier empty", lambda d: ["x", "--classifier", ""], ["--classifier ''", "empty path"]),
    ("-n not a number", lambda d: ["x", "-n", "abc"], ["-n abc: not allowed", "from 5 to"]),
    ("--data-dir without MNIST", lambda d: ["x", "--data-dir", "."],
     ["--data-dir .", "the four MNIST files"]),
    ("--out a run's config", lambda d: (d / "run").mkdir() or (d / "run" / "config.json")
     .write_text("{}") and ["x", "--out", "run/config.json"],
     ["--out run/config.json", "not an earlier output"]),
    ("--out a run's checkpoint", lambda d: np.savez(d / "checkpoint.npz", meta=np.zeros(1))
     or ["--train-classifier", "--out", "checkpoint.npz"],
     ["--out checkpoint.npz", "not an earlier output"]),
    ("run without config", lambda d: (d / "run").mkdir() or ["run"], ["config.json"]),
    ("bad -n", lambda d: ["x", "-n", "2"], ["-n 2", "from 5 to 1,000,000"]),
    ("huge -n", lambda d: ["x", "-n", "10000000"], ["-n 10000000", "from 5 to 1,000,000"]),
    ("bad --seed", lambda d: ["x", "--seed", "-3"], ["--seed", "-3"]),
    ("--out a folder", lambda d: (d / "f.json").mkdir() or ["x", "--out", "f.json"],
     ["is a folder"]),
    ("--out not json", lambda d: ["x", "--out", "e.txt"], ["--out", ".json"]),
    ("--out folder missing", lambda d: ["x", "--out", "no/e.json"], ["does not exist"]),
    ("train with input", lambda d: ["--train-classifier", "x"], ["takes no input"]),
    ("train 0 epochs", lambda d: ["--train-classifier", "--epochs", "0"],
     ["--epochs 0: not allowed", "an integer >= 1"]),
    ("--class-grid not png", lambda d: ["x", "--class-grid", "grid.jpg"],
     ["--class-grid", "grid.jpg", ".png"]),
    ("--class-grid a folder", lambda d: (d / "g.png").mkdir() or ["x", "--class-grid", "g.png"],
     ["--class-grid", "g.png", "is a folder"]),
    ("--class-grid folder missing", lambda d: ["x", "--class-grid", "no/g.png"],
     ["--class-grid", "does not exist"]),
    ("--class-grid with training", lambda d: ["--train-classifier", "--class-grid", "g.png"],
     ["--class-grid", "--train-classifier"]),
    # suffixes are compared exactly, as minigan.sample's are (it refused s.PNG, this took it)
    ("--class-grid .PNG", lambda d: ["x", "--class-grid", "g.PNG"],
     ["--class-grid g.PNG", "in lower case: g.png"]),
    ("--neighbours-grid .Png", lambda d: ["x", "--neighbours", "--neighbours-grid", "g.Png"],
     ["--neighbours-grid g.Png", "in lower case: g.png"]),
    ("--out .JSON", lambda d: ["x", "--out", "e.JSON"], ["--out e.JSON", "in lower case: e.json"]),
    ("input .NPY", write_npy("s.NPY", np.zeros((10, 28, 28), np.uint8)),
     ["s.NPY", "in lower case: s.npy"]),
    # a run's own pictures: the old code drew the grid over them
    ("--class-grid a run's picture", lambda d: fake_run(d) + ["--class-grid",
                                                             "run/samples_final.png"],
     ["--class-grid run/samples_final.png", "picture of the train_mnist.py run in run",
      "name another file, like run/per_class.png"]),
    ("--neighbours-grid a run's epoch grid", lambda d: fake_run(d) + [
        "--neighbours", "--neighbours-grid", "run/samples/epoch_001.png"],
     ["--neighbours-grid run/samples/epoch_001.png", "train_mnist.py run in run"]),
    # the default output is guarded as --out is: the old code replaced a user's eval.json
    ("default out not its own", lambda d: write_npy("small.npy", np.zeros((10, 28, 28),
     np.uint8))(d) and (d / "eval.json").write_text('{"my": "settings"}') and ["small.npy"],
     ["eval.json", "without --out", "not an earlier output", "pass --out"]),
    ("default out a folder", lambda d: write_npy("small.npy", np.zeros((10, 28, 28),
     np.uint8))(d) and (d / "eval.json").mkdir() or ["small.npy"],
     ["eval.json", "is a folder", "pass --out"]),
    ("--epochs without training", lambda d: ["x", "--epochs", "5"],
     ["--epochs 5", "add --train-classifier"]),
    ("--classifier a folder", lambda d: (d / "run").mkdir() or ["x", "--classifier", "run"],
     ["--classifier run is a folder", ".npz", "--train-classifier"]),
    ("--classifier missing", lambda d: ["x", "--classifier", "w.npz"],
     ["--classifier w.npz does not exist", ".npz"]),
]

# Flags that --train-classifier cannot take. Checked in-process on the parser: the old code
# accepted them and would have started training.
NOT_WITH_TRAINING = [
    (["-n", "0"], ["-n 0", "draws samples", "drop it"]),
    (["--json"], ["--json: prints the scores", "drop it"]),
    (["--classifier", "w.npz"], ["--classifier w.npz", "--train-classifier writes new ones"]),
    (["--neighbours-grid", "g.png"], ["--neighbours-grid g.png", "memorisation", "drop it"]),
    (["--neighbours-n", "5"], ["--neighbours-n 5", "memorisation"]),
]


@pytest.mark.parametrize("flags,needles", NOT_WITH_TRAINING,
                         ids=[" ".join(f) for f, _ in NOT_WITH_TRAINING])
def test_flags_of_scoring_are_refused_with_train_classifier(tmp_path, monkeypatch, capsys, flags,
                                                            needles):
    monkeypatch.chdir(tmp_path)
    result = call(evaluate_flags.parse_args, ["--train-classifier", *flags], capsys)
    assert_clean_error(result, "does not go with --train-classifier", *needles)


def test_the_default_weights_are_replaced_only_if_they_are_weights(tmp_path, monkeypatch,
                                                                   capsys):
    """runs/mnist_classifier.npz, --train-classifier's default output, is guarded as --out is."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    np.savez(tmp_path / "runs" / "mnist_classifier.npz", mine=np.zeros(3))
    result = call(evaluate_flags.parse_args, ["--train-classifier"], capsys)
    assert_clean_error(result, "runs/mnist_classifier.npz", "without --out",
                       "not an earlier output")
    classifier.save_classifier(tmp_path / "runs" / "mnist_classifier.npz",
                               classifier.make_classifier())
    assert evaluate_flags.parse_args(["--train-classifier"]).out is None  # its own: replaced


def test_out_may_replace_an_earlier_output_of_its_kind(tmp_path, capsys):
    scores = tmp_path / "eval.json"
    scores.write_text(json.dumps({"fd": 1.0, "fd_floor": 0.5}))
    assert evaluate_flags.parse_args(["x", "--out", str(scores)]).out == str(scores)
    weights = tmp_path / "mine.npz"
    classifier.save_classifier(weights, classifier.make_classifier())
    args = evaluate_flags.parse_args(["--train-classifier", "--out", str(weights)])
    assert args.out == str(weights)
    # the mlp's weights are not the conv classifier's
    result = call(evaluate_flags.parse_args, ["--train-classifier", "--features", "conv",
                                              "--out", str(weights)], capsys)
    assert_clean_error(result, f"--out {weights}: a file is there, and it is not an earlier "
                       "output of this kind (conv classifier's weights)")


@pytest.mark.parametrize("what,make,needles", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_a_clean_error(tmp_path, monkeypatch, capsys, what, make, needles):
    """The cases run in this process for speed (evaluate.cli, what python -m minigan.evaluate
    runs), but "float pixels", which runs the real command line: main returns 2 there, and the
    shell must see exit status 2 (sys.exit(cli())) and no traceback on stderr."""
    args = make(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    if what == "float pixels":
        result = run_command(["-m", "minigan.evaluate", *args], cwd=tmp_path)
    else:
        result = call(evaluate.cli, args, capsys)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before, "a failed command wrote or changed files"


@pytest.mark.parametrize("flag,name", [("--class-grid", "samples_final.png"),
                                       ("--neighbours-grid", "curves.png")])
def test_a_grid_never_replaces_a_runs_own_picture(plain_run, flag, name, capsys):
    """evaluate RUN --class-grid RUN/samples_final.png replaced the run's training grid."""
    before = snapshot(plain_run)
    extra = ["--neighbours", "--neighbours-n", "20"] if flag == "--neighbours-grid" else []
    result = call(evaluate.main, [str(plain_run), "-n", "50", *extra, flag,
                                  str(plain_run / name)], capsys)
    assert_clean_error(result, f"{flag} {plain_run / name}", "train_mnist.py run",
                       "name another file")
    assert snapshot(plain_run) == before


# --- train_mnist.py --eval-every ----------------------------------------------------------------

TINY = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden", "64,32",
        "--latent-dim", "16", "--log-every", "2", "--epochs", "3"]


def test_eval_every_scores_the_run_and_leaves_training_alone(ref, tmp_path):
    scored = train_mnist.main([*TINY, "--eval-every", "2", "--eval-samples", "100",
                               "--out", str(tmp_path / "scored")])
    plain = train_mnist.main([*TINY, "--out", str(tmp_path / "plain")])
    rows = (scored / "eval.csv").read_text().splitlines()
    assert rows[0].split(",")[:4] == ["epoch", "step", "fd", "fd_floor"]
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "3"]  # every 2nd epoch and the last
    assert (scored / "quality.png").stat().st_size > 1000
    assert not (plain / "eval.csv").exists()
    # scoring draws its own noise: the trained weights and the optimizers' moments are the same
    # bit for bit (the filter was ("G.", "D."), which no array's name matches: G/0.W, opt_D/...)
    a, b = np.load(scored / "checkpoint.npz"), np.load(plain / "checkpoint.npz")
    arrays = [name for name in a.files if name != "meta"]  # meta: the seconds differ
    assert set(arrays) == set(b.files) - {"meta"}
    assert {name.split("/")[0] for name in arrays} >= {"G", "D", "opt_G", "opt_D"}
    for name in arrays:
        assert np.array_equal(a[name], b[name]), name
    # The last row scores the final generator with 100 samples of seed 0: the same numbers as
    # scoring the checkpoint's generator again (a row that mixed up or dropped a column fails).
    result = evaluate.evaluate_generator(*_generator(scored), n=100, ref=ref)
    last = rundir.read_rows(scored / "eval.csv")[-1]
    assert result["n"] == 100 and (last["epoch"], last["step"]) == (3, 18)
    for key in ("fd", "fd_floor", "class_entropy", "kl_uniform", "precision", "recall"):
        assert last[key] == result[key], key
    assert (last["least_share"], last["most_share"]) == (min(result["class_share"]),
                                                         max(result["class_share"]))


def _generator(run_dir):
    from minigan.sample import load_generator

    G, cfg = load_generator(run_dir)
    return G, cfg.latent_dim


@pytest.fixture
def mnist_elsewhere(tmp_path, monkeypatch):
    """MNIST in a folder of its own, and nowhere else: the search (the repository's data/mnist,
    $MINIGAN_DATA, the user cache, a download) finds nothing, and no Reference is cached (one
    built from the repository's MNIST would hide a scoring that searches)."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in data.FILES:
        (folder / f"{name}.gz").symlink_to(data.REPO_DATA_DIR / f"{name}.gz")

    def no_download(directory=None):
        raise data.DataError("downloads are off in this test")

    monkeypatch.setattr(data, "REPO_DATA_DIR", tmp_path / "no_repository_data")
    monkeypatch.delenv("MINIGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty_cache"))
    monkeypatch.setattr(data, "download_mnist", no_download)
    monkeypatch.setattr(evaluate, "_REFERENCES", {})
    return folder


def test_the_reference_cache_knows_the_folder_found(mnist_elsewhere, tmp_path, monkeypatch):
    """One Reference per MNIST folder found, however it was named; a search that finds nothing
    now is an error, not the Reference of a folder it found before ($MINIGAN_DATA unset)."""
    monkeypatch.setenv("MINIGAN_DATA", str(mnist_elsewhere))
    found = evaluate.reference()
    (tmp_path / "link").symlink_to(mnist_elsewhere, target_is_directory=True)
    assert evaluate.reference(data_dir=f"{mnist_elsewhere}/") is found
    assert evaluate.reference(data_dir=tmp_path / "link") is found
    monkeypatch.delenv("MINIGAN_DATA")
    with pytest.raises(data.DataError, match="MNIST not found"):
        evaluate.reference()
    assert len(evaluate._REFERENCES) == 1


def test_eval_every_scores_against_the_runs_data_dir_new_and_resumed(ref, mnist_elsewhere,
                                                                     tmp_path):
    """--data-dir X --eval-every 1 with MNIST in X only: the scoring reads X too (it searched,
    and failed at the epoch's end, after the epoch's training and before its checkpoint), on
    resume as well; the scores are those of the repository's MNIST, the same files."""
    run = train_mnist.main([*TINY, "--epochs", "1", "--data-dir", str(mnist_elsewhere),
                            "--eval-every", "1", "--eval-samples", "100", "--out",
                            str(tmp_path / "run")])
    train_mnist.main(["--resume", str(run), "--epochs", "2"])
    rows = rundir.read_rows(run / "eval.csv")
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 6), (2, 12)]
    result = evaluate.evaluate_generator(*_generator(run), n=100, ref=ref)
    for key in ("fd", "fd_floor", "precision", "recall"):
        assert rows[-1][key] == result[key], key


def test_eval_every_that_cannot_score_refuses_before_writing(mnist_elsewhere, tmp_path, capsys):
    """A run on --images, with MNIST nowhere to be found: --eval-every, which scores against
    MNIST, refuses the run at once (exit 2, nothing written), a new one and a resumed one,
    instead of failing after the first epoch; with --data-dir it scores, and says against what."""
    images, _ = data.load_mnist("train", data_dir=mnist_elsewhere)
    own = tmp_path / "own.npy"
    np.save(own, images[:192])
    new = [*TINY, "--images", str(own), "--eval-every", "1", "--eval-samples", "100"]
    before = snapshot(tmp_path)
    result = call(train_mnist.cli, [*new, "--out", str(tmp_path / "run")], capsys)
    assert_clean_error(result, "--eval-every 1", "MNIST not found", "--data-dir",
                       "drop --eval-every")
    assert snapshot(tmp_path) == before
    run = train_mnist.main([*TINY, "--images", str(own), "--epochs", "1", "--out",
                            str(tmp_path / "run")])
    before = snapshot(run)
    resume = ["--resume", str(run), "--epochs", "3", "--eval-every", "1", "--eval-samples", "100"]
    result = call(train_mnist.cli, resume, capsys)
    assert_clean_error(result, "--eval-every 1", "MNIST not found")
    assert snapshot(run) == before
    result = call(train_mnist.cli, [*resume, "--data-dir", str(mnist_elsewhere)], capsys)
    assert result.returncode == 0, result.stderr
    assert f"--eval-every scores the samples against MNIST, not {own}" in result.stdout
    assert [r["epoch"] for r in rundir.read_rows(run / "eval.csv")] == [2, 3]


@pytest.mark.parametrize("resume", [False, True], ids=["new run", "resumed run"])
def test_eval_every_without_the_classifier_refuses_before_writing(resume, tmp_path, monkeypatch,
                                                                  capsys):
    """The shipped classifier missing (a checkout without it): refused before any training, not
    a traceback at the first epoch's end."""
    run = tmp_path / "run"
    if resume:
        train_mnist.main([*TINY, "--epochs", "1", "--out", str(run)])
    monkeypatch.setattr(classifier, "WEIGHTS", tmp_path / "gone.npz")
    monkeypatch.setattr(evaluate, "_REFERENCES", {})  # none built with the shipped file
    before = snapshot(tmp_path)
    argv = ["--resume", str(run)] if resume else [*TINY, "--out", str(run)]
    result = call(train_mnist.cli, [*argv, "--eval-every", "1", "--eval-samples", "100"], capsys)
    assert_clean_error(result, "--eval-every 1", "gone.npz not found", "git checkout")
    assert snapshot(tmp_path) == before


def test_a_failed_weights_write_is_a_named_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    net = classifier.make_classifier(rng=backend.default_rng(0))
    out = tmp_path / "clf.npz"
    out.write_bytes(b"the earlier weights")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(classifier.np, "savez", disk_full)
    with pytest.raises(classifier.ClassifierError, match="No space left.*nothing was written"):
        classifier.save_classifier(out, net)
    assert out.read_bytes() == b"the earlier weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.npz"]  # no temporary file left


def test_ctrl_c_while_training_the_classifier_is_one_line_and_writes_nothing(tmp_path, capsys,
                                                                               monkeypatch):
    """--train-classifier takes minutes: Ctrl-C there ends in one line and status 130, no
    traceback, and no weights file."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(evaluate.CLASSIFIERS, "mlp", (classifier.load_classifier, interrupted))
    out = tmp_path / "clf.npz"
    assert evaluate.cli(["--train-classifier", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "python -m minigan.evaluate: interrupted" in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_train_classifier_refuses_an_unwritable_out_before_training(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("not a folder")
    assert "not a writable folder" in evaluate_flags.writable_problem(
        "--out", tmp_path / "a_file" / "deeper" / "clf.npz")
    assert evaluate_flags.writable_problem("--out", tmp_path / "new" / "clf.npz") is None  # made
    # A folder without write permission (faked: the tests may run as root, who may write anywhere)
    monkeypatch.setattr(evaluate_flags.os, "access", lambda path, mode: False)
    trained = []
    monkeypatch.setitem(evaluate.CLASSIFIERS, "mlp", (classifier.load_classifier,
                                                      lambda *a, **k: trained.append(1)))
    with pytest.raises(SystemExit) as stop:  # refused while the flags are read
        evaluate.main(["--train-classifier", "--out", str(tmp_path / "clf.npz")])
    assert stop.value.code == 2
    assert not trained  # refused before any training
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written
