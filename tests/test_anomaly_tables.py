"""benchmarks/anomaly_tables.py: the runs it plans, and its report's means and standard deviations
over seeds, checked on anomaly.json files written here by hand (no GAN is trained)."""

import json
import statistics
from pathlib import Path

import pytest

from clitest import ROOT, assert_clean_error, load_benchmark, run_command, snapshot


def load_script():
    return load_benchmark("anomaly_tables")


def fake_run(folder, protocol, seed, digits, auroc):
    """An anomaly.json as minigan.anomaly writes it, with auroc(seed, digit, score) as AUROC."""
    names = ("anogan", "residual", "feature", "d_output", "pca", "knn")
    results = {str(d): {"auroc": {k: auroc(seed, d, k) for k in names},
                        "ms_per_image": {"anogan": 30.0 + seed, "d_output": 0.1, "pca": 0.01,
                                         "knn": 5.0},
                        "n_anomalies": 100 + d, "n_train": 54_000, "gan_seconds": 60.0}
               for d in digits}
    settings = {"seed": seed, "epochs": 10 if protocol == "one-normal" else 5, "test_n": 1000,
                "quick": False}
    folder.mkdir(parents=True)
    (folder / "anomaly.json").write_text(json.dumps(
        {"protocol": protocol, "results": results, "settings": settings}))


def test_plan_covers_every_digit_of_both_protocols_on_three_seeds(tmp_path):
    at = load_script()
    planned = at.runs(tmp_path)
    assert len(planned) == 9
    for protocol in ("one-normal", "held-out"):
        for seed in (0, 1, 2):
            cmds = [r.cmd for r in planned if r.folder.name.startswith(f"{protocol}-s{seed}")]
            digits = []
            for c in cmds:
                assert c[c.index("--seed") + 1] == str(seed)
                got = c[c.index("--digits") + 1]
                digits += list(range(10)) if got == "all" else [int(d) for d in got.split(",")]
                assert ("--protocol" in c) == (protocol == "one-normal")
            assert sorted(digits) == list(range(10))


NAMES = ("anogan", "residual", "feature", "d_output", "pca", "knn")  # the table's column order


def test_report_means_and_sds_over_seeds(tmp_path):
    """Fake AUROCs that depend on the protocol, the seed, the digit and the score, so that a cell
    read from the wrong protocol, seed, digit or column shows in the tables."""
    at = load_script()
    for folder, seed, _, cmd in at.runs(tmp_path):
        protocol = "one-normal" if "one-normal" in folder.name else "held-out"
        shift = 0.05 if protocol == "one-normal" else 0.0
        digits = cmd[cmd.index("--digits") + 1]
        digits = range(10) if digits == "all" else [int(d) for d in digits.split(",")]
        fake_run(folder, protocol, seed, digits,
                 lambda seed, d, k, shift=shift: 0.3 + 0.02 * d + 0.1 * seed
                 + 0.02 * NAMES.index(k) + shift)
    at.report(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    cell = summary["held-out"]["7"]["auroc"]["knn"]
    by_hand = [0.3 + 0.14 + 0.1 * s + 0.1 for s in (0, 1, 2)]
    assert cell["values"] == pytest.approx(by_hand)
    assert cell["mean"] == pytest.approx(statistics.fmean(by_hand))
    assert cell["sd"] == pytest.approx(0.1)  # the sample sd of x, x + 0.1, x + 0.2
    table = (tmp_path / "anomaly_tables.md").read_text()
    # digit 7, mean over seeds: 0.3 + 0.14 + 0.1 + 0.02 i (+ 0.05 one-normal), 5-NN best, bold
    for protocol, shift in (("held-out", 0.0), ("one-normal", 0.05)):
        part = table.split(f"## {protocol}\n")[1].split("\n## ")[0]  # its section alone
        cells = [f"{0.54 + 0.02 * i + shift:.3f} ± 0.100" for i in range(6)]
        cells[-1] = f"**{cells[-1]}**"
        assert "| 7 | 3 | 107-107 | " + " | ".join(cells) + " |" in part
        # the mean over digits 0-9 of 0.02 d is 0.09
        over = [f"{0.49 + 0.02 * i + shift:.3f}" for i in range(6)]
        assert "| mean over digits | | | " + " | ".join(over) + " |" in part
        assert "| digits where best | | | 0 | 0 | 0 | 0 | 0 | 10 |" in part
        # anogan's ms: 30 + seed, mean over seeds 31
        assert "AnoGAN 31, D's output 0.1, PCA 0.01, 5-NN 5." in part
    assert (tmp_path / "auroc.png").stat().st_size > 0


def test_a_run_left_without_its_results_is_named(tmp_path, capsys):
    at = load_script()
    (tmp_path / "held-out-s0-a").mkdir()
    with pytest.raises(SystemExit) as e:
        at.main(["--out", str(tmp_path), "--dry-run"])
    assert e.value.code == 2
    assert "held-out-s0-a holds a run without its anomaly.json" in capsys.readouterr().err


def test_a_run_with_other_settings_is_refused(tmp_path, capsys):
    at = load_script()
    fake_run(tmp_path / "one-normal-s1", "one-normal", 0, range(10), lambda s, d, k: 0.5)
    with pytest.raises(SystemExit) as e:
        at.main(["--out", str(tmp_path), "--report"])
    assert e.value.code == 2
    assert "are not this script's" in capsys.readouterr().err


def test_an_out_under_a_file_is_a_clean_error(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    before = snapshot(tmp_path)
    out = str(tmp_path / "afile" / "x")
    result = run_command(["benchmarks/anomaly_tables.py", "--out", out, "--dry-run"],
                         cwd=tmp_path)
    assert_clean_error(result, f"--out {out}", "afile is a file")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flags,needle", [
    (["--out", ""], "anomaly_tables.py: error: --out '': an empty path"),  # was the current folder
    (["--jobs", "x"], "anomaly_tables.py: error: --jobs x: not allowed; use an integer from 1 "
                      "to 64"),
    (["--jobs", "0"], "anomaly_tables.py: error: --jobs 0: not allowed; use an integer from 1 "
                      "to 64 (default: 2)."),  # was "anomaly_tables.py: --jobs 0: give 1 to 8 ..."
    (["--jobs", "65"], "--jobs 65: not allowed; use an integer from 1 to 64"),
], ids=["empty --out", "jobs not a number", "no jobs", "too many jobs"])
def test_bad_flags_are_the_rules_messages_and_write_nothing(tmp_path, flags, needle):
    before = snapshot(tmp_path)
    result = run_command(["benchmarks/anomaly_tables.py", *flags, "--dry-run"], cwd=tmp_path)
    assert_clean_error(result, needle)
    assert snapshot(tmp_path) == before


def test_a_relative_out_is_taken_from_the_repositorys_root():
    """The runs start in the repository's root (conditional_runs.job), so a relative --out is
    checked and read there too, not in the folder this script was started from; each command
    names the run as --out gave it."""
    first = load_script().runs(Path("runs/x"))[0]
    assert first.folder == ROOT / "runs" / "x" / "one-normal-s0"
    assert first.cmd[first.cmd.index("--out") + 1] == "runs/x/one-normal-s0"


def test_a_damaged_anomaly_json_is_named_in_the_report(tmp_path):
    fake_run(tmp_path / "one-normal-s0", "one-normal", 0, range(10), lambda s, d, k: 0.5)
    (tmp_path / "one-normal-s0" / "anomaly.json").write_text('{"protocol": "one-nor')  # cut short
    before = snapshot(tmp_path)
    result = run_command(["benchmarks/anomaly_tables.py", "--out", str(tmp_path), "--report"],
                         cwd=tmp_path)
    assert_clean_error(result, "one-normal-s0/anomaly.json", "not a readable anomaly.json",
                       "run again")
    assert snapshot(tmp_path) == before
