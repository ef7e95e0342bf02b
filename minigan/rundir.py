"""A run folder: making one, the lock that keeps a second process out, the signals that stop a
run cleanly, and the CSV logs (metrics.csv, eval.csv).

Used by train_mnist.py and by every command that writes into a run; the checkpoint's contents
are minigan/checkpoint.py's, the config's are minigan/settings.py's.
"""

import contextlib
import csv
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

from minigan import checkpoint, files

try:
    import fcntl  # POSIX file locks
except ImportError:  # Windows
    fcntl = None


class RunError(Exception):
    """A problem with a run's inputs or state; the message says what to do."""


# ---- making a run folder ----------------------------------------------------------------------


def new_run_path(out=""):
    """The folder of a new run: ``out``, or runs/<date>-<time> when it is empty."""
    return Path(out or time.strftime("runs/%Y%m%d-%H%M%S"))


# What train_mnist.py writes into a run folder: samples/ holds the epoch grids, eval.csv and
# quality.png come with --eval-every. No other command writes any of these names into a run's
# folder (minigan.evaluate's --class-grid and --neighbours-grid, minigan.sample's --out), and
# a folder with checkpoint.npz, config.json or metrics.csv (RUN_MARKS) is a run's.
RUN_FILES = ("config.json", "checkpoint.npz", "metrics.csv", "eval.csv", "samples_final.png",
             "samples.gif", "curves.png", "quality.png", "samples")
RUN_MARKS = ("checkpoint.npz", "config.json", "metrics.csv")


def is_run(folder):
    """Whether folder holds a train_mnist.py run, whole or stopped before its first checkpoint."""
    return any((Path(folder) / name).exists() for name in RUN_MARKS)


def run_file(path):
    """The run folder whose own file path is, or None: one of RUN_FILES in a run's folder, or a
    file in its samples/ folder."""
    path = Path(path)
    if path.name in RUN_FILES and is_run(path.parent):
        return path.parent
    if path.parent.name == "samples" and is_run(path.parent.parent):
        return path.parent.parent
    return None


def refuse_taken(folder, flag="--out", writes=None, hint=""):
    """Raise RunError unless a command may write something new (a run, a lab's pictures, a
    report, a homework) into folder without replacing a file that is not its own: the folder is
    new or empty; or, for a command that may share a folder with other files (``writes``, the
    names it writes: the homework), it holds none of those names. A train_mnist.py run's folder
    is refused either way: only that run writes there (train_mnist.py --resume).

    flag: the flag that names the folder ("--out"), or None for an argument; hint: what else
    to do, added where the folder holds files ("; or grade the homework there ...")."""
    folder = Path(folder)
    if not folder.is_dir():  # new; a file in the way is the command's "not a folder" message
        return
    named, other = (f"{flag} {folder}", f"another {flag}") if flag else (str(folder),
                                                                          "another folder")
    marks = [name for name in RUN_MARKS if (folder / name).exists()]
    if marks:
        raise RunError(f"{named} holds a train_mnist.py run ({', '.join(marks)}), whose files "
                       f"nothing else may replace: choose {other}")
    try:
        present = sorted(p.name + "/" * p.is_dir() for p in folder.iterdir())
    except OSError as e:  # a folder that cannot be listed cannot be known to be empty
        raise RunError(f"{named}: cannot list the folder ({e.strerror or e}); check its "
                       f"permissions, or choose {other}") from None
    if writes is not None:
        present = [name for name in present if name.rstrip("/") in writes]
    if not present:
        return
    shown = ", ".join(present[:3]) + (f" and {len(present) - 3} more" if len(present) > 3
                                      else "")
    if writes is None:
        raise RunError(f"{named} already holds {shown}: a new run, lab or report goes into a "
                       f"new or empty folder, so that no file there is replaced; choose "
                       f"{other}{hint}")
    raise RunError(f"{named} already holds {shown}, which would be replaced: choose "
                   f"{other}{hint}")


def refuse_existing_run(run_dir):
    """train_mnist.py's check of a new run's --out (refuse_taken), which offers --resume for a
    run that can continue and says why one that stopped before its first checkpoint cannot."""
    run_dir = Path(run_dir)
    if (run_dir / "checkpoint.npz").exists():
        raise RunError(f"--out {run_dir} already holds a run; continue it with --resume "
                       f"{run_dir} or choose another --out")
    for name in ("config.json", "metrics.csv"):
        if (run_dir / name).exists():
            raise RunError(
                f"--out {run_dir} holds a run that stopped before its first checkpoint "
                f"({name} but no checkpoint.npz), so it cannot be resumed: delete that folder "
                "or choose another --out"
            )
    refuse_taken(run_dir)


def create(run_dir):
    """Make the folder of a new run (and its parents); RunError with the fix if it cannot."""
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"--out {run_dir}: cannot create the run folder ({e}). Check the path and "
                       "its permissions, or choose another --out.") from None


@contextlib.contextmanager
def lock(run_dir):
    """Hold an exclusive lock on the run folder while training, so that a second process
    cannot train into it. The kernel drops the lock when the process ends, even if killed."""
    if fcntl is None:  # Windows: no flock
        print(f"warning: cannot lock {run_dir} on this platform; never train twice into it "
              "at the same time", file=sys.stderr)
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)  # the folder itself: nothing is written to lock it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(
                f"another process is training into {run_dir} (it holds the folder's lock). "
                "Wait for it to finish or stop it, or choose another --out."
            ) from None
        except OSError as e:  # a file system without locks (some network shares)
            print(f"warning: cannot lock {run_dir} ({e}); never train twice into it at the "
                  "same time", file=sys.stderr)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def opened(run_dir, new):
    """Train into run_dir: make it (a new run), hold its lock, and turn a failed write into a
    RunError that says the last checkpoint is intact and how to continue.

    A new run's folder is checked again under the lock: another process may have just
    finished a run there."""
    if new:
        create(run_dir)
    with lock(run_dir):
        if new:
            refuse_existing_run(run_dir)
        saved = Path(run_dir) / "checkpoint.npz"
        try:
            yield
        except checkpoint.CheckpointWriteError as e:  # checkpoint.save failed: disk full?
            # (a checkpoint that cannot be read or does not match cannot be resumed: no hint)
            cause = e.cause
            if saved.exists():
                kept, fix = "the last one there is intact", resume_fix(cause, run_dir)
            else:  # the first checkpoint: nothing to resume from
                kept, fix = "nothing was saved", files.write_fix(
                    cause, saved, "start again with another --out",
                    then=f", delete {run_dir} and start again")
            raise checkpoint.CheckpointWriteError(
                f"cannot write the checkpoint {saved} ({cause.strerror or cause}); {kept}. {fix}",
                cause) from None
        except OSError as e:
            raise RunError(
                f"cannot write in {run_dir} ({e}). The last checkpoint, if any, is intact at "
                f"{saved}. {resume_fix(e, run_dir)}"
            ) from None


def resume_fix(error, run_dir):
    """What to do when a write into the run folder failed with the OSError ``error``, in
    words that fit its cause (minigan/files.py, write_fix), and how the run then continues:
    from the folder itself, or, where it cannot take files (read-only), from a copy."""
    return files.write_fix(
        error, Path(run_dir) / "checkpoint.npz",
        f"copy {run_dir} to a folder you can write in and continue with --resume on the copy",
        then=f", then continue with --resume {run_dir}")


def check_finite(row, run_dir):
    """Raise RunError if a logged loss is NaN or inf: the run has diverged."""
    if not all(math.isfinite(row[name]) for name in ("d_loss", "g_loss")):
        raise RunError(
            f"the loss became {row['d_loss']} (D) / {row['g_loss']} (G) by step {row['step']}: "
            f"training diverged. The last good checkpoint is kept at {run_dir}/checkpoint.npz. "
            "Try a lower learning rate (--lr-g/--lr-d) or label smoothing "
            "(--label-smoothing 0.1)."
        )


# ---- stopping cleanly -------------------------------------------------------------------------


class StopRequest:
    """Turns the first Ctrl-C (SIGINT), SIGTERM (what `timeout`, `kill`, `docker stop` and job
    schedulers send) or SIGHUP (the terminal or SSH session closed) into a request to stop after
    the current step, so the networks are never saved half-updated: the loop checks
    ``requested``, saves a checkpoint and returns, and the command exits with STOPPED_STATUS's
    status for it (below).

    A second signal acts at once: Ctrl-C raises KeyboardInterrupt, SIGTERM and SIGHUP end the
    process. ``signal_name`` says which one asked ("SIGINT", "SIGTERM", "SIGHUP", or "a closed
    output" from ``output``). Signal handlers can only be set in the main thread; elsewhere this
    does nothing.
    """

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                    if hasattr(signal, name))  # Windows has no SIGHUP

    def __init__(self):
        self.requested, self.signal_name, self.previous = False, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            # a signal already ignored stays ignored: under `nohup`, a closed terminal's SIGHUP
            # must not stop the run the user asked to outlive it
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS
                             if signal.getsignal(s) is not signal.SIG_IGN}
        return self

    def _handle(self, signum, frame):
        self.requested, self.signal_name = True, signal.Signals(signum).name
        for s, handler in self.previous.items():  # the next signal acts at once
            signal.signal(s, handler)

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def output(self, stream):
        """``stream`` for the progress bar, turning a write that fails (the pipe or terminal
        that read it is gone: a parent process killed, ``| head`` done) into a stop request
        instead of an exception that would lose the steps since the last checkpoint."""
        return _StopOnClosedOutput(stream, self)


class _StopOnClosedOutput:
    def __init__(self, stream, stop):
        self.stream, self.stop = stream, stop

    def write(self, text):
        try:
            return self.stream.write(text)
        except (OSError, ValueError):  # BrokenPipeError, EIO; ValueError: a closed file
            self.stop.requested, self.stop.signal_name = True, "a closed output"
            return len(text)

    def flush(self):
        try:
            self.stream.flush()
        except (OSError, ValueError):
            self.stop.requested, self.stop.signal_name = True, "a closed output"


# The exit status of a command that a stop request ended before its work was done, by
# StopRequest.signal_name: 128 + the signal's number, what a shell reports for a process that
# signal ends, so that a script's `&&` or a job scheduler sees an unfinished run, not a finished
# one; a closed output as SIGPIPE, which ends a process whose pipe's reader is gone. (POSIX's
# numbers: SIGHUP 1, SIGINT 2, SIGPIPE 13, SIGTERM 15.)
STOPPED_STATUS = {"SIGHUP": 129, "SIGINT": 130, "a closed output": 141, "SIGTERM": 143}


def stop_status(returncode):
    """The status in STOPPED_STATUS that a child's exit status says a stop ended it with, or
    None where it finished or failed. A negative returncode (subprocess's way of saying that a
    signal ended the process at once, as a second SIGTERM does, the last checkpoint intact)
    counts as 128 + that signal's number, as a shell would report it."""
    status = 128 - returncode if returncode < 0 else returncode
    return status if status in STOPPED_STATUS.values() else None


class Stopped(Exception):
    """Raised by a run that a StopRequest ended before its last epoch, after its checkpoint and
    the message that says how to continue: so that no caller takes it for a finished run.
    ``status`` is the exit status that says so (STOPPED_STATUS)."""

    def __init__(self, run_dir, signal_name):
        super().__init__(f"{run_dir}: stopped by {signal_name}")
        self.run_dir, self.signal_name = run_dir, signal_name
        self.status = STOPPED_STATUS[signal_name]


# ---- the CSV logs -----------------------------------------------------------------------------


def append_row(path, row):
    """Append a dict as one line of a CSV log, writing the header first if the file is new."""
    new = not Path(path).exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_rows(path):
    """Every row of a CSV log as a dict of floats (a last line cut short is none: whole_lines)."""
    with open(path, newline="") as f:
        lines = whole_lines(f.read().splitlines(keepends=True))
    return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(lines)]


def whole_lines(lines):
    """A log's lines without a last line cut short. append_row ends every row with a line break,
    so a last row without one was being written when the process was killed (a second Ctrl-C, a
    kill -9, a power cut): a step after the checkpoint's, which a resume trains and logs again."""
    return lines[:-1] if len(lines) > 1 and not lines[-1].endswith("\n") else lines


def drop_rows_after(path, column, last):
    """Keep only the rows of a CSV log whose column is <= last (the checkpoint's step or epoch).

    A run that stopped between two checkpoints (killed, or stopped by a NaN) had logged steps
    that its resumed run trains and logs again; without this they would appear twice. A log
    with nothing to drop is not rewritten; a damaged one raises RunError (kept_lines)."""
    drop_rows_after_all([(path, column, last)])


def drop_rows_after_all(logs):
    """drop_rows_after for each (path, column, last) of logs, every log checked before any is
    rewritten: a damaged one raises RunError and leaves them all as they were."""
    trimmed = [(path, kept_lines(path, column, last)) for path, column, last in logs]
    for path, lines in trimmed:
        if lines is not None:
            files.write_text(path, "".join(lines))


def kept_lines(path, column, last):
    """The lines of the CSV log at path whose column is <= last (with the header), or None when
    none would be dropped (or there is no log). RunError naming the file and the line where a
    row is not numbers under the header's names (read_rows would fail on it later), or the file
    alone where it is not text or not a file. A last line cut short (whole_lines) is dropped."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
    except UnicodeDecodeError as e:
        raise RunError(f"{path}: not text (byte {e.start + 1} is not UTF-8), so not a CSV log. "
                       f"The log is damaged: restore it from a copy, or delete {path.name} (it "
                       "only records the run; the checkpoint is intact), then resume again."
                       ) from None
    except OSError as e:
        if path.is_dir():
            raise RunError(f"{path} is a folder, not the run's CSV log: move it out of the run "
                           "folder (the checkpoint is intact), then resume again.") from None
        raise RunError(f"{path} cannot be read ({e.strerror or e}): check its permissions, "
                       "then resume again.") from None
    if not lines:
        return None
    header = next(csv.reader(lines[:1]))
    if column not in header:
        raise RunError(f"{path}, line 1: the header {','.join(header)} has no {column} column. "
                       f"The log is damaged: restore it from a copy, or delete {path.name} (it "
                       "only records the run; the checkpoint is intact), then resume again.")
    kept = lines[:1]
    for number, line in enumerate(whole_lines(lines)[1:], start=2):
        cells = next(csv.reader([line]), [])
        try:
            if len(cells) != len(header):
                raise ValueError
            values = [float(cell) for cell in cells]
        except ValueError:
            raise RunError(f"{path}, line {number}: {show_line(line)} is not a row of "
                           f"{len(header)} numbers under {','.join(header)}. The log is damaged: "
                           "delete that line or restore the file from a copy (the checkpoint is "
                           "intact), then resume again.") from None
        if values[header.index(column)] <= last:
            kept.append(line)
    return kept if len(kept) < len(lines) else None


def show_line(line):
    """A log's line for a message: its text, quoted, cut short."""
    text = line.rstrip("\r\n")
    return repr(text if len(text) <= 60 else text[:57] + "...")
