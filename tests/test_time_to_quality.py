"""benchmarks/time_to_quality.py: the recipes it plans, the training minutes it reads from a run,
the time to FD <= 15, and the whole pipeline on a tiny run (docs/time_to_quality/README.md)."""

import csv
import json
import shutil
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest

from clitest import (EndedChild, assert_clean_error, call, load_benchmark, run_command,
                     skip_unless_sys_is_unwritable, snapshot)
from minigan import checkpoint, rundir, settings, tricks

ttq = load_benchmark("time_to_quality")
Children = sys.modules["children"].Children


def test_the_recipes_include_fast_on_the_mlp_and_refuse_it_on_the_dcgan():
    mlp, _ = ttq.recipes("mlp")
    assert mlp["fast"] == ["--model", "mlp", "--recipe", "fast"]
    assert mlp["bce"] == ["--model", "mlp"]
    improved = [part for name, value in tricks.IMPROVED.items()
                for part in (settings.flag(name), str(value))]
    assert mlp["bce+tricks"] == ["--model", "mlp", *improved]  # --recipe improved's settings
    dcgan, refused = ttq.recipes("dcgan")
    assert "fast" not in dcgan and "--recipe fast is the MLP's" in refused["fast"]
    lab, lab_refused = ttq.toy_recipes()  # the lab refuses --recipe fast (chosen on MNIST) only
    assert set(lab) == set(mlp) - {"fast"} and lab["bce+tricks"] == mlp["bce+tricks"]
    assert list(lab_refused) == ["fast"] and "--recipe fast" in lab_refused["fast"]
    assert "MNIST" in lab_refused["fast"]  # the lab's own message (toy_settings), not a copy


def write_run(folder, fds, scoring_seconds, stamps, machine=None):
    folder.mkdir(parents=True)
    with open(folder / "eval.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", "fd", "seconds"])
        for e, (fd, sec) in enumerate(zip(fds, scoring_seconds), start=1):
            w.writerow([e, 10 * e, fd, sec])
    (folder / "stamps.json").write_text(json.dumps({"threads": 2, "stamps": stamps,
                                                    **({"machine": machine} if machine else {})}))


def write_runs_on_two_boxes(out, fds_a, fds_b):
    """Recipe a's seed 0 on "box A" at 1 minute an epoch and its seed 1 on "box B" at 1.5, two
    epochs each, with these FDs (no scoring seconds)."""
    write_run(ttq.run_dir(out, "mlp", "a", 0), fds_a, [0, 0], {"1": 60, "2": 120},
              machine="box A")
    write_run(ttq.run_dir(out, "mlp", "a", 1), fds_b, [0, 0], {"1": 90, "2": 180},
              machine="box B")


def test_runs_of_two_machines_are_told_apart_and_notes_are_reported(tmp_path):
    # a: seed 0 on "box A" at 1 minute an epoch, seed 1 on "box B" at 1.5; b: box A only.
    out = tmp_path / "out"
    write_runs_on_two_boxes(out, [50.0, 20.0], [50.0, 20.0])
    write_run(ttq.run_dir(out, "mlp", "b", 0), [50.0, 20.0], [0, 0], {"1": 60, "2": 120},
              machine="box A")
    (ttq.run_dir(out, "mlp", "a", 1) / "note.txt").write_text("beside a test\n")
    recs, _ = ttq.mnist_tables(out, "mlp", {"a": [], "b": []}, [0, 1], 2)
    text = "\n".join(ttq.machine_lines("mlp", recs) + ttq.note_lines("mlp", recs))
    assert "- machine 1: box A: runs: 2" in text and "- machine 2: box B: runs: 1" in text
    assert "| a | 1.00 (n 1) | 1.50 (n 1) | 1.50 |" in text and "| b |" not in text
    assert "- a, seed 1: beside a test" in text
    # one machine: nothing to tell apart
    recs_b = {"b": recs["b"]}
    assert ttq.machine_lines("mlp", recs_b) == [] and ttq.note_lines("mlp", recs_b) == []


def test_a_note_written_into_a_kept_record_survives_keeping_its_folder_again(tmp_path):
    # A run kept, then noted in its record (the folder gone on other machines, no note.txt), then
    # kept again from its folder, as a rerun or --report on the machine that kept it does: the
    # record, its note and when it was kept, stays as it was, and the report from the folder gives
    # the note; a note.txt written later replaces it.
    folder = ttq.run_dir(tmp_path / "out", "mlp", "a", 0)
    write_run(folder, [50.0, 20.0], [0, 0], {"1": 60, "2": 120}, machine="box A")
    for e in ttq.sessions(2):
        (folder / f"spaces_e{e}.json").write_text('{"scores": {}}')
    archive = tmp_path / "archive"
    a = SimpleNamespace(archive=archive, epochs=2, eval_samples=200, limit=None, kept={})
    ttq.keep(folder, "mlp", "a", [], 0, a)
    path = archive / f"{folder.name}.json"
    kept = json.loads(path.read_text())
    assert kept["record"]["note"] is None
    kept["record"]["note"] = "beside it only file reads ran"
    kept["source"] = "the run folder mlp-a-s0, kept at 2026-12-04 04:12 UTC"
    path.write_text(json.dumps(kept, indent=1) + "\n")
    noted = path.read_text()
    a.kept = ttq.kept_records(archive)
    ttq.keep(folder, "mlp", "a", [], 0, a)
    assert path.read_text() == noted
    # a report from the folder (the default --out, on that machine) gives the note too
    recs, _ = ttq.mnist_tables(tmp_path / "out", "mlp", {"a": []}, [0], 2, a.kept)
    assert "- a, seed 0: beside it only file reads ran" in ttq.note_lines("mlp", recs)
    (folder / "note.txt").write_text("beside a test\n")
    ttq.keep(folder, "mlp", "a", [], 0, a)
    assert json.loads(path.read_text())["record"]["note"] == "beside a test"


def test_machines_are_numbered_in_the_order_the_archive_first_kept_their_runs(tmp_path):
    # The archive kept runs of an unrecorded machine first, then of box C, box B, box A (box D
    # none). A report of runs on box A, B and D (a folder only) keeps those numbers: B 3, A 4,
    # and D after every machine the archive holds, 5, though C and the first have no run here.
    out = tmp_path / "out"
    write_runs_on_two_boxes(out, [50.0, 20.0], [50.0, 20.0])  # a: seed 0 on box A, 1 on box B
    write_run(ttq.run_dir(out, "mlp", "b", 0), [60.0, 30.0], [0, 0], {"1": 30, "2": 60},
              machine="box D")

    def kept_run(machine, when):
        return {"source": f"the run folder x, kept at {when} UTC", "record": {"machine": machine}}

    oldest = {"source": "results.json at commit 135dbd2 (the report of 2026-11-30 22:10 UTC); "
                        "the run folder lost", "record": {"machine": None}}
    kept = {"mlp-old-s0": oldest,
            "mlp-c-s0": kept_run("box C", "2026-12-01 08:00"),
            "mlp-a-s5": kept_run("box A", "2026-12-02 10:00"),
            "mlp-b-s5": kept_run("box B", "2026-12-01 09:00"),
            "mlp-b-s6": kept_run("box B", "2026-12-02 11:00")}
    recs, lines = ttq.mnist_tables(out, "mlp", {"a": [], "b": []}, [0, 1], 2, kept)
    assert ttq.machine_numbers(recs, kept) == {"box B": 3, "box A": 4, "box D": 5}
    text = "\n".join(lines + ttq.machine_lines("mlp", recs, kept))
    assert "| a | 2 | 50.0 ± 0.0 (n 2; 1.5 min machine 3, 1.0 min machine 4) | " in text
    assert "| b | 1 | 60.0 (n 1; 0.5 min machine 5) | " in text
    assert ("- machine 3: box B: runs: 1\n- machine 4: box A: runs: 1\n"
            "- machine 5: box D: runs: 1") in text
    assert "| a | 1.50 (n 1) | 1.00 (n 1) | - | 0.67 |" in text  # columns: machines 3, 4, 5
    assert [name for name, _ in ttq.minutes_panels(recs, kept)] == ["box B", "box A", "box D"]
    # without an archive: by name
    assert ttq.machine_numbers(recs) == {"box A": 1, "box B": 2, "box D": 3}


def test_no_ratio_table_where_no_recipe_ran_on_two_machines(tmp_path):
    # a on box A, b on box B: two machines, no recipe on both, so no ratio and no empty table
    out = tmp_path / "out"
    write_run(ttq.run_dir(out, "mlp", "a", 0), [50.0, 20.0], [0, 0], {"1": 60, "2": 120},
              machine="box A")
    write_run(ttq.run_dir(out, "mlp", "b", 0), [50.0, 20.0], [0, 0], {"1": 90, "2": 180},
              machine="box B")
    recs, _ = ttq.mnist_tables(out, "mlp", {"a": [], "b": []}, [0], 2)
    text = "\n".join(ttq.machine_lines("mlp", recs))
    assert "- machine 1: box A: runs: 1\n- machine 2: box B: runs: 1" in text
    assert "No recipe ran on two of them, so no ratio of their minutes." in text
    assert "| recipe |" not in text and "ratio of its mean minutes" not in text


def test_minutes_name_their_machine_where_runs_trained_on_two(tmp_path):
    # a reaches FD 14 at epoch 2 on both seeds: 2 minutes on box A, 3 on box B; b trained on
    # box A only, at 1 minute an epoch.
    out = tmp_path / "out"
    write_runs_on_two_boxes(out, [50.0, 14.0], [50.0, 14.0])
    write_run(ttq.run_dir(out, "mlp", "b", 0), [60.0, 30.0], [0, 0], {"1": 60, "2": 120},
              machine="box A")
    _, lines = ttq.mnist_tables(out, "mlp", {"a": [], "b": []}, [0, 1], 2)
    text = "\n".join(lines)
    # the FD table: each machine's minutes apart (their mean, 2.5, would be neither's)
    assert ("| a | 2 | 50.0 ± 0.0 (n 2; 1.0 min machine 1, 1.5 min machine 2) | "
            "14.0 ± 0.0 (n 2; 2.0 min machine 1, 3.0 min machine 2) |  |") in text
    assert "| b | 1 | 60.0 (n 1; 1.0 min machine 1) | 30.0 (n 1; 2.0 min machine 1) |  |" in text
    # the time to FD 15
    assert "| a | epoch 2, 2.0 min, machine 1 | epoch 2, 3.0 min, machine 2 | yes |" in text
    assert "The runs trained on 2 machines" in text
    # one machine: no cell names one
    shutil.rmtree(ttq.run_dir(out, "mlp", "a", 1))
    _, lines = ttq.mnist_tables(out, "mlp", {"a": [], "b": []}, [0, 1], 2)
    text = "\n".join(lines)
    assert "| a | 1 | 50.0 (n 1, 1.0 min) | 14.0 (n 1, 2.0 min) |  |" in text
    assert "| a | epoch 2, 2.0 min | not run | not yet known |" in text
    assert "machines" not in text


def test_the_plot_draws_each_machines_minutes_apart(tmp_path):
    # a: seed 0 on box A at 1 minute an epoch, seed 1 on box B at 1.5, FDs 50, 20 and 40, 10.
    out = tmp_path / "out"
    write_runs_on_two_boxes(out, [50.0, 20.0], [40.0, 10.0])
    recs, _ = ttq.mnist_tables(out, "mlp", {"a": []}, [0, 1], 2)
    panels = ttq.minutes_panels(recs)
    assert [name for name, _ in panels] == ["box A", "box B"]  # a row a machine
    assert ttq.curve(panels[0][1]["a"]) == [[1, 2], [1.0, 2.0], [50.0, 20.0]]
    assert ttq.curve(panels[1][1]["a"]) == [[1, 2], [1.5, 3.0], [40.0, 10.0]]
    # the epochs row: both seeds (no machine in it)
    both = [recs["a"][0], recs["a"][1]]
    assert ttq.curve(both, epochs_only=True) == [[1, 2], [None, None], [45.0, 15.0]]
    assert ttq.plot(out, {"mlp": recs}, 10).is_file()
    # one machine: one row of all the runs, as before
    shutil.rmtree(ttq.run_dir(out, "mlp", "a", 1))
    recs, _ = ttq.mnist_tables(out, "mlp", {"a": []}, [0, 1], 2)
    assert [name for name, _ in ttq.minutes_panels(recs)] == [None]


def test_training_minutes_leave_out_the_scoring_and_the_first_fd_at_or_below_15_counts(tmp_path):
    # Stamped at the end of each epoch's scoring: 70 s, 130 s, 200 s, 275 s; the scorings took
    # 10, 20, 10 and 15 s. Training minutes: 60, 100, 160 and 220 seconds.
    run = tmp_path / "run"
    write_run(run, [90.0, 15.5, 15.0, 12.0], [10, 20, 10, 15],
              {"1": 70, "2": 130, "3": 200, "4": 275})
    rec = ttq.run_record(run)
    assert rec["minutes"] == pytest.approx({1: 1.0, 2: 100 / 60, 3: 160 / 60, 4: 220 / 60})
    assert ttq.first_below(rec) == (3, pytest.approx(160 / 60))  # 15.0 counts, 15.5 does not
    assert ttq.first_below(rec, target=10) is None


def test_a_session_resumed_within_epoch_1_counts_the_seconds_before_its_stop(tmp_path,
                                                                             monkeypatch):
    # A run stopped within its first epoch has a checkpoint of epoch 0 that holds 42 s of
    # training: the resumed session's stamps start from them, not from 0.
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes(b"")
    monkeypatch.setattr(ttq, "read_meta", lambda folder: {"epoch": 0, "elapsed": 42.0})
    lines = "minigan: training the MLP GAN\nepoch 1: Fréchet distance 500.0\n"
    argv = [sys.executable, "-c", f"print({lines!r}, end='')"]
    code, _ = ttq.train_session(run, argv, threads=1)
    stamps = json.loads((run / "stamps.json").read_text())
    assert code == 0 and 42.0 <= stamps["stamps"]["1"] < 42.0 + 30
    assert stamps["threads"] == 1 and stamps["machine"].endswith("cores")


def test_the_table_names_the_recipe_whose_slowest_seed_is_quickest(tmp_path):
    out = tmp_path / "out"
    # a: FD 15 at 4 and 6 minutes; b: at 3 and 7 minutes. a's slowest seed is the quicker.
    for recipe, (m0, m1) in {"a": (4, 6), "b": (3, 7)}.items():
        for seed, minutes in ((0, m0), (1, m1)):
            write_run(ttq.run_dir(out, "mlp", recipe, seed), [50.0, 14.0], [0, 0],
                      {"1": 60 * (minutes - 1), "2": 60 * minutes})
    recs, lines = ttq.mnist_tables(out, "mlp", {"a": [], "b": []}, [0, 1], 2)
    text = "\n".join(lines)
    assert "| a | epoch 2, 4.0 min | epoch 2, 6.0 min | no |" in text
    assert "Best time to FD ≤ 15 on every seed: a, 6.0 minutes" in text


def test_a_partial_ablation_says_what_has_not_run_and_what_is_not_yet_known(tmp_path):
    out = tmp_path / "out"
    # a: seed 0 finished (2 epochs) above 15, seed 1 scored once at 1 minute; b: seed 0 at FD 14
    # after 3 minutes, seed 1 not run; c: seed 0 failed at epoch 1.
    write_run(ttq.run_dir(out, "mlp", "a", 0), [50.0, 20.0], [0, 0], {"1": 60, "2": 120})
    write_run(ttq.run_dir(out, "mlp", "a", 1), [50.0], [0], {"1": 60})
    write_run(ttq.run_dir(out, "mlp", "b", 0), [50.0, 14.0], [0, 0], {"1": 120, "2": 180})
    write_run(ttq.run_dir(out, "mlp", "c", 0), [900.0], [0], {"1": 60})
    (ttq.run_dir(out, "mlp", "c", 0) / "failed.txt").write_text("diverged")
    recs, lines = ttq.mnist_tables(out, "mlp", {"a": [], "b": [], "c": []}, [0, 1], 2)
    text = "\n".join(lines)
    assert "| a | not reached | not yet (epoch 1) | no |" in text  # seed 0 decides it
    assert "| b | epoch 2, 3.0 min | not run | not yet known |" in text
    assert "| c | failed | not run | no |" in text
    assert "| a | 2 | 50.0 ± 0.0 (n 2, 1.0 min) | 20.0 (n 1, 2.0 min) |" in text  # no sd of one
    assert "So far 3 of the 6 planned runs have finished" in text  # a0, b0 and c0 (failed)
    assert ttq.finished_run(recs["c"][0], 2) and not ttq.finished_run(recs["a"][1], 2)
    # Both feature spaces scored a0 and b0 only: no recipe has every seed, so the ranking is on
    # seed 0 and says so; the spaces order a and b apart.
    for recipe, mlp, conv in (("a", 20.0, 30.0), ("b", 14.0, 40.0)):
        (ttq.run_dir(out, "mlp", recipe, 0) / "spaces_e2.json").write_text(json.dumps(
            {"epoch": 2, "scores": {"mlp": {"fd": mlp}, "conv": {"fd": conv}}}))
    recs = {r: {s: ttq.run_record(ttq.run_dir(out, "mlp", r, s)) for s in (0, 1)} for r in "abc"}
    lines, result = ttq.two_space_lines("mlp", recs, [0, 1])
    assert result[2]["seeds"] == [0] and result[2]["apart"] == [("b", "a")]
    assert "epoch 2: the recipes ranked in both feature spaces (seed 0 only" in lines[0]
    # With seeds 0 and 1 scored for both and seed 2 for a alone, both rank on seeds 0 and 1
    # (not on all three with a alone): b's 90 on seed 1 puts it after a in both spaces.
    for recipe, seed in (("b", 1), ("a", 2)):  # a, seed 1 was written above
        write_run(ttq.run_dir(out, "mlp", recipe, seed), [50.0, 20.0], [0, 0], {"1": 60, "2": 120})
    for recipe, seed, mlp, conv in (("a", 1, 20.0, 30.0), ("b", 1, 90.0, 90.0),
                                    ("a", 2, 20.0, 30.0)):
        (ttq.run_dir(out, "mlp", recipe, seed) / "spaces_e2.json").write_text(json.dumps(
            {"epoch": 2, "scores": {"mlp": {"fd": mlp}, "conv": {"fd": conv}}}))
    recs = {r: {s: ttq.run_record(ttq.run_dir(out, "mlp", r, s)) for s in (0, 1, 2)}
            for r in "ab"}
    lines, result = ttq.two_space_lines("mlp", recs, [0, 1, 2])
    assert result[2]["seeds"] == [0, 1] and result[2]["fd"]["b"]["mlp"] == 52.0
    assert "(mean FD over seeds 0, 1 only: the seeds every recipe run" in lines[0]


def test_the_skipped_list_names_only_the_recipes_asked_for(tmp_path, capsys):
    # The DCGAN refuses fast, and takes only --ema and --label-smoothing of the tricks: with
    # --recipes bce+tricks the report lists its refused tricks, and nothing of fast or hinge.
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:  # no folder, no runs to report: a clear error
        ttq.main(["--out", str(out), "--report"])
    assert e.value.code == 2 and not out.exists()
    assert f"--out {out}: no such folder; --report reads the runs" in capsys.readouterr().err
    out.mkdir()
    assert ttq.main(["--out", str(out), "--report", "--models", "dcgan", "--recipes",
                     "bce+tricks", "--seeds", "0"]) == 0
    skipped = (out / "time_to_quality.md").read_text().split("### Skipped")[1]
    assert "dcgan bce+tricks without --pack" in skipped
    assert "fast" not in skipped and "hinge" not in skipped
    every = ttq.main(["--out", str(out), "--report", "--models", "dcgan", "--seeds", "0"])
    skipped = (out / "time_to_quality.md").read_text().split("### Skipped")[1]
    assert every == 0 and "dcgan fast" in skipped and "dcgan hinge+tricks without" in skipped
    assert "2-D lab, fast: not run" in skipped


@pytest.fixture
def keep_signal_handlers():
    """main() installs its handlers for SIGINT, SIGTERM and SIGHUP: put pytest's back after."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_a_tiny_ablation_runs_end_to_end_and_a_rerun_skips_it(tmp_path, keep_signal_handlers,
                                                             capsys):
    out, kept = tmp_path / "ttq", tmp_path / "kept"
    flags = ["--out", str(out), "--limit", "320", "--epochs", "2", "--eval-samples", "200",
             "--seeds", "0", "--recipes", "bce", "--models", "mlp", "--stage", "mnist",
             "--jobs", "1", "--archive", str(kept)]
    assert ttq.main(flags) == 0
    run = ttq.run_dir(out, "mlp", "bce", 0)
    stamps = json.loads((run / "stamps.json").read_text())["stamps"]
    assert sorted(stamps, key=int) == ["1", "2"] and 0 < stamps["1"] < stamps["2"]
    _, meta = checkpoint.load(run / "checkpoint.npz")
    # The stamp of the last epoch is taken after its scoring, before its files and checkpoint:
    # never more than the checkpoint's own clock.
    assert stamps["2"] <= meta["elapsed"] + 0.5
    spaces = json.loads((run / "spaces_e2.json").read_text())
    assert set(spaces["scores"]) == {"mlp", "conv"}
    res = json.loads((out / "results.json").read_text())
    rec = res["mnist"]["mlp"]["bce"]["runs"]["0"]
    assert set(rec["fd"]) == {"1", "2"} and 0 < rec["minutes"]["1"] < rec["minutes"]["2"]
    before = (run / "checkpoint.npz").stat().st_mtime_ns
    assert ttq.main(flags) == 0  # finished: skipped, the report written again
    assert (run / "checkpoint.npz").stat().st_mtime_ns == before
    # --archive kept the finished run's record, which outlives its folder: with the folder
    # gone, the same command trains nothing and reports the same numbers from the record.
    record = json.loads((kept / f"{run.name}.json").read_text())
    assert record["flags"] == ["--model", "mlp"] and record["seed"] == 0
    assert record["settings"] == {"epochs": 2, "eval_samples": 200, "limit": 320}
    assert record["record"]["fd"] == rec["fd"] and record["threads"] == 1
    assert record["machine"] == ttq.machine()
    shutil.copytree(run, tmp_path / "copy")
    shutil.rmtree(run)
    capsys.readouterr()
    assert ttq.main(flags + ["--dry-run"]) == 0
    assert "train_mnist.py" not in capsys.readouterr().out  # nothing left to train
    assert ttq.main(flags) == 0 and not run.exists()
    again = json.loads((out / "results.json").read_text())["mnist"]["mlp"]["bce"]["runs"]["0"]
    assert again == rec
    assert "read from the records kept in" in (out / "time_to_quality.md").read_text()
    # A fresh clone has the records but no --out folder: --report writes from the records alone,
    # and counts those of the models it reports (not this DCGAN record beside them).
    dcgan = json.loads((kept / f"{run.name}.json").read_text()) | {"model": "dcgan"}
    (kept / "dcgan-bce-s0.json").write_text(json.dumps(dcgan))
    fresh = tmp_path / "fresh"
    assert ttq.main([flags[0], str(fresh), *flags[2:], "--report"]) == 0
    assert json.loads((fresh / "results.json").read_text())["mnist"]["mlp"]["bce"]["runs"]["0"] \
        == rec
    assert f"kept in {kept} (1 there of the models reported" in (
        fresh / "time_to_quality.md").read_text()
    (kept / "dcgan-bce-s0.json").unlink()
    # A kept run of other settings cannot stand beside these: refused before anything runs.
    other = [*flags[:6], "--eval-samples", "300", *flags[8:]]
    assert ttq.main(other) == 2
    assert "--archive" in capsys.readouterr().err and not run.exists()
    # --report keeps the runs finished since the last, but not a folder of other settings: this
    # one (200 samples a scoring) under a command that asks for 300.
    shutil.copytree(tmp_path / "copy", run)
    other_kept = tmp_path / "other"
    assert ttq.main([*other[:-1], str(other_kept), "--report"]) == 0
    assert not other_kept.exists()
    assert ttq.main([*flags[:-1], str(other_kept), "--report"]) == 0  # the same settings: kept
    assert (json.loads((other_kept / f"{run.name}.json").read_text())["record"]["fd"]
            == rec["fd"])


BAD_FLAGS = {  # flags ({tmp}: the test's folder), words the message must contain
    "an empty --out": (["--out", ""], ['--out ""', "empty path"]),  # was the repository root
    "--out a file": (["--out", "{tmp}/afile"], ["afile", "a file, not a folder"]),
    "--out under a file": (["--out", "{tmp}/afile/ttq"], ["afile/ttq", "is a file"]),
    "--report --out a file": (["--report", "--out", "{tmp}/afile"], ["a file, not a folder"]),
    "--report, no runs, no records": (["--report", "--out", "{tmp}/none"],
                                      ["--out", "no such folder", "--archive"]),
    "a seed twice": (["--seeds", "0,0"], ["--seeds 0,0", "0 is given twice"]),
    "a recipe twice": (["--recipes", "bce,hinge,bce"], ["--recipes bce,hinge,bce", "bce is"]),
    "a model twice": (["--models", "mlp,mlp"], ["--models mlp,mlp", "twice"]),
    "no run to score": (["--score-spaces", "{tmp}/nothing"], ["--score-spaces", "not a run"]),
    "an empty --archive": (["--archive", ""], ['--archive ""', "empty path"]),
    "--no-start-after 0": (["--no-start-after", "0"], ["--no-start-after 0", "above 0"]),
    "--no-start-after nan": (["--no-start-after", "nan"], ["--no-start-after nan", "above 0"]),
    "--archive a file": (["--archive", "{tmp}/afile"], ["afile", "a file, not a folder"]),
    "--archive holding a stray file": (["--archive", "{tmp}/stray"], ["--archive", "not a kept"]),
    "--eval-samples above train_mnist.py's": (["--eval-samples", "2000000"],
                                              ["--eval-samples 2000000", "from 20 to 1,000,000"]),
    "--epochs not a number": (["--epochs", "x"], ["--epochs x: not allowed; use an integer."]),
    "--jobs 65": (["--jobs", "65"], ["--jobs 65: not allowed; use an integer from 1 to 64"]),
    "--threads 65": (["--threads", "65"],
                     ["--threads 65: not allowed; use an integer from 1 to 64 (default: 1)."]),
    "--jobs 0": (["--jobs", "0"],
                 ["--jobs 0: not allowed; use an integer from 1 to 64 (default: 2)."]),
    "--no-start-after not a number": (["--no-start-after", "soon"],
                                      ["--no-start-after soon: not allowed; use a number."]),
}


def bad_flags_folder(tmp_path, flags):
    """tmp_path with the files BAD_FLAGS name; returns the flags with {tmp} filled in."""
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.json").write_text('{"not": "a record"}')
    return [f.replace("{tmp}", str(tmp_path)) for f in flags]


@pytest.mark.parametrize("flags,needles", BAD_FLAGS.values(), ids=list(BAD_FLAGS))
def test_bad_flags_are_clean_errors_that_write_nothing(tmp_path, monkeypatch, capsys, flags,
                                                       needles):
    """In-process, for speed (a subprocess is half a second of start-up a case); the test below
    runs one case as the real command line. Each is refused while the flags are read, before
    main() starts a process or a thread or takes a signal (and --dry-run starts none)."""
    flags = bad_flags_folder(tmp_path, flags)
    monkeypatch.chdir(tmp_path)  # as the command's cwd
    monkeypatch.setattr(sys, "argv", ["time_to_quality.py"])  # argparse's prog, as the script's
    before = snapshot(tmp_path)
    result = call(ttq.main, ["--stage", "toy", "--dry-run", *flags], capsys)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before


def test_a_bad_flag_is_a_clean_error_from_the_real_command_line(tmp_path):
    """One of BAD_FLAGS as a learner's shell runs it: argparse's exit status 2 from a real
    process, no traceback on stderr (the others run in-process, above)."""
    flags, needles = BAD_FLAGS["--out a file"]
    flags = bad_flags_folder(tmp_path, flags)
    before = snapshot(tmp_path)
    result = run_command(["benchmarks/time_to_quality.py", "--stage", "toy", "--dry-run",
                          *flags], cwd=tmp_path)
    assert_clean_error(result, *needles)
    assert snapshot(tmp_path) == before


def test_an_unwritable_out_is_a_clean_error(tmp_path):
    skip_unless_sys_is_unwritable()
    result = run_command(["benchmarks/time_to_quality.py", "--out", "/sys/ttq", "--dry-run"],
                         cwd=tmp_path)
    assert_clean_error(result, "--out /sys/ttq", "cannot write in /sys")


def test_a_damaged_run_to_score_is_a_clean_error(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"not a checkpoint")
    before = snapshot(tmp_path)
    result = run_command(["benchmarks/time_to_quality.py", "--score-spaces",
                          str(tmp_path / "run"), "--eval-samples", "20"], cwd=tmp_path)
    # the folder named once: was "--score-spaces RUN: RUN: no config.json there"
    assert_clean_error(result, f"--score-spaces {tmp_path / 'run'}: no config.json there; pass "
                       "the folder of a train_mnist.py run")
    assert snapshot(tmp_path) == before


def test_no_run_starts_after_no_start_after(tmp_path, keep_signal_handlers, capsys,
                                            monkeypatch):
    # The clock reads an hour on from the start at every later reading: past the deadline of
    # --no-start-after 30, so neither run starts, and the end says so.
    readings = iter([1000.0])
    monkeypatch.setattr(ttq.time, "monotonic", lambda: next(readings, 1000.0 + 3600))
    flags = ["--out", str(tmp_path / "ttq"), "--limit", "320", "--epochs", "2", "--eval-samples",
             "200", "--seeds", "0", "--recipes", "bce,hinge", "--models", "mlp", "--stage",
             "mnist", "--jobs", "1", "--no-start-after", "30"]
    assert ttq.main(flags) == 0
    said = capsys.readouterr().out
    assert "--no-start-after 30: 2 runs not started (first mlp-bce-s0)" in said
    assert not (tmp_path / "ttq" / "mnist").exists()


@pytest.mark.parametrize("stopping,code,failed", [
    (True, 130, False),  # the benchmark's Ctrl-C reached the lab too
    (False, 143, False),  # `kill` of the lab alone: 128 + SIGTERM, stopped, not failed
    (False, 1, True),  # a lab run that fails on its own
    (True, 2, False),  # anything that ends while the benchmark stops is run again
], ids=["stopped with the benchmark", "stopped alone", "failed", "ended while stopping"])
def test_a_lab_run_stopped_is_not_a_failure(tmp_path, monkeypatch, stopping, code, failed):
    """python -m minigan.toy stopped by a signal (the benchmark's Ctrl-C, or one sent to it
    alone) exits 128 + the signal's number and leaves its folder empty: no failed.txt then, so
    the next call runs it; a lab run that fails on its own keeps the reason in failed.txt and is
    not retried."""
    monkeypatch.setattr(ttq, "CHILDREN", Children())

    def lab(*args, **kwargs):  # the signal reaches the benchmark while the lab runs
        if stopping:
            ttq.CHILDREN.stop(signal.SIGINT)
        return EndedChild(code, "python -m minigan.toy: ...")

    monkeypatch.setattr(subprocess, "Popen", lab)
    a = SimpleNamespace(deadline=None, not_started=[], toy_steps=40, threads=1)
    monkeypatch.setattr(ttq, "toy_command", lambda *args: ["python", "-m", "minigan.toy"])
    status = ttq.toy_job(tmp_path, "bce", [], 0, "ring", a)
    assert (tmp_path / "toy" / "ring-bce-s0" / "failed.txt").exists() is failed
    assert status == (code if code in (130, 143) else None)


@pytest.mark.parametrize("code", [143, -15, 130, 141, 1, 2])
def test_a_training_stopped_alone_is_resumable_and_the_ablation_says_so(
        tmp_path, keep_signal_handlers, monkeypatch, capsys, code):
    """A train_mnist.py session stopped by a signal sent to it, not to the benchmark (`pkill
    -TERM -f train_mnist`), exits 128 + the signal's number with its checkpoint short of the
    session's end (here: none yet); subprocess gives -15 where a second SIGTERM ended it at
    once. The run is reported stopped, gets no failed.txt (the next call resumes it), and the
    ablation exits with that status, not 0. A session that fails (1, or 2 for bad input) is
    recorded in failed.txt and not retried, as before."""
    sessions = []

    def session(argv, **kwargs):  # the child ends at once, as told
        sessions.append(argv)
        return EndedChild(code)

    monkeypatch.setattr(subprocess, "Popen", session)
    out = tmp_path / "ttq"
    status = ttq.main(["--out", str(out), "--limit", "320", "--epochs", "2", "--eval-samples",
                       "200", "--seeds", "0", "--recipes", "bce", "--models", "mlp", "--stage",
                       "mnist", "--jobs", "1"])
    said = capsys.readouterr().out
    run = ttq.run_dir(out, "mlp", "bce", 0)
    assert len(sessions) == 1
    if code in (1, 2):
        assert status == 0 and (run / "failed.txt").exists()
        assert "mlp-bce-s0: failed or diverged (see failed.txt)" in said
    else:
        stopped = 128 - code if code < 0 else code
        assert status == stopped and not (run / "failed.txt").exists()
        assert "mlp-bce-s0: stopped at epoch 0" in said
        assert f"runs stopped by a signal sent to them, not to this script: 1 (exit status " \
               f"{stopped}); the same command continues them" in said


def test_a_failed_lab_run_is_not_retried(tmp_path, capsys):
    """As an MNIST run: its failed.txt keeps the reason (the lab refuses a folder with files)."""
    folder = tmp_path / "toy" / "ring-bce-s0"
    folder.mkdir(parents=True)
    (folder / "failed.txt").write_text("diverged")
    assert ttq.main(["--out", str(tmp_path), "--stage", "toy", "--recipes", "bce", "--seeds",
                     "0", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "ring-bce-s0" not in plan and "grid-bce-s0" in plan


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130),
                                           (signal.SIGHUP, 129)])
def test_the_benchmark_stopped_exits_128_plus_its_signals_number(
        tmp_path, keep_signal_handlers, monkeypatch, capsys, signum, status):
    """The signal reaches the benchmark while a training runs (stop_children, its handler): it
    says each run saved its step and exits as the trainings do, 128 + the signal's number (it
    said 130 whatever the signal)."""

    def session(folder, argv, threads):
        ttq.CHILDREN.stop(signum)
        return rundir.STOPPED_STATUS["SIGTERM"], "train_mnist.py: stopped"  # what it was told

    monkeypatch.setattr(ttq, "train_session", session)
    assert ttq.main(["--out", str(tmp_path / "ttq"), "--limit", "320", "--epochs", "2",
                     "--seeds", "0", "--recipes", "bce", "--models", "mlp", "--stage", "mnist",
                     "--jobs", "1"]) == status
    assert "stopped: each run saved its last step" in capsys.readouterr().out


@pytest.mark.parametrize("scoring", [0, 130, -15, 1], ids=[
    "scored as the stop came", "the scoring stopped with us", "the scoring killed alone",
    "the scoring failed"])
def test_a_stop_while_epoch_5_is_scored_starts_no_next_session(tmp_path, monkeypatch, capsys,
                                                               scoring):
    """A stop asked for while the first session's checkpoint is scored in both spaces (a minute
    or two of a DCGAN run's two hours): the next session of train_mnist.py is not started, where
    it was, and trained to the end unasked (the stop had reached the trainings under way only).
    A scoring that a signal to it alone stopped is no failure: the next call scores it again."""
    monkeypatch.setattr(ttq, "CHILDREN", Children())
    epoch = {"now": 0}
    sessions = []

    def session(folder, argv, threads):  # trains to --epochs, as told
        sessions.append(argv)
        folder.mkdir(parents=True, exist_ok=True)
        epoch["now"] = int(argv[argv.index("--epochs") + 1])
        return 0, ""

    def score(cmd, **kwargs):  # the scoring child; our stop comes while it runs (0, 130)
        if scoring in (0, 130):
            ttq.CHILDREN.stop(signal.SIGINT)
        return EndedChild(scoring, "scoring: ...")

    monkeypatch.setattr(ttq, "train_session", session)
    monkeypatch.setattr(ttq, "epoch_of", lambda folder: epoch["now"])
    monkeypatch.setattr(subprocess, "Popen", score)
    a = SimpleNamespace(epochs=6, kept={}, deadline=None, not_started=[], threads=1,
                        eval_samples=200, archive=None, limit=0)
    run = lambda: ttq.mnist_job(tmp_path, "mlp", "bce", ["--model", "mlp"], 0, a)  # noqa: E731
    if scoring == 1:
        with pytest.raises(SystemExit, match="in both spaces failed"):
            run()
    else:
        assert run() == {0: None, 130: 130, -15: 143}[scoring]
    assert [s[s.index("--epochs") + 1] for s in sessions] == ["5"]  # no session to epoch 6
    said = capsys.readouterr().out
    assert ("stopped while epoch 5 was scored" in said) is (scoring in (130, -15))
    assert ("stopped at epoch 5" in said) is (scoring == 0)
