"""Pictures of a run: sample grids (PNG), an animated GIF of them, and training curves.

Everything here works on host arrays: the caller copies samples off the device first
(``backend.to_host``), so the transfer is visible at the call site. Images are written with
Pillow, which matplotlib itself depends on; curves with matplotlib's Agg backend (no screen),
and every command's matplotlib figures are written by ``save_figure``.
"""

import math
from pathlib import Path

import numpy as np
from PIL import Image

from minigan import files

# The GIF of a run's epoch grids shows at most this many of them, spread evenly from the first
# to the last, so that writing it costs the same at epoch 500 as at epoch 5.
MAX_GIF_FRAMES = 40


def image_grid(pixels, nrow=None, pad=2):
    """Tile uint8 images (N, H, W) into one uint8 picture, nrow images per row.

    Rows are separated by ``pad`` black pixels; nrow defaults to ceil(sqrt(N)).
    """
    n, h, w = pixels.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol_rows = math.ceil(n / nrow)
    grid = np.zeros((ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top:top + h, left:left + w] = pixels[i]
    return grid


def grid_picture(pixels, nrow=None, scale=2):
    """uint8 images (N, H, W) tiled by image_grid, as a Pillow image enlarged ``scale`` times."""
    grid = image_grid(pixels, nrow)
    return Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale),
                                        Image.NEAREST)


def save_grid(path, pixels, nrow=None, scale=2):
    """Write uint8 images (N, H, W) as one PNG grid, enlarged ``scale`` times for viewing."""
    with files.atomic_write(path) as f:
        grid_picture(pixels, nrow, scale).save(f, format="PNG")


def spread(items, most=MAX_GIF_FRAMES):
    """At most ``most`` of the items, evenly spaced, the first and the last always among them."""
    if len(items) <= most:
        return list(items)
    picks = np.linspace(0, len(items) - 1, most).round().astype(int)  # increasing, no repeats
    return [items[i] for i in picks]


def save_gif(path, frame_paths, ms_per_frame=400):
    """Animate PNG files (one per epoch) into a looping GIF; the last frame lingers. Long runs
    show MAX_GIF_FRAMES of their grids (``spread``): the cost does not grow with the run."""
    write_gif(path, [Image.open(p).convert("L") for p in spread(list(frame_paths))], ms_per_frame)


def save_grid_gif(path, frames, nrow=None, ms_per_frame=200):
    """Animate uint8 images (T, N, H, W) into a looping GIF whose frame t is the grid of the N
    images frames[t] (python -m minigan.sample --interpolate)."""
    write_gif(path, [grid_picture(images, nrow) for images in frames], ms_per_frame)


def write_gif(path, frames, ms_per_frame):
    """Pillow images as a looping GIF, written atomically; the last frame lingers."""
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * 4]
    with files.atomic_write(path) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:],
                       duration=durations, loop=0)


def save_epoch_grid(run_dir, epoch, pixels, nrow=8):
    """An epoch's fixed-noise grid (uint8 (64, 28, 28), nrow images a row; a conditional run's
    (100, 28, 28), 10 a row, a digit per row) as samples/epoch_NNN.png and samples_final.png,
    and samples.gif of the grids so far (at most MAX_GIF_FRAMES of them)."""
    folder = Path(run_dir) / "samples"
    folder.mkdir(exist_ok=True)
    save_grid(folder / f"epoch_{epoch:03d}.png", pixels, nrow=nrow)
    save_grid(Path(run_dir) / "samples_final.png", pixels, nrow=nrow)
    grids = sorted(folder.glob("epoch_*.png"), key=lambda p: int(p.stem.split("_")[1]))
    save_gif(Path(run_dir) / "samples.gif", grids)


def pyplot():
    """matplotlib's pyplot on the Agg backend, which draws into files: no screen needed."""
    import matplotlib  # here, not at the top: only the commands that draw a plot load it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi=100):
    """Write a matplotlib figure to path as a PNG, atomically (minigan/files.py), and close it."""
    with files.atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, format="png")
    pyplot().close(fig)


def save_curves(path, rows):
    """Plot losses and D's outputs against the step from metric rows (dicts) into one PNG."""
    plt = pyplot()
    step = [r["step"] for r in rows]
    fig, (ax_loss, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(step, [r["d_loss"] for r in rows], label="D loss")
    ax_loss.plot(step, [r["g_loss"] for r in rows], label="G loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_title("losses")
    ax_loss.legend()
    ax_d.plot(step, [r["d_real"] for r in rows], label="mean D(x)")
    ax_d.plot(step, [r["d_fake"] for r in rows], label="mean D(G(z))")
    ax_d.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax_d.set_ylim(0, 1)
    ax_d.set_xlabel("step")
    ax_d.set_title("discriminator outputs")
    ax_d.legend()
    fig.tight_layout()
    save_figure(fig, path)


def save_quality_curve(path, rows):
    """Plot minigan.evaluate's scores against the epoch from rows of eval.csv (dicts) into one
    PNG: the Fréchet distance with its floor, the class entropy with log 10, precision and
    recall."""
    plt = pyplot()
    epoch = [r["epoch"] for r in rows]
    fig, (ax_fd, ax_h, ax_pr) = plt.subplots(1, 3, figsize=(14, 4))
    ax_fd.plot(epoch, [r["fd"] for r in rows], "o-", label="samples")
    ax_fd.plot(epoch, [r["fd_floor"] for r in rows], "--", color="gray", label="floor (MNIST test)")
    ax_fd.set_yscale("log")
    ax_fd.set_title("Fréchet distance (lower is better)")
    ax_h.plot(epoch, [r["class_entropy"] for r in rows], "o-", label="class entropy")
    ax_h.axhline(math.log(10), color="gray", ls="--", label="uniform: log 10")
    ax_h.set_ylim(0, 2.4)
    ax_h.set_title("class entropy (nats)")
    ax_pr.plot(epoch, [r["precision"] for r in rows], "o-", label="precision")
    ax_pr.plot(epoch, [r["recall"] for r in rows], "o-", label="recall")
    ax_pr.set_ylim(0, 1)
    ax_pr.set_title("precision and recall (k = 3)")
    for ax in (ax_fd, ax_h, ax_pr):
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
