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

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from minigan import classifier, data, neighbours  # noqa: E402


def own_share(samples, n, train, test, test_labels, net, rng):
    digit = classifier.features_and_logits(net, data.to_model_input(samples))[1].argmax(axis=1)
    twin = np.array([rng.choice(np.flatnonzero(test_labels == d)) for d in digit])
    share = {}
    for who, images in (("samples", samples), ("test images, digit for digit", test[twin])):
        nearest = neighbours.nearest(images.reshape(len(images), -1), train)[1][:, 0]
        share[who] = float(np.mean(nearest < n))  # the first n training images: G's own
    return {"trained_on": n, "samples": len(samples),
            "digit_counts": np.bincount(digit, minlength=10).tolist(), "nearest_is_own": share}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pairs", nargs="+", metavar="SAMPLES.npy:N")
    p.add_argument("--out", default="", help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    jobs = []
    for pair in args.pairs:
        path, _, n = pair.rpartition(":")
        if not path or not n.isdigit() or not 1 <= int(n) <= 60_000 or not Path(path).is_file():
            print(f"own_share.py: {pair!r}: give SAMPLES.npy:N, an existing .npy file and N from "
                  "1 to 60000", file=sys.stderr)
            sys.exit(2)
        jobs.append((path, int(n)))
    train = data.load_mnist("train")[0].reshape(60_000, -1)
    test, test_labels = data.load_mnist("test")
    net, rng, out = classifier.load_classifier(), np.random.default_rng(0), {}
    for path, n in jobs:
        out[path] = own_share(np.load(path), n, train, test, test_labels, net, rng)
        print(path, json.dumps(out[path]))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
