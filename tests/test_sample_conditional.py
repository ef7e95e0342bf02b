"""minigan.sample for a conditional run (lessons/16_conditional_gans.md): which noise and which
label vectors reach G for a digit-per-row grid, a label interpolation and a noise interpolation,
checked against the noise drawn again by hand from the device's generator; the command's bad
flags (exit 2, nothing written); and end to end on a tiny conditional run."""

import numpy as np
import pytest
from PIL import Image

from clitest import assert_clean_error, call, run_command, snapshot
from minigan import sample as sample_cli
from recording_g import EYE, LATENT, RecordingG, noise


def test_digit_rows_share_one_noise_per_column(xp):
    G = RecordingG()
    pixels = sample_cli.digit_rows(G, 30, LATENT, seed=3)
    z, y = G.inputs()
    (z_ref,) = noise(3, 3)
    labels = np.repeat(np.arange(10), 3)
    np.testing.assert_array_equal(y, EYE[labels])  # row d of the grid asks for digit d
    np.testing.assert_array_equal(z, np.tile(z_ref, (10, 1)))  # column k: one z for every digit
    np.testing.assert_array_equal(pixels, G.pixels(np.tile(z_ref, (10, 1)), EYE[labels]))


def test_generate_asks_for_each_label_across_chunks(xp):
    labels = np.random.default_rng(1).integers(0, 10, 25)
    G = RecordingG()
    pixels = sample_cli.generate(G, 25, LATENT, seed=5, labels=labels, chunk=7)
    z, y = G.inputs()
    (z_ref,) = noise(5, 25)  # the same noise as an unconditional run's, whatever the chunks
    np.testing.assert_array_equal(z, z_ref)
    np.testing.assert_array_equal(y, EYE[labels])
    np.testing.assert_array_equal(pixels, G.pixels(z_ref, EYE[labels]))


def test_label_interpolation_keeps_z_and_mixes_two_one_hots(xp):
    rows, frames, a, b = 3, 5, 3, 8
    G = RecordingG()
    pixels = sample_cli.label_interpolation(G, rows, frames, LATENT, a, b, seed=2)
    assert pixels.shape == (rows, frames, 28, 28)
    z, y = G.inputs()
    (z_ref,) = noise(2, rows)
    t = np.arange(frames) / (frames - 1)  # 0, 1/4, ..., 1
    y_ref = np.tile((1 - t)[:, None] * EYE[a] + t[:, None] * EYE[b], (rows, 1))
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-7)  # float32 mixtures
    np.testing.assert_array_equal(y.reshape(rows, frames, 10)[:, 0], EYE[[a] * rows])  # exact ends
    np.testing.assert_array_equal(y.reshape(rows, frames, 10)[:, -1], EYE[[b] * rows])
    np.testing.assert_array_equal(z, np.repeat(z_ref, frames, axis=0))  # z_r in all its frames
    # the first frame is the digit a itself, with the noise --digit a would draw with this seed
    np.testing.assert_array_equal(
        pixels[:, 0], sample_cli.generate(RecordingG(), rows, LATENT, seed=2, labels=[a] * rows))


@pytest.mark.parametrize("digit", [None, 6])
def test_noise_interpolation_walks_a_straight_line(xp, digit):
    rows, frames = 2, 4
    G = RecordingG()
    pixels = sample_cli.noise_interpolation(G, rows, frames, LATENT, digit=digit, seed=9)
    assert pixels.shape == (rows, frames, 28, 28)
    z, y = G.inputs()
    z0, z1 = noise(9, rows, rows)  # two draws in turn from one generator
    z = z.reshape(rows, frames, LATENT)
    np.testing.assert_array_equal(z[:, 0], z0)
    np.testing.assert_array_equal(z[:, -1], z1)
    for f, t in enumerate(np.arange(frames) / (frames - 1)):
        np.testing.assert_allclose(z[:, f], (1 - t) * z0 + t * z1, rtol=0, atol=1e-6)
    if digit is None:
        assert y is None  # an unconditional G is called with z only
    else:
        np.testing.assert_array_equal(y, EYE[[digit] * rows * frames])


# ---- the command on runs that do not fit the flags --------------------------------------------
# plain_run and cond_run: tiny runs trained once for this module (tests/conftest.py).

# (which run, flags, words the message must contain): each names the flag, the value and what
# to do. {tmp} is the test's folder, where nothing may appear.
BAD = {
    "--digit 12": ("cond", ["--digit", "12"], ["--digit 12", "from 0 to 9"]),
    "--digit -1": ("cond", ["--digit", "-1"], ["--digit -1", "from 0 to 9"]),
    "--digit on a plain run": ("plain", ["--digit", "7"],
                               ["--digit 7", "without --conditional", "drop"]),
    "--interpolate on a plain run": ("plain", ["--interpolate", "3", "8", "--out", "{tmp}/m.gif"],
                                     ["--interpolate", "without --conditional"]),
    "--interpolate-z --digit on a plain run": (
        "plain", ["--interpolate-z", "--digit", "3", "--out", "{tmp}/m.gif"],
        ["--digit 3", "without --conditional"]),
    "--interpolate 3 10": ("cond", ["--interpolate", "3", "10", "--out", "{tmp}/m.gif"],
                           ["--interpolate 10", "from 0 to 9"]),
    "--interpolate 3 3": ("cond", ["--interpolate", "3", "3", "--out", "{tmp}/m.gif"],
                          ["--interpolate 3 3", "two different digits"]),
    "--interpolate with --digit": (
        "cond", ["--interpolate", "3", "8", "--digit", "3", "--out", "{tmp}/m.gif"],
        ["--digit 3", "--interpolate", "drop --digit"]),
    "both interpolations": (
        "cond", ["--interpolate", "3", "8", "--interpolate-z", "--out", "{tmp}/m.gif"],
        ["--interpolate-z", "choose one"]),
    "--interpolate-z without --digit": ("cond", ["--interpolate-z", "--out", "{tmp}/m.gif"],
                                        ["--interpolate-z", "--digit"]),
    "interpolation to .npy": ("cond", ["--interpolate", "3", "8", "--out", "{tmp}/m.npy"],
                              ["--out", "m.npy", "ending in .png or .gif"]),
    "interpolation -n 101": ("cond", ["--interpolate", "3", "8", "-n", "101",
                                      "--out", "{tmp}/m.png"], ["-n 101", "rows", "1 to 100"]),
    "--frames 1": ("cond", ["--interpolate", "3", "8", "--frames", "1", "--out", "{tmp}/m.png"],
                   ["--frames 1", "2 to 100"]),
    "--frames without interpolation": ("cond", ["--frames", "5"],
                                       ["--frames 5", "--interpolate"]),
    "a .gif without interpolation": ("cond", ["--out", "{tmp}/m.gif"], ["--out", "ending in .npy or .png"]),
    "-n 64 per digit row": ("cond", ["-n", "64"], ["-n 64", "multiple of 10", "--digit"]),
    "interpolation into a missing folder": (
        "cond", ["--interpolate", "3", "8", "--out", "{tmp}/nowhere/m.gif"],
        ["--out", "does not exist"]),
}


@pytest.mark.parametrize("which,flags,needles", BAD.values(), ids=list(BAD))
def test_bad_flags_are_a_clean_error_that_writes_nothing(which, flags, needles, request,
                                                         tmp_path, capsys):
    run = request.getfixturevalue(f"{which}_run")
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    out = [] if "--out" in flags else ["--out", str(tmp_path / "s.png")]
    before = snapshot(tmp_path)
    result = call(sample_cli.main, [str(run), *out, *flags], capsys)
    assert_clean_error(result, "python -m minigan.sample: error:", *needles)
    assert snapshot(tmp_path) == before


def test_a_bad_digit_in_a_real_terminal(cond_run, tmp_path):
    result = run_command(["-m", "minigan.sample", str(cond_run), "--digit", "10", "--out",
                          "s.png"], cwd=tmp_path)
    assert_clean_error(result, "--digit 10", "from 0 to 9")
    assert snapshot(tmp_path) == {}


# ---- end to end on a tiny conditional run -----------------------------------------------------


def test_the_command_draws_what_the_functions_draw(cond_run, tmp_path):
    G, cfg = sample_cli.load_generator(cond_run)
    assert cfg.conditional == "concat"
    assert sample_cli.main([str(cond_run), "--digit", "7", "-n", "12", "--out",
                            str(tmp_path / "sevens.npy"), "--seed", "4"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "sevens.npy"),
                                  sample_cli.generate(G, 12, cfg.latent_dim, 4, cfg.dtype,
                                                      labels=[7] * 12))
    assert sample_cli.main([str(cond_run), "--out", str(tmp_path / "rows.npy")]) == 0
    rows = np.load(tmp_path / "rows.npy")  # default: 100 images, ten of each digit
    np.testing.assert_array_equal(rows, sample_cli.digit_rows(G, 100, cfg.latent_dim))
    # the digit-per-row grid: 10 rows of 10 images of 28 pixels with 2-pixel gaps, doubled
    assert sample_cli.main([str(cond_run), "--out", str(tmp_path / "rows.png")]) == 0
    assert Image.open(tmp_path / "rows.png").size == (2 * 302, 2 * 302)


def test_interpolations_as_a_strip_and_as_an_animation(cond_run, tmp_path):
    G, cfg = sample_cli.load_generator(cond_run)
    args = [str(cond_run), "--interpolate", "3", "8", "-n", "4", "--frames", "6"]
    assert sample_cli.main([*args, "--out", str(tmp_path / "morph.png")]) == 0
    assert sample_cli.main([*args, "--out", str(tmp_path / "morph.gif")]) == 0
    expected = sample_cli.label_interpolation(G, 4, 6, cfg.latent_dim, 3, 8, dtype=cfg.dtype)
    strip = np.asarray(Image.open(tmp_path / "morph.png"))[::2, ::2]  # undo the enlargement
    for r in range(4):  # row r, frame f sits at (2 + 30 r, 2 + 30 f)
        for f in range(6):
            cell = strip[2 + 30 * r:30 + 30 * r, 2 + 30 * f:30 + 30 * f]
            np.testing.assert_array_equal(cell, expected[r, f])
    gif = Image.open(tmp_path / "morph.gif")
    assert gif.n_frames == 6
    gif.seek(5)  # the last frame: the four rows' 8s, in a 2 x 2 grid
    last = np.asarray(gif.convert("L"))[::2, ::2]
    np.testing.assert_array_equal(last[2:30, 32:60], expected[1, 5])
    assert sample_cli.main([str(cond_run), "--interpolate-z", "--digit", "3", "--out",
                            str(tmp_path / "walk.png")]) == 0
    assert Image.open(tmp_path / "walk.png").size == (2 * (10 * 30 + 2), 2 * (10 * 30 + 2))
