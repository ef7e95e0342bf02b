"""Score what a generator learned: the command and Python API over minigan.scores' formulas.

    python -m minigan.evaluate RUN_DIR                 # 10,000 samples from the run's generator
    python -m minigan.evaluate samples.npy             # uint8 (N, 28, 28), as minigan.sample writes
    python -m minigan.evaluate RUN_DIR --json          # the scores as JSON on the last line
    python -m minigan.evaluate RUN_DIR --class-grid per_class.png   # ten samples of each digit
    python -m minigan.evaluate RUN_DIR --neighbours    # does G copy its training set?
    python -m minigan.evaluate RUN_DIR --features conv # every score in a second feature space
    python -m minigan.evaluate --train-classifier      # retrain the MNIST classifier (minutes)

Every score is measured through one MNIST classifier built from minigan's own layers
(minigan/classifier.py: an MLP, 784 -> 512 -> 256 -> 10, whose weights ship in
``minigan/weights/`` with their SHA-256); the formulas are in minigan/scores.py. ``--features
conv`` measures them all through a second, convolutional classifier instead
(minigan/conv_classifier.py, 128 features), since two feature spaces can rank generators
differently:

- ``fd``: the Fréchet distance between Gaussians fitted to the classifier's penultimate features
  (256 numbers per image) of the samples and of the 60,000 MNIST training images. ``fd_floor``
  is the same distance for as many real MNIST *test* images: what a perfect generator would
  score with that many samples (the distance is biased upward by a finite sample).
- ``class_entropy`` (nats, at most log 10 = 2.303), ``kl_uniform`` (= log 10 - entropy) and
  ``class_share``: the histogram of the classifier's labels for the samples.
- ``precision`` and ``recall``: k-nearest-neighbour manifolds in feature space (Kynkäänniemi et
  al. 2019, k = 3): the share of samples inside the real images' manifold, and the share of
  real images inside the samples' manifold.

A conditional run (train_mnist.py --conditional) is scored on n/10 samples asked for each digit,
and two more scores say whether it draws the digit asked for (lessons/16_conditional_gans.md):

- ``class_consistency``: the share of samples that the classifier labels as the digit they were
  asked for, overall and ``class_consistency_per_digit``; beside it, the same score for as
  many real test images of each digit (the classifier's accuracy on them), a reference that a
  G of easily classified samples can exceed.
- ``intra_class_fd``: the mean over digits d of the Fréchet distance between the samples asked
  for d and the training images of d (``intra_class_fd_per_digit``); its floor is the same
  distance for as many real test images of each digit (all of them for a digit with fewer).

``--neighbours`` adds the memorisation check of minigan/neighbours.py: the nearest training
images of the first samples (a picture, neighbours.png) and ``copy_share``, the share of samples
closer to a training image than 99% of MNIST test images are (about 1% unless G copies).

Derivations and how to read the numbers: lessons/11_measuring_samples.md. The Python API is
:func:`evaluate_pixels` (uint8 images) and :func:`evaluate_generator` (a generator network);
both share one :class:`Reference`, which is built once per process for each classifier and
MNIST folder, and cached. :func:`log_quality` is train_mnist.py --eval-every's row of eval.csv,
scored against the run's own MNIST (its --data-dir); :func:`scoring_problem` is the check that
such a run makes before it writes anything.
"""

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from minigan import (backend, checkpoint, classifier, conditional, conv_classifier, data, files,
                     neighbours, pictures, rundir)
from minigan.classifier import features_and_logits
from minigan.evaluate_flags import (DEFAULT_SAMPLES, NEIGHBOUR_SAMPLES, PER_CLASS, beside_input,
                                    features_suffix, output_path, parse_args)
from minigan.rules import suffix_problem
from minigan.scores import (CLASSES, K, class_consistency, class_scores, frechet_distance,
                            gaussian_stats, intra_class_fd, knn_radii, precision_recall)

MAX_PR = 10_000  # precision and recall use at most this many samples and real images: O(n^2)
# --features: each feature space's classifier, (load it, train it)
CLASSIFIERS = {"mlp": (classifier.load_classifier, classifier.train_classifier),
               "conv": (conv_classifier.load_conv_classifier,
                        conv_classifier.train_conv_classifier)}


class EvalError(RuntimeError):
    """Bad input to the evaluation (a file, an array); the message says what to do."""


# ---- what every score compares against ----------------------------------------------------


class Reference:
    """What every score compares against, computed once: the classifier, the features of the
    60,000 MNIST training images (their Gaussian, and one per digit), and of the 10,000 test
    images (the floor)."""

    def __init__(self, net=None, data_dir=None):
        self.net = net if net is not None else classifier.load_classifier()
        train_images, self.train_labels = data.load_mnist("train", data_dir=data_dir)
        test_images, self.test_labels = data.load_mnist("test", data_dir=data_dir)
        self.train_feats, _ = features_and_logits(self.net, data.to_model_input(train_images))
        self.test_feats, self.test_logits = features_and_logits(
            self.net, data.to_model_input(test_images))
        self.mu, self.sigma = gaussian_stats(self.train_feats)
        self._real_scores = {}
        self._manifolds = {}
        self._class_stats = None

    def subset(self, feats, m, seed):
        """m rows of feats, chosen without replacement by a generator seeded with seed."""
        idx = np.random.default_rng(seed).permutation(len(feats))[:m]
        return feats[np.sort(idx)]

    def score_features(self, feats, logits, seed=0, k=K):
        """Every score of one set of features (N, D) and logits (N, 10) against the reference."""
        mu, sigma = gaussian_stats(feats)
        scores = {"fd": frechet_distance(mu, sigma, self.mu, self.sigma)}
        scores.update(class_scores(logits.argmax(axis=1)))
        m = min(len(feats), MAX_PR)
        if (m, seed, k) not in self._manifolds:  # the real manifold: m training images' balls
            real = self.subset(self.train_feats, m, seed)
            self._manifolds[m, seed, k] = real, knn_radii(real, k)
        real, radii = self._manifolds[m, seed, k]
        scores["precision"], scores["recall"] = precision_recall(real, feats[:m], k,
                                                                 real_radii=radii)
        return scores

    def real_scores(self, n, seed=0, k=K):
        """The same scores for min(n, 10000) real MNIST test images: the floor to read against."""
        m = min(n, len(self.test_feats))
        key = (m, seed, k)
        if key not in self._real_scores:
            idx = np.sort(np.random.default_rng(seed + 1).permutation(len(self.test_feats))[:m])
            self._real_scores[key] = self.score_features(self.test_feats[idx],
                                                         self.test_logits[idx], seed, k)
        return self._real_scores[key]


    def conditional_scores(self, feats, logits, asked):
        """Class consistency and the intra-class Fréchet distance of features (N, D) and logits
        (N, 10) of samples asked for the digits asked (N,) (minigan/scores.py)."""
        if self._class_stats is None:  # the training images of each digit: their Gaussians
            self._class_stats = [gaussian_stats(self.train_feats[self.train_labels == c])
                                 for c in range(CLASSES)]
        consistency, per_digit = class_consistency(asked, logits.argmax(axis=1))
        fd, fd_per_digit = intra_class_fd(feats, asked, self._class_stats)
        return {"class_consistency": consistency,
                "class_consistency_per_digit": per_digit.tolist(),
                "intra_class_fd": fd, "intra_class_fd_per_digit": fd_per_digit.tolist()}

    def real_conditional_scores(self, per_digit, seed=0):
        """The same for up to per_digit real test images of each digit, asked for their own."""
        key = ("conditional", per_digit, seed)
        if key not in self._real_scores:
            order = np.random.default_rng(seed + 1).permutation(len(self.test_feats))
            idx = np.sort(np.concatenate([order[self.test_labels[order] == c][:per_digit]
                                          for c in range(CLASSES)]))
            self._real_scores[key] = self.conditional_scores(
                self.test_feats[idx], self.test_logits[idx], self.test_labels[idx])
        return self._real_scores[key]


_REFERENCES = {}


def reference(classifier_path=None, data_dir=None, features="mlp"):
    """The Reference of a feature space ("mlp" or "conv") for a classifier file (default: the
    shipped one) and the MNIST in data_dir (default: where data.find_mnist finds it), built
    once per process for each. The cache knows the folder by the one found, resolved: "data/
    mnist/", its absolute path and a search that finds it share an entry, and a search that
    finds another folder (or none: $MINIGAN_DATA unset since) does not reuse it."""
    folder = data.find_mnist(data_dir).resolve()
    key = (features, str(classifier_path), str(folder))
    if key not in _REFERENCES:
        load, _ = CLASSIFIERS[features]
        _REFERENCES[key] = Reference(load(classifier_path), folder)
    return _REFERENCES[key]


def scoring_problem(data_dir=None):
    """Why log_quality could not score, in words, or None: it reads and verifies what scoring
    needs, the shipped classifier and MNIST's training and test images (in data_dir, or where
    data.find_mnist finds them), so that train_mnist.py --eval-every refuses before it writes
    anything instead of failing after an epoch's training. A fraction of a second; the
    Reference itself (seconds) is built at the first scoring."""
    try:
        classifier.load_classifier()
        for split in ("train", "test"):
            data.load_mnist(split, data_dir=data_dir)
    except (classifier.ClassifierError, data.DataError) as e:
        return str(e)
    return None


def check_pixels(pixels, source="samples"):
    """Raise EvalError unless pixels is an integer array (N, 28, 28) of values 0..255 with
    N > K; returns it as uint8."""
    pixels = np.asarray(pixels)
    if pixels.dtype.kind not in "ui":
        raise EvalError(f"{source}: expected uint8 pixels 0..255, found dtype {pixels.dtype}; "
                        "convert images in [-1, 1] with minigan.data.to_pixels")
    if pixels.ndim != 3 or pixels.shape[1:] != (28, 28):
        raise EvalError(f"{source}: expected images of shape (N, 28, 28), found shape "
                        f"{pixels.shape}")
    if len(pixels) <= K + 1:
        raise EvalError(f"{source}: {len(pixels)} images are too few to score; pass at least "
                        f"{K + 2} (10,000 for figures you compare)")
    if pixels.dtype != np.uint8 and (pixels.min() < 0 or pixels.max() > 255):
        raise EvalError(f"{source}: pixel values must lie in 0..255, found {pixels.min()}.."
                        f"{pixels.max()}")
    return pixels.astype(np.uint8, copy=False)


def evaluate_pixels(pixels, ref=None, seed=0, k=K):
    """Score uint8 images (N, 28, 28) against MNIST. Returns a dict: fd, fd_floor,
    class_entropy, kl_uniform, class_share (10), precision, recall, n, seed, k, and ``real``:
    the same scores for as many real test images."""
    pixels = check_pixels(pixels)
    ref = reference() if ref is None else ref
    feats, logits = features_and_logits(ref.net, data.to_model_input(pixels))
    return evaluate_features(feats, logits, ref, seed, k)


def evaluate_features(feats, logits, ref, seed=0, k=K, asked=None):
    """evaluate_pixels' scores from the classifier's features (N, D) and logits (N, 10); with
    asked, the digit (N,) each sample of a conditional generator was asked for, n/10 of each,
    class consistency and the intra-class distance too."""
    scores = ref.score_features(feats, logits, seed, k)
    real = ref.real_scores(len(feats), seed, k)
    result = {"fd": scores["fd"], "fd_floor": real["fd"],
              "class_entropy": scores["class_entropy"], "kl_uniform": scores["kl_uniform"],
              "class_share": scores["class_share"], "precision": scores["precision"],
              "recall": scores["recall"], "n": len(feats), "seed": seed, "k": k, "real": real}
    if asked is not None:
        result.update(ref.conditional_scores(feats, logits, asked))
        result["real"] = {**real, **ref.real_conditional_scores(len(feats) // CLASSES, seed)}
    return result


def class_grid(pixels, labels, per_class=PER_CLASS):
    """One row per digit 0..9 of the first per_class images (N, 28, 28) with that label (N,);
    a digit with fewer images is padded with black. Returns (10 * per_class, 28, 28) uint8."""
    rows = np.zeros((CLASSES, per_class, 28, 28), dtype=np.uint8)
    for c in range(CLASSES):
        chosen = pixels[labels == c][:per_class]
        rows[c, :len(chosen)] = chosen
    return rows.reshape(-1, 28, 28)


def evaluate_generator(G, latent_dim, n=DEFAULT_SAMPLES, seed=0, dtype="float32", ref=None):
    """Draw n images from generator G (noise seeded with seed) and score them (evaluate_pixels)."""
    from minigan.sample import generate  # sample imports nothing from here; kept local

    return evaluate_pixels(generate(G, n, latent_dim, seed, dtype), ref, seed)


def memorisation(pixels, feats, ref, m, seed=0, data_dir=None):
    """minigan/neighbours.py's check of the first m samples, uint8 pixels (N, 28, 28) and their
    features (N, F), against the 60,000 training images, with m test images drawn at random
    (seed) as the yardstick. Returns the result (a dict, with its seconds) and the figure's
    cells (uint8, neighbours.figure_cells)."""
    start = time.perf_counter()
    train, _ = data.load_mnist("train", data_dir=data_dir)  # the order of ref.train_feats
    test, _ = data.load_mnist("test", data_dir=data_dir)
    idx = np.sort(np.random.default_rng(seed + 1).permutation(len(test))[:m])
    result, nearest = neighbours.memorisation(pixels[:m], feats[:m], train, ref.train_feats,
                                              test[idx], ref.test_feats[idx])
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result, neighbours.figure_cells(pixels, train, nearest)


def log_quality(run_dir, G, latent_dim, dtype, n, epoch, step, seed=0, data_dir=None):
    """Score G (train_mnist.py --eval-every): append a row to run_dir/eval.csv, redraw
    run_dir/quality.png from every row; returns the row. The noise comes from its own generator
    seeded with seed, so the training's random stream is untouched. data_dir: the run's MNIST
    folder (--data-dir; None: search), which the Reference is built from."""
    start = time.perf_counter()
    scores = evaluate_generator(G, latent_dim, n, seed, dtype, ref=reference(data_dir=data_dir))
    row = {"epoch": epoch, "step": step, "fd": scores["fd"], "fd_floor": scores["fd_floor"],
           "class_entropy": scores["class_entropy"], "kl_uniform": scores["kl_uniform"],
           "least_share": min(scores["class_share"]), "most_share": max(scores["class_share"]),
           "precision": scores["precision"], "recall": scores["recall"],
           "seconds": round(time.perf_counter() - start, 2)}
    rundir.append_row(Path(run_dir) / "eval.csv", row)
    pictures.save_quality_curve(Path(run_dir) / "quality.png",
                                rundir.read_rows(Path(run_dir) / "eval.csv"))
    print(f"epoch {epoch}: Fréchet distance {row['fd']:.2f} (floor {row['fd_floor']:.2f}), "
          f"class entropy {row['class_entropy']:.3f}, precision {row['precision']:.3f}, "
          f"recall {row['recall']:.3f} ({row['seconds']:.0f} s)")
    return row


# ---- the command ---------------------------------------------------------------------------


def format_table(scores):
    """The scores as a table of text lines: the samples, real MNIST test images, the ideal."""
    real = scores["real"]

    def shares(s):
        share = np.array(s["class_share"])
        lo, hi = int(share.argmin()), int(share.argmax())
        return f"{share[lo]:.1%} ({lo})", f"{share[hi]:.1%} ({hi})"

    (lo, hi), (rlo, rhi) = shares(scores), shares(real)
    rows = [
        ("score", "samples", "MNIST test", "ideal"),
        ("Fréchet distance", f"{scores['fd']:.3f}", f"{scores['fd_floor']:.3f}", "the floor"),
        ("class entropy (nats)", f"{scores['class_entropy']:.4f}",
         f"{real['class_entropy']:.4f}", f"{math.log(CLASSES):.4f}"),
        ("KL to uniform (nats)", f"{scores['kl_uniform']:.4f}", f"{real['kl_uniform']:.4f}",
         "0"),
        ("least frequent class", lo, rlo, "10.0%"),
        ("most frequent class", hi, rhi, "10.0%"),
        (f"precision (k={scores['k']})", f"{scores['precision']:.4f}",
         f"{real['precision']:.4f}", "1"),
        (f"recall (k={scores['k']})", f"{scores['recall']:.4f}", f"{real['recall']:.4f}", "1"),
    ]
    if "class_consistency" in scores:  # a conditional run: is each sample the digit asked for?
        rows += [("class consistency", f"{scores['class_consistency']:.2%}",
                  f"{real['class_consistency']:.2%}", "100%"),
                 ("intra-class FD (mean)", f"{scores['intra_class_fd']:.3f}",
                  f"{real['intra_class_fd']:.3f}", "the floor")]
    if "neighbours" in scores:  # --neighbours: does G copy its training set?
        rows += neighbours.format_lines(scores["neighbours"])
    lines = [f"{a:<22s} {b:>12s} {c:>12s} {d:>10s}" for a, b, c, d in rows]
    lines.append("class shares: " + "  ".join(
        f"{c}: {s:.1%}" for c, s in enumerate(scores["class_share"])))
    if "neighbours" in scores:
        lines.append(neighbours.NOTE)
    if "class_consistency" in scores:
        for name, key, form in (("class consistency", "class_consistency_per_digit", ".1%"),
                                ("intra-class FD", "intra_class_fd_per_digit", ".2f")):
            lines.append(f"{name} per digit asked: " + "  ".join(
                f"{c}: {v:{form}}" for c, v in enumerate(scores[key])))
    return lines


def load_input(path, n, seed):
    """Images (N, 28, 28) uint8 from a run folder (n samples) or a .npy; and for a conditional
    run the digit each sample was asked for (N,), n/10 of each (else None): the digits
    G.forward(z) asks for without labels, so eval.csv's rows score the same."""
    path = Path(path)
    if path.is_dir():
        from minigan.sample import generate, load_generator

        G, cfg = load_generator(path)
        asked = None
        if cfg.conditional:
            if n % CLASSES or n < 2 * CLASSES:  # a covariance needs two samples of each
                raise EvalError(f"-n {n}: {path} is a conditional run, scored on n/10 samples "
                                f"of each digit; use a multiple of 10 from 20, like -n 10000")
            asked = backend.to_host(conditional.balanced_labels(n))  # 0, 1, ..., 9, 0, ...
        pixels = generate(G, n, cfg.latent_dim, seed, cfg.dtype, labels=asked)
        return check_pixels(pixels, str(path)), asked
    if not path.exists():
        raise EvalError(f"{path}: no such file or folder; pass a run folder or a .npy of samples")
    wrong = suffix_problem(path, (".npy",))
    if wrong:
        raise EvalError(f"{path}: expected a run folder or a .npy file (write one with "
                        f"python -m minigan.sample RUN_DIR -n 10000 --out samples.npy); {wrong}")
    try:
        pixels = files.read_npy(path)
    except files.UnreadableArray as e:  # another kind of file, damaged, truncated, pickled
        raise EvalError(f"{path}: not a readable .npy file; the file holds {e}. Pass a .npy of "
                        "uint8 images (N, 28, 28), as minigan.sample writes.") from None
    except OSError as e:
        raise EvalError(f"{path}: cannot read it ({e.strerror or e})") from None
    return check_pixels(pixels, str(path)), None


def main(argv=None):
    args = parse_args(argv)
    prog = "python -m minigan.evaluate"
    try:
        backend.use(args.device)
        name = features_suffix(args)  # in the default names: "", "_conv"
        if args.train_classifier:
            out = output_path(args)  # --out, or runs/mnist_classifier.npz: checked writable
            start = time.perf_counter()
            _, train = CLASSIFIERS[args.features]
            net, acc = train(args.epochs, seed=args.seed, data_dir=args.data_dir)
            digest = classifier.save_classifier(out, net)
            print(f"test accuracy {acc:.2%} after {args.epochs} epochs "
                  f"({time.perf_counter() - start:.0f} s); wrote {out}\nSHA-256 {digest}")
            return 0
        start = time.perf_counter()
        pixels, asked = load_input(args.input, args.n, args.seed)
        m = args.neighbours_n or min(NEIGHBOUR_SAMPLES, len(pixels))
        if args.neighbours and m > len(pixels):
            raise EvalError(f"--neighbours-n {m}: more than the {len(pixels)} images of "
                            f"{args.input}; use at most {len(pixels)}")
        ref = reference(args.classifier, args.data_dir, args.features)
        feats, logits = features_and_logits(ref.net, data.to_model_input(pixels))
        scores = evaluate_features(feats, logits, ref, args.seed, asked=asked)
        if args.neighbours:
            scores["neighbours"], cells = memorisation(pixels, feats, ref, m, args.seed,
                                                       args.data_dir)
    except (EvalError, classifier.ClassifierError, data.DataError, backend.DeviceError,
            checkpoint.CheckpointError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # to_pixels: a generator whose weights went NaN
        print(f"{prog}: error: {args.input}: {e}", file=sys.stderr)
        return 2
    scores["seconds"] = round(time.perf_counter() - start, 1)
    if name:  # eval.json of the default space keeps the keys it always had
        scores["features"] = args.features
    out = output_path(args)  # --out, or eval.json next to the input
    try:
        files.write_text(out, json.dumps(scores, indent=2) + "\n")
    except OSError as e:
        print(f"{prog}: error: cannot write {out} ({e}); pass --out to write elsewhere",
              file=sys.stderr)
        return 2
    pictures_to_write = []  # (flag, path, images, images a row)
    if args.class_grid:  # (100, 28, 28): ten images of each digit
        pictures_to_write.append(("--class-grid", args.class_grid,
                                  class_grid(pixels, logits.argmax(axis=1)), PER_CLASS))
    if args.neighbours:  # a row: the sample, a gap, k in pixels, a gap, k in features
        grid = args.neighbours_grid or beside_input(args, f"neighbours{name}.png")
        pictures_to_write.append(("--neighbours-grid", grid, cells, 2 * neighbours.FIGURE_K + 3))
    for flag, path, images, nrow in pictures_to_write:
        try:
            pictures.save_grid(path, images, nrow=nrow)
        except OSError as e:
            print(f"{prog}: error: cannot write {path} ({e}); pass {flag} to write elsewhere",
                  file=sys.stderr)
            return 2
    space = f" in the {args.features} classifier's features" if name else ""
    print(f"minigan.evaluate: {scores['n']} images from {args.input}{space} (seed {args.seed}), "
          f"{scores['seconds']} s")
    print("\n".join(format_table(scores)))
    print(f"wrote {out}")
    if args.class_grid:
        print(f"wrote {args.class_grid}: {PER_CLASS} samples of each digit as the classifier "
              "labels them, one row per digit 0-9 (black where a digit has fewer)")
    if args.neighbours:
        print(f"wrote {grid}: a row per sample, the sample, then its {neighbours.FIGURE_K} nearest "
              "training images in pixels, then in the classifier's features; copy share: "
              "samples nearer a training image than 99% of test images are (about 1% unless G "
              f"copies; {scores['neighbours']['seconds']} s)")
    if args.json:
        print(json.dumps(scores))
    return 0


def cli(argv=None):
    """main, with Ctrl-C ending in one line and status 130 instead of a traceback."""
    try:
        return main(argv)
    except KeyboardInterrupt:  # every file is written whole (files.atomic_write) or not at all
        print("\npython -m minigan.evaluate: interrupted; what it had not written yet is not "
              "written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
