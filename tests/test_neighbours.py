"""minigan.neighbours and python -m minigan.evaluate --neighbours: the chunked nearest-neighbour
search against a brute-force search by direct differences (float features, integer pixels with
ties), the summary on hand-worked numbers, the memorisation number on known cases (exact copies of
training images, held-out test images, half of each), the picture's layout, and the command's
files, JSON and bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from clitest import assert_clean_error, call, snapshot
from minigan import data, evaluate, neighbours


def brute_force(queries, refs, k):
    """The k nearest rows by direct differences, sum((q - r)^2), and a stable sort: on a tie,
    the lower index first. Returns squared distances (M, k) and indices (M, k)."""
    q, r = np.asarray(queries, np.float64), np.asarray(refs, np.float64)
    d = ((q[:, None, :] - r[None, :, :]) ** 2).sum(axis=2)  # (M, N)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, axis=1), order


# ---- the search against brute force ----------------------------------------------------------


@pytest.mark.parametrize("k", [1, 4])
def test_nearest_matches_brute_force_on_float_features(k):
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((57, 7)).astype(np.float32)
    refs = rng.standard_normal((203, 7)).astype(np.float32)
    # chunks that divide neither 57 nor 203: the last block of each is short
    d, i = neighbours.nearest(queries, refs, k, chunk=10, query_chunk=9)
    d_ref, i_ref = brute_force(queries, refs, k)
    np.testing.assert_array_equal(i, i_ref)
    # |a|^2 - 2 a.b + |b|^2 in float64 loses ~1e-16 of |a|^2 (about 7 here) to cancellation
    np.testing.assert_allclose(d, d_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_nearest_on_integer_pixels_is_exact_and_breaks_ties_to_the_lower_index(k):
    """Pixels 0 or 255 in 6 places: many refs lie at the same distance, so ties are the rule,
    and every distance is an exact integer in float64."""
    rng = np.random.default_rng(1)
    refs = 255 * rng.integers(0, 2, (150, 6)).astype(np.uint8)
    queries = 255 * rng.integers(0, 2, (40, 6)).astype(np.uint8)
    d, i = neighbours.nearest(queries, refs, k, chunk=16, query_chunk=7)
    d_ref, i_ref = brute_force(queries, refs, k)
    np.testing.assert_array_equal(d, d_ref)
    np.testing.assert_array_equal(i, i_ref)
    assert (np.diff(d, axis=1) >= 0).all()


def test_copies_in_different_chunks_come_back_in_index_order():
    refs = np.random.default_rng(2).integers(0, 256, (100, 784)).astype(np.uint8)
    refs[[5, 17, 90]] = refs[40]  # four equal images, in four different chunks of 25
    d, i = neighbours.nearest(refs[[40]], refs, k=5, chunk=25)
    assert list(i[0, :4]) == [5, 17, 40, 90] and list(d[0, :4]) == [0, 0, 0, 0]
    assert d[0, 4] > 0


def test_smallest_by_hand():
    d = np.array([[3.0, 1.0, 2.0, 1.0, 1.0],
                  [5.0, 4.0, 4.0, 0.0, 9.0]])
    idx = np.array([[10, 11, 12, 13, 14], [9, 8, 7, 6, 5]])
    values, chosen = neighbours.smallest(d, idx, 2)
    np.testing.assert_array_equal(values, [[1, 1], [0, 4]])
    # row 0: three 1s tie, the two lowest indices win; row 1: 4 at indices 8 and 7 tie -> 7
    np.testing.assert_array_equal(chosen, [[11, 13], [6, 7]])


def test_nearest_refuses_more_neighbours_than_references():
    with pytest.raises(ValueError, match="k=4"):
        neighbours.nearest(np.zeros((2, 3)), np.zeros((3, 3)), k=4)


# ---- the memorisation number ----------------------------------------------------------------


def test_distance_summary_by_hand():
    """Test distances 1, 2, ..., 100: the 1% quantile (linear between order statistics) is
    1 + 0.01 * 99 = 1.99, and exactly one test image (1) lies below it."""
    summary = neighbours.distance_summary(np.array([0.0, 0.0, 1.5, 50.0]), np.arange(1.0, 101))
    assert summary["test_q01"] == pytest.approx(1.99, abs=1e-12)
    assert summary["samples"]["copy_share"] == 0.75 and summary["samples"]["exact_copies"] == 2
    assert summary["test"]["copy_share"] == 0.01 and summary["test"]["exact_copies"] == 0
    assert summary["test"]["q50"] == pytest.approx(50.5, abs=1e-12)
    assert summary["samples"]["q50"] == pytest.approx(0.75, abs=1e-12)


def test_memorisation_units_by_hand():
    """Distances, not squared ones, in pixel units of [0, 1]: a sample two full-scale pixels off
    a training image is sqrt(2) from it, a test image one pixel off is 1; the feature rows
    (3, 4) and (0, 1) are 5 and 1 from (0, 0). A sample exactly at the test images' 1st
    percentile is not below it, so not a copy."""
    train = np.zeros((2, 28, 28), dtype=np.uint8)
    train[1] = 255  # far from everything here
    samples = np.zeros((2, 28, 28), dtype=np.uint8)
    samples[0, 0, :2] = 255  # two pixels off train[0]
    samples[1, 5, 5] = 255  # one pixel off: the test image's distance
    test = np.zeros((1, 28, 28), dtype=np.uint8)
    test[0, 27, 27] = 255
    train_feats = np.array([[0.0, 0.0], [100.0, 100.0]])
    result, near = neighbours.memorisation(samples, np.array([[3.0, 4.0], [0.0, 1.0]]), train,
                                           train_feats, test, np.array([[0.0, 1.0]]), k=1)
    pixel, feature = result["pixel"], result["feature"]
    assert pixel["test"]["q50"] == pytest.approx(1.0, abs=1e-12)
    assert pixel["samples"]["q50"] == pytest.approx((np.sqrt(2) + 1) / 2, abs=1e-12)
    assert feature["samples"]["q50"] == pytest.approx(3.0, abs=1e-12)  # (5 + 1) / 2
    assert pixel["test_q01"] == 1.0 and pixel["samples"]["copy_share"] == 0.0
    assert feature["samples"]["copy_share"] == 0.0 and feature["samples"]["exact_copies"] == 0
    assert near["pixel"].tolist() == [[0], [0]] and near["feature"].tolist() == [[0], [0]]


@pytest.fixture(scope="module")
def mnist():
    train, _ = data.load_mnist("train")
    test, _ = data.load_mnist("test")
    return train, test


@pytest.fixture(scope="module")
def ref():
    return evaluate.reference()  # the shipped classifier's features of every MNIST image


def check(samples, sample_feats, mnist, ref, yardstick):
    train, test = mnist
    return neighbours.memorisation(samples, sample_feats, train, ref.train_feats,
                                   test[yardstick], ref.test_feats[yardstick])[0]


def test_copies_of_training_images_are_caught_and_held_out_images_are_not(mnist, ref):
    train, test = mnist
    yardstick = np.arange(100)  # the test images that set the scale
    copied = np.random.default_rng(3).choice(len(train), 50, replace=False)
    result = check(train[copied], ref.train_feats[copied], mnist, ref, yardstick)
    for space in ("pixel", "feature"):
        assert result[space]["samples"]["copy_share"] == 1.0
        assert result[space]["samples"]["q50"] < 1e-3  # 0 up to the rounding of features
    assert result["pixel"]["samples"]["exact_copies"] == 50
    assert result["pixel"]["samples"]["q50"] == 0.0
    # Held-out test images, not the yardstick's: fresh draws, as an honest G's samples would be.
    # The same images every run, so these bounds are fixed numbers, not chances.
    held_out = np.arange(5000, 5100)
    result = check(test[held_out], ref.test_feats[held_out], mnist, ref, yardstick)
    for space in ("pixel", "feature"):
        s, t = result[space]["samples"], result[space]["test"]
        assert s["copy_share"] <= 0.05
        assert 0.8 < s["q50"] / t["q50"] < 1.25
    assert result["pixel"]["samples"]["exact_copies"] == 0
    # half copies, half held out: the share is one half, up to the held-out images' few
    mixed = check(np.concatenate([train[copied[:20]], test[held_out[:20]]]),
                  np.concatenate([ref.train_feats[copied[:20]], ref.test_feats[held_out[:20]]]),
                  mnist, ref, yardstick)
    assert 0.5 <= mixed["pixel"]["samples"]["copy_share"] <= 0.55
    assert mixed["pixel"]["samples"]["exact_copies"] == 20


def test_figure_cells_by_hand():
    """Image i is filled with the value i, so each cell says which image it holds."""
    samples = np.repeat(np.arange(200, 203, dtype=np.uint8), 784).reshape(3, 28, 28)
    train = np.repeat(np.arange(100, dtype=np.uint8), 784).reshape(100, 28, 28)
    nearest = {"pixel": np.array([[1, 2], [3, 4], [5, 6]]),
               "feature": np.array([[7, 8], [9, 10], [11, 12]])}
    cells = neighbours.figure_cells(samples, train, nearest, rows=2)
    assert cells.shape == (2 * 7, 28, 28)
    np.testing.assert_array_equal(cells[:, 0, 0], [200, 0, 1, 2, 0, 7, 8, 201, 0, 3, 4, 0, 9, 10])


# ---- the command ---------------------------------------------------------------------------
# plain_run: a tiny run trained once for this module (tests/conftest.py).


def cell(picture, r, c, scale=2):
    """The 28 x 28 image at row r, column c of a grid enlarged scale times (2-pixel gaps)."""
    top, left = (2 + 30 * r) * scale, (2 + 30 * c) * scale
    return picture[top:top + 28 * scale:scale, left:left + 28 * scale:scale]


def test_the_command_writes_the_picture_and_the_numbers(plain_run, mnist, ref, tmp_path, capsys):
    from minigan.sample import generate, load_generator

    grid = tmp_path / "nn.png"
    assert evaluate.main([str(plain_run), "-n", "40", "--neighbours", "--neighbours-n", "20",
                          "--neighbours-grid", str(grid), "--json"]) == 0
    out = capsys.readouterr().out
    scores = json.loads(out.strip().splitlines()[-1])
    found = scores["neighbours"]
    assert found["n"] == found["n_test"] == 20
    assert found["pixel"]["samples"]["exact_copies"] == 0  # an epoch of training copies nothing
    assert "copy share, pixels" in out and f"wrote {grid}" in out
    assert json.loads((plain_run / "eval.json").read_text())["neighbours"] == found
    # The picture: row r is sample r, then its nearest training images by brute force.
    G, cfg = load_generator(plain_run)
    samples = generate(G, 3, cfg.latent_dim, 0, cfg.dtype)
    picture = np.asarray(Image.open(grid))
    assert picture.shape == (2 * (10 * 30 + 2), 2 * (13 * 30 + 2))
    train = mnist[0].reshape(60000, 784).astype(np.int32)  # 255^2 * 784 < 2^31
    for r in range(3):
        np.testing.assert_array_equal(cell(picture, r, 0), samples[r])
        d = ((train - samples[r].reshape(784)) ** 2).sum(axis=1)  # direct differences
        order = np.argsort(d, kind="stable")[:neighbours.FIGURE_K]
        for c, index in enumerate(order):
            np.testing.assert_array_equal(cell(picture, r, 2 + c), mnist[0][index])


def test_copied_training_images_in_a_npy(mnist, ref, tmp_path, capsys):
    np.save(tmp_path / "copies.npy", mnist[0][1000:1030])
    assert evaluate.main([str(tmp_path / "copies.npy"), "--neighbours", "--json"]) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["neighbours"]
    assert found["n"] == 30  # all 30 images: fewer than the default 1,000
    assert found["pixel"]["samples"]["copy_share"] == 1.0
    assert found["pixel"]["samples"]["exact_copies"] == 30
    assert found["feature"]["samples"]["copy_share"] == 1.0
    assert (tmp_path / "neighbours.png").exists()  # next to the input, as eval.json


def test_without_the_flag_nothing_changes(plain_run, ref, tmp_path, capsys):
    assert evaluate.main([str(plain_run), "-n", "40", "--json"]) == 0
    out = capsys.readouterr().out
    assert "neighbours" not in json.loads(out.strip().splitlines()[-1])
    assert "copy share" not in out and not (plain_run / "neighbours.png").exists()


def write_npy(name, count):
    def make(folder):
        np.save(folder / name, np.zeros((count, 28, 28), np.uint8))
        return [name]
    return make


BAD = [  # (what, make the arguments in a folder, words the message must contain)
    ("grid not png", lambda d: ["x", "--neighbours", "--neighbours-grid", "nn.jpg"],
     ["--neighbours-grid", "nn.jpg", ".png"]),
    ("grid a folder", lambda d: (d / "nn.png").mkdir() or
     ["x", "--neighbours", "--neighbours-grid", "nn.png"], ["--neighbours-grid", "is a folder"]),
    ("grid folder missing", lambda d: ["x", "--neighbours", "--neighbours-grid", "no/nn.png"],
     ["--neighbours-grid", "does not exist"]),
    ("grid without the check", lambda d: ["x", "--neighbours-grid", "nn.png"],
     ["--neighbours-grid", "add --neighbours"]),
    ("-n without the check", lambda d: ["x", "--neighbours-n", "50"],
     ["--neighbours-n 50", "add --neighbours"]),
    ("zero samples", lambda d: ["x", "--neighbours", "--neighbours-n", "0"],
     ["--neighbours-n 0", "1 to 10,000"]),
    ("more than the test set", lambda d: ["x", "--neighbours", "--neighbours-n", "20000"],
     ["--neighbours-n 20000", "1 to 10,000"]),
    ("more than the .npy", lambda d: write_npy("s.npy", 30)(d) + ["--neighbours",
                                                                   "--neighbours-n", "50"],
     ["--neighbours-n 50", "30 images", "at most 30"]),
    ("with training", lambda d: ["--train-classifier", "--neighbours"],
     ["--neighbours:", "does not go with --train-classifier: drop it"]),
]


@pytest.mark.parametrize("what,make,needles", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_clean_error(tmp_path, monkeypatch, capsys, what, make, needles):
    """In this process for speed (evaluate.cli, what python -m minigan.evaluate runs); a case of
    tests/test_evaluate.py's test_bad_input_is_a_clean_error runs the real command line."""
    args = make(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    result = call(evaluate.cli, args, capsys)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before, "a failed command wrote or changed files"
