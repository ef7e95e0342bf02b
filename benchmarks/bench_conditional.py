"""What conditioning costs a training step, against the unconditional GAN, timed in one process
(the MLP of train_mnist.py, batch 64, float32, MNIST's first images and their labels).

    python benchmarks/bench_conditional.py                 # each variant, 200 steps, best of 3
    python benchmarks/bench_conditional.py --model dcgan --steps 20

The variants alternate within each repeat, so that a change in the machine's load hits them
all; each figure is the variant's best repeat. A conditional D step runs real and fake as two
batches (minigan/gan.py, conditional_discriminator_step), where the unconditional MLP's stacks
them into one.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from minigan import backend, data, dataset, models, settings  # noqa: E402
from minigan.gan import train_step  # noqa: E402

VARIANTS = ("", "concat", "projection", "acgan")
# --steps: each step reads its own 64 images, and MNIST has 60,000 (937 batches of 64)
STEPS, REPEATS = settings.integer(1, 60_000 // 64), settings.integer(1, 100)


def seconds_per_step(cfg, X, Y, steps):
    rng = backend.default_rng(cfg.seed)
    G, D = models.build(cfg, rng)
    opt_G, opt_D = models.optimizers(cfg, G, D)
    next_real = dataset.batch_reader(X, backend.xp.arange(len(X)), cfg.batch_size,
                                     labels=Y if cfg.conditional else None)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(G, D, opt_G, opt_D, next_real, rng, latent_dim=cfg.latent_dim,
                   **settings.game_options(cfg))
    return (time.perf_counter() - start) / steps


def main(argv=None):
    p = settings.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=settings.typed(int, "steps", STEPS, 200), default=200,
                   help=f"timed steps a repeat, {STEPS[1]} (default: %(default)s)")
    p.add_argument("--repeats", type=settings.typed(int, "repeats", REPEATS, 3), default=3,
                   help="repeats; each variant's best counts (default: %(default)s)")
    p.add_argument("--model", default="mlp", choices=["mlp", "dcgan"])
    args = p.parse_args(argv)
    try:  # every flag checked before MNIST is read
        settings.check("steps", args.steps, STEPS, 200)
        settings.check("repeats", args.repeats, REPEATS, 3)
    except settings.ConfigError as e:
        p.error(str(e))
    backend.use("cpu")
    cfgs = {variant or "unconditional": settings.Config(model=args.model, conditional=variant)
            for variant in VARIANTS}
    images, labels = data.load_mnist("train")
    X = backend.to_device(data.to_model_input(images[:64 * args.steps]))  # host -> device
    Y = backend.to_device(labels[:64 * args.steps], dtype="int64")
    best = {name: float("inf") for name in cfgs}
    for _ in range(args.repeats):
        for name, cfg in cfgs.items():
            best[name] = min(best[name], seconds_per_step(cfg, X, Y, args.steps))
    base = best["unconditional"]
    print(f"{'variant':14s} {'ms / step':>10s} {'vs unconditional':>17s}")
    for name, s in best.items():
        print(f"{name:14s} {1e3 * s:10.2f} {s / base:16.2f}x")


if __name__ == "__main__":
    main()
