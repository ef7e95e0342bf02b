"""End-to-end tests of train_mnist.py on a few hundred real MNIST images: the run folder,
exact resume, Ctrl-C, NaN handling, architecture mismatches, and sampling a trained run."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import train_mnist
from clitest import assert_clean_error, call
from minigan import checkpoint, models, pictures, rundir
from minigan import sample as sample_cli

ROOT = Path(__file__).resolve().parent.parent
# Small networks and few images keep each run to about a second on 2 cores.
SMALL = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden", "64,32",
         "--latent-dim", "16", "--log-every", "2"]


def train(tmp_path, name, *flags):
    return train_mnist.main([*SMALL, "--out", str(tmp_path / name), *flags])


def train_until_stopped(tmp_path, name, status, *flags):
    """train(), through the command's cli: a run that a stop ends before its last epoch exits
    with `status` (128 + the signal's number), not 0; returns its folder."""
    assert train_mnist.cli([*SMALL, "--out", str(tmp_path / name), *flags]) == status
    return tmp_path / name


def checkpoint_arrays(run_dir):
    arrays, meta = checkpoint.load(Path(run_dir) / "checkpoint.npz")
    return arrays, meta


def assert_same_arrays(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs"


def test_script_writes_a_complete_run_folder(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train_mnist.py"), *SMALL, "--epochs", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "real images/s" in result.stdout and str(out) in result.stdout
    for name in ["config.json", "metrics.csv", "samples/epoch_001.png", "samples/epoch_002.png",
                 "samples_final.png", "samples.gif", "curves.png", "checkpoint.npz"]:
        assert (out / name).is_file(), f"missing {name}"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["g_hidden"] == [32, 64] and cfg["epochs"] == 2 and cfg["limit"] == 192
    rows = rundir.read_rows(out / "metrics.csv")
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10, 12]  # 6 steps per epoch, logged every 2
    for r in rows:
        assert np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"])
        assert 0 <= r["d_real"] <= 1 and 0 <= r["d_fake"] <= 1
    arrays, meta = checkpoint_arrays(out)
    assert meta["global_step"] == 12 and meta["epoch"] == 2 and meta["opt_G_t"] == 12
    assert arrays["G/0.W"].shape == (16, 32) and arrays["D/4.W"].shape == (32, 1)
    assert "opt_D/m/0.W" in arrays and "opt_G/v/4.b" in arrays
    # The GIF animates one frame per epoch.
    from PIL import Image
    assert Image.open(out / "samples.gif").n_frames == 2


def test_resume_is_bit_exact(tmp_path):
    straight = train(tmp_path, "straight", "--epochs", "2")
    first = train(tmp_path, "split", "--epochs", "1")
    train_mnist.main(["--resume", str(first), "--epochs", "2"])
    a, meta_a = checkpoint_arrays(straight)
    b, meta_b = checkpoint_arrays(first)
    assert_same_arrays(a, b)
    assert meta_a["rng"] == meta_b["rng"] and meta_a["global_step"] == meta_b["global_step"]
    # The resumed run's metrics continue where the first session stopped.
    assert [r["step"] for r in rundir.read_rows(first / "metrics.csv")] == list(range(2, 13, 2))


def test_resume_drops_the_log_rows_written_after_the_checkpoint(tmp_path):
    """A run killed between checkpoints had logged steps past its checkpoint: the resumed run
    logs them again, once."""
    run = train(tmp_path, "run", "--epochs", "1")
    with open(run / "metrics.csv", "a") as f:  # as if the killed run had logged step 8
        f.write("8,2,1.0,1.0,0.5,0.5\n")
    train_mnist.main(["--resume", str(run), "--epochs", "2"])
    assert [r["step"] for r in rundir.read_rows(run / "metrics.csv")] == list(range(2, 13, 2))


def test_drop_rows_after_leaves_a_clean_log_untouched(tmp_path):
    path = tmp_path / "eval.csv"
    path.write_text("epoch,fd\n1,3.5\n2,2.5\n")
    before = path.stat().st_mtime_ns
    rundir.drop_rows_after(path, "epoch", 2)
    assert path.stat().st_mtime_ns == before
    rundir.drop_rows_after(path, "epoch", 1)
    assert path.read_text() == "epoch,fd\n1,3.5\n"


def interrupt_at(monkeypatch, step, signum=signal.SIGINT):
    """Deliver a real signal (SIGINT: Ctrl-C) to this process during the given training step."""
    calls = {"n": 0}
    real_step = models.MINIGAN.train_step

    def step_then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            os.kill(os.getpid(), signum)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(models.MINIGAN, "train_step", step_then_interrupt)


def test_ctrl_c_saves_a_checkpoint_and_resume_stays_exact(tmp_path, monkeypatch, capsys):
    straight = train(tmp_path, "straight", "--epochs", "2")
    # Python's default handler, or SIG_IGN where pytest was started as a background job
    handler_before = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as m, pytest.raises(rundir.Stopped) as stopped:
        interrupt_at(m, 9)  # in the middle of epoch 2 (6 steps per epoch)
        train(tmp_path, "interrupted", "--epochs", "2")
    # main raises, after its message: no caller in Python takes the run for a finished one
    run = stopped.value.run_dir
    assert (run, stopped.value.signal_name, stopped.value.status) == (
        tmp_path / "interrupted", "SIGINT", 130)
    assert "stopped by SIGINT: checkpoint saved at step 9" in capsys.readouterr().out
    _, meta = checkpoint_arrays(run)
    assert meta["global_step"] == 9 and meta["step_in_epoch"] == 3
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is restored
    train_mnist.main(["--resume", str(run)])
    assert_same_arrays(checkpoint_arrays(straight)[0], checkpoint_arrays(run)[0])


def test_sigterm_in_the_first_epoch_saves_its_steps_and_resume_stays_exact(tmp_path, monkeypatch,
                                                                           capsys):
    """SIGTERM (timeout, kill, docker stop, job schedulers) stops a run as the first Ctrl-C
    does: the steps of an unfinished first epoch are saved, not lost."""
    straight = train(tmp_path, "straight", "--epochs", "2")
    handler_before = signal.getsignal(signal.SIGTERM)
    with monkeypatch.context() as m:
        interrupt_at(m, 4, signal.SIGTERM)  # epoch 1 of 2: no checkpoint written yet
        run = train_until_stopped(tmp_path, "terminated", 143, "--epochs", "2")
    out = capsys.readouterr().out
    assert "stopped by SIGTERM: checkpoint saved at step 4" in out
    assert f"--resume {run}" in out
    _, meta = checkpoint_arrays(run)
    assert meta["global_step"] == 4 and meta["epoch"] == 0 and meta["step_in_epoch"] == 4
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the handler is restored
    train_mnist.main(["--resume", str(run)])
    assert_same_arrays(checkpoint_arrays(straight)[0], checkpoint_arrays(run)[0])


def interrupt_in(monkeypatch, name, call=1, signum=signal.SIGINT):
    """Deliver a real signal to this process in the given call of pictures.<name>, a piece of
    an epoch's end work (save_epoch_grid, save_curves)."""
    calls = {"n": 0}
    real = getattr(pictures, name)

    def then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(pictures, name, then_interrupt)


@pytest.mark.parametrize("work", ["save_epoch_grid", "save_curves"])
def test_a_stop_in_the_epoch_end_work_stops_at_that_epochs_checkpoint(work, tmp_path,
                                                                      monkeypatch, capsys):
    """Ctrl-C while epoch 1's grid or curves are drawn: the run saves at the epoch's end and
    stops there, as a stop mid-epoch does (it trained, and saved, one step of epoch 2 first);
    the resumed run ends bit for bit where the uninterrupted one does."""
    straight = train(tmp_path, "straight", "--epochs", "2")
    with monkeypatch.context() as m:
        interrupt_in(m, work)
        run = train_until_stopped(tmp_path, "interrupted", 130, "--epochs", "2")
    out = capsys.readouterr().out
    assert (f"stopped by SIGINT: checkpoint saved at step 6 in {run / 'checkpoint.npz'}\n"
            f"continue with: python train_mnist.py --resume {run}") in out
    _, meta = checkpoint_arrays(run)
    assert (meta["global_step"], meta["epoch"], meta["step_in_epoch"]) == (6, 1, 0)
    assert rundir.read_rows(run / "metrics.csv")[-1]["step"] == 6
    train_mnist.main(["--resume", str(run)])
    assert_same_arrays(checkpoint_arrays(straight)[0], checkpoint_arrays(run)[0])


def test_a_stop_in_the_last_epochs_end_work_ends_the_run_as_done(tmp_path, monkeypatch, capsys):
    """Nothing is left to train after the last epoch's checkpoint: the run ends as a finished
    one, with no --resume to suggest (it would refuse: no more epochs), and exit status 0."""
    with monkeypatch.context() as m:
        interrupt_in(m, "save_curves", call=2)
        run = train_until_stopped(tmp_path, "run", 0, "--epochs", "2")
    out = capsys.readouterr().out
    assert "done: 2 epochs, 12 steps" in out and "stopped by" not in out
    assert checkpoint_arrays(run)[1]["global_step"] == 12


def test_resume_mid_epoch_on_other_images_is_refused_and_changes_nothing(tmp_path, monkeypatch,
                                                                         capsys):
    """The saved order of an unfinished epoch indexes the images it was drawn for: resumed on
    another number of images it would read past their end (or skip some), so it is refused."""
    from clitest import assert_clean_error, call, snapshot

    from minigan import data

    images, _ = data.load_mnist("train")
    np.save(tmp_path / "a.npy", images[:192])
    np.save(tmp_path / "b.npy", images[:160])
    with monkeypatch.context() as m:
        interrupt_at(m, 2, signal.SIGTERM)  # epoch 1 of 2, step 2 of 6
        run = train_until_stopped(tmp_path, "run", 143, "--images", str(tmp_path / "a.npy"),
                                  "--epochs", "2")
    assert checkpoint_arrays(run)[1]["step_in_epoch"] == 2
    before = snapshot(run)
    result = call(train_mnist.cli, ["--resume", str(run), "--images", str(tmp_path / "b.npy")],
                  capsys)
    assert_clean_error(result, "--resume", "middle of an epoch over 192 images", "are 160",
                       "--images")
    assert snapshot(run) == before
    train_mnist.main(["--resume", str(run), "--images", str(tmp_path / "a.npy")])  # the same: on
    assert checkpoint_arrays(run)[1]["epoch"] == 2


def as_from_a_terminal():
    """In the child, before train_mnist.py starts: SIGHUP as a terminal's shell leaves it (the
    default), even when pytest itself runs under nohup, which ignores it and passes that on."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def start_long_run(out, tmp_path):
    """train_mnist.py in a real process, returned once training has started."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train_mnist.py"), *SMALL, "--epochs", "1000", "--log-every",
         "1", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        preexec_fn=as_from_a_terminal if hasattr(signal, "SIGHUP") else None)
    deadline = time.monotonic() + 120
    while not (out / "metrics.csv").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc


def assert_stopped_at_a_saved_step(out):
    _, meta = checkpoint_arrays(out)
    assert meta["global_step"] >= 1
    rows = rundir.read_rows(out / "metrics.csv")
    assert rows[-1]["step"] == meta["global_step"]  # the last step trained is saved and logged


def test_sigterm_to_the_script_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    """As `timeout` or a scheduler would: a real process, a real SIGTERM, mid-training. It exits
    143 (128 + SIGTERM), as a process that SIGTERM ends: `&&` and a scheduler see a run
    stopped, not finished."""
    out = tmp_path / "run"
    proc = start_long_run(out, tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "stopped by SIGTERM" in stdout and f"--resume {out}" in stdout
    assert_stopped_at_a_saved_step(out)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_a_closed_terminal_saves_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc = start_long_run(out, tmp_path)
    try:
        proc.send_signal(signal.SIGHUP)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 129 and "Traceback" not in stderr, stderr  # 128 + SIGHUP
    assert "stopped by SIGHUP" in stdout and f"--resume {out}" in stdout
    assert_stopped_at_a_saved_step(out)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_under_nohup_sighup_stays_ignored(tmp_path):
    """`nohup python train_mnist.py &` asks the run to outlive the terminal: SIGHUP was ignored
    before the run started, and the stop request leaves it so."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        ["nohup", sys.executable, str(ROOT / "train_mnist.py"), *SMALL, "--epochs", "3",
         "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.csv").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped by" not in stdout and "done: 3 epochs" in stdout


def test_a_closed_progress_output_stops_the_run_and_saves(tmp_path):
    """The parent that read the progress bar is gone (a killed job runner, ``2>&1 | head``):
    the next write fails, and the run saves where it is instead of dying with the steps since
    its last checkpoint. (Without the stop the run would go on for 1000 epochs or crash.) It
    exits 141, 128 + SIGPIPE, as a process that a closed pipe ends."""
    out = tmp_path / "run"
    proc = start_long_run(out, tmp_path)
    try:
        proc.stderr.close()  # the progress bar's reader goes away
        stdout = proc.stdout.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 141
    assert "stopped by a closed output" in stdout and f"--resume {out}" in stdout
    assert_stopped_at_a_saved_step(out)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP, SIGPIPE on this platform")
def test_a_stops_status_is_128_plus_its_signals_number():
    """The one table of stop statuses (train_mnist.py, minigan.toy, the benchmarks' children)
    holds this platform's numbers; stop_status reads a child's, subprocess's -15 too (a second
    SIGTERM ends the process at once), and nothing else: a failure (1, 2), `timeout`'s 124, or a
    SIGKILL (-9) is no stop that saved."""
    assert rundir.STOPPED_STATUS == {
        "SIGHUP": 128 + signal.SIGHUP, "SIGINT": 128 + signal.SIGINT,
        "a closed output": 128 + signal.SIGPIPE, "SIGTERM": 128 + signal.SIGTERM}
    codes = [130, 143, 129, 141, -15, -2, 0, 1, 2, 124, -9, 137]
    assert [rundir.stop_status(c) for c in codes] == [130, 143, 129, 141, 143, 130] + [None] * 6


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    run = train(tmp_path, "run", "--epochs", "1")
    good = (run / "checkpoint.npz").read_bytes()
    real_step = models.MINIGAN.train_step

    def poisoned_step(G, D, *args, **kwargs):
        G.params["0.W"][0, 0] = np.nan  # a NaN weight makes every later loss NaN
        return real_step(G, D, *args, **kwargs)

    monkeypatch.setattr(models.MINIGAN, "train_step", poisoned_step)
    with pytest.raises(rundir.RunError, match="diverged.*last good checkpoint"):
        train_mnist.main(["--resume", str(run), "--epochs", "2"])
    assert (run / "checkpoint.npz").read_bytes() == good


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, {"a": np.arange(3.0)}, {"step": 1})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C arrived in the middle of writing

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"a": np.zeros(3)}, {"step": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no temporary left


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    run = train(tmp_path, "run", "--epochs", "1")
    data = (run / "checkpoint.npz").read_bytes()
    (run / "checkpoint.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="unreadable"):
        train_mnist.main(["--resume", str(run), "--epochs", "2"])


def test_resume_rejects_a_different_architecture(tmp_path):
    run = train(tmp_path, "run", "--epochs", "1")
    with pytest.raises(rundir.RunError, match="--g-hidden.*architecture"):
        train_mnist.main(["--resume", str(run), "--g-hidden", "64,64", "--epochs", "2"])
    # A config edited by hand no longer matches the checkpoint's arrays.
    cfg = json.loads((run / "config.json").read_text())
    cfg["d_hidden"] = [64, 16]
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(checkpoint.CheckpointError, match=r"D/2.W has shape \(64, 32\).*\(64, 16\)"):
        train_mnist.main(["--resume", str(run), "--epochs", "2"])


def test_resume_of_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert train_mnist.cli(["--resume", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no run there" in err and "nope" in err


def test_new_run_refuses_to_overwrite_an_existing_one(tmp_path):
    train(tmp_path, "run", "--epochs", "1")
    with pytest.raises(rundir.RunError, match="--resume"):
        train(tmp_path, "run", "--epochs", "1")


def test_sample_cli_writes_npy_and_png(tmp_path, capsys):
    run = train(tmp_path, "run", "--epochs", "1")
    npy = tmp_path / "a.npy"
    assert sample_cli.main([str(run), "-n", "25", "--out", str(npy), "--seed", "3"]) == 0
    pixels = np.load(npy)
    assert pixels.shape == (25, 28, 28) and pixels.dtype == np.uint8
    assert pixels.std() > 0  # not a blank image
    again = tmp_path / "b.npy"
    sample_cli.main([str(run), "-n", "25", "--out", str(again), "--seed", "3"])
    assert np.array_equal(pixels, np.load(again))
    other = tmp_path / "c.npy"
    sample_cli.main([str(run), "-n", "25", "--out", str(other), "--seed", "4"])
    assert not np.array_equal(pixels, np.load(other))
    png = tmp_path / "grid.png"
    assert sample_cli.main([str(run), "-n", "16", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_clean_error(call(sample_cli.main, [str(run), "--out", str(tmp_path / "x.jpg")], capsys),
                       f"--out {tmp_path / 'x.jpg'}: the images are written as a .npy array or "
                       "a .png grid; name a file ending in .npy or .png")
    assert sample_cli.main([str(tmp_path / "nope"), "--out", str(tmp_path / "d.npy")]) == 2
    assert "no config.json" in capsys.readouterr().err


@pytest.mark.parametrize("flags, image", [((), "grid.png"),
                                           (("--conditional", "projection"), "digits.png")])
def test_a_run_ends_by_naming_commands_that_work(tmp_path, monkeypatch, capsys, flags, image):
    """The last lines say what to run next; the sample command, run as printed, writes its file."""
    monkeypatch.chdir(tmp_path)
    run = train(tmp_path, "run", "--epochs", "1", *flags)
    out = capsys.readouterr().out
    sample = [line for line in out.splitlines() if line.startswith("next: python -m minigan.sample")]
    assert len(sample) == 1, out
    argv = shlex.split(sample[0].split("#")[0])[4:]  # after "next: python -m minigan.sample"
    assert argv[0] == str(run) and sample_cli.main(argv) == 0
    assert (tmp_path / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"python -m minigan.evaluate {run}  #" in out


def test_minimax_and_k2_run(tmp_path):
    run = train(tmp_path, "run", "--epochs", "1", "--k", "2", "--gen-loss", "minimax")
    rows = rundir.read_rows(run / "metrics.csv")
    assert rows[-1]["step"] == 3  # 6 batches per epoch, 2 per step
    assert all(r["g_loss"] < 0 for r in rows)  # mean log(1 - D(G(z))) is negative


def test_label_smoothing_reaches_every_step_as_the_real_target(tmp_path, monkeypatch):
    """--label-smoothing 0.1 trains D on the real target 0.9 at every step (what the target
    does to D's gradient: tests/test_gan_grad.py)."""
    seen, real_step = [], models.MINIGAN.train_step

    def recording_step(*args, real_target, **kwargs):
        seen.append(real_target)
        return real_step(*args, real_target=real_target, **kwargs)

    monkeypatch.setattr(models.MINIGAN, "train_step", recording_step)
    train(tmp_path, "run", "--epochs", "1", "--label-smoothing", "0.1")
    assert seen == [0.9] * 6


def test_resume_without_a_saved_generator_state_reseeds_reproducibly(tmp_path, monkeypatch):
    # CuPy's generator state cannot be saved: resume then reseeds from (seed, step).
    monkeypatch.setattr(checkpoint, "rng_state", lambda rng: None)
    runs = [train(tmp_path, name, "--epochs", "1") for name in ("a", "b")]
    for run in runs:
        train_mnist.main(["--resume", str(run), "--epochs", "2"])
    a, b = checkpoint_arrays(runs[0])[0], checkpoint_arrays(runs[1])[0]
    assert_same_arrays(a, b)
    straight = train(tmp_path, "straight", "--epochs", "2")
    assert not np.array_equal(a["G/0.W"], checkpoint_arrays(straight)[0]["G/0.W"])


def test_a_run_on_your_own_images_goes_through_the_same_loop(tmp_path, capsys):
    """--images FILE.npy: the same loop, the same outputs, and exact resume; the images are the
    file's (checked by training on MNIST's first 192 saved to a file: bit for bit the MNIST run)."""
    from minigan import data

    images, _ = data.load_mnist("train")
    np.save(tmp_path / "digits.npy", images[:192])
    on_mnist = train(tmp_path, "mnist", "--epochs", "2")
    first = train(tmp_path, "own", "--epochs", "1", "--limit", "0", "--images",
                  str(tmp_path / "digits.npy"))
    one_epoch = checkpoint_arrays(first)[0]
    capsys.readouterr()
    train_mnist.main(["--resume", str(first), "--epochs", "2"])
    assert "minigan.evaluate" not in capsys.readouterr().out  # it scores against MNIST only
    for name in ("config.json", "metrics.csv", "curves.png", "samples_final.png",
                 "samples.gif", "checkpoint.npz", "samples/epoch_002.png"):
        assert (first / name).is_file(), name
    assert json.loads((first / "config.json").read_text())["images"] == str(tmp_path / "digits.npy")
    assert_same_arrays(checkpoint_arrays(on_mnist)[0], checkpoint_arrays(first)[0])
    # other images, the same seed: another run
    np.save(tmp_path / "inverted.npy", 255 - images[:192])
    other = train(tmp_path, "inverted", "--epochs", "1", "--images", str(tmp_path / "inverted.npy"))
    assert not np.array_equal(checkpoint_arrays(other)[0]["D/0.W"], one_epoch["D/0.W"])
