"""minigan/anomaly_scores.py and the command minigan/anomaly.py: AUROC against a direct count of
pairs, AnoGAN's z-gradient against central differences, the baselines against brute force, and
the command's --quick run and bad flags."""

import errno
import json
import os

import numpy as np
import pytest

import strict_xp
from clitest import assert_clean_error, call, run_command, snapshot
from minigan import anomaly, settings
from minigan import anomaly_scores as scores
from minigan import backend, checkpoint, data, gan, spectral
from minigan.gradcheck import numerical_gradient, rel_error


def pair_count(s, is_anomaly):
    """AUROC by its definition: over every (anomaly, normal) pair, 1 if the anomaly scores
    higher, 1/2 if tied, 0 if lower; the mean."""
    pos, neg = s[is_anomaly], s[~is_anomaly]
    total = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return total / (len(pos) * len(neg))


# ---- AUROC ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_auroc_is_the_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    s = rng.integers(0, 6, n).astype(float)  # six values among up to 60 scores: many ties
    is_anomaly = rng.random(n) < 0.3
    is_anomaly[:2] = True, False  # both classes present
    assert scores.auroc(s, is_anomaly) == pytest.approx(pair_count(s, is_anomaly), abs=1e-12)


def test_auroc_of_known_cases():
    labels = np.array([0, 0, 1, 0, 1, 1], dtype=bool)
    perfect = np.where(labels, 2.0, 1.0) + np.arange(6) * 0.01
    assert scores.auroc(perfect, labels) == 1.0
    assert scores.auroc(-perfect, labels) == 0.0
    assert scores.auroc(np.full(6, 3.0), labels) == 0.5
    # by hand: anomalies score 2 and 4, normals 1 and 3: pairs 2>1, 2<3, 4>1, 4>3 -> 3/4
    assert scores.auroc([1, 2, 3, 4], [0, 1, 0, 1]) == 0.75
    # a tie between an anomaly and a normal counts half: (1 + 0.5) / 2
    assert scores.auroc([5, 5, 1], [1, 0, 0]) == 0.75


def test_roc_curve_area_is_the_auroc():
    rng = np.random.default_rng(7)
    s = rng.integers(0, 8, 200).astype(float)
    is_anomaly = rng.random(200) < 0.2 + 0.05 * s  # higher scores: more anomalies
    fpr, tpr = scores.roc_curve(s, is_anomaly)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids
    assert area == pytest.approx(pair_count(s, is_anomaly), abs=1e-12)


def test_auroc_refuses_one_class_and_nan():
    with pytest.raises(ValueError, match="at least one anomaly"):
        scores.auroc([1.0, 2.0], [True, True])
    with pytest.raises(ValueError, match="NaN"):
        scores.auroc([1.0, np.nan], [True, False])


# ---- AnoGAN's latent search --------------------------------------------------------------------


def features_by_hand(D, a):
    """tiny_gan's D by hand, up to its last hidden LeakyReLU (widths 9, 6)."""
    for dense in (D[0], D[2]):
        a = a @ dense.params["W"] + dense.params["b"]
        a = np.where(a > 0, a, 0.2 * a)
    return a


def tiny_gan(dtype="float64", seed=0, pixels=12, spectral_norm=False, rng=None):
    rng = rng if rng is not None else backend.default_rng(seed)
    G = gan.make_generator(3, (5, 7), pixels, rng=rng, dtype=dtype)
    D = gan.make_discriminator(pixels, (9, 6), rng=rng, dtype=dtype)
    if spectral_norm:  # in evaluation mode, as minigan.anomaly scores: u and v stay fixed
        D = spectral.apply(D, rng).eval()
    return G, D


@pytest.mark.parametrize("spectral_norm", [False, True], ids=["plain D", "spectral D"])
@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_objective_gradient_matches_central_differences(lam, spectral_norm):
    """dL/dz by G's and D's backward passes against float64 central differences of sum_i L_i;
    a spectrally normalised D's last hidden layer is a feature vector like the plain D's."""
    G, D = tiny_gan(spectral_norm=spectral_norm)
    buffers = {k: a.copy() for k, a in D.buffers.items()}
    f = scores.feature_net(D)
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.8, 0.8, (4, 12))
    z = rng.standard_normal((4, 3))
    fx = f.forward(x)
    _, _, _, dz = scores.anogan_objective(G, f, x, fx, z, lam)
    numeric = numerical_gradient(lambda: scores.anogan_objective(G, f, x, fx, z, lam)[0].sum(),
                                 z, 1.0)
    assert rel_error(dz, numeric) < 1e-7
    assert all(not g.any() for g in (*G.grads.values(), *D.grads.values()))  # untouched
    assert all(np.array_equal(D.buffers[k], a) for k, a in buffers.items())  # u, v too


def test_objective_is_the_weighted_sum_by_hand():
    G, D = tiny_gan()
    f = scores.feature_net(D)
    rng = np.random.default_rng(2)
    x, z = rng.uniform(-1, 1, (3, 12)), rng.standard_normal((3, 3))
    loss, residual, feature, _ = scores.anogan_objective(G, f, x, f.forward(x), z, 0.25)
    gz = G.forward(z)

    np.testing.assert_allclose(residual, np.abs(x - gz).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(
        feature, np.abs(features_by_hand(D, x) - features_by_hand(D, gz)).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(loss, 0.75 * residual + 0.25 * feature, rtol=1e-12)


def test_latent_search_lowers_its_objective():
    """Images that G can draw exactly: the search should get far closer than its start."""
    G, D = tiny_gan(dtype="float32")
    x = G.forward(np.random.default_rng(3).standard_normal((40, 3)).astype(np.float32))
    out = scores.latent_search(G, D, x, steps=150, lr=0.05, lam=0.1,
                               rng=backend.default_rng(4), chunk=16)
    history = out["history"]
    assert len(history) == 151 and history[-1] < 0.3 * history[0]
    assert out["loss"].shape == (40,)
    np.testing.assert_allclose(out["loss"], 0.9 * out["residual"] + 0.1 * out["feature"],
                               rtol=1e-5)


def test_discriminator_score_is_minus_the_logit_chunk_by_chunk():
    """D's score by hand (its layers' weights, LeakyReLU 0.2), negated: an image D finds less
    real scores higher. Chunks of 3 over 10 rows leave a short last chunk."""
    _, D = tiny_gan()
    x = np.random.default_rng(7).uniform(-1, 1, (10, 12))
    logit = (features_by_hand(D, x) @ D[4].params["W"] + D[4].params["b"])[:, 0]
    np.testing.assert_allclose(scores.discriminator_score(D, x, chunk=3), -logit, rtol=1e-12)


def test_latent_search_does_not_depend_on_its_chunks(xp):
    """Each image's search is its own: chunks of 16 and of 40 give the same scores, so the
    noise each row starts from must not depend on where its chunk begins (on CuPy too, whose
    generator draws other numbers chunk by chunk than at once)."""
    G, D = tiny_gan(dtype="float64")
    x = backend.to_device(np.random.default_rng(8).uniform(-1, 1, (40, 12)))
    by16 = scores.latent_search(G, D, x, 5, 0.05, 0.1, backend.default_rng(9), chunk=16)
    by40 = scores.latent_search(G, D, x, 5, 0.05, 0.1, backend.default_rng(9), chunk=40)
    np.testing.assert_allclose(by16["loss"], by40["loss"], rtol=1e-9)


class NumPyDraws:
    """A NumPy generator whose draws land on the array module in use: the same weights and the
    same starting z on every module (CuPy's own generator draws other numbers than NumPy's for a
    seed, so the networks and the search would start elsewhere)."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def __getattr__(self, name):  # standard_normal, uniform, ...: NumPy's, moved to the device
        draw = getattr(self.rng, name)
        return lambda *args, **kwargs: backend.to_device(draw(*args, **kwargs))


def test_latent_search_on_every_array_module(xp):
    """The same scores on NumPy, on the strict CuPy stand-in, and on CuPy where present, from
    the same weights and the same starting z."""
    backend.use("cpu")
    G, D = tiny_gan(dtype="float64", rng=NumPyDraws(0))
    x_host = np.random.default_rng(5).uniform(-1, 1, (10, 12))
    expected = scores.latent_search(G, D, x_host, 5, 0.05, 0.1, NumPyDraws(6))
    d_expected = scores.discriminator_score(D, x_host)
    backend.use_module(xp, "under test")
    G, D = tiny_gan(dtype="float64", rng=NumPyDraws(0))
    x = backend.to_device(x_host)
    got = scores.latent_search(G, D, x, 5, 0.05, 0.1, NumPyDraws(6))
    assert type(got["loss"]) is np.ndarray
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-9)
    np.testing.assert_allclose(scores.discriminator_score(D, x), d_expected, rtol=1e-9)


def test_latent_search_reads_the_device_once_not_every_step(monkeypatch):
    """Every device -> host copy is a GPU sync: counted on the strict CuPy stand-in, the
    search's must not grow with its steps (the history stays on the device until the loop
    ends; it read one float a step). The numbers are those NumPy's search gives."""
    G, D = tiny_gan(dtype="float32")
    x_host = np.random.default_rng(5).uniform(-1, 1, (10, 12)).astype(np.float32)
    expected = scores.latent_search(G, D, x_host, 7, 0.05, 0.1, backend.default_rng(6))
    reads = []
    for name in ("__float__", "__int__", "__bool__", "item", "get"):
        monkeypatch.setattr(strict_xp.StrictArray, name, lambda a, *args, _f=getattr(
            strict_xp.StrictArray, name): reads.append(1) or _f(a, *args))
    monkeypatch.setattr(strict_xp, "asnumpy", lambda a, _f=strict_xp.asnumpy:
                        reads.append(1) or _f(a))
    backend.use_module(strict_xp, "strict")
    counts = {}
    for steps in (2, 7):
        G, D = tiny_gan(dtype="float32")
        reads.clear()
        got = scores.latent_search(G, D, backend.to_device(x_host), steps, 0.05, 0.1,
                                   backend.default_rng(6))
        counts[steps] = len(reads)
    assert counts[2] == counts[7] == 4  # L, R, F and the history: one copy each
    assert got["history"].dtype == np.float64  # as float() gave
    np.testing.assert_array_equal(got["history"], expected["history"])
    np.testing.assert_array_equal(got["loss"], expected["loss"])


# ---- the baselines -----------------------------------------------------------------------------


def test_pca_error_against_brute_force():
    rng = np.random.default_rng(8)
    train = rng.standard_normal((60, 6)) @ rng.standard_normal((6, 6))  # correlated columns
    x = rng.standard_normal((7, 6))
    mean, V = scores.pca_fit(train, 2)
    got = scores.pca_error(x, mean, V)
    # brute force: the top right singular vectors of the centred data, one projection per row
    _, _, vt = np.linalg.svd(train - train.mean(axis=0))
    P = vt[:2].T @ vt[:2]  # projector onto the top-2 principal subspace
    for i, row in enumerate(x):
        c = row - train.mean(axis=0)
        assert got[i] == pytest.approx(np.sum((c - P @ c) ** 2), rel=1e-9)


def test_pca_asks_for_fewer_directions_than_training_rows():
    """N centred rows span at most N - 1 directions: the eigenvectors past them have eigenvalue
    0, an arbitrary basis of the rest, and a score from them would be LAPACK's choice."""
    rng = np.random.default_rng(10)
    train = rng.standard_normal((5, 12))
    mean, V = scores.pca_fit(train, 4)  # N - 1: the whole span of the centred rows
    centred = train - mean
    np.testing.assert_allclose(scores.pca_error(train, mean, V), 0, atol=1e-12)
    np.testing.assert_allclose(V @ (V.T @ centred.T), centred.T, atol=1e-12)
    with pytest.raises(ValueError, match="k=5 principal directions asked of 5 rows"):
        scores.pca_fit(train, 5)


def test_knn_distance_against_brute_force():
    rng = np.random.default_rng(9)
    train = rng.standard_normal((40, 5))
    x = np.vstack([rng.standard_normal((6, 5)), train[:2]])  # two rows at distance 0
    got = scores.knn_distance(x, train, k=3, chunk=4)
    for i, row in enumerate(x):
        d = sorted(np.sqrt(np.sum((row - t) ** 2)) for t in train)
        assert got[i] == pytest.approx(np.mean(d[:3]), rel=1e-9, abs=1e-7)


# ---- the command -------------------------------------------------------------------------------


def last_json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_quick_run_writes_its_files_and_json(tmp_path):
    out = tmp_path / "a"
    first = last_json(run_command(["-m", "minigan.anomaly", "--quick", "--out", str(out),
                                   "--json"], cwd=tmp_path))
    assert {p.name for p in out.iterdir()} == {"anomaly.json", "roc.png", "gan_digit0"}
    assert json.loads((out / "anomaly.json").read_text()) == first
    assert first["protocol"] == "held-out"
    result = first["results"]["0"]
    assert result["anomalous_digits"] == [0] and result["n_test"] == 300
    assert set(result["auroc"]) == {"anogan", "residual", "feature", "d_output", "pca", "knn"}
    assert all(0 <= v <= 1 for v in result["auroc"].values())
    # the two baselines again, from the MNIST files by hand: --quick's 300 test images (a seeded
    # subset), digit 0 the anomaly, the first 2,048 training images of the other digits normal
    train_images, train_labels = data.load_mnist("train")
    test_images, test_labels = data.load_mnist("test")
    idx = anomaly.test_subset(test_labels, 300, 0)
    x = data.to_model_input(test_images[idx]).astype(np.float64)  # float32, as the run scores
    normal = data.to_model_input(train_images[train_labels != 0][:2048]).astype(np.float64)
    is_zero = test_labels[idx] == 0
    assert result["n_anomalies"] == is_zero.sum() and result["n_train"] == 2048
    _, _, vt = np.linalg.svd(normal - normal.mean(axis=0), full_matrices=False)
    centred = x - normal.mean(axis=0)
    pca = np.sum((centred - centred @ vt[:20].T @ vt[:20]) ** 2, axis=1)  # --pca-k 20
    squared = (x ** 2).sum(1)[:, None] + (normal ** 2).sum(1)[None] - 2 * x @ normal.T
    knn = np.sort(np.sqrt(np.maximum(squared, 0)), axis=1)[:, :5].mean(axis=1)  # --knn-k 5
    assert result["auroc"]["pca"] == pytest.approx(pair_count(pca, is_zero), abs=1e-9)
    assert result["auroc"]["knn"] == pytest.approx(pair_count(knn, is_zero), abs=1e-9)
    assert result["auroc"]["pca"] > 0.6 and result["auroc"]["knn"] > 0.6  # 0s stand apart
    assert result["search_objective"][1] < result["search_objective"][0]
    assert (out / "roc.png").read_bytes()[:4] == b"\x89PNG"
    # the GAN saved there, loaded again with --run, gives the same scores
    again = last_json(run_command(["-m", "minigan.anomaly", "--quick", "--run",
                                   str(out / "gan_digit0"), "--out", str(tmp_path / "b"),
                                   "--json"], cwd=tmp_path))
    assert again["results"]["0"]["auroc"] == pytest.approx(result["auroc"], abs=1e-6)
    # a GAN that trained on digit 1 cannot score digit 1 held out: refused, nothing written
    before = snapshot(tmp_path)
    refused = run_command(["-m", "minigan.anomaly", "--quick", "--run", str(out / "gan_digit0"),
                           "--digits", "1", "--out", str(tmp_path / "c")], cwd=tmp_path)
    assert_clean_error(refused, "trained on digits [1, 2, 3, 4, 5, 6, 7, 8, 9]")
    assert snapshot(tmp_path) == before


def test_one_normal_protocol(tmp_path):
    out = tmp_path / "c"
    result = last_json(run_command(["-m", "minigan.anomaly", "--quick", "--protocol",
                                    "one-normal", "--digits", "1", "--steps", "2", "--out",
                                    str(out), "--json"], cwd=tmp_path))
    digit = result["results"]["1"]
    assert digit["normal_digits"] == [1] and len(digit["anomalous_digits"]) == 9
    assert "digit 1 only" in result["protocol_words"].replace("D", "1")


BAD_FLAGS = [
    (["--digits", "10"], "--digits 10"),
    (["--digits", "0,0"], "--digits 0,0: not allowed; use digits from 0 to 9 separated by "
                          "commas, each once"),
    (["--steps", "-1"], "--steps -1"),
    (["--lam", "1.5"], "--lam 1.5"),
    (["--lam", "-0.1"], "--lam -0.1: not allowed; use a number from 0 to 1"),
    (["--lr-z", "0"], "--lr-z 0.0: not allowed; use a number > 0"),
    (["--test-n", "5"], "--test-n 5"),
    (["--protocol", "two-normal"], "--protocol two-normal: not allowed; use one of held-out, "
                                   "one-normal"),
    (["--run", "."], "not a run"),
    (["--run", ".", "--epochs", "3"], "--epochs sets the GAN trained here; --run . brings its "
                                      "own: drop one of them"),
    (["--run", ".", "--digits", "0,1"], "one --digits"),
    (["--train-n", "10"], "--train-n 10"),
    (["--run", ""], '--run ""'),  # not "no run": that would train a GAN
    (["--out", ""], '--out ""'),
    (["--knn-k", "100000"], "lower --knn-k"),  # names --knn-k, not --train-n
    (["--knn-k", "3000", "--train-n", "2048"], "raise --train-n to 3000"),
    (["--pca-k", "64", "--train-n", "64"], "--pca-k 64: digit 0 keeps 64 normal training images"
                                           " (--train-n 64), which span at most 63 directions "
                                           "about their mean, fewer than the 64 asked"),
    (["--pca-k", "100", "--train-n", "64"], "lower --pca-k to 63 or less, or raise --train-n to "
                                            "101 or more"),
    (["--test-n", "20", "--seed", "6"], "no anomaly"),  # seed 6's 20 test images hold no 0
    (["--epochs", "abc"], "--epochs abc: not allowed; use an integer >= 1"),  # not argparse's
    (["--lam", "half"], "--lam half: not allowed; use a number from 0 to 1"),
]


@pytest.mark.parametrize("args, needle", BAD_FLAGS)
def test_bad_flags(tmp_path, monkeypatch, capsys, args, needle):
    """In-process, for speed (a subprocess is half a second of start-up a case); the test below
    runs one case as the real command line. Each is refused before anything is trained or
    written; conftest puts the backend (main's backend.use) back on the CPU."""
    monkeypatch.chdir(tmp_path)  # as the command's cwd: --out new and --run . are tmp_path's
    before = snapshot(tmp_path)
    result = call(anomaly.main, ["--quick", "--out", "new", *args], capsys)
    assert_clean_error(result, needle)
    assert snapshot(tmp_path) == before and not (tmp_path / "new").exists()


def test_a_bad_flag_is_a_clean_error_from_the_real_command_line(tmp_path):
    """One of BAD_FLAGS as a learner's shell runs it: argparse's exit status 2 from a real
    process, no traceback on stderr (the others run in-process, above)."""
    args, needle = BAD_FLAGS[0]
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.anomaly", "--quick", "--out", "new", *args],
                         cwd=tmp_path)
    assert_clean_error(result, needle)
    assert snapshot(tmp_path) == before and not (tmp_path / "new").exists()


def test_refuses_an_existing_out(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    assert_clean_error(run_command(["-m", "minigan.anomaly", "--quick", "--out", "full"],
                                   cwd=tmp_path), "--out full already holds notes.txt",
                       "new or empty folder", "choose another --out")
    assert snapshot(tmp_path) == before


def test_refuses_a_training_runs_folder_without_offering_resume(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"a run")
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.anomaly", "--quick", "--out", "run"], cwd=tmp_path)
    assert_clean_error(result, "--out run", "train_mnist.py run", "choose another --out")
    assert "--resume" not in result.stderr  # this command has no --resume
    assert snapshot(tmp_path) == before


def test_a_damaged_run_is_a_clean_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.npz").write_bytes(b"not a checkpoint")
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.anomaly", "--quick", "--out", "x", "--run", "bad"],
                         cwd=tmp_path)
    assert_clean_error(result, "config.json")
    assert snapshot(tmp_path) == before


def untrained_run(folder, **tricks):
    """A run folder as this command saves one (config.json, checkpoint.npz, trained_on.json) of
    a tiny MLP GAN, one training step on blank images: enough to load, in a second."""
    gcfg = settings.Config(epochs=1, latent_dim=16, g_hidden=(16,), d_hidden=(16,),
                           out=str(folder), **tricks)
    state = anomaly.train_gan(gcfg, np.zeros((64, 28, 28), np.uint8))
    anomaly.save_gan(folder, state, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    return folder


@pytest.mark.parametrize("name,value,needle", [
    ("pack", "2", "pack is 2, but it must be an integer from 1 to 64"),  # was a TypeError
    ("d_hidden", "ab", "d_hidden is ab, but it must be comma-separated layer widths"),
    ("d_hidden", [0], "d_hidden is 0, but it must be"),  # was a ZeroDivisionError
    ("d_dropout", 1.5, "d_dropout is 1.5"),
])
def test_the_runs_settings_of_d_are_checked_as_resume_checks_them(tmp_path, monkeypatch, capsys,
                                                                 name, value, needle):
    """Only G's settings were checked: a hand-edited config.json gave a traceback."""
    monkeypatch.chdir(tmp_path)
    run = untrained_run(tmp_path / "run")
    anomaly.load_gan(run, [1, 2, 3, 4, 5, 6, 7, 8, 9])  # the run as saved loads
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, name: value}))
    before = snapshot(tmp_path)
    result = call(anomaly.main, ["--quick", "--run", "run", "--out", "new"], capsys)
    assert_clean_error(result, "run/config.json", needle, "the file is damaged")
    assert snapshot(tmp_path) == before and not (tmp_path / "new").exists()


def test_check_sizes_takes_pca_k_up_to_one_below_the_training_images():
    """The rule at its edge, for a --run GAN (a training batch is not needed): 5 normal
    training images take --pca-k 4, and refuse --pca-k 5."""
    train_labels = np.repeat(np.arange(10), 30)
    test_labels = np.repeat(np.arange(10), 3)
    cfg = dict(anomaly.DEFAULTS, digits=(0,), run="a run", train_n=5, knn_k=5)
    anomaly.check_sizes({**cfg, "pca_k": 4}, train_labels, test_labels)
    with pytest.raises(settings.ConfigError, match=r"--pca-k 5: digit 0 keeps 5 normal .*; "
                                                   "lower --pca-k to 4 or less, or raise "
                                                   "--train-n to 6 or more$"):
        anomaly.check_sizes({**cfg, "pca_k": 5}, train_labels, test_labels)


def test_a_run_scored_with_too_few_images_for_pca_k_writes_nothing(tmp_path, monkeypatch,
                                                                   capsys):
    """--train-n 5 --pca-k 20 with --run was taken: eigh then returned null-space directions."""
    monkeypatch.chdir(tmp_path)
    untrained_run(tmp_path / "run")
    before = snapshot(tmp_path)
    result = call(anomaly.main, ["--run", "run", "--train-n", "5", "--pca-k", "20", "--out",
                                 "new"], capsys)
    assert_clean_error(result, "--pca-k 20: digit 0 keeps 5 normal training images",
                       "lower --pca-k to 4 or less, or raise --train-n to 21 or more")
    assert snapshot(tmp_path) == before and not (tmp_path / "new").exists()


@pytest.mark.parametrize("tricks,needle", [
    (dict(pack=2), "--pack: its D gives one logit per --pack images, none per image"),
    (dict(minibatch_std=1), "--minibatch-std: its D appends the batch's standard deviation"),
], ids=["pack", "minibatch std"])
def test_a_run_whose_d_scores_no_image_alone_is_refused_saying_why(tmp_path, monkeypatch, capsys,
                                                                   tricks, needle):
    """Each score takes one image alone; these Ds do not (the message blamed a "plain feature
    vector" for them, and for spectral norm, whose D has one)."""
    monkeypatch.chdir(tmp_path)
    untrained_run(tmp_path / "run", **tricks)
    before = snapshot(tmp_path)
    result = call(anomaly.main, ["--run", "run", "--out", "new"], capsys)
    assert_clean_error(result, needle, "use a run without it")
    assert snapshot(tmp_path) == before


def test_a_run_is_loaded_once(tmp_path, monkeypatch, capsys):
    """main loaded --run's checkpoint to check it, then run_digit loaded it again to score: now
    run_digit scores the G and D that main loaded."""
    monkeypatch.chdir(tmp_path)
    untrained_run(tmp_path / "run")
    loaded = []
    monkeypatch.setattr(anomaly, "load_gan", lambda *a, _f=anomaly.load_gan:
                        loaded.append(_f(*a)) or loaded[-1])
    seen = []
    monkeypatch.setattr(scores, "discriminator_score", lambda D, x, _f=scores.discriminator_score:
                        seen.append(D) or _f(D, x))
    result = call(anomaly.main, ["--run", "run", "--steps", "2", "--test-n", "100", "--train-n",
                                 "100", "--out", "new"], capsys)
    assert result.returncode == 0, result.stderr
    assert len(loaded) == 1 and seen == [loaded[0][1]]


def test_a_spectral_norm_run_is_scored_with_its_u_and_v_fixed(tmp_path, monkeypatch, capsys):
    """--run refused spectral-norm runs ("its D is not one whose last hidden layer is a plain
    feature vector", which it is). Scored now, in evaluation mode: D's u and v after the
    scoring are the checkpoint's, where each training forward would have taken a power step."""
    monkeypatch.chdir(tmp_path)
    untrained_run(tmp_path / "run", spectral_norm=1)
    saved, _ = checkpoint.load(tmp_path / "run" / "checkpoint.npz")
    loaded = []
    monkeypatch.setattr(anomaly, "load_gan", lambda *a, _f=anomaly.load_gan:
                        loaded.append(_f(*a)) or loaded[-1])
    result = call(anomaly.main, ["--run", "run", "--steps", "3", "--test-n", "100", "--train-n",
                                 "100", "--out", "new", "--json"], capsys)
    assert result.returncode == 0, result.stderr
    D = loaded[0][1]  # the D that run_digit scored with (test_a_run_is_loaded_once)
    assert {k for k in D.buffers} == {"0.u", "0.v", "2.u", "2.v"}
    for k, a in D.buffers.items():
        np.testing.assert_array_equal(backend.to_host(a), saved[f"D/{k}"])
    auroc = json.loads(result.stdout.strip().splitlines()[-1])["results"]["0"]["auroc"]
    assert set(auroc) == set(anomaly.SCORES)


@pytest.mark.parametrize("code,needle", [
    (errno.ENOSPC, "(No space left on device). Free some disk space."),
    (errno.EROFS, "(Read-only file system). The file system is read-only: choose another --out."),
], ids=["disk full", "read-only"])
def test_a_failed_write_says_the_fix_for_its_cause(tmp_path, monkeypatch, capsys, code, needle):
    """Was "free some disk space or choose another --out" whatever the cause."""
    monkeypatch.chdir(tmp_path)
    untrained_run(tmp_path / "run")

    def refused(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(anomaly, "save_roc", refused)  # after anomaly.json: that one stays
    result = call(anomaly.main, ["--quick", "--run", "run", "--steps", "2", "--out", "new"],
                  capsys)
    assert_clean_error(result, f"cannot write in new {needle}")
    assert (tmp_path / "new" / "anomaly.json").is_file()
