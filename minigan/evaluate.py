"""Score what a generator learned: a Fréchet distance, the class histogram, precision and recall.

    python -m minigan.evaluate RUN_DIR                 # 10,000 samples from the run's generator
    python -m minigan.evaluate samples.npy             # uint8 (N, 28, 28), as minigan.sample writes
    python -m minigan.evaluate RUN_DIR --json          # the scores as JSON on the last line
    python -m minigan.evaluate --train-classifier      # retrain the MNIST classifier (minutes)

Every score is measured through one MNIST classifier built from minigan's own layers (an MLP,
784 -> 512 -> 256 -> 10, ReLU), whose weights ship in ``minigan/weights/`` with their SHA-256:

- ``fd``: the Fréchet distance between Gaussians fitted to the classifier's penultimate features
  (256 numbers per image) of the samples and of the 60,000 MNIST training images. ``fd_floor``
  is the same distance for as many real MNIST *test* images: what a perfect generator would
  score with that many samples (the distance is biased upward by a finite sample).
- ``class_entropy`` (nats, at most log 10 = 2.303), ``kl_uniform`` (= log 10 - entropy) and
  ``class_share``: the histogram of the classifier's labels for the samples.
- ``precision`` and ``recall``: k-nearest-neighbour manifolds in feature space (Kynkäänniemi et
  al. 2019, k = 3): the share of samples inside the real images' manifold, and the share of
  real images inside the samples' manifold.

Derivations and how to read the numbers: lessons/11_measuring_samples.md. The Python API is
:func:`evaluate_pixels` (uint8 images) and :func:`evaluate_generator` (a generator network);
both share one :class:`Reference`, which is built once per process and cached.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from minigan import backend, checkpoint, data
from minigan.layers import Dense, ReLU, Sequential
from minigan.losses import softmax_cross_entropy
from minigan.optim import Adam

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_classifier.npz"
# SHA-256 of the shipped weights file; python -m minigan.evaluate --train-classifier prints the
# hash of the file it writes.
WEIGHTS_SHA256 = "32ad6d5333f8c54c2cc6ddb35d64323e9f131df0001ecd683f7d3415c544e387"
HIDDEN = (512, 256)  # the classifier's hidden widths; the features are the last hidden layer's
CLASSES = 10
K = 3  # neighbours for the precision/recall manifolds, as Kynkäänniemi et al. recommend
DEFAULT_SAMPLES = 10_000
MAX_PR = 10_000  # precision and recall use at most this many samples and real images: O(n^2)
MAX_SAMPLES = 1_000_000  # -n: a million images are 784 MB of pixels


class EvalError(RuntimeError):
    """Bad input to the evaluation (a file, an array, weights); the message says what to do."""


# ---- the classifier ------------------------------------------------------------------------


def make_classifier(hidden=HIDDEN, rng=None, dtype="float32"):
    """The MNIST classifier: x (N, 784) in [-1, 1] -> logits (N, 10); Dense + ReLU layers."""
    sizes = [784, *hidden]
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        layers += [Dense(d_in, d_out, rng=rng, dtype=dtype), ReLU()]
    layers += [Dense(sizes[-1], CLASSES, rng=rng, dtype=dtype)]
    return Sequential(*layers)


def features_and_logits(net, x, chunk=2000):
    """Penultimate features (N, hidden[-1]) and logits (N, 10) of host inputs x (N, 784), on the
    host. Runs the network on the current device, chunk by chunk."""
    feats, logits = [], []
    body, head = net.layers[:-1], net.layers[-1]
    for start in range(0, len(x), chunk):
        h = backend.to_device(x[start:start + chunk])  # host -> device
        for layer in body:
            h = layer.forward(h)
        feats.append(backend.to_host(h))  # device -> host
        logits.append(backend.to_host(head.forward(h)))
    return np.concatenate(feats), np.concatenate(logits)


def shift_images(images, rng, max_shift=2):
    """Each uint8 image (N, 28, 28) moved by a random whole-pixel offset in [-max_shift,
    max_shift] along each axis, filling with black: the augmentation the classifier trains on."""
    n = len(images)
    pad = max_shift
    padded = np.zeros((n, 28 + 2 * pad, 28 + 2 * pad), dtype=images.dtype)
    padded[:, pad:pad + 28, pad:pad + 28] = images
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    out = np.empty_like(images)
    for oy in range(2 * pad + 1):
        for ox in range(2 * pad + 1):
            idx = np.flatnonzero((dy == oy) & (dx == ox))
            out[idx] = padded[idx, oy:oy + 28, ox:ox + 28]
    return out


def accuracy(net, images, labels):
    """Share of uint8 images (N, 28, 28) whose arg-max logit equals the label."""
    _, logits = features_and_logits(net, data.to_model_input(images))
    return float(np.mean(logits.argmax(axis=1) == labels))


def train_classifier(epochs=30, batch_size=128, lr=1e-3, seed=0, data_dir=None, log=print):
    """Train the classifier on the 60,000 MNIST training images (random 2-pixel shifts, Adam,
    learning rate decayed linearly to 0); returns (net, test accuracy). Deterministic for a seed
    on the CPU with a given number of BLAS threads (minigan/weights/README.md)."""
    train_images, train_labels = data.load_mnist("train", data_dir=data_dir)
    test_images, test_labels = data.load_mnist("test", data_dir=data_dir)
    rng = np.random.default_rng(seed)  # host generator: shifts and batch order
    net = make_classifier(rng=backend.default_rng(seed))
    opt = Adam(net.parameters(), lr=lr)
    n = len(train_images)
    steps = n // batch_size
    for epoch in range(epochs):
        start = time.perf_counter()
        x_all = data.to_model_input(shift_images(train_images, rng))  # (60000, 784)
        order = rng.permutation(n)
        total = 0.0
        for i in range(steps):
            opt.lr = lr * (1 - (epoch * steps + i) / (epochs * steps))  # linear decay to 0
            idx = order[i * batch_size:(i + 1) * batch_size]
            x = backend.to_device(x_all[idx])  # (B, 784), host -> device
            y = backend.to_device(train_labels[idx].astype(np.int64))
            net.zero_grad()
            loss, dlogits = softmax_cross_entropy(net.forward(x), y)
            net.backward(dlogits, input_grad=False)
            opt.step()
            total += float(loss)  # a sync on the GPU; this loop is short
        acc = accuracy(net, test_images, test_labels)
        log(f"epoch {epoch + 1}/{epochs}: train loss {total / steps:.4f}, test accuracy "
            f"{acc:.2%} ({time.perf_counter() - start:.1f} s)")
    return net, accuracy(net, test_images, test_labels)


def save_classifier(path, net):
    """Write the classifier's weights as a plain .npz (float32); returns the file's SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: backend.to_host(v) for k, v in net.params.items()}
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        tmp.replace(path)  # atomic: an earlier file at path stays whole until this rename
    except OSError as e:  # disk full, permission denied
        tmp.unlink(missing_ok=True)
        raise EvalError(f"cannot write the classifier's weights to {path} ({e}); nothing was "
                        "written there. Free some space, or pass --out elsewhere.") from None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_classifier(path=None):
    """The classifier with weights from ``path`` (default: the shipped file, whose SHA-256 must
    equal WEIGHTS_SHA256). Raises EvalError naming the file and the fix."""
    shipped = path is None
    path = Path(WEIGHTS if shipped else path)
    if not path.is_file():
        hint = ("restore the shipped file with `git checkout -- minigan/weights` or retrain "
                "with python -m minigan.evaluate --train-classifier" if shipped else
                "pass a file written by python -m minigan.evaluate --train-classifier")
        raise EvalError(f"classifier weights {path} not found; {hint}")
    raw = path.read_bytes()
    if shipped:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != WEIGHTS_SHA256:
            raise EvalError(
                f"classifier weights {path} are damaged: SHA-256 {digest} differs from the "
                f"expected {WEIGHTS_SHA256}. Restore them with `git checkout -- "
                "minigan/weights` (a Git LFS pointer or a partial download also fails this).")
    net = make_classifier(rng=backend.default_rng(0))  # the init is overwritten below
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise EvalError(f"classifier weights {path}: not a readable .npz file ({e})") from None
    if sorted(arrays) != sorted(net.params) or any(
            arrays[k].shape != net.params[k].shape for k in net.params):
        raise EvalError(f"classifier weights {path}: expected arrays "
                        f"{ {k: v.shape for k, v in net.params.items()} }, found "
                        f"{ {k: v.shape for k, v in arrays.items()} }")
    for k, p in net.params.items():
        p[...] = backend.to_device(arrays[k])  # in place: the layers share these arrays
    return net


# ---- the scores ----------------------------------------------------------------------------


def gaussian_stats(feats):
    """Mean (D,) and covariance (D, D) of features (N, D), in float64 (the 1/(N-1) estimate)."""
    feats = np.asarray(feats, dtype=np.float64)
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def sqrtm_psd(S):
    """The symmetric square root of a symmetric positive semi-definite matrix S (D, D).

    S = V diag(w) V^T (eigh)  ->  S^(1/2) = V diag(sqrt(w)) V^T, with w clipped at 0 (rounding
    makes tiny eigenvalues of a singular S slightly negative). lessons/11_measuring_samples.md.
    """
    w, V = np.linalg.eigh(S)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def frechet_distance(mu1, S1, mu2, S2):
    """Fréchet (2-Wasserstein) distance squared between N(mu1, S1) and N(mu2, S2):

        |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2)

    tr (S1 S2)^(1/2) is computed as tr (S1^(1/2) S2 S1^(1/2))^(1/2): that matrix is symmetric
    PSD and has the same eigenvalues as S1 S2, so eigh applies (no scipy.linalg.sqrtm).
    """
    r1 = sqrtm_psd(S1)
    T = r1 @ S2 @ r1
    T = (T + T.T) / 2  # symmetric up to rounding; make it exactly so for eigvalsh
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(T), 0, None)).sum()
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(S1) + np.trace(S2) - 2 * tr_sqrt)


def class_scores(labels):
    """The class histogram of predicted labels (N,): entropy and KL to uniform in nats, shares."""
    share = np.bincount(labels, minlength=CLASSES) / len(labels)  # (10,)
    nonzero = share[share > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum())  # 0 log 0 = 0
    return {"class_entropy": entropy, "kl_uniform": math.log(CLASSES) - entropy,
            "class_share": [float(s) for s in share]}


def squared_distances(a, b):
    """|a_i - b_j|^2 for rows of a (M, D) and b (N, D): (M, N), never negative.

    In float32: the (M, D) @ (D, N) product is most of the evaluation's time, and float32 halves
    it; its rounding (~1e-7 of |a|^2) only matters for near-ties, and is the same every run.
    """
    a, b = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    d = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2 * (a @ b.T)
    return np.maximum(d, 0)


def knn_radii(feats, k=K, chunk=2000):
    """Squared distance from each row of feats (N, D) to its k-th nearest other row: (N,)."""
    feats = np.asarray(feats)
    radii = np.empty(len(feats))
    for start in range(0, len(feats), chunk):
        d = squared_distances(feats[start:start + chunk], feats)
        radii[start:start + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 is the row itself
    return radii


def precision_recall(real, fake, k=K, chunk=2000, real_radii=None):
    """Improved precision and recall (Kynkäänniemi et al. 2019) of features real (M, D), fake (N, D).

    Each set's manifold is the union of balls around its points, of radius the distance to the
    point's k-th nearest neighbour in the same set. precision = share of fake points inside the
    real manifold; recall = share of real points inside the fake manifold. real_radii: the real
    set's knn_radii, when the caller has them already.
    """
    real, fake = np.asarray(real), np.asarray(fake)
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"precision_recall needs more than k={k} points in each set")
    r_real = knn_radii(real, k, chunk) if real_radii is None else real_radii
    r_fake = knn_radii(fake, k, chunk)
    fake_in = np.zeros(len(fake), dtype=bool)
    real_in = np.zeros(len(real), dtype=bool)
    for start in range(0, len(fake), chunk):
        d = squared_distances(fake[start:start + chunk], real)  # (chunk, M)
        fake_in[start:start + chunk] = (d <= r_real[None, :]).any(axis=1)
        real_in |= (d <= r_fake[start:start + chunk, None]).any(axis=0)
    return float(fake_in.mean()), float(real_in.mean())


class Reference:
    """What every score compares against, computed once: the classifier, the features of the
    60,000 MNIST training images (their Gaussian), and of the 10,000 test images (the floor)."""

    def __init__(self, classifier=None, data_dir=None):
        self.net = classifier if classifier is not None else load_classifier()
        train_images, _ = data.load_mnist("train", data_dir=data_dir)
        test_images, _ = data.load_mnist("test", data_dir=data_dir)
        self.train_feats, _ = features_and_logits(self.net, data.to_model_input(train_images))
        self.test_feats, self.test_logits = features_and_logits(
            self.net, data.to_model_input(test_images))
        self.mu, self.sigma = gaussian_stats(self.train_feats)
        self._real_scores = {}
        self._manifolds = {}

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


_REFERENCES = {}


def reference(classifier_path=None, data_dir=None):
    """The Reference for a classifier file (default: the shipped one), built once per process."""
    key = (str(classifier_path), str(data_dir))
    if key not in _REFERENCES:
        net = load_classifier(classifier_path)
        _REFERENCES[key] = Reference(net, data_dir)
    return _REFERENCES[key]


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
    scores = ref.score_features(feats, logits, seed, k)
    real = ref.real_scores(len(pixels), seed, k)
    return {"fd": scores["fd"], "fd_floor": real["fd"],
            "class_entropy": scores["class_entropy"], "kl_uniform": scores["kl_uniform"],
            "class_share": scores["class_share"], "precision": scores["precision"],
            "recall": scores["recall"], "n": len(pixels), "seed": seed, "k": k, "real": real}


def evaluate_generator(G, latent_dim, n=DEFAULT_SAMPLES, seed=0, dtype="float32", ref=None):
    """Draw n images from generator G (noise seeded with seed) and score them (evaluate_pixels)."""
    from minigan.sample import generate  # sample imports nothing from here; kept local

    return evaluate_pixels(generate(G, n, latent_dim, seed, dtype), ref, seed)


QUALITY_FIELDS = ("epoch", "step", "fd", "fd_floor", "class_entropy", "kl_uniform",
                  "least_share", "most_share", "precision", "recall", "seconds")


def log_quality(run_dir, G, latent_dim, dtype, n, epoch, step, seed=0):
    """Score G (train_mnist.py --eval-every): append a row to run_dir/eval.csv, redraw
    run_dir/quality.png from every row; returns the row. The noise comes from its own generator
    seeded with seed, so the training's random stream is untouched."""
    import csv

    from minigan import pictures

    start = time.perf_counter()
    scores = evaluate_generator(G, latent_dim, n, seed, dtype)
    row = {"epoch": epoch, "step": step, "fd": scores["fd"], "fd_floor": scores["fd_floor"],
           "class_entropy": scores["class_entropy"], "kl_uniform": scores["kl_uniform"],
           "least_share": min(scores["class_share"]), "most_share": max(scores["class_share"]),
           "precision": scores["precision"], "recall": scores["recall"],
           "seconds": round(time.perf_counter() - start, 2)}
    path = Path(run_dir) / "eval.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=QUALITY_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    pictures.save_quality_curve(Path(run_dir) / "quality.png", rows)
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
    lines = [f"{a:<22s} {b:>12s} {c:>12s} {d:>10s}" for a, b, c, d in rows]
    lines.append("class shares: " + "  ".join(
        f"{c}: {s:.1%}" for c, s in enumerate(scores["class_share"])))
    return lines


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m minigan.evaluate",
        description="Score a run's samples against MNIST: Fréchet distance (with its floor), "
                    "class histogram, precision and recall (lessons/11_measuring_samples.md).")
    p.add_argument("input", nargs="?",
                   help="a train_mnist.py run folder, or a .npy of uint8 images (N, 28, 28)")
    p.add_argument("-n", type=int, default=DEFAULT_SAMPLES,
                   help="samples to draw from a run's generator (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the noise and of the real subsets (default: %(default)s)")
    p.add_argument("--out", default=None,
                   help="where to write: the scores' .json (default: eval.json next to the "
                        "input); with --train-classifier, the weights' .npz (default: "
                        "runs/mnist_classifier.npz)")
    p.add_argument("--json", action="store_true",
                   help="print the scores as one JSON object on the last line")
    p.add_argument("--classifier", default=None,
                   help="classifier weights to score with (default: the shipped, checksummed "
                        "minigan/weights/mnist_classifier.npz)")
    p.add_argument("--data-dir", default=None, help="where the MNIST files are")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--train-classifier", action="store_true",
                   help="train the classifier instead (30 epochs, a few CPU minutes)")
    p.add_argument("--epochs", type=int, default=30,
                   help="with --train-classifier: epochs (default: %(default)s)")
    args = p.parse_args(argv)
    if args.train_classifier:
        if args.input is not None:
            p.error("--train-classifier takes no input; drop the run folder or .npy")
        if args.epochs < 1:
            p.error(f"--epochs must be at least 1, got {args.epochs}")
        if args.out is not None and not args.out.endswith(".npz"):
            p.error(f"--out {args.out}: the classifier's weights are written as .npz")
    else:
        if args.input is None:
            p.error("give a run folder or a .npy of samples (or --train-classifier)")
        if not K + 1 < args.n <= MAX_SAMPLES:
            p.error(f"-n {args.n}: use a number from {K + 2} to {MAX_SAMPLES:,}")
        if args.out is not None and not args.out.endswith(".json"):
            p.error(f"--out {args.out}: the scores are written as .json")
    if not 0 <= args.seed < 2**32:
        p.error(f"--seed {args.seed}: use an integer from 0 to {2**32 - 1}")
    if args.out is not None:
        try:
            problem = (f"--out {args.out} is a folder; name a file in it"
                       if Path(args.out).is_dir() else
                       None if Path(args.out).resolve().parent.is_dir() else
                       f"--out {args.out}: the folder {Path(args.out).parent} does not exist")
        except (OSError, ValueError) as e:  # a name too long, a NUL byte
            problem = f"--out {args.out!r}: not a usable file name ({e})"
        if problem:
            p.error(problem)
    return args


def writable_or_raise(path):
    """Raise EvalError unless path's folder (or the nearest one that exists) is writable."""
    folder = Path(path).resolve().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise EvalError(f"cannot write {path}: {folder} is not a writable folder; pass --out "
                        "with a file in a folder you can write to")


def write_atomic(path, text):
    """Write text to a temporary file beside path, then rename it over path (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_input(path, n, seed):
    """Images (N, 28, 28) uint8 from a run folder (n samples) or a .npy; and the eval.json path."""
    path = Path(path)
    if path.is_dir():
        from minigan.sample import generate, load_generator

        G, cfg = load_generator(path)
        return generate(G, n, cfg["latent_dim"], seed, cfg["dtype"]), path / "eval.json"
    if not path.exists():
        raise EvalError(f"{path}: no such file or folder; pass a run folder or a .npy of samples")
    if path.suffix != ".npy":
        raise EvalError(f"{path}: expected a run folder or a .npy file (write one with "
                        "python -m minigan.sample RUN_DIR -n 10000 --out samples.npy)")
    try:
        pixels = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise EvalError(f"{path}: not a readable .npy file ({e})") from None
    return check_pixels(pixels, str(path)), path.parent / "eval.json"


def main(argv=None):
    args = parse_args(argv)
    prog = "python -m minigan.evaluate"
    try:
        backend.use(args.device)
        if args.train_classifier:
            out = Path(args.out or "runs/mnist_classifier.npz")
            writable_or_raise(out)  # before minutes of training, not after
            start = time.perf_counter()
            net, acc = train_classifier(args.epochs, seed=args.seed, data_dir=args.data_dir)
            digest = save_classifier(out, net)
            print(f"test accuracy {acc:.2%} after {args.epochs} epochs "
                  f"({time.perf_counter() - start:.0f} s); wrote {out}\nSHA-256 {digest}")
            return 0
        start = time.perf_counter()
        pixels, default_out = load_input(args.input, args.n, args.seed)
        ref = reference(args.classifier, args.data_dir)
        scores = evaluate_pixels(pixels, ref, args.seed)
    except (EvalError, data.DataError, backend.DeviceError, checkpoint.CheckpointError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # to_pixels: a generator whose weights went NaN
        print(f"{prog}: error: {args.input}: {e}", file=sys.stderr)
        return 2
    scores["seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out) if args.out else default_out
    try:
        write_atomic(out, json.dumps(scores, indent=2) + "\n")
    except OSError as e:
        print(f"{prog}: error: cannot write {out} ({e}); pass --out to write elsewhere",
              file=sys.stderr)
        return 2
    print(f"minigan.evaluate: {scores['n']} images from {args.input} (seed {args.seed}), "
          f"{scores['seconds']} s")
    print("\n".join(format_table(scores)))
    print(f"wrote {out}")
    if args.json:
        print(json.dumps(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
