"""Time to quality (issue 20): every loss and constraint alone, the combinations the literature
recommends, each with and without --recipe improved's tricks, on MNIST (MLP and DCGAN) and the
2-D lab, three seeds; Fréchet distance after every epoch against the minutes of training.

    python benchmarks/time_to_quality.py --dry-run          # the plan: recipes, refusals, commands
    python benchmarks/time_to_quality.py                    # everything (about 45 h on 2 cores)
    python benchmarks/time_to_quality.py --models mlp       # the lab and the MLP (about 9 h)
    python benchmarks/time_to_quality.py --report           # tables and plot from the runs so far
    python benchmarks/time_to_quality.py --out runs/ttq-tiny --limit 320 --epochs 2 \\
        --eval-samples 200 --toy-steps 200 --seeds 0        # the whole pipeline in minutes

The recipes (recipes() below, for each model) are GAME_FLAGS: benchmarks/first_games.py's GAMES
(their papers' settings: WGAN-GP with k = 5, hinge + spectral norm, R1 with the non-saturating
loss) plus spectral norm and the gradient penalty alone on the default loss; and each game
"+tricks", with every trick of --recipe improved (minigan/tricks.py, IMPROVED) that
settings.check_combination accepts with it. A recipe or trick it refuses is skipped and listed,
with settings' own reason, in the report and by --dry-run.

MNIST: each run is train_mnist.py --eval-every 1 (10,000 samples scored by minigan.evaluate after
every epoch, as every FD this project reports) in two sessions, --epochs 5 and then --resume to
--epochs 20: between them, and at the end, the checkpoint is scored in both feature spaces
(benchmarks/two_spaces.py's score) into spaces_eNN.json. A resumed run continues exactly, and no
recipe here uses --instance-noise, whose annealing is fixed by the first session's --epochs.

Training minutes: train_mnist.py's ``elapsed`` (checkpoint.npz) counts every second between the
start of its loop and the last checkpoint, the epochs' scoring included, and only at the end of a
session. So this script reads the run's output as it comes and stamps the line that ends each
epoch's scoring with the checkpointed seconds the session began with plus the seconds since its
loop started (stamps.json in the run folder); the report subtracts the scoring seconds of epochs
1..e (eval.csv's ``seconds``). The minutes at epoch e so include the steps, sample grids, curves
and checkpoints of a plain run, and exclude starting the process, loading MNIST and the scoring.

As benchmarks/ablate_recipe.py (whose env() and eval_rows() this reuses): subprocesses with
--threads BLAS threads (default 1), --jobs at a time; a finished run is skipped, an interrupted
one resumed, a failed or diverged one recorded in failed.txt and not retried.

The ablation takes more hours than one sitting, and a run folder (checkpoints, samples: about
10 MB) is not something to commit. With --archive DIR each finished (or failed) run's record,
everything the report reads of it (FD and minutes per epoch, both spaces' scores, its settings),
is kept as DIR/<run>.json: a run kept there is not run again, and the report reads it where its
folder is gone. docs/time_to_quality/mnist/runs is the project's. --no-start-after MINUTES
starts no run after that, so that a part of the ablation ends with whole runs (a run cut off
before its end is lost with its machine, as its folder is).
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]
from ablate_recipe import JOBS, ROOT, env, eval_rows, folder_arg, seeds_arg  # noqa: E402
from children import Children  # noqa: E402
from first_games import GAMES  # noqa: E402

from minigan import checkpoint, evaluate, files, rundir, settings, toy_settings  # noqa: E402
from minigan.rules import said_of  # noqa: E402
from minigan.tricks import IMPROVED  # noqa: E402

# ---- defaults and the recipes ------------------------------------------------------------------
EPOCHS, SPACES_AT, EVAL_SAMPLES, TOY_STEPS = 20, 5, 10_000, 4000  # the full ablation
REPORT_EPOCHS = (1, 2, 5, 20)  # the table's columns (the plot and results.json have every epoch)
TARGET_FD, TARGET_MINUTES = 15.0, 5.0  # the goal: FD <= 15 within 5 minutes of training
GAME_FLAGS = {**GAMES, "sn": ["--spectral-norm", "1"], "gp": ["--gp", "10"]}
MODELS, DATASETS = ("mlp", "dcgan"), ("ring", "grid")
TOY_FIELDS = {f.name for f in fields(toy_settings.ToyConfig)}
CHILDREN = Children()  # the trainings, scorings and lab runs under way, and the stop (children.py)


def refusal(flags):
    """None if train_mnist.py takes these flags, else settings' reason (checked, not run)."""
    given, _ = settings.parse_train_args(flags)
    try:
        cfg = settings.validate(settings.Config(**settings.with_recipe(given)))
        settings.check_combination(cfg)
    except settings.ConfigError as e:
        return str(e)
    return None


def recipes(model):
    """({name: flags of train_mnist.py}, {name: why refused}) for one model: each game, and the
    game "+tricks" with each IMPROVED trick that fits it (the DCGAN takes --ema and
    --label-smoothing of them), and --recipe fast where settings knows it."""
    table, refused = {}, {}
    fast = ["--recipe", "fast"] if settings.RULES["recipe"][0]("fast") else None
    for game, flags in {**GAME_FLAGS, **({"fast": fast} if fast else {})}.items():
        base = ["--model", model, *flags]
        if (why := refusal(base)) is not None:
            refused[game] = why
            continue
        table[game] = base
        if game == "fast":
            continue
        tricks = []
        for name, value in IMPROVED.items():
            trick = [settings.flag(name), str(value)]
            if (why := refusal(base + tricks + trick)) is None:
                tricks += trick
            else:
                refused[f"{game}+tricks without {settings.flag(name)}"] = why
        table[f"{game}+tricks"] = base + tricks
    return table, refused


def toy_refusal(flags):
    """None if python -m minigan.toy takes a recipe's share of flags (toy_flags), else the lab's
    own reason (toy_settings.toy_config's; checked, not run), as refusal() is train_mnist.py's."""
    p = settings.parser(toy_settings.ToyConfig, toy_settings.TOY_RULES, "minigan.toy", "")
    try:
        toy_settings.toy_config(vars(p.parse_args(toy_flags(flags)[0])))
    except settings.ConfigError as e:
        return str(e)
    return None


def toy_recipes():
    """({name: flags}, {name: why refused}): the MLP's recipes (the lab's networks are MLPs),
    split by what the 2-D lab takes; it refuses --recipe fast, chosen on MNIST."""
    table, refused = {}, {}
    for r, f in recipes("mlp")[0].items():
        if (why := toy_refusal(f)) is None:
            table[r] = f
        else:
            refused[r] = why
    return table, refused


def toy_flags(flags):
    """The lab's share of a recipe's flags, and the flags it has no setting for (--beta2)."""
    kept, dropped = [], []
    for name, value in zip(flags[::2], flags[1::2]):
        if name == "--model":
            continue
        (kept if name[2:].replace("-", "_") in TOY_FIELDS else dropped).extend([name, value])
    return kept, dropped


# ---- the MNIST runs ----------------------------------------------------------------------------
def run_dir(out, model, recipe, seed):
    return out / "mnist" / f"{model}-{recipe}-s{seed}"


def child_env(threads):
    return {**env(), **{k: str(threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                  "MKL_NUM_THREADS")}, "PYTHONUNBUFFERED": "1"}


def read_meta(folder):
    return checkpoint.load(folder / "checkpoint.npz")[1]


def sessions(epochs):
    """The epochs where a run's sessions end: its checkpoint there is scored in both spaces."""
    return sorted({min(SPACES_AT, epochs), epochs})


def epoch_of(folder):
    return read_meta(folder)["epoch"] if (folder / "checkpoint.npz").exists() else 0


def session_argv(folder, flags, seed, a, stop, new):
    """train_mnist.py's command for the session that trains the run in folder to epoch stop."""
    if not new:
        return [sys.executable, "train_mnist.py", "--resume", str(folder), "--epochs", str(stop)]
    return [sys.executable, "train_mnist.py", *flags, "--seed", str(seed), "--epochs", str(stop),
            "--eval-every", "1", "--eval-samples", str(a.eval_samples), "--out", str(folder),
            *(["--limit", str(a.limit)] if a.limit else [])]


def same_settings(folder, flags, seed, a):
    """Refuse to continue a folder trained with other settings (a tiny test in the same --out)."""
    if differ := settings_differ(folder, flags, seed, a):
        raise SystemExit(f"{folder} was trained with other {', '.join(differ)} than asked: "
                         "use another --out, or delete the folder")


def settings_differ(folder, flags, seed, a):
    """The settings the run in folder was trained with that differ from those asked."""
    given, _ = settings.parse_train_args(
        [*flags, "--seed", str(seed), "--eval-every", "1", "--eval-samples", str(a.eval_samples),
         "--limit", str(a.limit)])
    want = asdict(settings.Config(**settings.with_recipe(given)))
    have = json.loads((folder / "config.json").read_text())
    return [k for k in want if k not in ("out", "epochs", "data_dir", "device")
            and json.dumps(want[k]) != json.dumps(have.get(k))]


def machine():
    """The processor and its cores, kept with a run's minutes: minutes measured on one machine
    do not compare with another's, and two machines of one kind ("2 cores") may differ."""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), None)
    except OSError:
        cpu = None
    return f"{cpu or platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def train_session(folder, argv, threads):
    """Run one session of train_mnist.py, stamping the line that ends each epoch's scoring with
    the run's seconds so far (stamps.json); returns (returncode, the session's stderr)."""
    start_epoch = epoch_of(folder)
    # the seconds of the sessions before this one, a session stopped within epoch 1 included
    base = read_meta(folder)["elapsed"] if (folder / "checkpoint.npz").exists() else 0.0
    stamps_file = folder / "stamps.json"
    old = json.loads(stamps_file.read_text())["stamps"] if stamps_file.exists() else {}
    stamps = {int(e): t for e, t in old.items() if int(e) <= start_epoch}  # the rest: redone
    where = machine()  # read once a session, not at every epoch's stamp
    log_path = folder.parent / f"{folder.name}.stderr.txt"
    with open(log_path, "w") as log:
        proc = CHILDREN.start(argv, cwd=ROOT, env=child_env(threads), stdout=subprocess.PIPE,
                              stderr=log, text=True)
        if proc is None:  # a stop came as it was to start: the run is as it was
            return rundir.STOPPED_STATUS[CHILDREN.signal_name], ""
        t0 = None
        for line in proc.stdout:
            now = time.perf_counter()
            if line.startswith("minigan: training"):  # printed as the loop's clock starts
                t0 = now
            elif line.startswith("epoch ") and "Fréchet distance" in line and t0 is not None:
                stamps[int(line.split()[1].rstrip(":"))] = round(base + now - t0, 2)
                files.write_text(stamps_file, json.dumps(
                    {"threads": threads, "machine": where, "stamps": stamps}, indent=1) + "\n")
        code, _, _ = CHILDREN.wait(proc)
    return code, log_path.read_text()


def mnist_job(out, model, recipe, flags, seed, a):
    """Train one run to --epochs, session by session, or find it trained or failed; returns
    None, or the exit status of a session that a stop ended (rundir.stop_status)."""
    folder = run_dir(out, model, recipe, seed)
    if folder.name in a.kept and not folder.exists():  # finished in an earlier sitting
        return
    if (folder / "failed.txt").exists() or CHILDREN.stopping.is_set():
        keep(folder, model, recipe, flags, seed, a)
        return
    if too_late(a, folder.name):
        return
    if folder.exists():
        if not (folder / "checkpoint.npz").exists():
            raise SystemExit(f"{folder} holds no checkpoint: delete it and rerun")
        same_settings(folder, flags, seed, a)
    folder.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for stop in sessions(a.epochs):
        if epoch_of(folder) < stop:
            if CHILDREN.stopping.is_set():  # asked for while the last checkpoint was scored
                print(f"  {folder.name}: stopped at epoch {epoch_of(folder)}", flush=True)
                return
            argv = session_argv(folder, flags, seed, a, stop, new=not folder.exists())
            code, err = train_session(folder, argv, a.threads)
            # stopped with us, or by a signal to the training alone (`kill`): resumed next time
            stopped = rundir.stop_status(code)
            if CHILDREN.stopping.is_set() or stopped:
                print(f"  {folder.name}: stopped at epoch {epoch_of(folder)}", flush=True)
                return stopped
            if code:
                folder.mkdir(exist_ok=True)
                files.write_text(folder / "failed.txt", err[-4000:])
                print(f"  {folder.name}: failed or diverged (see failed.txt)", flush=True)
                return
        if epoch_of(folder) == stop and not (folder / f"spaces_e{stop}.json").exists():
            if stopped := score_spaces(folder, stop, a):  # the next call scores it again
                print(f"  {folder.name}: stopped while epoch {stop} was scored", flush=True)
                return stopped
    keep(folder, model, recipe, flags, seed, a)
    print(f"  {folder.name}: {time.perf_counter() - start:.0f} s", flush=True)


# ---- the kept records (--archive) --------------------------------------------------------------
def kept_records(archive):
    """{run folder's name: its record} of every run kept in the archive folder (or none)."""
    if archive is None or not archive.is_dir():
        return {}
    return {p.stem: from_json(json.loads(p.read_text())) for p in sorted(archive.glob("*.json"))}


def from_json(kept):
    """A kept record as run_record() returns it: JSON's string keys back to epochs."""
    rec = kept["record"]
    kept["record"] = {**rec, **{k: {int(e): v for e, v in rec[k].items()}
                                for k in ("fd", "minutes", "spaces")}}
    return kept


def keep(folder, model, recipe, flags, seed, a):
    """Write a finished or failed run's record to the archive (if one was asked for), unless
    it was trained with other settings than asked (--report does not refuse such a folder)."""
    rec = folder_record(folder, a.kept)
    done = rec["failed"] or (finished_run(rec, a.epochs) and all(
        e in rec["spaces"] for e in sessions(a.epochs)))
    if a.archive is None or not done or (
            folder.name in a.kept and a.kept[folder.name]["record"] == rec):  # kept already
        return
    if (folder / "config.json").exists() and settings_differ(folder, flags, seed, a):
        return
    a.archive.mkdir(parents=True, exist_ok=True)
    stamps = json.loads((folder / "stamps.json").read_text()) if (folder / "stamps.json").exists() \
        else {}
    kept = {"model": model, "recipe": recipe, "seed": seed, "flags": flags,
            "settings": settings_of(a), "threads": stamps.get("threads"),
            "machine": rec["machine"],
            "config": (json.loads((folder / "config.json").read_text())
                       if (folder / "config.json").exists() else None),
            "source": f"the run folder {folder.name}, kept at "
                      f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
            "failed_tail": ((folder / "failed.txt").read_text()[-1000:] if rec["failed"]
                            else None),
            "record": rec}
    files.write_text(a.archive / f"{folder.name}.json", json.dumps(kept, indent=1) + "\n")
    a.kept[folder.name] = from_json(json.loads(json.dumps(kept)))


def settings_of(a):
    """The ablation's settings a kept run must share with the runs it is reported beside."""
    return {"epochs": a.epochs, "eval_samples": a.eval_samples, "limit": a.limit}


def record_of(out, model, recipe, seed, kept):
    """A run's record: from its folder, or from the archive where the folder is gone."""
    folder = run_dir(out, model, recipe, seed)
    if folder.exists() or folder.name not in kept:
        return folder_record(folder, kept)
    return kept[folder.name]["record"]


def folder_record(folder, kept):
    """run_record(folder), with the note written into its kept record where the folder has no
    note.txt (notes are often written there after the run): keeping the folder again, or reporting
    from it, does not lose that note; a note.txt written later wins."""
    rec = run_record(folder)
    if rec["note"] is None and folder.name in kept:
        rec["note"] = kept[folder.name]["record"].get("note")
    return rec


def kept_refusal(a, jobs):
    """None, or why a kept run cannot stand beside this ablation: other flags or settings."""
    for fn, args in jobs:
        if fn is not mnist_job:
            continue
        out, model, recipe, flags, seed, _ = args
        name = run_dir(out, model, recipe, seed).name
        if (kept := a.kept.get(name)) is None:
            continue
        if kept["flags"] != flags or kept["seed"] != seed or kept["settings"] != settings_of(a):
            return (f"--archive {a.archive_arg}: {name}.json was kept from a run with other "
                    f"settings ({kept['flags']}, {kept['settings']}) than asked ({flags}, "
                    f"{settings_of(a)}); use another --archive, or drop the flags that differ")
    return None


def spaces_command(folder, epoch, a):
    return [sys.executable, str(Path(__file__).resolve()), "--score-spaces", str(folder),
            "--spaces-epoch", str(epoch), "--eval-samples", str(a.eval_samples)]


def score_spaces(folder, epoch, a):
    """Score the checkpoint (after `epoch` epochs) in both feature spaces, in a subprocess.
    Returns None when it is scored; the exit status of a scoring that a stop ended (ours, or a
    signal to it alone: rundir.stop_status); SystemExit when it failed."""
    done = CHILDREN.run(spaces_command(folder, epoch, a), cwd=ROOT, env=child_env(a.threads))
    if done is None:  # a stop came as it was to start
        return rundir.STOPPED_STATUS[CHILDREN.signal_name]
    if not done.returncode:
        return None
    stopped = rundir.stop_status(done.returncode)
    if CHILDREN.stopping.is_set() or stopped:
        return stopped or rundir.STOPPED_STATUS[CHILDREN.signal_name]
    raise SystemExit(f"scoring {folder} in both spaces failed:\n{done.stderr[-2000:]}")


def too_late(a, name):
    """Whether --no-start-after has passed: then the run `name` is not started (or continued),
    and the end of the ablation names it."""
    if a.deadline is None or time.monotonic() < a.deadline:
        return False
    a.not_started.append(name)
    return True


def toy_job(out, recipe, flags, seed, dataset, a):
    """Run one lab run, or find it run or failed; returns None, or the exit status of a lab run
    that a stop ended (rundir.stop_status)."""
    folder = out / "toy" / f"{dataset}-{recipe}-s{seed}"
    done = (folder / "result.json").exists() or (folder / "failed.txt").exists()
    if not done and too_late(a, f"toy/{folder.name}"):
        return
    if not done and not CHILDREN.stopping.is_set():  # the lab refuses a folder with files in it
        cmd = toy_command(folder, flags, seed, dataset, a)
        done = CHILDREN.run(cmd, cwd=ROOT, env=child_env(1))
        if done is None:  # a stop came as it was to start
            return None
        # a lab stopped, with us or alone, is not failed: it leaves no result.json, runs again
        stopped = rundir.stop_status(done.returncode)
        if done.returncode and not (CHILDREN.stopping.is_set() or stopped):
            folder.mkdir(parents=True, exist_ok=True)
            files.write_text(folder / "failed.txt", done.stderr[-4000:])
        return stopped


def toy_command(folder, flags, seed, dataset, a):
    return [sys.executable, "-m", "minigan.toy", "--dataset", dataset, "--seed", str(seed),
            "--steps", str(a.toy_steps), "--frames", "0", "--out", str(folder),
            *toy_flags(flags)[0]]


# ---- the report --------------------------------------------------------------------------------
def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "n": len(values), "values": values,
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def run_record(folder):
    """Everything one finished or partial run says: FD and minutes per epoch, both spaces, the
    machine it trained on, and what a person noted of it (note.txt: what else ran beside it)."""
    rows = eval_rows(folder)
    stamped = (json.loads((folder / "stamps.json").read_text())
               if (folder / "stamps.json").exists() else {})
    stamps = stamped.get("stamps", {})
    # training seconds at epoch e = the stamp of e's scoring - the scoring seconds of 1..e
    minutes = {int(e): (t - sum(rows[k]["seconds"] for k in range(1, int(e) + 1))) / 60
               for e, t in stamps.items() if all(k in rows for k in range(1, int(e) + 1))}
    spaces = {int(p.stem.split("_e")[1]): json.loads(p.read_text())
              for p in folder.glob("spaces_e*.json")}
    return {"fd": {e: r["fd"] for e, r in rows.items()}, "minutes": minutes, "spaces": spaces,
            "failed": (folder / "failed.txt").exists(), "machine": stamped.get("machine"),
            "note": (folder / "note.txt").read_text().strip() if (folder / "note.txt").exists()
            else None}


def first_below(rec, target=TARGET_FD):
    """(epoch, minutes) of the first scoring with FD <= target, or None."""
    hit = [e for e in sorted(rec["fd"]) if rec["fd"][e] <= target and e in rec["minutes"]]
    return (hit[0], rec["minutes"][hit[0]]) if hit else None


def mnist_tables(out, model, table, seeds, epochs, kept=None):
    kept = kept or {}
    recs = {r: {s: record_of(out, model, r, s, kept) for s in seeds} for r in table
            if any(run_dir(out, model, r, s).exists() or run_dir(out, model, r, s).name in kept
                   for s in seeds)}
    cols = [e for e in REPORT_EPOCHS if e < epochs] + [epochs]
    number = machine_numbers(recs, kept)  # {} on one machine: then no cell names one
    lines = [f"### MNIST, {model}: Fréchet distance (MLP features) and training minutes", "",
             "| recipe | n | " + " | ".join(f"epoch {e}" for e in cols) + " | failed |",
             "|---|---|" + "---|" * len(cols) + "---|"]
    for r, by_seed in recs.items():
        cells = []
        for e in cols:
            fd = summary([x["fd"].get(e) for x in by_seed.values()])
            cells.append("-" if fd is None else f"{mean_sd(fd, '{:.1f}')} (n {fd['n']}"
                         + minutes_text(by_seed.values(), e, number) + ")")
        n = sum(bool(x["fd"]) for x in by_seed.values())
        failed = sum(x["failed"] for x in by_seed.values())
        lines.append(f"| {r} | {n} | " + " | ".join(cells) + f" | {failed or ''} |")
    lines += ["", f"### MNIST, {model}: time to FD ≤ {TARGET_FD:g} (first scoring at or below; "
              "epoch, training minutes)", "",
              "| recipe | " + " | ".join(f"seed {s}" for s in seeds) + f" | every seed within "
              f"{TARGET_MINUTES:g} min |", "|---|" + "---|" * len(seeds) + "---|"]
    every = {}  # recipe -> the minutes its slowest seed took to FD <= target
    for r, by_seed in recs.items():
        hits = [first_below(by_seed[s]) for s in seeds]
        verdicts = [goal_verdict(by_seed[s], h, epochs) for s, h in zip(seeds, hits)]
        cells = [hit_cell(by_seed[s], h, epochs, number) for s, h in zip(seeds, hits)]
        ok = ("no" if "no" in verdicts else "yes" if all(v == "yes" for v in verdicts)
              else "not yet known")
        lines.append(f"| {r} | " + " | ".join(cells) + f" | {ok} |")
        if all(hits):
            every[r] = max(h[1] for h in hits)
    lines.append("")
    finished = sum(finished_run(x, epochs) for by in recs.values() for x in by.values())
    planned = len(table) * len(seeds)
    so_far = "" if finished == planned else (
        f"So far {finished} of the {planned} planned runs have finished (the rest are not run "
        f"or not finished). ")
    if number:
        lines.append(f"The runs trained on {len(number)} machines, whose minutes do not compare "
                     "(machine N in a cell: the machines section below); the epoch does.")
    if every:
        best = min(every, key=every.get)
        lines.append(f"{so_far}Best time to FD ≤ {TARGET_FD:g} on every seed: {best}, "
                     f"{every[best]:.1f} minutes (its slowest seed); the goal is "
                     f"{TARGET_MINUTES:g}.")
    else:
        last = {r: statistics.fmean(x["fd"][max(x["fd"])] for x in by.values() if x["fd"])
                for r, by in recs.items() if any(x["fd"] for x in by.values())}
        if last:
            best = min(last, key=last.get)
            lines.append(f"{so_far}No recipe reached FD ≤ {TARGET_FD:g} on every seed; the "
                         f"lowest mean FD at the last scoring is {best}'s, {last[best]:.1f}.")
    return recs, lines + [""]


def minutes_text(runs, epoch, number):
    """The FD table's minutes: the runs' mean training minutes at that epoch, or, where the
    ablation's runs trained on more than one machine (number, from machine_numbers), each
    machine's mean apart: minutes of two machines do not compare, so their mean means nothing."""
    by_machine = {}
    for x in runs:
        if epoch in x["minutes"]:
            where = number[machine_of(x)] if number else None
            by_machine.setdefault(where, []).append(x["minutes"][epoch])
    if not by_machine:
        return ""
    if not number:
        return f", {statistics.fmean(by_machine[None]):.1f} min"
    return "; " + ", ".join(f"{statistics.fmean(m):.1f} min machine {where}"
                            for where, m in sorted(by_machine.items()))


def finished_run(rec, epochs):
    """Whether a run was scored at its last epoch (or failed, and will not be retried)."""
    return rec["failed"] or bool(rec["fd"]) and max(rec["fd"]) >= epochs


def hit_cell(rec, hit, epochs, number=None):
    """One seed's cell of the time-to-FD table: where it got there (and on which machine, where
    the runs trained on more than one: number, from machine_numbers), or why it has not."""
    if hit:
        where = f", machine {number[machine_of(rec)]}" if number else ""
        return f"epoch {hit[0]}, {hit[1]:.1f} min{where}"
    if rec["failed"]:
        return "failed"
    if not rec["fd"]:
        return "not run"
    return "not reached" if finished_run(rec, epochs) else f"not yet (epoch {max(rec['fd'])})"


def goal_verdict(rec, hit, epochs):
    """"yes" if this seed reached FD <= TARGET_FD within TARGET_MINUTES, "no" once it cannot
    (it got there later, or it finished or failed or trained past TARGET_MINUTES without),
    "unknown" while it still can."""
    if hit:
        return "yes" if hit[1] <= TARGET_MINUTES else "no"
    if finished_run(rec, epochs) or max(rec["minutes"].values(), default=0) > TARGET_MINUTES:
        return "no"
    return "unknown"


def mean_sd(stat, fmt):
    """"mean ± sd" of a summary, or the one value alone when there is one (no spread to give)."""
    if stat["n"] < 2:
        return fmt.format(stat["mean"])
    return f"{fmt.format(stat['mean'])} ± {fmt.format(stat['sd'])}"


def two_space_lines(model, recs, seeds):
    """Rank the recipes by mean FD in each feature space at each scored epoch; list the pairs
    the two spaces order apart (benchmarks/two_spaces.py's disagreements)."""
    from two_spaces import disagreements, ranks

    lines, result = [], {}
    for epoch in sorted({e for by in recs.values() for x in by.values() for e in x["spaces"]}):
        scored = {r: [s for s in seeds if epoch in by_seed[s]["spaces"]]
                  for r, by_seed in recs.items()}
        # a part of the ablation: the recipes with the first seed scored, ranked on the most
        # seeds (the first ones) that every one of them has scored
        first = [r for r in scored if seeds[0] in scored[r]]
        use = max((seeds[:k] for k in range(1, len(seeds) + 1)
                   if all(set(seeds[:k]) <= set(scored[r]) for r in first)), key=len)
        fd = {r: {s: statistics.fmean(recs[r][seed]["spaces"][epoch]["scores"][s]["fd"]
                                      for seed in use) for s in ("mlp", "conv")}
              for r in recs if set(use) <= set(scored[r])}
        if len(fd) < 2:
            continue
        tau, apart = disagreements(fd)
        rank = {s: ranks({r: fd[r][s] for r in fd}) for s in ("mlp", "conv")}
        result[epoch] = {"fd": fd, "tau": tau, "apart": apart, "seeds": list(use)}
        over = ("mean FD over the seeds" if use == seeds else
                f"seed {use[0]} only" if len(use) == 1 else
                f"mean FD over seeds {', '.join(map(str, use))} only")
        over += "" if use == seeds else ": the seeds every recipe run has scored so far"
        lines += [f"### {model}, epoch {epoch}: the recipes ranked in both feature spaces "
                  f"({over})", "", "| recipe | FD mlp | rank | FD conv | rank |",
                  "|---|---|---|---|---|"]
        for r in sorted(fd, key=lambda r: fd[r]["mlp"]):
            lines.append(f"| {r} | {fd[r]['mlp']:.1f} | {rank['mlp'][r]} | {fd[r]['conv']:.1f} "
                         f"| {rank['conv'][r]} |")
        lines += ["", f"Kendall's tau {tau:.3f}; ordered apart: " + (
            "; ".join(f"{a} before {b} by mlp, after by conv" for a, b in apart) or "none"), ""]
    return lines, result


def lesson13_lines(recs, seeds, epochs):
    """Lesson 13's claim, "improved after 5 epochs beats the default after 20", per seed and
    in both spaces (bce+tricks is --recipe improved's settings)."""
    if "bce+tricks" not in recs or "bce" not in recs:
        return []
    lines = [f"### Lesson 13: bce+tricks (the improved recipe) at epoch {min(SPACES_AT, epochs)} "
             f"against bce at epoch {epochs}, MLP", "", "| seed | FD mlp | FD conv |",
             "|---|---|---|"]
    for s in seeds:
        a = recs["bce+tricks"][s]["spaces"].get(min(SPACES_AT, epochs))
        b = recs["bce"][s]["spaces"].get(epochs)
        if a and b:
            cells = [f"{a['scores'][sp]['fd']:.1f} vs {b['scores'][sp]['fd']:.1f} ("
                     f"{'holds' if a['scores'][sp]['fd'] <= b['scores'][sp]['fd'] else 'fails'})"
                     for sp in ("mlp", "conv")]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return lines + [""]


def machine_of(rec):
    """The machine a run trained on, as the report names it (the oldest runs did not record it)."""
    return rec.get("machine") or "not recorded"


def machine_numbers(recs, kept=None):
    """{machine: its number} where the runs that trained did so on more than one machine, else
    {}. The machines are numbered in the order they first gave the archive (kept) a run, over
    every model kept there, so that a machine has the same number in every report of the
    project, even one where a machine before it has no run: the oldest runs, which did not
    record their machine, first. A machine the archive does not hold yet (its runs only in their
    folders) comes after those, by name."""
    names = {machine_of(x) for by_seed in recs.values()
             for x in by_seed.values() if x["minutes"]}
    if len(names) < 2:
        return {}
    first = {}  # machine -> when the archive first kept a run of it
    for k in (kept or {}).values():
        when = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", k["source"]).group()
        name = machine_of(k["record"])
        first[name] = min(first.get(name, when), when)
    order = sorted(first, key=lambda n: (first[n], n != "not recorded", n))
    order += sorted(names - set(first))
    return {n: i + 1 for i, n in enumerate(order) if n in names}


def machine_lines(model, recs, kept=None):
    """Which machine each run trained on, where they are more than one: minutes compare within
    a machine. For each recipe run on two, the ratio of its minutes an epoch (the same recipe
    computes the same steps, whatever the seed: yet no seed is run twice, so a ratio holds a
    little of the seeds' difference too)."""
    number = machine_numbers(recs, kept)
    if not number:
        return []
    machines = {}  # machine -> {recipe: [minutes an epoch of each run]}
    for r, by_seed in recs.items():
        for x in by_seed.values():
            if x["minutes"]:
                last = max(x["minutes"])
                machines.setdefault(machine_of(x), {}).setdefault(
                    r, []).append(x["minutes"][last] / last)
    names = sorted(number, key=number.get)
    lines = [f"### {model}: the machines (minutes compare within a machine)", "",
             "The runs trained on more than one machine, so the tables above give each "
             "machine's minutes apart. The machines are numbered in the order they first gave "
             "the archive a run (its records say when), the same in every report. Each "
             "machine's runs:", ""]
    lines += [f"- machine {number[name]}: {name}: runs: {sum(map(len, machines[name].values()))}"
              for name in names]
    rows = []
    for r in recs:
        per = [statistics.fmean(machines[n][r]) if r in machines[n] else None for n in names]
        have = [v for v in per if v is not None]
        if len(have) > 1:
            cells = ["-" if v is None else f"{v:.2f} (n {len(machines[n][r])})"
                     for v, n in zip(per, names)]
            rows.append(f"| {r} | " + " | ".join(cells) + f" | {have[-1] / have[0]:.2f} |")
    if not rows:
        return lines + ["", "No recipe ran on two of them, so no ratio of their minutes.", ""]
    return lines + ["", "For each recipe run on two, the ratio of its mean minutes an epoch:", "",
                    "| recipe | " + " | ".join(f"min/epoch, machine {number[name]}"
                                              for name in names) + " | ratio (last / first) |",
                    "|---|" + "---|" * len(names) + "---|", *rows, ""]


def note_lines(model, recs):
    """What was noted of a run (its note.txt, kept in its record)."""
    notes = [f"- {r}, seed {s}: {x['note']}" for r, by_seed in recs.items()
             for s, x in by_seed.items() if x.get("note")]
    return [f"### {model}: notes on runs", "", *notes, ""] if notes else []


def curve(runs, epochs_only=False):
    """One line of the plot: [epochs, mean minutes, mean FD] of these runs, at each epoch every
    one of them scored (and, unless epochs_only, has minutes for)."""
    points = []
    for e in sorted({e for x in runs for e in x["fd"]}):
        if all(e in x["fd"] and (epochs_only or e in x["minutes"]) for x in runs):
            points.append((e, None if epochs_only else statistics.fmean(
                x["minutes"][e] for x in runs), statistics.fmean(x["fd"][e] for x in runs)))
    return [list(column) for column in zip(*points)] or [[], [], []]


def minutes_panels(recs, kept=None):
    """The plot's rows against minutes for one model: [(machine, {recipe: its runs there})], a
    row a machine where the runs trained on more than one (their minutes do not compare, so a
    mean over them would put a point on neither's clock), else [(None, {recipe: its runs})]."""
    runs = {r: [x for x in by_seed.values() if x["fd"]] for r, by_seed in recs.items()}
    number = machine_numbers(recs, kept)
    if not number:
        return [(None, runs)]
    return [(name, {r: [x for x in xs if machine_of(x) == name] for r, xs in runs.items()})
            for name in sorted(number, key=number.get)]


def plot(out, recs_by_model, n, kept=None):
    """FD (log) against training minutes (a row a machine, where the runs trained on more than
    one) and against epochs (the last row, which no machine enters), mean over the seeds at
    each epoch, one column a model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in recs_by_model if recs_by_model[m]]
    if not models:
        return None
    panels = {m: minutes_panels(recs_by_model[m], kept) for m in models}
    number = {m: machine_numbers(recs_by_model[m], kept) for m in models}
    rows = max(len(p) for p in panels.values()) + 1
    fig, axes = plt.subplots(rows, len(models), figsize=(7.5 * len(models), 5.25 * rows),
                             squeeze=False)
    games = sorted({r.split("+")[0] for m in models for r in recs_by_model[m]})
    colour = {g: plt.cm.tab10(i % 10) for i, g in enumerate(games)}
    for column, m in enumerate(models):
        for row, (name, runs_of) in enumerate(panels[m]):  # a row a machine, in number's order
            ax = axes[row][column]
            for r, runs in runs_of.items():
                _, minutes, fds = curve(runs)
                if minutes:
                    ax.plot(minutes, fds, marker=".", color=colour[r.split("+")[0]],
                            linestyle="--" if r.endswith("+tricks") else "-")
            ax.axvline(TARGET_MINUTES, color="k", linewidth=0.8, linestyle=":")
            ax.set_xlabel("training minutes (scoring excluded)")
            ax.set_title(f"{m}: against minutes, mean over the seeds run (dashed: +tricks)"
                         if name is None else f"{m}: against minutes on machine {number[m][name]} "
                         "(its runs only; dashed: +tricks)")
        for row in range(len(panels[m]), rows - 1):  # a model that ran on fewer machines
            axes[row][column].set_visible(False)
        bottom = axes[-1][column]
        for r, by_seed in recs_by_model[m].items():
            runs = [x for x in by_seed.values() if x["fd"]]
            epochs, _, fds = curve(runs, epochs_only=True)
            label = r if len(runs) == len(by_seed) else f"{r} ({len(runs)} of {len(by_seed)} seeds)"
            if epochs:  # a part of the ablation: the legend says how many seeds a line is over
                bottom.plot(epochs, fds, marker=".", color=colour[r.split("+")[0]], label=label,
                            linestyle="--" if r.endswith("+tricks") else "-")
        bottom.set_xlabel("epoch")
        bottom.set_title(f"{m}: against epochs (every run; no machine in it)")
        bottom.legend(fontsize=7, ncol=2, handlelength=3)  # long enough to show the dashes
        for ax in axes[:, column]:
            ax.axhline(TARGET_FD, color="k", linewidth=0.8, linestyle=":")
            ax.set_yscale("log")
            ax.set_ylabel(f"Fréchet distance (MLP features, {n:,} samples)")
    fig.tight_layout()
    fig.savefig(out / "time_to_quality.png", dpi=90)
    plt.close(fig)
    return out / "time_to_quality.png"


def toy_lines(out, table, seeds):
    lines, result = [], {}
    for dataset in DATASETS:
        rows = {}
        for r in table:
            got = [json.loads(p.read_text()) for s in seeds
                   if (p := out / "toy" / f"{dataset}-{r}-s{s}" / "result.json").exists()]
            if got:
                rows[r] = {k: summary([g[k] for g in got])
                           for k in ("modes_covered", "high_quality", "seconds")}
                rows[r]["modes_total"] = got[0]["modes_total"]
        if not rows:
            continue
        result[dataset] = rows
        lines += [f"### 2-D lab, {dataset}", "", "| recipe | n | modes covered | per seed | "
                  "high quality | seconds |", "|---|---|---|---|---|---|"]
        for r, s in rows.items():
            mc, hq, sec = s["modes_covered"], s["high_quality"], s["seconds"]
            percent = {**hq, "mean": 100 * hq["mean"], "sd": 100 * hq["sd"]}
            lines.append(f"| {r} | {mc['n']} | {mean_sd(mc, '{:.1f}')} of "
                         f"{s['modes_total']} | {', '.join(str(int(v)) for v in mc['values'])} "
                         f"| {mean_sd(percent, '{:.1f}')}% | {sec['mean']:.0f} |")
        lines.append("")
    return lines, result


def report(out, a):
    tables = {}  # model -> (the recipes asked for, --recipes, in the table's order; refused)
    for m in a.models:
        table, refused = recipes(m)
        tables[m] = ({r: f for r, f in table.items() if r in a.recipes}, refused)
    res = {"seeds": a.seeds, "epochs": a.epochs, "eval_samples": a.eval_samples, "mnist": {},
           "two_spaces": {}, "refused": {m: t[1] for m, t in tables.items()}}
    lines = ["# Time to quality", "",
             "Written by `python benchmarks/time_to_quality.py --report` from the runs in "
             f"{a.out}: seeds {', '.join(map(str, a.seeds))}, mean ± sample sd over the seeds "
             f"(n = runs scored), {a.eval_samples} samples a scoring. Minutes are training "
             "minutes (the script's docstring says what they count; each run's stamps.json, "
             "its BLAS threads). The recipes' flags are in results.json.", ""]
    if a.kept:
        mine = sum(k["model"] in a.models for k in a.kept.values())
        lines += [f"Runs whose folder is not in {a.out} are read from the records kept in "
                  f"{a.archive_arg} ({mine} there of the models reported; each says where it came "
                  "from).", ""]
    recs_by_model = {}
    for m, (table, _) in tables.items():
        recs, body = mnist_tables(out, m, table, a.seeds, a.epochs, a.kept)
        if not any(x["fd"] for by in recs.values() for x in by.values()):
            continue
        recs_by_model[m] = recs
        spaces, two = two_space_lines(m, recs, a.seeds)
        lines += body + spaces + (lesson13_lines(recs, a.seeds, a.epochs) if m == "mlp" else [])
        lines += machine_lines(m, recs, a.kept) + note_lines(m, recs)
        res["mnist"][m] = {r: {"flags": table[r], "runs": recs[r]} for r in recs}
        res["two_spaces"][m] = two
    if plot(out, recs_by_model, a.eval_samples, a.kept):
        lines += ["![FD against training minutes and against epochs](time_to_quality.png)",
                  ""]
    lab, lab_refused = toy_recipes()
    toy, res["toy"] = toy_lines(out, {r: f for r, f in lab.items() if r in a.recipes}, a.seeds)
    lines += toy
    lines += ["### Skipped: what settings.check_combination refuses", ""]
    grouped = {}  # one reason, every recipe (or +tricks' trick) it refuses
    for m, (_, refused) in tables.items():  # "game" or "game+tricks without --flag"
        for name, why in refused.items():
            if name.split(" without ")[0] in a.recipes:
                grouped.setdefault(why, []).append(f"{m} {name}")
    lines += [f"- {', '.join(names)}: {why}" for why, names in grouped.items()]
    dropped = {r: toy_flags(f)[1] for r, f in lab.items() if toy_flags(f)[1] and r in a.recipes}
    lines += [f"- 2-D lab, {r}: runs without {' '.join(d)} (the lab has no such setting)"
              for r, d in dropped.items()]
    lines += [f"- 2-D lab, {r}: not run: {why}" for r, why in lab_refused.items()
              if r in a.recipes]
    text = "\n".join(lines) + "\n"
    files.write_text(out / "time_to_quality.md", text)
    files.write_text(out / "results.json", json.dumps(res, indent=1, default=str) + "\n")
    print(text)


# ---- the command -------------------------------------------------------------------------------
def spaces_main(a):
    """--score-spaces: one checkpoint in both feature spaces, to RUN/spaces_eNN.json."""
    from two_spaces import score

    folder = Path(a.score_spaces)
    try:
        scores = score(folder, a.eval_samples)
    except (evaluate.EvalError, checkpoint.CheckpointError) as e:  # a damaged run
        print(f"time_to_quality.py: error: --score-spaces {said_of(folder, e)}",
              file=sys.stderr)
        return 2
    result = {"epoch": a.spaces_epoch, "n": a.eval_samples, "scores": scores}
    files.write_text(folder / f"spaces_e{a.spaces_epoch}.json", json.dumps(result, indent=1))
    return 0


def parse_args(argv):
    p = settings.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=("all", "mnist", "toy"), default="all")
    p.add_argument("--models", default="mlp,dcgan", help="comma-separated (default: %(default)s)")
    p.add_argument("--recipes", default="", help="comma-separated names (default: all)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads a run (default: 1)")
    p.add_argument("--out", default="runs/time_to_quality", help="(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="(default: %(default)s)")
    p.add_argument("--limit", type=int, default=0, help="train_mnist.py --limit (tests)")
    p.add_argument("--eval-samples", type=int, default=EVAL_SAMPLES,
                   help="samples a scoring (default: %(default)s; FD rises as it falls)")
    p.add_argument("--toy-steps", type=int, default=TOY_STEPS, help="(default: %(default)s)")
    p.add_argument("--archive", metavar="DIR", help="keep each finished run's record in DIR, "
                   "read the runs kept there, and run them no more (the docstring says why)")
    p.add_argument("--no-start-after", type=float, metavar="MINUTES",
                   help="start no run after MINUTES minutes; the runs started finish (a part "
                   "of the ablation that ends with whole runs, on a machine about to go)")
    p.add_argument("--report", action="store_true", help="only the tables, plot, results.json")
    p.add_argument("--dry-run", action="store_true", help="print the plan; run and write nothing")
    p.add_argument("--score-spaces", metavar="RUN", help=argparse.SUPPRESS)  # what a job calls
    p.add_argument("--spaces-epoch", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.seeds = seeds_arg(p, a.seeds)  # integers, each a seed, each once
    a.models = a.models.split(",")
    if bad := [m for m in a.models if m not in MODELS]:
        p.error(f"--models {bad[0]}: choose from {', '.join(MODELS)}")
    try:  # --jobs and --threads start processes and threads: the benchmarks' one bound
        for name, default in (("jobs", 2), ("threads", 1)):
            settings.check(name, getattr(a, name), JOBS, default)
    except settings.ConfigError as e:
        p.error(str(e))
    for name, lo in (("epochs", 1), ("limit", 0), ("toy_steps", 1), ("eval_samples", 20),
                     ("spaces_epoch", 0)):
        if getattr(a, name) < lo:
            p.error(f"--{name.replace('_', '-')} {getattr(a, name)}: use an integer >= {lo}")
    if not settings.RULES["eval_samples"][0](a.eval_samples):  # train_mnist.py's own rule
        p.error(f"--eval-samples {a.eval_samples}: use an integer from 20 to "
                f"{settings.MAX_SAMPLES:,}, which train_mnist.py --eval-samples takes (each run "
                "would refuse more)")
    if a.no_start_after is not None and not 0 < a.no_start_after < float("inf"):
        p.error(f"--no-start-after {a.no_start_after:g}: use a number of minutes above 0, "
                "like 120")
    every = {r for m in MODELS for r in recipes(m)[0]}
    a.recipes = a.recipes.split(",") if a.recipes else sorted(every)
    if bad := [r for r in a.recipes if r not in every]:
        p.error(f"--recipes {bad[0]}: choose from {', '.join(sorted(every))}")
    for name in ("models", "recipes"):  # a value twice would plan its runs twice
        given = getattr(a, name)
        if twice := [v for i, v in enumerate(given) if v in given[:i]]:
            p.error(f"--{name} {','.join(map(str, given))}: {twice[0]} is given twice; give "
                    "each once")
    if a.limit:  # a step reads k batches: every recipe must fit one step in --limit images
        need = max(64 * int(dict(zip(f[::2], f[1::2])).get("--k", 1))
                   for m in a.models for r, f in recipes(m)[0].items() if r in a.recipes)
        if a.limit < need:
            p.error(f"--limit {a.limit}: the recipes chosen need at least {need} images for one "
                    f"step (--k batches of 64); use --limit {need} or more")
    if a.score_spaces is not None:  # a job's call: the run folder is all it writes to
        if not (Path(a.score_spaces) / "checkpoint.npz").is_file():
            p.error(f"--score-spaces {a.score_spaces}: not a run folder (no checkpoint.npz "
                    "there); pass a train_mnist.py run folder")
        return a
    a.out_path = folder_arg(p, "--out", a.out, "the folder of the ablation's runs (default: "
                            "runs/time_to_quality)")
    a.archive_arg, a.archive, a.kept = a.archive, None, {}
    if a.archive_arg is not None:
        a.archive = folder_arg(p, "--archive", a.archive_arg, "the folder of kept records "
                               "(the project's: docs/time_to_quality/mnist/runs)")
        try:
            a.kept = kept_records(a.archive)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            p.error(f"--archive {a.archive_arg}: a file there is not a kept record ({e!r}); "
                    "move it out of the folder")
    if a.report and not a.out_path.is_dir() and a.archive is None:  # the records need no --out
        p.error(f"--out {a.out}: no such folder; --report reads the runs an ablation wrote "
                "there (run it first, give its --out, or give --archive to report its records)")
    return a


def main(argv=None):
    a = parse_args(argv)
    if a.score_spaces:
        return spaces_main(a)
    out = a.out_path
    jobs = []
    for m in a.models if a.stage in ("all", "mnist") else ():  # the MLP's hours first, then
        for s in a.seeds:  # seed by seed: a partial ablation has whole rankings of a seed
            jobs += [(mnist_job, (out, m, r, f, s, a)) for r, f in recipes(m)[0].items()
                     if r in a.recipes]
    if a.stage in ("all", "toy"):
        lab = toy_recipes()[0]
        jobs = [(toy_job, (out, r, f, s, d, a)) for d in DATASETS for s in a.seeds
                for r, f in lab.items() if r in a.recipes] + jobs  # minutes, not hours
    if (why := kept_refusal(a, jobs)) is not None:
        print(f"time_to_quality.py: error: {why}", file=sys.stderr)
        return 2
    if a.report:  # and keep what has finished since the last report
        for fn, args in jobs:
            if fn is mnist_job and run_dir(*args[:3], args[4]).exists():
                keep(run_dir(*args[:3], args[4]), *args[1:])
        out.mkdir(parents=True, exist_ok=True)  # a fresh clone: the records, no run folders
        report(out, a)
        return 0
    if a.dry_run:
        for m in a.models:
            for r, f in recipes(m)[0].items():
                print(f"recipe {m} {r}: {' '.join(f)}")
            for name, why in recipes(m)[1].items():
                print(f"refused {m} {name}: {why}")
        for fn, args in jobs:
            if fn is mnist_job:
                folder = run_dir(*args[:3], args[4])
                if (folder / "failed.txt").exists() or (folder.name in a.kept
                                                        and not folder.exists()):
                    continue
                done = epoch_of(folder)
                for stop in sessions(a.epochs):
                    if done < stop:
                        new = not folder.exists() and stop == sessions(a.epochs)[0]
                        argv = session_argv(folder, args[3], args[4], a, stop, new)
                        print("python", " ".join(argv[1:]))
                    if max(done, stop) == stop:
                        print("python", " ".join(spaces_command(folder, stop, a)[1:]))
            else:
                folder = out / "toy" / f"{args[4]}-{args[1]}-s{args[3]}"
                if not any((folder / f).exists() for f in ("result.json", "failed.txt")):
                    argv = toy_command(folder, args[2], args[3], args[4], a)
                    print("python", " ".join(argv[1:]))
        print(f"{len(jobs)} runs, {a.jobs} at a time, {a.threads} BLAS thread(s) each, in {out}")
        return 0
    for fn, args in jobs:  # a folder of other settings: refused before anything runs
        if fn is mnist_job and (folder := run_dir(*args[:3], args[4])).exists():
            try:
                same_settings(folder, args[3], args[4], a)
            except SystemExit as e:
                print(f"time_to_quality.py: error: {e}", file=sys.stderr)
                return 2
    out.mkdir(parents=True, exist_ok=True)
    print(f"{len(jobs)} runs, {a.jobs} at a time, in {out}", flush=True)
    a.deadline = None if a.no_start_after is None else time.monotonic() + 60 * a.no_start_after
    a.not_started = []
    # Ctrl-C, SIGTERM, SIGHUP: the runs under way save their step, and no other starts
    with CHILDREN.listening(), ThreadPoolExecutor(a.jobs) as pool:
        for f in [pool.submit(fn, *args) for fn, args in jobs]:
            f.result()
    if CHILDREN.stopping.is_set():  # 128 + the signal's number, as the trainings it stopped
        return CHILDREN.exit_status()
    if a.not_started:  # --no-start-after: a part of the ablation, ended with whole runs
        print(f"--no-start-after {a.no_start_after:g}: {len(a.not_started)} runs not started "
              f"(first {a.not_started[0]}); the same command continues with them", flush=True)
    report(out, a)
    return CHILDREN.exit_status()  # 0, or a run's that a signal to it alone stopped


if __name__ == "__main__":
    sys.exit(main())
