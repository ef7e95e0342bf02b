"""The anomaly tables of issue 24: every digit, both protocols, three seeds, by minigan.anomaly.

    python benchmarks/anomaly_tables.py              # 9 runs of minigan.anomaly, 2 at a time
    python benchmarks/anomaly_tables.py --dry-run    # the commands left to run; runs nothing
    python benchmarks/anomaly_tables.py --report     # the tables of the runs done so far

The runs (each a plain ``python -m minigan.anomaly ... --json`` into --out/NAME):

- ``one-normal-sS``, S = 0, 1, 2: ``--protocol one-normal --digits all --epochs 10 --seed S``.
  The GAN of digit D trains on its about 6,000 training images, 10 epochs (about 940 steps);
- ``held-out-sS-a`` and ``-b``: ``--digits 0,1,2,3,4`` and ``5,6,7,8,9``, ``--seed S``, the
  command's default 5 epochs on the about 54,000 images of the nine other digits (about 4,200
  steps). A seed's ten digits are split in two runs so that two processes share the work.

Everything else is the command's default (1,000 test images, a seeded subset; AnoGAN after 100
Adam steps on z, lambda 0.1; PCA with 20 components; the mean distance to the 5 nearest normal
training images). --seed S seeds the GAN, the test subset and the search's start, so seeds differ
in all three. A run whose folder holds its anomaly.json is done and skipped; a folder without one
is a run that stopped (minigan.anomaly writes anomaly.json last): delete it and run again.

Every process has one BLAS thread, --jobs at a time (benchmarks/conditional_runs.py's machinery;
Ctrl-C stops them, and the same command starts the unfinished runs again from the start). A
relative --out is taken from the repository's root, as the other benchmarks take it, where the
runs start. Each run's output goes to --out/logs/NAME.txt. --report (also run at the end) writes
--out/anomaly_tables.md, AUROC mean +- sample standard deviation over seeds for every protocol,
digit and score, with the milliseconds per scored image; --out/summary.json, every number, seed
by seed; and --out/auroc.png, each score's AUROC per digit.
"""

import json
import statistics
import sys
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablate_recipe import JOBS, ROOT, cannot_make, summary  # noqa: E402
from conditional_runs import Step, run_all  # noqa: E402

sys.path.insert(0, str(ROOT))
from minigan.anomaly import DEFAULTS  # noqa: E402
from minigan.rules import ConfigError, Parser, check, path_arg, typed  # noqa: E402

PROG = "anomaly_tables.py"
SEEDS = (0, 1, 2)
PROTOCOLS = {  # protocol -> the runs of one seed: (name suffix, flags)
    "one-normal": [("", ["--protocol", "one-normal", "--digits", "all", "--epochs", "10"])],
    "held-out": [("-a", ["--digits", "0,1,2,3,4"]), ("-b", ["--digits", "5,6,7,8,9"])],
}
SCORES = {  # anomaly.json's name -> the table's
    "anogan": "AnoGAN", "residual": "its residual", "feature": "its feature term",
    "d_output": "D's output", "pca": "PCA", "knn": "5-NN"}
TIMED = ("anogan", "d_output", "pca", "knn")


class Run(NamedTuple):
    folder: Path  # where this process finds the run (the command names it as --out gave it)
    seed: int
    epochs: int  # of each GAN: the flags' --epochs, else minigan.anomaly's default
    cmd: list


def runs(out):
    """Every Run, in the order they start. out: --out as given; a relative one is taken from the
    repository's root, where the runs start (conditional_runs.job), wherever this one started."""
    todo = []
    for protocol, parts in PROTOCOLS.items():
        for seed in SEEDS:
            for suffix, flags in parts:
                folder = out / f"{protocol}-s{seed}{suffix}"
                epochs = int(flags[flags.index("--epochs") + 1]) if "--epochs" in flags \
                    else DEFAULTS["epochs"]
                todo.append(Run(ROOT / folder, seed, epochs, [
                    sys.executable, "-m", "minigan.anomaly", *flags, "--seed", str(seed),
                    "--out", str(folder), "--json"]))
    return todo


def left(out):
    """The runs not yet done; ConfigError for a folder a stopped run left."""
    todo = []
    for folder, _, _, cmd in runs(out):
        if (folder / "anomaly.json").exists():
            continue
        if folder.exists():
            raise ConfigError(f"{folder} holds a run without its anomaly.json (still running, "
                              "or stopped): when it is not running, delete it and run again")
        todo.append((folder, [Step("minigan.anomaly", cmd)]))
    return todo


def collect(out):
    """{protocol: {digit: {"seeds": [...], "auroc": {score: summary}, "ms": {...}}}} from the
    finished runs (ablate_recipe.summary: mean, sd, n, values), each checked to hold the settings
    this script asked for."""
    res = {}
    for folder, seed, epochs, _ in runs(out):
        path = folder / "anomaly.json"
        if not path.exists():
            continue
        try:
            run = json.loads(path.read_text())
            s, protocol, results = run["settings"], run["protocol"], run["results"]
            settings = (s["seed"], s["epochs"], s["test_n"], s["quick"])
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}: not a readable anomaly.json of minigan.anomaly "
                              f"({type(e).__name__}: {e}); move {folder} away and run again to "
                              "redo that run") from None
        if settings != (seed, epochs, DEFAULTS["test_n"], False):
            raise ConfigError(f"{path}: settings {s} are not this script's")
        for d, r in results.items():
            cell = res.setdefault(protocol, {}).setdefault(int(d), {"seeds": []})
            cell["seeds"].append({"seed": seed, "auroc": r["auroc"], "ms": r["ms_per_image"],
                                  "n_anomalies": r["n_anomalies"], "n_train": r["n_train"],
                                  "gan_seconds": r["gan_seconds"]})
    for protocol in res.values():
        for cell in protocol.values():
            rows = cell["seeds"]
            cell["auroc"] = {k: summary([r["auroc"][k] for r in rows]) for k in SCORES}
            cell["ms"] = {k: summary([r["ms"][k] for r in rows]) for k in TIMED}
    return res


def table(protocol, cells):
    """The markdown table of one protocol: a row per digit, then the mean over digits."""
    head = "| digit | seeds | anomalies | " + " | ".join(SCORES.values()) + " |"
    lines = [head, "| ---: | ---: | ---: |" + " ---: |" * len(SCORES)]
    for d in sorted(cells):
        c = cells[d]
        best = max(c["auroc"][k]["mean"] for k in SCORES)
        vals = [f"{c['auroc'][k]['mean']:.3f} ± {c['auroc'][k]['sd']:.3f}" for k in SCORES]
        vals = [f"**{v}**" if c["auroc"][k]["mean"] == best else v for k, v in zip(SCORES, vals)]
        n_a = [r["n_anomalies"] for r in c["seeds"]]
        lines.append(f"| {d} | {len(c['seeds'])} | {min(n_a)}-{max(n_a)} | " + " | ".join(vals)
                     + " |")
    over = {k: statistics.fmean(cells[d]["auroc"][k]["mean"] for d in cells) for k in SCORES}
    lines.append("| mean over digits | | | " + " | ".join(f"{over[k]:.3f}" for k in SCORES)
                 + " |")
    wins = {k: sum(max(SCORES, key=lambda s: cells[d]["auroc"][s]["mean"]) == k for d in cells)
            for k in SCORES}
    lines.append("| digits where best | | | " + " | ".join(str(wins[k]) for k in SCORES) + " |")
    ms = {k: statistics.fmean(r["ms"][k] for d in cells for r in cells[d]["seeds"])
          for k in TIMED}
    lines.append("")
    lines.append("Milliseconds per scored image, mean over digits and seeds: " + ", ".join(
        f"{SCORES[k]} {ms[k]:.3g}" for k in TIMED) + ".")
    return lines


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(res), figsize=(6 * len(res), 3.8), sharey=True,
                             squeeze=False)
    for ax, (protocol, cells) in zip(axes[0], res.items()):
        digits = sorted(cells)
        for i, k in enumerate(("anogan", "d_output", "pca", "knn")):
            x = [d + (i - 1.5) * 0.18 for d in digits]
            ax.errorbar(x, [cells[d]["auroc"][k]["mean"] for d in digits],
                        yerr=[cells[d]["auroc"][k]["sd"] for d in digits], fmt="o", ms=4,
                        capsize=2, label=SCORES[k])
        ax.axhline(0.5, color="k", lw=0.8, ls="--")
        ax.set_xticks(digits)
        ax.set_xlabel("held-out digit (the anomaly)" if protocol == "held-out"
                      else "the normal digit (the nine others are anomalies)")
        ax.set_title(f"{protocol}: AUROC, mean ± sd over seeds")
    axes[0][0].set_ylabel("AUROC (0.5: chance)")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(out):
    """The tables of the finished runs, written into out (as runs takes it)."""
    res = collect(out)
    if not res:
        print(f"no finished run in {ROOT / out}")
        return
    lines = [f"# minigan.anomaly over every digit (benchmarks/anomaly_tables.py --out {out})", ""]
    for protocol in PROTOCOLS:
        if protocol in res:
            lines += ["", f"## {protocol}", "", *table(protocol, res[protocol])]
    out = ROOT / out
    (out / "anomaly_tables.md").write_text("\n".join(lines) + "\n")
    by_digit = {p: {str(d): c for d, c in cells.items()} for p, cells in res.items()}
    (out / "summary.json").write_text(json.dumps(by_digit, indent=1) + "\n")
    plot(res, out / "auroc.png")
    print("\n".join(lines))
    print(f"wrote {out / 'anomaly_tables.md'}, {out / 'summary.json'}, {out / 'auroc.png'}")


def main(argv=None):
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--out", type=path_arg("out"), default="runs/anomaly_full",
                   help="the folder of the runs, from the repository's root if relative "
                   "(default: %(default)s)")
    p.add_argument("--jobs", type=typed(int, "--jobs", JOBS, 2), default=2,
                   help="runs at a time, 1 to 64 (default: 2)")
    p.add_argument("--dry-run", action="store_true", help="print the commands left; run nothing")
    p.add_argument("--report", action="store_true", help="only the tables of the finished runs")
    args = p.parse_args(argv)
    out = Path(args.out)
    where = ROOT / out  # a relative --out from the repository's root, as runs takes it
    try:
        check("--jobs", args.jobs, JOBS, 2)
        if where.exists() and not where.is_dir():
            raise ConfigError(f"--out {out} is a file; name a folder")
        if (why := cannot_make(where.resolve())) is not None:
            raise ConfigError(f"--out {out}: {why}; name a folder you can write to")
        if args.report:
            return report(out)
        todo = left(out)
        if args.dry_run:
            for folder, steps in todo:
                print("python", " ".join(steps[0].cmd[1:]))
            return None
        (where / "logs").mkdir(parents=True, exist_ok=True)
        failed = run_all(todo, args.jobs, where / "logs")
        report(out)
        if failed is None or failed:
            sys.exit(1)
    except ConfigError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        sys.exit(2)
    return None


if __name__ == "__main__":
    main()
