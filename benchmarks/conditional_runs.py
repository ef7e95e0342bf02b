"""The measurement of the conditional GANs (issue 21): each way of conditioning with the default
recipe and with --recipe improved, three seeds, scored after 5 and after 20 epochs.

    python benchmarks/conditional_runs.py               # 18 MLP runs, 2 at a time (2 h 13 min)
    python benchmarks/conditional_runs.py --dry-run     # the commands left to run; runs nothing
    python benchmarks/conditional_runs.py --report      # the tables of the runs done so far
    python benchmarks/conditional_runs.py --model dcgan # the DCGAN's (about 18 h; see below)
    python benchmarks/conditional_runs.py --seeds 0 --variants concat --recipes default \\
        --limit 640 --epochs 2 --early-epoch 1 --eval-samples 200 --out /tmp/cond_tiny
                                                        # a minute: the script end to end

Each run lives in --out/<model>-<variant>-<recipe>-s<seed> and takes five steps, each skipped
when the folder shows it done; Ctrl-C (or SIGTERM, SIGHUP) stops every run at the step it is on,
saved, and the same command continues. With 5 standing for --early-epoch and 20 for --epochs:

1. ``train_mnist.py --conditional V [recipe] --seed S --epochs 5 --eval-every 5 --out RUN``;
2. a copy of RUN/config.json and RUN/checkpoint.npz into RUN/epoch5/, a run folder of the
   generator after 5 epochs that minigan.evaluate and minigan.sample read like any other;
3. ``python -m minigan.evaluate RUN/epoch5``, which writes RUN/epoch5/eval.json;
4. ``train_mnist.py --resume RUN --epochs 20`` (resuming is bit-exact on the CPU, so the run
   is the one --epochs 20 alone would train: none of these recipes sets --instance-noise, whose
   annealing follows the first session's --epochs);
5. ``python -m minigan.evaluate RUN``, which writes RUN/eval.json.

Why steps 2, 3 and 5: train_mnist.py --eval-every's eval.csv holds the unconditional scores only
(minigan.evaluate.log_quality: FD, class entropy, precision, recall), and a checkpoint is
overwritten every epoch; class consistency and the intra-class FD come from minigan.evaluate on
a checkpoint, 10,000 samples, 1,000 asked for each digit. Its FD equals eval.csv's for the same
epoch (the same generator and noise); the report checks that they agree.

Recipes: ``default``; ``improved`` (--recipe improved: --pack 2 --minibatch-std 1
--label-smoothing 0.2 --ema 0.999, the MLP's only); ``ema-ls`` (--ema 0.999 --label-smoothing
0.2: the part of --recipe improved that the DCGAN's D takes, since train_mnist.py refuses
--recipe improved with --model dcgan). The MLP's default recipes are default and improved; the
DCGAN's, default and ema-ls.

Every process has one BLAS thread, --jobs runs at a time (benchmarks/ablate_recipe.py's
machinery); each step's output goes to --out/logs/<run>.txt. --report (also run at the end)
writes --out/conditional.md, mean +- sample standard deviation over seeds of class consistency,
intra-class FD, FD, class entropy, precision, recall and seconds per training step (the
checkpoint's training seconds, less eval.csv's scoring seconds, over its steps), a table of the
goal seed by seed, and every number in --out/results.json.
"""

import json
import shlex
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablate_recipe import JOBS, ROOT, env, eval_rows, fmt, summary  # noqa: E402
from children import Children  # noqa: E402

sys.path.insert(0, str(ROOT))
from minigan import files, rundir, settings  # noqa: E402
from minigan.checkpoint import CheckpointError  # noqa: E402
from minigan.rules import (SEED, ConfigError, Parser, check, flag, integer, show,  # noqa: E402
                           whole_number)
from minigan.tricks import IMPROVED  # noqa: E402

# ---- what is measured -------------------------------------------------------------------------

VARIANTS = settings.CONDITIONAL  # concat, projection, acgan (minigan/conditional.py)
RECIPES = {  # name -> train_mnist.py's flags
    "default": [],
    "improved": ["--recipe", "improved"],
    # --recipe improved's tricks that do not change D, the ones a DCGAN takes
    "ema-ls": [arg for name, value in IMPROVED.items() if name not in settings.MLP_ONLY
               for arg in (flag(name), str(value))],
}
DEFAULT_RECIPES = {"mlp": "default,improved", "dcgan": "default,ema-ls"}
# The goal of issue 21, judged on every seed after the last epoch: the samples are the digit
# asked for at least 98% of the time, and the FD is no worse than --recipe improved's 11.2 after
# 20 epochs (the unconditional MLP, mean of 3 seeds: docs/ablation/ablation.md).
GOAL_CONSISTENCY, GOAL_FD = 0.98, 11.2
FIELDS = ("class_consistency", "intra_class_fd", "fd", "class_entropy", "precision", "recall",
          "seconds_per_step")
# the setting; anything else is a try, and the report says so
FULL = {"limit": 0, "eval_samples": 10_000, "epochs": 20, "early": 5}


def run_dir(out, model, variant, recipe, seed):
    return out / f"{model}-{variant}-{recipe}-s{seed}"


def train_flags(opts, model, variant, recipe, seed, run):
    """train_mnist.py's flags for a new run, up to the early epoch."""
    extra = [] if model == "mlp" else ["--model", model]
    for name in ("limit", "eval_samples"):
        if opts[name] != settings.Config.__dataclass_fields__[name].default:
            extra += [flag(name), str(opts[name])]
    return ["--conditional", variant, *RECIPES[recipe], *extra, "--seed", str(seed),
            "--epochs", str(opts["early"]), "--eval-every", str(opts["early"]),
            "--out", str(run)]


def expected_config(flags):
    """The settings.Config that train_mnist.py would build from flags (writes nothing)."""
    given, _ = settings.parse_train_args(flags)
    return settings.new_config(given)


# ---- what a run folder holds ------------------------------------------------------------------


def progress(path):
    """The counters of a checkpoint (epoch, step_in_epoch, global_step, elapsed), or None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:  # reads only the meta entry
            return json.loads(str(f["meta"]))
    except Exception as e:  # not an .npz, damaged, pickled, no meta: as checkpoint.load says
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); it may be truncated or "
            f"not a minigan checkpoint. Move {path.parent} away (or delete it), and the same "
            "command starts that run again") from None


class Step(NamedTuple):
    """One step of a run: what it does, in words; the command (or the folder to copy the run
    into); for training, the epoch its checkpoint must then be at the end of."""

    what: str
    cmd: object
    epoch: int = 0


def plan(run, flags, opts):
    """The Steps left for one run, from what its folder holds; or raise ConfigError when it
    holds a run this plan cannot continue."""
    early, final = opts["early"], opts["epochs"]
    snap = run / f"epoch{early}"
    meta = progress(run / "checkpoint.npz")
    if meta is None and (run / "config.json").exists():
        raise ConfigError(f"{run} holds a run that stopped before its first checkpoint: "
                          "delete that folder and run again")
    if meta is not None:
        saved = asdict(settings.saved_config(run))
        want = asdict(expected_config(flags))
        differ = [k for k in want if k not in ("epochs", "out") and saved[k] != want[k]]
        if differ:
            name = differ[0]
            given = "--early-epoch" if name == "eval_every" else flag(name)  # the same number
            raise ConfigError(
                f"{run} holds a run with {given} {show(saved[name])}, not {show(want[name])}: "
                "give the flags it was started with, or another --out")
        if meta["epoch"] > final:
            raise ConfigError(f"{run} has trained {meta['epoch']} epochs, more than "
                              f"--epochs {final}: pass --epochs {meta['epoch']} or another --out")
    epoch = meta["epoch"] if meta else 0
    past_early = epoch > early or (epoch == early and meta["step_in_epoch"] > 0)
    if past_early and not (snap / "checkpoint.npz").exists():
        raise ConfigError(f"{run} is past epoch {early} without its copy {snap}: its "
                          f"epoch-{early} scores cannot be had; delete the folder and run again")
    py, n, steps = sys.executable, ["-n", str(opts["eval_samples"])], []
    resume = [py, "train_mnist.py", "--resume", str(run), "--epochs"]
    if epoch < early:
        steps.append(Step(f"train to epoch {early}", [py, "train_mnist.py", *flags] if meta is None
                          else resume + [str(early)], early))
    if not (snap / "checkpoint.npz").exists():
        steps.append(Step(f"copy config.json and checkpoint.npz into {run.name}/{snap.name}",
                          snap))
    if not (snap / "eval.json").exists():
        steps.append(Step(f"score epoch {early}", [py, "-m", "minigan.evaluate", str(snap), *n]))
    if epoch < final:
        steps.append(Step(f"train to epoch {final}", resume + [str(final)], final))
    scored = run / "eval.json"
    if epoch < final or not scored.exists() or \
            scored.stat().st_mtime < (run / "checkpoint.npz").stat().st_mtime:
        steps.append(Step(f"score epoch {final}", [py, "-m", "minigan.evaluate", str(run), *n]))
    return steps


def snapshot(run, snap):
    """Copy the run's config.json and checkpoint.npz into snap (checkpoint last: its presence
    says the copy is whole), each through minigan's atomic writer."""
    snap.mkdir(exist_ok=True)
    for name in ("config.json", "checkpoint.npz"):
        with open(run / name, "rb") as src, files.atomic_write(snap / name) as dst:
            shutil.copyfileobj(src, dst)


# Stopping: Ctrl-C, SIGTERM or SIGHUP to this script stops every run at its next step, saved
# (each child gets one SIGTERM, which train_mnist.py turns into a checkpoint), and starts no new
# step; the same command continues (children.py).
CHILDREN = Children()


def job(run, steps, logs):
    """Run one run's steps in order; returns None, or (the step that failed or was stopped, the
    exit status that says which: a stop's, rundir.stop_status; 1 for a failure; None for a step
    not started because this script is stopping)."""
    log = logs / f"{run.name}.txt"
    for what, cmd, epoch in steps:
        start = time.perf_counter()
        if CHILDREN.stopping.is_set():  # no step starts once a stop is asked for
            return what, None
        if not isinstance(cmd, Path):
            with open(log, "a") as f:
                f.write(f"\n$ {shlex.join(cmd)}\n")
                f.flush()
                child = CHILDREN.start(cmd, cwd=ROOT, env=env(), stdout=f, stderr=f)
                if child is None:  # a stop came as it was to start
                    return what, None
                code, _, _ = CHILDREN.wait(child)
            try:
                meta = progress(run / "checkpoint.npz") if epoch else None
            except CheckpointError as e:  # damaged since the plan read it (a full disk, a hand)
                print(f"  {run.name}: {what}: failed ({e})", flush=True)
                return what, 1
            # a stop (ours, or a signal to the child alone) exits 128 + the signal's number,
            # saved; 0 is a training that reached its epoch, so a checkpoint short of it failed
            short = epoch and (meta is None or (meta["epoch"], meta["step_in_epoch"]) != (epoch, 0))
            stopped = rundir.stop_status(code)
            if code or short:
                print(f"  {run.name}: {what}: {'stopped' if stopped else 'failed'} (see "
                      f"{log})", flush=True)
                return what, stopped or 1
        else:
            try:
                snapshot(run, cmd)
            except OSError as e:  # a full disk: the copy's checkpoint never appears
                print(f"  {run.name}: {what}: failed ({e})", flush=True)
                return what, 1
        print(f"  {run.name}: {what} in {time.perf_counter() - start:.0f} s", flush=True)
    return None


def run_all(todo, jobs, logs):
    """Every run's steps, jobs runs at a time; returns (step, status) of each run that failed
    or was stopped (job's), or None when a signal stopped this script."""
    # Ctrl-C, SIGTERM, SIGHUP: the runs under way save their step, and no other step starts
    with CHILDREN.listening(), ThreadPoolExecutor(jobs) as pool:
        ended = [what for what in pool.map(lambda run: job(*run, logs), todo) if what]
    return None if CHILDREN.stopping.is_set() else ended


# ---- the report -------------------------------------------------------------------------------


def seconds_per_step(run, meta):
    """Training seconds per step up to a checkpoint: its elapsed (which counts the --eval-every
    scoring too) less eval.csv's scoring seconds of the epochs it holds, over its steps."""
    scoring = sum(r["seconds"] for e, r in eval_rows(run).items() if e <= meta["epoch"])
    return (meta["elapsed"] - scoring) / meta["global_step"]


def scored_epochs(run):
    """{epoch: scores} of one run, from each epoch<N>/ copy's eval.json and the run's own, with
    seconds per step and eval.csv's FD of that epoch; and notes on what does not add up."""
    found, notes = {}, []
    for where in [*sorted(run.glob("epoch[0-9]*")), run]:
        meta = progress(where / "checkpoint.npz")
        if meta is None or not (where / "eval.json").exists() or meta["step_in_epoch"]:
            continue
        if (where / "eval.json").stat().st_mtime < (where / "checkpoint.npz").stat().st_mtime:
            notes.append(f"{where.relative_to(run.parent)}: eval.json is older than the "
                         "checkpoint; run the measurement again to score it")
            continue
        s = json.loads((where / "eval.json").read_text())
        row = eval_rows(run).get(meta["epoch"])
        found[meta["epoch"]] = {
            **{k: s[k] for k in FIELDS[:-1]}, "seconds_per_step": seconds_per_step(run, meta),
            "class_consistency_per_digit": s["class_consistency_per_digit"],
            "intra_class_fd_per_digit": s["intra_class_fd_per_digit"],
            "real": {k: s["real"][k] for k in ("fd", "class_consistency", "intra_class_fd",
                                               "class_entropy", "precision", "recall")},
            "eval_csv_fd": row and row["fd"]}
        if row and abs(s["fd"] - row["fd"]) > 1e-6 * s["fd"]:  # the same generator and noise
            notes.append(f"{run.name}, epoch {meta['epoch']}: eval.json's FD {s['fd']:.4f} "
                         f"differs from eval.csv's {row['fd']:.4f}")
    return found, notes


def beside(value, goal, digits=1):
    """value to `digits` decimals, or to more where those would print the goal itself (an FD of
    11.2116 against a goal of 11.2 prints 11.21, not 11.2)."""
    while value != goal and round(value, digits) == round(goal, digits) and digits < 6:
        digits += 1
    return f"{value:.{digits}f}"


def goal_lines(res, seeds, final):
    """The goal seed by seed, after the last epoch, as Markdown: a table and a verdict a line."""
    lines = [f"### The goal, seed by seed (after epoch {final})", "",
             f"Class consistency >= {GOAL_CONSISTENCY:.0%} and FD <= {GOAL_FD} on every seed "
             "(issue 21).", "",
             "| variant | recipe | " + " | ".join(f"seed {s}" for s in seeds) + " | goal |",
             "|---|---|" + "---|" * len(seeds) + "---|"]
    verdicts = []
    for (variant, recipe), by_seed in res.items():
        got = {s: by_seed[s][final] for s in seeds if final in by_seed.get(s, {})}
        pct, fd = ({s: beside(100 * r["class_consistency"], 100 * GOAL_CONSISTENCY)
                    for s, r in got.items()},
                   {s: beside(r["fd"], GOAL_FD) for s, r in got.items()})
        low = [f"{pct[s]}% (seed {s})" for s, r in got.items()
               if r["class_consistency"] < GOAL_CONSISTENCY]
        high = [f"{fd[s]} (seed {s})" for s, r in got.items() if r["fd"] > GOAL_FD]
        missing = [str(s) for s in seeds if s not in got]
        short = ([f"class consistency below {GOAL_CONSISTENCY:.0%}: " + ", ".join(low)] * bool(low)
                 + [f"FD above {GOAL_FD}: " + ", ".join(high)] * bool(high))
        met = "falls short" if short else "not judged yet" if missing else "holds"
        cells = [f"{pct[s]}%, FD {fd[s]}" if s in got else "-" for s in seeds]
        lines.append(f"| {variant} | {recipe} | {' | '.join(cells)} | {met} |")
        why = short + [f"seed {', '.join(missing)} not finished"] * bool(missing)
        verdicts.append(f"- **{variant}, {recipe}**: the goal {met}"
                        + (": " + "; ".join(why) if why else "") + ".")
    return lines + [""] + verdicts + [""]


def report(out, model, variants, recipes, seeds):
    res, settings_seen, notes = {}, set(), []
    for variant in variants:
        for recipe in recipes:
            for s in seeds:
                run = run_dir(out, model, variant, recipe, s)
                found, more = scored_epochs(run) if run.exists() else ({}, [])
                notes += more
                if found:
                    res.setdefault((variant, recipe), {})[s] = found
                    cfg = json.loads((run / "config.json").read_text())
                    settings_seen.add((cfg["limit"], cfg["eval_samples"]))
                elif run.exists():
                    notes.append(f"{run.name}: no scores yet (see logs/{run.name}.txt)")
    epochs = sorted({e for by_seed in res.values() for found in by_seed.values() for e in found})
    samples = " or ".join(f"{n:,}" for n in sorted({n for _, n in settings_seen})) or "-"
    lines = [f"# Conditional GANs ({model.upper()}), seeds {', '.join(map(str, seeds))}", "",
             "Written by `python benchmarks/conditional_runs.py --report`; the runs, "
             "their commands and the recipes' flags are in the script's docstring. Mean ± "
             "sample standard deviation over the seeds found (n) of minigan.evaluate's scores "
             f"({samples} samples, a tenth asked for each digit). Seconds per step: training "
             "only, with --jobs runs sharing the machine.", ""]
    full = {(FULL["limit"], FULL["eval_samples"])}
    if settings_seen and settings_seen != full or (epochs and epochs[-1] != FULL["epochs"]):
        lines += ["**Not the issue's measurement**: runs with (--limit, --eval-samples) "
                  f"{', '.join(map(str, sorted(settings_seen)))}, scored after epochs "
                  f"{', '.join(map(str, epochs))}; the goal below is judged all the same.", ""]
    for e in epochs:
        lines += [f"### After {e} epoch{'s' * (e > 1)}", "",
                  "| variant | recipe | n | class consistency | lowest digit | intra-class FD "
                  "| FD | class entropy | precision | recall | s / step |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        real = None
        for (variant, recipe), by_seed in res.items():
            rows = [found[e] for found in by_seed.values() if e in found]
            if not rows:
                continue
            real = rows[0]["real"]
            s = {f: summary([r[f] for r in rows]) for f in FIELDS}
            per_digit = np.mean([r["class_consistency_per_digit"] for r in rows], axis=0)
            lines.append(
                f"| {variant} | {recipe} | {len(rows)} | {fmt(s['class_consistency'], pct=True)} "
                f"| {100 * per_digit.min():.1f}% ({per_digit.argmin()}) "
                f"| {fmt(s['intra_class_fd'], 2)} | {fmt(s['fd'], 1)} "
                f"| {fmt(s['class_entropy'], 3)} | {fmt(s['precision'], 3)} "
                f"| {fmt(s['recall'], 3)} | {fmt(s['seconds_per_step'], 3)} |")
        if real:  # the same scores of real MNIST test images: the floor to read against
            lines.append(f"| *MNIST test images* | | | {100 * real['class_consistency']:.1f}% | "
                         f"| {real['intra_class_fd']:.2f} | {real['fd']:.1f} | "
                         f"{real['class_entropy']:.3f} | {real['precision']:.3f} | "
                         f"{real['recall']:.3f} | |")
        lines.append("")
    if epochs:
        lines += goal_lines(res, seeds, epochs[-1])
    if notes:
        lines += ["### Notes", ""] + [f"- {n}" for n in notes] + [""]
    text = "\n".join(lines)
    (out / "conditional.md").write_text(text + "\n")
    results = {f"{model}-{v}-{r}": {f"s{s}": found for s, found in by_seed.items()}
               for (v, r), by_seed in res.items()}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(text)
    return res


# ---- the command ------------------------------------------------------------------------------


def choices(name, text, allowed):
    """Comma-separated names, each one of allowed, without repeats; ConfigError otherwise."""
    chosen = text.split(",")
    unknown = [c for c in chosen if c not in allowed]
    twice = [c for i, c in enumerate(chosen) if c in chosen[:i]]
    if unknown or twice:
        why = f"{show(unknown[0])} is unknown" if unknown else f"{show(twice[0])} comes twice"
        raise ConfigError(f"{flag(name)} {show(text)}: not allowed ({why}); use comma-separated "
                          f"names from {', '.join(allowed)}, each once")
    return chosen


def parse(argv):
    """The flags, each checked before anything is written: (args, opts, the --out folder)."""
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mlp", help="mlp or dcgan (default: %(default)s)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="(default: %(default)s)")
    p.add_argument("--recipes", default=None, help="of default, improved (MLP only), ema-ls "
                   "(default: " + "; ".join(f"{m}: {r}" for m, r in DEFAULT_RECIPES.items()) + ")")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=FULL["epochs"], help="(default: %(default)s)")
    p.add_argument("--early-epoch", type=int, default=FULL["early"],
                   help="the epoch also scored on the way (default: %(default)s)")
    p.add_argument("--limit", type=int, default=FULL["limit"],
                   help="train_mnist.py --limit, for a quick try (default: %(default)s: all)")
    p.add_argument("--eval-samples", type=int, default=FULL["eval_samples"],
                   help="samples each score draws (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (default: %(default)s)")
    p.add_argument("--out", default="runs/conditional", help="(default: %(default)s)")
    p.add_argument("--report", action="store_true", help="only write the tables")
    p.add_argument("--dry-run", action="store_true", help="print the steps left; run nothing")
    a = p.parse_args(argv)
    check("model", a.model, settings.RULES["model"], "mlp")
    recipes = choices("recipes", a.recipes or DEFAULT_RECIPES[a.model], RECIPES)
    if a.model == "dcgan" and "improved" in recipes:
        raise ConfigError(f"--recipes {a.recipes}: improved is the MLP's recipe (train_mnist.py "
                          "refuses --recipe improved with --model dcgan: its --pack and "
                          "--minibatch-std change the MLP's D); with --model dcgan use "
                          "--recipes default,ema-ls")
    seeds = [whole_number(s) for s in a.seeds.split(",")]  # None for "x", "-1", "²"
    if not all(s is not None and SEED[0](s) for s in seeds) or len(set(seeds)) < len(seeds):
        raise ConfigError(f"--seeds {show(a.seeds)}: not allowed; use comma-separated seeds, "
                          f"each {SEED[1]}, each once (default: 0,1,2)")
    check("epochs", a.epochs, integer(2), FULL["epochs"])
    check("early_epoch", a.early_epoch, integer(1, a.epochs - 1), FULL["early"])
    check("limit", a.limit, settings.RULES["limit"], FULL["limit"])
    check("eval_samples", a.eval_samples, (
        lambda v: v >= 20 and v % 10 == 0 and settings.RULES["eval_samples"][0](v),
        f"a multiple of 10 from 20 to {settings.MAX_SAMPLES:,}, as minigan.evaluate asks for "
        "n/10 samples of each digit"), FULL["eval_samples"])
    check("jobs", a.jobs, JOBS, 2)  # the benchmarks' one bound (ablate_recipe.py)
    check("out", a.out, (lambda v: v != "" and settings.RULES["out"][0](v),
                         "a folder name (created if missing), not a file"), "runs/conditional")
    opts = {"model": a.model, "variants": choices("variants", a.variants, VARIANTS),
            "recipes": recipes, "seeds": seeds, "epochs": a.epochs,
            "early": a.early_epoch, "limit": a.limit, "eval_samples": a.eval_samples}
    out = Path(a.out).expanduser()
    return a, opts, out if out.is_absolute() else ROOT / out


def shown(cmd):
    """A command as one would type it from the repository's root."""
    root = str(ROOT) + "/"
    return shlex.join(["python"] + [c[len(root):] if c.startswith(root) else c for c in cmd[1:]])


def main(argv=None):
    prog = "conditional_runs.py"
    try:
        args, opts, out = parse(argv)
        if args.report:
            if not out.is_dir():
                raise ConfigError(f"--out {args.out}: no such folder; pass the folder the runs "
                                  "were written to")
            report(out, opts["model"], opts["variants"], opts["recipes"], opts["seeds"])
            return 0
        runs = []  # seed by seed: a measurement cut short has every variant of its first seeds
        for s in opts["seeds"]:
            for variant in opts["variants"]:
                for recipe in opts["recipes"]:
                    run = run_dir(out, opts["model"], variant, recipe, s)
                    flags = train_flags(opts, opts["model"], variant, recipe, s, run)
                    expected_config(flags)  # train_mnist.py's own checks, before any run starts
                    runs.append((run, plan(run, flags, opts)))
    except (ConfigError, CheckpointError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    todo = [(run, steps) for run, steps in runs if steps]
    print(f"{len(todo)} of {len(runs)} runs to do, {args.jobs} at a time, in {out}", flush=True)
    if args.dry_run:
        for run, steps in todo:
            print(f"{run.name}:")
            for what, cmd, _ in steps:
                print(f"    {what if isinstance(cmd, Path) else shown(cmd)}")
        return 0
    (out / "logs").mkdir(parents=True, exist_ok=True)
    ended = run_all(todo, args.jobs, out / "logs")
    if ended is None:  # stopped: 128 + the signal's number, as the trainings it stopped
        return CHILDREN.exit_status()
    try:
        report(out, opts["model"], opts["variants"], opts["recipes"], opts["seeds"])
    except (ConfigError, CheckpointError) as e:  # a run's files damaged while the others ran
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    if any(status == 1 for _, status in ended):
        return 1
    return CHILDREN.exit_status()  # 0, or a run's that a signal to it alone stopped


if __name__ == "__main__":
    sys.exit(main())
