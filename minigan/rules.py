"""The vocabulary of settings: a rule is a pair (check(value) -> bool, the allowed values in
words), and one message names the flag, the value, what is allowed and the default:

    --batch-size 0: not allowed; use an integer >= 1 (default: 64).

minigan/settings.py writes every command's settings with these rules.
"""

import math
from pathlib import Path

from minigan import rundir


class ConfigError(rundir.RunError):
    """A setting outside its allowed values; the message names the flag, the value, the range."""


def integer(lo, hi=None):
    """A rule: an int (not a bool) with lo <= value (<= hi)."""
    allowed = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v
            and (hi is None or v <= hi)), allowed


def number(lo, hi=None, lo_open=False):
    """A rule: a finite int or float with lo <= value < hi (lo < value if lo_open)."""
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if isinstance(v, float) and not math.isfinite(v):  # NaN, inf
            return False
        return (lo < v if lo_open else lo <= v) and (hi is None or v < hi)
    if hi is None:
        return check, f"a number {'>' if lo_open else '>='} {lo}"
    return check, f"a number in {'(' if lo_open else '['}{lo}, {hi})"


def number_from_to(lo, hi):
    """A rule: a finite int or float with lo <= value <= hi (both ends allowed)."""
    ok = number(lo)[0]
    return (lambda v: ok(v) and v <= hi), f"a number from {lo} to {hi}"


def one_of(*choices):
    return (lambda v: isinstance(v, str) and v in choices), "one of " + ", ".join(choices)


def explained(rule, words):
    return rule[0], words  # the same check, with other words for what is allowed


SEED = integer(0, 2**32 - 1)  # what NumPy's and CuPy's generators take
MAX_WIDTH = 100_000  # a layer wider than this would not fit in memory anyway


def widths():
    """A rule: a non-empty tuple of layer widths."""
    ok = integer(1, MAX_WIDTH)[0]
    return (lambda v: isinstance(v, tuple) and len(v) > 0 and all(ok(w) for w in v)), (
        f"comma-separated layer widths, each an integer from 1 to {MAX_WIDTH}, like 256,512,1024")


def path_ok(value, want):
    """Whether a path setting can be used: text without NUL, and "" (the default) or, with want
    "folder" or "file", one that exists; with want "out", a folder made if missing, so that
    nothing above it may be a file."""
    if not isinstance(value, str) or "\0" in value:
        return False
    try:
        path = Path(value).expanduser()
        if not value or want == "out":  # the first folder up the path that exists is a folder
            return next((p.is_dir() for p in (path, *path.parents) if p.exists()), True)
        return path.is_dir() if want == "folder" else path.is_file()
    except (OSError, ValueError):  # a name too long
        return False


def folder(want_dir):
    return (lambda v: path_ok(v, "folder" if want_dir else "out")), (
        "an existing folder, or empty to search" if want_dir else
        "a folder name (created if missing), not a file, or empty for runs/<time>")


def flag(name):
    return "--" + name.replace("_", "-")


def show(value):
    """A setting's value as the user would type it (short, and safe for any value)."""
    if isinstance(value, str) and not value:
        return '""'
    try:
        if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
            value = ",".join(map(str, value))
        text = repr(value) if isinstance(value, str) and not value.isprintable() else str(value)
    except ValueError:  # an int too long to print
        text = f"a {type(value).__name__} too long to print"
    return text if len(text) <= 80 else text[:77] + "..."


def check(name, value, rule, default=None):
    """Raise ConfigError unless value passes rule: the one message every command prints."""
    ok, allowed = rule
    if not ok(value):
        tail = "" if default is None else f" (default: {show(default)})"
        raise ConfigError(f"{flag(name)} {show(value)}: not allowed; use {allowed}{tail}.")
