"""python -m minigan.sample --walk: spherical interpolation (slerp) checked by hand (its ends, its
norm, its angle stepping uniformly, its plane, the straight line where there is no arc), the noise
G is given along a walk, and the command on tiny runs: its files, and its bad flags (exit 2,
nothing written)."""

import numpy as np
import pytest
from PIL import Image

from clitest import assert_clean_error, call, run_command, snapshot
from minigan import backend
from minigan import sample as sample_cli
from recording_g import EYE, LATENT, RecordingG, noise


def on_device(*arrays):
    return [backend.to_device(a) for a in arrays]


def angle(u, v):
    """The angle between rows of u and v (N, D), by hand: atan2 of the part of v across u and
    the part along it (precise near 0, where arccos of a dot product is not)."""
    u_hat = u / np.linalg.norm(u, axis=1, keepdims=True)
    along = (v * u_hat).sum(axis=1)
    across = np.linalg.norm(v - along[:, None] * u_hat, axis=1)
    return np.arctan2(across, along)


def test_slerp_starts_and_ends_at_the_endpoints(xp):
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal((2, 3, 16)).astype(np.float32)
    path = backend.to_host(sample_cli.slerp(*on_device(z0, z1), np.linspace(0, 1, 5)))
    assert path.shape == (3, 5, 16) and path.dtype == np.float32
    np.testing.assert_array_equal(path[:, 0], z0)
    np.testing.assert_array_equal(path[:, -1], z1)


def test_slerp_keeps_the_norm_and_steps_the_angle_uniformly(xp):
    rng = np.random.default_rng(1)
    z0, z1 = rng.standard_normal((2, 4, 100))
    z1 *= np.linalg.norm(z0, axis=1, keepdims=True) / np.linalg.norm(z1, axis=1, keepdims=True)
    t = np.linspace(0, 1, 9)
    path = backend.to_host(sample_cli.slerp(*on_device(z0, z1), t))  # (4, 9, 100) float64
    omega = angle(z0, z1)  # (4,): about pi / 2 for random vectors in 100 dimensions
    for f in range(len(t)):
        np.testing.assert_allclose(np.linalg.norm(path[:, f], axis=1),
                                   np.linalg.norm(z0, axis=1), rtol=1e-12)
        np.testing.assert_allclose(angle(z0, path[:, f]), t[f] * omega, rtol=0, atol=1e-12)
        np.testing.assert_allclose(angle(path[:, f], z1), (1 - t[f]) * omega, rtol=0, atol=1e-12)
        # on the plane of z0 and z1: least squares in (z0, z1) leaves nothing over
        for r in range(4):
            basis = np.stack([z0[r], z1[r]], axis=1)  # (100, 2)
            coef = np.linalg.lstsq(basis, path[r, f], rcond=None)[0]
            np.testing.assert_allclose(basis @ coef, path[r, f], rtol=0, atol=1e-12)
    # Why not the straight line: its middle is shorter, by cos(omega / 2) (1/sqrt 2 at pi / 2)
    middle = np.linalg.norm((z0 + z1) / 2, axis=1) / np.linalg.norm(z0, axis=1)
    np.testing.assert_allclose(middle, np.cos(omega / 2), rtol=1e-12)


def test_slerp_of_parallel_endpoints_is_the_straight_line(xp):
    z0 = np.random.default_rng(2).standard_normal((2, 8))
    z1 = np.stack([3 * z0[0], z0[1]])  # row 0: the same direction, row 1: the same vector
    t = np.array([0, 0.25, 1])
    path = backend.to_host(sample_cli.slerp(*on_device(z0, z1), t))
    assert np.isfinite(path).all()
    for f, tf in enumerate(t):
        np.testing.assert_allclose(path[:, f], (1 - tf) * z0 + tf * z1, rtol=1e-12, atol=0)


def test_noise_walk_gives_g_the_arcs_between_interpolate_z_endpoints(xp):
    rows, frames = 3, 5
    G = RecordingG()
    pixels = sample_cli.noise_walk(G, rows, frames, LATENT, seed=4)
    z, y = G.inputs()
    assert pixels.shape == (rows, frames, 28, 28) and y is None
    z0, z1 = noise(4, rows, rows)  # the noise --interpolate-z draws with this seed
    z = z.reshape(rows, frames, LATENT)
    np.testing.assert_array_equal(z[:, 0], z0)
    np.testing.assert_array_equal(z[:, -1], z1)
    omega = angle(z0, z1)[:, None]  # (rows, 1); the formula by hand, in float64
    for f, tf in enumerate(np.linspace(0, 1, frames)):
        by_hand = (np.sin((1 - tf) * omega) * z0 + np.sin(tf * omega) * z1) / np.sin(omega)
        np.testing.assert_allclose(z[:, f], by_hand, rtol=0, atol=1e-5)  # G is given float32
    line = sample_cli.noise_interpolation(RecordingG(), rows, frames, LATENT, seed=4)
    np.testing.assert_array_equal(pixels[:, [0, -1]], line[:, [0, -1]])  # the same endpoints


def test_a_walk_of_every_digit_shares_one_arc(xp):
    G = RecordingG()
    pixels = sample_cli.noise_walk(G, 10, 4, LATENT, digits=range(10), same_noise=True, seed=6)
    z, y = G.inputs()
    z = z.reshape(10, 4, LATENT)
    np.testing.assert_array_equal(z, np.broadcast_to(z[:1], z.shape))  # every row the same arc
    z0, z1 = noise(6, 1, 1)
    np.testing.assert_array_equal(z[0, [0, -1]], np.concatenate([z0, z1]))
    np.testing.assert_array_equal(y, EYE[np.repeat(np.arange(10), 4)])  # row d asks for d
    np.testing.assert_array_equal(pixels.reshape(40, 28, 28),
                                  G.pixels(z.reshape(40, LATENT), y))


# ---- the command on tiny runs ---------------------------------------------------------------
# plain_run and cond_run: tiny runs trained once for this module (tests/conftest.py).


def cells(path, rows, frames):
    """The images of a grid PNG (rows, frames, 28, 28): 2-pixel gaps, enlarged twice."""
    grid = np.asarray(Image.open(path))[::2, ::2]
    assert grid.shape == (2 + 30 * rows, 2 + 30 * frames)
    return np.stack([[grid[2 + 30 * r:30 + 30 * r, 2 + 30 * f:30 + 30 * f]
                      for f in range(frames)] for r in range(rows)])


def test_the_command_writes_the_walk_as_a_grid_and_a_gif(plain_run, tmp_path, capsys):
    G, cfg = sample_cli.load_generator(plain_run)
    args = [str(plain_run), "--walk", "-n", "3", "--frames", "7", "--seed", "2"]
    assert sample_cli.main([*args, "--out", str(tmp_path / "walk.png")]) == 0
    assert sample_cli.main([*args, "--out", str(tmp_path / "walk.gif")]) == 0
    assert "3 rows of 7 frames" in capsys.readouterr().out
    expected = sample_cli.noise_walk(G, 3, 7, cfg.latent_dim, seed=2, dtype=cfg.dtype)
    np.testing.assert_array_equal(cells(tmp_path / "walk.png", 3, 7), expected)
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 7
    gif.seek(6)  # the last frame: the three rows' last images, in a 2 x 2 grid
    last = np.asarray(gif.convert("L"))[::2, ::2]
    np.testing.assert_array_equal(last[2:30, 32:60], expected[1, 6])


def test_a_conditional_walk_is_a_row_per_digit_or_one_digit(cond_run, tmp_path):
    G, cfg = sample_cli.load_generator(cond_run)
    assert sample_cli.main([str(cond_run), "--walk", "--frames", "4",
                            "--out", str(tmp_path / "digits.png")]) == 0
    expected = sample_cli.noise_walk(G, 10, 4, cfg.latent_dim, digits=range(10),
                                     same_noise=True, dtype=cfg.dtype)
    np.testing.assert_array_equal(cells(tmp_path / "digits.png", 10, 4), expected)
    assert sample_cli.main([str(cond_run), "--walk", "--digit", "3", "-n", "2", "--frames", "4",
                            "--out", str(tmp_path / "threes.png")]) == 0
    expected = sample_cli.noise_walk(G, 2, 4, cfg.latent_dim, digits=[3, 3], dtype=cfg.dtype)
    np.testing.assert_array_equal(cells(tmp_path / "threes.png", 2, 4), expected)


BAD = {  # (which run, flags, words the message must contain); {tmp}: the test's folder
    "--walk with --interpolate-z": ("plain", ["--walk", "--interpolate-z", "--out", "{tmp}/w.png"],
                                    ["--interpolate-z and --walk", "choose one"]),
    "--walk with --interpolate": ("cond", ["--walk", "--interpolate", "3", "8",
                                           "--out", "{tmp}/w.png"], ["--walk", "choose one"]),
    "--walk to .npy": ("plain", ["--walk", "--out", "{tmp}/w.npy"], ["w.npy", "ending in .png or .gif"]),
    "--walk --frames 1": ("plain", ["--walk", "--frames", "1", "--out", "{tmp}/w.png"],
                          ["--frames 1", "2 to 100"]),
    "--walk --frames 101": ("plain", ["--walk", "--frames", "101", "--out", "{tmp}/w.gif"],
                            ["--frames 101", "2 to 100"]),
    "--walk -n 0": ("plain", ["--walk", "-n", "0", "--out", "{tmp}/w.png"], ["-n 0", "1 to 100"]),
    "--walk -n 101": ("plain", ["--walk", "-n", "101", "--out", "{tmp}/w.png"],
                      ["-n 101", "1 to 100"]),
    "--walk --digit on a plain run": ("plain", ["--walk", "--digit", "3", "--out", "{tmp}/w.png"],
                                      ["--digit 3", "without --conditional"]),
    "--walk -n 5 without a digit": ("cond", ["--walk", "-n", "5", "--out", "{tmp}/w.png"],
                                    ["-n 5", "one row per digit", "--digit"]),
    "--walk --digit 10": ("cond", ["--walk", "--digit", "10", "--out", "{tmp}/w.png"],
                          ["--digit 10", "from 0 to 9"]),
    "--walk into a missing folder": ("plain", ["--walk", "--out", "{tmp}/nowhere/w.gif"],
                                     ["--out", "does not exist"]),
}


@pytest.mark.parametrize("which,flags,needles", BAD.values(), ids=list(BAD))
def test_bad_flags_are_a_clean_error_that_writes_nothing(which, flags, needles, request,
                                                         tmp_path, capsys):
    run = request.getfixturevalue(f"{which}_run")
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    before = snapshot(tmp_path)
    result = call(sample_cli.main, [str(run), *flags], capsys)
    assert_clean_error(result, "python -m minigan.sample: error:", *needles)
    assert snapshot(tmp_path) == before


def test_a_bad_walk_in_a_real_terminal(plain_run, tmp_path):
    result = run_command(["-m", "minigan.sample", str(plain_run), "--walk", "--frames", "0",
                          "--out", "w.gif"], cwd=tmp_path)
    assert_clean_error(result, "--frames 0", "2 to 100")
    assert snapshot(tmp_path) == {}
