"""How a signal stops the benchmarks that train: benchmarks/children.py, which all four share,
with real child processes; and ablate_recipe.py and first_games.py, which have no test file of
their own: a child that a signal stopped (the benchmark's, or a `kill` of that child alone) exits
128 + the signal's number, saved, and is reported stopped, for the same command to resume; a
child that fails (1, or 2 for bad input) is still a failure. time_to_quality.py's and
conditional_runs.py's are in their own test files. Most children here are fakes (EndedChild):
they have ended, with the exit status under test, as soon as they start. And what they read of
a run a kill cut short: eval.csv's last row."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from clitest import EndedChild, load_benchmark

ablate = load_benchmark("ablate_recipe")
games = load_benchmark("first_games")
Children = sys.modules["children"].Children  # the one module both loaded

# A training as a stop sees it: on SIGTERM it "saves" for 0.3 s and exits 143; a second SIGTERM
# in that time ends it at once with 99 (train_mnist.py's would end it unsaved). It says it is
# ready (its handler set) in the file argv[1], and without a signal it ends with 0 after 30 s.
TRAINING = """import signal, sys, time
def save(*_):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(99))
    time.sleep(0.3)
    sys.exit(143)
signal.signal(signal.SIGTERM, save)
open(sys.argv[1], "w").close()
time.sleep(30)
"""


@pytest.fixture(autouse=True)
def hangup_as_from_a_terminal():
    """Under `nohup pytest` this process ignores SIGHUP, and `Children.listening` rightly leaves an
    ignored signal alone (nohup asked for that). The tests here that send this process a real
    SIGHUP stand for a terminal's hangup, so each starts with SIGHUP as a terminal's shell leaves
    it; the handler before is put back after."""
    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, before)


STOPS = [143, 130, 129, 141, -15]  # -15: subprocess's word for a second SIGTERM, which ends it
FAILURES = [1, 2]


def shell(code):
    """An exit status as a shell reports it: 128 + the signal's number for subprocess's -N."""
    return 128 - code if code < 0 else code


def children_exit(monkeypatch, code):
    """Every child started ends at once with exit status `code`; returns the commands run.
    Each benchmark gets a Children of its own, as a fresh process has."""
    commands = []

    def popen(cmd, **kwargs):
        commands.append(cmd)
        return EndedChild(code)

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(ablate, "CHILDREN", Children())
    monkeypatch.setattr(games, "CHILDREN", Children())
    return commands


def training(tmp_path, name):
    """The command of a TRAINING, and the file that says it is ready."""
    ready = tmp_path / f"{name}.ready"
    return [sys.executable, "-c", TRAINING, str(ready)], ready


def wait_for(path, seconds=20):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


# ---- children.py -----------------------------------------------------------------------------
def test_a_stop_tells_each_child_under_way_once_and_starts_no_other(tmp_path, capsys):
    """Each training gets one SIGTERM and saves (143): a second, from a second Ctrl-C, would end
    it unsaved (99 here). The benchmark then exits 128 + its own signal's number (130 for
    Ctrl-C), whatever its children said; a child started after the stop is none."""
    children = Children()
    started = []
    for name in ("a", "b"):
        cmd, ready = training(tmp_path, name)
        started.append(children.start(cmd))
        wait_for(ready)
    children.stop(signal.SIGINT)
    children.stop(signal.SIGINT)  # the second Ctrl-C
    assert [children.wait(proc)[0] for proc in started] == [143, 143]
    assert children.start([sys.executable, "-c", "pass"]) is None
    assert children.run([sys.executable, "-c", "pass"]) is None
    assert children.exit_status() == 130
    said = capsys.readouterr()
    assert "already stopping: each run under way is saving its step" in said.err
    assert "stopped: each run saved its last step; the same command continues them" in said.out
    assert children.stopped_alone == []  # stopped with the benchmark, not alone


def test_a_child_starts_in_a_session_of_its_own(tmp_path):
    """So a Ctrl-C at the terminal, sent to the whole foreground process group, reaches the
    benchmark alone, which tells each child once: otherwise each training would get the
    terminal's SIGINT and then the benchmark's SIGTERM, a second signal, and end unsaved."""
    children = Children()
    cmd, ready = training(tmp_path, "a")
    proc = children.start(cmd)
    try:
        wait_for(ready)
        assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
    finally:
        proc.kill()
        children.wait(proc)


@pytest.mark.parametrize("when", ["as it is made", "as it is noted"])
def test_a_stop_that_comes_as_a_child_starts_tells_it_once(monkeypatch, when):
    """The signal comes between the check that no stop was asked for and the child's start:
    start() tells it, as stop() could not see it yet. Or it comes once the child is noted as
    under way and before start() looks again: both see it, and only one tells it (a second
    SIGTERM would end a training unsaved)."""
    children = Children()
    made = []

    class Noted(dict):  # the children under way, where the handler runs as one is noted
        def __setitem__(self, proc, value):
            super().__setitem__(proc, value)
            children.stop(signal.SIGTERM)

    def popen(cmd, **kwargs):
        if when == "as it is made":
            children.stop(signal.SIGTERM)  # the handler runs while the process is being made
        made.append(EndedChild(143))
        return made[0]

    monkeypatch.setattr(subprocess, "Popen", popen)
    if when == "as it is noted":
        children._untold = Noted()
    assert children.run(["train"]).returncode == 143
    assert made[0].signals == 1
    assert children.exit_status() == 143


@pytest.mark.parametrize("code", [143, -15, 129, 1, 0])
def test_a_child_stopped_alone_sets_the_exit_status(monkeypatch, capsys, code):
    """A `kill` of one training (not of the benchmark): saved and resumable, so the benchmark
    ends with its status, not 0, and says so; a failure or a finished child is not counted."""
    monkeypatch.setattr(subprocess, "Popen", lambda cmd, **kwargs: EndedChild(code))
    children = Children()
    assert children.run(["train"]).returncode == code
    stopped = {143: 143, -15: 143, 129: 129}.get(code)
    assert children.exit_status() == (stopped or 0)
    said = capsys.readouterr().out
    assert (f"runs stopped by a signal sent to them, not to this script: 1 (exit status "
            f"{stopped}); the same command continues them" in said) is bool(stopped)


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_listening_takes_the_signals_and_puts_the_handlers_back(tmp_path, name):
    """A real signal to this process while a child trains: the child is told, and after the
    queue the handlers are those before it. A signal ignored before (nohup's SIGHUP) stays so."""
    signum = getattr(signal, name)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    ignored = signal.signal(signal.SIGHUP, signal.SIG_IGN) if name != "SIGHUP" else None
    try:
        children = Children()
        cmd, ready = training(tmp_path, "a")
        with children.listening():
            if name != "SIGHUP":
                assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            proc = children.start(cmd)
            wait_for(ready)
            os.kill(os.getpid(), signum)
            code = children.wait(proc)[0]
        assert code == 143 and children.signal_name == name
        assert children.exit_status() == 128 + signum
    finally:
        if ignored is not None:
            signal.signal(signal.SIGHUP, ignored)
    assert {s: signal.getsignal(s) for s in before} == before


# ---- ablate_recipe.py and first_games.py -----------------------------------------------------


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


@pytest.mark.parametrize("name,status", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_ablate_recipe_stopped_tells_its_runs_and_starts_no_queued_one(tmp_path, monkeypatch,
                                                                       capsys, name, status):
    """Ctrl-C, SIGTERM or SIGHUP to the script while its first run trains: that run is told
    (one SIGTERM: it saves and exits 143), none of the runs queued starts, and the script exits
    128 + its signal's number. A SIGTERM or SIGHUP left the runs training on their own, and
    Ctrl-C's KeyboardInterrupt relied on the terminal to reach them."""
    real_popen, started = subprocess.Popen, []

    def signal_when_ready(ready):  # as a user would, while the first run trains
        wait_for(ready)
        os.kill(os.getpid(), getattr(signal, name))  # the main thread runs the handler

    def popen(cmd, **kwargs):  # each lab run is a TRAINING
        started.append(cmd)
        training_cmd, ready = training(tmp_path, len(started))
        if len(started) == 1:
            threading.Thread(target=signal_when_ready, args=(ready,), daemon=True).start()
        return real_popen(training_cmd, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(ablate, "CHILDREN", Children())
    assert ablate.main(["--stage", "toy", "--seeds", "0", "--jobs", "1", "--out",
                        str(tmp_path / "out")]) == status
    assert len(started) == 1 and started[0][1:3] == ["-m", "minigan.toy"]  # none queued started
    said = capsys.readouterr()  # 143: told once, and saved (a second SIGTERM: 99, a failure)
    assert "toy/ring-default-s0: stopped (exit status 143); the same command runs it again" \
        in said.out
    assert "stopped: each run saved its last step; the same command continues them" in said.out


def test_ablate_recipe_and_first_games_end_unfinished_when_a_run_was_stopped_alone(
        tmp_path, monkeypatch, capsys):
    """A run stopped by a signal to it alone (`kill` of one training) is saved, for the same
    command to continue: the script goes on with the others, then exits with that status, as
    time_to_quality.py and conditional_runs.py do; both exited 0, as if the runs were done."""
    children_exit(monkeypatch, 143)
    assert ablate.main(["--stage", "toy", "--seeds", "0", "--variants", "ema", "--out",
                        str(tmp_path / "ablate")]) == 143
    assert games.main(["--games", "hinge", "--seeds", "0", "--out",
                       str(tmp_path / "games")]) == 143
    said = capsys.readouterr().out
    assert said.count("runs stopped by a signal sent to them, not to this script: ") == 2
    assert "runs stopped by a signal sent to them, not to this script: 2 (exit status 143)" \
        in said  # the lab's ring and grid
    children_exit(monkeypatch, 0)  # and a run that ends well leaves 0
    assert games.main(["--games", "hinge", "--seeds", "0", "--out",
                       str(tmp_path / "games2")]) == 0
