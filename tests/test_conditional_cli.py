"""Bad input to a conditional run of train_mnist.py: --conditional's values, and the settings
that do not go with it (--images, whose files carry no labels; --homework; the penalties,
which minigan does not derive through D(x, y)), on a new run and
on --resume. Each is one clear message naming the flags, exit status 2, no traceback, and
nothing written or changed (tests/clitest.py)."""

import os
import shutil

import numpy as np
import pytest

import train_mnist
from clitest import assert_clean_error, call, run_command, snapshot
from minigan.homework import capstone

SMALL = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden", "64,32",
         "--latent-dim", "16", "--log-every", "2"]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder with an --images file and a homework folder in it; the default run folder
    would land here too."""
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "digits.npy", np.zeros((64, 28, 28), np.uint8))
    (tmp_path / "hw").mkdir()
    for name in capstone.FILES:
        (tmp_path / "hw" / name).write_text("")
    return tmp_path


ROWS = {  # name -> (flags, words the message must contain)
    "bad value": (["--conditional", "cgan"], ["--conditional", "cgan", "concat, projection, "
                                               "acgan"]),
    "capitalised": (["--conditional", "Concat"], ["--conditional", "Concat", "concat"]),
    "images": (["--conditional", "concat", "--images", "{tmp}/digits.npy"],
               ["--images", "digits.npy", "no labels", "--conditional concat"]),
    "homework": (["--conditional", "acgan", "--homework", "{tmp}/hw"],
                 ["--homework", "--conditional acgan"]),
    # D's tricks and --recipe improved fit a conditional MLP: tests/test_conditional_tricks.py
    # has them, and what a conditional DCGAN refuses of them
    "r1": (["--conditional", "projection", "--r1", "10"], ["--r1 10", "--conditional",
                                                            "not derived"]),
    "gp": (["--conditional", "concat", "--loss", "wgan", "--gp", "10"],
           ["--gp 10", "--conditional concat"]),
    "dcgan r1": (["--model", "dcgan", "--conditional", "concat", "--r1", "1"],
                 ["--r1 1.0", "--conditional concat"]),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_a_conditional_run_refuses_what_does_not_fit(name, folder, capsys):
    flags, needles = ROWS[name]
    flags = [f.replace("{tmp}", str(folder)) for f in flags]
    before = snapshot(folder)
    result = call(train_mnist.cli, [*SMALL, "--out", str(folder / "run"), *flags], capsys)
    assert_clean_error(result, *needles)
    assert result.stderr.startswith("train_mnist.py: error:") or "usage:" in result.stderr
    assert snapshot(folder) == before and not (folder / "run").exists()


def test_the_refusal_in_a_real_terminal(folder):
    before = snapshot(folder)
    result = run_command(["train_mnist.py", *SMALL, "--conditional", "projection", "--images",
                          str(folder / "digits.npy")], cwd=folder)
    assert_clean_error(result, "--images", "no labels")
    assert snapshot(folder) == before


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cond") / "run"
    train_mnist.main([*SMALL, "--conditional", "projection", "--epochs", "1", "--out", str(run)])
    return run


RESUME_ROWS = {  # name -> (which run, flags, words)
    "another variant": ("conditional", ["--conditional", "acgan"],
                        ["--conditional", "acgan", "projection", "architecture"]),
    "conditional off": ("conditional", ["--conditional", ""], ["--conditional", "architecture"]),
    "conditional on": ("plain", ["--conditional", "concat"],
                       ["--conditional", "concat", "architecture"]),
    "images": ("conditional", ["--images", "{tmp}/digits.npy"], ["--images", "no labels"]),
    "homework": ("conditional", ["--homework", "{tmp}/hw"], ["--homework", "--conditional"]),
}


@pytest.mark.parametrize("name", list(RESUME_ROWS))
def test_resume_refuses_to_change_the_condition(name, folder, conditional_run, plain_run, capsys):
    which, flags, needles = RESUME_ROWS[name]
    run = folder / "run"
    shutil.copytree(conditional_run if which == "conditional" else plain_run, run)
    flags = [f.replace("{tmp}", str(folder)) for f in flags]
    before = snapshot(folder)
    result = call(train_mnist.cli, ["--resume", str(run), "--epochs", "2", *flags], capsys)
    assert_clean_error(result, *needles)
    assert snapshot(folder) == before
    assert sorted(os.listdir(folder)) == ["digits.npy", "hw", "run"]
