"""Which digits does a trained run draw? Classify its samples with a simple linear classifier.

    python tools/sample_classes.py runs/<time> -n 10000 --grid per_class.png

A ridge-regression classifier on raw pixels (fitted here in a second, about 86% accurate on the
MNIST test set) labels N generated images; the script prints how many fall in each class, next
to the test set's counts, and can save a grid with ten samples of each class, one class a row.
A rough check, not a quality score: it tells whether every class is drawn and how often.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minigan import backend  # noqa: E402
from minigan.data import load_mnist, to_model_input  # noqa: E402
from minigan.pictures import save_grid  # noqa: E402
from minigan.sample import generate, load_generator  # noqa: E402


def features(images):
    x = to_model_input(images, "float64")  # (N, 784) in [-1, 1]
    return np.hstack([x, np.ones((len(x), 1))])  # a bias column


def fit_classifier(ridge=10.0):
    """W (785, 10) minimising |A W - onehot(y)|^2 + ridge |W|^2 on the training set."""
    images, labels = load_mnist("train")
    A = features(images)
    return np.linalg.solve(A.T @ A + ridge * np.eye(A.shape[1]), A.T @ np.eye(10)[labels])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", help="save ten samples of each class, one class a row, as a PNG")
    args = p.parse_args(argv)
    backend.use("cpu")
    W = fit_classifier()
    test_images, test_labels = load_mnist("test")
    accuracy = (np.argmax(features(test_images) @ W, axis=1) == test_labels).mean()
    G, cfg = load_generator(args.run_dir)
    samples = generate(G, args.n, cfg["latent_dim"], args.seed, cfg["dtype"])
    predicted = np.argmax(features(samples) @ W, axis=1)
    print(f"linear classifier: {accuracy:.1%} accurate on the MNIST test set")
    print(f"{'digit':>5} {'samples':>8} {'share':>6} {'test set share':>15}")
    for digit in range(10):
        share = (predicted == digit).mean()
        print(f"{digit:5d} {(predicted == digit).sum():8d} {share:6.1%} "
              f"{(test_labels == digit).mean():15.1%}")
    if args.grid:
        rows = [samples[predicted == digit][:10] for digit in range(10)]
        rows = [np.concatenate([r, np.zeros((10 - len(r), 28, 28), np.uint8)]) for r in rows]
        save_grid(args.grid, np.concatenate(rows), nrow=10)
        print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
