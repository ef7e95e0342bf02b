"""The benchmarks that run train_mnist.py (or python -m minigan.toy) as a child and have no test
file of their own, ablate_recipe.py and first_games.py: a child that a signal stopped (Ctrl-C, or
`kill` of that child alone) exits 128 + the signal's number, saved, and is reported stopped, for
the same command to resume; a child that fails (1, or 2 for bad input) is still a failure.
time_to_quality.py's and conditional_runs.py's are in their own test files. The children here
are fakes: subprocess.run returns at once with the exit status under test. And what they read
of a run a kill cut short: eval.csv's last row."""

import os
import signal
import time
from types import SimpleNamespace

import pytest

from clitest import load_benchmark

ablate = load_benchmark("ablate_recipe")
games = load_benchmark("first_games")

STOPS = [143, 130, 129, 141, -15]  # -15: subprocess's word for a second SIGTERM, which ends it
FAILURES = [1, 2]


def shell(code):
    """An exit status as a shell reports it: 128 + the signal's number for subprocess's -N."""
    return 128 - code if code < 0 else code


def children_exit(monkeypatch, code):
    """Every subprocess.run ends at once with exit status `code`; returns the commands run."""
    commands = []

    def run(cmd, **kwargs):
        commands.append(cmd)
        return SimpleNamespace(returncode=code, stderr="the child's last words")

    monkeypatch.setattr(ablate.subprocess, "run", run)  # the one subprocess module of both
    return commands


@pytest.mark.parametrize("code", STOPS)
def test_ablate_recipe_reports_a_stopped_training_and_leaves_it_to_resume(tmp_path, monkeypatch,
                                                                         capsys, code):
    commands = children_exit(monkeypatch, code)
    assert ablate.mnist_job(tmp_path, "ema", 0, 5) == {}  # no scores yet, and no SystemExit
    assert commands[0][1] == "train_mnist.py"
    assert (f"ema-e5-s0: stopped (exit status {shell(code)}); the same command resumes it"
            in capsys.readouterr().out)


@pytest.mark.parametrize("code", STOPS)
def test_ablate_recipe_reports_a_stopped_lab_run_and_runs_it_again(tmp_path, monkeypatch,
                                                                   capsys, code):
    commands = children_exit(monkeypatch, code)
    assert ablate.toy_job(tmp_path, "ema", 0, "ring") is None
    assert commands[0][1:3] == ["-m", "minigan.toy"]
    assert (f"toy/ring-ema-s0: stopped (exit status {shell(code)}); the same command runs it "
            "again"
            in capsys.readouterr().out)


@pytest.mark.parametrize("job", ["mnist", "toy"])
@pytest.mark.parametrize("code", FAILURES)
def test_ablate_recipe_still_ends_on_a_failed_child(tmp_path, monkeypatch, job, code):
    children_exit(monkeypatch, code)
    with pytest.raises(SystemExit, match="failed:\nthe child's last words"):
        if job == "mnist":
            ablate.mnist_job(tmp_path, "ema", 0, 5)
        else:
            ablate.toy_job(tmp_path, "ema", 0, "ring")


@pytest.mark.parametrize("code,said", [*[(c, "stopped") for c in STOPS],
                                       *[(c, "diverged or failed") for c in FAILURES],
                                       (0, "done")])
def test_first_games_tells_a_stopped_game_from_a_failed_one(tmp_path, monkeypatch, capsys, code,
                                                           said):
    children_exit(monkeypatch, code)
    games.job(tmp_path, "mlp", "hinge", 0)
    out = capsys.readouterr().out
    assert f"mlp-hinge-s0: {said} in " in out
    assert out.rstrip().endswith("; the same command resumes it") is (said == "stopped")


def test_eval_rows_skips_a_last_row_that_a_kill_cut_short(tmp_path):
    """ablate_recipe reads a run's eval.csv (time_to_quality too) to see what is done, before
    it resumes the run, which drops such a row: a DictReader of its own raised a TypeError on
    a row killed in the middle of its writing."""
    (tmp_path / "eval.csv").write_text("epoch,step,fd\r\n5,4685,30.5\r\n10,93")
    assert ablate.eval_rows(tmp_path) == {5: {"epoch": 5.0, "step": 4685.0, "fd": 30.5}}
    assert ablate.eval_rows(tmp_path / "none") == {}


def test_ablate_recipe_stops_at_ctrl_c_and_starts_no_queued_run(tmp_path, monkeypatch, capsys):
    """Ctrl-C reaches the runs under way from the terminal (each saves its step and exits) and
    the script, which waits for them and starts none of the runs queued: its thread pool went
    on starting them all."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal

    def lab_run(out, variant, seed, dataset):  # Ctrl-C comes while the first run is under way
        started.append((variant, dataset))
        if len(started) == 1:
            time.sleep(0.2)  # the script has queued the others and waits for this one
            os.kill(os.getpid(), signal.SIGINT)  # its main thread takes the signal
            time.sleep(0.3)  # this run saves its step and exits
            finished.append(variant)

    monkeypatch.setattr(ablate, "toy_job", lab_run)
    started, finished = [], []
    try:
        status = ablate.main(["--stage", "toy", "--seeds", "0", "--jobs", "1", "--out",
                              str(tmp_path / "out")])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C went through ablate_recipe.main as a KeyboardInterrupt")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert status == 130 and len(started) == 1, started  # no queued run started
    assert finished == ["default"]  # the run under way was waited for
    assert "stopped: each run saved its last step" in capsys.readouterr().err
