"""What each game beyond Jensen-Shannon costs a training step, against the 2014 paper's, timed
in one process (the MLP of train_mnist.py, or its DCGAN, batch 64, float32, MNIST's first
images).

    python benchmarks/bench_games.py                 # every game, 200 steps, best of 3
    python benchmarks/bench_games.py --steps 100 --repeats 5
    python benchmarks/bench_games.py --model dcgan --steps 20   # the games its BatchNorm takes

The games alternate within each repeat, so that a change in the machine's load hits them all;
each game's figure is its best repeat. A game of k D steps (WGAN's n_critic) is timed per
train_step, that is per G step, as train_mnist.py counts steps; the table also gives the time
per D step.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from minigan import backend, data, dataset, models, settings  # noqa: E402
from minigan.gan import train_step  # noqa: E402

GAMES = {  # name -> the flags of train_mnist.py
    "bce (the paper's)": [],
    "lsgan": ["--loss", "lsgan"],
    "hinge": ["--loss", "hinge"],
    "hinge + spectral norm": ["--loss", "hinge", "--spectral-norm", "1"],
    "wgan + clip, rmsprop": ["--loss", "wgan", "--clip", "0.01", "--optimizer", "rmsprop"],
    "wgan + gp 10": ["--loss", "wgan", "--gp", "10"],
    "bce + r1 10": ["--r1", "10"],
}
# --steps: each D step reads its own 64 images, and MNIST has 60,000 (937 batches of 64)
BATCHES = 60_000 // 64
STEPS, REPEATS = settings.integer(1, BATCHES), settings.integer(1, 100)


def seconds_per_step(cfg, X, steps):
    rng = backend.default_rng(cfg.seed)
    G, D = models.build(cfg, rng)
    opt_G, opt_D = models.optimizers(cfg, G, D)
    next_real = dataset.batch_reader(X, range(len(X)), cfg.batch_size)
    options = settings.game_options(cfg)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(G, D, opt_G, opt_D, next_real, rng, k=cfg.k, gen_loss=cfg.gen_loss,
                   latent_dim=cfg.latent_dim, **options)
    return (time.perf_counter() - start) / steps


def main(argv=None):
    p = settings.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=settings.typed(int, "steps", STEPS, 200), default=200,
                   help="timed steps a repeat (default: %(default)s)")
    p.add_argument("--repeats", type=settings.typed(int, "repeats", REPEATS, 3), default=3,
                   help="repeats; each game's best counts (default: %(default)s)")
    p.add_argument("--k", type=settings.typed(int, "k", settings.RULES["k"], 1), default=1,
                   help="D steps per G step for every game (default: %(default)s)")
    p.add_argument("--model", choices=("mlp", "dcgan"), default="mlp")
    args = p.parse_args(argv)
    games = {name: flags for name, flags in GAMES.items()  # no penalty with BatchNorm
             if args.model == "mlp" or not {"--gp", "--r1"} & set(flags)}
    try:  # every flag checked before MNIST is read; --k by train_mnist.py's own rules
        settings.check("steps", args.steps, STEPS, 200)
        settings.check("repeats", args.repeats, REPEATS, 3)
        cfgs = {name: settings.new_config(settings.parse_train_args(
                    [*flags, "--k", str(args.k), "--model", args.model])[0])
                for name, flags in games.items()}
    except settings.ConfigError as e:
        p.error(str(e))
    if args.k > BATCHES:
        p.error(f"--k {args.k}: a step would read {args.k:,} batches of 64, more than MNIST's "
                f"{BATCHES}; use --k {BATCHES} or fewer")
    if args.steps * args.k > BATCHES:
        p.error(f"--steps {args.steps} with --k {args.k}: {args.steps * args.k:,} batches of 64, "
                f"more than MNIST's {BATCHES}; use --steps {BATCHES // args.k} or fewer")
    backend.use("cpu")
    images, _ = data.load_mnist("train")
    X = backend.to_device(data.to_model_input(images[:64 * args.k * args.steps]))
    best = {name: float("inf") for name in cfgs}
    for _ in range(args.repeats):
        for name, cfg in cfgs.items():
            best[name] = min(best[name], seconds_per_step(cfg, X, args.steps))
    base = best["bce (the paper's)"]
    print(f"{'game':24s} {'ms / step':>10s} {'ms / D step':>12s} {'vs bce':>7s}")
    for name, s in best.items():
        print(f"{name:24s} {1e3 * s:10.2f} {1e3 * s / args.k:12.2f} {s / base:6.2f}x")


if __name__ == "__main__":
    main()
