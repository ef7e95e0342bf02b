"""What an epoch's outputs cost at epoch 5 and at epoch 500: the fixed-noise grid with the GIF,
and the curves, timed in one process on a scratch run folder.

    python benchmarks/bench_epoch_outputs.py            # epochs 5 and 500, 5 repeats each

A run of 500 epochs (one of the tutorials minigan learns from trains that long) writes 500 grids.
Until the house was rebuilt, every epoch re-read all of them into samples.gif; now the GIF holds
at most pictures.MAX_GIF_FRAMES of them, spread over the run. The old way is timed beside it
(every grid into the GIF) for comparison. The curves read metrics.csv, which grows by one row
per logged step: 937 steps an epoch, logged every 100 (the defaults on MNIST).
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from minigan import pictures, rundir, settings  # noqa: E402

# --epochs: a run folder as it is after epoch 2 or later (epoch 1 has no grid and no metrics yet)
EPOCHS, REPEATS = settings.integer(2, 10_000), settings.integer(1, 1000)


def seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_folder_at(folder, epoch, rng):
    """A run folder as train_mnist.py leaves it after `epoch` epochs (grids and metrics)."""
    (folder / "samples").mkdir(parents=True)
    for e in range(1, epoch):
        pixels = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
        pictures.save_grid(folder / "samples" / f"epoch_{e:03d}.png", pixels, nrow=8)
    for step in range(100, (epoch - 1) * 937 + 1, 100):
        rundir.append_row(folder / "metrics.csv", {"step": step, "epoch": 1 + step // 937,
                                                   "d_loss": 1.2, "g_loss": 0.8,
                                                   "d_real": 0.6, "d_fake": 0.4})


def old_gif(folder):
    """The GIF as it was made before: every grid of the run, re-read each epoch."""
    frames = [Image.open(p).convert("L") for p in sorted((folder / "samples").glob("*.png"))]
    frames[0].save(folder / "old.gif", save_all=True, append_images=frames[1:], duration=400,
                   loop=0)


def main(argv=None):
    p = settings.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=settings.typed(int, "epochs", EPOCHS, "5 500"), nargs="+",
                   default=[5, 500], help=f"epochs to time at, each {EPOCHS[1]} (default: 5 500)")
    p.add_argument("--repeats", type=settings.typed(int, "repeats", REPEATS, 5), default=5,
                   help="timings of each output; their median counts (default: %(default)s)")
    args = p.parse_args(argv)
    try:  # every flag checked before the scratch folders are written
        for epoch in args.epochs:
            settings.check("epochs", epoch, EPOCHS, "5 500")
        settings.check("repeats", args.repeats, REPEATS, 5)
    except settings.ConfigError as e:
        p.error(str(e))
    rng = np.random.default_rng(0)
    print(f"{'epoch':>6} {'grid + GIF':>12} {'old GIF (all)':>14} {'curves':>9} {'GIF frames':>11}")
    for epoch in args.epochs:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            run_folder_at(folder, epoch, rng)
            pixels = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
            grid = seconds(lambda: pictures.save_epoch_grid(folder, epoch, pixels), args.repeats)
            old = seconds(lambda: old_gif(folder), max(1, args.repeats // 2))
            rows = rundir.read_rows(folder / "metrics.csv") if epoch > 1 else []
            curves = seconds(lambda: pictures.save_curves(
                folder / "curves.png", rundir.read_rows(folder / "metrics.csv")), args.repeats)
            frames = Image.open(folder / "samples.gif").n_frames
            print(f"{epoch:6d} {grid * 1e3:10.1f}ms {old * 1e3:12.1f}ms {curves * 1e3:7.1f}ms "
                  f"{frames:11d}   ({len(rows)} metric rows)")


if __name__ == "__main__":
    main()
