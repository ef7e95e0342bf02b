"""The DCGAN: its steps (two D batches, a G step that leaves D alone), its runs (train_mnist.py
--model dcgan: run folder, exact resume with BatchNorm statistics, sampling in eval mode) and
the same step on the strict CuPy stand-in."""

import json
from pathlib import Path

import numpy as np
import pytest

import strict_xp
import train_mnist
from clitest import assert_clean_error, run_command
from clitest import snapshot as folder_snapshot
from minigan import backend, batchnorm, checkpoint, data, gan, layers, losses, optim, rundir
from minigan import sample as sample_cli
from precision import assert_computes_in

LATENT, N = 8, 6


def tiny_dcgan(seed=0, dtype="float64"):
    """The DCGAN's layer stacks at small channels, with real-like data and noise."""
    rng = backend.default_rng(seed)
    G = gan.make_dcgan_generator(LATENT, (6, 4), rng=rng, dtype=dtype)
    D = gan.make_dcgan_discriminator((4, 6), rng=rng, dtype=dtype)
    real = rng.uniform(-1.0, 1.0, (N, 784)).astype(dtype)
    z = rng.standard_normal((N, LATENT), dtype=dtype)
    return G, D, real, z


def snapshot(arrays):
    return {k: backend.to_host(v).copy() for k, v in arrays.items()}


def assert_unchanged(before, after, what):
    for k, v in before.items():
        assert np.array_equal(backend.to_host(after[k]), v), f"{what} {k} changed"


@pytest.mark.parametrize("gen_loss", ["nonsaturating", "minimax"])
def test_generator_step_leaves_every_part_of_d_alone(gen_loss):
    """D's parameters, grads, BatchNorm running statistics and Adam state, bit for bit."""
    G, D, real, z = tiny_dcgan(1)
    opt_G = optim.Adam(G.parameters(), lr=1e-2, betas=(0.5, 0.999))
    opt_D = optim.Adam(D.parameters(), lr=1e-2, betas=(0.5, 0.999))
    gan.discriminator_step(G, D, opt_D, real, z)  # D's grads, statistics and Adam state nonzero
    D_params, D_grads, D_buffers = snapshot(D.params), snapshot(D.grads), snapshot(D.buffers)
    assert all(np.abs(g).max() > 0 for g in D_grads.values())
    assert all(not np.array_equal(v, np.zeros_like(v)) for k, v in D_buffers.items()
               if k.endswith("running_mean"))
    D_state = {k: v.copy() if isinstance(v, np.ndarray) else v
               for k, v in opt_D.state_dict().items()}
    G_params, G_buffers = snapshot(G.params), snapshot(G.buffers)

    gan.generator_step(G, D, opt_G, backend.default_rng(9).standard_normal((N, LATENT)),
                       gen_loss)

    assert_unchanged(D_params, D.params, "D param")
    assert_unchanged(D_grads, D.grads, "D grad")
    assert_unchanged(D_buffers, D.buffers, "D running statistic")
    for k, v in D_state.items():
        assert np.array_equal(opt_D.state_dict()[k], v), f"D optimizer state {k} changed"
    assert all(layer.update_running_stats for layer in layers.walk(D)
               if isinstance(layer, batchnorm.BatchNorm))  # the freeze ended with the step
    for k in G_params:
        assert not np.array_equal(G.params[k], G_params[k]), f"G param {k} did not move"
    for k in G_buffers:  # G itself trains in training mode: its statistics move
        assert not np.array_equal(G.buffers[k], G_buffers[k]), f"G {k} did not move"


def test_discriminator_step_runs_real_and_fake_as_two_batches():
    """The loss is BCE(D(real)) + BCE(D(fake)), each batch normalised by its own statistics;
    one stacked pass of 2N (the MLP's way) would give another number with BatchNorm in D."""
    G, D, real, z = tiny_dcgan(2)
    fake = G.forward(z)
    with batchnorm.frozen_running_stats(D):
        separate = (losses.bce_with_logits(D.forward(real), 1.0)[0]
                    + losses.bce_with_logits(D.forward(fake), 0.0)[0])
        stacked = losses.bce_with_logits(
            D.forward(np.concatenate([real, fake])),
            np.concatenate([np.ones((N, 1)), np.zeros((N, 1))]))[0] * 2
    d_loss, _, _ = gan.discriminator_step(G, D, optim.SGD(D.parameters(), lr=0.1), real, z)
    assert abs(float(d_loss) - float(separate)) < 1e-12
    assert abs(float(stacked) - float(separate)) > 1e-3  # BatchNorm makes the batch matter


def dcgan_steps(module, steps=2):
    """A few DCGAN train_steps (float32, small channels) on one array module; returns the
    host copies of G's and D's parameters and buffers."""
    backend.use_module(module, module.__name__)
    rng = backend.default_rng(3)
    G, D, _, _ = tiny_dcgan(4, "float32")
    opt_G = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = backend.to_device(np.random.default_rng(5).uniform(-1, 1, (N, 784)), "float32")
    for _ in range(steps):
        gan.train_step(G, D, opt_G, opt_D, lambda: real, rng, latent_dim=LATENT)
    arrays = {f"{name}/{k}": backend.to_host(v).copy()  # NumPy's to_host is no copy
              for name, net in (("G", G), ("D", D))
              for k, v in {**net.params, **net.buffers}.items()}
    # nothing upcast to float64: parameters updated in place keep their dtype whatever the
    # arithmetic, so every array a step computes is checked (tests/precision.py)
    assert_computes_in(np.float32, G, D, gan.sample_noise(rng, N, LATENT, "float32"))
    return arrays


def test_dcgan_step_on_the_strict_stand_in_matches_numpy():
    """Every array of a DCGAN step stays on the "device" (strict_xp refuses NumPy arrays) and
    computes what NumPy computes, bit for bit."""
    ours = dcgan_steps(np)
    strict = dcgan_steps(strict_xp)
    backend.use("cpu")
    assert sorted(ours) == sorted(strict)
    assert all(v.dtype == np.float32 for v in ours.values())  # and dcgan_steps' own check
    for k in ours:
        assert np.array_equal(ours[k], strict[k]), f"{k} differs on the stand-in"


# --- train_mnist.py --model dcgan ------------------------------------------------------------

FLAGS = ["--model", "dcgan", "--limit", "64", "--batch-size", "16", "--latent-dim", "16",
         "--log-every", "2"]


def train(tmp_path, name, *flags):
    return train_mnist.main([*FLAGS, "--out", str(tmp_path / name), *flags])


def test_dcgan_run_folder_and_exact_resume(tmp_path):
    straight = train(tmp_path, "straight", "--epochs", "2")
    for name in ["config.json", "metrics.csv", "samples/epoch_002.png", "checkpoint.npz"]:
        assert (straight / name).is_file(), f"missing {name}"
    a, meta_a = checkpoint.load(straight / "checkpoint.npz")
    assert a["G/0.W"].shape == (16, 128 * 49) and a["D/1.W"].shape == (64, 1, 5, 5)
    assert {"G/2.running_mean", "G/5.running_var", "D/3.running_mean", "D/5.running_var"} <= set(a)
    assert not np.array_equal(a["D/3.running_var"], np.ones(64))  # they moved, and were saved
    rows = rundir.read_rows(straight / "metrics.csv")
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)

    first = train(tmp_path, "split", "--epochs", "1")
    train_mnist.main(["--resume", str(first), "--epochs", "2"])
    b, meta_b = checkpoint.load(first / "checkpoint.npz")
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs after resume"
    with pytest.raises(rundir.RunError, match="--model mlp differs"):
        train_mnist.main(["--resume", str(first), "--model", "mlp", "--epochs", "3"])


def test_dcgan_samples_come_from_g_in_eval_mode(tmp_path):
    """The epoch grid and minigan.sample agree image for image (fixed_z is drawn like sample's
    noise with seed + 1), and the chunk size changes nothing: in eval mode each image depends
    on its own z only. Sampling also leaves G's running statistics alone."""
    run = train(tmp_path, "run", "--epochs", "1")
    G, cfg = sample_cli.load_generator(run)
    assert not any(layer.training for layer in layers.walk(G))
    buffers = snapshot(G.buffers)
    whole = sample_cli.generate(G, 64, cfg.latent_dim, seed=cfg.seed + 1, chunk=64)
    chunks = sample_cli.generate(G, 64, cfg.latent_dim, seed=cfg.seed + 1, chunk=5)
    assert np.array_equal(whole, chunks)
    assert_unchanged(buffers, G.buffers, "G running statistic")
    arrays, _ = checkpoint.load(Path(run) / "checkpoint.npz")
    G.train()  # in training mode the same noise gives other images (batch statistics)
    with batchnorm.frozen_running_stats(G):  # (and would move G's running statistics)
        train_mode = data.to_pixels(G.forward(arrays["fixed_z"]))
    assert not np.array_equal(train_mode, whole)
    G.eval()
    assert np.array_equal(data.to_pixels(G.forward(arrays["fixed_z"])), whole)
    npy = tmp_path / "s.npy"
    assert sample_cli.main([str(run), "-n", "64", "--seed", "1", "--out", str(npy)]) == 0
    assert np.array_equal(np.load(npy), whole)


@pytest.mark.parametrize("args, needles", [
    (["train_mnist.py", "--model", "gan"], ["--model", "gan"]),
    (["train_mnist.py", "--model", "DCGAN"], ["--model", "DCGAN"]),
    (["-m", "reference.torch_gan", "--model", "conv"], ["--model", "conv"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0] != "--model" else None)
def test_unknown_model_is_a_clean_error(tmp_path, args, needles):
    if args[0] == "-m":
        pytest.importorskip("torch", reason="reference.torch_gan needs PyTorch")
    before = folder_snapshot(tmp_path)
    result = run_command([*args, "--out", str(tmp_path / "run")], cwd=tmp_path)
    assert_clean_error(result, *needles)
    assert folder_snapshot(tmp_path) == before  # nothing written


# The settings a run's config.json held in minigan 0.1.0, before --model, --homework and
# --eval-every existed (train_mnist.py's Config at commit a295e80).
SETTINGS_0_1 = ["device", "epochs", "batch_size", "lr_g", "lr_d", "beta1", "beta2", "latent_dim",
                "g_hidden", "d_hidden", "slope", "k", "gen_loss", "label_smoothing", "seed",
                "dtype", "limit", "data_dir", "out", "log_every", "sample_every"]


def test_resuming_a_run_from_minigan_0_1_keeps_what_it_did(tmp_path):
    """A 0.1.0 config.json lacks the later settings: the run resumes as the MLP run it was,
    on minigan's own code, without scoring."""
    run = train_mnist.main(["--limit", "64", "--batch-size", "32", "--g-hidden", "8",
                            "--d-hidden", "8", "--latent-dim", "4", "--epochs", "1",
                            "--out", str(tmp_path / "old")])
    config = json.loads((run / "config.json").read_text())
    old = {name: config[name] for name in SETTINGS_0_1}
    (run / "config.json").write_text(json.dumps(old))
    train_mnist.main(["--resume", str(run), "--epochs", "2"])
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["homework"], config["eval_every"]) == ("mlp", "", 0)
    assert checkpoint.load(run / "checkpoint.npz")[1]["epoch"] == 2
    assert not (run / "eval.csv").exists()


@pytest.mark.parametrize("model", ["dcgan", "mlp"])
def test_twin_script_trains(tmp_path, model):
    """python -m reference.torch_gan, either model, one epoch on 128 images, with a real target
    of 0.9 (it reaches the twin's train_step, whose real_target is keyword-only)."""
    # skip without PyTorch only: an import that breaks inside the reference itself must fail
    pytest.importorskip("torch", reason="reference/torch_gan.py needs PyTorch; install the "
                        "reference extra: pip install -e '.[reference]'")
    from reference import torch_gan
    gan_t = torch_gan.main(["--model", model, "--limit", "128", "--real-target", "0.9",
                            "--out", str(tmp_path)])
    assert (tmp_path / "samples_epoch_001.png").is_file()
    layer = torch_gan.nn.ConvTranspose2d if model == "dcgan" else torch_gan.nn.Linear
    assert isinstance(gan_t.G[4], layer)
    assert gan_t.G.training  # back in training mode after the eval-mode sample grid


def test_homework_with_the_dcgan_is_a_clean_error(tmp_path, capsys):
    """The homework writes the MLP's layers; --model dcgan with it is refused before any write."""
    from minigan.homework import skeleton

    hw = tmp_path / "hw"
    hw.mkdir()
    for name, text in skeleton.files().items():
        (hw / name).write_text(text)
    before = folder_snapshot(tmp_path)
    assert train_mnist.cli(["--homework", str(hw), "--model", "dcgan",
                            "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--homework" in err and "--model dcgan" in err and "Traceback" not in err
    assert folder_snapshot(tmp_path) == before
