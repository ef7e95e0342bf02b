"""benchmarks/bn_modes.py: a DCGAN run's G scored in evaluation mode, in training mode and with
re-estimated running statistics; the re-estimate checked against the batches' own statistics,
and bad input refused before anything is scored."""

import shutil

import numpy as np
import pytest

import train_mnist
from clitest import assert_clean_error, call, load_benchmark, run_command, script, snapshot
from minigan import backend, evaluate
from minigan.batchnorm import BatchNorm
from minigan.gan import sample_noise
from minigan.layers import Dense, Sequential
from minigan.sample import load_generator

DCGAN = ["--model", "dcgan", "--limit", "64", "--batch-size", "16", "--latent-dim", "16",
         "--epochs", "1"]


def bn_modes():
    return load_benchmark("bn_modes")


def test_reestimating_averages_the_batch_statistics():
    """After B batches the running mean is the mean of the B batch means and the running variance
    the mean of the B unbiased batch variances, computed here from the same noise one batch at a
    time in float64; the momentum is restored and G is left in evaluation mode."""
    G = Sequential(Dense(5, 3, rng=backend.default_rng(0), dtype="float64"),
                   BatchNorm(3, dtype="float64"))
    norm = G.layers[1]
    norm.running_mean[:] = [0.5, -1.0, 2.0]  # a stale estimate, as after training
    norm.running_var[:] = [4.0, 0.25, 1.0]
    old_mean, old_var = norm.running_mean.copy(), norm.running_var.copy()
    batches, batch = 7, 10
    rng = backend.default_rng(1)  # the seed the function draws its noise with
    h = [G.layers[0].forward(sample_noise(rng, batch, 5, "float64")) for _ in range(batches)]
    want_mean = np.mean([x.mean(axis=0) for x in h], axis=0)
    want_var = np.mean([x.var(axis=0, ddof=1) for x in h], axis=0)

    shift, change = bn_modes().reestimate_running_stats(G, 5, batches, batch, "float64", seed=1)
    np.testing.assert_allclose(norm.running_mean, want_mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(norm.running_var, want_var, rtol=1e-12)
    assert shift == pytest.approx(np.max(np.abs(want_mean - old_mean) / np.sqrt(old_var)),
                                  rel=1e-12)
    assert change == pytest.approx(np.max(np.abs(want_var / old_var - 1)), rel=1e-12)
    assert norm.momentum == 0.1 and not norm.training


def test_the_script_scores_a_dcgan_run_three_ways_and_writes_nothing(tmp_path, capsys):
    run = train_mnist.main([*DCGAN, "--out", str(tmp_path / "run")])
    before = snapshot(run)
    assert bn_modes().main([str(run), "-n", "200", "--batch", "16", "--batches", "3"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert row[0] == "run" and len(row) == 9
    fd = dict(zip([f"{m} {s}" for m in ("eval", "train", "re-estimated") for s in ("mlp", "conv")],
                  map(float, row[1:7])))
    # evaluation mode is what minigan.evaluate scores: the same FD in both spaces
    G, cfg = load_generator(run)
    for space in ("mlp", "conv"):
        direct = evaluate.evaluate_generator(G, cfg.latent_dim, n=200,
                                             ref=evaluate.reference(features=space))
        assert fd[f"eval {space}"] == pytest.approx(direct["fd"], abs=0.005)
    # after one epoch of 4 steps the running variances are still near their start, 1, far from
    # the batches' own: the modes draw other images, and re-estimating moves the variances
    for mode in ("train", "re-estimated"):
        assert abs(fd[f"{mode} mlp"] - fd["eval mlp"]) > 1, mode
    assert float(row[8].rstrip("%")) > 10
    # re-estimated by hand from the checkpoint's G (so from the statistics it was trained to,
    # which the training-mode pass must have left as they were), then scored in evaluation mode
    G, cfg = load_generator(run)
    shift, change = bn_modes().reestimate_running_stats(G, cfg.latent_dim, 3, 16, cfg.dtype)
    assert row[7] == f"{shift:.3f}" and row[8] == f"{change:.1%}"
    for space in ("mlp", "conv"):
        again = evaluate.evaluate_generator(G, cfg.latent_dim, n=200,
                                            ref=evaluate.reference(features=space))
        assert fd[f"re-estimated {space}"] == pytest.approx(again["fd"], abs=0.005)
    assert snapshot(run) == before  # the run folder is only read


@pytest.fixture(scope="module")
def runs(tmp_path_factory, plain_run, cond_run):
    """A DCGAN run, and copies of conftest's MLP run and conditional run, in one folder."""
    folder = tmp_path_factory.mktemp("runs")
    train_mnist.main([*DCGAN, "--out", str(folder / "dcgan")])
    shutil.copytree(plain_run, folder / "mlp")
    shutil.copytree(cond_run, folder / "cond")
    return folder


BAD = [  # (what, arguments, the message's words)
    ("an MLP run", ["dcgan", "mlp"],
     ["mlp: its G (mlp) has no BatchNorm", "pass a DCGAN run (train_mnist.py --model dcgan)"]),
    ("a conditional run", ["cond"], ["cond: a conditional run; this script measures "
                                     "unconditional DCGAN runs"]),
    ("not a run", ["dcgan", "nothing"], ["nothing: not a run folder with a checkpoint.npz"]),
    ("-n too small", ["dcgan", "-n", "5"], ["-n 5: not allowed; use an integer from 20"]),
    ("--batch 1", ["dcgan", "--batch", "1"], ["--batch 1: not allowed; use an integer from 2"]),
    ("--batches 0", ["dcgan", "--batches", "0"],
     ["--batches 0: not allowed; use an integer from 1"]),
    ("--batch text", ["dcgan", "--batch", "x"], ["--batch x: not allowed; use an integer"]),
]


@pytest.mark.parametrize("what,args,needles", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_clean_error_before_any_scoring(runs, monkeypatch, capsys, what, args,
                                                      needles):
    """The cases run in this process for speed (clitest.script), but "not a run", which runs the
    real command line: its exit status 2 from the shell, no traceback on stderr."""
    monkeypatch.chdir(runs)
    before = snapshot(runs)
    if what == "not a run":
        result = run_command(["benchmarks/bn_modes.py", *args], cwd=runs)
    else:
        result = call(script("benchmarks/bn_modes.py"), args, capsys)
    assert_clean_error(result, *needles)
    assert result.stdout == ""  # refused before the first run was scored
    assert snapshot(runs) == before
