"""Draw new images from a trained run.

    python -m minigan.sample RUN_DIR -n 10000 --out samples.npy   # uint8 pixels (N, 28, 28)
    python -m minigan.sample RUN_DIR -n 64 --out grid.png         # one PNG grid

A conditional run (train_mnist.py --conditional) draws the digit you ask for:

    python -m minigan.sample RUN_DIR --digit 7 -n 64 --out sevens.png
    python -m minigan.sample RUN_DIR --out digits.png             # one row per digit, 0 to 9
    python -m minigan.sample RUN_DIR --interpolate 3 8 --out morph.gif
    python -m minigan.sample RUN_DIR --interpolate-z --digit 3 --out line.png
    python -m minigan.sample RUN_DIR --walk --out walk.gif       # the noise on a great circle

Without --digit a conditional run draws n/10 images of each digit, 0s first (-n a multiple of
10, default 100); the k-th image of every digit shares one z, so in the grid each row is a digit
and each column one noise vector, its "style". ``--interpolate A B`` keeps z fixed and moves
the label from digit A to digit B through the one-hot mixtures (1 - t) e_A + t e_B, t from 0
to 1 in --frames steps; ``--interpolate-z`` keeps the label (``--digit D``; none on an
unconditional run) and moves z in a straight line (1 - t) z_0 + t z_1 between two noise vectors.
``--walk`` moves z on the arc of a great circle between the same two noise vectors instead
(spherical interpolation, slerp): Gaussian noise in d dimensions lies near the sphere of radius
sqrt(d), where the line's middle does not (its norm is about sqrt(d / 2)). On a conditional run a
walk keeps --digit D, or without it draws one row per digit 0-9, every row on one walk (so each
column is one z, as in the digit-per-row grid).
An interpolation or walk draws -n rows (default 10): a .png holds one row of --frames images per
row, a .gif animates the frames, each frame a grid of the -n rows' images.
Why and how: lessons/16_conditional_gans.md.

Loads RUN_DIR/config.json and the generator from RUN_DIR/checkpoint.npz (the average of G's
weights for a run trained with --ema, as its epoch grids); ``--seed`` makes the noise, and so
the images, repeatable. --out names a new file: a file already there is never replaced (an .npy
of the same uint8 images may be a training set, a picture a run's own), so drawing again to the
same name takes deleting the old file first.
"""

import sys
from pathlib import Path

import numpy as np

from minigan import (backend, checkpoint, conditional, data, files, models, pictures, rundir,
                     settings)
from minigan.gan import sample_noise
from minigan.rules import Parser, folder_problem, integer, path_arg, suffix_problem, typed

MAX_N = {".npy": 1_000_000, ".png": 10_000}  # a million images is 784 MB of pixels
MAX_ROWS = 100  # an interpolation: at most this many rows...
MAX_FRAMES = 100  # ...of at most this many frames: 10,000 images, as a .png grid
DEFAULT_N = {"plain": 64, "digits": 10 * conditional.NUM_CLASSES, "interpolation": 10}
DEFAULT_FRAMES = 10
DIGIT = integer(0, conditional.NUM_CLASSES - 1)

# The settings that rebuild G; the others (data, outputs) do not matter for sampling.
GENERATOR_SETTINGS = ("model", "latent_dim", "g_hidden", "slope", "dtype", "ema", "conditional")


def load_generator(run_dir):
    """Build the run's generator from config.json and load its checkpointed weights.
    Raises CheckpointError when either file is missing, damaged or they do not match."""
    run_dir = Path(run_dir)
    try:
        cfg = settings.saved_config(run_dir)
        settings.validate(cfg, flags=(), config_file=run_dir / "config.json",
                          only=GENERATOR_SETTINGS)
    except settings.ConfigError as e:
        raise checkpoint.CheckpointError(str(e)) from None
    arrays, _ = checkpoint.load(run_dir / "checkpoint.npz")
    G = models.build_generator(cfg, backend.default_rng(0))  # weights overwritten below
    # --ema: the run's samples come from the average of G's weights, saved as G_ema
    # (minigan/tricks.py); its config.json says so
    checkpoint.restore_network("G_ema" if cfg.ema else "G", G, arrays, run_dir / "checkpoint.npz")
    G.eval()  # samples come from G in evaluation mode, as train_mnist.py's epoch grids do
    return G, cfg


def draw(G, z, y=None, chunk=1000):
    """G's images for noise z (N, latent_dim) and, for a conditional G, label vectors y (N, 10)
    (one-hot rows, or mixtures of them): uint8 pixels (N, 28, 28) on the host."""
    out = []
    for start in range(0, len(z), chunk):
        inputs = [z[start:start + chunk]] + ([] if y is None else [y[start:start + chunk]])
        out.append(data.to_pixels(backend.to_host(G.forward(*inputs))))  # device -> host
    return np.concatenate(out)


def labels_as_vectors(labels, dtype):
    """Host integer labels (N,) as one-hot rows (N, 10) on the device (minigan/conditional.py)."""
    return conditional.one_hot(backend.to_device(np.asarray(labels)), dtype=dtype)


def generate(G, n, latent_dim, seed=0, dtype="float32", chunk=1000, labels=None):
    """n images as uint8 pixels (n, 28, 28) on the host, G run chunk by chunk; for a
    conditional G, labels (n,) says which digit each image is asked to be.

    G should be in evaluation mode (load_generator sets it): then BatchNorm uses its running
    statistics, each image depends on its own z only, and the chunk size changes nothing.
    All n noise vectors come from one draw (n x latent_dim numbers, small beside the images):
    NumPy's generator gives the same numbers drawn at once or chunk by chunk, CuPy's does not
    (each position of a draw has its own stream), and one draw keeps the images alike on both."""
    z = sample_noise(backend.default_rng(seed), n, latent_dim, dtype)
    y = None if labels is None else labels_as_vectors(labels, dtype)
    return draw(G, z, y, chunk)


def digit_rows(G, n, latent_dim, seed=0, dtype="float32"):
    """A conditional G's n / 10 images of each digit, 0s first (n, 28, 28), n a multiple of 10:
    the grid of conditional.digit_rows with n / 10 columns, one z per column (with n = 100,
    train_mnist.py's epoch grids)."""
    z, y, _ = conditional.digit_rows(backend.default_rng(seed), latent_dim, dtype,
                                     per_digit=n // conditional.NUM_CLASSES)
    return draw(G, z, y)  # 0s, then 1s, ...


def path_weights(frames, dtype):
    """t = 0, 1/(frames - 1), ..., 1 on the device, (frames, 1): the steps of an interpolation."""
    return backend.to_device(np.linspace(0, 1, frames), dtype=dtype)[:, None]


def label_interpolation(G, rows, frames, latent_dim, start, end, seed=0, dtype="float32"):
    """The label moves from digit start to digit end, the noise stays: image (r, f) is
    G(z_r, (1 - t_f) e_start + t_f e_end). Returns uint8 (rows, frames, 28, 28)."""
    z = sample_noise(backend.default_rng(seed), rows, latent_dim, dtype)  # (rows, latent)
    t = path_weights(frames, dtype)  # (frames, 1)
    e_start, e_end = labels_as_vectors([start], dtype), labels_as_vectors([end], dtype)  # (1, 10)
    y = (1 - t) * e_start + t * e_end  # (frames, 10): one-hot at both ends, mixtures between
    row_of = backend.to_device(np.arange(rows * frames) // frames)  # image i: row i // frames
    pixels = draw(G, z[row_of], backend.xp.concatenate([y] * rows))  # (rows * frames, ...)
    return pixels.reshape(rows, frames, 28, 28)


def slerp(z0, z1, t):
    """Spherical interpolation (Shoemake 1985; for GAN noise, White 2016): the point a fraction
    t of the way from z0 to z1 along the arc through them. z0, z1 (N, D) on the device, t host
    (T,) in [0, 1]; returns (N, T, D) on the device.

        Omega = arccos(z0 . z1 / (|z0| |z1|))     the angle between the endpoints
        slerp(t) = sin((1 - t) Omega) / sin(Omega) z0 + sin(t Omega) / sin(Omega) z1

    For |z0| = |z1| every point keeps that norm and lies at the angle t Omega from z0. The angles
    are N numbers: their trigonometry runs on the host. Parallel or opposite endpoints (sin
    Omega = 0) have no single arc between them: the straight line is used.
    """
    cos = (z0 * z1).sum(axis=1) / backend.xp.sqrt((z0 * z0).sum(axis=1) * (z1 * z1).sum(axis=1))
    omega = np.arccos(np.clip(backend.to_host(cos).astype(np.float64), -1, 1))[:, None]  # (N, 1)
    t = np.asarray(t, dtype=np.float64)[None, :]  # (1, T)
    sin = np.sin(omega)
    line = sin < 1e-7  # (N, 1): rows whose endpoints are parallel or opposite
    safe = np.where(line, 1.0, sin)
    a = np.where(line, 1 - t, np.sin((1 - t) * omega) / safe)  # (N, T): the weight of z0...
    b = np.where(line, t, np.sin(t * omega) / safe)  # ...and of z1
    a, b = backend.to_device(a, z0.dtype), backend.to_device(b, z0.dtype)  # host -> device
    return a[:, :, None] * z0[:, None, :] + b[:, :, None] * z1[:, None, :]


def noise_walk(G, rows, frames, latent_dim, digits=None, same_noise=False, seed=0,
               dtype="float32"):
    """The noise moves on the arc between two noise vectors (slerp), the label stays: image
    (r, f) is G(slerp(z0_r, z1_r, t_f)[, e_digits[r]]); digits None for an unconditional G. The
    endpoints are noise_interpolation's for the same seed; with same_noise every row walks row
    0's arc. Returns uint8 (rows, frames, 28, 28)."""
    rng = backend.default_rng(seed)
    pairs = 1 if same_noise else rows
    z0 = sample_noise(rng, pairs, latent_dim, dtype)  # (pairs, latent)
    z1 = sample_noise(rng, pairs, latent_dim, dtype)
    z = slerp(z0, z1, np.linspace(0, 1, frames))  # (pairs, frames, latent)
    if same_noise:
        z = backend.xp.concatenate([z] * rows)  # (rows, frames, latent)
    y = None if digits is None else labels_as_vectors(np.repeat(digits, frames), dtype)
    return draw(G, z.reshape(rows * frames, latent_dim), y).reshape(rows, frames, 28, 28)


def noise_interpolation(G, rows, frames, latent_dim, digit=None, seed=0, dtype="float32"):
    """The noise moves on a straight line, the label stays: image (r, f) is
    G((1 - t_f) z0_r + t_f z1_r[, e_digit]); digit None for an unconditional G.
    Returns uint8 (rows, frames, 28, 28)."""
    rng = backend.default_rng(seed)
    z0 = sample_noise(rng, rows, latent_dim, dtype)[:, None, :]  # (rows, 1, latent)
    z1 = sample_noise(rng, rows, latent_dim, dtype)[:, None, :]
    t = path_weights(frames, dtype)[None]  # (1, frames, 1)
    z = ((1 - t) * z0 + t * z1).reshape(rows * frames, latent_dim)  # row-major: row, then frame
    y = None if digit is None else labels_as_vectors([digit] * (rows * frames), dtype)
    return draw(G, z, y).reshape(rows, frames, 28, 28)


# ---- the command -------------------------------------------------------------------------------


def check_out(out, n):
    """Why --out and -n cannot be used together, or None."""
    wrong = suffix_problem(out, MAX_N)
    if wrong:
        return f"--out {out}: the images are written as a .npy array or a .png grid; {wrong}"
    if not 1 <= n <= MAX_N[out.suffix]:
        return f"-n {n}: use a number from 1 to {MAX_N[out.suffix]:,} for a {out.suffix} file"
    return check_folder(out)


def check_folder(out):
    """Why --out cannot be written (a folder, a missing folder, a file already there), or
    None. A file already there is never replaced: an .npy of the same uint8 images as this
    command's may be a training set (train_mnist.py --images), and a picture a run's own
    (rundir.run_file) or a user's; nothing in a file says that minigan.sample wrote it."""
    if out.is_dir():
        return f"--out {out} is a folder; name a file in it, like {out / ('samples' + out.suffix)}"
    if out.exists() or out.is_symlink():
        run = rundir.run_file(out)
        if run:
            return (f"--out {out}: that is a file of the train_mnist.py run in {run}, which "
                    "only the run writes; pass another --out")
        return (f"--out {out}: a file is already there, and minigan.sample never replaces one "
                "(it cannot tell an earlier output of its own from a file of yours, such as a "
                f"training set); pass another --out, or delete {out} first to draw it again")
    return folder_problem("out", out)  # a missing folder, or a file where one should be


def check_flags(args, out):
    """What is wrong with the flags alone, before the run is read, or None."""
    digits = [("digit", args.digit)] + [("interpolate", v) for v in args.interpolate or ()]
    for name, value in digits:
        if value is not None:
            settings.check(name, value, DIGIT)  # raises ConfigError
    settings.check("seed", args.seed, settings.SEED)
    chosen = [name for name, given in (("--interpolate", args.interpolate is not None),
                                       ("--interpolate-z", args.interpolate_z),
                                       ("--walk", args.walk)) if given]
    interpolating = bool(chosen)
    if len(chosen) > 1:
        return (f"{' and '.join(chosen)}: choose one; --interpolate A B moves the label, "
                "--interpolate-z the noise on a line, --walk the noise on an arc")
    if args.interpolate is not None and args.digit is not None:
        return (f"--digit {args.digit} with --interpolate: the two digits of --interpolate "
                "A B are the labels drawn; drop --digit")
    if args.interpolate is not None and args.interpolate[0] == args.interpolate[1]:
        return (f"--interpolate {args.interpolate[0]} {args.interpolate[1]}: the label would not "
                "move; give two different digits, like --interpolate 3 8")
    if not interpolating:
        if args.frames is not None:
            return (f"--frames {args.frames}: frames belong to an interpolation; add "
                    "--interpolate A B, --interpolate-z or --walk, or drop --frames")
        return check_out(out, DEFAULT_N["plain"] if args.n is None else args.n)
    wrong = suffix_problem(out, (".png", ".gif"))
    if wrong:
        return (f"--out {out}: an interpolation or walk is written as a .png (one row of frames "
                f"per row) or a .gif (an animation); {wrong}")
    if args.frames is not None and not 2 <= args.frames <= MAX_FRAMES:
        return f"--frames {args.frames}: use a number from 2 to {MAX_FRAMES}"
    if args.n is not None and not 1 <= args.n <= MAX_ROWS:
        return (f"-n {args.n}: an interpolation or walk draws -n rows; use a number from 1 to "
                f"{MAX_ROWS}")
    return check_folder(out)


def check_run(args, cfg, run_dir):
    """What is wrong with the flags for this run (conditional or not), or None."""
    if not cfg.conditional:
        for given, what in ((args.digit is not None, f"--digit {args.digit}"),
                            (args.interpolate is not None, "--interpolate")):
            if given:
                return (f"{what}: {run_dir} was trained without --conditional, so its G cannot "
                        "be asked for a digit; drop the flag, or sample a run trained with "
                        "train_mnist.py --conditional concat (or projection, acgan)")
        return None
    if args.interpolate_z and args.digit is None:
        return (f"--interpolate-z: {run_dir} is a conditional run ({cfg.conditional}); say "
                "which digit to draw while the noise moves, like --interpolate-z --digit 3")
    if args.walk and args.digit is None and args.n not in (None, conditional.NUM_CLASSES):
        return (f"-n {args.n}: without --digit, a walk on a conditional run draws one row per "
                "digit 0-9, all on one walk; drop -n, or walk one digit with --walk --digit D "
                f"-n {args.n}")
    if args.digit is None and args.interpolate is None and not args.interpolate_z and (
            args.n is not None and args.n % conditional.NUM_CLASSES):
        return (f"-n {args.n}: without --digit, a conditional run draws one row per digit 0-9; "
                "use a multiple of 10, like -n 100, or ask for one digit with --digit D")
    return None


def write_images(out, pixels, nrow=None):
    """The images as a .npy array or a PNG grid, written atomically (minigan/files.py)."""
    if out.suffix == ".npy":
        with files.atomic_write(out) as f:
            np.save(f, pixels)
    else:
        pictures.save_grid(out, pixels, nrow)


def make_images(args, G, cfg, out):
    """Draw what the flags ask for and write it to out; returns the line to print."""
    shape = dict(latent_dim=cfg.latent_dim, seed=args.seed, dtype=cfg.dtype)
    frames = args.frames or DEFAULT_FRAMES
    if args.interpolate is not None or args.interpolate_z or args.walk:
        n = DEFAULT_N["interpolation"] if args.n is None else args.n
        if args.walk and cfg.conditional and args.digit is None:  # a row per digit, one walk
            n = conditional.NUM_CLASSES
            pixels = noise_walk(G, n, frames, digits=range(n), same_noise=True, **shape)
            what = "the noise on one arc, a row per digit 0-9"
        elif args.walk:
            digits = None if args.digit is None else [args.digit] * n
            pixels = noise_walk(G, n, frames, digits=digits, **shape)
            what = "the noise on an arc" + ("" if args.digit is None else f", digit {args.digit}")
        elif args.interpolate is not None:
            pixels = label_interpolation(G, n, frames, start=args.interpolate[0],
                                         end=args.interpolate[1], **shape)
            what = f"the label from {args.interpolate[0]} to {args.interpolate[1]}"
        else:
            pixels = noise_interpolation(G, n, frames, digit=args.digit, **shape)
            what = "the noise" + ("" if args.digit is None else f", digit {args.digit}")
        if out.suffix == ".gif":  # frame f: the grid of every row's f-th image
            pictures.save_grid_gif(out, pixels.transpose(1, 0, 2, 3))
        else:
            write_images(out, pixels.reshape(-1, 28, 28), nrow=frames)
        return f"wrote {n} rows of {frames} frames ({what}) to {out}"
    if cfg.conditional and args.digit is None:
        n = DEFAULT_N["digits"] if args.n is None else args.n
        write_images(out, digit_rows(G, n, **shape), nrow=n // conditional.NUM_CLASSES)
        return (f"wrote {n} images to {out}: {n // conditional.NUM_CLASSES} of each digit, 0s "
                "first (in a grid, one row per digit; each column shares one z)")
    n = DEFAULT_N["plain"] if args.n is None else args.n
    labels = None if args.digit is None else np.full(n, args.digit)
    write_images(out, generate(G, n, labels=labels, **shape))
    return f"wrote {n} images" + ("" if labels is None else f" of the digit {args.digit}") + \
        f" to {out}"


def main(argv=None):
    p = Parser(prog="python -m minigan.sample",
               description="Generate images from a trained minigan run.")
    p.add_argument("run_dir", help="a train_mnist.py run folder",
                   type=path_arg("run_dir", "give a run folder, like runs/<time>",
                                 positional=True))
    p.add_argument("-n", type=typed(int, "-n", integer(1, MAX_N[".npy"])), default=None,
                   help=f"number of images, 1 to {MAX_N['.npy']:,} (.png: {MAX_N['.png']:,}) "
                   f"(default: 64; a conditional run without --digit: 100, ten of each digit, "
                   f"and a multiple of 10); with an interpolation or walk, rows, 1 to {MAX_ROWS} "
                   "(default: 10)")
    p.add_argument("--out", required=True, type=path_arg("out", "name a .npy or .png file"),
                   help="a new output file (one already there is never replaced): .npy (uint8 "
                        "N x 28 x 28) or .png; an interpolation: .png (a row of frames per row) "
                        "or .gif (an animation)")
    p.add_argument("--seed", type=typed(int, "seed", settings.SEED, 0), default=0,
                   help="noise seed, 0 to 2**32 - 1 (default: 0)")
    p.add_argument("--digit", type=typed(int, "digit", DIGIT), default=None,
                   help="a conditional run: draw this digit only, 0 to 9 (default: one row per "
                        "digit); with --interpolate-z, the digit drawn while the noise moves")
    p.add_argument("--interpolate", type=typed(int, "interpolate", DIGIT), nargs=2, default=None,
                   metavar=("A", "B"),
                   help="a conditional run: the same noise, the label moving from digit A to "
                        "digit B through the one-hot mixtures (1 - t) e_A + t e_B")
    p.add_argument("--interpolate-z", action="store_true",
                   help="the same label (--digit D on a conditional run), the noise moving on a "
                        "straight line between two noise vectors")
    p.add_argument("--walk", action="store_true",
                   help="the same label (--digit D; on a conditional run without it, a row per "
                        "digit on one walk), the noise moving on the arc of a great circle "
                        "between two noise vectors (slerp)")
    p.add_argument("--frames", type=typed(int, "frames", integer(2, MAX_FRAMES), DEFAULT_FRAMES),
                   default=None,
                   help=f"with an interpolation or walk: the steps t from 0 to 1, 2 to "
                        f"{MAX_FRAMES} (default: {DEFAULT_FRAMES})")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        problem = check_flags(args, out)
    except settings.ConfigError as e:
        problem = str(e)
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        problem = f"--out {args.out!r}: not a usable file name ({e})"
    if problem:
        p.error(problem)
    try:
        backend.use(args.device)
        G, cfg = load_generator(args.run_dir)
        problem = check_run(args, cfg, args.run_dir)
        if problem:
            print(f"{p.prog}: error: {problem}", file=sys.stderr)
            return 2
        done = make_images(args, G, cfg, out)
    except (backend.DeviceError, checkpoint.CheckpointError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # to_pixels: NaN weights, a checkpoint edited by hand
        print(f"{p.prog}: error: {args.run_dir}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{p.prog}: error: cannot write {out} ({e.strerror or e}); nothing was written. "
              + files.write_fix(e, out, "choose another --out"), file=sys.stderr)
        return 2
    print(done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
