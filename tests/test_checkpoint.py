"""Fault injection in the checkpoint write: a disk that fills up or a folder that refuses the
file leaves the previous checkpoint byte-identical, no temporary file, and a named error."""

import errno
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import train_mnist
from clitest import assert_clean_error, snapshot
from minigan import checkpoint, pictures


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
    # Once there is space again, the run continues from the kept checkpoint.
    assert train_mnist.cli(["--resume", str(run), "--epochs", "2"]) == 0
    assert checkpoint.load(run / "checkpoint.npz")[1]["global_step"] == 12


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


def test_a_run_from_before_the_rebuild_resumes_bit_exact_and_samples(tmp_path):
    import shutil

    from minigan import sample

    old = tmp_path / "old"
    shutil.copytree(BEFORE_REBUILD, old)
    assert "images" not in json.loads((old / "config.json").read_text())  # a later setting
    train_mnist.main(["--resume", str(old), "--epochs", "2"])
    straight = train_mnist.main(["--limit", "64", "--batch-size", "32", "--g-hidden", "8",
                                 "--d-hidden", "8", "--latent-dim", "4", "--epochs", "2",
                                 "--ema", "0.9", "--pack", "2", "--out", str(tmp_path / "new")])
    a, _ = checkpoint.load(old / "checkpoint.npz")
    b, _ = checkpoint.load(straight / "checkpoint.npz")
    assert sorted(a) == sorted(b)
    for name in a:
        assert np.array_equal(a[name], b[name]), f"{name} differs"
    assert sample.main([str(BEFORE_REBUILD), "-n", "8", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (8, 28, 28)
