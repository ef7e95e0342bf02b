"""python -m minigan.augment (minigan/augment.py, minigan/augment_arms.py): the rotation and the
shift moved by hand, the stratified subset counted, GAN-test against a brute-force count, mean
and sd by hand, the harness on a tiny configuration (every arm, for a trained and a given
generator), the command's files and JSON, and its bad flags (exit 2, nothing written)."""

import json
import math
import shutil

import numpy as np
import pytest

import train_mnist
from clitest import assert_clean_error, call, run_command, snapshot
from minigan import augment, augment_arms, backend, classifier, data

TINY_GAN = dict(g_hidden=(16,), d_hidden=(16,))


# ---- the augmentation -------------------------------------------------------------------------


def test_a_quarter_turn_is_numpy_rot90():
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for degrees, k in ((90, 1), (-90, -1), (180, 2), (0, 0)):
        turned = augment_arms.rotate_images(images, [degrees] * 3)
        np.testing.assert_array_equal(turned, np.rot90(images, k, axes=(1, 2)))


def test_a_small_turn_moves_a_pixel_as_computed_by_hand():
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 13, 20] = 200  # x = 20 - 13.5 = 6.5 right of the centre, y = 13.5 - 13 = 0.5 up
    turned = augment_arms.rotate_images(image, [30]).astype(np.float64)[0]
    # Turned 30 degrees counter-clockwise, the point goes to x' = 6.5 cos 30 - 0.5 sin 30 =
    # 5.379, y' = 6.5 sin 30 + 0.5 cos 30 = 3.683: row 13.5 - 3.683 = 9.817, column 18.879.
    # Output pixel (10, 19) is x = 5.5, y = 3.5; turned back by 30 degrees it reads the source
    # at x = 5.5 cos 30 + 3.5 sin 30 = 6.5131, y = -5.5 sin 30 + 3.5 cos 30 = 0.2811, that is
    # row 13.2189, column 20.0131: 200 with weight (1 - 0.2189) * (1 - 0.0131) = 0.7709.
    assert turned[10, 19] == round(200 * (1 - 0.2189) * (1 - 0.0131))  # 154
    assert np.unravel_index(turned.argmax(), turned.shape) == (10, 19)
    rows, cols = np.mgrid[0:28, 0:28]
    assert abs((turned * rows).sum() / turned.sum() - 9.817) < 0.5  # the centre of brightness
    assert abs((turned * cols).sum() / turned.sum() - 18.879) < 0.5
    assert turned[13, 20] == 0  # the old place is dark


def test_shift_and_rotate_keeps_shapes_and_order_and_shifts_as_drawn():
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    for i in range(5):  # image i: a 12 x 12 block of value 10 * (i + 1) in the middle
        images[i, 8:20, 8:20] = 10 * (i + 1)
    out = augment_arms.shift_and_rotate(images, np.random.default_rng(3), 2, 10)
    assert out.shape == images.shape and out.dtype == np.uint8
    # A shift of at most 2 and a turn of at most 10 degrees leave the block over the centre:
    # image i is still image i, so the labels stay aligned.
    np.testing.assert_array_equal(out[:, 13, 13], 10 * np.arange(1, 6))
    # Without a turn, the shifts are the offsets drawn after the (zero) angles, by hand:
    pixels = np.random.default_rng(1).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    out = augment_arms.shift_and_rotate(pixels, np.random.default_rng(7), 2, 0)
    rng = np.random.default_rng(7)
    rng.uniform(0, 0, 4)  # the angles, all 0
    dy, dx = rng.integers(0, 5, 4) - 2, rng.integers(0, 5, 4) - 2
    for i in range(4):
        for r in range(28):
            for k in range(28):
                src_r, src_k = r + dy[i], k + dx[i]  # the shift reads dy rows further down
                inside = 0 <= src_r < 28 and 0 <= src_k < 28
                assert out[i, r, k] == (pixels[i, src_r, src_k] if inside else 0)


def test_fit_takes_its_steps_over_epochs_and_decays_the_rate(mnist, monkeypatch):
    images, labels = mnist[0][0][:300], mnist[0][1][:300]
    seen, epochs, rates = [], [], []
    real_step = classifier.Adam.step

    def step(self):  # every Adam step, with the learning rate it used
        rates.append(self.lr)
        real_step(self)

    monkeypatch.setattr(classifier.Adam, "step", step)
    net = classifier.make_classifier(rng=backend.default_rng(0))
    classifier.fit(net, images, labels, 5, np.random.default_rng(0), batch_size=128, lr=0.01,
                   augment=lambda x, rng: seen.append(len(x)) or x,
                   on_epoch=lambda epoch, loss, seconds: epochs.append(epoch))
    # 300 images fill 2 batches of 128 an epoch: 5 steps take 3 epochs, of 2, 2 and 1 steps
    assert seen == [300] * 3 and epochs == [0, 1, 2]
    np.testing.assert_allclose(rates, [0.01 * (1 - t / 5) for t in range(5)])
    with pytest.raises(ValueError, match="cannot fill one batch"):
        classifier.fit(net, images[:100], labels[:100], 1, np.random.default_rng(0))


# ---- the labelled subset ----------------------------------------------------------------------


def test_the_subset_follows_the_largest_remainders_by_hand():
    labels = np.array([0, 1, 0, 2, 0, 1, 0, 0, 1, 0])  # six 0s, three 1s, one 2
    # n = 5: quotas 3, 1.5, 0.5; floors 3, 1, 0 leave one image, which goes to the larger
    # remainder, a tie of 0.5 and 0.5, broken towards digit 1
    idx = augment_arms.stratified_subset(labels, 5, np.random.default_rng(0), classes=3)
    assert np.bincount(labels[idx], minlength=3).tolist() == [3, 2, 0]
    assert len(set(idx.tolist())) == 5 and (np.diff(idx) > 0).all()


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist("train"), data.load_mnist("test")


@pytest.mark.parametrize("n", [10, 100, 1000, 59_999])
def test_the_subset_keeps_each_digits_share(mnist, n):
    labels = mnist[0][1]
    idx = augment_arms.stratified_subset(labels, n, np.random.default_rng(n))
    quota = n * np.bincount(labels) / len(labels)
    got = np.bincount(labels[idx], minlength=10)
    assert got.sum() == n and len(np.unique(idx)) == n
    assert ((got == np.floor(quota)) | (got == np.ceil(quota))).all()
    other = augment_arms.stratified_subset(labels, n, np.random.default_rng(n + 1))
    assert not np.array_equal(idx, other)  # the seed draws the images


def test_the_whole_set_is_every_image(mnist):
    labels = mnist[0][1]
    idx = augment_arms.stratified_subset(labels, len(labels), np.random.default_rng(0))
    np.testing.assert_array_equal(idx, np.arange(len(labels)))


# ---- GAN-test and the summary -------------------------------------------------------------------


def test_gan_test_against_a_brute_force_count(mnist):
    images, labels = mnist[1][0][:300], mnist[1][1][:300].astype(np.int64)
    asked = np.where(np.arange(300) % 3 == 0, (labels + 1) % 10, labels)  # a third asked wrong
    net = classifier.load_classifier()
    overall, per_digit = augment_arms.gan_test(net, images, asked)
    hits, times = [0] * 10, [0] * 10
    for i in range(300):  # one image at a time, counted in Python
        _, logits = classifier.features_and_logits(net, data.to_model_input(images[i:i + 1]))
        times[asked[i]] += 1
        hits[asked[i]] += int(np.argmax(logits[0]) == asked[i])
    assert overall == pytest.approx(sum(hits) / 300, abs=1e-12)
    np.testing.assert_allclose(per_digit, np.array(hits) / np.array(times), atol=1e-12)
    assert 0.55 < overall < 0.70  # the two thirds asked right, labelled right ~99% of the time


def test_mean_and_sd_by_hand():
    table, tests = augment_arms.summarise(
        [dict(arm="real", generator=None, n=10, seed=s, accuracy=a)
         for s, a in enumerate((0.5, 0.7, 0.9))],
        [dict(generator="g", n=10, seed=s, shipped=v, shipped_per_digit=[v] * 10, real_n=v / 2,
              real_n_per_digit=[v / 2] * 10) for s, v in enumerate((0.2, 0.4))])
    assert table[0]["mean"] == pytest.approx(0.7)
    assert table[0]["sd"] == pytest.approx(math.sqrt((0.04 + 0 + 0.04) / 2))  # n - 1 = 2
    assert tests[0]["shipped_mean"] == pytest.approx(0.3)
    assert tests[0]["shipped_sd"] == pytest.approx(math.sqrt(0.02))
    assert tests[0]["real_n_mean"] == pytest.approx(0.15)
    np.testing.assert_allclose(tests[0]["shipped_per_digit"], [0.3] * 10)
    np.testing.assert_allclose(tests[0]["real_n_per_digit"], [0.15] * 10)
    assert augment_arms.summarise([dict(arm="real", generator=None, n=10, seed=0,
                                        accuracy=0.5)], [])[0][0]["sd"] is None  # one seed


# ---- the harness ---------------------------------------------------------------------------------


SMALL = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32", "--d-hidden", "32",
         "--latent-dim", "16", "--log-every", "2", "--epochs", "1"]


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cond") / "run"
    train_mnist.main([*SMALL, "--conditional", "acgan", "--out", str(run)])
    return run


def copy_with(cond_run, folder, **changes):
    """A copy of the conditional run in folder, its config.json with these settings changed."""
    run = folder / "run"
    shutil.copytree(cond_run, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **changes}))
    return run


@pytest.fixture(scope="module")
def plain_run(cond_run, tmp_path_factory):
    """A run folder whose config.json says it is unconditional (checked before any weight)."""
    return copy_with(cond_run, tmp_path_factory.mktemp("plain"), conditional="")


@pytest.fixture(scope="module")
def text_limit_run(cond_run, tmp_path_factory):
    """A conditional run whose config.json says limit "64" (text): a TypeError in load_given."""
    return copy_with(cond_run, tmp_path_factory.mktemp("text_limit"), limit="64")


def test_one_seed_measures_every_arm_for_each_generator(mnist, cond_run, monkeypatch):
    opts = dict(steps=5, synthetic=50, mix=(0.5, 0.75), max_shift=2, max_rotation=10,
                train_generator="concat", gan_steps=3, widths=TINY_GAN)
    given, _ = augment.load_given([str(cond_run)], 60_000)
    calls, nets, fit = [], [], augment_arms.classifier_accuracy

    def recording(images, labels, seed, steps, test, augment=None):
        calls.append((len(images), np.asarray(labels), augment is not None))
        net, acc = fit(images, labels, seed, steps, test, augment)
        nets.append(net)
        return net, acc

    monkeypatch.setattr(augment_arms, "classifier_accuracy", recording)
    reference = classifier.load_classifier()
    rows, tests, trained = augment_arms.measure_seed(30, 1, opts, *mnist, given, reference,
                                                     log=lambda line: None)
    # real, augmented (the only one with augment), then per generator: synthetic (50 images),
    # mix 0.5 (30 real + 30 synthetic) and mix 0.75 (30 real + 90 synthetic)
    assert [(n, aug) for n, _, aug in calls] == [(30, False), (30, True)] + [
        (50, False), (60, False), (120, False)] * 2
    real_labels = calls[0][1]
    assert np.bincount(real_labels, minlength=10).tolist() == [3] * 10  # stratified
    for n, labels, _ in calls[2:]:
        synthetic = labels if n == 50 else labels[30:]
        assert synthetic.tolist() == (np.arange(len(synthetic)) % 10).tolist()  # asked in turn
        assert n == 50 or labels[:30].tolist() == real_labels.tolist()
    # the GAN-test's two classifiers: the shipped one, and the one trained on the N real images
    for t, (name, G, cfg) in zip(tests, [*given, *trained]):
        pixels, asked = augment_arms.draw_balanced(G, cfg, 50, 1)
        assert t["shipped"] == augment_arms.gan_test(reference, pixels, asked)[0]
        assert t["real_n"] == augment_arms.gan_test(nets[0], pixels, asked)[0]
    gens = [f"run {cond_run}", "trained on N (concat)"]
    assert [(r["arm"], r["generator"]) for r in rows] == [
        ("real", None), ("augmented", None),
        *[(arm, g) for g in gens for arm in ("synthetic", "mix 0.5", "mix 0.75")]]
    assert all(0 <= r["accuracy"] <= 1 and r["n"] == 30 and r["seed"] == 1 for r in rows)
    assert [t["generator"] for t in tests] == gens
    assert all(len(t["shipped_per_digit"]) == len(t["real_n_per_digit"]) == 10 for t in tests)
    assert [name for name, _, _ in trained] == ["trained on N (concat)"]


def test_the_generator_trains_and_draws_on_every_device(xp, mnist):
    images, labels = mnist[0][0][:40], mnist[0][1][:40]
    cfg = augment_arms.gan_config("projection", seed=2, widths=TINY_GAN)
    G = augment_arms.train_generator(images, labels, cfg, 2)
    pixels, asked = augment_arms.draw_balanced(G, cfg, 20, seed=0)
    assert pixels.shape == (20, 28, 28) and pixels.dtype == np.uint8
    assert isinstance(pixels, np.ndarray)  # on the host, whatever the device
    assert asked.tolist() == list(range(10)) * 2
    assert backend.xp is xp


# ---- the command ---------------------------------------------------------------------------------


def test_the_command_writes_its_files_and_json(cond_run, tmp_path):
    out = tmp_path / "aug"
    out.mkdir()  # an empty folder is a new one, as for every command (was refused: it existed)
    result = run_command(["-m", "minigan.augment", "--quick", "--generator", str(cond_run),
                          "--mix", "0.5,0.8", "--out", str(out), "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    saved = json.loads((out / "results.json").read_text())
    assert printed == saved
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy.png", "generator_N100.png", "results.json"]
    arms = {(c["arm"], c["generator"]) for c in saved["table"]}
    gens = [f"run {cond_run}", "trained on N (acgan)"]
    assert arms == {("real", None), ("augmented", None),
                    *((a, g) for g in gens for a in ("synthetic", "mix 0.5", "mix 0.8"))}
    assert all(c["n"] == 100 and len(c["accuracy"]) == 1 for c in saved["table"])
    assert sorted(saved["generators"]) == sorted(gens)
    assert "all 60,000" not in saved["generators"][gens[0]]  # it saw the first 192 images
    assert "the first 192" in saved["generators"][gens[0]]
    assert "test accuracy" in result.stdout and "GAN-test" in result.stdout


BAD = {  # flags, words the message must contain
    "N above the data": (["--n", "100,70000"], ["--n 100,70000", "70000", "60,000"]),
    "N below ten": (["--n", "5"], ["--n 5", "not allowed", "integer >= 10"]),
    "N not a number": (["--n", "100,lots"], ["--n 100,lots", "comma-separated"]),
    "N twice": (["--n", "100,100"], ["--n 100,100", "repeats"]),
    "mix of 0": (["--mix", "0"], ["--mix 0", "(0, 0.9]"]),
    "mix of 0.95": (["--mix", "0.5,0.95"], ["--mix 0.5,0.95", "0.95", "(0, 0.9]"]),
    "no seeds": (["--seeds", "0"], ["--seeds 0", "from 1 to 100"]),
    "a wide turn": (["--max-rotation", "90"], ["--max-rotation 90", "from 0 to 45"]),
    "a far shift": (["--max-shift", "5"], ["--max-shift 5", "from 0 to 4"]),
    "no classifier steps": (["--steps", "0"], ["--steps 0", "from 1"]),
    "an unconditional run": (["--generator", "{plain}"], ["--generator", "without "
                                                          "--conditional"]),
    # the folder named once: was "--generator X: X: no config.json there"
    "no run there": (["--generator", "{tmp}/nothing"],
                     ["error: --generator {tmp}/nothing: no config.json there"]),
    "a run twice": (["--generator", "{plain}", "--generator", "{plain}"],
                    ["--generator", "twice"]),
    # one folder, spelled two ways: the old check compared the text
    "a run and its folder/": (["--generator", "{plain}", "--generator", "{plain}/"],
                              ["/ names the folder of --generator", "the same run twice"]),
    "a run by another path": (["--generator", "{plain}", "--generator", "{plain}/../run"],
                              ["/../run names the folder of --generator", "the same run twice"]),
    "a setting of the run that is text": (["--generator", "{limit}"], [
        "--generator", "config.json: limit is 64, but it must be an integer >= 0", "damaged"]),
    "seeds not a number": (["--seeds", "abc"], ["--seeds abc: not allowed", "from 1 to 100"]),
    "a turn not a number": (["--max-rotation", "x"], ["--max-rotation x", "from 0 to 45"]),
    "a run as --out": (["--out", "{plain}"], ["--out", "holds a train_mnist.py run",
                                             "choose another --out"]),
    "a folder with files as --out": (["--out", "{plain}/samples"], [
        "--out", "samples already holds epoch_001.png", "new or empty folder"]),
    "an empty --out": (["--out", ""], ['--out ""', "empty path"]),  # not runs/augment-<time>
    "an empty --generator": (["--generator", ""], ['--generator ""', "empty path"]),
    "an unknown variant": (["--train-generator", "wgan"],
                           ["--train-generator wgan: not allowed; use one of concat, projection, "
                            "acgan, none"]),
}


@pytest.mark.parametrize("flags,needles", BAD.values(), ids=list(BAD))
def test_bad_flags_are_a_clean_error_that_writes_nothing(flags, needles, plain_run,
                                                         text_limit_run, tmp_path, capsys):
    flags = [f.replace("{tmp}", str(tmp_path)).replace("{plain}", str(plain_run))
             .replace("{limit}", str(text_limit_run)) for f in flags]
    out = [] if "--out" in flags else ["--out", str(tmp_path / "aug")]
    before = snapshot(tmp_path)
    result = call(augment.main, ["--quick", *out, *flags], capsys)
    assert_clean_error(result, "python -m minigan.augment: error:",
                       *(n.replace("{tmp}", str(tmp_path)) for n in needles))
    assert snapshot(tmp_path) == before and not (tmp_path / "aug").exists()


def test_a_bad_flag_in_a_real_shell(tmp_path):
    result = run_command(["-m", "minigan.augment", "--n", "60001", "--out", "a"], cwd=tmp_path)
    assert_clean_error(result, "--n 60001", "60,000")
    assert list(tmp_path.iterdir()) == []
