"""Fault injection in the checkpoint write: a disk that fills up or a folder that refuses the
file leaves the previous checkpoint byte-identical, no temporary file, and a named error. And a
CSV log's row cut short by a kill: the resume drops it."""

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import train_mnist
from clitest import assert_clean_error, snapshot
from minigan import checkpoint, pictures, rundir
from test_train import assert_same_arrays, train


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, {"a": np.arange(3.0)}, {"step": 1})
    return path, path.read_bytes()


def disk_full_after_half(file, **arrays):
    """np.savez that writes part of the file, then finds the disk full."""
    file.write(b"PK\x03\x04" + b"\0" * 100)
    raise OSError(errno.ENOSPC, "No space left on device")


def refused(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied")


@pytest.mark.parametrize("target,fault,words", [
    (np, ("savez", disk_full_after_half), "No space left on device"),
    (os, ("replace", refused), "Permission denied"),
    (tempfile, ("mkstemp", refused), "Permission denied"),
])
def test_a_failed_write_keeps_the_previous_checkpoint(saved, monkeypatch, target, fault, words):
    path, before = saved
    monkeypatch.setattr(target, *fault)
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.save(path, {"a": np.zeros(3)}, {"step": 2})
    monkeypatch.undo()
    assert words in str(e.value) and "previous checkpoint there is intact" in str(e.value)
    assert str(path) in str(e.value)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["checkpoint.npz"]  # no temporary file left
    arrays, meta = checkpoint.load(path)
    assert meta == {"step": 1} and np.array_equal(arrays["a"], np.arange(3.0))


def test_a_failed_first_write_says_nothing_was_saved(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", disk_full_after_half)
    with pytest.raises(checkpoint.CheckpointError, match="nothing was saved"):
        checkpoint.save(tmp_path / "checkpoint.npz", {"a": np.zeros(3)}, {})
    assert os.listdir(tmp_path) == []


SMALL = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden", "64,32",
         "--latent-dim", "16", "--log-every", "2"]


def test_training_on_a_full_disk_stops_cleanly_and_keeps_the_last_checkpoint(
        tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    train_mnist.main([*SMALL, "--epochs", "1", "--out", str(run)])
    good = (run / "checkpoint.npz").read_bytes()
    with monkeypatch.context() as m:
        m.setattr(np, "savez", disk_full_after_half)  # the end-of-epoch checkpoint fails
        assert train_mnist.cli(["--resume", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "train_mnist.py: error: cannot write the checkpoint" in err
    assert "No space left" in err and "intact" in err and f"--resume {run}" in err
    assert (run / "checkpoint.npz").read_bytes() == good
    assert not [p for p in os.listdir(run) if p.endswith(".tmp")]
    # Once there is space again, the run continues from the kept checkpoint, and trains what a
    # run never stopped trains: the failed save left nothing the resume reads
    assert train_mnist.cli(["--resume", str(run), "--epochs", "2"]) == 0
    assert checkpoint.load(run / "checkpoint.npz")[1]["global_step"] == 12
    straight = train_mnist.main([*SMALL, "--epochs", "2", "--out", str(tmp_path / "straight")])
    assert_same_arrays(checkpoint.load(run / "checkpoint.npz")[0],
                       checkpoint.load(straight / "checkpoint.npz")[0])


def test_any_other_write_failure_in_the_run_folder_is_a_named_error(tmp_path, monkeypatch,
                                                                     capsys):
    run = tmp_path / "run"
    train_mnist.main([*SMALL, "--epochs", "1", "--out", str(run)])
    before = snapshot(run)
    monkeypatch.setattr(pictures, "save_curves", refused)
    result = train_mnist.cli(["--resume", str(run), "--epochs", "2"])
    err = capsys.readouterr().err
    assert result == 2 and "Traceback" not in err
    assert f"cannot write in {run}" in err and "Permission denied" in err
    assert "intact" in err and f"--resume {run}" in err
    assert snapshot(run)["checkpoint.npz"] == before["checkpoint.npz"]


def fails_with(code):
    """np.savez that finds the OSError ``code`` (errno) part way through the file."""
    def savez(file, **arrays):
        file.write(b"PK\x03\x04")
        raise OSError(code, os.strerror(code))
    return savez


# The advice after a failed write fits its cause: space and permissions are fixed in place and
# the run continues from its folder; a folder that takes no files is copied and the copy resumed.
WRITE_FAULTS = {
    "disk full": (errno.ENOSPC, ["Free some disk space, then continue with --resume {run}."],
                  ["permissions", "copy"]),
    "no permission": (errno.EACCES, ["Check the folder's permissions, then continue with "
                                     "--resume {run}, or copy {run} to a folder"], ["disk space"]),
    "read-only": (errno.EROFS, ["read-only: copy {run} to a folder you can write in and "
                                "continue with --resume on the copy."],
                  ["disk space", "permissions", "then continue with --resume {run}"]),
    "takes no files": (errno.ENOENT, ["{run} takes no new files: copy {run}"],
                       ["disk space", "permissions"]),
}


@pytest.mark.parametrize("code,needles,absent", WRITE_FAULTS.values(), ids=list(WRITE_FAULTS))
def test_a_failed_checkpoint_write_says_the_fix_for_its_cause(tmp_path, monkeypatch, capsys,
                                                              code, needles, absent):
    run = tmp_path / "run"
    train_mnist.main([*SMALL, "--epochs", "1", "--out", str(run)])
    good = (run / "checkpoint.npz").read_bytes()
    with monkeypatch.context() as m:
        m.setattr(np, "savez", fails_with(code))
        assert train_mnist.cli(["--resume", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "the last one there is intact" in err
    for words in needles:
        assert words.format(run=run) in err
    for words in absent:
        assert words.format(run=run) not in err
    assert (run / "checkpoint.npz").read_bytes() == good
    # The way out the read-only message gives: the copy resumes and trains the second epoch.
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert train_mnist.cli(["--resume", str(copy), "--epochs", "2"]) == 0
    assert checkpoint.load(copy / "checkpoint.npz")[1]["global_step"] == 12


@pytest.mark.parametrize("code,needles,absent", WRITE_FAULTS.values(), ids=list(WRITE_FAULTS))
def test_any_other_failed_write_in_the_run_says_the_fix_for_its_cause(tmp_path, monkeypatch,
                                                                      capsys, code, needles,
                                                                      absent):
    run = tmp_path / "run"
    train_mnist.main([*SMALL, "--epochs", "1", "--out", str(run)])

    def fails(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(pictures, "save_curves", fails)
    assert train_mnist.cli(["--resume", str(run), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"cannot write in {run}" in err
    for words in needles:
        assert words.format(run=run) in err
    for words in absent:
        assert words.format(run=run) not in err


def test_a_new_run_whose_first_checkpoint_fails_says_to_start_again(tmp_path, monkeypatch,
                                                                    capsys):
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(np, "savez", fails_with(errno.ENOSPC))
        assert train_mnist.cli([*SMALL, "--epochs", "1", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nothing was saved" in err
    assert f"Free some disk space, delete {run} and start again." in err
    assert "--resume" not in err  # there is nothing to resume from
    assert not (run / "checkpoint.npz").exists()
    # The advice works: with the folder deleted, the same command trains.
    shutil.rmtree(run)
    assert train_mnist.cli([*SMALL, "--epochs", "1", "--out", str(run)]) == 0


def test_config_json_that_cannot_be_written_changes_nothing(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    train_mnist.main([*SMALL, "--epochs", "1", "--out", str(run)])
    before = snapshot(run)
    monkeypatch.setattr(os, "replace", refused)
    code = train_mnist.cli(["--resume", str(run), "--epochs", "2"])
    result = type("R", (), {"returncode": code, "stdout": "", "stderr": capsys.readouterr().err})
    assert_clean_error(result, "cannot write in", "Permission denied")
    assert snapshot(run) == before


# A run folder written by train_mnist.py before the house was rebuilt (commit 24f0063, made with
# --limit 64 --batch-size 32 --g-hidden 8 --d-hidden 8 --latent-dim 4 --epochs 1 --ema 0.9
# --pack 2): its config.json and checkpoint.npz as that version wrote them.
BEFORE_REBUILD = Path(__file__).resolve().parent / "data" / "run_before_rebuild"
SAME_RUN = ["--limit", "64", "--batch-size", "32", "--g-hidden", "8", "--d-hidden", "8",
            "--latent-dim", "4", "--ema", "0.9", "--pack", "2"]


def test_a_run_from_before_the_rebuild_resumes_bit_exact_and_samples(tmp_path):
    """The old folder resumes exactly as today's folder of the same run holding the same arrays.

    Today's epoch 1 of the same settings is the old version's epoch 1: bit for bit on a CPU whose
    BLAS rounds as the fixture's machine's did, to float32 rounding on another (an AMD EPYC gives
    1e-5 relative, 3e-8 absolute at most), and the random state exactly. So the old arrays go into
    today's folder, and both folders resume to epoch 2 on this machine."""
    from minigan import sample

    old = tmp_path / "old"
    shutil.copytree(BEFORE_REBUILD, old)
    assert "images" not in json.loads((old / "config.json").read_text())  # a later setting
    train_mnist.main(["--resume", str(old), "--epochs", "2"])
    today = train_mnist.main([*SAME_RUN, "--epochs", "1", "--out", str(tmp_path / "today")])
    arrays, old_meta = checkpoint.load(BEFORE_REBUILD / "checkpoint.npz")
    here, meta = checkpoint.load(today / "checkpoint.npz")
    assert sorted(arrays) == sorted(here)
    for name in arrays:
        # ten times the EPYC's spread: a tenth of one Adam step (2e-4) on the largest weights
        np.testing.assert_allclose(here[name], arrays[name], rtol=1e-4, atol=1e-7, err_msg=name)
    for key in ("global_step", "opt_G_t", "opt_D_t", "ema_t", "noise_steps", "rng"):
        assert meta[key] == old_meta[key], key
    checkpoint.save(today / "checkpoint.npz", arrays, meta)
    train_mnist.main(["--resume", str(today), "--epochs", "2"])
    a, _ = checkpoint.load(old / "checkpoint.npz")
    b, _ = checkpoint.load(today / "checkpoint.npz")
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs"
    assert sample.main([str(BEFORE_REBUILD), "-n", "8", "--out", str(tmp_path / "s.npy")]) == 0
    drawn = np.load(tmp_path / "s.npy")
    assert drawn.shape == (8, 28, 28) and len(np.unique(drawn.reshape(8, -1), axis=0)) == 8
    # the old folder, resumed, samples as today's folder holding the same arrays does
    for name, folder in (("old", old), ("today", today)):
        assert sample.main([str(folder), "-n", "8", "--out", str(tmp_path / f"{name}.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "old.npy"), np.load(tmp_path / "today.npy"))


@pytest.mark.parametrize("cut", ["8,2,1.0", "8,2,1.0,1.0,0.5,0.4"])  # cells missing; one cut
def test_a_log_row_cut_short_by_a_kill_is_dropped_and_the_run_resumes(tmp_path, cut):
    """A second Ctrl-C or a kill -9 while a row was appended leaves a last line without its
    line break: a step after the checkpoint's, which the resume drops and logs again, and
    which read_rows does not count. Before, the resume refused the log as damaged ("line 5:
    '8,2,1.0' is not a row of 6 numbers", exit status 2) where cells were missing, and read_rows
    failed on it (a TypeError) or, where only the last number was cut, counted it as a row."""
    run = train(tmp_path, "run", "--epochs", "1")  # 6 steps, logged every 2
    with open(run / "metrics.csv", "a", newline="") as f:
        f.write(cut)  # step 8's row, cut short
    assert [r["step"] for r in rundir.read_rows(run / "metrics.csv")] == [2, 4, 6]
    train_mnist.main(["--resume", str(run), "--epochs", "2"])
    assert [r["step"] for r in rundir.read_rows(run / "metrics.csv")] == list(range(2, 13, 2))
    lines = (run / "metrics.csv").read_text().splitlines()
    assert len(lines) == 7 and all(line.count(",") == 5 for line in lines)  # header, 6 rows
