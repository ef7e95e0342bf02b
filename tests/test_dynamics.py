"""The dynamics lab (minigan/dynamics.py, minigan/dynamics_games.py) against the closed forms of
lessons/15_games_and_equilibria.md, each derived there by hand:

- xy: simultaneous steps multiply |z| by sqrt(1 + lr^2); alternating ones keep
  Q = x^2 - lr x y + y^2; the averaged alternating iterate goes to 0;
- the Dirac-GAN: the field is the game's gradient (sigmoids and penalties written out), its
  Jacobian at (0, 0) is [[0, a], [-a, -gamma]] (a = 1/2 for the GAN, 1 for WGAN), the step
  matrices are I + lr J and the alternating product, and the runs do what theory says;
- the command: its files, its JSON, and every bad flag a clean error that writes nothing.
"""

import json
import math

import numpy as np
import pytest

from clitest import assert_clean_error, call, run_command, snapshot
from minigan import dynamics, gan, optim
from minigan import dynamics_games as dg


def sig(t):
    return 1 / (1 + np.exp(-t))


# ---- the bilinear game ---------------------------------------------------------------------


def test_simultaneous_steps_on_xy_grow_the_norm_by_sqrt_1_plus_lr_squared():
    for lr in (0.05, 0.3, 0.9):
        path = dg.run(dg.Bilinear(), (0.3, -1.2), lr, 60, "simultaneous")
        norms = np.hypot(*path.T)
        np.testing.assert_allclose(norms[1:] / norms[:-1], np.sqrt(1 + lr ** 2), rtol=1e-13)


def test_alternating_steps_on_xy_keep_x2_minus_lr_xy_plus_y2():
    lr = 0.3
    path = dg.run(dg.Bilinear(), (0.3, -1.2), lr, 2000, "alternating")
    x, y = path.T
    Q = x * x - lr * x * y + y * y
    np.testing.assert_allclose(Q, Q[0], rtol=1e-12)
    # Q >= (1 - lr / 2) |z|^2, so |z| stays within sqrt(Q / (1 - lr / 2)) for ever
    assert np.hypot(x, y).max() <= np.sqrt(Q[0] / (1 - lr / 2)) + 1e-12
    assert np.hypot(x, y).max() > 1.05 * np.hypot(x, y).min()  # an ellipse, not a circle


def test_step_matrices_of_xy_are_the_lessons():
    lr = 0.4
    game = dg.Bilinear()
    simultaneous = np.array([[1, -lr], [lr, 1]])
    alternating = np.array([[1, -lr], [lr, 1 - lr ** 2]])  # y answers the new x
    np.testing.assert_allclose(dg.step_matrix(game, lr, "simultaneous"), simultaneous, atol=1e-10)
    np.testing.assert_allclose(dg.step_matrix(game, lr, "alternating"), alternating, atol=1e-10)
    assert abs(dg.spectral_radius(simultaneous) - np.sqrt(1 + lr ** 2)) < 1e-12
    assert abs(dg.spectral_radius(alternating) - 1) < 1e-12  # det 1, complex pair: |eig| = 1


def test_averaged_iterate_is_lesson_13s_ema_and_approaches_zero():
    lr, decay = 0.1, 0.999
    path = dg.run(dg.Bilinear(), (1.0, 1.0), lr, 3000, "alternating")
    avg = dg.averaged(path, decay)
    by_hand, a = [path[0]], path[0].copy()  # EMA's rule with its warm-up, written out
    for t, z in enumerate(path[1:]):
        d = min(decay, (1 + t) / (10 + t))
        a = d * a + (1 - d) * z
        by_hand.append(a)
    np.testing.assert_allclose(avg, np.array(by_hand), rtol=1e-12, atol=1e-15)
    norm = np.hypot(*avg.T)
    assert norm[3000] < 0.05 * np.hypot(*path[3000]) and norm[3000] < 0.6 * norm[1000]
    grown = dg.averaged(dg.run(dg.Bilinear(), (1.0, 1.0), lr, 3000, "simultaneous"), decay)
    assert np.hypot(*grown[-1]) > 100  # averaging does not save simultaneous steps


# ---- the Dirac-GAN -------------------------------------------------------------------------


def closed_form_field(method, theta, psi, gamma=1.0, lam=1.0):
    """The lesson's fields: v = (-dL_G/dtheta, -dL_D/dpsi) with D(x) = psi x, data at 0."""
    t = theta * psi
    if method in ("gan", "nsgan", "r1"):
        # D: softplus(-D(0)) + softplus(D(theta)), dL_D/dpsi = sigmoid(t) theta
        v_psi = -sig(t) * theta - (gamma * psi if method == "r1" else 0)
        # G: -softplus(t) (minimax) or softplus(-t) (non-saturating)
        v_theta = sig(t) * psi if method == "gan" else sig(-t) * psi
        return np.array([v_theta, v_psi])
    v_psi = -theta  # D: D(theta) - D(0) = t; G: -t
    if method == "wgan-gp":  # + lam (|psi| - 1)^2
        v_psi -= 2 * lam * (abs(psi) - 1) * np.sign(psi)
    return np.array([psi, v_psi])


@pytest.mark.parametrize("method", dg.METHODS)
def test_dirac_field_is_the_games_gradient(method):
    game = dg.DiracGAN(method, gamma=0.7, gp=1.3)
    rng = np.random.default_rng(0)
    for theta, psi in rng.uniform(-3, 3, (20, 2)):
        np.testing.assert_allclose(game.field((theta, psi)),
                                   closed_form_field(method, theta, psi, 0.7, 1.3),
                                   rtol=1e-12, atol=1e-14)


def test_dirac_field_runs_on_every_array_module(xp):
    """The networks, losses and penalties on the device; the field comes back to the host."""
    for method in ("nsgan", "r1", "wgan-gp"):
        v = dg.DiracGAN(method).field((0.8, -0.4))
        assert type(v) is np.ndarray
        np.testing.assert_allclose(v, closed_form_field(method, 0.8, -0.4), rtol=1e-12)


def test_alternating_run_is_minigans_own_training_step():
    """D first, then G at D's new psi: what gan.critic_step and gan.generator_step do with SGD."""
    lr = 0.2
    for method, options in (("nsgan", {}), ("r1", {"r1": 1.0}), ("wgan-clip", {"clip": 0.5})):
        game = dg.DiracGAN(method)
        G, D = game.G, game.D
        G[0].params["W"][...], D[0].params["W"][...] = 1.0, 1.0
        opt_G, opt_D = optim.SGD([G.parameters()[0]], lr), optim.SGD([D.parameters()[0]], lr)
        d_loss, g_loss, _ = dg.METHODS[method]
        trained = [(1.0, 1.0)]
        for _ in range(50):
            gan.critic_step(G, D, opt_D, game.real, game.z, game.rng, d_loss, **options)
            gan.generator_step(G, D, opt_G, game.z, g_loss)
            trained.append((G[0].params["W"][0, 0], D[0].params["W"][0, 0]))
        path = dg.run(dg.DiracGAN(method), (1.0, 1.0), lr, 50, "alternating")
        np.testing.assert_allclose(path, np.array(trained), rtol=1e-12, atol=1e-15)


def jacobian_at_0(a, gamma=0.0):
    return np.array([[0.0, a], [-a, -gamma]])


JACOBIANS = {  # the lesson's closed forms: a = f'(0) (sigmoid(0) = 1/2 for the GAN, 1 for WGAN)
    "gan": jacobian_at_0(0.5), "nsgan": jacobian_at_0(0.5), "wgan": jacobian_at_0(1.0),
    "wgan-clip": jacobian_at_0(1.0), "r1": jacobian_at_0(0.5, 1.0),
}


@pytest.mark.parametrize("method", JACOBIANS)
def test_jacobian_at_the_equilibrium_is_the_closed_form(method):
    game = dg.DiracGAN(method)
    assert dg.differentiable(game.field, (0.0, 0.0))
    np.testing.assert_allclose(dg.jacobian(game.field, (0.0, 0.0)), JACOBIANS[method],
                               atol=1e-9)


@pytest.mark.parametrize("gamma", [0.3, 0.8, 2.0, 5.0])
def test_r1_eigenvalues_are_the_roots_of_l2_plus_gamma_l_plus_a_quarter(gamma):
    report = dynamics.equilibrium_report(dg.DiracGAN("r1", gamma=gamma), 0.1, "simultaneous")
    by = lambda e: (e.real, e.imag)
    numeric = sorted((complex(re, im) for re, im in report["eigenvalues"]), key=by)
    root = np.sqrt(complex(gamma ** 2 - 1))  # (-gamma +- sqrt(gamma^2 - 1)) / 2
    expected = sorted([(-gamma + root) / 2, (-gamma - root) / 2], key=by)
    np.testing.assert_allclose(numeric, expected, atol=1e-8)
    assert max(e.real for e in numeric) < 0  # every eigenvalue in the left half-plane


@pytest.mark.parametrize("method,expected", [("gan", 0.5j), ("nsgan", 0.5j), ("wgan", 1j),
                                             ("wgan-clip", 1j)])
def test_unregularized_eigenvalues_are_purely_imaginary(method, expected):
    report = dynamics.equilibrium_report(dg.DiracGAN(method), 0.1, "simultaneous")
    numeric = [complex(re, im) for re, im in report["eigenvalues"]]
    np.testing.assert_allclose(numeric, [expected, -expected], atol=1e-9)


@pytest.mark.parametrize("lam", [0.5, 2.0])
def test_wgan_gp_field_jumps_at_psi_0_and_has_no_jacobian(lam):
    game = dg.DiracGAN("wgan-gp", gp=lam)
    h = 1e-6
    jump = game.field((0.0, h))[1] - game.field((0.0, -h))[1]
    assert abs(jump - 4 * lam * (1 - h)) < 1e-12  # v_psi: 2 lam (1 - psi) above, -2 lam below
    assert not dg.differentiable(game.field, (0.0, 0.0))
    assert dynamics.equilibrium_report(game, 0.1, "simultaneous") == {"eigenvalues": None,
                                                                      "step_radius": None}


def alternating_matrix(lr, a, gamma=0.0):
    """psi' = psi + lr (-a theta - gamma psi), then theta' = theta + lr a psi'."""
    return np.array([[1 - (lr * a) ** 2, lr * a * (1 - lr * gamma)], [-lr * a, 1 - lr * gamma]])


@pytest.mark.parametrize("method,a,gamma", [("nsgan", 0.5, 0.0), ("wgan", 1.0, 0.0),
                                            ("r1", 0.5, 1.0)])
def test_step_matrices_of_the_dirac_gan_are_the_lessons(method, a, gamma):
    lr = 0.3
    game = dg.DiracGAN(method, gamma=gamma)
    np.testing.assert_allclose(dg.step_matrix(game, lr, "simultaneous"),
                               np.eye(2) + lr * jacobian_at_0(a, gamma), atol=1e-9)
    M = dg.step_matrix(game, lr, "alternating")
    np.testing.assert_allclose(M, alternating_matrix(lr, a, gamma), atol=1e-9)
    assert abs(np.linalg.det(M) - (1 - lr * gamma)) < 1e-9


def test_r1_converges_only_with_small_enough_steps():
    """Simultaneous steps: |1 + lr lambda| < 1 for both eigenvalues iff lr < 4 gamma (gamma < 1)."""
    gamma = 0.1
    game = dg.DiracGAN("r1", gamma=gamma)
    for lr in (0.3, 0.39, 0.41, 0.6):
        radius = dg.spectral_radius(dg.step_matrix(game, lr, "simultaneous"))
        assert abs(radius - np.sqrt(1 - gamma * lr + lr ** 2 / 4)) < 1e-9
        assert (radius < 1) == (lr < 4 * gamma)


@pytest.mark.parametrize("update", dg.UPDATES)
def test_verdicts_match_theory(update):
    lr, steps = 0.2, 400
    games = dynamics.dirac_games(list(dg.METHODS), gamma=1.0, gp=1.0, clip=0.5)
    paths, reports = dynamics.dirac_results(games, lr, steps, update)
    verdicts = {m: r["verdict"] for m, r in reports.items()}
    assert verdicts["r1"] == "converges" and reports["r1"]["distance"] < 1e-12
    assert verdicts["wgan-gp"] == "stalls"  # at |theta| = 2 lam, psi = 0: not the equilibrium
    np.testing.assert_allclose(np.abs(paths["wgan-gp"][-1]), [2.0, 0.0], atol=1e-9)
    assert verdicts["wgan-clip"] == "oscillates"
    assert np.abs(paths["wgan-clip"][1:, 1]).max() <= 0.5  # from the first step on
    for method in ("gan", "nsgan", "wgan"):
        assert verdicts[method] != "converges" and reports[method]["distance"] > 0.1
    if update == "simultaneous":  # |1 + lr i a| > 1: out, until the sigmoid's curve bends it
        assert verdicts["wgan"] == verdicts["gan"] == "spirals out"
        assert reports["wgan"]["step_radius"] == pytest.approx(np.sqrt(1 + lr ** 2), abs=1e-9)
    else:  # det 1: circles
        assert verdicts["wgan"] == verdicts["gan"] == "oscillates"
        assert reports["wgan"]["step_radius"] == pytest.approx(1.0, abs=1e-9)


def test_nonsaturating_simultaneous_steps_settle_on_a_circle_of_radius_sqrt_2lr():
    """The lesson's balance of -lr r^4 / 8 (the non-zero-sum pull) and lr^2 r^2 / 4 (the push)."""
    game = dg.DiracGAN("nsgan")
    z = np.array([1.0, 1.0])
    for method in ("gan", "nsgan"):  # the zero-sum flow keeps |z|; the other pulls it in
        v = dg.DiracGAN(method).field(z)
        assert abs(z @ v + (method == "nsgan") * np.tanh(0.5)) < 1e-12
    lr = 0.1
    path = dg.run(game, (1.0, 1.0), lr, 3000, "simultaneous")
    assert abs(np.hypot(*path[2000:].T).mean() / np.sqrt(2 * lr) - 1) < 0.02


def test_verdict_tells_linear_convergence_from_a_slow_drift():
    r1 = dg.run(dg.DiracGAN("r1"), (1.0, 1.0), 0.1, 200, "alternating")  # 0.96^t: linear
    assert np.hypot(*r1[-1]) > 1e-6 * np.hypot(*r1[0])  # not yet at the tolerance
    assert dg.verdict(r1, 200) == "converges"
    drift = dg.run(dg.DiracGAN("nsgan"), (1.0, 1.0), 0.1, 400, "alternating")  # like 1/sqrt(t)
    assert dg.verdict(drift, 400) == "spirals in"
    assert dg.verdict(dg.run(dg.Bilinear(), (1.0, 1.0), 0.1, 5), 5) == "too few steps"


def test_a_run_that_diverges_stops_and_says_so():
    """By hand: each simultaneous step on xy multiplies |z| by sqrt(1 + lr^2), so from
    |z0| = sqrt(2) with lr 0.9, |z_n| = sqrt(2) * 1.81^(n / 2). It first reaches BLOWUP = 1e12 at
    n = ceil(2 ln(1e12 / sqrt 2) / ln 1.81) = ceil(91.97) = 92: the run stops there, with the
    93 rows z0 .. z92, the last past the threshold and the one before it not."""
    path = dg.run(dg.Bilinear(), (1.0, 1.0), 0.9, 100_000, "simultaneous")
    n = math.ceil(2 * math.log(1e12 / math.sqrt(2)) / math.log(1.81))
    assert n == 92 and dg.BLOWUP == 1e12
    assert len(path) == n + 1 and np.isfinite(path).all()
    norms = np.hypot(*path.T)
    assert norms[-1] >= 1e12 > norms[-2]
    assert dg.verdict(path, 100_000) == "spirals out"


# ---- the command ---------------------------------------------------------------------------


def test_command_writes_pictures_gifs_and_json(tmp_path):
    out = tmp_path / "lab"
    result = run_command(["-m", "minigan.dynamics", "--steps", "30", "--frames", "2",
                          "--methods", "nsgan,r1,wgan-gp", "--update", "alternating",
                          "--out", str(out), "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last["dirac"]) == {"nsgan", "r1", "wgan-gp"} and last["update"] == "alternating"
    np.testing.assert_allclose(last["dirac"]["r1"]["eigenvalues"], [[-0.5, 0], [-0.5, 0]],
                               atol=1e-8)
    assert last["dirac"]["wgan-gp"]["eigenvalues"] is None
    assert last["bilinear"]["simultaneous"] == pytest.approx(np.sqrt(2) * 1.01 ** 15, rel=1e-12)
    saved = json.loads((out / "dynamics.json").read_text())
    assert saved["dirac"] == last["dirac"] and saved["config"]["steps"] == 30
    for name in ("bilinear.png", "dirac.png", "bilinear.gif", "dirac.gif"):
        assert (out / name).stat().st_size > 1000, name
    assert sorted(p.name for p in (out / "frames").iterdir() if p.name.startswith("dirac")) == [
        "dirac_000000.png", "dirac_000015.png", "dirac_000030.png"]
    before = snapshot(out)  # a second run into the same folder is refused, and changes nothing
    again = run_command(["-m", "minigan.dynamics", "--out", str(out)], cwd=tmp_path)
    assert_clean_error(again, f"--out {out}", "already holds", "choose another --out")
    assert snapshot(out) == before


def test_refuses_a_training_runs_folder_without_offering_resume(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"a run")
    before = snapshot(tmp_path)
    result = run_command(["-m", "minigan.dynamics", "--out", "run"], cwd=tmp_path)
    assert_clean_error(result, "--out run", "train_mnist.py run", "choose another --out")
    assert "--resume" not in result.stderr  # the lab has no --resume
    assert snapshot(tmp_path) == before


BAD_FLAGS = [
    (["--steps", "0"], ["--steps 0", "from 1 to 100000"]),
    (["--steps", "x"], ["--steps x", "from 1 to 100000"]),  # the rule's words, not argparse's
    (["--lr", "0"], ["--lr 0", "(0, 1)"]),
    (["--lr", "1.5"], ["--lr 1.5", "(0, 1)"]),
    (["--lr", "nan"], ["--lr nan", "(0, 1)"]),
    (["--update", "sideways"], ["--update sideways", "simultaneous", "alternating"]),
    (["--methods", "gan,gan"], ["--methods gan,gan", "each at most once"]),
    (["--methods", "gan,bce"], ["--methods gan,bce", "wgan-gp"]),
    (["--methods", ""], ["--methods", "comma-separated"]),
    (["--gamma", "-1"], ["--gamma -1", "[0, 100)"]),
    (["--gp", "inf"], ["--gp inf", "[0, 100)"]),
    (["--clip", "0"], ["--clip 0", "(0, 100)"]),
    (["--frames", "201"], ["--frames 201", "0 to 200"]),
    (["--steps", "5", "--frames", "6"], ["--frames 6", "0 to --steps (5), or raise --steps."]),
    (["--out", "a_file"], ["--out a_file", "not a file"]),
]


@pytest.mark.parametrize("flags,needles", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_flags_are_clean_errors_that_write_nothing(tmp_path, monkeypatch, capsys, flags,
                                                       needles):
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    result = call(dynamics.main, flags, capsys)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before and not (tmp_path / "runs").exists()


IN_THE_WAY = [  # what stands in --out -> words the message must contain
    ("notes.txt", "file", ["dyn already holds notes.txt", "new or empty folder"]),  # was kept
    ("bilinear.png", "file", ["dyn already holds bilinear.png"]),  # was written over
    ("frames", "file", ["dyn already holds frames"]),
    ("bilinear.png", "folder", ["dyn already holds bilinear.png/"]),
    ("frames/dirac_000001.png", "folder", ["dyn already holds frames/"]),
]


@pytest.mark.parametrize("name,kind,needles", IN_THE_WAY,
                         ids=[f"{n} a {k}" for n, k, _ in IN_THE_WAY])
def test_an_out_that_holds_anything_is_refused_before_anything_is_written(
        tmp_path, monkeypatch, capsys, name, kind, needles):
    """A new lab run goes into a new or empty folder (rundir.refuse_taken). The old check
    refused only a folder with dynamics.json or a run in it, and otherwise wrote bilinear.png,
    dirac.png, the GIFs and frames/ over files of those names (or stopped halfway, with a
    traceback, on a folder of such a name)."""
    monkeypatch.chdir(tmp_path)
    obstacle = tmp_path / "dyn" / name
    obstacle.parent.mkdir(parents=True)
    obstacle.mkdir() if kind == "folder" else obstacle.write_text("mine")
    before = snapshot(tmp_path)
    result = call(dynamics.main, ["--steps", "1", "--frames", "1", "--out", "dyn"], capsys)
    assert_clean_error(result, "--out dyn", *needles, "choose another --out")
    assert result.stderr.count("\n") == 1 and snapshot(tmp_path) == before


def test_an_empty_out_folder_is_used(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dyn").mkdir()
    assert call(dynamics.main, ["--steps", "2", "--frames", "0", "--out", "dyn"],
                capsys).returncode == 0
    assert (tmp_path / "dyn" / "dynamics.json").is_file()


def test_a_bad_flag_in_a_real_process(tmp_path):
    result = run_command(["-m", "minigan.dynamics", "--lr", "-0.1"], cwd=tmp_path)
    assert_clean_error(result, "--lr -0.1", "(0, 1)")
    assert snapshot(tmp_path) == {}
