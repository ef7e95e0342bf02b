"""First measurements of the games beyond Jensen-Shannon on MNIST: does each loss and constraint
train for 5 epochs without diverging, on two seeds, and what does minigan.evaluate say of it?

    python benchmarks/first_games.py                     # the MLP's games, seeds 0 and 1
    python benchmarks/first_games.py --model dcgan       # the DCGAN's (22 to 70 min a run)
    python benchmarks/first_games.py --report            # the table of the runs done so far

Each run is `train_mnist.py --epochs 5 --eval-every 5` in --out/<model>-<game>-s<seed>, with one
BLAS thread, --jobs at a time (benchmarks/ablate_recipe.py's machinery: a finished run is
skipped, an interrupted one resumed; Ctrl-C, SIGTERM or SIGHUP stops the runs under way, saved,
and exits 128 + the signal's number, benchmarks/children.py). The WGANs use their papers' settings: clipping with
RMSprop at 5e-5 and 5 critic steps (Arjovsky et al. 2017), the gradient penalty with Adam at
1e-4, betas (0, 0.9) and 5 critic steps (Gulrajani et al. 2017). The full ablation and the
recipe belong to the time-to-quality issue; this is the first look.
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablate_recipe import JOBS, ROOT, env, eval_rows, folder_arg, seeds_arg  # noqa: E402
from children import Children  # noqa: E402

from minigan import rundir  # noqa: E402
from minigan.rules import Parser, message, typed  # noqa: E402

GAMES = {
    "bce": [],
    "lsgan": ["--loss", "lsgan"],
    "hinge": ["--loss", "hinge"],
    "hinge-sn": ["--loss", "hinge", "--spectral-norm", "1"],
    "r1": ["--r1", "10"],
    "wgan-clip": ["--loss", "wgan", "--clip", "0.01", "--optimizer", "rmsprop", "--lr-g", "5e-5",
                  "--lr-d", "5e-5", "--k", "5"],
    "wgan-gp": ["--loss", "wgan", "--gp", "10", "--lr-g", "1e-4", "--lr-d", "1e-4", "--beta1",
                "0", "--beta2", "0.9", "--k", "5"],
}
CHILDREN = Children()  # the trainings under way, and the stop (children.py)
DCGAN_GAMES = ["bce", "lsgan", "hinge", "hinge-sn", "wgan-clip"]  # no penalty with BatchNorm
FIELDS = ("fd", "fd_floor", "class_entropy", "least_share", "most_share", "precision", "recall")


def job(out, model, game, seed):
    folder = out / f"{model}-{game}-s{seed}"
    if 5 in eval_rows(folder):
        return folder
    if folder.exists():
        cmd = [sys.executable, "train_mnist.py", "--resume", str(folder)]
    else:
        cmd = [sys.executable, "train_mnist.py", "--model", model, *GAMES[game], "--seed",
               str(seed), "--epochs", "5", "--eval-every", "5", "--out", str(folder)]
    start = time.perf_counter()
    done = CHILDREN.run(cmd, cwd=ROOT, env=env())
    if done is None:  # this script is stopping: no run starts
        return folder
    (folder / "stderr.txt").write_text(done.stderr[-20000:]) if folder.exists() else None
    stopped = rundir.stop_status(done.returncode)  # saved where it stopped (Ctrl-C, `kill`)
    status = "stopped" if stopped else "diverged or failed" if done.returncode else "done"
    print(f"  {folder.name}: {status} in {time.perf_counter() - start:.0f} s"
          + ("; the same command resumes it" if stopped else ""), flush=True)
    return folder


def report(out):
    lines = ["| model | game | seed | Fréchet distance | class entropy | least / most digit | "
             "precision | recall | seconds |", "| --- | --- | ---: | ---: | ---: | --- | ---: | "
             "---: | ---: |"]
    results = {}
    for folder in sorted(out.glob("*-s*")):
        model, rest = folder.name.split("-", 1)
        game, seed = rest.rsplit("-s", 1)
        rows = eval_rows(folder)
        if 5 not in rows:
            why = (f"stopped before epoch 5 (see {folder.name}/stderr.txt)"
                   if (folder / "stderr.txt").exists() else "running, or interrupted: rerun")
            lines.append(f"| {model} | {game} | {seed} | {why} | | | | | |")
            continue
        r = rows[5]
        meta = json.loads(str(__import__("numpy").load(folder / "checkpoint.npz")["meta"]))
        results[folder.name] = {k: r[k] for k in FIELDS} | {"elapsed": meta["elapsed"]}
        lines.append(f"| {model} | {game} | {seed} | {r['fd']:.1f} | {r['class_entropy']:.3f} | "
                     f"{100 * r['least_share']:.1f}% / {100 * r['most_share']:.1f}% | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {meta['elapsed']:.0f} |")
    (out / "first_games.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(lines))


def main(argv=None):
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=["mlp", "dcgan"], default="mlp")
    p.add_argument("--games", nargs="+", default=None, help="(default: every game of the model)")
    p.add_argument("--seeds", nargs="+", default=["0", "1"], help="(default: 0 1)")
    p.add_argument("--jobs", type=typed(int, "--jobs", JOBS, 2), default=2,
                   help="runs at a time, 1 to 64 (default: %(default)s)")
    p.add_argument("--out", default="runs/first_games", help="(default: %(default)s)")
    p.add_argument("--report", action="store_true")
    args = p.parse_args(argv)
    seeds = seeds_arg(p, " ".join(args.seeds), sep=" ")
    model_games = DCGAN_GAMES if args.model == "dcgan" else list(GAMES)
    games = args.games or model_games
    if bad := [g for g in games if g not in model_games]:
        p.error(f"--games {' '.join(games)}: {bad[0]} is not a game of --model {args.model}; "
                f"choose from {', '.join(model_games)}")
    if twice := [g for i, g in enumerate(games) if g in games[:i]]:
        p.error(f"--games {' '.join(games)}: {twice[0]} is given twice; give each once")
    if not JOBS[0](args.jobs):
        p.error(message("--jobs", args.jobs, JOBS, 2))
    out = folder_arg(p, "--out", args.out, "the folder of the runs (default: runs/first_games)")
    out.mkdir(parents=True, exist_ok=True)  # every flag checked: now something may be written
    if args.report:
        report(out)
        return 0
    todo = [(out, args.model, g, s) for s in seeds for g in games]
    # Ctrl-C, SIGTERM, SIGHUP: the runs under way save their step, and no other starts
    with CHILDREN.listening(), ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda a: job(*a), todo))
    if CHILDREN.stopping.is_set():  # 128 + the signal's number, as the trainings it stopped
        return CHILDREN.exit_status()
    report(out)
    return CHILDREN.exit_status()  # 0, or a run's that a signal to it alone stopped


if __name__ == "__main__":
    sys.exit(main())
