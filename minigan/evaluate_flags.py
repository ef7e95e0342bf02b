"""The flags of ``python -m minigan.evaluate``, parsed and checked before anything is read or
written: a bad value ends the command with one message that names the flag, and exit status 2
(minigan/evaluate.py runs the command; minigan/settings.py holds the rules every command shares).
"""

import os
import zipfile
from pathlib import Path

from minigan import classifier, conv_classifier, files, rundir, settings
from minigan.neighbours import FIGURE_K, FIGURE_ROWS
from minigan.rules import (  # -n's bound: --eval-samples' too
    MAX_SAMPLES, folder_problem, suffix_problem)
from minigan.scores import K

DEFAULT_SAMPLES = 10_000
PER_CLASS = 10  # --class-grid: images in each digit's row
NEIGHBOUR_SAMPLES = 1_000  # --neighbours-n: samples searched for their nearest training images...
MAX_NEIGHBOUR_SAMPLES = 10_000  # ...against as many test images, of which MNIST has 10,000
# --features: the classifier every score looks through (minigan/classifier.py, the MLP, or
# minigan/conv_classifier.py), with the epochs --train-classifier gives it by default
EPOCHS = {"mlp": 30, "conv": conv_classifier.EPOCHS}
# The flags of scoring that --train-classifier cannot take, and what each does instead
SCORING_ONLY = {"n": "draws samples from a run's generator to score",
                "json": "prints the scores",
                "classifier": "names the weights to score with (--train-classifier writes new "
                              "ones, to --out)",
                "class_grid": "looks at the samples of a run or .npy",
                "neighbours": "looks at the samples of a run or .npy",
                "neighbours_n": "belongs to the memorisation check of a run or .npy",
                "neighbours_grid": "belongs to the memorisation check of a run or .npy"}


def parse_args(argv):
    p = settings.Parser(
        prog="python -m minigan.evaluate",
        description="Score a run's samples against MNIST: Fréchet distance (with its floor), "
                    "class histogram, precision and recall (lessons/11_measuring_samples.md).")
    p.add_argument("input", nargs="?",
                   type=settings.path_arg("input", "name a train_mnist.py run folder, or a .npy "
                                          "of uint8 images (N, 28, 28)", positional=True),
                   help="a train_mnist.py run folder, or a .npy of uint8 images (N, 28, 28)")
    p.add_argument("-n", type=settings.typed(int, "-n", settings.integer(K + 2, MAX_SAMPLES),
                                             DEFAULT_SAMPLES), default=None,
                   help=f"samples to draw from a run's generator (default: {DEFAULT_SAMPLES})")
    p.add_argument("--seed", type=settings.typed(int, "seed", settings.SEED, 0), default=0,
                   help="seed of the noise and of the real subsets (default: %(default)s)")
    p.add_argument("--out", default=None, type=settings.path_arg("out", "name a file"),
                   help="where to write: the scores' .json (default: eval.json next to the "
                        "input); with --train-classifier, the weights' .npz (default: "
                        "runs/mnist_classifier.npz). A file already there, named or the "
                        "default, is replaced only if it is an earlier output of the same kind "
                        "(scores, or weights of the --features classifier), never another file "
                        "such as a run's config.json or checkpoint.npz")
    p.add_argument("--json", action="store_true",
                   help="print the scores as one JSON object on the last line")
    p.add_argument("--class-grid", default=None, metavar="FILE.png",
                   type=settings.path_arg("class_grid", "name a .png file"),
                   help=f"also draw {PER_CLASS} samples of each digit as the classifier labels "
                        "them, one row per digit 0-9, into this PNG (never a run's own picture, "
                        "such as its samples_final.png)")
    p.add_argument("--neighbours", action="store_true",
                   help="also check whether G copies its training set: each sample's nearest "
                        "training images, and its distance to them against a test image's "
                        "(minigan/neighbours.py; half a minute for 1,000 samples on 2 CPU cores)")
    p.add_argument("--neighbours-n", default=None, metavar="M", type=settings.typed(
                       int, "neighbours_n", settings.integer(1, MAX_NEIGHBOUR_SAMPLES)),
                   help=f"with --neighbours: samples searched, and as many test images, 1 to "
                        f"{MAX_NEIGHBOUR_SAMPLES:,} (default: {NEIGHBOUR_SAMPLES:,}, or all "
                        "images of a smaller .npy)")
    p.add_argument("--neighbours-grid", default=None, metavar="FILE.png",
                   type=settings.path_arg("neighbours_grid", "name a .png file"),
                   help=f"with --neighbours: where the picture goes, {FIGURE_ROWS} rows of a "
                        f"sample and its {FIGURE_K} nearest training images in pixels, then in "
                        "features (default: neighbours.png next to the input; never a run's own "
                        "picture)")
    p.add_argument("--features", choices=list(EPOCHS), default="mlp",
                   help="the feature space of every score: mlp, the MLP classifier's 256 "
                        "features (minigan/classifier.py), or conv, the convolutional "
                        "classifier's 128 (minigan/conv_classifier.py); the scores of conv go "
                        "to eval_conv.json (default: %(default)s)")
    p.add_argument("--classifier", default=None,
                   type=settings.path_arg("classifier", "name an .npz file of weights"),
                   help="classifier weights to score with, of the --features kind (default: "
                        "the shipped, checksummed minigan/weights/mnist_classifier.npz, or "
                        "mnist_conv_classifier.npz)")
    p.add_argument("--data-dir", default=None, type=settings.path_arg("data_dir"),
                   help="where the MNIST files are")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--train-classifier", action="store_true",
                   help="train the --features classifier instead (a few CPU minutes)")
    p.add_argument("--epochs", type=settings.typed(int, "epochs", settings.integer(1)),
                   default=None,
                   help=f"with --train-classifier: epochs (default: {EPOCHS['mlp']} for mlp, "
                        f"{EPOCHS['conv']} for conv)")
    args = p.parse_args(argv)
    if args.train_classifier:
        if args.input is not None:
            p.error("--train-classifier takes no input; drop the run folder or .npy")
        for name, does in SCORING_ONLY.items():
            value = getattr(args, name)
            if value is not None and value is not False:  # given (-n 0 too)
                shown = settings.flag("-n" if name == "n" else name) + (
                    "" if value is True else f" {value}")
                p.error(f"{shown}: {does}; it does not go with --train-classifier: drop it")
        if args.epochs is None:
            args.epochs = EPOCHS[args.features]
        rules = [("epochs", args.epochs, settings.integer(1))]
        wrong = args.out is not None and suffix_problem(args.out, (".npz",))
        if wrong:
            p.error(f"--out {args.out}: the classifier's weights are written as .npz; {wrong}")
    else:
        if args.input is None:
            p.error("give a run folder or a .npy of samples (or --train-classifier)")
        if args.epochs is not None:
            p.error(f"--epochs {args.epochs}: the epochs of --train-classifier; scoring trains "
                    "nothing: drop --epochs, or add --train-classifier")
        if args.n is None:
            args.n = DEFAULT_SAMPLES
        if not K + 1 < args.n <= MAX_SAMPLES:
            p.error(f"-n {args.n}: use a number from {K + 2} to {MAX_SAMPLES:,}")
        rules = []
        wrong = args.out is not None and suffix_problem(args.out, (".json",))
        if wrong:
            p.error(f"--out {args.out}: the scores are written as .json; {wrong}")
        for flag, value in (("--class-grid", args.class_grid),
                            ("--neighbours-grid", args.neighbours_grid)):
            wrong = value is not None and suffix_problem(value, (".png",))
            if wrong:
                p.error(f"{flag} {value}: the grid is written as a PNG; {wrong}")
        problem = neighbour_problem(args) or classifier_problem(args)
        if problem:
            p.error(problem)
    if args.data_dir is not None:
        rules.append(("data_dir", args.data_dir, settings.DATA_DIR))
    try:  # the rules every command shares (minigan/settings.py)
        for name, value, rule in [*rules, ("seed", args.seed, settings.SEED)]:
            settings.check(name, value, rule)
    except settings.ConfigError as e:
        p.error(str(e))
    for flag, value in (("--out", args.out), ("--class-grid", args.class_grid),
                        ("--neighbours-grid", args.neighbours_grid)):
        problem = value is not None and (file_problem(flag, value)
                                         or writable_problem(flag, value))
        if problem:
            p.error(problem)
    if args.train_classifier and args.out is None:  # before minutes of training, not after
        problem = writable_problem("--out", output_path(args))
        if problem:
            p.error(problem)
    problem = replace_problem(args) or grid_problem(args)
    if problem:
        p.error(problem)
    return args


def features_suffix(args):
    """What every default file name adds for --features: "" for mlp, "_conv" for conv."""
    return "" if args.features == "mlp" else f"_{args.features}"


def beside_input(args, name):
    """The file called name in the input's folder: the run folder itself, or the .npy's."""
    folder = Path(args.input) if Path(args.input).is_dir() else Path(args.input).parent
    return folder / name


def output_path(args):
    """Where the command writes: --out, or the default, eval.json (eval_conv.json) next to the
    input (in a run folder) or runs/mnist_classifier.npz (mnist_conv_classifier.npz)."""
    if args.out is not None:
        return Path(args.out)
    name = features_suffix(args)
    if args.train_classifier:
        return Path(f"runs/mnist{name}_classifier.npz")
    return beside_input(args, f"eval{name}.json")


def replace_problem(args):
    """Why the output, --out or the default, cannot be replaced, or None: a file is there that
    is not an earlier output of this kind (a run's config.json, a user's own file)."""
    try:
        if args.out is None and not args.train_classifier and not Path(args.input).exists():
            return None  # minigan/evaluate.py's load_input says the input is missing
        path = output_path(args)
        if args.out is None and path.is_dir():
            return (f"{path}, where the output goes without --out, is a folder; pass --out "
                    "with a file name")
        if not path.is_file() or earlier_output(args, path):
            return None
    except (OSError, ValueError):  # a name too long, a NUL byte: file_problem and load_input's
        return None
    kind = (f"{args.features} classifier's weights" if args.train_classifier else
            "scores of minigan.evaluate")
    if args.out is None:
        return (f"{path}, where the output goes without --out: a file is there, and it is not "
                f"an earlier output of this kind ({kind}), which alone may be replaced. Pass "
                "--out with a new file, or move that one away first.")
    return (f"--out {args.out}: a file is there, and it is not an earlier output of this kind "
            f"({kind}); --out replaces only those. Name a new file, or move that one away "
            "first.")


GRIDS = {"--class-grid": "per_class.png", "--neighbours-grid": "neighbours.png"}  # flag: a name


def grid_problem(args):
    """Why a grid cannot be written where --class-grid or --neighbours-grid asks, or None: a
    run's own file is there (rundir.run_file: its samples_final.png, curves.png, samples/...),
    which only the run writes."""
    for flag, value in (("--class-grid", args.class_grid),
                        ("--neighbours-grid", args.neighbours_grid)):
        run = value is not None and rundir.run_file(value)
        if run:
            return (f"{flag} {value}: that is a picture of the train_mnist.py run in {run}, "
                    f"which only the run writes; name another file, like {run / GRIDS[flag]}")
    return None


def classifier_problem(args):
    """What is wrong with --classifier (a folder, a missing file), or None."""
    if args.classifier is None or Path(args.classifier).is_file():
        return None
    conv = " --features conv" if args.features == "conv" else ""
    what = "is a folder" if Path(args.classifier).is_dir() else "does not exist"
    return (f"--classifier {args.classifier} {what}; name an .npz file of weights written by "
            f"python -m minigan.evaluate --train-classifier{conv}, or leave the flag out for "
            "the shipped ones")


def earlier_output(args, path):
    """Whether the file at path (--out, or the default) is an earlier output of the same kind,
    which may be replaced: scores (a JSON object with "fd" and "fd_floor") or, with
    --train-classifier, the weights of the --features classifier (an .npz of its arrays'
    names). Anything else, a run's config.json or checkpoint.npz among them, is not."""
    if not args.train_classifier:
        scores = files.json_object(path)
        return scores is not None and {"fd", "fd_floor"} <= scores.keys()
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.removesuffix(".npy") for name in archive.namelist()}
    except (OSError, ValueError, zipfile.BadZipFile):  # not of this kind
        return False
    make = {"mlp": classifier.make_classifier, "conv": conv_classifier.make_conv_classifier}
    return names == set(make[args.features]().params)


def neighbour_problem(args):
    """What is wrong with --neighbours-n and --neighbours-grid, or None."""
    if not args.neighbours:
        for value, flag in ((args.neighbours_n, "--neighbours-n"),
                            (args.neighbours_grid, "--neighbours-grid")):
            if value is not None:
                return f"{flag} {value}: belongs to the memorisation check; add --neighbours"
        return None
    m = args.neighbours_n
    if m is not None and not 1 <= m <= MAX_NEIGHBOUR_SAMPLES:
        return (f"--neighbours-n {m}: use a number from 1 to {MAX_NEIGHBOUR_SAMPLES:,} (the "
                "test images it is compared with)")
    return None  # more than the images scored: minigan/evaluate.py's main, once it has them


def writable_problem(flag, path):
    """Why path's folder (or the nearest one above it that exists, for a folder to be made)
    cannot take a new file, or None."""
    folder = Path(path).resolve().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        return (f"cannot write {path}: {folder} is not a writable folder; pass {flag} with a "
                "file in a folder you can write to")
    return None


def file_problem(flag, value):
    """What is wrong with a file name to write (a folder, a missing folder), or None."""
    try:
        if Path(value).is_dir():
            return f"{flag} {value} is a folder; name a file in it"
        return folder_problem(flag, value)  # a missing folder, or a file for one
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        return f"{flag} {value!r}: not a usable file name ({e})"
    return None
