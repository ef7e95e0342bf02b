"""Does a GAN trained on a few training images redraw them? The check behind docs/neighbours'
small-data section.

    python benchmarks/own_share.py SAMPLES.npy:N [SAMPLES.npy:N ...] [--out FILE.json]

SAMPLES.npy holds a GAN's samples (python -m minigan.sample RUN -n 1000 --out SAMPLES.npy, uint8
images), N the number of MNIST training images it trained on: the first N (train_mnist.py
--limit N, or --images with the first N repeated). For each file: the share of samples whose
nearest training image, among all 60,000 (minigan.neighbours.nearest, in pixels), is one of those
N; and, as the yardstick of a G that draws new images, the same share for MNIST test images,
digit for digit: for each sample, a random test image of the digit the shipped classifier gives
the sample (seed 0). The copy share of minigan.evaluate --neighbours compares distances with the
test images' 1st percentile; this share asks *which* training image is nearest, so it catches a
G that redraws its own images roughly, too far from them to count as copies.
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from minigan import classifier, data, evaluate, files, neighbours  # noqa: E402
from minigan.rules import Parser, folder_problem, whole_number  # noqa: E402


def own_share(samples, n, train, test, test_labels, net, rng):
    digit = classifier.features_and_logits(net, data.to_model_input(samples))[1].argmax(axis=1)
    twin = np.array([rng.choice(np.flatnonzero(test_labels == d)) for d in digit])
    share = {}
    for who, images in (("samples", samples), ("test images, digit for digit", test[twin])):
        nearest = neighbours.nearest(images.reshape(len(images), -1), train)[1][:, 0]
        share[who] = float(np.mean(nearest < n))  # the first n training images: G's own
    return {"trained_on": n, "samples": len(samples),
            "digit_counts": np.bincount(digit, minlength=10).tolist(), "nearest_is_own": share}


def earlier_output(path):
    """Whether the file at path is an earlier --out of this script, which may be replaced: a
    JSON object of {SAMPLES.npy: {"trained_on": N, ...}}. Anything else is not."""
    out = files.json_object(path)
    return out is not None and all(isinstance(v, dict) and "trained_on" in v
                                   for v in out.values())


def out_problem(value):
    """What is wrong with --out (a folder, a missing folder, a file of another kind), or None."""
    try:
        if Path(value).is_dir():
            return f"--out {value} is a folder; name a .json file in it"
        if problem := folder_problem("--out", value):  # a missing folder, or a file for one
            return problem
        if Path(value).is_file() and not earlier_output(value):
            return (f"--out {value}: a file is there, and it is not an earlier output of this "
                    "script; --out replaces only those. Name a new file, or move that one away "
                    "first.")
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        return f"--out {value!r}: not a usable file name ({e})"
    return None


def read_samples(pair):
    """(path, N, the samples) of SAMPLES.npy:N, or the message that says what is wrong."""
    path, _, text = pair.rpartition(":")
    n = whole_number(text)  # None for "x", "-1", "²"
    if not path or n is None or not 1 <= n <= 60_000:
        return f"{pair!r}: give SAMPLES.npy:N, an existing .npy file and N from 1 to 60000"
    try:
        return path, n, evaluate.check_pixels(files.read_npy(path), path)
    except files.UnreadableArray as e:  # another kind of file, damaged, truncated, pickled
        return (f"{pair!r}: {path} is not a readable .npy file; the file holds {e}. Give a .npy "
                "of uint8 images (N, 28, 28), as python -m minigan.sample writes")
    except evaluate.EvalError as e:  # the wrong dtype or shape
        return f"{pair!r}: {e}"
    except OSError as e:  # no such file, a folder
        return f"{pair!r}: cannot read {path} ({e.strerror or e}); give an existing .npy file"


def main(argv=None):
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("pairs", nargs="+", metavar="SAMPLES.npy:N")
    p.add_argument("--out", default="", help="also write the numbers to this JSON file; a file "
                   "already there is replaced only if it is an earlier output of this script")
    args = p.parse_args(argv)
    if args.out and (problem := out_problem(args.out)):  # before minutes of searching, not after
        print(f"own_share.py: error: {problem}", file=sys.stderr)
        sys.exit(2)
    jobs = []
    for pair in args.pairs:  # every file read before the first search
        job = read_samples(pair)
        if isinstance(job, str):
            print(f"own_share.py: error: {job}", file=sys.stderr)
            sys.exit(2)
        jobs.append(job)
    train = data.load_mnist("train")[0].reshape(60_000, -1)
    test, test_labels = data.load_mnist("test")
    net, rng, out = classifier.load_classifier(), np.random.default_rng(0), {}
    for path, n, samples in jobs:
        out[path] = own_share(samples, n, train, test, test_labels, net, rng)
        print(path, json.dumps(out[path]))
    if args.out:
        files.write_text(args.out, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
