"""Writing files so that a crash never leaves half of one: minigan's one atomic writer.

Every file a command writes (checkpoints, configs, logs rewritten on resume, pictures, samples,
the classifier's weights) goes through ``atomic_write``: the bytes go to a temporary file in the
same folder, are flushed to the disk (fsync), and the temporary file is renamed over the target.
A rename within one folder is atomic on POSIX and Windows, so a reader, or a run killed mid-write,
sees either the old file whole or the new file whole; on any failure the temporary file is
removed and the old file is left as it was.
"""

import contextlib
import os
import tempfile
from pathlib import Path


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


def _umask():
    mask = os.umask(0)  # the only way to read the umask is to set it; put it straight back
    os.umask(mask)
    return mask
