"""The ablation behind --recipe improved: each trick alone, and the chosen combination, against the
default recipe, on MNIST and on the 2-D lab, over several seeds.

    python benchmarks/ablate_recipe.py                  # everything (about 2 hours on 2 cores)
    python benchmarks/ablate_recipe.py --stage toy      # the 2-D lab only (a few minutes)
    python benchmarks/ablate_recipe.py --report         # the tables from the runs done so far

Stages (each skips the runs it finds finished in --out, so an interrupted ablation continues):

- ``tricks``: train_mnist.py with one trick at a time, --epochs 5, scored after epoch 5;
- ``long``: the default recipe and --recipe improved, --epochs 20, scored every 5 epochs;
- ``toy``: python -m minigan.toy on the ring and the grid with the same variants;
- ``speed``: seconds per training step of each recipe, alternating in one process.

Each MNIST run is a subprocess of ``train_mnist.py --eval-every 5`` (10,000 samples scored by
minigan.evaluate) with OPENBLAS_NUM_THREADS=1, --jobs at a time. The tables give mean +- sample
standard deviation over the seeds, and are written to --out/ablation.md with every number in
--out/results.json; --out/grids.png shows the two recipes' sample grids (first seed).

Ctrl-C, SIGTERM or SIGHUP stops the runs under way, each saved at the step it is on, starts no
other, and exits 128 + the signal's number (benchmarks/children.py); the same command continues
them (a 2-D lab run starts again). A run stopped by a signal sent to it alone is continued too,
and the script then ends with its status, not 0.
"""

import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __name__ == "__main__":  # the speed stage times one BLAS thread unless the caller sets it;
    # OpenBLAS reads this once, when numpy loads, and minigan.rules below loads numpy
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # minigan; children.py beside this
from children import Children  # noqa: E402

from minigan import rundir  # noqa: E402
from minigan.rules import SEED, Parser, integer, message, typed  # noqa: E402

# name -> the flags of train_mnist.py (and python -m minigan.toy) that make the variant
VARIANTS = {
    "default": [],
    "ema": ["--ema", "0.999"],
    "minibatch-std": ["--minibatch-std", "1"],
    "pack-2": ["--pack", "2"],
    "label-smoothing": ["--label-smoothing", "0.2"],
    "instance-noise": ["--instance-noise", "0.1"],
    "d-dropout": ["--d-dropout", "0.3"],
    "ttur": ["--lr-d", "4e-4", "--lr-g", "1e-4"],
    "improved": ["--recipe", "improved"],
}
TRICKS = [v for v in VARIANTS if v not in ("improved",)]  # "default" is the baseline
LONG = ["default", "improved"]
MNIST_FIELDS = ("fd", "class_entropy", "least_share", "most_share", "precision", "recall")
TOY_FIELDS = ("modes_covered", "high_quality")
# --jobs of every benchmark that runs a process per run (this one, first_games.py,
# anomaly_tables.py, conditional_runs.py; time_to_quality.py's --threads too): each holds one BLAS
# thread and MNIST, so a typo like --jobs 200 would start hundreds of trainings at once
JOBS = integer(1, 64)
CHILDREN = Children()  # the trainings and lab runs under way, and the stop (children.py)


def env():
    # One BLAS thread per run: --jobs runs side by side share the cores without waiting on
    # each other (on 2 cores, two 1-thread runs beat one 2-thread run at a time).
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def cannot_make(folder):
    """Why folder cannot be made or written in, or None: its nearest part that exists must be
    a folder this process can write in. Tried, not guessed (os.access says yes to root where
    mkdir fails, as on /sys): a temporary folder is made there and removed at once."""
    there = next(p for p in (folder, *folder.parents) if p.exists())
    if not there.is_dir():
        return f"{there} is a file, so no folder can be made under it"
    try:
        tempfile.TemporaryDirectory(dir=there).cleanup()
    except OSError as e:
        return f"cannot write in {there} ({e.strerror or e})"
    return None


def folder_arg(p, flag, value, what):
    """A folder flag's path (relative ones from the repository root), or p.error() if it
    cannot be that folder: empty, a file, or not writable."""
    if not value:
        p.error(f'{flag} "": an empty path; name {what}')
    path = Path(value) if Path(value).is_absolute() else ROOT / value
    if path.exists() and not path.is_dir():
        p.error(f"{flag} {value}: a file, not a folder; name {what}")
    if (why := cannot_make(path)) is not None:
        p.error(f"{flag} {value}: {why}; name a folder you can write to")
    return path


def seeds_arg(p, text, sep=","):
    """--seeds' seeds (separated by sep) as ints, or p.error(): each an integer seed, each once."""
    try:
        seeds = [int(s) for s in text.split(sep)]
    except ValueError:
        p.error(f"--seeds {text}: use integers separated by {'commas' if sep == ',' else 'spaces'}"
                f", like {sep.join('012')}")
    if bad := [s for s in seeds if not SEED[0](s)]:
        p.error(f"--seeds {bad[0]}: each seed must be {SEED[1]}")
    if twice := [s for i, s in enumerate(seeds) if s in seeds[:i]]:
        p.error(f"--seeds {text}: {twice[0]} is given twice; give each once")
    return seeds


def run_dir(out, variant, seed, epochs):
    return out / f"{variant}-e{epochs}-s{seed}"


def eval_rows(folder):
    """{epoch: its row of eval.csv, floats} of a run ({} before its first scoring); a last row
    that a kill cut short is none (rundir.read_rows)."""
    path = folder / "eval.csv"
    return {int(r["epoch"]): r for r in rundir.read_rows(path)} if path.exists() else {}


def mnist_job(out, variant, seed, epochs):
    """Train one variant (or find it trained); returns {epoch: scores}."""
    folder = run_dir(out, variant, seed, epochs)
    if epochs in eval_rows(folder):
        return eval_rows(folder)
    if folder.exists():  # an interrupted run: continue it
        cmd = [sys.executable, "train_mnist.py", "--resume", str(folder)]
        if not (folder / "checkpoint.npz").exists():
            raise SystemExit(f"{folder} holds no checkpoint: delete it and rerun")
    else:
        cmd = [sys.executable, "train_mnist.py", *VARIANTS[variant], "--seed", str(seed),
               "--epochs", str(epochs), "--eval-every", "5", "--out", str(folder)]
    start = time.perf_counter()
    done = CHILDREN.run(cmd, cwd=ROOT, env=env())
    if done is None:  # this script is stopping: no run starts
        return eval_rows(folder)
    if stopped := rundir.stop_status(done.returncode):  # saved where it stopped (Ctrl-C, `kill`)
        print(f"  {folder.name}: stopped (exit status {stopped}); the same command resumes it",
              flush=True)
        return eval_rows(folder)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    print(f"  {folder.name}: {time.perf_counter() - start:.0f} s", flush=True)
    return eval_rows(folder)


def toy_job(out, variant, seed, dataset):
    folder = out / "toy" / f"{dataset}-{variant}-s{seed}"
    result = folder / "result.json"
    if not result.exists():
        cmd = [sys.executable, "-m", "minigan.toy", "--dataset", dataset, "--seed", str(seed),
               "--frames", "0", "--out", str(folder), *VARIANTS[variant]]
        done = CHILDREN.run(cmd, cwd=ROOT, env=env())
        if done is None:  # this script is stopping: no run starts
            return None
        if stopped := rundir.stop_status(done.returncode):  # a lab run cannot resume: rerun
            print(f"  toy/{folder.name}: stopped (exit status {stopped}); the same command runs "
                  "it again", flush=True)
            return None
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    r = json.loads(result.read_text())
    return {"modes_covered": r["modes_covered"], "modes_total": r["modes_total"],
            "high_quality": r["high_quality"]}


def speed(variants, steps=300, repeats=3):
    """Seconds per step of each recipe, best of `repeats`, alternating recipes in one process:
    a recipe's time is measured under the same machine load as the others'."""
    from minigan import backend, data, dataset, models, settings
    from minigan.gan import train_step
    from minigan.tricks import EMA, instance_noise_std, set_instance_noise

    backend.use("cpu")
    images, _ = data.load_mnist("train")
    X = backend.to_device(data.to_model_input(images[:64 * steps], "float32"))
    best = {v: float("inf") for v in variants}
    for _ in range(repeats):
        for v in variants:
            given, _ = settings.parse_train_args(VARIANTS[v])
            cfg = settings.Config(**settings.with_recipe(given))
            rng = backend.default_rng(cfg.seed)
            G, D = models.build(cfg, rng)
            opt_G, opt_D = models.optimizers(cfg, G, D)
            ema = EMA(G, cfg.ema) if cfg.ema else None
            next_real = dataset.batch_reader(X, range(64 * steps), 64)  # the images in order

            start = time.perf_counter()
            for step in range(steps):  # as train_mnist.py's loop runs a step
                if cfg.instance_noise:  # annealed over the timed steps
                    set_instance_noise(D, instance_noise_std(cfg.instance_noise, step, steps))
                train_step(G, D, opt_G, opt_D, next_real, rng, k=cfg.k, gen_loss=cfg.gen_loss,
                           real_target=1.0 - cfg.label_smoothing, latent_dim=cfg.latent_dim)
                if ema:
                    ema.update()
            best[v] = min(best[v], (time.perf_counter() - start) / steps)
    return best


def summary(values):
    if not values:
        return None
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": len(values), "values": values}


def fmt(s, digits=2, pct=False):
    if s is None:
        return "-"
    if pct:
        return f"{100 * s['mean']:.1f} ± {100 * s['sd']:.1f}%"
    return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}"


def collect(out, seeds):
    """Every finished result under out: {table: {variant: {field: summary}}}."""
    res = {"mnist_5": {}, "mnist_20": {}, "toy_ring": {}, "toy_grid": {}}
    for variant in VARIANTS:
        for key, epochs_run, epoch in (("mnist_5", 5, 5), ("mnist_5", 20, 5),
                                       ("mnist_20", 20, 20)):
            rows = [eval_rows(run_dir(out, variant, s, epochs_run)).get(epoch) for s in seeds]
            rows = [r for r in rows if r]
            if rows and variant not in res[key]:
                res[key][variant] = {f: summary([r[f] for r in rows]) for f in MNIST_FIELDS}
        for dataset in ("ring", "grid"):
            rows = []
            for s in seeds:
                p = out / "toy" / f"{dataset}-{variant}-s{s}" / "result.json"
                if p.exists():
                    rows.append(json.loads(p.read_text()))
            if rows:
                res[f"toy_{dataset}"][variant] = {
                    "modes_covered": summary([r["modes_covered"] for r in rows]),
                    "modes_total": rows[0]["modes_total"],
                    "high_quality": summary([r["high_quality"] for r in rows])}
    speed_file = out / "speed.json"
    if speed_file.exists():
        res["speed"] = json.loads(speed_file.read_text())
    return res


def draw_grids(out, seed):
    """out/grids.png: the fixed-noise grids of the default recipe and of --recipe improved after
    5 and 20 epochs (the long runs of one seed), side by side."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [[run_dir(out, v, seed, 20) / "samples" / f"epoch_{e:03d}.png" for e in (5, 20)]
             for v in LONG]
    if not all(p.exists() for row in paths for p in row):
        return None
    fig, axes = plt.subplots(2, 2, figsize=(8, 8.4))
    for row, v in zip(axes, LONG):
        for ax, path, e in zip(row, paths[LONG.index(v)], (5, 20)):
            ax.imshow(plt.imread(path), cmap="gray")
            ax.set_title(f"{v} recipe, epoch {e} (seed {seed})", fontsize=10)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "grids.png", dpi=80)
    plt.close(fig)
    return out / "grids.png"


def targets(out, seeds, res):
    """The issue's targets for --recipe improved, seed by seed, as Markdown lines."""
    lines = ["### The targets, seed by seed", "",
             "| target | " + " | ".join(f"seed {s}" for s in seeds) + " | met |",
             "|---|" + "---|" * len(seeds) + "---|"]

    def row(name, values, ok):
        met = "yes" if values and all(ok(v) for v in values if v is not None) and \
            None not in values else "no"
        cells = " | ".join("-" if v is None else v if isinstance(v, str) else f"{v:.3f}"
                           for v in values)
        lines.append(f"| {name} | {cells} | {met} |")

    def at(variant, epochs_run, epoch, seed):
        return eval_rows(run_dir(out, variant, seed, epochs_run)).get(epoch)

    for epoch in (5, 20):
        rows = [at("improved", 20, epoch, s) for s in seeds]
        row(f"class entropy >= 2.25 (epoch {epoch})",
            [r and r["class_entropy"] for r in rows], lambda v: v >= 2.25)
        shares = [r and f"{100 * r['least_share']:.1f}-{100 * r['most_share']:.1f}%"
                  for r in rows]
        ok = [r and 0.06 <= r["least_share"] and r["most_share"] <= 0.14 for r in rows]
        lines.append(f"| every digit 6-14% (epoch {epoch}) | " + " | ".join(
            "-" if v is None else v for v in shares) + f" | {'yes' if all(ok) else 'no'} |")
    fd5 = [at("improved", 20, 5, s) for s in seeds]
    fd20 = [at("default", 20, 20, s) for s in seeds]
    cells = [a and b and f"{a['fd']:.1f} vs {b['fd']:.1f}" for a, b in zip(fd5, fd20)]
    ok = all(a and b and a["fd"] <= b["fd"] for a, b in zip(fd5, fd20))
    lines.append("| FD, improved at 5 epochs <= default at 20 | " + " | ".join(
        "-" if c is None else c for c in cells) + f" | {'yes' if ok else 'no'} |")
    ring = []
    for s in seeds:
        p = out / "toy" / f"ring-improved-s{s}" / "result.json"
        ring.append(json.loads(p.read_text())["modes_covered"] if p.exists() else None)
    lines.append("| 8 of 8 ring modes | " + " | ".join("-" if v is None else str(v)
                                                       for v in ring)
                 + f" | {'yes' if all(v == 8 for v in ring) else 'no'} |")
    if "speed" in res:
        t = res["speed"]["seconds_per_step"]
        if "improved" in t and "default" in t:
            ratio = t["improved"] / t["default"]
            lines.append(f"| at most 15% slower per step | {ratio:.2f}x (one process) |"
                         + " |" * (len(seeds) - 1) + f" {'yes' if ratio <= 1.15 else 'no'} |")
    return lines + [""]


def report(out, seeds):
    res = collect(out, seeds)
    draw_grids(out, seeds[0])
    lines = ["# The ablation of --recipe improved", "",
             "Written by `python benchmarks/ablate_recipe.py` (`--report` rewrites it from the "
             "runs in --out). Each MNIST run is `train_mnist.py --eval-every 5` with the "
             "variant's flags (`VARIANTS` in the script), two at a time with one BLAS thread "
             "each; the 2-D lab runs are `python -m minigan.toy` with the same flags. "
             "How the combination was chosen: [pilots.md](pilots.md); what each trick does: "
             "lessons/13_better_recipe.md.", "",
             f"Seeds {', '.join(map(str, seeds))}; mean ± sample standard deviation over the "
             "seeds (n = runs found). MNIST scores: minigan.evaluate on 10,000 samples "
             "(FD floor about 3.1).", ""]
    for key, title in (("mnist_5", "MNIST after 5 epochs"), ("mnist_20", "MNIST after 20 epochs")):
        if not res[key]:
            continue
        lines += [f"### {title}", "",
                  "| variant | n | Fréchet distance | class entropy | least digit | most digit "
                  "| precision | recall |", "|---|---|---|---|---|---|---|---|"]
        for v, s in res[key].items():
            lines.append(f"| {v} | {s['fd']['n']} | {fmt(s['fd'], 1)} | "
                         f"{fmt(s['class_entropy'], 3)} | {fmt(s['least_share'], pct=True)} | "
                         f"{fmt(s['most_share'], pct=True)} | {fmt(s['precision'], 3)} | "
                         f"{fmt(s['recall'], 3)} |")
        lines.append("")
    for dataset in ("ring", "grid"):
        rows = res[f"toy_{dataset}"]
        if not rows:
            continue
        lines += [f"### 2-D lab, {dataset} (python -m minigan.toy, 4000 steps)", "",
                  "| variant | n | modes covered | per seed | high quality |",
                  "|---|---|---|---|---|"]
        for v, s in rows.items():
            per_seed = ", ".join(str(int(c)) for c in s["modes_covered"]["values"])
            lines.append(f"| {v} | {s['modes_covered']['n']} | "
                         f"{fmt(s['modes_covered'], 1)} of {s['modes_total']} | {per_seed} | "
                         f"{fmt(s['high_quality'], pct=True)} |")
        lines.append("")
    lines += targets(out, seeds, res)
    if "speed" in res:
        sp = res["speed"]
        base = sp["seconds_per_step"]["default"]
        lines += ["### Speed (seconds per training step at batch 64, best of 3, one process)",
                  "", "| variant | ms per step | vs default |", "|---|---|---|"]
        for v, t in sp["seconds_per_step"].items():
            lines.append(f"| {v} | {1000 * t:.1f} | {t / base:.2f}x |")
        lines += ["", f"Measured {sp['when']} on {sp['machine']}.", ""]
    text = "\n".join(lines)
    (out / "ablation.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    print(text)
    return res


def main(argv=None):
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=("all", "tricks", "long", "toy", "speed"), default="all")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated (default: %(default)s)")
    p.add_argument("--variants", default="",
                   help="comma-separated subset of " + ", ".join(VARIANTS) + " (default: all)")
    p.add_argument("--jobs", type=typed(int, "--jobs", JOBS, 2), default=2,
                   help="runs at a time, 1 to 64 (default: %(default)s)")
    p.add_argument("--out", default="runs/ablation", help="(default: %(default)s)")
    p.add_argument("--report", action="store_true", help="only print the tables")
    args = p.parse_args(argv)
    seeds = seeds_arg(p, args.seeds)
    chosen = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        p.error(f"--variants {args.variants}: {unknown[0]} is unknown; choose from "
                f"{', '.join(VARIANTS)}, comma-separated")
    if not JOBS[0](args.jobs):
        p.error(message("--jobs", args.jobs, JOBS, 2))
    out = folder_arg(p, "--out", args.out, "the folder of the ablation's runs (default: "
                     "runs/ablation)")
    out.mkdir(parents=True, exist_ok=True)  # every flag checked: now something may be written
    if args.report:
        report(out, seeds)
        return 0
    jobs = []
    if args.stage in ("all", "long"):  # the long runs first: they are scored at 5 epochs too
        jobs += [(mnist_job, (out, v, s, 20)) for s in seeds for v in LONG if v in chosen]
    if args.stage in ("all", "tricks"):
        jobs += [(mnist_job, (out, v, s, 5)) for s in seeds for v in TRICKS
                 if v in chosen and v not in LONG]
    if args.stage in ("all", "toy"):
        jobs += [(toy_job, (out, v, s, d)) for d in ("ring", "grid") for s in seeds
                 for v in VARIANTS if v in chosen]
    print(f"{len(jobs)} runs, {args.jobs} at a time, in {out}", flush=True)
    # Ctrl-C, SIGTERM, SIGHUP: the runs under way save their step, and no other starts
    with CHILDREN.listening(), ThreadPoolExecutor(args.jobs) as pool:
        for f in [pool.submit(fn, *a) for fn, a in jobs]:
            f.result()
    if CHILDREN.stopping.is_set():  # 128 + the signal's number, as the trainings it stopped
        return CHILDREN.exit_status()
    if args.stage in ("all", "speed"):
        names = [v for v in VARIANTS if v in chosen]  # BLAS threads: set at the top, as numpy loads
        sp = speed(names)
        (out / "speed.json").write_text(json.dumps({
            "seconds_per_step": sp, "when": time.strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} CPU cores, OPENBLAS_NUM_THREADS="
                       f"{os.environ['OPENBLAS_NUM_THREADS']}"}, indent=1))
    report(out, seeds)
    return CHILDREN.exit_status()  # 0, or a run's that a signal to it alone stopped


if __name__ == "__main__":
    sys.exit(main())
