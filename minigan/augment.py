"""Do a GAN's samples help a classifier that has few labelled images? The measurement.

    python -m minigan.augment                       # N = 100, 300, 1000, 60000; 3 seeds
    python -m minigan.augment --n 100,1000 --seeds 2 --generator runs/cond   # a given run too
    python -m minigan.augment --quick --json        # a tiny check, under a minute

For each N and seed, N labelled MNIST training images are drawn (stratified_subset), and
minigan's MNIST classifier (minigan/classifier.py's network, trained by its ``fit``) is trained
on each *arm* and scored on the 10,000 test images:

- real: the N images as they are;
- augmented: the N images, each epoch shifted by up to --max-shift pixels and turned by up to
  --max-rotation degrees (shift_and_rotate): what a practitioner would do instead of a GAN;
- synthetic: --synthetic images of a conditional generator, the same number of each digit, and
  no real image (GAN-train, the Classification Accuracy Score of Ravuri & Vinyals 2019);
- mix P: the N real images and round(N * P / (1 - P)) synthetic ones, so that a share P of the
  training set is synthetic (one arm per value of --mix).

Every arm of a seed starts from the same initial weights and trains the same --steps Adam steps,
so the arms differ in their data only. The generators (each row names its own):

- trained: a conditional GAN trained here, in this process, on the same N labelled images
  (train_generator: train_mnist.py's settings, models and train_step, through the library), the
  honest low-data setting; --train-generator none skips it;
- a run: ``--generator RUN``, a folder of ``train_mnist.py --conditional ...``, the same for
  every N; one trained on all 60,000 images is the upper bound.

GAN-test (Shmelkov et al. 2018) is the other way round: the accuracy of classifiers trained on
real images, on the generator's samples, per digit: the shipped classifier (all 60,000 images)
and the real arm's (the same N). GAN-train says whether the samples carry what a classifier
needs (their diversity); GAN-test whether they look like their digit (their quality).

Writes into --out (a new or empty folder): results.json, accuracy.png (test accuracy against N, log x)
and, for each trained generator of the first seed, generator_N<n>.png (one row per digit).
"""

import json
import os
import sys
import time
from pathlib import Path

from minigan import (backend, checkpoint, classifier, conditional, data, files, pictures, rules,
                     rundir, sample, settings)
from minigan.augment_arms import (GAN_VARIANT, GAN_WIDTHS, MAX_ROTATION, MAX_SHIFT,
                                  measure_seed, summarise)
from minigan.settings import ConfigError

# ---- the defaults, in one visible block ---------------------------------------------------------
NS = (100, 300, 1000, 60000)  # labelled images per classifier
SEEDS = 3
STEPS = 1000  # Adam steps of every classifier (batch 128): 2 epochs of all 60,000 images
SYNTHETIC = 10_000  # images of the synthetic-only arm, and of GAN-test
MIX = (0.5,)  # shares of synthetic images in the mixed arms
GAN_STEPS = 2000  # steps of the generator trained on the N images (batch 64)
MIN_N = conditional.NUM_CLASSES  # one image of each digit
MAX_MIX = 0.9  # 9 synthetic images for every real one
QUICK = dict(n=(100,), seeds=1, steps=100, synthetic=1000, gan_steps=100,
             widths=dict(g_hidden=(64,), d_hidden=(64,)))
# The single-number flags: each one's rule and default (checked where read, and in options)
RULES = {"seeds": rules.integer(1, 100), "steps": rules.integer(1, 1_000_000),
         "synthetic": rules.integer(MIN_N, 1_000_000), "gan_steps": rules.integer(1, 1_000_000),
         "max_shift": rules.integer(0, 4), "max_rotation": rules.number_from_to(0, 45)}
DEFAULTS = dict(seeds=SEEDS, steps=STEPS, synthetic=SYNTHETIC, gan_steps=GAN_STEPS,
                max_shift=MAX_SHIFT, max_rotation=MAX_ROTATION)


# ---- the report ----------------------------------------------------------------------------------


def show_cell(mean, sd):
    """A cell of the table: "91.20% ± 0.35%" (the sd left out for one seed)."""
    return f"{mean:.2%}" + ("" if sd is None else f" ± {sd:.2%}")


def format_report(table, gan_tests, seeds):
    """The two tables as lines of text: accuracy per arm, GAN-test per generator."""
    lines = [f"test accuracy on the 10,000 MNIST test images (mean ± sd over {seeds} seed(s))",
             f"{'N':>6s}  {'arm':12s} {'generator':28s} accuracy"]
    for c in table:
        lines.append(f"{c['n']:>6d}  {c['arm']:12s} {c['generator'] or '-':28s} "
                     f"{show_cell(c['mean'], c['sd'])}")
    if gan_tests:
        lines += ["", "GAN-test: share of samples labelled as asked by the shipped classifier "
                  "(all 60,000 images) and by the real arm's (N images)",
                  f"{'N':>6s}  {'generator':28s} {'shipped':>16s} {'real N':>7s}  per digit 0-9"]
        for t in gan_tests:
            lines.append(f"{t['n']:>6d}  {t['generator']:28s} "
                         f"{show_cell(t['shipped_mean'], t['shipped_sd']):>16s} "
                         f"{t['real_n_mean']:7.1%}  "
                         + " ".join(f"{v:.0%}" for v in t["shipped_per_digit"]))
    return lines


def save_plot(path, table, seeds):
    """Test accuracy against N, log x, one line per arm and generator, sd as error bars."""
    plt = pictures.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm, gen in dict.fromkeys((c["arm"], c["generator"]) for c in table):
        cells = sorted((c for c in table if (c["arm"], c["generator"]) == (arm, gen)),
                       key=lambda c: c["n"])
        ax.errorbar([c["n"] for c in cells], [c["mean"] for c in cells],
                    yerr=[c["sd"] or 0 for c in cells], marker="o", capsize=3,
                    label=arm if gen is None else f"{arm}, {gen}")
    ax.set_xscale("log")
    ax.set_xlabel("labelled real training images N")
    ax.set_ylabel("test accuracy (10,000 images)")
    ax.set_title(f"MNIST classifier: mean ± sd over {seeds} seed(s)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    pictures.save_figure(fig, path)


# ---- the command ---------------------------------------------------------------------------------


def parse_list(name, text, kind):
    """A comma-separated flag as a tuple of kind (int or float); ConfigError names the flag."""
    try:
        values = tuple(kind(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{rules.flag(name)} {rules.show(text)}: not a list; use "
                          f"comma-separated {'integers' if kind is int else 'numbers'}, like "
                          f"{','.join(map(str, NS if kind is int else (0.25, 0.5)))}") from None
    return values


def check_each(name, text, values, rule, default):
    """ConfigError naming the flag and the whole list unless every value passes rule."""
    ok, allowed = rule
    bad = next((v for v in values if not ok(v)), None)
    if bad is not None or len(set(values)) != len(values):
        what = f"{rules.show(bad)} is not allowed" if bad is not None else "a value repeats"
        raise ConfigError(f"{rules.flag(name)} {text}: {what}; use comma-separated values, "
                          f"each {allowed}, none twice (default: {default}).")


# given_as(int, "seeds"): an argparse type whose message for "--seeds abc" is the rule's
given_as = rules.typed_from(RULES, DEFAULTS)


def parse_args(argv):
    p = rules.Parser(prog="python -m minigan.augment", description=(
        "Train minigan's MNIST classifier on N labelled images, alone, augmented by shifts and "
        "rotations, on a conditional GAN's samples, and on both; score each on the 10,000 test "
        "images."))
    add = p.add_argument
    add("--n", default=None, metavar="N[,N...]", help="comma-separated numbers of labelled "
        f"training images, each from {MIN_N} to 60000 (default: {','.join(map(str, NS))}; "
        "--quick: 100)")
    add("--seeds", type=given_as(int, "seeds"), default=None, help="how many seeds (0, 1, ...) "
        f"per cell, 1 to 100 (default: {SEEDS}; --quick: 1)")
    add("--steps", type=given_as(int, "steps"), default=None, help="Adam steps of each "
        f"classifier, batch 128 (default: {STEPS}; --quick: {QUICK['steps']})")
    add("--synthetic", type=given_as(int, "synthetic"), default=None, help="samples of the "
        f"synthetic arm and of GAN-test, each digit equally often (default: {SYNTHETIC}; "
        "--quick: 1000)")
    add("--mix", default=None, metavar="P[,P...]", help="comma-separated shares P of synthetic "
        f"images in the mixed arms, each in (0, {MAX_MIX}] (default: {','.join(map(str, MIX))})")
    add("--max-shift", type=given_as(int, "max_shift"), default=MAX_SHIFT, help="the augmented "
        "arm's largest shift in pixels, 0 to 4 (default: %(default)s)")
    add("--max-rotation", type=given_as(float, "max_rotation"), default=MAX_ROTATION,
        help="the augmented arm's largest rotation in degrees, 0 to 45 (default: %(default)s)")
    add("--generator", action="append", default=[], metavar="RUN", help="a run folder of "
        "train_mnist.py --conditional ...; its samples make arms too (may be repeated)")
    add("--train-generator", default=GAN_VARIANT, choices=(*settings.CONDITIONAL, "none"),
        help="also train a conditional GAN of this variant on each set of N images "
        "(default: %(default)s; none: do not)")
    add("--gan-steps", type=given_as(int, "gan_steps"), default=None, help="steps of that GAN, "
        f"batch 64 (default: {GAN_STEPS}; --quick: {QUICK['gan_steps']}, and a one-hidden-layer "
        "G and D of 64)")
    add("--quick", action="store_true", help="a tiny check in under a minute: the (default) "
        "flags not given take their --quick values")
    add("--out", default=None, help="a new or empty folder for results.json and the pictures "
        "(default: runs/augment-<time>)")
    add("--json", action="store_true", help="print the numbers as one JSON object on the "
        "last line")
    add("--device", choices=["cpu", "gpu"], default="cpu")
    return p, p.parse_args(argv)


def options(args):
    """The settings of a measurement from the flags, each checked; raises ConfigError."""
    def pick(given, full, small):  # a flag given wins; else --quick's value or the default
        return given if given is not None else (small if args.quick else full)

    opts = dict(n=NS if args.n is None else parse_list("n", args.n, int),
                mix=MIX if args.mix is None else parse_list("mix", args.mix, float),
                seeds=pick(args.seeds, SEEDS, QUICK["seeds"]),
                steps=pick(args.steps, STEPS, QUICK["steps"]),
                synthetic=pick(args.synthetic, SYNTHETIC, QUICK["synthetic"]),
                gan_steps=pick(args.gan_steps, GAN_STEPS, QUICK["gan_steps"]),
                max_shift=args.max_shift, max_rotation=args.max_rotation,
                train_generator=args.train_generator,
                widths=QUICK["widths"] if args.quick else GAN_WIDTHS)
    if args.quick and args.n is None:
        opts["n"] = QUICK["n"]
    check_each("n", args.n, opts["n"], rules.integer(MIN_N), ",".join(map(str, NS)))
    check_each("mix", args.mix, opts["mix"], (lambda v: 0 < v <= MAX_MIX, f"a number in (0, "
               f"{MAX_MIX}]: the share of synthetic images"), ",".join(map(str, MIX)))
    for name, rule in RULES.items():
        rules.check(name, opts[name], rule, DEFAULTS[name])
    return opts


def check_not_empty(args):
    """Raise ConfigError for an empty path: "" is no folder, and not a way to ask for the
    default (leave the flag out for that)."""
    if args.out == "":
        raise ConfigError('--out "": an empty path; name a new folder, or leave out --out for '
                          "runs/augment-<time>")
    if "" in args.generator:
        raise ConfigError('--generator "": an empty path; pass the folder of a train_mnist.py '
                          "--conditional run")


def check_out(out):
    """Raise ConfigError unless --out names a new or empty folder (rundir.refuse_taken)."""
    if not rules.path_ok(str(out), "out"):
        raise ConfigError(f"--out {rules.show(str(out))}: not a usable folder name (a file "
                          "stands in its way); choose another --out")
    rundir.refuse_taken(out)


def load_given(runs, train_size):
    """[(name, G, cfg)] for each --generator RUN, and {name: what it was trained on}; raises
    ConfigError for an unconditional run, CheckpointError for a missing or damaged one."""
    given, described = [], {}
    folders = [Path(run).resolve() for run in runs]  # cond, cond/, ./cond: one folder
    twice = next((i for i, folder in enumerate(folders) if folder in folders[:i]), None)
    if twice is not None:
        first = runs[folders.index(folders[twice])]
        same = "is given twice" if first == runs[twice] else (
            f"names the folder of --generator {first} ({folders[twice]}): the same run twice")
        raise ConfigError(f"--generator {runs[twice]} {same}; give each run once")
    for run in runs:
        try:  # every setting checked, as train_mnist.py --resume checks them
            cfg = settings.used_config(run)
        except (checkpoint.CheckpointError, ConfigError) as e:  # no config.json, a bad value
            raise ConfigError(f"--generator {rules.said_of(run, e)}") from None
        if not cfg.conditional:
            raise ConfigError(f"--generator {run}: trained without --conditional, so its G "
                              "cannot be asked for a digit; pass a run of train_mnist.py "
                              "--conditional acgan (or concat, projection)")
        G, cfg = sample.load_generator(run)
        name = f"run {run}"
        given.append((name, G, cfg))
        images = train_size if not cfg.limit or cfg.limit >= train_size else cfg.limit
        described[name] = (f"{run}: --conditional {cfg.conditional}, {cfg.epochs} epochs on "
                           f"{'all' if images == train_size else 'the first'} {images:,} "
                           "training images")
    return given, described


def main(argv=None):
    p, args = parse_args(argv)
    out = Path(args.out or time.strftime("runs/augment-%Y%m%d-%H%M%S"))
    try:  # every flag is checked, and every input read, before anything is written
        check_not_empty(args)
        opts = options(args)
        check_out(out)
        backend.use(args.device)
        train, test = data.load_mnist("train"), data.load_mnist("test")
        too_many = [n for n in opts["n"] if n > len(train[0])]
        if too_many:
            raise ConfigError(f"--n {args.n}: {too_many[0]} is more than the {len(train[0]):,} "
                              f"labelled training images there are; use at most "
                              f"{len(train[0])}")
        given, described = load_given(args.generator, len(train[0]))
        reference = classifier.load_classifier()
    except (ConfigError, rundir.RunError, checkpoint.CheckpointError, data.DataError,
            backend.DeviceError, classifier.ClassifierError) as e:
        p.error(str(e))
    if opts["train_generator"] != "none":
        described[f"trained on N ({opts['train_generator']})"] = (
            f"--conditional {opts['train_generator']}, trained here on the same N labelled "
            f"images: {opts['gan_steps']} steps of batch 64, G {opts['widths']['g_hidden']}, "
            f"D {opts['widths']['d_hidden']}, train_mnist.py's other defaults")
    start = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)  # new, or empty (check_out)
        rows, tests = [], []
        for n in opts["n"]:
            for seed in range(opts["seeds"]):
                r, t, trained = measure_seed(n, seed, opts, train, test, given, reference,
                                             log=lambda line: print(line, flush=True))
                rows, tests = rows + r, tests + t
                for name, G, cfg in trained if seed == 0 else ():
                    pictures.save_grid(out / f"generator_N{n}.png", sample.digit_rows(
                        G, 100, cfg.latent_dim, dtype=cfg.dtype), nrow=10)
        table, gan_tests = summarise(rows, tests)
        results = dict(command="python -m minigan.augment " + " ".join(
                           sys.argv[1:] if argv is None else argv),
                       date=time.strftime("%Y-%m-%d", time.gmtime()),
                       machine=f"{os.cpu_count()} CPU cores, --device {args.device}",
                       settings=dict(opts), generators=described,
                       seconds=round(time.perf_counter() - start, 1), table=table,
                       gan_test=gan_tests, runs=rows, gan_test_runs=tests)
        files.write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
        save_plot(out / "accuracy.png", table, opts["seeds"])
    except OSError as e:
        print(f"{p.prog}: error: cannot write in {out} ({e}); free some space or choose "
              "another --out", file=sys.stderr)
        return 2
    except ValueError as e:  # to_pixels: a generator whose weights went NaN
        print(f"{p.prog}: error: {e}; the results so far are lost, the pictures kept in {out}",
              file=sys.stderr)
        return 2
    print("\n".join(format_report(table, gan_tests, opts["seeds"])))
    for name, words in described.items():
        print(f"generator {name}: {words}")
    print(f"{results['seconds']} s; wrote {out}/results.json and {out}/accuracy.png")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
