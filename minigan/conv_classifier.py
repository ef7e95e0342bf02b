"""A second MNIST classifier, convolutional, whose features give every score a second opinion.

A Fréchet distance ranks generators by the features it is computed on, and two feature spaces
can disagree. This network sees images the way minigan's DCGAN discriminator does, through
convolutions (minigan/conv.py), where the first classifier (minigan/classifier.py) is an MLP on
the raw pixels; ``python -m minigan.evaluate RUN --features conv`` scores through it.

    x (N, 784) -> (N, 1, 28, 28)
    Conv2D(1, 16, 5, stride 2, padding 2) + LeakyReLU(0.2)    -> (N, 16, 14, 14)
    Conv2D(16, 32, 5, stride 2, padding 2) + LeakyReLU(0.2)   -> (N, 32, 7, 7)
    Flatten + Dense(1568, 128) + LeakyReLU(0.2)               -> (N, 128): the features
    Dense(128, 10)                                            -> (N, 10): the logits

It is trained by the first classifier's own loop (classifier.fit: softmax cross-entropy, Adam,
random 2-pixel shifts, the learning rate decayed linearly to 0), for fewer epochs: a convolution
learns MNIST faster than an MLP. Its weights ship in minigan/weights/ with their SHA-256
(minigan/weights/README.md says how they were made):

    OPENBLAS_NUM_THREADS=1 python -m minigan.evaluate --train-classifier --features conv
"""

from pathlib import Path

from minigan import backend, classifier
from minigan.conv import Conv2D
from minigan.layers import Dense, Flatten, LeakyReLU, Reshape, Sequential

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_conv_classifier.npz"
# SHA-256 of the shipped weights file; --train-classifier --features conv prints the hash of
# the file it writes.
WEIGHTS_SHA256 = "fa41e1f74f23221943244c6ca242fa3c6b9e8028ca1769fd999675ebc4949b0a"
EPOCHS = 8  # --train-classifier --features conv: epochs by default
FEATURES = 128  # the width of the last hidden layer, whose outputs are an image's features
RETRAIN = "python -m minigan.evaluate --train-classifier --features conv"


def make_conv_classifier(rng=None, dtype="float32"):
    """The convolutional MNIST classifier: x (N, 784) in [-1, 1] -> logits (N, 10)."""
    return Sequential(
        Reshape((1, 28, 28)),
        Conv2D(1, 16, 5, stride=2, padding=2, rng=rng, dtype=dtype), LeakyReLU(0.2),
        Conv2D(16, 32, 5, stride=2, padding=2, rng=rng, dtype=dtype), LeakyReLU(0.2),
        Flatten(),
        Dense(32 * 7 * 7, FEATURES, rng=rng, dtype=dtype), LeakyReLU(0.2),
        Dense(FEATURES, classifier.CLASSES, rng=rng, dtype=dtype))


def train_conv_classifier(epochs=EPOCHS, seed=0, data_dir=None, log=print):
    """Train it on the 60,000 MNIST training images, as classifier.train_classifier trains the
    MLP; returns (net, test accuracy)."""
    return classifier.train_classifier(epochs, seed=seed, data_dir=data_dir, log=log,
                                       make=make_conv_classifier)


def load_conv_classifier(path=None):
    """The convolutional classifier with weights from ``path`` (default: the shipped file, whose
    SHA-256 must equal WEIGHTS_SHA256). Raises classifier.ClassifierError naming the fix."""
    net = make_conv_classifier(rng=backend.default_rng(0))  # the init is overwritten
    return classifier.load_weights(net, path, WEIGHTS, WEIGHTS_SHA256, RETRAIN)
