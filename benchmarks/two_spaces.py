"""Score finished runs in both feature spaces and list every pair of runs the two rank apart.

    python benchmarks/two_spaces.py RUN_DIR [RUN_DIR ...] [-n 10000] [--out two_spaces.json]

A Fréchet distance ranks generators by the features it is computed on. For each run folder this
draws n samples (seed 0, as train_mnist.py --eval-every and python -m minigan.evaluate do),
scores them through the MLP classifier (``--features mlp``, minigan/classifier.py) and the
convolutional one (``--features conv``, minigan/conv_classifier.py), and prints one table: each
space's Fréchet distance, its floor, and the run's rank; then Kendall's tau between the two
rankings and every pair of runs that one space puts in one order and the other in the other.
Every score goes to --out as JSON. A run's generator is its checkpoint's (the average of weights
where the run kept one), so a run still training is scored as of its last checkpoint.
"""

import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablate_recipe import cannot_make  # noqa: E402

from minigan import checkpoint, data, evaluate, files  # noqa: E402
from minigan.rules import Parser, folder_problem, integer, said_of, typed  # noqa: E402
from minigan.classifier import features_and_logits  # noqa: E402
from minigan.sample import load_generator  # noqa: E402

SPACES = ("mlp", "conv")
FIELDS = ("fd", "fd_floor", "class_entropy", "precision", "recall")


def score(folder, n, seed=0):
    """{space: evaluate's scores} of n samples of the run in folder, in both feature spaces."""
    pixels, asked = evaluate.load_input(folder, n, seed)
    result = {}
    for space in SPACES:
        ref = evaluate.reference(features=space)  # built once per process
        feats, logits = features_and_logits(ref.net, data.to_model_input(pixels))
        scores = evaluate.evaluate_features(feats, logits, ref, seed, asked=asked)
        result[space] = {k: scores[k] for k in FIELDS}
    return result


def unscorable(run, n):
    """Why n samples of the run folder run cannot be scored, or None: its config and checkpoint
    are read before any run is scored, so a bad run costs no minutes of scoring."""
    try:
        _, cfg = load_generator(run)
    except checkpoint.CheckpointError as e:  # a damaged config or checkpoint
        return str(e)
    if cfg.conditional and (n % 10 or n < 20):  # evaluate.load_input's own condition
        return (f"a conditional run, scored on n/10 samples of each digit: -n {n} is not a "
                "multiple of 10 from 20; use one, like -n 10000")
    return None


def earlier_output(path):
    """Whether the file at path is an earlier --out of this script, which may be replaced: a
    JSON object with its keys n, runs, tau and apart. Anything else, a run's checkpoint.npz or
    config.json among them, is not."""
    scores = files.json_object(path)
    return scores is not None and {"n", "runs", "tau", "apart"} <= scores.keys()


def ranks(values):
    """The rank, 1 = the smallest, of each value of a dict."""
    order = sorted(values, key=values.get)
    return {name: order.index(name) + 1 for name in values}


def disagreements(fd):
    """Kendall's tau between the spaces' orders of the runs, ``tau = 1 - 2 * apart / pairs``
    (a tie counts as ordered alike), and the pairs they order apart: (a, b) with a better than
    b in the MLP's features and worse in the conv's."""
    pairs = list(itertools.combinations(fd, 2))
    apart = []
    for a, b in pairs:
        mlp, conv = fd[a]["mlp"] - fd[b]["mlp"], fd[a]["conv"] - fd[b]["conv"]
        if mlp * conv < 0:
            apart.append((a, b) if mlp < 0 else (b, a))
    tau = 1 - 2 * len(apart) / len(pairs)
    return tau, apart


def main(argv=None):
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="two or more train_mnist.py run folders")
    n_rule = integer(20, 100_000)
    p.add_argument("-n", type=typed(int, "-n", n_rule, 10_000), default=10_000,
                   help="samples a run (default: %(default)s)")
    p.add_argument("--out", default=None, help="the scores as JSON (default: print only)")
    args = p.parse_args(argv)
    names = [Path(run).name for run in args.runs]
    if len(set(names)) < 2 or len(set(names)) < len(names):
        p.error(f"runs {' '.join(args.runs)}: give two or more run folders of different names "
                "(a ranking needs two; the table names a run by its folder)")
    if not n_rule[0](args.n):
        p.error(f"-n {args.n}: use a number from 20 to 100,000 (10,000 for numbers you compare)")
    if args.out is not None:
        if not args.out:
            p.error("--out '': an empty path; name the JSON file to write, like --out "
                    "two_spaces.json")
        out = Path(args.out).resolve()
        if out.is_dir():
            p.error(f"--out {args.out}: a folder, not a file; name the JSON file to write, "
                    "like --out two_spaces.json")
        if (why := folder_problem("out", args.out)) is not None:  # missing, or under a file
            p.error(why)
        if (why := cannot_make(out.parent)) is not None:
            p.error(f"--out {args.out}: {why}; name a file in a folder you can write to")
        if out.is_file() and not earlier_output(out):
            p.error(f"--out {args.out}: a file is there, and it is not an earlier output of this "
                    "script (scores of two_spaces.py); --out replaces only those. Name a new "
                    "file, or move that one away first.")
    for run in args.runs:
        if not (Path(run) / "checkpoint.npz").is_file():
            p.error(f"{run}: not a run folder with a checkpoint.npz; pass train_mnist.py's --out")
    for run in args.runs:  # every run read, before minutes of scoring the first
        if (why := unscorable(run, args.n)) is not None:
            p.error(said_of(run, why))
    results = {}
    for run in args.runs:
        start = time.perf_counter()
        try:
            results[Path(run).name] = score(run, args.n)
        except (evaluate.EvalError, checkpoint.CheckpointError) as e:  # a conditional -n 15
            print(f"two_spaces.py: error: {said_of(run, e)}", file=sys.stderr)
            return 2
        print(f"{Path(run).name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    fd = {name: {s: r[s]["fd"] for s in SPACES} for name, r in results.items()}
    rank = {s: ranks({name: fd[name][s] for name in fd}) for s in SPACES}
    print(f"{'run':28s} {'FD mlp':>9s} {'floor':>6s} {'rank':>4s}   {'FD conv':>9s} "
          f"{'floor':>6s} {'rank':>4s}")
    for name, r in sorted(results.items(), key=lambda t: t[1]["mlp"]["fd"]):
        print(f"{name:28s} " + "   ".join(
            f"{r[s]['fd']:9.2f} {r[s]['fd_floor']:6.2f} {rank[s][name]:4d}" for s in SPACES))
    tau, apart = disagreements(fd)
    print(f"Kendall's tau between the two rankings: {tau:.3f} ({len(apart)} of "
          f"{len(fd) * (len(fd) - 1) // 2} pairs ordered apart)")
    for a, b in apart:
        print(f"  mlp: {a} {fd[a]['mlp']:.1f} < {b} {fd[b]['mlp']:.1f};   conv: {a} "
              f"{fd[a]['conv']:.1f} > {b} {fd[b]['conv']:.1f}")
    if args.out:
        files.write_text(args.out, json.dumps({"n": args.n, "runs": results, "tau": tau,
                                               "apart": apart}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
