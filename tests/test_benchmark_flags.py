"""The flags of the benchmark scripts that have no test file of their own: a bad value ends the
script with one message that names the flag and what is allowed, exit status 2, no traceback,
and nothing written (not even an empty --out folder). Each case fails while the flags are read,
before any training or timing starts: no benchmark runs here."""

import importlib.util

import numpy as np
import pytest

from clitest import assert_clean_error, call, run_command, script


def tree(folder):
    """Every path under folder, folders too (clitest.snapshot sees files only), with the
    contents of each file."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def place(tmp_path):
    """A folder with a file where a folder may be asked for, two runs whose checkpoint.npz and
    config.json a learner would not want replaced, and samples as minigan.sample writes them."""
    (tmp_path / "afile").write_text("not a folder")
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "checkpoint.npz").write_bytes(b"a run's weights, hours of training")
        (tmp_path / run / "config.json").write_text('{"epochs": 20}')
    np.save(tmp_path / "small.npy", np.zeros((10, 28, 28), np.uint8))
    np.save(tmp_path / "floats.npy", np.zeros((10, 28, 28), np.float32))
    return tmp_path


@pytest.fixture
def inside(place, monkeypatch):
    """place, made the current folder: a case run in this process reads and writes there, as a
    subprocess with cwd=place does."""
    monkeypatch.chdir(place)
    return place


def refused(place, name, flags, needles, capsys=None):
    """Run benchmarks/NAME with flags ({tmp}: the test's folder) and check the refusal: as a
    real subprocess, or with capsys in this process (clitest.script; run it in ``inside``)."""
    before = tree(place)
    flags = [f.replace("{tmp}", str(place)) for f in flags]
    if capsys is None:
        result = run_command([f"benchmarks/{name}", *flags], cwd=place)
    else:
        result = call(script(f"benchmarks/{name}"), flags, capsys)
    assert_clean_error(result, *needles)
    assert tree(place) == before
    return result


# ---- two_spaces.py: --out replaces an earlier output of its own only ----------------------------


@pytest.mark.parametrize("victim", ["a/checkpoint.npz", "a/config.json", "afile"])
def test_two_spaces_never_writes_over_a_file_of_another_kind(place, victim):
    refused(place, "two_spaces.py", ["a", "b", "-n", "20", "--out", victim],
            [f"--out {victim}", "not an earlier output", "move that one away"])


def test_two_spaces_accepts_its_own_earlier_output_as_out(place):
    (place / "scores.json").write_text('{"n": 20, "runs": {}, "tau": 1.0, "apart": []}')
    result = refused(place, "two_spaces.py", ["a", "b", "-n", "20", "--out", "scores.json"],
                     ["a:"])  # past --out: refused for the damaged run, as before
    assert "error: --out" not in result.stderr


# ---- ablate_recipe.py: every flag before the --out folder is made ------------------------------

ABLATE = {
    "an unknown variant": (["--variants", "bogus"], ["--variants bogus", "choose from", "ema"]),
    "an empty seed": (["--seeds", "0,,1"], ["--seeds 0,,1", "integers separated by commas"]),
    "a seed out of range": (["--seeds", "-1"], ["--seeds -1", "from 0 to"]),
    "a seed twice": (["--seeds", "0,0"], ["--seeds 0,0", "0 is given twice"]),
    "no jobs": (["--jobs", "0"], ["--jobs 0: not allowed; use an integer from 1 to 64"]),
    "too many jobs": (["--jobs", "65"], ["--jobs 65: not allowed; use an integer from 1 to 64"]),
    # was argparse's "argument --jobs: invalid int value: 'x'" below the usage
    "jobs not a number": (["--jobs", "x"], ["--jobs x: not allowed; use an integer from 1 to 64"]),
}


@pytest.mark.parametrize("flags,needles", ABLATE.values(), ids=list(ABLATE))
def test_ablate_recipe_checks_every_flag_before_making_out(place, flags, needles):
    refused(place, "ablate_recipe.py", [*flags, "--out", "{tmp}/ablation"], needles)


@pytest.mark.parametrize("flags,needles", [
    (["--report", "--out", "{tmp}/afile"], ["--out", "afile", "a file, not a folder"]),
    (["--out", "{tmp}/afile/ablation"], ["--out", "afile/ablation", "is a file"]),
    (["--out", ""], ['--out ""', "empty path"]),
], ids=["--report, --out a file", "--out under a file", "an empty --out"])
def test_ablate_recipe_refuses_an_out_that_cannot_be_its_folder(place, flags, needles):
    refused(place, "ablate_recipe.py", flags, needles)


# ---- first_games.py: every flag before the --out folder is made, and before a game starts -------

FIRST_GAMES = {
    "an unknown game": (["--games", "bogus"], ["--games bogus", "choose from", "wgan-gp"]),
    "an unknown game after a known one": (["--games", "bce", "bogus"],
                                          ["--games bce bogus", "bogus is not a game"]),
    "a penalty with the DCGAN": (["--model", "dcgan", "--games", "r1"],
                                 ["r1 is not a game of --model dcgan", "hinge-sn"]),
    "a game twice": (["--games", "bce", "bce"], ["bce is given twice"]),
    "a seed not an integer": (["--seeds", "²"], ["--seeds ²", "integers"]),
    "no jobs": (["--jobs", "0"], ["--jobs 0: not allowed; use an integer from 1 to 64"]),
    "too many jobs": (["--jobs", "65"], ["--jobs 65: not allowed; use an integer from 1 to 64"]),
    "jobs not a number": (["--jobs", "x"], ["--jobs x: not allowed; use an integer from 1 to 64"]),
}


@pytest.mark.parametrize("flags,needles", FIRST_GAMES.values(), ids=list(FIRST_GAMES))
def test_first_games_checks_every_flag_before_making_out(place, flags, needles):
    refused(place, "first_games.py", [*flags, "--out", "{tmp}/games"], needles)


def test_first_games_refuses_a_file_as_out(place):
    refused(place, "first_games.py", ["--report", "--out", "{tmp}/afile"],
            ["--out", "a file, not a folder"])


# ---- own_share.py: --out and every samples file before minutes of searching ---------------------

OWN_SHARE = {
    "--out under a file": (["small.npy:5", "--out", "afile/x.json"],
                           ["--out afile/x.json", "afile is a file"]),
    "--out a folder": (["small.npy:5", "--out", "a"], ["--out a", "is a folder"]),
    "--out another file": (["small.npy:5", "--out", "a/config.json"],
                           ["--out a/config.json", "not an earlier output"]),
    "not an .npy": (["afile:5"], ["afile", "not a readable .npy"]),
    "not pixels": (["floats.npy:5"], ["floats.npy", "uint8"]),
    "no such file": (["missing.npy:5"], ["missing.npy", "cannot read"]),
    "N a superscript": (["small.npy:²"], ["small.npy:²", "N from 1 to 60000"]),
}


@pytest.mark.parametrize("what", list(OWN_SHARE))
def test_own_share_reads_its_arguments_before_the_search(inside, capsys, what):
    """The cases run in this process for speed, but "not pixels", which runs the real command
    line: its exit status 2 from the shell (own_share.py ends in sys.exit(2)), no traceback."""
    flags, needles = OWN_SHARE[what]
    result = refused(inside, "own_share.py", flags, needles,
                     None if what == "not pixels" else capsys)
    assert result.stderr.startswith("own_share.py: error: "), result.stderr  # as every command


# ---- the micro-benchmarks: they write nothing, and check every flag all the same ----------------

MICRO = {
    "bench_games --k 0": (["bench_games.py", "--k", "0"], ["--k 0", "an integer >= 1"]),
    "bench_games --steps 0": (["bench_games.py", "--steps", "0"], ["--steps 0", "from 1 to"]),
    "bench_games past MNIST": (["bench_games.py", "--steps", "500", "--k", "2"],
                               ["--steps 500 with --k 2", "use --steps 468 or fewer"]),
    "bench_conditional --steps 0": (["bench_conditional.py", "--steps", "0"],
                                    ["--steps 0", "from 1 to 937"]),
    "bench_conditional --repeats 0": (["bench_conditional.py", "--repeats", "0"],
                                      ["--repeats 0", "from 1 to"]),
    "bench_epoch_outputs --repeats 0": (["bench_epoch_outputs.py", "--repeats", "0"],
                                        ["--repeats 0", "from 1 to"]),
    "bench_epoch_outputs --epochs 1": (["bench_epoch_outputs.py", "--epochs", "1"],
                                       ["--epochs 1", "from 2 to"]),
    "bench_levers, a typo": (["bench_levers.py", "madm"], ["madm", "mlp, adam, conv, spectral"]),
    "bench_step, an empty batch size": (["bench_step.py", "--batch-sizes", "64,,128"],
                                        ["--batch-sizes 64,,128", "each an integer from 1"]),
    "bench_step --rounds 0": (["bench_step.py", "--rounds", "0"], ["--rounds 0", ">= 1"]),
    "bench_conv_floor --batch-size 0": (["bench_conv_floor.py", "--batch-size", "0"],
                                        ["--batch-size 0", ">= 1"]),
}


# The cases run in this process for speed, but one of each script, which runs the real command
# line: its exit status 2 from the shell and no traceback on stderr
MICRO_SHELL = {"bench_games --k 0", "bench_conditional --steps 0",
               "bench_epoch_outputs --repeats 0", "bench_levers, a typo", "bench_step --rounds 0",
               "bench_conv_floor --batch-size 0"}


@pytest.mark.parametrize("what", list(MICRO))
def test_micro_benchmarks_check_their_flags(inside, capsys, what):
    flags, needles = MICRO[what]
    refused(inside, flags[0], flags[1:], needles, None if what in MICRO_SHELL else capsys)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_bench_step_on_a_gpu_without_cupy_says_how_to_install_it(place):
    refused(place, "bench_step.py", ["--device", "gpu"], ["--device gpu needs CuPy",
                                                          "--device cpu"])


@pytest.mark.parametrize("script,words", [
    ("bench_levers.py", "mlp, adam, conv, spectral"),
    ("bench_layouts.py", "memory layout"),
    ("profile_dcgan_step.py", "layer by layer"),
])
def test_help_describes_the_benchmark_and_runs_nothing(tmp_path, script, words):
    result = run_command([f"benchmarks/{script}", "--help"], cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and words in " ".join(result.stdout.split())
    assert "ms" not in result.stdout.split() and "NumPy " not in result.stdout  # no timings
