"""MNIST on the host: find the four files, read IDX, verify checksums, scale the pixels.

This is where data enters minigan. Everything here is plain NumPy on the host; the training
script moves batches to the device itself with ``backend.to_device``, so that copy is visible
where it happens. What a run trains on (MNIST or a user's own .npy) and an epoch's batches:
minigan/dataset.py.

    images, labels = load_mnist("train")  # uint8 (60000, 28, 28), uint8 (60000,)
    x = to_model_input(images)            # float32 (60000, 784), values in [-1, 1]

Where the files come from, in order (see :func:`find_mnist`): an explicit ``data_dir``,
``$MINIGAN_DATA``, the repository's ``data/mnist/``, the user cache ``~/.cache/minigan/mnist``
(``$XDG_CACHE_HOME/minigan/mnist`` when that is set), and last a download into that cache.
A file may be stored gzip-compressed (``name.gz``) or raw (``name``); either way the SHA-256
of its *decompressed* bytes must match :data:`SHA256`.

Every problem with the data raises :class:`DataError`, whose message names the file, says
what is wrong and how to fix it.
"""

import gzip
import hashlib
import http.client
import math
import os
import struct
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from minigan import files

SPLITS = {  # split -> (images file, labels file), names without .gz
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FILES = SPLITS["train"] + SPLITS["test"]

# SHA-256 of the decompressed files, as in data/mnist/SHA256SUMS. We hash the content, not the
# .gz bytes, because two gzip encoders compress the same content to different bytes.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)
_KIND = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}

REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"

# Tried in order; each serves "<name>.gz". Tests point these at a local server.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DOWNLOAD_TIMEOUT = 30  # seconds a mirror may stay silent (per connect or read) before we move on


class DataError(RuntimeError):
    """The MNIST data is missing or damaged; the message names the file and says how to fix it."""


def cache_dir():
    """The user cache: ``$XDG_CACHE_HOME/minigan/mnist``, else ``~/.cache/minigan/mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "minigan" / "mnist"


def _damaged(source, what):
    """A DataError for a file that is there but wrong: names it, says what, says how to fix it."""
    return DataError(
        f"{source}: {what}.\n"
        f"To fix: delete {source} and run again, so that minigan uses another copy or downloads "
        f"a fresh one into {cache_dir()}; or copy a good one from the minigan repository's "
        "data/mnist/ (`git checkout -- data/mnist` restores those)."
    )


# ---- reading one file ----------------------------------------------------------------------


def read_content(path):
    """The decompressed bytes of an IDX file stored gzip-compressed (``*.gz``) or raw."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file. Check the path, or call load_mnist() and let minigan find "
            "the files (or download them)."
        ) from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e}). Check its permissions.") from None
    return _gunzip(raw, path) if path.suffix == ".gz" else raw


def _gunzip(raw, source):
    """gzip.decompress, with every way a gzip stream can be broken turned into a DataError."""
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise _damaged(
            source, f"the gzip stream is truncated ({len(raw)} bytes end before its "
            "end-of-stream marker): an interrupted copy or download"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as e:  # bad header, bad deflate data, bad CRC
        hint = ""
        if raw[:4] in (struct.pack(">i", IMAGES_MAGIC), struct.pack(">i", LABELS_MAGIC)):
            hint = "; it starts like a raw IDX file, so drop the .gz from its name"
        raise _damaged(source, f"corrupt gzip data ({e}){hint}") from None


def parse_idx(data, source="<bytes>", magic=None):
    """The array held in the (decompressed) bytes of an IDX file.

    Layout: big-endian int32 magic (2051 images, 2049 labels), int32 N, for images int32 rows
    and int32 cols, then the uint8 values, row-major. ``source`` names the file in messages;
    ``magic``, if given, is the kind expected.
    Returns uint8 (N, rows, cols) for images, uint8 (N,) for labels.
    """
    if len(data) == 0:
        raise _damaged(source, "the file is empty (0 bytes)")
    if len(data) < 8:
        raise _damaged(
            source, f"too short for an IDX header: expected at least 8 bytes, found {len(data)}"
        )
    found = struct.unpack_from(">i", data)[0]
    if found not in _KIND:
        hint = ""
        if data[:2] == b"\x1f\x8b":  # the gzip magic
            hint = "; it looks gzip-compressed, so add .gz to its name"
        raise _damaged(
            source, f"wrong magic number: expected {IMAGES_MAGIC} (images) or {LABELS_MAGIC} "
            f"(labels), found {found}{hint}"
        )
    if magic is not None and found != magic:
        raise _damaged(
            source, f"wrong magic number: expected {magic} ({_KIND[magic]}), found {found} "
            f"({_KIND[found]}); is the file misnamed?"
        )
    header = ">iiii" if found == IMAGES_MAGIC else ">ii"  # magic, N (, rows, cols)
    offset = struct.calcsize(header)
    if len(data) < offset:
        raise _damaged(source, f"truncated header: expected {offset} bytes, found {len(data)}")
    shape = struct.unpack_from(header, data)[1:]
    if min(shape) < 0:
        raise _damaged(source, f"invalid header: negative size in shape {shape}")
    expected = offset + math.prod(shape)
    if len(data) < expected:
        raise _damaged(
            source, f"truncated: the header promises shape {shape}, {expected} bytes in all, "
            f"found {len(data)}"
        )
    if len(data) > expected:
        raise _damaged(
            source, f"trailing garbage: the header promises shape {shape}, {expected} bytes in "
            f"all, found {len(data)} ({len(data) - expected} extra)"
        )
    # frombuffer views the read-only bytes; copy so the caller owns a writable array
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape).copy()


def read_idx(path):
    """Read an IDX file, gzip (``*.gz``) or raw. Returns uint8 (N, 28, 28) images or (N,) labels."""
    return parse_idx(read_content(path), path)


def check_sha256(data, source, expected):
    """Raise DataError unless the SHA-256 of ``data`` (decompressed bytes) is ``expected`` (hex)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise _damaged(
            source, f"SHA-256 mismatch of the decompressed content: expected {expected}, "
            f"found {actual}"
        )


# ---- finding the four files ----------------------------------------------------------------


def _stored(directory, name):
    """The path of ``name`` in ``directory``, raw or ``.gz``, or None if it is not there."""
    for path in (directory / name, directory / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def _missing(directory):
    """Which of the four files ``directory`` lacks, in either form."""
    return [name for name in FILES if _stored(directory, name) is None]


def _what_is_missing(directory):
    """A few words on why ``directory`` does not hold MNIST, or None if it does."""
    if not directory.is_dir():
        return "no such folder"
    missing = _missing(directory)
    if missing:
        return "missing " + ", ".join(missing) + " (raw or .gz)"
    return None


def holds_mnist(directory):
    """Whether ``directory`` holds the four MNIST files, each raw or .gz (load_mnist verifies
    them): the commands' check of --data-dir, before anything is written."""
    return _what_is_missing(Path(directory)) is None


def find_mnist(data_dir=None, download=True):
    """The folder that holds the four MNIST files (each raw or ``.gz``). Returns a Path.

    Looks in order:
      1. ``data_dir``, if given,
      2. ``$MINIGAN_DATA``, if set (for these two a miss is an error, not a silent fall-through),
      3. the repository's data/mnist/ (``REPO_DATA_DIR``),
      4. the user cache (:func:`cache_dir`),
      5. if ``download``, the ``MIRRORS``, downloading into the user cache.
    Only looks for the files; :func:`load_mnist` verifies them.
    """
    explicit = (
        ("data_dir", data_dir, "leave out data_dir"),
        ("$MINIGAN_DATA", os.environ.get("MINIGAN_DATA"), "unset MINIGAN_DATA"),
    )
    for where, value, undo in explicit:
        if value:
            directory = Path(value).expanduser()
            problem = _what_is_missing(directory)
            if problem:
                raise DataError(
                    f"{where} = {directory} does not hold MNIST: {problem}.\nTo fix: copy the "
                    f"four files there from the minigan repository's data/mnist/, or {undo} "
                    f"so that minigan searches the repository and {cache_dir()} and downloads "
                    "what is missing."
                )
            return directory

    looked = ["data_dir: (not given)", "$MINIGAN_DATA: (not set)"]
    for where, directory in (("the repository", REPO_DATA_DIR), ("the user cache", cache_dir())):
        problem = _what_is_missing(directory)
        if problem is None:
            return directory
        looked.append(f"{where}: {directory} ({problem})")

    if download:
        try:
            return download_mnist(cache_dir())
        except DataError as e:
            details = str(e).replace("\n", "\n    ")
            looked.append(f"download into the user cache: failed\n    {details}")
    else:
        looked.append("download: skipped (download=False)")
    raise DataError(
        "MNIST not found. minigan looked, in this order, at:\n  - " + "\n  - ".join(looked) +
        f"\nTo fix: copy the four files (raw or .gz) from the minigan repository's data/mnist/ "
        f"into {cache_dir()}, or set MINIGAN_DATA (or pass data_dir) to a folder that holds "
        "them, or connect to the internet and call with download=True."
    )


# ---- downloading ---------------------------------------------------------------------------


def download_mnist(directory=None):
    """Download whichever of the four files ``directory`` lacks (default: the user cache).

    Each arrives as ``<name>.gz`` from the first of ``MIRRORS`` that serves it intact; a file
    appears under its final name only once its decompressed SHA-256 is verified.
    Returns the directory; raises DataError listing every mirror's failure.
    """
    directory = cache_dir() if directory is None else Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"{directory}: cannot create the download folder ({e}). Set XDG_CACHE_HOME to a "
            "writable folder, or set MINIGAN_DATA to a folder that holds MNIST."
        ) from None
    for name in _missing(directory):
        _download(name, directory)
    return directory


def _download(name, directory):
    """Fetch ``<name>.gz`` into ``directory`` from the first mirror that serves it intact."""
    failures = []
    for mirror in MIRRORS:
        url = f"{mirror}{name}.gz"
        try:
            _fetch_atomic(url, directory / f"{name}.gz", SHA256[name])
            return
        except (OSError, http.client.HTTPException, DataError) as e:  # URLError, timeouts: OSError
            failures.append(f"{url}: {str(e).splitlines()[0]}")
    raise DataError(
        f"could not download {name}.gz into {directory}; every mirror failed:\n  "
        + "\n  ".join(failures)
    )


def _fetch_atomic(url, path, sha256):
    """Download ``url`` to ``path`` through minigan's atomic writer (minigan/files.py), verified
    before the rename: an interrupted or bad download never leaves a file under ``path``."""
    with (
        files.atomic_write(path) as out,
        urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response,
    ):
        total = int(response.headers.get("Content-Length") or 0) or None
        chunks = []
        with tqdm(total=total, unit="B", unit_scale=True, desc=path.name) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                chunks.append(chunk)
                bar.update(len(chunk))
        content = _gunzip(b"".join(chunks), url)  # an error here removes the temporary file
        parse_idx(content, url)  # a precise message for a truncated or padded file
        check_sha256(content, url, sha256)


# ---- loading a split -----------------------------------------------------------------------


def _load_verified(directory, name, magic):
    """Read ``name`` from ``directory`` once: parse it and check its SHA-256 on the same bytes."""
    path = _stored(directory, name)
    data = read_content(path)
    array = parse_idx(data, path, magic)
    check_sha256(data, path, SHA256[name])
    return array, path


def load_mnist(split="train", data_dir=None, download=True):
    """One MNIST split as host NumPy arrays, found by :func:`find_mnist` and verified.

    split: "train" (N = 60000) or "test" (N = 10000).
    Returns images uint8 (N, 28, 28), values 0..255, and labels uint8 (N,), values 0..9.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use 'train' or 'test'")
    directory = find_mnist(data_dir, download)
    images_name, labels_name = SPLITS[split]
    images, images_path = _load_verified(directory, images_name, IMAGES_MAGIC)
    labels, labels_path = _load_verified(directory, labels_name, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            "labels: the two files are from different sets.\nTo fix: delete both and run "
            "again, or copy both from the minigan repository's data/mnist/."
        )
    return images, labels


# ---- pixels <-> model input ----------------------------------------------------------------


def to_model_input(images, dtype="float32"):
    """Scale uint8 pixels to the generator's tanh range: ``x = images / 127.5 - 1``.

    images: uint8 (N, 28, 28) (or (N, 784)), values 0..255.
    Returns a host array (N, 784) of ``dtype``, values in [-1, 1]; 0 -> -1, 255 -> 1.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_model_input expects uint8 pixels 0..255, got dtype {images.dtype}")
    x = images.reshape(len(images), -1).astype(dtype)  # (N, 784), a fresh copy
    x /= 127.5  # in place: no second (N, 784) temporary
    x -= 1
    return x


def to_pixels(x):
    """The inverse of :func:`to_model_input`: ``round((x + 1) * 127.5)``, clipped to 0..255.

    x: host array (N, 784) or (N, 28, 28), values in [-1, 1] (anything outside is clipped).
    Returns uint8 (N, 28, 28).
    """
    x = np.asarray(x)
    if x.shape[1:] not in ((784,), (28, 28)):
        raise ValueError(f"to_pixels expects (N, 784) or (N, 28, 28), got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError("to_pixels got NaN values: the generator has diverged")
    pixels = np.rint(np.clip((x + 1) * 127.5, 0, 255))
    return pixels.astype(np.uint8).reshape(len(x), 28, 28)
