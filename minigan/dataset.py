"""What a run trains on: MNIST's training split or a user's own images (train_mnist.py --images
FILE.npy), and an epoch's random order and batches on the device.

Loading is plain NumPy on the host (MNIST's files: minigan/data.py); the training script copies
the images to the device itself, once, with ``backend.to_device``. ``epoch_order`` and
``batch_reader`` work on the device.
"""

import numpy as np

from minigan import backend, files
from minigan.data import DataError, load_mnist


def load_images(path):
    """A user's own images from a .npy file (train_mnist.py --images): uint8 (N, 28, 28).

    The file is read without pickle (minigan/files.py, read_npy), so it can hold plain numbers
    only; anything else raises DataError saying what the file holds and what is expected.
    """
    expected = "a uint8 array of shape (N, 28, 28), pixels 0..255, saved with numpy.save"
    try:
        images = files.read_npy(path)
    except files.UnreadableArray as e:  # another kind of file, damaged, truncated, pickled
        raise DataError(f"--images {path}: the file holds {e}; minigan needs {expected}."
                        ) from None
    except OSError as e:
        raise DataError(f"--images {path}: cannot read it ({e.strerror or e})") from None
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"--images {path}: the array is {images.dtype} of shape {images.shape}; "
                        f"minigan needs {expected}. Convert floats in [0, 1] with "
                        "(x * 255).round().astype(numpy.uint8).")
    if len(images) == 0:
        raise DataError(f"--images {path}: the array holds no images; minigan needs {expected}.")
    return images


def training_images(images_file="", data_dir=None, limit=0, labels=False):
    """The images a run trains on, uint8 (N, 28, 28) on the host: MNIST's training split, or
    the user's own --images file; only the first ``limit`` of them when limit > 0.
    labels=True: (images, their digits uint8 (N,)), for a conditional run; an --images file
    has none (settings.py refuses --images with --conditional)."""
    if images_file:
        images, digits = load_images(images_file), None
    else:
        images, digits = load_mnist("train", data_dir=data_dir or None)
    images = images[:limit] if limit else images
    if not labels:
        return images
    if digits is None:
        raise DataError(f"--images {images_file}: the file carries no labels")
    return images, digits[:len(images)]


# ---- an epoch's batches, on the device -------------------------------------------------------


def epoch_order(rng, n):
    """A uniformly random order of n items from the run's generator: argsort of uniform draws,
    the same code on both devices (CuPy's generator has no permutation)."""
    return backend.xp.argsort(rng.random(n))  # (n,) on the device


def batch_reader(X, order, batch_size, first=0, labels=None):
    """A function that returns the next batch of X (on the device) in the epoch's ``order``,
    starting at batch number ``first`` (a resumed epoch starts where it stopped). With labels
    (N,) on the device (a conditional run), it returns (batch, the batch's labels)."""
    cursor = first

    def next_batch():
        nonlocal cursor
        rows = order[cursor * batch_size:(cursor + 1) * batch_size]
        cursor += 1
        if labels is None:
            return X[rows]  # (batch_size, 784)
        return X[rows], labels[rows]  # (batch_size, 784), (batch_size,)

    return next_batch
