"""The MNIST classifier every score of minigan.evaluate looks through: build, train, save, load.

An MLP of minigan's own layers, 784 -> 512 -> 256 -> 10 with ReLU, trained with
softmax_cross_entropy and Adam on randomly shifted training images (98.99% test accuracy). Its
weights ship in minigan/weights/ with their SHA-256 (minigan/weights/README.md says how they were
made, and that ``python -m minigan.evaluate --train-classifier`` reproduces them bit for bit). An
image's *features* are the 256 outputs of the last hidden layer: lessons/11_measuring_samples.md,
section 1. The second, convolutional classifier (minigan/conv_classifier.py) is trained by
train_classifier and loaded by load_weights, the same code.
"""

import hashlib
import time
from pathlib import Path

import numpy as np

from minigan import backend, data, files
from minigan.layers import Dense, ReLU, Sequential
from minigan.losses import softmax_cross_entropy
from minigan.optim import Adam

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_classifier.npz"
# SHA-256 of the shipped weights file; python -m minigan.evaluate --train-classifier prints the
# hash of the file it writes.
WEIGHTS_SHA256 = "32ad6d5333f8c54c2cc6ddb35d64323e9f131df0001ecd683f7d3415c544e387"
HIDDEN = (512, 256)  # the classifier's hidden widths; the features are the last hidden layer's
CLASSES = 10


class ClassifierError(RuntimeError):
    """Weights that cannot be read or written; the message says what to do."""


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


def train_classifier(epochs=30, batch_size=128, lr=1e-3, seed=0, data_dir=None, log=print,
                     make=make_classifier):
    """Train the classifier ``make(rng=...)`` builds (default: this MLP;
    conv_classifier.make_conv_classifier, the second one) on the 60,000 MNIST training images
    (random 2-pixel shifts, Adam, learning rate decayed linearly to 0); returns (net, test
    accuracy). Deterministic for a seed on the CPU with a given number of BLAS threads
    (minigan/weights/README.md)."""
    train_images, train_labels = data.load_mnist("train", data_dir=data_dir)
    test_images, test_labels = data.load_mnist("test", data_dir=data_dir)
    rng = np.random.default_rng(seed)  # host generator: shifts and batch order
    net = make(rng=backend.default_rng(seed))
    steps = epochs * (len(train_images) // batch_size)

    def report(epoch, loss, seconds):
        acc = accuracy(net, test_images, test_labels)
        log(f"epoch {epoch + 1}/{epochs}: train loss {loss:.4f}, test accuracy "
            f"{acc:.2%} ({seconds:.1f} s)")

    fit(net, train_images, train_labels, steps, rng, batch_size, lr, shift_images, report)
    return net, accuracy(net, test_images, test_labels)


def fit(net, images, labels, steps, rng, batch_size=128, lr=1e-3, augment=None,
        on_epoch=None):
    """Train net on uint8 images (N, 28, 28) with integer labels (N,) for ``steps`` Adam steps,
    the learning rate decayed linearly to 0; returns net.

    Each epoch draws ``augment(images, rng)`` (None: the images as they are) and a fresh order
    from the host generator rng, and reads N // batch_size full batches (the last, partial one
    is dropped), until ``steps`` steps are done; ``on_epoch(epoch, mean loss, seconds)`` follows
    every epoch. train_classifier is fit on the 60,000 training images with shift_images;
    python -m minigan.augment fits the same network to other sets (minigan/augment.py)."""
    n = len(images)
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"fit: {n} images cannot fill one batch of {batch_size}")
    opt = Adam(net.parameters(), lr=lr)
    step, epoch = 0, 0
    while step < steps:
        start = time.perf_counter()
        x_all = data.to_model_input(images if augment is None else augment(images, rng))
        order = rng.permutation(n)  # (N,) this epoch's batch order
        total, taken = 0.0, min(per_epoch, steps - step)
        for i in range(taken):
            opt.lr = lr * (1 - step / steps)  # linear decay to 0
            idx = order[i * batch_size:(i + 1) * batch_size]
            x = backend.to_device(x_all[idx])  # (B, 784), host -> device
            y = backend.to_device(labels[idx].astype(np.int64))
            net.zero_grad()
            loss, dlogits = softmax_cross_entropy(net.forward(x), y)
            net.backward(dlogits, input_grad=False)
            opt.step()
            total += float(loss)  # a sync on the GPU; this loop is short
            step += 1
        if on_epoch is not None:
            on_epoch(epoch, total / taken, time.perf_counter() - start)
        epoch += 1
    return net


def save_classifier(path, net):
    """Write the classifier's weights as a plain .npz (float32); returns the file's SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: backend.to_host(v) for k, v in net.params.items()}
    try:
        with files.atomic_write(path) as f:  # an earlier file at path stays whole on failure
            np.savez(f, **arrays)
    except OSError as e:  # disk full, permission denied
        raise ClassifierError(f"cannot write the classifier's weights to {path} ({e}); nothing "
                              "was written there. Free some space, or pass --out elsewhere."
                              ) from None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_classifier(path=None):
    """The classifier with weights from ``path`` (default: the shipped file, whose SHA-256 must
    equal WEIGHTS_SHA256). Raises ClassifierError naming the file and the fix."""
    net = make_classifier(rng=backend.default_rng(0))  # the init is overwritten
    return load_weights(net, path, WEIGHTS, WEIGHTS_SHA256,
                        "python -m minigan.evaluate --train-classifier")


def load_weights(net, path, shipped_path, shipped_sha256, retrain):
    """net with its params overwritten, in place, from the .npz at ``path``; with path None,
    from the shipped file ``shipped_path``, whose SHA-256 must equal ``shipped_sha256``.
    ``retrain`` is the command that writes such a file, for the messages. Raises ClassifierError
    naming the file and the fix."""
    shipped = path is None
    path = Path(shipped_path if shipped else path)
    hint = ("restore the shipped file with `git checkout -- minigan/weights` or retrain "
            f"with {retrain}" if shipped else f"pass a file written by {retrain}")
    if not path.is_file():
        raise ClassifierError(f"classifier weights {path} not found; {hint}")
    raw = path.read_bytes()
    if shipped:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != shipped_sha256:
            raise ClassifierError(
                f"classifier weights {path} are damaged: SHA-256 {digest} differs from the "
                f"expected {shipped_sha256}. Restore them with `git checkout -- "
                "minigan/weights` (a Git LFS pointer or a partial download also fails this).")
    try:
        arrays = files.read_npz(path)
    except files.UnreadableArray as e:  # another kind of file, damaged, truncated, pickled
        raise ClassifierError(f"classifier weights {path}: the file holds {e}; {hint}"
                              ) from None
    except OSError as e:
        raise ClassifierError(f"classifier weights {path}: cannot read it "
                              f"({e.strerror or e})") from None
    if sorted(arrays) != sorted(net.params) or any(
            arrays[k].shape != net.params[k].shape for k in net.params):
        raise ClassifierError(f"classifier weights {path}: expected arrays "
                              f"{ {k: v.shape for k, v in net.params.items()} }, found "
                              f"{ {k: v.shape for k, v in arrays.items()} }")
    for k, p in net.params.items():
        p[...] = backend.to_device(arrays[k])  # in place: the layers share these arrays
    return net
