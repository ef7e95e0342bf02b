"""Writing files so that a crash never leaves half of one: minigan's one atomic writer; and
reading the NumPy files a user hands in (.npy images, .npz weights) without pickle, saying
plainly what is wrong with a file that cannot be read; and reading a JSON file that may be
anything (is an output already there one of ours, which may be replaced?).

Every file a command writes (checkpoints, configs, logs rewritten on resume, pictures, samples,
the classifier's weights) goes through ``atomic_write``: the bytes go to a temporary file in the
same folder, are flushed to the disk (fsync), and the temporary file is renamed over the target.
A rename within one folder is atomic on POSIX and Windows, so a reader, or a run killed mid-write,
sees either the old file whole or the new file whole; on any failure the temporary file is
removed and the old file is left as it was.
"""

import contextlib
import errno
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

NPY_MAGIC = b"\x93NUMPY"  # every .npy file starts so; an .npz is a zip archive ("PK")


class UnreadableArray(ValueError):
    """A .npy or .npz file that cannot be read as plain arrays; the message says what the file
    holds instead ("the file holds ..."), in words that need no knowledge of NumPy's file format
    (the caller names the file and the fix)."""


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Yield an open file (``mode`` "wb" or "w") that replaces ``path`` when the block ends.

        with atomic_write(run_dir / "checkpoint.npz") as f:
            np.savez(f, **arrays)

    The temporary file is ``.<name>.<random>.tmp`` beside ``path``, with an ordinary file's
    permissions; OSError (disk full, no permission) propagates after it is removed.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        newline = "" if "b" not in mode else None  # text: write "\n" as given, on every OS
        with os.fdopen(fd, mode, newline=newline) as f:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: an ordinary file's mode
            yield f
            f.flush()
            os.fsync(f.fileno())  # the bytes are on the disk before the name points at them
        os.replace(tmp, path)  # the one atomic step
    except BaseException:  # KeyboardInterrupt included: never leave the temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path, text):
    """Replace ``path`` with ``text`` atomically (``atomic_write``)."""
    with atomic_write(path, "w") as f:
        f.write(text)


def write_fix(error, path, elsewhere, then=""):
    """What to do when writing ``path`` failed with the OSError ``error``, in words that fit
    its cause, as a sentence; ``elsewhere`` is the other way out ("choose another --out"), and
    ``then`` what follows a fix made in place (", then continue with --resume run")."""
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):  # Windows: none
        return f"Free some disk space{then}."
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"Check the folder's permissions{then}, or {elsewhere}."
    if error.errno == errno.EROFS:
        return f"The file system is read-only: {elsewhere}."
    # /proc, /sys: a folder that exists but takes no new files ("No such file or directory")
    return f"{Path(path).parent} takes no new files: {elsewhere}."


def json_object(path):
    """The JSON object (a dict) that the file at path holds, or None where it holds none: it
    cannot be read, is not text, not JSON, nested too deep to read, or JSON of another shape."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _umask():
    mask = os.umask(0)  # the only way to read the umask is to set it; put it straight back
    os.umask(mask)
    return mask


# ---- reading arrays -----------------------------------------------------------------------------


def read_npy(path):
    """The array of a .npy file, read without pickle. Raises UnreadableArray saying what the
    file holds instead (another kind of file, a damaged header, pickled objects, fewer bytes
    than its header promises), or OSError if it cannot be opened.

    The header is read here rather than by np.load, whose errors for a damaged header include
    Python's tokenizer's (tokenize.TokenError) and call every ValueError a pickle."""
    with open(path, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
        if magic != NPY_MAGIC:
            raise UnreadableArray("an .npz archive, not a .npy array" if magic.startswith(b"PK")
                                  else "another kind of file, not a .npy array")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                           np.lib.format.read_array_header_2_0)  # 2.0 and 3.0: a longer header
            shape, _, dtype = read_header(f)
        except Exception:  # ValueError, tokenize.TokenError, SyntaxError: a garbled header
            raise UnreadableArray("a damaged .npy header (not the dtype, order and shape that "
                                  "numpy.save writes)") from None
        if dtype.hasobject:
            raise UnreadableArray("pickled Python objects, which minigan never loads")
        promised = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        present = os.fstat(f.fileno()).st_size - f.tell()
        if present < promised:
            raise UnreadableArray(f"{present:,} bytes of data where its header promises "
                                  f"{promised:,} (an array {dtype} of shape {shape}): the file "
                                  "is truncated, an interrupted copy or save")
        f.seek(0)
        return np.load(f, allow_pickle=False)


def read_npz(path):
    """The arrays of an .npz archive as a dict, read without pickle. Raises UnreadableArray
    saying what the file holds instead, or OSError if it cannot be opened."""
    with open(path, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
    if not magic.startswith(b"PK"):
        raise UnreadableArray("a .npy array, not an .npz archive" if magic == NPY_MAGIC
                              else "another kind of file, not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except Exception as e:  # a truncated zip, a damaged member, a pickled member
        if "pickle" in str(e):
            raise UnreadableArray("pickled Python objects, which minigan never loads") from None
        what = "truncated or damaged" if isinstance(e, (zipfile.BadZipFile, EOFError)) else \
            "damaged"
        raise UnreadableArray(f"an .npz archive that is {what} ({type(e).__name__}: {e})"
                              ) from None
