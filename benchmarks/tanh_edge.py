"""How far a trained G's pixels sit at the edge of its Tanh, against MNIST's own images: a G whose
every pixel is at -1 or +1 gets no gradient through Tanh (tanh'(a) = 1 - tanh(a)^2 = 0 there), so
its loss cannot move it, whatever D says.

    python benchmarks/tanh_edge.py runs/time_to_quality/mnist/mlp-{lsgan,bce}-s0   # bash's braces

For each run (its checkpoint, G in evaluation mode, or its average G with --ema): on n samples from
noise seed 0 (a conditional G asked for the digits in turn), the mean of 1 - x^2 over every pixel x
of G's output (Tanh's derivative there), the share of pixels strictly inside (|x| < 0.9), and how
many of the n images differ once written as 8-bit pixels. The first row is the same for n of MNIST's
test images (x in [-1, 1]).
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from minigan import backend, checkpoint, data  # noqa: E402
from minigan.rules import (MAX_SAMPLES, ConfigError, Parser, check, explained,  # noqa: E402
                           integer, said_of, typed)
from minigan.gan import sample_noise  # noqa: E402
from minigan.sample import labels_as_vectors, load_generator  # noqa: E402


def edge_stats(x):
    """(mean 1 - x^2, share of |x| < 0.9, distinct images as uint8 pixels) of x (n, 784)."""
    distinct = len(np.unique(data.to_pixels(x).reshape(len(x), -1), axis=0))
    return float(np.mean(1 - x ** 2)), float(np.mean(np.abs(x) < 0.9)), distinct


def main(argv=None):
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (config.json and checkpoint.npz)")
    # as minigan.evaluate's -n: the images must fit in memory
    n_rule = explained(integer(1, MAX_SAMPLES), f"an integer from 1 to {MAX_SAMPLES:,}")
    p.add_argument("--n", type=typed(int, "--n", n_rule, 1000), default=1000,
                   help="images a row (default: %(default)s)")
    a = p.parse_args(argv)
    try:
        check("--n", a.n, n_rule, 1000)
    except ConfigError as e:
        p.error(str(e))
    backend.use("cpu")
    generators = []
    for run in a.runs:  # every run read before the first is sampled
        try:
            generators.append((run, *load_generator(run)))
        except checkpoint.CheckpointError as e:
            p.error(said_of(run, e))
    rows = []
    for run, G, cfg in generators:
        z = sample_noise(backend.default_rng(0), a.n, cfg.latent_dim, cfg.dtype)
        inputs = [z] + ([labels_as_vectors(np.arange(a.n) % 10, cfg.dtype)]  # each digit alike
                        if cfg.conditional else [])
        x = backend.to_host(G.forward(*inputs)).reshape(a.n, -1)  # device -> host
        try:
            rows.append((Path(run).name, edge_stats(x)))
        except ValueError as e:  # to_pixels: NaN weights, as minigan.sample reports them
            print(f"{p.prog}: error: {run}: {e}", file=sys.stderr)
            return 2
    images, _ = data.load_mnist("test")
    rows.insert(0, ("MNIST test images",
                    edge_stats(np.asarray(data.to_model_input(images[:a.n])))))
    distinct = f"distinct of {a.n}"
    print(f"{'images':32s} {'mean 1 - x^2':>12s} {'|x| < 0.9':>10s} {distinct:>16s}")
    for name, (slope, inside, distinct) in rows:
        print(f"{name:32s} {slope:12.4f} {inside:10.3f} {distinct:16d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
