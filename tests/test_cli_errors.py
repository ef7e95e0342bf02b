"""Bad input to train_mnist.py and minigan.sample (and an empty run folder to minigan.evaluate):
one clear message, exit status 2, no traceback, and nothing written or changed. Most rows run
in-process (fast); a few run as a learner would, in a subprocess, to prove no traceback reaches
a real terminal."""

import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import train_mnist
from clitest import (ROOT, assert_clean_error, call, damaged_npy, message, run_command,
                     snapshot)
from minigan import checkpoint, evaluate, rules, rundir, settings
from minigan import sample as sample_cli

SMALL = ["--limit", "192", "--batch-size", "32", "--g-hidden", "32,64", "--d-hidden", "64,32",
         "--latent-dim", "16", "--log-every", "2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run of one epoch; tests copy it before damaging it."""
    run = tmp_path_factory.mktemp("trained") / "run"
    train_mnist.main([*SMALL, "--epochs", "1", "--out", str(run)])
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


# ---- train_mnist.py: a bad value for every flag ---------------------------------------------

# (flags, words the message must contain). Each names the flag and the value.
TRAIN_ROWS = {
    "device": (["--device", "tpu"], ["--device", "tpu", "cpu, gpu"]),
    "model": (["--model", "gan"], ["--model", "gan", "mlp, dcgan"]),
    "epochs": (["--epochs", "-1"], ["--epochs", "-1", ">= 1"]),
    "batch_size": (["--batch-size", "0"], ["--batch-size", "0", ">= 1"]),
    "lr_g": (["--lr-g", "-1"], ["--lr-g", "-1", "> 0"]),
    "lr_d": (["--lr-d", "nan"], ["--lr-d", "nan", "> 0"]),
    "beta1": (["--beta1", "1.0"], ["--beta1", "1.0", "[0, 1)"]),
    "beta2": (["--beta2", "-0.1"], ["--beta2", "-0.1", "[0, 1)"]),
    "latent_dim": (["--latent-dim", "0"], ["--latent-dim", "0", "from 1 to"]),
    "g_hidden": (["--g-hidden", "32,0"], ["--g-hidden", "32,0", "widths"]),
    "d_hidden": (["--d-hidden", "64,,32"], ["--d-hidden 64,,32: not allowed", "comma-separated",
                                           "(default: 1024,512,256)"]),
    "slope": (["--slope", "inf"], ["--slope", "inf", "[0, 1)"]),
    "k": (["--k", "0"], ["--k", "0", ">= 1"]),
    "gen_loss": (["--gen-loss", "wasserstein"], ["--gen-loss", "wasserstein", "minimax"]),
    "label_smoothing": (["--label-smoothing", "1.5"], ["--label-smoothing", "1.5", "[0, 1)"]),
    "seed": (["--seed", "-1"], ["--seed", "-1", "from 0 to"]),
    "dtype": (["--dtype", "float16"], ["--dtype", "float16", "float32"]),
    "limit": (["--limit", "-10"], ["--limit", "-10", ">= 0"]),
    "data_dir": (["--data-dir", "{tmp}/nowhere"], ["--data-dir", "nowhere", "folder"]),
    "images": (["--images", "{tmp}/nowhere.npy"], ["--images", "nowhere.npy", ".npy", "uint8"]),
    "out": (["--out", "{tmp}/a_file"], ["--out", "a_file", "not a file"]),
    "log_every": (["--log-every", "0"], ["--log-every", "0", ">= 1"]),
    "sample_every": (["--sample-every", "0"], ["--sample-every", "0", ">= 1"]),
    "homework": (["--homework", "{tmp}"], ["--homework", "minigan.homework start"]),
    "eval_every": (["--eval-every", "-1"], ["--eval-every", "-1", ">= 0"]),
    "eval_samples": (["--eval-samples", "4"], ["--eval-samples", "4", "from 5 to"]),
    "recipe": (["--recipe", "better"], ["--recipe", "better", "default", "improved", "fast"]),
    "ema": (["--ema", "1.0"], ["--ema", "1.0", "(0, 1)"]),
    "minibatch_std": (["--minibatch-std", "2"], ["--minibatch-std", "2", "0 or 1"]),
    "pack": (["--pack", "0"], ["--pack", "0", "from 1 to 64"]),
    "instance_noise": (["--instance-noise", "-0.1"], ["--instance-noise", "-0.1", ">= 0"]),
    "d_dropout": (["--d-dropout", "1"], ["--d-dropout", "1", "[0, 1)"]),
    "loss": (["--loss", "kl"], ["--loss", "kl", "lsgan", "hinge", "wgan"]),
    "clip": (["--clip", "-0.01"], ["--clip", "-0.01", "[-clip, clip]"]),
    "spectral_norm": (["--spectral-norm", "2"], ["--spectral-norm", "2", "0 or 1"]),
    "r1": (["--r1", "-1"], ["--r1", "-1", ">= 0"]),
    "gp": (["--gp", "nan"], ["--gp", "nan", ">= 0"]),
    "optimizer": (["--optimizer", "sgd"], ["--optimizer", "sgd", "adam, rmsprop"]),
    "conditional": (["--conditional", "cgan"], ["--conditional", "cgan", "concat, projection"]),
}
MORE_TRAIN_ROWS = [
    # a value of the wrong type: the rule's message, not argparse's "invalid int value"
    (["--epochs", "1.5"], ["--epochs 1.5: not allowed", ">= 1", "(default: 20)"]),
    (["--epochs", "abc"], ["--epochs abc: not allowed", ">= 1", "(default: 20)"]),
    (["--epochs", ""], ["--epochs", ">= 1", "(default: 20)"]),
    (["--lr-g", "fast"], ["--lr-g fast: not allowed", "> 0"]),
    # an empty path is refused, never taken for "not given"
    (["--resume", ""], ["--resume ''", "empty path", "run folder"]),
    (["--out", ""], ["--out ''", "empty path"]),
    (["--data-dir", ""], ["--data-dir ''", "empty path"]),
    (["--images", ""], ["--images ''", "empty path"]),
    (["--homework", ""], ["--homework ''", "empty path"]),
    (["--out", "{tmp}/" + "a" * 300], ["--out", "too long"]),
    (["--data-dir", "{tmp}"], ["--data-dir", "the four MNIST files"]),  # no MNIST there
    (["--eval-every", "1", "--eval-samples", "1000000000000"], ["--eval-samples", "1,000,000"]),
    (["--seed", str(2**64)], ["--seed", str(2**64), "from 0 to 4294967295"]),
    (["--out", "{tmp}/a_file/run"], ["--out", "a_file", "not a file"]),
    (["--k", "7"], ["--k 7", "--batch-size 32", "--limit"]),  # 192 images: 6 batches, not 7
    (["--limit", "16"], ["--batch-size", "--limit"]),
    (["--resume", "{tmp}/nowhere"], ["--resume", "no run there"]),
    (["--pack", "3"], ["--pack 3", "--batch-size", "32"]),  # 32 rows do not split in threes
    (["--pack", "32", "--minibatch-std", "1"], ["--minibatch-std", "--pack 32", "gives 1"]),
    (["--model", "dcgan", "--pack", "2"], ["--pack", "MLP", "--model dcgan"]),
    (["--model", "dcgan", "--recipe", "improved"], ["--recipe improved", "MLP", "--ema"]),
    (["--model", "dcgan", "--recipe", "fast"], ["--recipe fast", "MLP", "--ema"]),
    (["--recipe", "fast", "--gp", "10"], ["--gp", "--minibatch-std", "together"]),
    (["--loss", "wgan", "--gen-loss", "minimax"], ["--gen-loss minimax", "--loss wgan"]),
    (["--loss", "hinge", "--label-smoothing", "0.1"], ["--label-smoothing", "--loss hinge"]),
    (["--model", "dcgan", "--gp", "10"], ["--gp", "BatchNorm", "--spectral-norm"]),
    (["--model", "dcgan", "--r1", "10"], ["--r1", "BatchNorm"]),
    (["--recipe", "improved", "--r1", "1"], ["--r1", "--minibatch-std", "together"]),
    (["--pack", "2", "--gp", "1"], ["--gp", "--pack 2", "together"]),
    pytest.param(["--device", "gpu"], ["--device gpu", "--device cpu"],
                 marks=pytest.mark.skipif(importlib.util.find_spec("cupy") is not None,
                                          reason="CuPy is installed: --device gpu may work")),
]


def test_every_setting_has_a_rule_and_a_bad_value_here():
    names = [f.name for f in fields(settings.Config)]
    assert sorted(settings.RULES) == sorted(names)
    assert sorted(TRAIN_ROWS) == sorted(names)
    settings.validate(settings.Config())  # the defaults are allowed


@pytest.mark.parametrize("flags,needles", [*TRAIN_ROWS.values(), *MORE_TRAIN_ROWS],
                         ids=[*TRAIN_ROWS, *(" ".join(r.values[0] if hasattr(r, "values") else r[0])
                                          for r in MORE_TRAIN_ROWS)])
def test_train_bad_flag_is_a_clean_error_that_writes_nothing(flags, needles, tmp_path,
                                                             monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default run folder would land here
    (tmp_path / "a_file").write_text("not a folder")
    before = snapshot(tmp_path)
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    out = [] if "--out" in flags or "--resume" in flags else ["--out", str(tmp_path / "run")]
    result = call(train_mnist.cli, [*SMALL, *out, *flags], capsys)
    assert_clean_error(result, *needles)
    assert result.stderr.startswith("train_mnist.py: error:") or "usage:" in result.stderr
    assert snapshot(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["a_file"]


def test_a_value_of_the_wrong_type_is_one_line_without_the_usage(capsys):
    result = call(train_mnist.cli, ["--epochs", "abc"], capsys)
    assert_clean_error(result)
    assert result.stderr == ("train_mnist.py: error: --epochs abc: not allowed; use an integer "
                             ">= 1 (default: 20).\n")


WIDTHS = ("comma-separated layer widths, each an integer from 1 to 100000, like 256,512,1024 "
          "(default: {})")


@pytest.mark.parametrize("argv,said", [
    (["--g-hidden", "32,"], "--g-hidden 32,: not allowed; use " + WIDTHS.format("256,512,1024")),
    (["--g-hidden", ""], '--g-hidden "": not allowed; use ' + WIDTHS.format("256,512,1024")),
    (["--d-hidden", "a,b"], "--d-hidden a,b: not allowed; use " + WIDTHS.format("1024,512,256")),
])
def test_a_list_of_widths_that_is_not_one_is_one_line_with_the_rule(argv, said, capsys):
    """As every other flag: the flag, the value, what is allowed, the default; no usage block
    and no argparse "argument --g-hidden:" (it said "'32,' is not a list of widths")."""
    result = call(train_mnist.cli, argv, capsys)
    assert_clean_error(result)
    assert result.stderr == f"train_mnist.py: error: {said}.\n"


def test_the_labs_hidden_widths_share_the_parser_and_its_message(capsys):
    """minigan.toy's --hidden is read by the same parser (settings.parser) with the lab's rule."""
    from minigan import toy

    assert toy.parse_args(["--hidden", "16,8"])[0].hidden == (16, 8)
    with pytest.raises(SystemExit) as e:
        toy.parse_args(["--hidden", "64,"])
    assert e.value.code == 2 and capsys.readouterr().err == (
        "python -m minigan.toy: error: --hidden 64,: not allowed; use comma-separated widths of "
        "G's hidden layers, like 128,128 (D mirrors them) (default: 128,128).\n")


def test_a_tilde_is_expanded_once_where_the_flag_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    given, _ = settings.parse_train_args(["--out", "~/newrun", "--data-dir", "~"])
    assert given == {"out": str(tmp_path / "newrun"), "data_dir": str(tmp_path)}
    cfg = settings.new_config({"out": given["out"]})
    assert cfg.out == str(tmp_path / "newrun")  # created there, where it was checked


IMAGE_FILES = {  # a file --images refuses -> words its message must contain
    "floats.npy": (np.zeros((8, 28, 28), np.float32), ["float32", "uint8", "(N, 28, 28)"]),
    "flat.npy": (np.zeros((8, 784), np.uint8), ["(8, 784)", "(N, 28, 28)"]),
    "color.npy": (np.zeros((8, 28, 28, 3), np.uint8), ["(8, 28, 28, 3)", "(N, 28, 28)"]),
    "empty.npy": (np.zeros((0, 28, 28), np.uint8), ["no images"]),
    "pickled.npy": (np.array([{"a": 1}], dtype=object), ["pickle"]),
}


@pytest.mark.parametrize("name", sorted(IMAGE_FILES))
def test_images_of_the_wrong_kind_are_a_clean_error_that_writes_nothing(name, tmp_path, capsys):
    array, needles = IMAGE_FILES[name]
    np.save(tmp_path / name, array, allow_pickle=True)
    before = snapshot(tmp_path)
    result = call(train_mnist.cli, [*SMALL, "--images", str(tmp_path / name), "--out",
                                    str(tmp_path / "run")], capsys)
    assert_clean_error(result, "--images", name, *needles)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("how,needles", [("header", ["damaged .npy header"]),
                                         ("truncated", ["truncated", "7,840"])])
def test_a_damaged_npy_is_named_plainly(how, needles, tmp_path, capsys):
    damaged_npy(tmp_path, "bad.npy", how)
    before = snapshot(tmp_path)
    result = call(train_mnist.cli, [*SMALL, "--images", str(tmp_path / "bad.npy"), "--out",
                                    str(tmp_path / "run")], capsys)
    assert_clean_error(result, "--images", "bad.npy", *needles)
    assert "pickle" not in result.stderr
    assert snapshot(tmp_path) == before


def test_a_file_that_is_not_npy_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "text.npy").write_text("not an array")
    result = call(train_mnist.cli, [*SMALL, "--images", str(tmp_path / "text.npy"), "--out",
                                    str(tmp_path / "run")], capsys)
    assert_clean_error(result, "--images", "text.npy", "not a .npy array")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags,needles", [
    (["--batch-size", "0"], ["--batch-size", "0"]),
    (["--g-hidden", "a,b"], ["--g-hidden", "a,b"]),
    (["--out", "a_file"], ["--out", "a_file"]),
])
def test_train_bad_flag_in_a_real_terminal(flags, needles, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    before = snapshot(tmp_path)
    result = run_command(["train_mnist.py", *SMALL, *flags], cwd=tmp_path)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["a_file"]


def test_new_run_refuses_a_folder_with_an_unfinished_run(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("step,epoch\n2,1\n")
    before = snapshot(tmp_path)
    result = call(train_mnist.cli, [*SMALL, "--out", str(run)], capsys)
    assert_clean_error(result, "--out", "no checkpoint.npz")
    assert snapshot(tmp_path) == before


# A folder that is not a run: a user's notes, someone's results (a picture named as a run's), the
# repository itself. The old check looked for a run only and trained into them, writing
# config.json, checkpoint.npz, samples/, curves.png ... over files of those names.
NOT_A_RUN = {
    "a user's file": lambda d: (d / "notes.txt").write_text("mine"),
    "someone's results": lambda d: (d / "samples_final.png").write_bytes(b"their picture"),
    "a folder in it": lambda d: (d / "samples").mkdir(),
}


@pytest.mark.parametrize("fill", NOT_A_RUN.values(), ids=list(NOT_A_RUN))
def test_a_new_run_refuses_a_folder_that_holds_anything(fill, tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    fill(folder)
    before = snapshot(tmp_path)
    result = call(train_mnist.cli, [*SMALL, "--epochs", "1", "--out", str(folder)], capsys)
    assert_clean_error(result, f"--out {folder} already holds", "new or empty folder",
                       "choose another --out")
    assert result.stderr.count("\n") == 1 and snapshot(tmp_path) == before


def test_a_new_run_refuses_the_current_folder_in_a_real_terminal(tmp_path):
    (tmp_path / "README.md").write_text("a project")
    before = snapshot(tmp_path)
    result = run_command(["train_mnist.py", *SMALL, "--epochs", "1", "--out", "."], cwd=tmp_path)
    assert_clean_error(result, "--out . already holds README.md", "choose another --out")
    assert snapshot(tmp_path) == before


def test_a_new_run_goes_into_an_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    result = call(train_mnist.cli, [*SMALL, "--epochs", "1", "--out", str(tmp_path / "empty")],
                  capsys)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "empty" / "checkpoint.npz").is_file()


def test_a_run_folder_that_cannot_be_created_is_a_clean_error(tmp_path, monkeypatch, capsys):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refused)
    result = call(train_mnist.cli, [*SMALL, "--out", str(tmp_path / "run")], capsys)
    assert_clean_error(result, "--out", "cannot create the run folder", "Permission denied")
    assert os.listdir(tmp_path) == []


# ---- the validator under arbitrary values ---------------------------------------------------

ANY = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["cpu", "gpu", "float32", "float64", "minimax", "nonsaturating", "", ".",
                     "x\0y", "a" * 5000, 10**400, -(10**400), 2**32, 2**63, 1e308]),
    st.lists(st.integers(-3, 200_000), max_size=4).map(tuple), st.lists(st.integers(1, 9)),
    st.just((2**80,)),
)


def is_int(v, lo, hi=math.inf):
    return type(v) is int and lo <= v <= hi


def is_number(v, lo, hi, lo_open=False):
    finite = type(v) is int or (type(v) is float and not math.isnan(v) and abs(v) != math.inf)
    return finite and (lo < v if lo_open else lo <= v) and v < hi


# The allowed values, written out here independently of settings.RULES.
SPEC = {
    "device": lambda v: v in ("cpu", "gpu") and type(v) is str,
    "model": lambda v: v in ("mlp", "dcgan") and type(v) is str,
    "epochs": lambda v: is_int(v, 1), "batch_size": lambda v: is_int(v, 1),
    "k": lambda v: is_int(v, 1), "log_every": lambda v: is_int(v, 1),
    "sample_every": lambda v: is_int(v, 1), "limit": lambda v: is_int(v, 0),
    "eval_every": lambda v: is_int(v, 0), "eval_samples": lambda v: is_int(v, 5),
    "recipe": lambda v: v in ("default", "improved", "fast") and type(v) is str,
    "ema": lambda v: v == 0 and type(v) in (int, float) or is_number(v, 0, 1, lo_open=True),
    "minibatch_std": lambda v: is_int(v, 0, 1), "pack": lambda v: is_int(v, 1, 64),
    "instance_noise": lambda v: is_number(v, 0, math.inf), "d_dropout": lambda v: is_number(v, 0, 1),
    "loss": lambda v: v in ("bce", "lsgan", "hinge", "wgan") and type(v) is str,
    "clip": lambda v: is_number(v, 0, math.inf), "spectral_norm": lambda v: is_int(v, 0, 1),
    "r1": lambda v: is_number(v, 0, math.inf), "gp": lambda v: is_number(v, 0, math.inf),
    "optimizer": lambda v: v in ("adam", "rmsprop") and type(v) is str,
    "conditional": lambda v: v in ("", "concat", "projection", "acgan") and type(v) is str,
    "latent_dim": lambda v: is_int(v, 1, 100_000), "seed": lambda v: is_int(v, 0, 2**32 - 1),
    "lr_g": lambda v: is_number(v, 0, math.inf, lo_open=True),
    "lr_d": lambda v: is_number(v, 0, math.inf, lo_open=True),
    "beta1": lambda v: is_number(v, 0, 1), "beta2": lambda v: is_number(v, 0, 1),
    "slope": lambda v: is_number(v, 0, 1), "label_smoothing": lambda v: is_number(v, 0, 1),
    "g_hidden": lambda v: type(v) is tuple and len(v) > 0 and all(is_int(w, 1, 100_000)
                                                                    for w in v),
    "d_hidden": lambda v: type(v) is tuple and len(v) > 0 and all(is_int(w, 1, 100_000)
                                                                    for w in v),
    "gen_loss": lambda v: v in ("minimax", "nonsaturating") and type(v) is str,
    "dtype": lambda v: v in ("float32", "float64") and type(v) is str,
    # Paths: text; data_dir empty or an existing folder; out no file, nor under one.
    "data_dir": lambda v: type(v) is str and (v == "" or os.path.isdir(os.path.expanduser(v))),
    "images": lambda v: type(v) is str and (v == "" or v.endswith(".npy") and "\0" not in v
                                            and os.path.isfile(os.path.expanduser(v))),
    "out": lambda v: type(v) is str and (v == "" or out_ok(os.path.expanduser(v))),
    "homework": lambda v: type(v) is str and (v == "" or "\0" not in v and all(
        os.path.isfile(os.path.join(os.path.expanduser(v), f))
        for f in ("layers.py", "losses.py", "optim.py", "gan.py"))),
}


def out_ok(v):
    if "\0" in v or any(len(part) > 255 for part in v.split(os.sep)):
        return False
    for p in [v, *map(str, Path(v).parents)]:
        if os.path.exists(p):
            return os.path.isdir(p)
    return True


@given(st.dictionaries(st.sampled_from(sorted(SPEC)), ANY, max_size=4))
def test_validator_gives_a_clean_error_or_a_valid_config(changes):
    cfg = replace(settings.Config(), **changes)
    bad = [f.name for f in fields(cfg) if not SPEC[f.name](getattr(cfg, f.name))]
    if not bad:
        assert settings.validate(cfg) is cfg
        return
    with pytest.raises(settings.ConfigError) as e:
        settings.validate(cfg)
    first = "--" + bad[0].replace("_", "-")
    assert str(e.value).startswith(first + " "), str(e.value)
    assert len(str(e.value)) < 400


def test_validator_of_a_resumed_config_names_the_file():
    cfg = replace(settings.Config(), batch_size="64")
    with pytest.raises(settings.ConfigError, match=r"cfg\.json: batch_size is 64.*damaged"):
        settings.validate(cfg, flags={"epochs"}, config_file="cfg.json")


# ---- a failed --resume changes nothing ------------------------------------------------------

def edit_config(run, **changes):
    cfg = json.loads((run / "config.json").read_text())
    cfg.update(changes)
    (run / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def drop_key(run, key):
    cfg = json.loads((run / "config.json").read_text())
    del cfg[key]
    (run / "config.json").write_text(json.dumps(cfg))


def damage_meta(run):
    arrays, meta = checkpoint.load(run / "checkpoint.npz")
    del meta["global_step"]
    checkpoint.save(run / "checkpoint.npz", arrays, meta)


def append(run, name, text):
    with open(run / name, "a") as f:
        f.write(text)


def metrics_to_drop_and_a_damaged_eval(run):
    """A metrics.csv row past the checkpoint (resume would drop it) and a junk row in eval.csv:
    neither log may be rewritten."""
    header = (run / "metrics.csv").read_text().splitlines()[0]
    append(run, "metrics.csv", ",".join(["999"] + ["1"] * (header.count(","))) + "\n")
    (run / "eval.csv").write_text("epoch,step,fd\n1,6,3.5\nnot,a,number\n")


RESUME_ROWS = {
    "a flag of the recipe": (None, ["--batch-size", "64"], ["--batch-size 64", "cannot change"]),
    "a flag of the architecture": (None, ["--g-hidden", "64,64"], ["--g-hidden", "architecture"]),
    "a resumable flag out of range": (None, ["--epochs", "0"], ["--epochs 0", ">= 1"]),
    "no more epochs": (None, ["--epochs", "1"], ["already trained 1 epoch", "--epochs 1",
                                                 "larger --epochs"]),
    "another --out": (None, ["--out", "elsewhere"], ["--out elsewhere", "stays in its folder"]),
    "config not JSON": (lambda r: (r / "config.json").write_text("{\"epochs\": 2,"),
                        ["--epochs", "2"], ["config.json", "unreadable"]),
    "config a list": (lambda r: (r / "config.json").write_text("[1, 2]"), [],
                      ["config.json", "list"]),
    "config lacks a key": (lambda r: drop_key(r, "lr_g"), ["--epochs", "2"],
                           ["config.json", "missing: lr_g"]),
    "config has an unknown key": (lambda r: edit_config(r, colour="red"), ["--epochs", "2"],
                                  ["config.json", "unknown settings: colour"]),
    "config of the wrong type": (lambda r: edit_config(r, batch_size="32"), ["--epochs", "2"],
                                 ["config.json", "batch_size is 32", "damaged"]),
    "config out of range": (lambda r: edit_config(r, beta1=1.5), ["--epochs", "2"],
                            ["config.json", "beta1 is 1.5", "[0, 1)"]),
    "config of another architecture": (lambda r: edit_config(r, d_hidden=[64, 16]),
                                       ["--epochs", "2"], ["D/2.W", "architecture"]),
    "config's data folder gone": (lambda r: edit_config(r, data_dir=str(r / "moved")),
                                  ["--epochs", "2"], ["data_dir is", "moved", "pass --data-dir"]),
    "config missing": (lambda r: (r / "config.json").unlink(), ["--epochs", "2"],
                       ["no config.json"]),
    "checkpoint truncated": (
        lambda r: (r / "checkpoint.npz").write_bytes((r / "checkpoint.npz").read_bytes()[:999]),
        ["--epochs", "2"], ["checkpoint", "unreadable"]),
    "checkpoint meta damaged": (damage_meta, ["--epochs", "2"], ["checkpoint", "damaged"]),
    "metrics.csv with a junk row": (lambda r: append(r, "metrics.csv", "garbage\n"),
                                    ["--epochs", "2"], ["metrics.csv", "line", "garbage"]),
    "metrics.csv without its step column": (
        lambda r: (r / "metrics.csv").write_text((r / "metrics.csv").read_text().replace(
            "step,", "stop,", 1)), ["--epochs", "2"], ["metrics.csv", "line 1", "no step column"]),
    "eval.csv with a junk row": (metrics_to_drop_and_a_damaged_eval, ["--epochs", "2"],
                                 ["eval.csv", "line 3", "not,a,number"]),
    # a log not text was a UnicodeDecodeError traceback; a folder of its name, advice to free
    # some disk space
    "metrics.csv not text": (lambda r: (r / "metrics.csv").write_bytes(b"\xff\xfe"),
                             ["--epochs", "2"], ["metrics.csv", "not text", "restore it"]),
    "eval.csv not text": (lambda r: (r / "eval.csv").write_bytes(b"epoch\n\xff"),
                          ["--epochs", "2"], ["eval.csv", "byte 7 is not UTF-8", "restore it"]),
    "metrics.csv a folder": (lambda r: ((r / "metrics.csv").unlink(), (r / "metrics.csv").mkdir()),
                             ["--epochs", "2"], ["metrics.csv is a folder", "move it out"]),
    "eval.csv a folder": (lambda r: (r / "eval.csv").mkdir(), ["--epochs", "2"],
                          ["eval.csv is a folder", "move it out"]),
    # each of these was a RecursionError traceback
    "config nested too deep": (lambda r: (r / "config.json").write_text("[" * 100000),
                               ["--epochs", "2"], ["config.json", "nested too deep", "restore"]),
    "config of objects nested too deep": (
        lambda r: (r / "config.json").write_text('{"a":' * 100000), ["--epochs", "2"],
        ["config.json", "nested too deep"]),
}


def test_resume_takes_an_out_that_names_the_runs_own_folder(run, tmp_path, monkeypatch, capsys):
    """--resume run --out run/ (./run, its absolute path, a link to it) names the folder being
    resumed: taken, as the same value as config.json's would be; the paths are compared, not
    their spellings (it said "drop --out run/"). config.json keeps its own spelling."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link").symlink_to(run, target_is_directory=True)
    saved = json.loads((run / "config.json").read_text())["out"]
    for out in ("run/", "./run", str(run), "elsewhere/../run", "link"):
        assert settings.resumed_config({"out": out}, "run").out == saved, out
    for out in ("elsewhere", "run/x", str(tmp_path)):  # another folder: refused as before
        with pytest.raises(settings.ConfigError, match="stays in its folder; drop --out"):
            settings.resumed_config({"out": out}, "run")
    result = call(train_mnist.cli, ["--resume", "run", "--out", "run/", "--epochs", "2"], capsys)
    assert result.returncode == 0, result.stderr
    assert checkpoint.load(run / "checkpoint.npz")[1]["epoch"] == 2
    assert json.loads((run / "config.json").read_text())["out"] == saved


@pytest.mark.parametrize("damage", ["checkpoint truncated", "config of another architecture"])
def test_a_checkpoint_that_cannot_resume_does_not_suggest_resuming(damage, run, capsys):
    RESUME_ROWS[damage][0](run)
    result = call(train_mnist.cli, ["--resume", str(run), "--epochs", "2"], capsys)
    assert_clean_error(result, "checkpoint")
    assert "continue with --resume" not in result.stderr


@pytest.mark.parametrize("damage,flags,needles", RESUME_ROWS.values(), ids=list(RESUME_ROWS))
def test_failed_resume_leaves_the_run_byte_identical(damage, flags, needles, run, capsys):
    if damage:
        damage(run)
    before = snapshot(run)
    result = call(train_mnist.cli, ["--resume", str(run), *flags], capsys)
    assert_clean_error(result, *needles)
    assert snapshot(run) == before


def test_damaged_config_in_a_real_terminal(run, tmp_path):
    (run / "config.json").write_text("{ not json")
    before = snapshot(tmp_path)
    result = run_command(["train_mnist.py", "--resume", str(run)], cwd=tmp_path)
    assert_clean_error(result, "config.json", "unreadable")
    assert snapshot(tmp_path) == before


# ---- the lock: one training per run folder --------------------------------------------------

@pytest.mark.skipif(rundir.fcntl is None, reason="no fcntl (file locks) on this platform")
def test_a_second_training_into_a_locked_folder_is_refused(run, tmp_path, capsys):
    before = snapshot(run)
    with rundir.lock(run):  # as if another process were training into it
        result = call(train_mnist.cli, ["--resume", str(run), "--epochs", "2"], capsys)
        assert_clean_error(result, "another process is training into", str(run))
        assert snapshot(run) == before
        result = run_command(["train_mnist.py", "--resume", str(run), "--epochs", "2"],
                             cwd=tmp_path)
        assert_clean_error(result, "another process is training into")
        result = call(train_mnist.cli, [*SMALL, "--epochs", "1", "--out", str(tmp_path / "new")],
                      capsys)
        assert result.returncode == 0  # another folder is not locked
    assert snapshot(run) == before
    # Released: the run continues, and flags of resumable settings may change.
    result = call(train_mnist.cli, ["--resume", str(run), "--epochs", "2", "--log-every", "3",
                                    "--sample-every", "2", "--data-dir",
                                    str(ROOT / "data" / "mnist")], capsys)
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "config.json").read_text())["log_every"] == 3


@pytest.mark.skipif(rundir.fcntl is None, reason="no fcntl (file locks) on this platform")
def test_the_lock_dies_with_a_killed_process(tmp_path):
    code = ("import sys, time; from pathlib import Path; from minigan import rundir\n"
            "with rundir.lock(Path(sys.argv[1])):\n"
            "    print('locked', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(rundir.RunError, match="another process"):
            with rundir.lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()
    with rundir.lock(tmp_path):  # free again, with no clean-up by the dead process
        pass
    assert os.listdir(tmp_path) == []  # the lock wrote nothing


# ---- minigan.sample: a bad value for every argument -----------------------------------------

SAMPLE_ROWS = {
    "-n 0": (None, ["-n", "0"], ["-n 0", "from 1 to"]),
    "-n -5": (None, ["-n", "-5"], ["-n -5", "from 1 to"]),
    "-n too many": (None, ["-n", "2000000"], ["-n 2000000", "1,000,000"]),
    "-n too many for a png": (None, ["-n", "20000", "--out", "{tmp}/g.png"], ["-n 20000",
                                                                              "10,000"]),
    "-n not a number": (None, ["-n", "ten"], ["-n ten: not allowed", "from 1 to"]),
    "--frames not a number": (None, ["--frames", "x"], ["--frames x: not allowed", "from 2 to"]),
    "--out empty": (None, ["--out", ""], ["--out ''", "empty path"]),
    "--out under a file": (lambda r, t: (t / "afile").write_text("x"), ["--out", "{tmp}/afile/s.png"],
                           ["--out", "afile is a file, not a folder"]),
    "--seed -1": (None, ["--seed", "-1"], ["--seed -1", "from 0 to"]),
    "--seed 2**32": (None, ["--seed", str(2**32)], ["--seed", "from 0 to"]),
    "--out .jpg": (None, ["--out", "{tmp}/x.jpg"], ["--out", "name a file ending in .npy or "
                                                   ".png"]),
    # suffixes are compared exactly, as evaluate's and train_mnist.py --images' are: was "use a
    # .npy or a .png file name" for s.PNG, while minigan.evaluate --class-grid took g.PNG
    "--out .PNG": (None, ["--out", "{tmp}/s.PNG"], ["--out", "s.PNG", "in lower case: ",
                                                    "/s.png"]),
    "--out .Npy": (None, ["--out", "{tmp}/s.Npy"], ["in lower case: ", "/s.npy"]),
    "--out missing folder": (None, ["--out", "{tmp}/nowhere/x.npy"],
                             ["--out", "nowhere", "does not exist"]),
    "--out a folder": (lambda r, t: (t / "d.npy").mkdir(), ["--out", "{tmp}/d.npy"],
                       ["--out", "d.npy", "is a folder"]),
    # a folder that takes no files, where writing says "No such file or directory" (or, not as
    # root, "Permission denied"): was the advice to free some disk space
    "--out in /proc": pytest.param(None, ["--out", "/proc/x.npy"],
                                   ["cannot write /proc/x.npy", "choose another --out"],
                                   marks=pytest.mark.skipif(not Path("/proc/self").is_dir(),
                                                            reason="no /proc (not Linux)")),
    "--out missing": (None, ["--out"], ["--out"]),
    "--device tpu": (None, ["--device", "tpu"], ["--device tpu: not allowed; use one of cpu, "
                                                 "gpu"]),
    "run_dir missing": (lambda r, t: shutil.rmtree(r), [], ["no config.json"]),
    "config not JSON": (lambda r, t: (r / "config.json").write_text("{"), [],
                        ["config.json", "unreadable"]),
    "config a number": (lambda r, t: (r / "config.json").write_text("3"), [],
                        ["config.json", "int"]),
    "config nested too deep": (lambda r, t: (r / "config.json").write_text("[" * 100000), [],
                               ["config.json", "nested too deep"]),  # was a RecursionError
    "config lacks latent_dim": (lambda r, t: drop_key(r, "latent_dim"), [],
                                ["config.json", "latent_dim"]),
    "config g_hidden wrong type": (lambda r, t: edit_config(r, g_hidden="32,64"), [],
                                   ["config.json", "g_hidden"]),
    "config of another architecture": (lambda r, t: edit_config(r, g_hidden=[64, 64]), [],
                                       ["G/0.W", "architecture"]),
    "checkpoint missing": (lambda r, t: (r / "checkpoint.npz").unlink(), [],
                           ["no checkpoint"]),
    "checkpoint truncated": (
        lambda r, t: (r / "checkpoint.npz").write_bytes(b"PK\x03\x04 not a zip"), [],
        ["checkpoint", "unreadable"]),
}


@pytest.mark.parametrize("damage,flags,needles", SAMPLE_ROWS.values(), ids=list(SAMPLE_ROWS))
def test_sample_bad_input_is_a_clean_error_that_writes_nothing(damage, flags, needles, run,
                                                               tmp_path, capsys):
    if damage:
        damage(run, tmp_path)
    before = snapshot(tmp_path)
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    out = [] if "--out" in flags else ["--out", str(tmp_path / "s.npy")]
    result = call(sample_cli.main, [str(run), *out, *flags], capsys)
    assert_clean_error(result, *needles)
    assert "python -m minigan.sample: error:" in result.stderr
    assert snapshot(tmp_path) == before


def test_sample_bad_input_in_a_real_terminal(run, tmp_path):
    (run / "config.json").write_text("[")
    before = snapshot(tmp_path)
    for args, needles in [([str(run), "--out", "s.npy"], ["config.json"]),
                          ([str(run), "-n", "0", "--out", "s.npy"], ["-n 0"])]:
        result = run_command(["-m", "minigan.sample", *args], cwd=tmp_path)
        assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before


def test_an_empty_run_folder_is_refused_not_read_as_the_current_one(run, tmp_path, monkeypatch,
                                                                     capsys):
    # "" (an unset variable: python -m minigan.sample "$RUN") was read as the current folder,
    # so that inside a run folder the command went ahead on that run.
    monkeypatch.chdir(run)
    before = snapshot(tmp_path)
    for entry, argv, needles in [
            (sample_cli.main, ["", "--out", str(tmp_path / "s.npy")],
             ["python -m minigan.sample: error: run_dir '': an empty path", "run folder"]),
            (evaluate.main, [""],
             ["python -m minigan.evaluate: error: input '': an empty path", "run folder"])]:
        result = call(entry, argv, capsys)
        assert_clean_error(result, *needles)
        assert result.stderr.count("\n") == 1  # the one line, without argparse's usage block
    assert snapshot(tmp_path) == before


def test_sample_write_failure_leaves_nothing(run, tmp_path, monkeypatch, capsys):
    def disk_full(file, arr, *args, **kwargs):
        file.write(b"half")  # the open temporary file beside the output
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    result = call(sample_cli.main, [str(run), "--out", str(tmp_path / "s.npy")], capsys)
    assert_clean_error(result, "No space left", "nothing was written")
    assert sorted(os.listdir(tmp_path)) == ["run"]  # no half file, no temporary file


def written(path, data):
    path.write_bytes(data)
    return path


# A file already at --out: the old command replaced it silently, whatever it was.
ALREADY_THERE = {  # the file, made in the test's folder -> words the message must contain
    "a training set": (lambda r, t: np.save(t / "images.npy", np.zeros((10, 28, 28), np.uint8))
                       or t / "images.npy", ["a file is already there", "never replaces",
                                             "training set", "another --out", "delete"]),
    "a run's picture": (lambda r, t: r / "samples_final.png",
                        ["that is a file of the train_mnist.py run in", "another --out"]),
    "a run's epoch grid": (lambda r, t: r / "samples" / "epoch_001.png",
                           ["a file of the train_mnist.py run", "another --out"]),
    "a user's picture": (lambda r, t: written(t / "photo.png", b"mine"),
                         ["a file is already there", "delete"]),
}


@pytest.mark.parametrize("make,needles", ALREADY_THERE.values(), ids=list(ALREADY_THERE))
def test_sample_never_replaces_a_file(make, needles, run, tmp_path, capsys):
    out = make(run, tmp_path)
    before = snapshot(tmp_path)
    result = call(sample_cli.main, [str(run), "-n", "5", "--out", str(out)], capsys)
    assert_clean_error(result, f"--out {out}", *needles)
    assert message(result.stderr).count("\n") == 0 and snapshot(tmp_path) == before
    if "delete" in needles:  # what the message says to do works
        out.unlink()
        assert call(sample_cli.main, [str(run), "-n", "5", "--out", str(out)],
                    capsys).returncode == 0


def test_sample_run_again_to_the_same_file_says_what_to_do(run, tmp_path):
    argv = ["-m", "minigan.sample", str(run), "-n", "4", "--out", "grid.png"]
    assert run_command(argv, cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path)
    assert_clean_error(run_command(argv, cwd=tmp_path), "--out grid.png", "delete grid.png first")
    assert snapshot(tmp_path) == before


def test_sample_of_a_diverged_generator_is_a_clean_error(run, tmp_path, capsys):
    arrays, meta = checkpoint.load(run / "checkpoint.npz")
    arrays["G/0.W"][:] = np.nan
    checkpoint.save(run / "checkpoint.npz", arrays, meta)
    before = snapshot(tmp_path)
    result = call(sample_cli.main, [str(run), "--out", str(tmp_path / "s.npy")], capsys)
    assert_clean_error(result, "NaN")
    assert snapshot(tmp_path) == before


def test_networks_too_big_for_memory_are_a_clean_error_that_writes_nothing(tmp_path, monkeypatch,
                                                                           capsys):
    from minigan import models

    def no_memory(*args, **kwargs):
        raise MemoryError  # what NumPy raises for widths whose weights do not fit

    monkeypatch.setattr(models, "optimizers", no_memory)
    result = call(train_mnist.cli, [*SMALL, "--out", str(tmp_path / "run")], capsys)
    assert_clean_error(result, "do not fit in memory", "--g-hidden")
    assert os.listdir(tmp_path) == []


def test_a_long_value_keeps_both_ends_in_a_message():
    """A message names a long value by its start and its end: a deep path keeps its file name,
    the part a reader looks for (a pytest-xdist worker's temporary folders are that deep)."""
    path = "/" + "/".join(["folder"] * 30) + "/nowhere.npy"
    text = rules.show(path)
    assert len(text) == 80 and "..." in text
    assert text.startswith("/folder/folder/") and text.endswith("/folder/nowhere.npy")
    assert rules.show("/short/nowhere.npy") == "/short/nowhere.npy"


def test_networks_bigger_than_the_machine_are_refused_before_anything(tmp_path, capsys):
    """Widths whose weights and gradients alone exceed the machine's memory are refused with
    the flags, before anything is made (NumPy could otherwise be killed with no message where
    Linux overcommits memory)."""
    widths = ",".join(["100000"] * 20)  # 1.9e11 weights a network: 1.5 TB with gradients
    result = call(train_mnist.cli, ["--g-hidden", widths, "--d-hidden", widths, "--out",
                                    str(tmp_path / "run")], capsys)
    assert_clean_error(result, "do not fit in memory", "--g-hidden", "this machine has")
    assert os.listdir(tmp_path) == []


# ---- rules.Parser: argparse's own type and choice errors in the rules' words ---------------------


def demo_parser():
    p = rules.Parser(prog="demo")
    p.add_argument("command", nargs="?", choices=["start", "check"])
    p.add_argument("--jobs", type=int)
    p.add_argument("--rate", type=float)
    p.add_argument("--mode", "-m", choices=["fast", "slow"])
    return p


@pytest.mark.parametrize("argv,said", [
    (["--jobs", "x"], "--jobs x: not allowed; use an integer."),
    (["--jobs", "1.5"], "--jobs 1.5: not allowed; use an integer."),
    (["--rate", "quick"], "--rate quick: not allowed; use a number."),
    (["--mode", "warp"], "--mode warp: not allowed; use one of fast, slow."),
    (["-m", "warp"], "--mode warp: not allowed; use one of fast, slow."),  # the long name
])
def test_the_parser_words_argparse_errors_as_the_rules_do(argv, said, capsys):
    """One line, no usage block: "--jobs x: not allowed; use an integer." where argparse says
    "argument --jobs: invalid int value: 'x'" below the usage."""
    with pytest.raises(SystemExit) as e:
        demo_parser().parse_args(argv)
    assert e.value.code == 2 and capsys.readouterr().err == f"demo: error: {said}\n"


def test_a_subcommand_outside_its_choices_keeps_argparses_words(capsys):
    with pytest.raises(SystemExit) as e:
        demo_parser().parse_args(["grade"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: demo")
    assert "argument command: invalid choice:" in err and "grade" in err  # quotes by version
