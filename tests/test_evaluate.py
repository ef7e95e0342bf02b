"""minigan.scores, minigan.classifier and minigan.evaluate: the matrix square root and the Fréchet
distance against closed forms, precision and recall on hand-made point sets with a known answer,
the class histogram of known labels, the shipped classifier (its checksum and its accuracy), the
scores of real, single-class and damaged MNIST images, the per-class grid, the command's bad
inputs, and train_mnist.py --eval-every on a tiny run."""

import json
import math

import numpy as np
import pytest

import train_mnist
from clitest import assert_clean_error, run_command, snapshot
from minigan import backend, classifier, data, evaluate, rundir, scores

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
    assert d12 > 0
    assert math.isclose(d12, scores.frechet_distance(-mu, S2, mu, S1), rel_tol=1e-10)


# --- precision, recall and the class histogram on hand-made data --------------------------------


def test_precision_recall_of_identical_disjoint_and_collapsed_sets():
    rng = np.random.default_rng(8)
    real = rng.standard_normal((400, 5))
    assert scores.precision_recall(real, real.copy()) == (1.0, 1.0)  # every point in its ball
    assert scores.precision_recall(real, real + 100.0) == (0.0, 0.0)  # nowhere near
    # All samples on one real point (mode collapse): perfect precision, recall near 0.
    collapsed = real[:1] + 1e-3 * rng.standard_normal((400, 5))
    precision, recall = scores.precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.02


def test_precision_recall_of_half_the_support():
    """Samples from one half of the real data: precision stays high, recall drops to about half."""
    rng = np.random.default_rng(9)
    real = rng.standard_normal((2000, 2))
    fake = rng.standard_normal((2000, 2))
    fake[:, 0] = np.abs(fake[:, 0])  # only x > 0
    precision, recall = scores.precision_recall(real, fake)
    assert precision > 0.95 and 0.4 < recall < 0.65


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
    images, _ = test_set
    # A random subset, as the floor's is: MNIST's test set is two halves by different writers
    # (NIST's SD-3 and SD-1), and the last 1000 images alone score 32 against a floor of 12.
    idx = np.random.default_rng(123).permutation(len(images))[:N]
    scores = evaluate.evaluate_pixels(images[idx], ref, seed=0)
    # the floor is another random N test images' distance: the two differ by sampling noise
    assert scores["fd"] < 1.3 * scores["fd_floor"]
    assert scores["class_entropy"] > 2.28 and scores["kl_uniform"] < 0.03
    assert scores["precision"] > 0.7 and scores["recall"] > 0.7


def test_one_class_scores_near_zero_entropy_and_low_recall(ref, test_set):
    images, labels = test_set
    ones = images[labels == 1][:N]
    scores = evaluate.evaluate_pixels(ones, ref, seed=0)
    assert scores["class_entropy"] < 0.1
    assert scores["class_share"][1] > 0.98 and min(scores["class_share"]) == 0.0
    assert scores["recall"] < 0.2  # the other nine digits are missed...
    assert scores["precision"] > 0.7  # ...though every sample is a real-looking 1
    assert scores["fd"] > 10 * scores["fd_floor"]


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
    scores = [evaluate.evaluate_pixels(damage(images, level), ref, seed=0) for level in levels]
    fd = [s["fd"] for s in scores]
    recall = [s["recall"] for s in scores]
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


# --- the command's bad inputs -------------------------------------------------------------------


def write_npy(name, array):
    def make(folder):
        np.save(folder / name, array)
        return [name]
    return make


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
    ("run without config", lambda d: (d / "run").mkdir() or ["run"], ["config.json"]),
    ("bad -n", lambda d: ["x", "-n", "2"], ["-n"]),
    ("huge -n", lambda d: ["x", "-n", "10000000"], ["-n"]),
    ("bad --seed", lambda d: ["x", "--seed", "-3"], ["--seed", "-3"]),
    ("--out a folder", lambda d: (d / "f.json").mkdir() or ["x", "--out", "f.json"],
     ["is a folder"]),
    ("--out not json", lambda d: ["x", "--out", "e.txt"], ["--out", ".json"]),
    ("--out folder missing", lambda d: ["x", "--out", "no/e.json"], ["does not exist"]),
    ("train with input", lambda d: ["--train-classifier", "x"], ["takes no input"]),
    ("train 0 epochs", lambda d: ["--train-classifier", "--epochs", "0"], ["--epochs"]),
]


@pytest.mark.parametrize("what,make,needles", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_a_clean_error(tmp_path, what, make, needles):
    args = make(tmp_path)
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.evaluate", *args], cwd=tmp_path)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before, "a failed command wrote or changed files"


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
    # scoring draws its own noise: the trained weights are the same bit for bit
    a, b = np.load(scored / "checkpoint.npz"), np.load(plain / "checkpoint.npz")
    for name in a.files:
        if name.startswith(("G.", "D.")):
            assert np.array_equal(a[name], b[name]), name
    # the run folder itself is an input of the command, through minigan.sample's generator
    result = evaluate.evaluate_generator(*_generator(scored), n=100, ref=ref)
    assert result["n"] == 100 and 0 <= result["precision"] <= 1


def _generator(run_dir):
    from minigan.sample import load_generator

    G, cfg = load_generator(run_dir)
    return G, cfg["latent_dim"]


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


def test_train_classifier_refuses_an_unwritable_out_before_training(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(evaluate.EvalError, match="not a writable folder"):
        evaluate.writable_or_raise(tmp_path / "a_file" / "deeper" / "clf.npz")
    evaluate.writable_or_raise(tmp_path / "new" / "clf.npz")  # a folder to be made: fine
    # A folder without write permission (faked: the tests may run as root, who may write anywhere)
    monkeypatch.setattr(evaluate.os, "access", lambda path, mode: False)
    trained = []
    monkeypatch.setattr(classifier, "train_classifier", lambda *a, **k: trained.append(1))
    assert evaluate.main(["--train-classifier", "--out", str(tmp_path / "clf.npz")]) == 2
    assert not trained  # refused before any training
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written
