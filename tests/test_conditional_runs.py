"""benchmarks/conditional_runs.py: the goal's verdicts print a number beside the goal so that it
reads as above or below it (docs/conditional/conditional.md)."""

import signal
import subprocess
import sys

import pytest

from clitest import EndedChild, assert_clean_error, load_benchmark, run_command, snapshot

runs = load_benchmark("conditional_runs")
Children = sys.modules["children"].Children


def test_a_score_that_rounds_to_the_goal_prints_the_digits_that_tell_them_apart():
    assert runs.beside(11.2116, 11.2) == "11.21" and runs.beside(17.04, 11.2) == "17.0"
    assert runs.beside(97.951, 98.0) == "97.95" and runs.beside(98.6, 98.0) == "98.6"
    assert runs.beside(11.2, 11.2) == "11.2"  # the goal itself: nothing to tell apart
    res = {("acgan", "improved"): {0: {20: {"class_consistency": 0.97951, "fd": 14.5}},
                                   1: {20: {"class_consistency": 0.986, "fd": 11.2116}}}}
    text = "\n".join(runs.goal_lines(res, [0, 1], 20))
    assert "| 97.95%, FD 14.5 | 98.6%, FD 11.21 | falls short |" in text
    assert "class consistency below 98%: 97.95% (seed 0); FD above 11.2: 14.5 (seed 0), " \
           "11.21 (seed 1)." in text


def test_the_goal_holds_at_its_edges_and_waits_for_a_missing_seed():
    """98% and FD 11.2 exactly meet the goal (>= and <=); a seed not finished leaves it unjudged
    unless a finished one already falls short."""
    at_goal = {20: {"class_consistency": 0.98, "fd": 11.2}}
    over = {20: {"class_consistency": 0.98, "fd": 11.2001}}
    res = {("concat", "default"): {0: at_goal, 1: at_goal},
           ("projection", "default"): {0: at_goal},
           ("acgan", "default"): {0: over}}
    text = "\n".join(runs.goal_lines(res, [0, 1], 20))
    assert "| concat | default | 98.0%, FD 11.2 | 98.0%, FD 11.2 | holds |" in text
    assert "- **concat, default**: the goal holds." in text
    assert "| projection | default | 98.0%, FD 11.2 | - | not judged yet |" in text
    assert "- **projection, default**: the goal not judged yet: seed 1 not finished." in text
    assert "- **acgan, default**: the goal falls short: FD above 11.2: 11.2001 (seed 0); seed 1 " \
           "not finished." in text


def junk_checkpoint(out):
    """A run folder under out whose checkpoint.npz is not one (a copy cut short, another file)."""
    run = runs.run_dir(out, "mlp", "concat", "default", 0)
    run.mkdir(parents=True)
    (run / "checkpoint.npz").write_bytes(b"not a checkpoint")
    return run


@pytest.mark.parametrize("mode", ["--dry-run", "--report"])
def test_a_junk_checkpoint_is_a_clean_error(tmp_path, mode):
    run = junk_checkpoint(tmp_path / "out")
    before = snapshot(tmp_path)
    result = run_command(["benchmarks/conditional_runs.py", "--seeds", "0", "--variants", "concat",
                          "--recipes", "default", "--out", str(tmp_path / "out"), mode],
                         cwd=tmp_path)
    assert_clean_error(result, f"checkpoint {run / 'checkpoint.npz'} is unreadable",
                       f"move {run} away")
    assert snapshot(tmp_path) == before


def test_a_checkpoint_damaged_while_its_run_trains_fails_that_run_with_its_message(tmp_path,
                                                                                  capsys):
    """The plan read a good checkpoint; the step's child left a damaged one (a full disk, a
    hand): that run stops with the checkpoint's message, where a traceback ended the script."""
    run = runs.run_dir(tmp_path / "out", "mlp", "concat", "default", 0)
    run.mkdir(parents=True)
    damage = [sys.executable, "-c",
              f"open({str(run / 'checkpoint.npz')!r}, 'wb').write(b'not a checkpoint')"]
    step = runs.Step("train to epoch 5", damage, 5)
    assert runs.job(run, [step], tmp_path) == ("train to epoch 5", 1)
    out = capsys.readouterr().out
    assert f"{run.name}: train to epoch 5: failed (checkpoint {run / 'checkpoint.npz'} is " \
           "unreadable" in out


def test_a_checkpoint_damaged_before_the_last_report_is_a_clean_error(tmp_path, monkeypatch,
                                                                      capsys):
    out = tmp_path / "out"

    def runs_that_leave_junk(todo, jobs, logs):
        junk_checkpoint(out)
        return []
    monkeypatch.setattr(runs, "run_all", runs_that_leave_junk)
    assert runs.main(["--seeds", "0", "--variants", "concat", "--recipes", "default", "--out",
                      str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conditional_runs.py: error: checkpoint") and "unreadable" in err


@pytest.mark.parametrize("code,said,status", [
    (143, "stopped", 143),  # `kill` of this run's train_mnist.py alone: 128 + SIGTERM
    (-15, "stopped", 143),  # a second SIGTERM ends it at once (subprocess says -15)
    (129, "stopped", 129),  # SIGHUP
    (1, "failed", 1),
    (2, "failed", 1),
])
def test_a_training_stopped_alone_is_stopped_not_failed(tmp_path, capsys, code, said, status):
    """A train_mnist.py step stopped by a signal sent to it, not to this script, exits 128 + the
    signal's number with its checkpoint short of the step's epoch (here: none yet): the run is
    reported stopped, with that status, and the same command resumes it; 1 or 2 is a failure."""
    run = runs.run_dir(tmp_path / "out", "mlp", "concat", "default", 0)
    run.mkdir(parents=True)
    child = [sys.executable, "-c", "import os; os.kill(os.getpid(), 15)" if code < 0
             else f"raise SystemExit({code})"]
    steps = [runs.Step("train to epoch 5", child, 5), runs.Step("never started", child, 5)]
    assert runs.job(run, steps, tmp_path) == ("train to epoch 5", status)
    assert f"{run.name}: train to epoch 5: {said} (see " in capsys.readouterr().out


@pytest.mark.parametrize("ended,status", [
    ([], 0),
    ([("train to epoch 5", 143)], 143),  # stopped alone: resumable, and not 0
    ([("train to epoch 5", 143), ("score epoch 5", 1)], 1),  # a failure says more
], ids=["all done", "one stopped", "one stopped, one failed"])
def test_the_exit_status_says_a_run_was_stopped_or_failed(tmp_path, monkeypatch, capsys, ended,
                                                          status):
    def run_all(todo, jobs, logs):  # the runs' children ended so (children.py keeps the stops)
        runs.CHILDREN.stopped_alone += [code for _, code in ended if code != 1]
        return ended

    monkeypatch.setattr(runs, "CHILDREN", Children())
    monkeypatch.setattr(runs, "run_all", run_all)
    assert runs.main(["--seeds", "0", "--variants", "concat", "--recipes", "default", "--out",
                      str(tmp_path / "out")]) == status
    assert ("runs stopped by a signal sent to them, not to this script: 1 (exit status 143); "
            "the same command continues them" in capsys.readouterr().out) is (status == 143)


@pytest.mark.parametrize("name,status", [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_the_script_stopped_exits_128_plus_its_signals_number(tmp_path, monkeypatch, name,
                                                             status):
    """Ctrl-C, SIGTERM or SIGHUP to this script stops the runs, each saved, and the script exits
    128 + the signal's number, as its trainings do; it said 130 whatever the signal."""
    started = []

    def training(cmd, **kwargs):  # the signal comes as the first step's training starts
        started.append(cmd)
        runs.CHILDREN.stop(getattr(signal, name))  # (the handler's work)
        return EndedChild(143)  # told: saved, stopped

    monkeypatch.setattr(subprocess, "Popen", training)
    assert runs.main(["--seeds", "0", "--variants", "concat", "--recipes", "default", "--out",
                      str(tmp_path / "out")]) == status
    assert len(started) == 1  # the run's later steps never started
    assert signal.getsignal(signal.SIGTERM) != runs.CHILDREN.stop  # the handlers put back


@pytest.mark.parametrize("flags,needles", [
    (["--seeds", "²"], ["--seeds ²", "comma-separated seeds"]),  # str.isdigit says yes
    (["--eval-samples", "2000000"], ["--eval-samples 2000000", "from 20 to 1,000,000"]),
    (["--jobs", "x"], ["--jobs x: not allowed; use an integer."]),  # was argparse's words
], ids=["a superscript seed", "--eval-samples above train_mnist.py's bound", "--jobs x"])
def test_bad_flags_are_clean_errors(tmp_path, flags, needles):
    result = run_command(["benchmarks/conditional_runs.py", *flags, "--dry-run", "--out",
                          str(tmp_path / "out")], cwd=tmp_path)
    assert_clean_error(result, *needles)
    assert not (tmp_path / "out").exists()
