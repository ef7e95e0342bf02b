"""minigan.conv_classifier, the second feature space, and python -m minigan.evaluate --features:
the shipped weights (their checksum, their accuracy), the network's shapes, features on the
device and its strict stand-in, the scores of real, one-digit and blurred images in both feature
spaces, the command end to end on a tiny run, and its bad --features; and
benchmarks/two_spaces.py, which ranks runs in both spaces."""

import json
import shutil

import numpy as np
import pytest

import train_mnist
from clitest import (assert_clean_error, call, load_benchmark, run_command, script,
                     skip_unless_sys_is_unwritable, snapshot)
from minigan import backend, classifier, conv_classifier, data, evaluate, scores, settings
from test_evaluate import blur

SPACES = ["mlp", "conv"]
N = 1000  # images per scored set, as in tests/test_evaluate.py


@pytest.fixture(scope="module")
def refs():
    return {space: evaluate.reference(features=space) for space in SPACES}


@pytest.fixture(scope="module")
def test_set():
    return data.load_mnist("test")


# --- the network and its shipped weights --------------------------------------------------------


def test_the_network_has_the_documented_shapes():
    net = conv_classifier.make_conv_classifier(rng=backend.default_rng(0))
    x = np.random.default_rng(0).uniform(-1, 1, (5, 784)).astype(np.float32)
    feats, logits = classifier.features_and_logits(net, x)
    assert feats.shape == (5, 128) and logits.shape == (5, 10)
    # two 5 x 5 convolutions (1 -> 16 -> 32 channels), then 1568 -> 128 -> 10
    sizes = {k: v.shape for k, v in net.params.items()}
    assert sizes == {"1.W": (16, 1, 5, 5), "1.b": (16,), "3.W": (32, 16, 5, 5), "3.b": (32,),
                     "6.W": (1568, 128), "6.b": (128,), "8.W": (128, 10), "8.b": (10,)}
    assert (feats < 0).any()  # the features come after a LeakyReLU: negative ones survive


def test_shipped_weights_reach_99_percent(refs, test_set):
    # minigan/weights/README.md: 99.13%. The floor leaves room for another BLAS's last bits;
    # a net that loaded the wrong arrays (or none: 10%) falls far below it.
    images, labels = test_set
    assert classifier.accuracy(refs["conv"].net, images, labels) >= 0.99


def test_the_two_classifiers_are_different_networks(refs, test_set):
    """Independent: they disagree on a few test images, where each errs, not on none."""
    x = data.to_model_input(test_set[0])
    mlp = classifier.features_and_logits(refs["mlp"].net, x)[1].argmax(axis=1)
    conv = classifier.features_and_logits(refs["conv"].net, x)[1].argmax(axis=1)
    disagree = np.mean(mlp != conv)
    assert 0.002 < disagree < 0.03


def test_damaged_missing_or_foreign_weights_are_refused(tmp_path, monkeypatch):
    damaged = tmp_path / "mnist_conv_classifier.npz"
    raw = bytearray(conv_classifier.WEIGHTS.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip one byte
    damaged.write_bytes(bytes(raw))
    monkeypatch.setattr(conv_classifier, "WEIGHTS", damaged)
    with pytest.raises(classifier.ClassifierError, match="SHA-256"):
        conv_classifier.load_conv_classifier()
    monkeypatch.setattr(conv_classifier, "WEIGHTS", tmp_path / "missing.npz")
    with pytest.raises(classifier.ClassifierError,
                       match="git checkout -- minigan/weights.*--features conv"):
        conv_classifier.load_conv_classifier()
    # the MLP's weights given as the conv classifier's: wrong arrays, named
    with pytest.raises(classifier.ClassifierError, match="expected arrays"):
        conv_classifier.load_conv_classifier(classifier.WEIGHTS)


def test_features_on_every_array_module(xp):
    """The conv classifier runs on the device and hands host arrays back (CuPy, its stand-in)."""
    backend.use("cpu")
    host_net = conv_classifier.make_conv_classifier(rng=backend.default_rng(0))
    x = np.random.default_rng(10).uniform(-1, 1, (30, 784)).astype(np.float32)
    expected = classifier.features_and_logits(host_net, x, chunk=7)
    backend.use_module(xp, "under test")
    net = conv_classifier.make_conv_classifier(rng=backend.default_rng(0))
    for k, p in net.params.items():
        p[...] = backend.to_device(host_net.params[k])
    feats, logits = classifier.features_and_logits(net, x, chunk=7)
    assert type(feats) is np.ndarray and feats.shape == (30, 128)
    np.testing.assert_allclose(feats, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, expected[1], rtol=1e-5, atol=1e-6)


# --- the scores in both feature spaces ----------------------------------------------------------


@pytest.mark.parametrize("space", SPACES)
def test_real_images_score_near_the_floor_and_others_far_from_it(refs, test_set, space):
    images, labels = test_set
    ref = refs[space]
    idx = np.random.default_rng(123).permutation(len(images))[:N]  # random, as the floor's
    real = evaluate.evaluate_pixels(images[idx], ref, seed=0)
    assert real["fd"] < 1.3 * real["fd_floor"]  # another N test images: sampling noise apart
    assert real["class_entropy"] > 2.28 and real["precision"] > 0.7 and real["recall"] > 0.7
    ones = evaluate.evaluate_pixels(images[labels == 1][:N], ref, seed=0)
    assert ones["fd"] > 10 * ones["fd_floor"] and ones["class_share"][1] > 0.98
    blurred = evaluate.evaluate_pixels(blur(images[idx], 4), ref, seed=0)
    assert blurred["fd"] > 5 * blurred["fd_floor"] and blurred["recall"] < 0.5 * real["recall"]


def test_the_spaces_measure_in_their_own_features(refs, test_set):
    """Same images, two spaces: each FD is the Fréchet distance, through minigan.scores'
    functions, between the Gaussian of the images' own 128 or 256 features in that space's
    classifier and the reference's stored one, which is that of the 60,000 training images'
    features there (their mean and 1/(N-1) covariance, by hand); not the other space's, nor the
    test images' (the floor's)."""
    images = test_set[0][:300]
    assert refs["conv"].train_feats.shape == (60_000, 128)
    assert refs["mlp"].train_feats.shape == (60_000, 256)
    fd = {}
    for space in SPACES:
        ref = refs[space]
        fd[space] = evaluate.evaluate_pixels(images, ref, seed=0)["fd"]
        train = ref.train_feats.astype(np.float64)
        mu = train.mean(axis=0)
        centred = train - mu
        np.testing.assert_allclose(ref.mu, mu, rtol=0, atol=1e-12 * np.abs(mu).max())
        sigma = centred.T @ centred / (len(train) - 1)
        np.testing.assert_allclose(ref.sigma, sigma, rtol=0, atol=1e-10 * np.abs(sigma).max())
        feats, _ = classifier.features_and_logits(ref.net, data.to_model_input(images))
        assert feats.shape == (300, ref.train_feats.shape[1])
        # against the stored mu and sigma, just checked: the square roots of their near-zero
        # eigenvalues turn sigma's last-digit differences into 1e-9 of the FD
        own = scores.frechet_distance(*scores.gaussian_stats(feats), ref.mu, ref.sigma)
        assert abs(fd[space] / own - 1) < 1e-12, space
        floor = scores.frechet_distance(*scores.gaussian_stats(feats),
                                        *scores.gaussian_stats(ref.test_feats))
        assert abs(fd[space] / floor - 1) > 1e-3, space  # the test set's Gaussian is another
    assert abs(fd["mlp"] / fd["conv"] - 1) > 1e-3


# --- the command ------------------------------------------------------------------------------

TINY = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden", "64,32",
        "--latent-dim", "16", "--log-every", "2", "--epochs", "1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_mnist.main([*TINY, "--out", str(tmp_path_factory.mktemp("tiny") / "run")])


def test_the_command_scores_a_run_in_conv_features(refs, tiny_run, capsys):
    run = tiny_run
    assert evaluate.main([str(run), "-n", "200", "--features", "conv", "--json"]) == 0
    out = capsys.readouterr().out
    assert "in the conv classifier's features" in out and "Fréchet distance" in out
    printed = json.loads(out.strip().splitlines()[-1])
    written = json.loads((run / "eval_conv.json").read_text())
    assert written == printed and written["features"] == "conv"
    assert not (run / "eval.json").exists()  # the default space's file is left alone
    # the same numbers as scoring the run's generator through the conv Reference directly
    G, cfg = _generator(run)
    direct = evaluate.evaluate_generator(G, cfg.latent_dim, n=200, ref=refs["conv"])
    for key in ("fd", "fd_floor", "class_entropy", "precision", "recall"):
        assert written[key] == direct[key], key
    # and the default space still writes eval.json, with its keys as before
    assert evaluate.main([str(run), "-n", "200"]) == 0
    mlp = json.loads((run / "eval.json").read_text())
    assert "features" not in mlp and mlp["fd"] != written["fd"]


BAD = [  # (what, arguments, words the message must contain)
    ("unknown space", ["x.npy", "--features", "inception"],
     ["--features inception: not allowed; use one of mlp, conv"]),
    ("train unknown", ["--train-classifier", "--features", "big"],
     ["--features big: not allowed; use one of mlp, conv"]),
    ("mlp weights as conv", ["x.npy", "--features", "conv", "--classifier", "mlp.npz"],
     ["mlp.npz", "expected arrays"]),
]


@pytest.mark.parametrize("what,args,needles", BAD, ids=[b[0] for b in BAD])
def test_bad_features_are_a_clean_error(tmp_path, monkeypatch, capsys, what, args, needles):
    """In this process for speed (evaluate.cli, what python -m minigan.evaluate runs); a case of
    tests/test_evaluate.py's test_bad_input_is_a_clean_error runs the real command line."""
    np.save(tmp_path / "x.npy", np.zeros((20, 28, 28), np.uint8))
    (tmp_path / "mlp.npz").write_bytes(classifier.WEIGHTS.read_bytes())
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    result = call(evaluate.cli, args, capsys)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before, "a failed command wrote or changed files"


# --- benchmarks/two_spaces.py -------------------------------------------------------------------


def two_spaces():
    return load_benchmark("two_spaces")


def test_pairs_ordered_apart_and_kendalls_tau():
    """By hand: a < b < c in one space, b < c < a in the other. The pairs (a, b) and (a, c) are
    ordered apart, (b, c) alike: tau = (concordant - discordant) / pairs = (1 - 2) / 3."""
    fd = {"a": {"mlp": 1.0, "conv": 5.0}, "b": {"mlp": 2.0, "conv": 3.0},
          "c": {"mlp": 3.0, "conv": 4.0}}
    tau, apart = two_spaces().disagreements(fd)
    assert apart == [("a", "b"), ("a", "c")] and tau == pytest.approx(-1 / 3, abs=1e-15)
    assert two_spaces().ranks({"a": 5.0, "b": 3.0, "c": 4.0}) == {"a": 3, "b": 1, "c": 2}


def test_a_pair_ordered_apart_names_the_mlps_better_run_first():
    """By hand: "a" before "b" in the dict, but b is better in the MLP's features (FD 1 < 3) and
    worse in the conv's (2 > 1): the pair is (b, a), whatever the dict's order; one pair, ordered
    apart, tau = (0 - 1) / 1 = -1. A tie in one space (c and d: MLP 1 = 1) is not apart."""
    fd = {"a": {"mlp": 3.0, "conv": 1.0}, "b": {"mlp": 1.0, "conv": 2.0}}
    assert two_spaces().disagreements(fd) == (-1.0, [("b", "a")])
    tied = {"c": {"mlp": 1.0, "conv": 1.0}, "d": {"mlp": 1.0, "conv": 2.0}}
    assert two_spaces().disagreements(tied) == (1.0, [])


def test_two_spaces_scores_runs_as_evaluate_does(refs, tiny_run, tmp_path, capsys):
    twin = shutil.copytree(tiny_run, tmp_path / "twin")  # the same generator: the same scores
    out = tmp_path / "two.json"
    assert two_spaces().main([str(tiny_run), str(twin), "-n", "200", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    G, cfg = _generator(tiny_run)
    for space in SPACES:
        direct = evaluate.evaluate_generator(G, cfg.latent_dim, n=200, ref=refs[space])
        for name in ("run", "twin"):
            assert written["runs"][name][space]["fd"] == direct["fd"], (name, space)
    assert written["tau"] == 1.0 and written["apart"] == []  # a tie is not ordered apart
    assert "Kendall's tau between the two rankings: 1.000" in capsys.readouterr().out


def _generator(run_dir):
    from minigan.sample import load_generator

    G, cfg = load_generator(run_dir)
    return G, cfg


TWO_SPACES_BAD = [  # (what, arguments, words the message must contain)
    ("one run", ["run"], ["two or more"]),
    ("a run twice", ["run", "run"], ["two or more", "different names"]),
    ("not a run", ["run", "nothing_here"], ["nothing_here", "checkpoint.npz"]),
    ("bad -n", ["run", "other", "-n", "5"], ["-n 5", "20"]),
    ("-n not a number", ["run", "other", "-n", "abc"],
     ["-n abc: not allowed; use an integer from 20 to 100000"]),
    ("no config.json", ["run", "other"], ["error: run: no config.json there"]),  # was run: run:
    ("--out folder missing", ["run", "other", "--out", "no/x.json"],
     ["--out no/x.json: the folder no does not exist; create it first"]),
    ("--out a folder", ["run", "other", "--out", "run"], ["--out run: a folder, not a file"]),
    ("--out empty", ["run", "other", "--out", ""], ["--out '': an empty path"]),
    ("--out under a file", ["run", "other", "--out", "run/checkpoint.npz/x.json"],
     ["--out run/checkpoint.npz/x.json: run/checkpoint.npz is a file, not a folder"]),
]


@pytest.mark.parametrize("what,args,needles", TWO_SPACES_BAD, ids=[b[0] for b in TWO_SPACES_BAD])
def test_two_spaces_bad_input_is_a_clean_error(tmp_path, monkeypatch, capsys, what, args, needles):
    """In this process for speed (clitest.script); the next test runs the real command line."""
    for name in ("run", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "checkpoint.npz").write_bytes(b"")  # enough for the folder check
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    result = call(script("benchmarks/two_spaces.py"), args, capsys)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before, "a failed command wrote or changed files"


def test_two_spaces_checks_every_run_before_scoring_any(tiny_run, tmp_path):
    """A damaged second run is refused at once, not after minutes of scoring the first. A real
    subprocess: the exit status 2 of two_spaces.py's command line, no traceback on stderr."""
    damaged = shutil.copytree(tiny_run, tmp_path / "damaged")
    (damaged / "config.json").write_text("{not json")
    before = snapshot(tmp_path)
    result = run_command(["benchmarks/two_spaces.py", str(tiny_run), str(damaged), "-n", "200",
                          "--out", "two.json"], cwd=tmp_path)
    assert_clean_error(result, str(damaged), "config.json")
    assert f"{tiny_run.name}: " not in result.stderr  # no run was scored (its seconds line)
    assert snapshot(tmp_path) == before


def test_two_spaces_refuses_a_conditional_run_with_n_not_a_multiple_of_10(monkeypatch):
    ts = two_spaces()
    monkeypatch.setattr(ts, "load_generator",
                        lambda run: (None, settings.Config(conditional="acgan")))
    assert "multiple of 10" in ts.unscorable("run", 25)
    assert ts.unscorable("run", 30) is None


def test_two_spaces_refuses_an_out_it_cannot_write_before_scoring(tmp_path):
    skip_unless_sys_is_unwritable()
    for name in ("run", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "checkpoint.npz").write_bytes(b"")
    result = run_command(["benchmarks/two_spaces.py", "run", "other", "--out", "/sys/x.json"],
                         cwd=tmp_path)
    assert_clean_error(result, "--out /sys/x.json", "cannot write in /sys")
