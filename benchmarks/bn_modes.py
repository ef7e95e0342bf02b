"""Does drawing samples in evaluation mode cost a DCGAN quality? One run's G scored three ways.

    python benchmarks/bn_modes.py RUN_DIR [RUN_DIR ...] [-n 10000] [--batch 64] [--batches 100]

minigan draws every sample with G in evaluation mode: its BatchNorm layers normalise with their
running statistics, so an image depends on its own z only (lessons/12_convolutions.md says why).
PyTorch's DCGAN example draws in training mode, where each batch is normalised by its own mean
and variance. And the running statistics are averages with momentum 0.1 over the last steps'
batches, taken while the weights still moved, so they may lag behind the final weights.

For each DCGAN run folder this draws the same n noise vectors (seed 0, as minigan.evaluate does)
three ways and prints the Fréchet distance of each in both feature spaces (the MLP classifier's
and the convolutional one's, as benchmarks/two_spaces.py does):

- ``eval``: evaluation mode with the run's running statistics (what minigan.sample draws);
- ``train``: training mode, each batch of --batch normalised by its own statistics, the
  running statistics left as they are;
- ``re-estimated``: evaluation mode after replacing each BatchNorm's running statistics by the
  plain average of its batch statistics over --batches fresh batches of --batch (momentum
  1/i at the i-th batch): statistics of the final weights, with no lag.

The last two columns say how far re-estimating moved the running statistics: the largest shift
of a running mean, in running standard deviations, and the largest relative change of a running
variance. A run's G is its checkpoint's (the average of weights where the run kept one).
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from two_spaces import SPACES  # noqa: E402

from minigan import backend, checkpoint, data, evaluate  # noqa: E402
from minigan.batchnorm import BatchNorm, frozen_running_stats  # noqa: E402
from minigan.classifier import features_and_logits  # noqa: E402
from minigan.gan import sample_noise  # noqa: E402
from minigan.layers import walk  # noqa: E402
from minigan.rules import Parser, integer, message, said_of, typed  # noqa: E402
from minigan.sample import generate, load_generator  # noqa: E402
from minigan.scores import frechet_distance, gaussian_stats  # noqa: E402

MODES = ("eval", "train", "re-estimated")
FLAGS = {  # flag: (rule, default, help)
    "-n": (integer(20, 100_000), 10_000, "samples a mode"),
    "--batch": (integer(2, 10_000), 64, "the batch of training mode and of re-estimating, "
                "64 as in training"),
    "--batches": (integer(1, 10_000), 100, "batches averaged when re-estimating"),
}


def frechet_distances(pixels):
    """{space: FD} of uint8 images (N, 28, 28) against MNIST's training images."""
    fd = {}
    for space in SPACES:
        ref = evaluate.reference(features=space)  # built once per process
        feats, _ = features_and_logits(ref.net, data.to_model_input(pixels))
        fd[space] = frechet_distance(*gaussian_stats(feats), ref.mu, ref.sigma)
    return fd


def reestimate_running_stats(G, latent_dim, batches, batch, dtype, seed=1):
    """Replace the running mean and variance of every BatchNorm in G by the plain average of its
    batch statistics over `batches` batches of fresh noise: at the i-th batch the momentum is
    1/i, so ``running = (1 - 1/i) * running + (1/i) * batch_stat`` is the mean of the first i.
    Returns how far that moved them: the largest shift of a running mean, in the old running
    standard deviations, and the largest relative change of a running variance."""
    norms = [layer for layer in walk(G) if isinstance(layer, BatchNorm)]
    before = [(layer.running_mean.copy(), layer.running_var.copy()) for layer in norms]
    momenta = [layer.momentum for layer in norms]
    rng = backend.default_rng(seed)  # not the scoring's noise (seed 0)
    G.train()
    for i in range(1, batches + 1):
        for layer in norms:
            layer.momentum = 1 / i
        G.forward(sample_noise(rng, batch, latent_dim, dtype))
    G.eval()
    for layer, m in zip(norms, momenta):
        layer.momentum = m
    xp = backend.xp
    mean_shift = max(float(xp.max(xp.abs(layer.running_mean - mean) / xp.sqrt(var)))
                     for layer, (mean, var) in zip(norms, before))
    var_change = max(float(xp.max(xp.abs(layer.running_var / var - 1)))
                     for layer, (_, var) in zip(norms, before))
    return mean_shift, var_change


def measure(run, n, batch, batches):
    """{mode: {space: FD}} for the run's G, and how far re-estimating moved the statistics."""
    G, cfg = load_generator(run)  # in evaluation mode
    fd = {"eval": frechet_distances(generate(G, n, cfg.latent_dim, 0, cfg.dtype))}
    G.train()
    with frozen_running_stats(G):  # training mode: a chunk of `batch` is a batch
        fd["train"] = frechet_distances(generate(G, n, cfg.latent_dim, 0, cfg.dtype, batch))
    change = reestimate_running_stats(G, cfg.latent_dim, batches, batch, cfg.dtype)
    fd["re-estimated"] = frechet_distances(generate(G, n, cfg.latent_dim, 0, cfg.dtype))
    return fd, change


def refusal(run):
    """Why the run folder cannot be measured, or None: read before any run is scored."""
    if not (Path(run) / "checkpoint.npz").is_file():
        return f"{run}: not a run folder with a checkpoint.npz; pass train_mnist.py's --out"
    try:
        G, cfg = load_generator(run)
    except checkpoint.CheckpointError as e:  # a damaged config or checkpoint
        return said_of(run, e)
    if cfg.conditional:
        return said_of(run, "a conditional run; this script measures unconditional DCGAN runs")
    if not any(isinstance(layer, BatchNorm) for layer in walk(G)):
        return said_of(run, f"its G ({cfg.model}) has no BatchNorm, so its modes draw the same "
                       "images; pass a DCGAN run (train_mnist.py --model dcgan)")
    return None


def main(argv=None):
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="DCGAN run folders of train_mnist.py")
    for name, (rule, default, text) in FLAGS.items():
        p.add_argument(name, type=typed(int, name, rule, default), default=default,
                       help=f"{text} (default: {default})")
    args = p.parse_args(argv)
    for name, (rule, default, _) in FLAGS.items():
        if not rule[0](value := getattr(args, name.lstrip("-"))):
            p.error(message(name, value, rule, default))
    for run in args.runs:  # every run read, before minutes of scoring the first
        if (why := refusal(run)) is not None:
            p.error(why)
    print(f"{'run':28s} " + "   ".join(f"{mode + ' ' + space:>17s}" for mode in MODES
                                        for space in SPACES) + "   mean shift (sd)   var change")
    for run in args.runs:
        start = time.perf_counter()
        fd, (shift, change) = measure(run, args.n, args.batch, args.batches)
        print(f"{Path(run).name:28s} " + "   ".join(f"{fd[mode][space]:17.2f}" for mode in MODES
                                                    for space in SPACES)
              + f"   {shift:15.3f}   {change:10.1%}")
        print(f"  ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
